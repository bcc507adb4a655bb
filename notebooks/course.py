"""`import course` at the top of a notebook: puts the course's `lib` on the path, installed or not.

It looks for `lib/` in the notebook's folder and the folders above it. Spawned workers inherit
the path. If a package the course needs is missing, `import lib` names it, with the one
`%pip install` line that adds it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = next(
    (p for p in (Path.cwd(), *Path.cwd().parents) if (p / "lib" / "deps.py").is_file()), None
)
if ROOT is None:
    raise FileNotFoundError(
        f"no lib/ in {Path.cwd()} or above: open the course's notebooks/ folder"
    )
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import lib  # noqa: E402,F401  checks the dependencies
