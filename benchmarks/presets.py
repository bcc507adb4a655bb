"""Frames/s of whole presets, interleaved: what a preset's network and layout cost per frame.

    python -m benchmarks.presets pong pong-fast --frames 30000 --repeats 3

Each repeat runs every preset once, in turn, for `--frames` frames with its own layout, so a
drift of the machine hits every preset alike. The figure is the steady state (from the first
update); the ratio is each preset's median over the first one's.
"""

from __future__ import annotations

import argparse

from benchmarks.common import machine, machine_line, median, save, table, train_in_tmp
from lib import get_preset


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.presets", description=__doc__)
    p.add_argument("presets", nargs="+")
    p.add_argument("--frames", type=int, default=30_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--name", default="presets_pong")
    args = p.parse_args(argv)
    configs = {n: get_preset(n, max_frames=args.frames, stop_score=1e9) for n in args.presets}
    runs: dict[str, list[float]] = {n: [] for n in configs}
    for r in range(args.repeats):
        for name, config in configs.items():
            summary = train_in_tmp(config, device=args.device)
            runs[name].append(summary.steady_fps)
            print(f"repeat {r + 1}: {name}: {summary.steady_fps:,.0f} frames/s", flush=True)
    m = machine()
    first = median(runs[args.presets[0]])
    rows = [
        {
            "preset": n,
            "net": c.net,
            "layout": f"{c.processes} x {c.envs_per_process}",
            "frames/s (median)": median(runs[n]),
            f"vs {args.presets[0]}": median(runs[n]) / first,
            "runs": ", ".join(f"{x:.0f}" for x in runs[n]),
        }
        for n, c in configs.items()
    ]
    print(f"machine: {machine_line(m)}")
    print(table(rows, list(rows[0])))
    data = {"machine": m, "frames": args.frames, "runs": runs, "rows": rows}
    data["configs"] = {n: c.to_dict() for n, c in configs.items()}
    print(f"wrote {save(args.name, data)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
