#!/usr/bin/env bash
# The CUDA proof in one call (README: "On a GPU machine without internet").
# Where gymnasium or ale-py is missing, installs the wheels in $WHEELS (default .whl/, made
# by `make gpu-wheels` on a machine with internet) into a private folder; nothing else is
# installed or changed. Options go to `python -m benchmarks.gpu_pong` (see its --help).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${WHEELS:-.whl}
if ! python3 -c "import gymnasium, ale_py" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/a3c-site "$WHEELS"/*.whl
    export PYTHONPATH=/tmp/a3c-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
exec python3 -m benchmarks.gpu_pong "$@"
