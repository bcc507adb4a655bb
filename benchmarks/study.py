"""Learning rate and entropy bonus: a small grid of A3C runs on CartPole, over seeds.

    python -m benchmarks.study                                   # 3 x 3 grid, 3 seeds
    python -m benchmarks.study --lr 0.002 0.008 --beta 0 0.01 --seeds 1 --max-frames 50000

Each run trains the `cartpole` preset with one learning rate and one entropy beta until it
solves (mean of the last 100 episodes >= 475) or has seen `--max-frames`. It records the
frames to solve, the policy's entropy over training (TensorBoard's `charts/policy_entropy`,
in nats), the running score and the *falls*: times the mean of 20 episodes
dropped below `FALL_LOW` after having stood above `FALL_HIGH`, the collapses of notebook 5.
Notebook 6 plots the result.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from benchmarks.common import machine, machine_line, median, save, table
from benchmarks.learning import curve, run_a3c
from lib import get_preset
from lib.tracking import running_mean

FALL_WINDOW = 20
"""Episodes in the running mean that falls are read from."""
FALL_HIGH, FALL_LOW = 300.0, 100.0
"""A fall: the running mean goes below FALL_LOW after standing at FALL_HIGH or more."""


def count_falls(
    scores: Sequence[float], window: int = FALL_WINDOW, high=FALL_HIGH, low=FALL_LOW
) -> int:
    """How often the `window`-episode running mean of `scores` fell from >= high to < low.

    After a fall, the mean must climb to `high` again before another fall counts.
    """
    falls, up = 0, False
    for m in running_mean(scores, window)[window - 1 :]:
        if m >= high:
            up = True
        elif up and m < low:
            falls, up = falls + 1, False
    return falls


def study_run(config) -> dict:
    """One run of the grid: `learning.run_a3c`'s record, plus entropy, falls and a score curve."""
    run = run_a3c(config, tags=("charts/policy_entropy",))
    scores = run.pop("scores")
    frames = run.pop("score_frames")
    run.pop("score_seconds")
    entropy = run.pop("curves")["charts/policy_entropy"]
    mean = running_mean(scores, FALL_WINDOW)
    return run | {
        "falls": count_falls(scores),
        "entropy": entropy,
        "score_mean20": curve(np.asarray(frames), mean, points=120) if scores else None,
        "entropy_last": entropy["values"][-1] if entropy["values"] else None,
    }


def run_study(
    lrs: Sequence[float], betas: Sequence[float], seeds: int, max_frames: int
) -> tuple[dict[str, list[dict]], list[dict]]:
    """Every (learning rate, beta) cell for every seed: the runs by cell, and a row per cell."""
    base = get_preset("cartpole", max_frames=max_frames)
    grid = list(itertools.product(lrs, betas))
    runs: dict[str, list[dict]] = {cell_name(lr, beta): [] for lr, beta in grid}
    for seed in range(seeds):  # seeds outermost: a drift of the machine hits every cell
        for lr, beta in grid:
            config = replace(base, learning_rate=lr, entropy_beta=beta, seed=seed)
            run = study_run(config)
            runs[cell_name(lr, beta)].append(run)
            print(
                f"lr={lr:g} beta={beta:g} seed={seed}: solved={run['solved']} "
                f"frames={run['frames']:,} falls={run['falls']} "
                f"entropy at the end={run['entropy_last']}",
                flush=True,
            )
    rows = []
    for (lr, beta), rs in zip(grid, runs.values(), strict=True):
        solved = [r["frames"] for r in rs if r["solved"]]
        rows.append(
            {
                "learning rate": f"{lr:g}",  # as given: a table would round 0.0005 to 0.00
                "entropy beta": f"{beta:g}",
                "solved": f"{len(solved)}/{len(rs)}",
                "frames to solve (median of solved)": median(solved) if solved else "",
                "falls (all seeds)": sum(r["falls"] for r in rs),
                "entropy at the end (median)": median(
                    [r["entropy_last"] for r in rs if r["entropy_last"] is not None]
                ),
            }
        )
    return runs, rows


def cell_name(lr: float, beta: float) -> str:
    return f"lr={lr:g} beta={beta:g}"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lr", type=float, nargs="+", default=[0.0005, 0.002, 0.008])
    p.add_argument("--beta", type=float, nargs="+", default=[0.0, 0.01, 0.05])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--max-frames", type=int, default=1_500_000, help="the budget of each run")
    p.add_argument("--name", default="study_cartpole", help="results file name, no .json")
    args = p.parse_args(argv)
    base = get_preset("cartpole", max_frames=args.max_frames)
    runs, rows = run_study(args.lr, args.beta, args.seeds, args.max_frames)
    m = machine()
    result = {
        "machine": m,
        "config": base.to_dict(),
        "lrs": args.lr,
        "betas": args.beta,
        "seeds": args.seeds,
        "max_frames": args.max_frames,
        "fall": {"window": FALL_WINDOW, "high": FALL_HIGH, "low": FALL_LOW},
        "runs": runs,
        "rows": rows,
    }
    path = save(args.name, result)
    print(f"\ncartpole, {args.seeds} seeds, budget {args.max_frames:,} frames; {machine_line(m)}\n")
    print(table(rows, list(rows[0])))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
