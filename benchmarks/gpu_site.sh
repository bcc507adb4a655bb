# Sourced by benchmarks/gpu_*.sh, from the repository root: where gymnasium or ale-py is missing
# (a GPU machine without internet), installs the wheels of `make gpu-wheels` ($WHEELS, default
# .whl/) into /tmp/a3c-site, without dependencies, and puts that folder and the repository on
# PYTHONPATH. Nothing else on the machine is installed or changed.
WHEELS=${WHEELS:-.whl}
SITE=/tmp/a3c-site
install_wheels() {  # install_wheels WHEEL_FILE...: into $SITE, or say how to get them
    if ! ls "$@" >/dev/null 2>&1; then
        echo "no wheels at $WHEELS: run \`make gpu-wheels\` where there is internet, and bring .whl/" >&2
        exit 2
    fi
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$@"
}
export PYTHONPATH=.:$SITE${PYTHONPATH:+:$PYTHONPATH}
if ! python3 -c "import gymnasium, ale_py" 2>/dev/null; then
    install_wheels "$WHEELS"/*.whl
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
