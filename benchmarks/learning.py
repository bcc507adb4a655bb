"""Learning speed: how fast A3C and single-process A2C reach a score, in frames and seconds.

    python -m benchmarks.learning --preset cartpole --seeds 3
    python -m benchmarks.learning --preset pong --seconds 900      # a fixed wall-clock budget
    python -m benchmarks.learning --variant data grad hogwild --skip-a2c --seeds 5 \
        --name learning_cartpole_variants
    python -m benchmarks.learning --preset pong-fast --variant data hogwild --skip-a2c \
        --seeds 1 --seconds 1800 --resume CHECKPOINT --name learning_pong_designs

With a preset that is expected to be solved here (cartpole), each seed runs until the
preset's stop score (mean of the last 100 episodes); otherwise each run gets `--seconds` of
wall clock and we report the mean score it reached. Score curves (over frames and over
seconds) are saved for notebook 6.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from benchmarks.common import machine, machine_line, median, save, table, train_in_tmp
from lib import get_preset
from lib.a3c import Progress
from lib.sync_a2c import train_a2c


def mean_last(scores: list[float], n: int = 100) -> float:
    return float(np.mean(scores[-n:])) if scores else math.nan


def _row(solved, frames, seconds, fps, scores, score_frames, score_seconds) -> dict:
    return {
        "solved": solved,
        "frames": frames,
        "seconds": seconds,
        "steady_fps": fps,
        "mean_score": mean_last(scores),
        "scores": scores,
        "score_frames": score_frames,
        "score_seconds": [round(t, 2) for t in score_seconds],
    }


LAG_TAGS = ("perf/policy_lag_mean", "perf/policy_lag_max", "perf/bootstrap_age")


def curve(steps: np.ndarray, values: np.ndarray, points: int = 60) -> dict[str, list]:
    """At most `points` evenly spaced samples of a TensorBoard series, for plots."""
    idx = np.unique(np.linspace(0, len(steps) - 1, min(points, len(steps))).astype(int))
    return {"frames": steps[idx].tolist(), "values": np.round(values[idx], 3).tolist()}


def run_a3c(config, tags: Sequence[str] = (), resume: str | None = None) -> dict:
    """One A3C run (from the checkpoint `resume`, if given): its row, with the policy lag, and
    a `curves` entry for each of `tags`."""
    last: list[Progress] = []
    grad_tags = ("perf/gradient_lag_mean",) if config.variant == "grad" else ()
    logged: dict = dict.fromkeys((*LAG_TAGS, *grad_tags, *tags))
    s = train_in_tmp(
        config,
        device="auto",
        scalars=logged,
        callback=lambda p: last.__setitem__(slice(None), [p]),
        callback_seconds=5.0,
        resume=resume,
    )
    p = last[0]
    lag_mean, lag_max, age = (logged[t][1] for t in LAG_TAGS)
    return (
        _row(
            s.solved,
            s.frames,
            s.wall_seconds,
            s.steady_fps,
            p.scores,
            p.score_frames,
            p.score_seconds,
        )
        | {
            "updates": s.updates,
            "bytes_per_update": s.bytes_per_update,
            "policy_lag_mean": round(float(lag_mean.mean()), 2),
            "policy_lag_max": int(lag_max.max()),
            "bootstrap_age_mean": round(float(age.mean()), 2),
            "policy_lag_curve": curve(*logged["perf/policy_lag_mean"]),
        }
        | ({"curves": {tag: curve(*logged[tag]) for tag in tags}} if tags else {})
        | (
            {"gradient_lag_mean": round(float(logged["perf/gradient_lag_mean"][1].mean()), 2)}
            if grad_tags
            else {}
        )
    )


def start_of(resume: str | None) -> dict | None:
    """Where every run began: the checkpoint's frames, updates and mean score (None: afresh)."""
    if resume is None:
        return None
    from lib.checkpoint import load_checkpoint

    state = load_checkpoint(resume)
    scores = state["scores"]
    mean = round(sum(scores) / len(scores), 2) if scores else None
    return {"frames": state["frames"], "updates": state["updates"], "mean_score": mean}


def run_a2c(config) -> dict:
    r = train_a2c(config, max_frames=config.max_frames or 10**12)
    return _row(
        r.solved, r.frames, r.wall_seconds, r.steady_fps, r.scores, r.score_frames, r.score_seconds
    )


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cartpole")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seconds", type=float, help="fixed wall-clock budget per run")
    p.add_argument("--processes", type=int)
    p.add_argument("--envs", type=int)
    p.add_argument("--worker-device", choices=("learner", "cpu"))
    p.add_argument(
        "--variant",
        nargs="+",
        choices=("data", "grad", "hogwild"),
        default=["data"],
        help="A3C's variants to run, taking turns for each seed",
    )
    p.add_argument(
        "--resume",
        help="a checkpoint every run starts from (the same start for every variant)",
    )
    p.add_argument("--skip-a2c", action="store_true")
    p.add_argument("--name", help="results file name, no .json (default learning_<preset>)")
    args = p.parse_args(argv)
    base = get_preset(
        args.preset,
        processes=args.processes,
        envs_per_process=args.envs,
        worker_device=args.worker_device,
    )
    keys = {"data": "a3c", "grad": "a3c_grad", "hogwild": "a3c_hogwild"}
    runs: dict[str, list[dict]] = {keys[v]: [] for v in args.variant} | {"a2c": []}
    if args.seconds:
        base = replace(base, max_seconds=args.seconds, max_frames=0)
    for seed in range(args.seeds):
        config = replace(base, seed=seed)
        for variant in args.variant:
            runs[keys[variant]].append(
                run_a3c(replace(config, variant=variant), resume=args.resume)
            )
        if not args.skip_a2c:
            runs["a2c"].append(run_a2c(config))
    rows = []
    labels = {
        "a3c": "A3C",
        "a3c_grad": "A3C, gradient-parallel",
        "a3c_hogwild": "A3C, Hogwild (the paper's)",
        "a2c": "single-process A2C",
    }
    for name, label in labels.items():
        rs = runs.get(name)
        if not rs:
            continue
        rows.append(
            {
                "what": label,
                "solved": f"{sum(r['solved'] for r in rs)}/{len(rs)}",
                "frames (median)": median([r["frames"] for r in rs]),
                "seconds (median)": median([r["seconds"] for r in rs]),
                "frames/s (median)": median([r["steady_fps"] for r in rs]),
                "mean score, last 100 (median)": median([r["mean_score"] for r in rs]),
            }
            | (
                {
                    "policy lag (median of means)": median([r["policy_lag_mean"] for r in rs]),
                    "KB per update (median)": round(
                        median([r["bytes_per_update"] for r in rs]) / 1024, 1
                    ),
                }
                if name != "a2c"
                else {}
            )
        )
    m = machine()
    result = {
        "machine": m,
        "preset": base.preset,
        "config": base.to_dict(),
        "seconds_budget": args.seconds,
        "start": start_of(args.resume),
        "runs": runs,
        "rows": rows,
    }
    name = args.name or f"learning_{base.preset}" + ("_cuda" if m["gpu"] else "")
    path = save(name, result)
    budget = f"{args.seconds:.0f} s budget" if args.seconds else f"to {base.stop_score:g}"
    print(
        f"\n{base.preset} {budget}, {base.processes} workers x {base.envs_per_process} envs, "
        f"{args.seeds} seeds; {machine_line(m)}\n"
    )
    print(table(rows, list(rows[0])))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
