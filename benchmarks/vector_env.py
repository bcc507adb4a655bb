"""Env stepping: lib's gymnasium pipeline against ale-py's own vectorised `AtariVectorEnv`.

    python -m benchmarks.vector_env --envs 8 --seconds 6 --repeats 3
    python -m benchmarks.vector_env --loop --preset pong-fast --seconds 20 --repeats 3

Both step `--envs` Pong environments with random actions and the same preprocessing (frame
skip 4 with max-pooling, 84x84 grayscale, 4 stacked frames, no-op starts, FIRE on reset) in
this one process: `lib.make_env` one env after another on one core, `AtariVectorEnv` with its
C++ thread pool of 1 and of `cores` threads. The rounds are interleaved.

`--loop` measures instead inside the real loops, with the preset's layout: one worker's
`lib.worker.play` on its own (its policy's forward passes, n-step windows and micro-batches;
what it would send is dropped), and the whole of A3C (`train` for `--seconds`, its steady
frames/s), each with `vector_env` off and on, interleaved.
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


class _Drop:
    """A sender that counts the frames a worker would send for `seconds` after its first
    micro-batch (env creation left out), then stops it."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.frames = 0
        self.start: float | None = None

    def put(self, item: object) -> None:
        from lib.pool import Stopped

        frames = getattr(item, "frames", 0)
        if not frames:
            return
        if self.start is None:
            self.start = time.monotonic()
            return
        self.frames += frames
        if time.monotonic() - self.start > self.seconds:
            raise Stopped

    @property
    def fps(self) -> float:
        return self.frames / (time.monotonic() - self.start)

    def send_last(self, item: object) -> None:
        raise RuntimeError(getattr(item, "traceback", item))


def worker_loop_fps(config, seconds: float) -> float:
    """Frames per second of one worker's `play` loop, alone in this process."""
    import torch

    from lib.envs import obs_shape_and_actions
    from lib.model import make_net
    from lib.worker import message_maker, play

    torch.set_num_threads(1)
    net = make_net(config, *obs_shape_and_actions(config.env_id))
    sender = _Drop(seconds)
    play(0, config, net, "cpu", sender, None, message_maker(config, net, "cpu", None))
    return sender.fps


def loops(preset: str, seconds: float, repeats: int) -> dict:
    from benchmarks.common import train_in_tmp
    from lib.config import get_preset

    labels = {
        "worker_lib": "one worker's play loop, lib.make_env",
        "worker_vec": "one worker's play loop, AtariVectorEnv (1 thread)",
        "a3c_lib": "A3C steady frames/s, lib.make_env",
        "a3c_vec": "A3C steady frames/s, AtariVectorEnv",
    }
    runs: dict[str, list[float]] = {k: [] for k in labels}
    for _ in range(repeats):
        for vec in (False, True):
            config = get_preset(preset, vector_env=vec, max_seconds=seconds)
            key = "vec" if vec else "lib"
            runs[f"worker_{key}"].append(worker_loop_fps(config, seconds))
            runs[f"a3c_{key}"].append(train_in_tmp(config).steady_fps)
            print({k: [round(x) for x in v] for k, v in runs.items()}, flush=True)
    med = {k: median(v) for k, v in runs.items()}
    rows = [
        {
            "what": labels[k],
            "frames/s (median)": med[k],
            "vs lib": med[k] / med[k.split("_")[0] + "_lib"],
            "runs": ", ".join(f"{v:.0f}" for v in runs[k]),
        }
        for k in labels
    ]
    m = machine()
    result = {"machine": m, "preset": preset, "seconds": seconds, "repeats": repeats}
    result |= {"labels": labels, "runs": runs, "median": med}
    path = save(f"vector_env_loop_{preset.replace('-', '_')}", result)
    print(f"\n{preset}, median of {repeats}; {machine_line(m)}\n")
    print(table(rows, ["what", "frames/s (median)", "vs lib", "runs"]))
    print(f"wrote {path}")
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", type=int, default=8)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--loop", action="store_true", help="inside the worker loop and A3C")
    p.add_argument("--preset", default="pong-fast", help="with --loop")
    args = p.parse_args(argv)
    if args.loop:
        return loops(args.preset, args.seconds, args.repeats)
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
