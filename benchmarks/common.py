"""Shared helpers for the benchmarks: the machine, medians, tables, JSON results."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lib.tracking import machine_info

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return machine_info()


def machine_line(m: dict[str, Any]) -> str:
    return f"{m['cores']} cores ({m['cpu']}), GPU: {m['gpu'] or 'none'}, torch {m['torch']}"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A GitHub-style markdown table."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    # one line: the learning results hold every episode's score, and indenting them triples the file
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    return path


def load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / f"{name}.json").read_text())


def train_in_tmp(
    config: Any, device: str = "cpu", scalars: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    """`lib.a3c.train` in a throw-away run folder, without a progress bar.

    `train` turns Ctrl+C into a clean return; here it is raised again, so that an interrupted
    run never counts as a figure and the whole benchmark stops. Pass a dict of TensorBoard
    tags as `scalars` to get each tag's (steps, values) back in it before the folder goes.
    """
    import tempfile

    from lib.a3c import train
    from lib.plots import read_scalars

    with tempfile.TemporaryDirectory() as run_dir:
        summary = train(config, run_dir=run_dir, device=device, progress=False, **kwargs)
        if scalars:
            scalars.update(read_scalars(run_dir, list(scalars)))
    if summary.stop_reason == "interrupted":  # Ctrl+C ends the benchmark, not just this run
        raise KeyboardInterrupt
    return summary
