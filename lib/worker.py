"""The worker process: plays its envs with the shared network and sends micro-batches.

`data_func` is the target of every spawned worker. It lives in `lib` (not in a script or a
notebook) so the `spawn` start method can import it by name in the fresh child interpreter.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from lib.a2c import unpack_batch
from lib.agent import PolicyAgent
from lib.config import A3CConfig
from lib.envs import make_env
from lib.experience import ExperienceSourceFirstLast
from lib.pool import Sender, Stopped, WorkerFailed


class EpisodeScores(NamedTuple):
    """Scores (real game score) and lengths of episodes a worker finished."""

    worker_id: int
    scores: list[float]
    steps: list[int]


class MicroBatch(NamedTuple):
    """`micro_batch_size` training samples as numpy arrays (states stay uint8 for Atari)."""

    worker_id: int
    states: np.ndarray
    actions: np.ndarray
    ref_values: np.ndarray
    version: int = 0
    """The learner's update count when this micro-batch's first transition came in: how new
    the weights that chose its actions were (the oldest action is at most `reward_steps`
    steps older). The learner's count minus this, when it trains on it, is the policy lag."""
    bootstrap_age: int = 0
    """Updates made while this micro-batch filled (0 with `reuse_values=False`): at most how
    much older its reused bootstrap values V(s_last) are than a forward pass at the end."""


def worker_seed(config: A3CConfig, worker_id: int) -> int:
    return config.seed + 1000 * (worker_id + 1)


def lower_priority(niceness: int) -> bool:
    """Add `niceness` to this process's niceness where the OS has `os.nice` (POSIX).

    The learner, the bottleneck, then goes first whenever it has work. Returns False where
    there is no `os.nice` (Windows): the worker runs at normal priority, which costs some speed
    on a small machine and nothing else.
    """
    if not niceness:
        return True
    nice = getattr(os, "nice", None)
    if nice is None:
        return False
    nice(niceness)
    return True


def read_version(version: Any) -> int:
    """The learner's update count from the shared integer (0 where there is none)."""
    return 0 if version is None else int(version.value)


def data_func(
    worker_id: int,
    config: A3CConfig,
    net: nn.Module,
    device: str,
    conn: Any,
    stop_flag: Any,
    parent_pid: int,
    version: Any = None,
) -> None:
    """Play `config.envs_per_process` envs and feed the learner until told to stop.

    `conn` is the write end of this worker's own pipe to the learner (not a queue shared by all
    workers: a worker killed in the middle of a message must not wedge the others, see
    `lib.pool.WorkerPool`). A background thread sends; with at most two messages waiting in the
    worker and one in the pipe, a worker runs only a few micro-batches ahead of the learner.
    `version`, a shared integer, is the learner's update count; each micro-batch carries it
    for the policy-lag metrics.
    """
    # Ctrl+C reaches the whole process group; only the learner decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    if not lower_priority(config.worker_nice) and worker_id == 0:
        print(
            f"note: os.nice is not available on {sys.platform}; the workers run at the "
            "learner's priority (worker_nice is ignored)",
            file=sys.stderr,
            flush=True,
        )
    seed = worker_seed(config, worker_id)
    torch.manual_seed(seed)

    def should_stop() -> bool:
        return stop_flag.value or os.getppid() != parent_pid

    sender = Sender(conn, should_stop)
    try:
        envs = [make_env(config.env_id, seed=seed + i) for i in range(config.envs_per_process)]
        agent = PolicyAgent(net, device)
        exp_source = ExperienceSourceFirstLast(
            envs,
            agent,
            gamma=config.gamma,
            steps_count=config.reward_steps,
            reuse_values=config.reuse_values,
        )
        micro_batch = []
        first_version = 0
        for exp in exp_source:
            finished = exp_source.pop_rewards_steps()
            if finished:
                scores, steps = zip(*finished, strict=True)
                sender.put(EpisodeScores(worker_id, list(scores), list(steps)))
            if not micro_batch:
                first_version = read_version(version)
            micro_batch.append(exp)
            if len(micro_batch) < config.micro_batch_size:
                continue
            batch = unpack_batch(micro_batch, net, device, gamma=config.gamma)
            micro_batch.clear()
            age = read_version(version) - first_version if config.reuse_values else 0
            sender.put(
                MicroBatch(
                    worker_id,
                    batch.states.numpy(),
                    batch.actions.numpy(),
                    batch.ref_values.numpy(),
                    first_version,
                    age,
                )
            )
    except Stopped:
        pass
    except BaseException:
        sender.send_last(WorkerFailed(worker_id, traceback.format_exc()))
        raise SystemExit(1) from None
