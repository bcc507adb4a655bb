"""Env stepping: lib's gymnasium pipeline against ale-py's own vectorised `AtariVectorEnv`.

    python -m benchmarks.vector_env --envs 8 --seconds 6 --repeats 3

Both step `--envs` Pong environments with random actions and the same preprocessing (frame
skip 4 with max-pooling, 84x84 grayscale, 4 stacked frames, no-op starts, FIRE on reset) in
this one process: `lib.make_env` one env after another on one core, `AtariVectorEnv` with its
C++ thread pool of 1 and of `cores` threads. The rounds are interleaved. This measures whether
replacing the workers' env loop would pay: issue 5 reported 2x for AtariVectorEnv against
gymnasium's AsyncVectorEnv.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from benchmarks.common import machine, machine_line, median, save, table
from lib import make_env

ENV_ID, GAME = "PongNoFrameskip-v4", "pong"


def lib_envs_fps(n_envs: int, seconds: float) -> float:
    envs = [make_env(ENV_ID, seed=i) for i in range(n_envs)]
    for env in envs:
        env.reset()
    rng = np.random.default_rng(0)
    steps, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        for env, action in zip(envs, rng.integers(0, 6, n_envs), strict=True):
            _, _, terminated, truncated, _ = env.step(int(action))
            if terminated or truncated:
                env.reset()
        steps += n_envs
    rate = steps / (time.monotonic() - t0)
    for env in envs:
        env.close()
    return rate


def ale_vector_fps(n_envs: int, seconds: float, threads: int) -> float:
    from ale_py.vector_env import AtariVectorEnv

    envs = AtariVectorEnv(GAME, n_envs, num_threads=threads)  # resets by itself at episode end
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    n_actions = envs.single_action_space.n
    steps, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        envs.step(rng.integers(0, n_actions, n_envs))
        steps += n_envs
    rate = steps / (time.monotonic() - t0)
    envs.close()
    return rate


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", type=int, default=8)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    threads = sorted({1, cores})
    labels = {
        "lib": "lib.make_env, one after another (1 core)",
        **{f"ale_t{t}": f"ale-py AtariVectorEnv, {t} thread{'s' * (t > 1)}" for t in threads},
    }
    runs: dict[str, list[float]] = {k: [] for k in labels}
    for _ in range(args.repeats):
        runs["lib"].append(lib_envs_fps(args.envs, args.seconds))
        for t in threads:
            runs[f"ale_t{t}"].append(ale_vector_fps(args.envs, args.seconds, t))
    med = {k: median(v) for k, v in runs.items()}
    rows = [
        {
            "what": labels[k],
            "frames/s (median)": med[k],
            "per thread": med[k] / (1 if k == "lib" else int(k.removeprefix("ale_t"))),
            "vs lib": med[k] / med["lib"],
            "runs": ", ".join(f"{v:.0f}" for v in runs[k]),
        }
        for k in labels
    ]
    m = machine()
    result = {"machine": m, "envs": args.envs, "repeats": args.repeats, "labels": labels}
    result |= {"runs": runs, "median": med}
    path = save("vector_env_pong", result)
    print(f"\nPong, {args.envs} envs, random actions, median of {args.repeats}; {machine_line(m)}")
    print()
    print(table(rows, ["what", "frames/s (median)", "per thread", "vs lib", "runs"]))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
