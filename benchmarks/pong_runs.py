"""Learning runs side by side: frames and seconds each took to reach a few mean scores.

    python -m benchmarks.pong_runs runs/pong-cand-a runs/pong-cand-b --name pong_candidates
    python -m benchmarks.pong_runs runs/pong-fast --name learning_pong_fast_cpu
    python -m benchmarks.pong_runs runs/a runs/b --name a_against_b --at 2e6 4e6

Each argument is a run folder of `python -m lib.train`. Its curve comes from `curve.json`
(written by the learner at every checkpoint) or, for runs older than that file, from the
episode scores in its TensorBoard log. Runs compared in one call should have shared the
machine alike (run at the same time, or interleaved). The JSON keeps every episode's score in
the format of `benchmarks.learning`, which notebook 6 plots. `--at` adds each run's mean at
the frames given, to compare runs that stopped before a milestone. `--keep` adds the runs to
the results file already there, for runs whose folders are gone (a run given again replaces
its old entry). Each run keeps the machine it ran on (from `curve.json`), since runs kept
together may come from different machines; the file's own `machine` is where it was written.

    python -m benchmarks.pong_runs runs/vlc0.5-s1 --name learning_pong_fast_vlc0.5 --keep
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, load, machine, machine_line, save, table
from lib.checkpoint import load_checkpoint
from lib.tracking import Summary, learning_curve

MILESTONES = (-20.0, -15.0, 0.0, 18.0)  # -20: the run has left the floor of -21


def read_curve(run_dir: Path, window: int = 100) -> list[dict[str, float]]:
    """The run's learning curve points (frames, seconds, score, mean)."""
    if (run_dir / "curve.json").exists():
        return json.loads((run_dir / "curve.json").read_text())["points"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    start = min(e.wall_time for e in acc.Tensors("config/text_summary"))
    events = acc.Scalars("charts/episode_score")
    return learning_curve(
        [e.value for e in events],
        [e.step for e in events],
        [e.wall_time - start for e in events],
        window,
    )


def reached(points: list[dict[str, float]], score: float, window: int) -> dict[str, Any]:
    """The first point where the mean of the last `window` scores reached `score`."""
    for i, p in enumerate(points):
        if i + 1 >= window and p["mean"] >= score:
            return {"frames": p["frames"], "seconds": p["seconds"], "episodes": i + 1}
    return {"frames": None, "seconds": None, "episodes": None}


def mean_at(points: list[dict[str, float]], frames: float, window: int) -> float | None:
    """The mean of the last `window` scores as the run stood at `frames` (None before a full
    window, or past the run's end)."""
    if not points or points[-1]["frames"] < frames:
        return None
    done = [i for i, p in enumerate(points) if p["frames"] <= frames]
    return points[done[-1]]["mean"] if done and done[-1] + 1 >= window else None


def run_machine(run_dir: Path) -> dict[str, Any]:
    """The machine the run's last piece ran on: `curve.json`'s, or this one for runs older than
    that file or its `machine` (whose folders never left the machine that ran them)."""
    if (run_dir / "curve.json").exists():
        return json.loads((run_dir / "curve.json").read_text()).get("machine") or machine()
    return machine()


def final_entropy(run_dir: Path, entropy_beta: float) -> float | None:
    """The policy's entropy in nats at the run's last logged update (None if not logged).

    TensorBoard's `losses/entropy` is the loss term, beta * sum_a pi log pi = -beta * H.
    """
    from lib.plots import read_scalars

    try:
        values = read_scalars(run_dir, ["losses/entropy"])["losses/entropy"][1]
    except KeyError:
        return None
    if not len(values) or not entropy_beta:
        return None
    return round(float(-values[-1] / entropy_beta), 3)


def marks(points: list[dict[str, float]], window: int, at: Sequence[float] = ()) -> dict[str, Any]:
    """A curve's milestones, and its mean at each of the frames `at`."""
    return {
        "milestones": {f"{m:g}": reached(points, m, window) for m in MILESTONES},
        "mean_at": {f"{f / 1e6:g}M": mean_at(points, f, window) for f in at},
    }


def describe(run_dir: Path, at: Sequence[float] = ()) -> dict[str, Any]:
    """The run's config, summary, milestones, curve, and its mean at each of the frames `at`."""
    state = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    config = state["config"]
    window = int(config.get("score_window", 100))
    points = read_curve(run_dir, window)
    summary = (
        Summary.load(run_dir / "summary.json").__dict__
        if (run_dir / "summary.json").exists()
        else None
    )
    return {
        "run": run_dir.name,
        "machine": run_machine(run_dir),
        "config": config,
        "summary": summary,
        **marks(points, window, at),
        "solved": bool(summary and summary["solved"]),
        "entropy_nats_last": final_entropy(run_dir, float(config.get("entropy_beta", 0.0))),
        "scores": [p["score"] for p in points],
        "score_frames": [p["frames"] for p in points],
        "score_seconds": [p["seconds"] for p in points],
        "points": points,
    }


def median_frames_to_solve(runs: Sequence[dict[str, Any]]) -> float:
    """The runs' median frames to solve, an unsolved run counted as never solving (inf): leaving
    it out would flatter the setting that failed to solve."""
    return statistics.median(r["summary"]["frames"] if r["solved"] else math.inf for r in runs)


def merge(
    old: list[dict[str, Any]],
    new: list[dict[str, Any]],
    at: Sequence[float] = (),
    old_machine: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The old runs in their order, each replaced by the new run of the same name, then the
    remaining new runs. Each run's milestones and `mean_at` (at the frames `at`) are read again
    from its curve, so that old and new runs list the same ones. An old run recorded before runs
    kept their own machine gets `old_machine`, the machine its file was written on."""
    if old_machine is not None:
        old = [{"machine": old_machine} | r for r in old]
    by_name = {r["run"]: r for r in new}
    runs = [by_name.pop(r["run"], r) for r in old] + list(by_name.values())
    for r in runs:
        r |= marks(r["points"], int(r["config"].get("score_window", 100)), at)
    return runs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pong_runs", description=__doc__)
    p.add_argument("run_dirs", nargs="+", type=Path)
    p.add_argument("--name", required=True, help="results file name, no .json")
    p.add_argument("--note", default="", help="how the runs shared the machine, in words")
    p.add_argument("--at", nargs="*", type=float, default=[], help="frames to report means at")
    p.add_argument(
        "--keep", action="store_true", help="keep the other runs already in the results file"
    )
    args = p.parse_args(argv)
    runs = [describe(d, args.at) for d in args.run_dirs]
    if args.keep and (RESULTS / f"{args.name}.json").exists():
        old = load(args.name)
        runs = merge(old["runs"], runs, args.at, old["machine"])
    m = machine()
    rows = []
    for r in runs:
        row = {"run": r["run"], "cpu": r["machine"]["cpu"], "episodes": len(r["scores"])}
        last = r["points"][-1] if r["points"] else {"frames": 0, "seconds": 0, "mean": None}
        row |= {
            "frames": last["frames"],
            "minutes": last["seconds"] / 60,
            "last mean": last["mean"],
        }
        for name, hit in r["milestones"].items():
            row[f"frames to {name}"] = hit["frames"] if hit["frames"] is not None else "-"
            row[f"min to {name}"] = hit["seconds"] / 60 if hit["seconds"] is not None else "-"
        for frames, mean in r["mean_at"].items():
            row[f"mean at {frames}"] = "-" if mean is None else mean
        rows.append(row)
    print(f"machine: {machine_line(m)}")
    print(table(rows, list(rows[0])))
    print(f"wrote {save(args.name, {'machine': m, 'note': args.note, 'runs': runs})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
