"""`pip install -e .` into an environment that already has a torch in range leaves that torch alone.

This is the point of stating ranges in pyproject.toml (and the exact pins in requirements.lock):
a conda env, a hosted notebook or a GPU image keeps the torch build it came with. The test makes
a fresh venv (no system site-packages), installs the lock's torch into it, then asks pip what
`pip install -e <repo>` would do, without the lock. pip's `--dry-run --report` lists everything it
would install: the project and its other dependencies, but not torch.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def locked_torch() -> str:
    text = (ROOT / "requirements.lock").read_text()
    return re.search(r"^torch==(\S+)$", text, re.M).group(1)


def pip(venv: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", *args],
        capture_output=True,
        text=True,
        timeout=400,
        env=env,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def would_install(venv: Path, report: Path, *args: str) -> dict[str, str]:
    pip(venv, "install", "--dry-run", "--report", str(report), *args)
    items = json.loads(report.read_text())["install"]
    return {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"] for i in items}


@pytest.mark.slow
def test_pip_install_e_keeps_the_torch_already_there(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    torch = locked_torch()
    pip(venv, "install", "--quiet", "--no-compile", f"torch=={torch}")  # no .pyc: 14 s less
    listed = {
        p["name"].lower(): p["version"]
        for p in json.loads(pip(venv, "list", "--format", "json").stdout)
    }
    assert listed["torch"].split("+")[0] == torch

    # The report does list torch when pip means to (re)install it ...
    forced = would_install(
        venv, tmp_path / "forced.json", "--force-reinstall", "--no-deps", f"torch=={torch}"
    )
    assert "torch" in forced

    # ... and `pip install -e <repo>` resolves every dependency but keeps the torch it finds.
    plan = would_install(venv, tmp_path / "plan.json", "-e", str(ROOT))
    assert "torch" not in plan, plan
    assert {"a3c-course", "gymnasium", "ale-py", "numpy"} <= set(plan), plan
