#!/usr/bin/env bash
# Ray for notebook 08 on a GPU machine without internet, packed small:
#   make gpu-ray                        # downloads the lock's Ray wheel, then runs this on it
#   bash benchmarks/gpu_ray.sh RAY_WHEEL   # writes .whl/ray/ray-trim.tar.xz
# Ray's cp312 wheel is 79 MB. Unpacked, it leaves out the parts the
# course never imports (the Java jars, RLlib, Serve, Data, Tune, Train); the rest, packed with
# xz, is about 30 MB. gpu_notebooks.sh unpacks it into /tmp/a3c-ray. Ray's own dependencies
# that such a machine may lack come with `make gpu-wheels` (jsonschema and its three).
set -euo pipefail
wheel=$(realpath "$1")
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" - "$wheel" "$tmp/ray" <<'PY'  # unzip, keeping the modes (raylet runs)
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as zf:
    for info in zf.infolist():
        path = zf.extract(info, sys.argv[2])
        if info.external_attr >> 16:
            os.chmod(path, info.external_attr >> 16 & 0o777)
PY
rm -rf "$tmp"/ray/ray/{jars,rllib,serve,data,tune,train}
mkdir -p .whl/ray
tar cf - -C "$tmp/ray" . | xz -T0 -6 >.whl/ray/ray-trim.tar.xz
du -sh .whl/ray/ray-trim.tar.xz
