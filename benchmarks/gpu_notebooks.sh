#!/usr/bin/env bash
# Each notebook's run time on a GPU machine without internet, in one run:
#   bash benchmarks/gpu_notebooks.sh            # notebooks 01-04, 06, 07 (and 08 with Ray)
#   A3C_QUICK=1 bash benchmarks/gpu_notebooks.sh notebooks/05_*.ipynb   # 05, quick mode
# Notebook 05 is left out by default: with CUDA it trains pong-fast for up to 30 minutes,
# so it runs there in quick mode only (timed apart, under "quick"). 08 needs Ray, whose wheel
# is large (79 MB) for a machine without internet: `make gpu-ray` packs the part the
# course uses into .whl/ray/ray-trim.tar.xz, unpacked here into /tmp/a3c-ray; without it 08 is
# left out. Where gymnasium/ale-py or nbclient/ipykernel are missing, installs the wheels of
# `make gpu-wheels` ($WHEELS, default .whl/, and .whl/notebooks/) into a private folder, without
# dependencies: the machine's own numpy, matplotlib and torch are used. Nothing else is
# installed or changed.
# The notebooks run in place, and the seconds go to benchmarks/results/notebook_times_cuda.json
# (also copied into the folder $OUT names, if set). Bring back only that file, not the executed
# notebooks (their prose quotes the CPU outputs), then run `python -m benchmarks.notebook_times
# --boxes` to put the seconds in each notebook's "Run time" line.
set -euo pipefail
cd "$(dirname "$0")/.."
source benchmarks/gpu_site.sh
if ! python3 -c "import nbclient, ipykernel" 2>/dev/null; then
    install_wheels "$WHEELS"/notebooks/*.whl
fi
if ! python3 -c "import ray" 2>/dev/null && [ -f "$WHEELS"/ray/ray-trim.tar.xz ]; then
    mkdir -p /tmp/a3c-ray
    tar xJf "$WHEELS"/ray/ray-trim.tar.xz -C /tmp/a3c-ray
    export PYTHONPATH=$PYTHONPATH:/tmp/a3c-ray
fi
if [ $# -eq 0 ]; then
    set -- notebooks/0[1-4]_*.ipynb notebooks/06_*.ipynb notebooks/07_*.ipynb
    if python3 -c "import ray" 2>/dev/null; then
        set -- "$@" notebooks/08_*.ipynb
    fi
fi
python3 -m benchmarks.notebook_times "$@"
if [ -n "${OUT:-}" ]; then  # a folder to collect results in: the _cuda file (plain on a CPU)
    cp benchmarks/results/notebook_times*.json "$OUT"/
fi
