"""How long each notebook takes to run top to bottom: executes them in place and times them.

    python -m benchmarks.notebook_times                          # every numbered notebook
    python -m benchmarks.notebook_times notebooks/05_a3c_data_parallel.ipynb

Each notebook runs in a fresh kernel with its folder as the working directory, as in
JupyterLab, and its outputs are written back (these are the committed outputs). The seconds
of each, with the machine, go to `benchmarks/results/notebook_times[_cuda].json`, merged with
what the file already holds, and each notebook's "Run time" line quotes them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.common import RESULTS, machine, machine_line, save

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"


def run_notebook(path: Path, timeout: int = 3600) -> float:
    """Execute `path` in place in a fresh kernel; return the seconds it took."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.monotonic()
    client.execute()
    seconds = time.monotonic() - start
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all numbered ones)")
    args = p.parse_args(argv)
    paths = args.paths or sorted(
        q for q in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if not q.name.startswith("00")
    )
    m = machine()
    name = "notebook_times" + ("_cuda" if m["gpu"] else "")
    old = RESULTS / f"{name}.json"
    result = json.loads(old.read_text()) if old.exists() else {"seconds": {}, "machines": {}}
    for path in paths:
        seconds = run_notebook(path.resolve())
        result["seconds"][path.stem] = round(seconds, 1)
        result["machines"][path.stem] = m
        print(f"{path.name}: {seconds:.1f} s", flush=True)
    result["seconds"] = dict(sorted(result["seconds"].items()))
    written = save(name, result)
    print(f"{machine_line(m)}; wrote {written}")
    return result


if __name__ == "__main__":
    main()
