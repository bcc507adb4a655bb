"""Frames/s of whole presets, interleaved: what a preset's network and layout cost per frame.

    python -m benchmarks.presets pong pong-fast --frames 30000 --repeats 3
    python -m benchmarks.presets pong-fast pong-fast:reward_steps=4 --name presets_nstep

A name may carry field=value pairs after a colon, comma-separated, to compare one setting.
Each repeat runs every preset once, in turn, for `--frames` frames with its own layout, so a
drift of the machine hits every preset alike. The figure is the steady state (from the first
update); the ratio is each preset's median over the first one's.
"""

from __future__ import annotations

import argparse
import ast
from typing import Any

from benchmarks.common import machine, machine_line, median, save, table, train_in_tmp
from lib import A3CConfig, get_preset


def parse_preset(spec: str, **fixed: Any) -> A3CConfig:
    """The preset a name such as "pong-fast:reward_steps=4,clip_grad=0.1" asks for, validated."""
    name, _, pairs = spec.partition(":")
    overrides: dict[str, Any] = {}
    for pair in filter(None, pairs.split(",")):
        key, eq, value = pair.partition("=")
        if not eq:
            raise SystemExit(
                f"{spec!r}: write each override as field=value, e.g. pong-fast:reward_steps=4"
            )
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value  # a word, such as cpu
    return get_preset(name, **overrides, **fixed)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.presets", description=__doc__)
    p.add_argument("presets", nargs="+")
    p.add_argument("--frames", type=int, default=30_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--name", default="presets_pong")
    args = p.parse_args(argv)
    configs = {n: parse_preset(n, max_frames=args.frames, stop_score=1e9) for n in args.presets}
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
