"""Which of the course's packages are missing, and the one line that installs them.

Imported by `lib/__init__.py` before anything else; it checks on import, with the standard
library only, so that a notebook opened in a fresh environment (a hosted notebook service, a
conda env, a cluster node) says what to install instead of failing on `import gymnasium`. The
line names only the missing packages: a torch that is already there, CUDA build and all, is
never replaced.
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IMPORT_NAMES = {
    "torch": "torch",
    "gymnasium": "gymnasium",
    "ale-py": "ale_py",
    "numpy": "numpy",
    "opencv-python": "cv2",
    "matplotlib": "matplotlib",
    "tensorboard": "tensorboard",
    "tqdm": "tqdm",
    "pillow": "PIL",
}
"""What `lib` imports, by package name (jupyterlab and pygame are for people, not for lib)."""


def requirements() -> dict[str, str]:
    """Package name -> requirement (`"gymnasium>=1.0.0,<2"`) from pyproject.toml, where this
    is a checkout; bare names otherwise."""
    try:
        deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return {name: name for name in IMPORT_NAMES}
    by_name = {re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0].lower(): d for d in deps}
    return {name: by_name.get(name, name) for name in IMPORT_NAMES}


def missing_packages() -> list[str]:
    """Requirements of the packages `lib` imports that cannot be found in this environment."""
    reqs = requirements()
    return [reqs[name] for name, module in IMPORT_NAMES.items() if not _importable(module)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def install_line(missing: list[str]) -> str:
    quoted = " ".join(f'"{r}"' for r in missing)
    return f"%pip install {quoted}"


def check_dependencies() -> None:
    """Raise `ImportError` naming the missing packages and the line that installs them."""
    missing = missing_packages()
    if missing:
        line = install_line(missing)
        raise ImportError(
            f"the course's lib needs {len(missing)} package(s) this environment lacks: "
            f"{', '.join(missing)}.\nInstall them (in a notebook cell; in a terminal drop the "
            f"%) with:\n\n    {line}\n\nthen restart the kernel. Packages already installed, "
            "torch included, are left as they are."
        )


check_dependencies()
