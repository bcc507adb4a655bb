"""How long each notebook takes to run top to bottom: executes them in place and times them.

    python -m benchmarks.notebook_times                          # every numbered notebook
    python -m benchmarks.notebook_times notebooks/05_a3c_data_parallel.ipynb
    python -m benchmarks.notebook_times --boxes     # only rewrite the "Run time" lines

Each notebook runs in a fresh kernel with its folder as the working directory, as in
JupyterLab, and its outputs are written back (these are the committed outputs). The seconds
of each, with the machine, go to `benchmarks/results/notebook_times[_cuda].json`, merged with
what the file already holds, and each notebook's "Run time" line quotes them: `--boxes`
rewrites those lines from both files (after a GPU machine sent back its `_cuda` file). A run in
quick mode (`A3C_QUICK=1`) is kept apart, under "quick": a GPU machine can run a notebook whose
full run outlasts one call that way, to show it runs through, but it is not the notebook's time.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from benchmarks.common import RESULTS, machine, machine_line, save
from lib.config import quick_mode

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


RUN_TIME = re.compile(
    r"> \*\*Run time:\*\* [\d,]+ s on an? \d+-core CPU"
    r"(?:, [\d,]+ s (?:in quick mode )?on an? [^,;.]+ GPU machine|; not yet measured on a GPU)\."
)
"""The measured part of a "Run time" line; what follows it on the line is the notebook's own.
How the times are measured is said once, in benchmarks/README.md."""


def _a(name: str) -> str:
    """The article for a name read aloud: "an H200", "a T4", "an 8-core"."""
    return "an" if name[:1].upper() in "AEFHILMNORSX8" else "a"


def _s(seconds: float) -> str:
    return f"{max(1, round(seconds)):,} s"


def run_time_line(stem: str, cpu: dict, gpu: dict) -> str:
    """The measured part of `stem`'s "Run time" line, from `notebook_times[_cuda].json`."""
    cores = str(cpu["machines"][stem]["cores"])
    line = f"> **Run time:** {_s(cpu['seconds'][stem])} on {_a(cores)} {cores}-core CPU"
    for part, words in ((gpu, ""), (gpu.get("quick", {}), "in quick mode ")):
        if stem in part.get("seconds", {}):
            name = part["machines"][stem]["gpu"].removeprefix("NVIDIA ")
            return line + f", {_s(part['seconds'][stem])} {words}on {_a(name)} {name} GPU machine."
    return line + "; not yet measured on a GPU."


def record(result: dict, stem: str, seconds: float, m: dict, quick: bool) -> None:
    """Put one notebook's seconds and machine in `result`: under "quick" for a quick-mode run,
    so that it never stands in for the full run's time."""
    part = result.setdefault("quick", {"seconds": {}, "machines": {}}) if quick else result
    part["seconds"][stem] = round(seconds, 1)
    part["machines"][stem] = m
    part["seconds"] = dict(sorted(part["seconds"].items()))


def timings(results: Path = RESULTS) -> tuple[dict, dict]:
    """The committed timings: the CPU's, and the GPU's ({} until a GPU machine has sent them)."""
    cpu = json.loads((results / "notebook_times.json").read_text())
    gpu_path = results / "notebook_times_cuda.json"
    gpu = json.loads(gpu_path.read_text()) if gpu_path.exists() else {}
    return cpu, gpu


def write_boxes(paths: list[Path], results: Path = RESULTS) -> list[Path]:
    """Rewrite each notebook's "Run time" line from the committed timings; return those changed."""
    import nbformat

    cpu, gpu = timings(results)
    changed = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        box = nb.cells[1]
        if not RUN_TIME.search(box.source):
            raise ValueError(f'{path.name}: its second cell has no "Run time" line to rewrite')
        line = run_time_line(path.stem, cpu, gpu)
        source = RUN_TIME.sub(lambda _, line=line: line, box.source, count=1)
        if source != box.source:
            box.source = source
            nbformat.write(nb, path)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all numbered ones)")
    p.add_argument(
        "--boxes",
        action="store_true",
        help='run nothing: rewrite the "Run time" lines from the committed timings',
    )
    args = p.parse_args(argv)
    paths = args.paths or sorted(
        q for q in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if not q.name.startswith("00")
    )
    if args.boxes:
        changed = write_boxes(paths)
        print(f"rewrote the Run time line of {len(changed)} notebook(s)")
        return {"changed": [str(c) for c in changed]}
    m = machine()
    name = "notebook_times" + ("_cuda" if m["gpu"] else "")
    old = RESULTS / f"{name}.json"
    result = json.loads(old.read_text()) if old.exists() else {"seconds": {}, "machines": {}}
    quick = quick_mode()
    for path in paths:
        seconds = run_notebook(path.resolve())
        record(result, path.stem, seconds, m, quick)
        print(f"{path.name}: {seconds:.1f} s" + (" (quick mode)" if quick else ""), flush=True)
    written = save(name, result)
    print(f"{machine_line(m)}; wrote {written}")
    return result


if __name__ == "__main__":
    main()
