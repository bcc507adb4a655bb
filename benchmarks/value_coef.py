"""The value term's weight on CartPole: value_loss_coef 1.0 (the reference code's) against 0.5.

    python -m benchmarks.value_coef                 # A2C: 2 x 2 x 2 cells x 10 seeds; A3C: 2 x 5
    python -m benchmarks.value_coef --skip-a3c      # one half (the other kept from the file)
    python -m benchmarks.value_coef --coef 1.0 0.5 --lr 0.002 --reuse-values 1 --seeds 2 \
        --a3c-seeds 1 --max-frames 50000 --name value_coef_quick

Each run trains the `cartpole` preset until it solves or has seen `--max-frames`, and counts
its falls (`benchmarks.study.count_falls`). Single-process A2C (`lib.sync_a2c.train_a2c`, one
thread) runs every value_loss_coef x learning rate x reuse_values cell, `--jobs` runs at a time;
A3C (`lib.a3c.train`, the preset's workers, a one-thread learner) each value_loss_coef, a third
as many at a time. `--skip-a2c` or `--skip-a3c` keeps that half of an existing file of that name.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from itertools import product

from benchmarks.common import load, machine, machine_line, save, table, train_in_tmp
from benchmarks.learning import mean_last
from benchmarks.study import FALL_HIGH, FALL_LOW, FALL_WINDOW, count_falls
from lib import get_preset
from lib.config import usable_cores
from lib.sync_a2c import train_a2c


def record(seed: int, solved: bool, frames: int, scores: list[float], seconds: float) -> dict:
    """One run as the results file keeps it: what the table is made of, not every score."""
    return {
        "seed": seed,
        "solved": solved,
        "frames": frames,
        "falls": count_falls(scores),
        "last100": round(mean_last(scores), 2),
        "episodes": len(scores),
        "seconds": round(seconds, 1),
    }


def a2c_run(coef: float, lr: float, reuse: bool, seed: int, max_frames: int) -> dict:
    """One single-process A2C run on one core: the pool runs one per core."""
    config = get_preset(
        "cartpole", value_loss_coef=coef, learning_rate=lr, reuse_values=reuse, seed=seed
    )
    r = train_a2c(config, max_frames, device="cpu", threads=1)
    return record(seed, r.solved, r.frames, r.scores, r.wall_seconds)


def a3c_run(coef: float, seed: int, max_frames: int) -> dict:
    """One A3C run; the progress report at its end holds every score."""
    config = get_preset(
        "cartpole", value_loss_coef=coef, seed=seed, max_frames=max_frames, learner_threads=1
    )
    end: dict = {}
    s = train_in_tmp(config, device="cpu", callback=lambda p: end.update(p=p), callback_seconds=1e6)
    return record(seed, s.solved, s.frames, end["p"].scores, s.wall_seconds)


def words(values: object, sep: str = " ") -> str:
    """A list as a command line or a sentence gives it; anything else as str."""
    return sep.join(map(str, values)) if isinstance(values, list) else str(values)


def run_key(cell: dict) -> str:
    """A cell's name in the file's runs, e.g. "value_loss_coef=0.5 learning_rate=0.002"."""
    return " ".join(f"{k}={v}" for k, v in cell.items())


def row(cell: dict, records: list[dict]) -> dict:
    """A table row: how many solved, the solved runs' frames, and the falls of all runs."""
    solved = [r["frames"] for r in records if r["solved"]]
    return cell | {
        "solved": f"{len(solved)}/{len(records)}",
        # statistics.median: a frame count stays an int when the number of runs is odd
        "frames to solve (median)": statistics.median(solved) if solved else None,
        "frames to solve (min)": min(solved, default=None),
        "frames to solve (max)": max(solved, default=None),
        "falls (all seeds)": sum(r["falls"] for r in records),
        "runs with a fall": sum(r["falls"] > 0 for r in records),
    }


def shown(column: str, value: object) -> str:
    """A row's value as the printed table shows it: 0.001 as given, not rounded to 0.00."""
    if value is None:  # no run solved
        return ""
    return f"{value:,.0f}" if column.startswith("frames") else str(value)


def sweep(run: Callable[..., dict], cells: list[dict], seeds: int, frames: int, jobs: int) -> dict:
    """`run` for every cell and seed, `jobs` at a time in spawned processes: rows and runs."""
    keys = [run_key(c) for c in cells]
    runs: dict[str, list[dict]] = {k: [] for k in keys}
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
        # seeds outermost: a drift of the machine hits every cell alike
        tasks = {
            pool.submit(run, *c.values(), seed, frames): k
            for seed in range(seeds)
            for c, k in zip(cells, keys, strict=True)
        }
        try:
            for f in as_completed(tasks):
                runs[tasks[f]].append(f.result())
                print(tasks[f], f.result(), flush=True)
        except BaseException:
            pool.shutdown(cancel_futures=True)  # one failed run ends the sweep
            raise
    runs = {k: sorted(rs, key=lambda r: r["seed"]) for k, rs in runs.items()}
    return {"rows": [row(c, runs[k]) for c, k in zip(cells, keys, strict=True)], "runs": runs}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--coef", type=float, nargs="+", default=[1.0, 0.5], help="value_loss_coef")
    p.add_argument("--lr", type=float, nargs="+", default=[0.002, 0.001], help="A2C only")
    p.add_argument("--reuse-values", type=int, nargs="+", choices=(0, 1), default=[0, 1])
    p.add_argument("--seeds", type=int, default=10, help="A2C seeds: 0 to N-1")
    p.add_argument("--a3c-seeds", type=int, default=5)
    p.add_argument("--max-frames", type=int, default=2_000_000, help="the budget of each run")
    p.add_argument("--jobs", type=int, default=usable_cores(), help="processes at a time")
    p.add_argument("--skip-a2c", action="store_true")
    p.add_argument("--skip-a3c", action="store_true")
    p.add_argument("--name", default="a2c_value_coef", help="results file name, no .json")
    args = p.parse_args(argv)
    if args.skip_a2c and args.skip_a3c:
        p.error("nothing to run: --skip-a2c and --skip-a3c")
    try:
        result = load(args.name) if args.skip_a2c or args.skip_a3c else {}
    except FileNotFoundError:
        result = {}
    if result.get("max_frames", args.max_frames) != args.max_frames:
        p.error(f"{args.name}.json keeps a half with --max-frames {result['max_frames']}")
    workers = get_preset("cartpole").processes
    a3c_jobs = max(1, args.jobs // (workers + 1))  # each A3C run: a learner and its workers

    command = "python -m benchmarks.value_coef " + " ".join(  # this call, defaults included
        f"--{k.replace('_', '-')}" + ("" if v is True else f" {words(v)}")
        for k, v in vars(args).items()
        if v is not False
    )
    result |= {
        "what": f"CartPole-v1, preset cartpole, value_loss_coef {words(args.coef, ' against ')} "
        "(1.0 is the reference code's): frames to solve (mean of the last 100 scores >= 475) and "
        f"falls, over seeds. Single-process A2C (lib.sync_a2c.train_a2c) over {args.seeds} seeds, "
        f"learning_rate {words(args.lr, ' and ')}, reuse_values "
        f"{words([bool(r) for r in args.reuse_values], '/')}; A3C (lib.a3c.train, preset layout: "
        f"{workers} workers, learner on the CPU with 1 thread) over {args.a3c_seeds} seeds.",
        "fall": {
            "window": FALL_WINDOW,
            "high": FALL_HIGH,
            "low": FALL_LOW,
            "definition": f"the mean of the last {FALL_WINDOW} scores drops below {FALL_LOW:g} "
            f"after having stood at {FALL_HIGH:g} or more; it must climb to {FALL_HIGH:g} again "
            "before another fall counts (benchmarks.study.count_falls)",
        },
        "max_frames": args.max_frames,
    }
    if not args.skip_a2c:
        start = time.monotonic()
        grid = product(args.coef, args.lr, map(bool, args.reuse_values))
        cells = [dict(value_loss_coef=c, learning_rate=lr, reuse_values=r) for c, lr, r in grid]
        half = sweep(a2c_run, cells, args.seeds, args.max_frames, args.jobs)
        how = (
            "each run: lib.sync_a2c.train_a2c(get_preset('cartpole', value_loss_coef=C, "
            f"learning_rate=LR, reuse_values=R, seed=S), {args.max_frames:_}, device='cpu', "
            "threads=1); falls: benchmarks.study.count_falls(result.scores); "
            f"{args.jobs} runs at a time, one per process"
        )
        seconds = round(time.monotonic() - start, 1)
        result["a2c"] = {"machine": machine(), "how": how, "command": command}
        result["a2c"] |= {"seconds_total": seconds} | half
    if not args.skip_a3c:
        cells = [{"value_loss_coef": c} for c in args.coef]
        half = sweep(a3c_run, cells, args.a3c_seeds, args.max_frames, a3c_jobs)
        how = (
            "each run: benchmarks.common.train_in_tmp(get_preset('cartpole', value_loss_coef=C, "
            f"seed=S, max_frames={args.max_frames:_}, learner_threads=1), device='cpu'), scores "
            f"from its progress callback; falls: benchmarks.study.count_falls; {a3c_jobs} runs "
            "at a time"
        )
        result["a3c"] = {"machine": machine(), "how": how, "command": command} | half
    path = save(args.name, result)
    for half in ("a2c", "a3c"):
        if half in result:
            print(f"\n{half.upper()}, {machine_line(result[half]['machine'])}\n")
            rows = [{k: shown(k, v) for k, v in r.items()} for r in result[half]["rows"]]
            print(table(rows, list(rows[0])))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
