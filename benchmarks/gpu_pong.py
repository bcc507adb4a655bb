"""A GPU machine in one call of under 10 minutes: layouts probed, then `make train` on Pong.

    bash benchmarks/gpu_pong.sh                       # on the GPU machine (installs wheels)
    bash benchmarks/gpu_pong.sh --no-probes --name gpu_train_one_call   # one call, all training
    python -m benchmarks.gpu_pong --device cpu --probe-seconds 15 --deadline-seconds 150 \\
        --name gpu_pong_rehearsal                     # a rehearsal on any machine

1. prints the GPU and the CPU it found;
2. probes A3C Pong (`pong-fast`) for `--probe-seconds` each, steady frames/s:
   - with the GPU learner and `lib.config.fit_layout`'s layout for this machine, its workers
     playing with gymnasium's wrappers and with ale-py's C++ vector env;
   - on the CPU alone (`--device cpu`), restricted to `--cpu-cores` cores by CPU affinity (what
     `taskset` does), with the layout rule's layout, then with one learner thread more if the
     learner never waited, else one worker more: students' machines have such CPUs and no GPU;
3. trains Pong as `make train` does (`python -m lib.train --preset pong-fast`: the layout
   rule, the GPU learner), with the faster env pipeline of step 2, until solved or the deadline;
4. writes `benchmarks/results/<name>.json` (machine, probes, summary, learning curve), and
   leaves the run folder (TensorBoard, checkpoints) under runs/.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import RESULTS, machine, machine_line, save, table, train_in_tmp
from lib.config import fit_layout, get_preset, override, usable_cores
from lib.tracking import Summary


def probe(config: Any, device: str, label: str, cores: set[int] | None = None) -> dict:
    """A3C for `config.max_seconds` on `device` (and only `cores`, if given): its frames/s."""
    row: dict = {"probe": label, "device": device, "processes": config.processes}
    row |= {"envs": config.envs_per_process, "learner_threads": config.learner_threads}
    row |= {"vector_env": config.vector_env}
    saved = os.sched_getaffinity(0)
    try:
        if cores:
            os.sched_setaffinity(0, cores)  # the workers inherit it, as under taskset
        scalars: dict = {"perf/wait_s": None}
        s = train_in_tmp(config, device=device, scalars=scalars)
        waits = scalars["perf/wait_s"][1] if scalars.get("perf/wait_s") else []
        row |= {"frames": s.frames, "steady_fps": s.steady_fps, "startup_s": s.startup_seconds}
        # the median of the logged points: the first one also holds the start-up's wait
        row["learner_wait_s"] = round(float(np.median(waits)), 4) if len(waits) else None
    except Exception as e:  # one probe failing must not cost the others, or the run
        traceback.print_exc()
        row["error"] = f"{type(e).__name__}: {e}"
    finally:
        os.sched_setaffinity(0, saved)
    print(table([row], list(row)), flush=True)
    return row


def cpu_probes(base: Any, cores: int) -> list[dict]:
    """On `cores` CPU cores alone: the layout rule's layout, then one learner thread more if
    the learner never waited for the workers (it is the bottleneck), else one worker more."""
    rule = override(base, **fit_layout(base, cores=cores, cuda=False).overrides())
    first = probe(rule, "cpu", f"cpu {cores} cores, rule", set(range(cores)))
    if "error" in first:
        return [first]
    waiting = (first["learner_wait_s"] or 0.0) * first["steady_fps"] / rule.batch_size
    first["learner_waiting_share"] = round(waiting, 3)
    threads = rule.learner_threads + (-1 if waiting > 0.3 else 1)
    if not 1 <= threads < cores:
        return [first]
    other = override(rule, learner_threads=threads, processes=cores - threads)
    return [first, probe(other, "cpu", f"cpu {cores} cores, learner {threads}", set(range(cores)))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_pong", description=__doc__)
    p.add_argument("--device", default="cuda", help="cuda (the point), or cpu for a rehearsal")
    p.add_argument("--preset", default="pong-fast")
    p.add_argument("--probe-seconds", type=float, default=20.0, help="per probe")
    p.add_argument("--cpu-cores", type=int, nargs="*", default=[16, 8], help="CPU-only probes")
    p.add_argument(
        "--probes",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="--no-probes: train at once, with gymnasium's env pipeline (the whole call trains)",
    )
    p.add_argument(
        "--deadline-seconds",
        type=float,
        default=560.0,
        help="the whole script's budget: training is cut short to end inside it",
    )
    p.add_argument(
        "--processes", type=int, help="workers with the GPU learner (a rehearsal's size)"
    )
    p.add_argument("--envs", type=int, help="envs per worker with the GPU learner (likewise)")
    p.add_argument(
        "--train",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the probes, train Pong with `make train`'s layout until the deadline",
    )
    p.add_argument(
        "--name", default="gpu_train", help="results file name, no .json; never overwritten"
    )
    p.add_argument("--run-dir", default="runs/gpu_pong")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("no CUDA device here; rehearse with --device cpu")
    if (RESULTS / f"{args.name}.json").exists():
        p.error(
            f"benchmarks/results/{args.name}.json already holds a measurement; "
            "name a new file with --name"
        )

    began = time.monotonic()
    m = {**machine(), "device": args.device, "usable_cores": usable_cores()}
    print(f"machine: {machine_line(m)}", flush=True)
    base = override(get_preset(args.preset), max_seconds=args.probe_seconds, stop_score=1e9)
    gpu = override(base, **fit_layout(base, cuda=args.device == "cuda").overrides())
    gpu = override(gpu, processes=args.processes, envs_per_process=args.envs)
    probes = [
        probe(override(gpu, vector_env=vec), args.device, f"{args.device} learner, vector {vec}")
        for vec in ((False, True) if args.probes else ())
    ]
    fast = [r for r in probes if "error" not in r]
    vector = max(fast, key=lambda r: r["steady_fps"])["vector_env"] if fast else False
    print(f"faster env pipeline with the {args.device} learner: vector_env={vector}", flush=True)
    for cores in args.cpu_cores if args.probes else ():
        if cores > len(os.sched_getaffinity(0)):
            continue
        probes += cpu_probes(override(base, vector_env=vector), cores)

    result = {"machine": m, "probes": probes}
    if not args.train:
        print(f"wrote {save(args.name, result)}")
        return 0
    # `make train`, cut short to end inside the deadline (the workers' start, the last save)
    left = args.deadline_seconds - (time.monotonic() - began) - 25.0
    cmd = [sys.executable, "-m", "lib.train", "--preset", args.preset, "--device", args.device]
    cmd += ["--max-seconds", f"{max(10.0, left):.0f}", "--checkpoint-minutes", "2"]
    cmd += ["--vector-env" if vector else "--no-vector-env", "--run-dir", args.run_dir]
    for option, value in (("--processes", args.processes), ("--envs", args.envs)):
        cmd += [option, str(value)] if value else []
    print("$ " + " ".join(cmd), flush=True)
    start = time.monotonic()
    subprocess.run(cmd, check=False)
    summary = Summary.load(Path(args.run_dir) / "summary.json")
    curve = json.loads((Path(args.run_dir) / "curve.json").read_text())
    result |= {
        "command": " ".join(cmd[1:]),
        "summary": {**summary.__dict__, "seconds_with_cleanup": time.monotonic() - start},
        "config": curve["config"],
        "points": curve["points"],
    }
    print(f"wrote {save(args.name, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
