#!/usr/bin/env bash
# The CUDA proof in one call (README: "On a GPU machine without internet").
# Where gymnasium or ale-py is missing, installs the wheels in $WHEELS (default .whl/, made
# by `make gpu-wheels` on a machine with internet) into a private folder; nothing else is
# installed or changed. Options go to `python -m benchmarks.gpu_pong` (see its --help).
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/gpu_site.sh
exec python3 -m benchmarks.gpu_pong "$@"
