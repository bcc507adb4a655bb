"""The CUDA path, proved in one call of under 9 minutes on one GPU machine.

    bash benchmarks/gpu_pong.sh                       # on the GPU machine (installs wheels)
    python -m benchmarks.gpu_pong --device cpu --probe-seconds 5 --train-seconds 10 \\
        --processes 1 --envs 2 --name gpu_pong_cpu_check     # a rehearsal on any machine

1. prints the GPU and the CPU it found;
2. probes where the workers should run the network: A3C Pong for `--probe-seconds` with
   `worker_device="learner"` (inference on the GPU) and with `"cpu"` (on the workers' cores),
   and keeps the faster (frames/s, steady state);
   then, with `--variants data grad` (the default), gradient-parallel A3C with that placement
   for as long, to compare the two designs' frames/s on the same machine;
3. trains Pong (data parallelism) with that placement and a layout for the machine's cores
   until the mean of the last 100 scores reaches the preset's bound or `--train-seconds` have
   passed;
4. writes `benchmarks/results/<name>.json` (machine, probe, summary, learning curve), which
   notebook 6 reads, and leaves the run folder (TensorBoard, checkpoints) under runs/.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from pathlib import Path

import torch

from benchmarks.common import machine, machine_line, save, table, train_in_tmp
from lib import get_preset
from lib.a3c import train
from lib.config import gpu_layout, override


def layout(cores: int, processes: int | None, envs: int | None) -> tuple[int, int]:
    """Workers and envs each: `lib.config.gpu_layout` unless given."""
    default = gpu_layout(cores)
    return processes or default["processes"], envs or default["envs_per_process"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_pong", description=__doc__)
    p.add_argument("--device", default="cuda", help="cuda (the point), or cpu for a rehearsal")
    p.add_argument("--preset", default="pong-fast")
    p.add_argument("--probe-seconds", type=float, default=30.0, help="per worker placement")
    p.add_argument("--train-seconds", type=float, default=420.0)
    p.add_argument(
        "--deadline-seconds",
        type=float,
        default=540.0,
        help="the whole script's budget: training is cut short to end inside it",
    )
    p.add_argument(
        "--variants",
        nargs="+",
        choices=("data", "grad"),
        default=["data", "grad"],
        help="A3C variants to probe (training uses data)",
    )
    p.add_argument("--processes", type=int, help="workers (default: cores - 2)")
    p.add_argument("--envs", type=int, help="envs per worker (default: 8)")
    p.add_argument("--name", default="gpu_pong", help="results file name, no .json")
    p.add_argument("--run-dir", default="runs/gpu_pong")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("no CUDA device here; rehearse with --device cpu")

    began = time.monotonic()
    m = {**machine(), "device": args.device}
    print(f"machine: {machine_line(m)}", flush=True)
    processes, envs = layout(os.cpu_count() or 1, args.processes, args.envs)
    base = get_preset(args.preset, processes=processes, envs_per_process=envs)  # checked now
    print(f"layout: {processes} workers x {envs} envs, preset {args.preset}", flush=True)

    def measure(placement: str, variant: str) -> dict:
        config = override(
            base,
            worker_device=placement,
            variant=variant,
            max_seconds=args.probe_seconds,
            stop_score=1e9,
        )
        row: dict = {"variant": variant, "worker_device": placement}
        try:
            s = train_in_tmp(config, device=args.device)
        except Exception as e:  # one probe failing must not cost the others, or the run
            traceback.print_exc()
            return {**row, "error": f"{type(e).__name__}: {e}"}
        row |= {"frames": s.frames, "steady_fps": s.steady_fps, "startup_s": s.startup_seconds}
        print(table([row], list(row)), flush=True)
        return row

    probe = [measure(placement, "data") for placement in ("learner", "cpu")]
    measured = [r for r in probe if "error" not in r]
    if not measured:
        print("both worker placements failed; see the tracebacks above", flush=True)
        return 1
    best = max(measured, key=lambda r: r["steady_fps"])["worker_device"]
    print(f"faster placement: worker_device={best!r}", flush=True)
    if "grad" in args.variants:
        probe.append(measure(best, "grad"))
    # leave time for the workers' start and the last checkpoint inside the deadline
    left = args.deadline_seconds - (time.monotonic() - began) - 30.0
    train_seconds = max(10.0, min(args.train_seconds, left))

    config = override(base, worker_device=best, max_seconds=train_seconds, checkpoint_minutes=2.0)
    start = time.monotonic()
    summary = train(config, run_dir=args.run_dir, device=args.device, progress=True)
    print(summary.line(), flush=True)
    curve = json.loads((Path(args.run_dir) / "curve.json").read_text())
    result = {
        "machine": m,
        "layout": {"processes": processes, "envs_per_process": envs},
        "probe": probe,
        "worker_device": best,
        "summary": {**summary.__dict__, "seconds_with_cleanup": time.monotonic() - start},
        "config": config.to_dict(),
        "points": curve["points"],
    }
    print(f"wrote {save(args.name, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
