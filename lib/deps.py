"""Which of the course's packages are missing (or too old), and the one line that installs them.

Imported by `lib/__init__.py` before anything else; it checks on import, with the standard
library only, so that a notebook opened in a fresh environment (a hosted notebook service, a
conda env, a cluster node) says what to install instead of failing on `import gymnasium`. The
line names only the missing packages: a torch that is already there, CUDA build and all, is
never replaced.
"""

from __future__ import annotations

import importlib.metadata
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

VERSION_CHECKED = ("gymnasium", "ale-py")
"""Packages whose installed version must be in range too: older ones import, then break `lib`
(gymnasium 0.29's API, ale-py without its ROMs). torch is not checked: older CUDA builds run
the course (torch 2.11 on an H100 machine), though the range does not claim them."""


def requirements() -> dict[str, str]:
    """Package name -> requirement (`"gymnasium>=1.1.0,<2"`) from pyproject.toml, where this
    is a checkout; bare names otherwise."""
    try:
        deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return {name: name for name in IMPORT_NAMES}
    by_name = {re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0].lower(): d for d in deps}
    return {name: by_name.get(name, name) for name in IMPORT_NAMES}


def missing_packages() -> list[tuple[str, str | None]]:
    """The packages `lib` imports that this environment lacks, or (`VERSION_CHECKED`) has at a
    version out of range: (requirement, the version installed, or None where it is missing)."""
    reqs = requirements()
    found: list[tuple[str, str | None]] = []
    for name, module in IMPORT_NAMES.items():
        if not _importable(module):
            found.append((reqs[name], None))
        elif name in VERSION_CHECKED:
            try:
                version = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
            if not in_range(version, reqs[name]):
                found.append((reqs[name], version))
    return found


def _release(version: str) -> tuple[int, ...]:
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(x) for x in match.group().split(".")) if match else ()


def in_range(version: str, requirement: str) -> bool:
    """Whether `version` ("0.29.1", "2.13.0+cpu") meets `requirement`'s specifiers
    ("gymnasium>=1.1.0,<2"): by `packaging` where it is installed, else by release numbers
    for the operators >=, <=, <, >, ==, != and ~=."""
    try:
        from packaging.requirements import Requirement
        from packaging.version import InvalidVersion, Version
    except ImportError:
        return _in_range_by_release(version, requirement)
    try:
        return Requirement(requirement).specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return _in_range_by_release(version, requirement)


def _in_range_by_release(version: str, requirement: str) -> bool:
    have = _release(version)
    for op, bound in re.findall(r"(>=|<=|==|!=|~=|<|>)\s*([\w.]+)", requirement):
        want = _release(bound)
        width = max(len(have), len(want))
        a, b = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
        compatible = a >= b and a[: len(want) - 1] == b[: len(want) - 1]  # ~=: same prefix
        ok = {">=": a >= b, "<=": a <= b, "==": a == b, "!=": a != b, "<": a < b, ">": a > b}
        if not (compatible if op == "~=" else ok[op]):
            return False
    return True


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
    problems = missing_packages()
    if problems:
        named = [
            req if version is None else f"{req} ({version} is installed)"
            for req, version in problems
        ]
        line = install_line([req for req, _ in problems])
        raise ImportError(
            f"the course's lib needs {len(problems)} package(s) this environment lacks or has "
            f"at a version it cannot use: {', '.join(named)}.\nInstall them (in a notebook cell; "
            f"in a terminal drop the %) with:\n\n    {line}\n\nthen restart the kernel. "
            "Packages already installed, torch included, are left as they are."
        )


check_dependencies()
