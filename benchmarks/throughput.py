"""Throughput: A3C against single-process A2C and against the machine's ceilings.

    python -m benchmarks.throughput --processes 2 --envs 4 --repeats 3
    python -m benchmarks.throughput --processes 2 --envs 4 --repeats 3 --variant data grad \
        --name throughput_pong_2x4_variants
    python -m benchmarks.throughput --processes 2 --envs 4 --repeats 3 --backend local ray \
        --name throughput_pong_2x4_backends

Everything is measured in this one run, on the Pong preset scaled to the given layout:
  env ceiling        the same processes and envs stepping with random actions, no network
  inference ceiling  the same processes running only the network's forward pass on their envs
  learner ceiling    the learner's update alone on synthetic batches (all cores to itself)
  A3C                lib.a3c.train, steady state (start-up reported apart)
  A2C                lib.sync_a2c.train_a2c: same net, settings and total envs, one process
  A3C, gradient-parallel   with `--variant data grad`: lib.a3c.train with variant="grad"
  A3C, Hogwild       with `--variant data hogwild`: the workers update the shared weights
  A3C on Ray         with `--backend local ray`: the same run with Ray actors (a Ray instance
                     of its own, started for each run; its start-up is reported apart)
With a GPU (`--device auto` finds it) the learner and A2C run on it, and two rows answer where
the workers' forward passes belong: the inference ceiling on the GPU and on the CPU, and A3C
with `worker_device="learner"` (the reference code's way: on the GPU) against
`worker_device="cpu"`. A frame is one agent step of one env consumed by the learner (the
reference code's count); an emulator frame is a quarter of that (frame skip 4), shown beside it.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np
import torch
import torch.multiprocessing as mp

from benchmarks.common import machine, machine_line, median, save, table, train_in_tmp
from lib import RandomAgent, default_device, get_preset, make_env, make_net
from lib.a2c import Batch, a2c_update
from lib.config import A3CConfig
from lib.envs import is_atari, obs_shape_and_actions
from lib.sync_a2c import train_a2c


def _env_worker(env_id: str, n_envs: int, seconds: float, seed: int, out) -> None:
    torch.set_num_threads(1)
    envs = [make_env(env_id, seed=seed + i) for i in range(n_envs)]
    agent = RandomAgent(envs[0].action_space.n, seed)
    for env in envs:
        env.reset()
    steps, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        actions = agent(np.zeros(n_envs))
        for env, action in zip(envs, actions, strict=True):
            _, _, terminated, truncated, _ = env.step(int(action))
            if terminated or truncated:
                env.reset()
        steps += n_envs
    out.put(steps / (time.monotonic() - t0))


def _inference_worker(config: A3CConfig, seconds: float, device: str, out) -> None:
    """What a worker's agent does per step: states from numpy to `device`, forward, actions back."""
    torch.set_num_threads(1)
    shape, n_actions = obs_shape_and_actions(config.env_id)
    net = make_net(config, shape, n_actions).to(device)
    dtype = np.uint8 if is_atari(config.env_id) else np.float32  # what the env gives
    x = np.zeros((config.envs_per_process, *shape), dtype=dtype)
    with torch.no_grad():
        net(torch.as_tensor(x, device=device))  # warm-up (CUDA context, kernels)
        samples, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            logits, _ = net(torch.as_tensor(x, device=device))
            logits.argmax(dim=1).cpu()
            samples += config.envs_per_process
    out.put(samples / (time.monotonic() - t0))


def _parallel(target, args_for, processes: int) -> float:
    """Run `target` in `processes` spawned processes at once; total of their rates."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    os.environ["OMP_NUM_THREADS"] = "1"
    procs = [ctx.Process(target=target, args=(*args_for(i), out)) for i in range(processes)]
    for p in procs:
        p.start()
    rates = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return float(sum(rates))


def env_ceiling(config: A3CConfig, seconds: float) -> float:
    return _parallel(
        _env_worker,
        lambda i: (config.env_id, config.envs_per_process, seconds, 1000 * (i + 1)),
        config.processes,
    )


def inference_ceiling(config: A3CConfig, seconds: float, device: str = "cpu") -> float:
    return _parallel(_inference_worker, lambda i: (config, seconds, device), config.processes)


def learner_ceiling(
    config: A3CConfig, seconds: float, threads: int | None = None, device: str = "cpu"
) -> float:
    saved = torch.get_num_threads()
    torch.set_num_threads(threads or os.cpu_count() or 1)
    try:
        shape, n_actions = obs_shape_and_actions(config.env_id)
        net = make_net(config, shape, n_actions).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=config.learning_rate, eps=config.adam_eps)
        dtype = torch.uint8 if is_atari(config.env_id) else torch.float32
        # built on the CPU and moved per update, as the learner's batches are
        batch = Batch(
            torch.zeros((config.batch_size, *shape), dtype=dtype),
            torch.zeros(config.batch_size, dtype=torch.int64),
            torch.zeros(config.batch_size),
        )

        def update() -> None:
            on_device = Batch(*(t.to(device) for t in batch))
            a2c_update(
                net, opt, on_device, config.entropy_beta, config.clip_grad, config.value_loss_coef
            )

        update()  # warm-up
        samples, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            update()
            samples += config.batch_size
        return samples / (time.monotonic() - t0)
    finally:
        torch.set_num_threads(saved)


def a3c_fps(
    config: A3CConfig, frames: int, device: str = "cpu", backend: str = "local"
) -> tuple[float, float, int, int]:
    """Steady frames/s, start-up seconds, and bytes to the learner and of weights per update."""
    s = train_in_tmp(replace(config, max_frames=frames), device, backend=backend)
    return s.steady_fps, s.startup_seconds, s.bytes_per_update, s.weights_bytes_per_update


def a2c_fps(
    config: A3CConfig, frames: int, threads: int, device: str = "cpu"
) -> tuple[float, float]:
    r = train_a2c(config, max_frames=frames, device=device, threads=threads)
    return r.steady_fps, r.startup_seconds


def _threads(n: int) -> str:
    return f"{n} thread" if n == 1 else f"{n} threads"


def combined_ceiling(median: dict[str, float], processes: int, cores: int) -> float:
    """Frames/s if the machine did all three jobs with every core busy and nothing wasted.

    Each ceiling was measured with the whole machine to itself; its core-seconds per frame is
    (cores it used) / (its rate). Playing, inference and learning are all needed for every
    frame, so their core-seconds add up; the learner counts at its most core-efficient thread
    count. A3C can at best reach this figure, A2C too.
    """
    workers = min(processes, cores)
    learner = min(
        min(int(k.removeprefix("learner_t")), cores) / v
        for k, v in median.items()
        if k.startswith("learner_t")
    )
    per_frame = workers / median["env"] + workers / median["inference"] + learner
    return cores / per_frame


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="pong")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--envs", type=int, default=4)
    p.add_argument("--frames", type=int, default=6_000, help="frames per A3C/A2C run")
    p.add_argument("--seconds", type=float, default=8.0, help="seconds per ceiling run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto", help="the learner's device: auto, cpu or cuda")
    p.add_argument(
        "--variant",
        nargs="+",
        choices=("data", "grad", "hogwild"),
        default=["data"],
        help="A3C's variants to measure (grad and hogwild add a row each)",
    )
    p.add_argument(
        "--backend",
        nargs="+",
        choices=("local", "ray"),
        default=["local"],
        help="worker backends to measure (ray adds a row: A3C with Ray actors)",
    )
    p.add_argument("--name", help="results file name, no .json (default throughput_<layout>)")
    args = p.parse_args(argv)
    config = get_preset(args.preset, processes=args.processes, envs_per_process=args.envs)
    device = str(default_device(args.device))
    gpu = device != "cpu"

    cores = os.cpu_count() or 1
    threads = sorted({1, cores})
    learners = ["learner_gpu"] if gpu else [f"learner_t{t}" for t in threads]
    keys = ["env", "inference", *(["inference_gpu"] if gpu else []), *learners]
    keys += ["a3c", "a3c_seed_bootstrap", *(["a3c_worker_cpu"] if gpu else [])]
    keys += [f"a3c_{v}" for v in ("grad", "hogwild") if v in args.variant]
    ray = "ray" in args.backend
    keys += ["a3c_ray"] if ray else []
    keys += [f"a2c_t{t}" for t in threads]
    where = f", learner on {device}" if gpu else ""
    labels = {
        "env": "env ceiling (random actions, no net)",
        "inference": "inference ceiling (forward only, CPU)",
        "inference_gpu": f"inference ceiling (forward only, {device})",
        "learner_gpu": f"learner ceiling (updates only, {device})",
        **{f"learner_t{t}": f"learner ceiling (updates only, {_threads(t)})" for t in threads},
        "a3c": "A3C (lib.a3c.train)" + (f", workers infer on {device}" if gpu else ""),
        "a3c_seed_bootstrap": "A3C, second forward pass for V (the reference code's way)",
        "a3c_worker_cpu": "A3C, workers infer on the CPU (worker_device='cpu')",
        "a3c_grad": "A3C, gradient-parallel (workers compute the gradients)",
        "a3c_hogwild": "A3C, Hogwild (workers update the shared weights, on the CPU)",
        "a3c_ray": "A3C, workers as Ray actors (--backend ray)",
        **{f"a2c_t{t}": f"single-process A2C ({_threads(t)}{where})" for t in threads},
    }
    runs: dict[str, list[float]] = {k: [] for k in keys}
    startup: dict[str, list[float]] = {k: [] for k in keys if k.startswith("a")}
    piped: dict[str, list[int]] = {}
    weights: dict[str, list[int]] = {}
    # on a GPU, "a3c" is the reference code's placement (workers infer on the GPU) and
    # "a3c_worker_cpu" the default one; on a CPU the two are the same
    a3c_runs = {
        "a3c": replace(config, worker_device="learner"),
        "a3c_seed_bootstrap": replace(config, reuse_values=False),
    }
    if gpu:
        a3c_runs["a3c_worker_cpu"] = replace(config, worker_device="cpu")
    for variant in ("grad", "hogwild"):
        if variant in args.variant:
            a3c_runs[f"a3c_{variant}"] = replace(config, variant=variant)
    if ray:
        a3c_runs["a3c_ray"] = config
    for _ in range(args.repeats):  # interleaved, so drifts in the machine hit every row alike
        runs["env"].append(env_ceiling(config, args.seconds))
        runs["inference"].append(inference_ceiling(config, args.seconds))
        if gpu:
            runs["inference_gpu"].append(inference_ceiling(config, args.seconds, device))
            runs["learner_gpu"].append(learner_ceiling(config, args.seconds, 1, device))
        else:
            for t in threads:
                runs[f"learner_t{t}"].append(learner_ceiling(config, args.seconds, t))
        for key, cfg in a3c_runs.items():
            backend = "ray" if key == "a3c_ray" else "local"
            where = "cpu" if cfg.variant == "hogwild" else device  # shared CPU memory
            fps, up, size, published = a3c_fps(cfg, args.frames, where, backend)
            runs[key].append(fps)
            startup[key].append(up)
            piped.setdefault(key, []).append(size)
            weights.setdefault(key, []).append(published)
        for t in threads:
            fps, up = a2c_fps(config, args.frames, t, device)
            runs[f"a2c_t{t}"].append(fps)
            startup[f"a2c_t{t}"].append(up)

    med = {k: median(v) for k, v in runs.items()}
    learner_best = max((k for k in med if k.startswith("learner")), key=med.__getitem__)
    a2c_best = max((k for k in med if k.startswith("a2c")), key=med.__getitem__)
    inference = "inference_gpu" if gpu else "inference"  # where A3C's workers infer by default
    tightest = min(("env", inference, learner_best), key=med.__getitem__)
    rows = [
        {
            "what": labels[k],
            "frames/s (median)": med[k],
            "emulator frames/s": 4 * med[k] if is_atari(config.env_id) else "",
            "runs": ", ".join(f"{v:.0f}" for v in runs[k]),
            "KB piped per update": round(median(piped[k]) / 1024, 1) if k in piped else "",
            "KB of weights per update": (
                round(median(weights[k]) / 1024, 1) if weights.get(k) and any(weights[k]) else ""
            ),
        }
        for k in keys
    ]
    m = machine()
    result = {
        "machine": m,
        "preset": config.preset,
        "device": device,
        "processes": config.processes,
        "envs_per_process": config.envs_per_process,
        "frames_per_run": args.frames,
        "repeats": args.repeats,
        "labels": labels,
        "runs": runs,
        "median": med,
        "startup_seconds": {k: median(v) for k, v in startup.items()},
        "bytes_per_update": {k: median(v) for k, v in piped.items()},
        "weights_bytes_per_update": {k: median(v) for k, v in weights.items()},
        "tightest_ceiling": tightest,
        "a2c_best": a2c_best,
        "a3c_over_a2c": med["a3c"] / med[a2c_best],
        "a3c_over_tightest_ceiling": med["a3c"] / med[tightest],
        "reuse_values_speedup": med["a3c"] / med["a3c_seed_bootstrap"],
    }
    for variant in ("grad", "hogwild"):
        if f"a3c_{variant}" in med:
            result[f"{variant}_over_data"] = med[f"a3c_{variant}"] / med["a3c"]
    if ray:
        result["ray_over_local"] = med["a3c_ray"] / med["a3c"]
    if gpu:
        result["worker_cpu_over_gpu"] = med["a3c_worker_cpu"] / med["a3c"]
    else:  # core-seconds add up only when every job runs on the same cores
        result["combined_ceiling"] = combined_ceiling(med, config.processes, cores)
        result["a3c_over_combined_ceiling"] = med["a3c"] / result["combined_ceiling"]
        result["a2c_over_combined_ceiling"] = med[a2c_best] / result["combined_ceiling"]
    name = f"throughput_{config.preset}_{config.processes}x{config.envs_per_process}"
    path = save(args.name or name + ("_" + device.split(":")[0] if gpu else ""), result)
    print(
        f"\n{config.preset}, {config.processes} workers x {config.envs_per_process} envs, "
        f"learner on {device}, median of {args.repeats}; {machine_line(m)}\n"
    )
    print(
        table(
            rows,
            [
                "what",
                "frames/s (median)",
                "emulator frames/s",
                "runs",
                "KB piped per update",
                *(["KB of weights per update"] if ray else []),
            ],
        )
    )
    print(
        f"\nA3C / best single-process A2C = {result['a3c_over_a2c']:.2f}x; "
        f"A3C / tightest ceiling ({labels[tightest]}) = "
        f"{result['a3c_over_tightest_ceiling']:.0%}; value reuse = "
        f"{result['reuse_values_speedup']:.2f}x; start-up: A3C "
        f"{result['startup_seconds']['a3c']:.1f} s, A2C {result['startup_seconds'][a2c_best]:.1f} s"
    )
    if gpu:
        print(
            "worker inference on the CPU / on the GPU = "
            f"{result['worker_cpu_over_gpu']:.2f}x (A3C frames/s, worker_device='cpu' / 'learner')"
        )
    else:
        print(
            f"combined ceiling (all three jobs sharing {cores} cores perfectly) = "
            f"{result['combined_ceiling']:,.0f} frames/s: A3C reaches "
            f"{result['a3c_over_combined_ceiling']:.0%} of it, the best A2C "
            f"{result['a2c_over_combined_ceiling']:.0%}"
        )
    for variant in ("grad", "hogwild"):
        if f"{variant}_over_data" in result:
            print(f"{variant} / data parallelism = {result[f'{variant}_over_data']:.2f}x")
    if ray:
        print(
            f"Ray actors / local processes = {result['ray_over_local']:.2f}x; start-up: Ray "
            f"{result['startup_seconds']['a3c_ray']:.1f} s, local "
            f"{result['startup_seconds']['a3c']:.1f} s"
        )
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
