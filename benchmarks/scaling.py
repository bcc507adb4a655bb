"""Scaling: A3C throughput and memory for 1, 2, 4 ... worker processes up to the core count.

    python -m benchmarks.scaling --preset pong --envs 4 --repeats 3

Each layout trains the preset for `--frames` frames, the layouts taking turns in every repeat.
Throughput is the steady-state frames/s (start-up excluded); memory is each worker's unique set
size (USS: what it costs beyond the libraries it shares), sampled while it trains.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace

import psutil

from benchmarks.common import machine, machine_line, median, save, table, train_in_tmp
from lib import default_device, get_preset
from lib.a3c import Progress


def layouts(cores: int) -> list[int]:
    counts, p = [], 1
    while p < cores:
        counts.append(p)
        p *= 2
    return [*counts, cores]


def run_once(config, frames: int, device: str = "cpu") -> tuple[float, float, float]:
    me = psutil.Process()
    uss: list[float] = []

    def sample(_: Progress) -> None:
        for child in me.children(recursive=True):
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    uss.append(child.memory_full_info().uss / 2**20)
            except psutil.Error:
                pass

    s = train_in_tmp(
        replace(config, max_frames=frames), device, callback=sample, callback_seconds=2.0
    )
    learner_mb = me.memory_info().rss / 2**20
    return s.steady_fps, (median(uss) if uss else float("nan")), learner_mb


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="pong")
    p.add_argument("--envs", type=int, default=4)
    p.add_argument("--frames", type=int, default=6_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-processes", type=int, default=os.cpu_count() or 1)
    p.add_argument("--device", default="auto", help="the learner's device: auto, cpu or cuda")
    p.add_argument("--worker-device", default="learner", choices=("learner", "cpu"))
    args = p.parse_args(argv)
    device = str(default_device(args.device))
    rows, data = [], {}
    counts = layouts(args.max_processes)
    configs = {
        n: get_preset(
            args.preset, processes=n, envs_per_process=args.envs, worker_device=args.worker_device
        )
        for n in counts
    }
    results: dict[int, list[tuple[float, float, float]]] = {n: [] for n in counts}
    for _ in range(args.repeats):  # interleaved, so drifts in the machine hit every layout alike
        for n in counts:
            results[n].append(run_once(configs[n], args.frames, device))
    for n in counts:
        fps = [r[0] for r in results[n]]
        data[n] = {
            "fps": fps,
            "fps_median": median(fps),
            "worker_uss_mb": median([r[1] for r in results[n]]),
            "learner_rss_mb": median([r[2] for r in results[n]]),
        }
        rows.append(
            {
                "workers": n,
                "envs": n * args.envs,
                "frames/s (median)": data[n]["fps_median"],
                "speed-up vs 1 worker": data[n]["fps_median"] / data[counts[0]]["fps_median"],
                "worker USS MiB": data[n]["worker_uss_mb"],
                "learner RSS MiB": data[n]["learner_rss_mb"],
            }
        )
    m = machine()
    result = {
        "machine": m,
        "preset": args.preset,
        "envs_per_process": args.envs,
        "frames_per_run": args.frames,
        "repeats": args.repeats,
        "device": device,
        "worker_device": args.worker_device,
        "layouts": data,
    }
    suffix = "" if device == "cpu" else f"_{device.split(':')[0]}_{args.worker_device}"
    path = save(f"scaling_{args.preset}{suffix}", result)
    print(
        f"\n{args.preset}, {args.envs} envs per worker, learner on {device}, worker inference "
        f"on {args.worker_device}, median of {args.repeats}; "
        f"{machine_line(m)}\n"
    )
    cols = [
        "workers",
        "envs",
        "frames/s (median)",
        "speed-up vs 1 worker",
        "worker USS MiB",
        "learner RSS MiB",
    ]
    print(table(rows, cols))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
