"""`pip install -e .` into an environment that already has a torch in range leaves that torch alone.

This is the point of stating ranges in pyproject.toml (and the exact pins in requirements.lock):
a conda env, a hosted notebook or a GPU image keeps the torch build it came with. The test makes
a fresh venv (no system site-packages), puts the lock's torch into it, then asks pip what
`pip install -e <repo>` would do, without the lock. pip's `--dry-run --report` lists everything it
would install: the project and its other dependencies, but not torch.

The torch it puts there is this environment's own (`make` installs the lock's), linked one
top-level folder at a time rather than installed again: pip sees the same installed distribution,
and the test is spared unpacking about a gigabyte.
"""

import importlib.metadata
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


def link_torch(venv: Path) -> None:
    """Put this interpreter's torch into `venv`: a link for each top-level folder it installed
    (torch, its .dist-info, torchgen, functorch). Scripts outside site-packages are left out."""
    dist = importlib.metadata.distribution("torch")
    here = Path(dist.locate_file(""))
    site = next((venv / "lib").glob("python*/site-packages"))
    for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
        (site / top).symlink_to(here / top)


@pytest.mark.slow
def test_pip_install_e_keeps_the_torch_already_there(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    torch = locked_torch()
    assert importlib.metadata.version("torch").split("+")[0] == torch, "run `make install`"
    link_torch(venv)
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

    # ... the lock's own line keeps it (a `2.13.0+cpu` build satisfies `torch==2.13.0`) ...
    pinned = would_install(venv, tmp_path / "pinned.json", "--no-deps", f"torch=={torch}")
    assert "torch" not in pinned, pinned

    # ... and `pip install -e <repo>` resolves every dependency but keeps the torch it finds.
    plan = would_install(venv, tmp_path / "plan.json", "-e", str(ROOT))
    assert "torch" not in plan, plan
    assert {"a3c-course", "gymnasium", "ale-py", "numpy"} <= set(plan), plan
