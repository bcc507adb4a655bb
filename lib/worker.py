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


def data_func(
    worker_id: int,
    config: A3CConfig,
    net: nn.Module,
    device: str,
    conn: Any,
    stop_flag: Any,
    parent_pid: int,
) -> None:
    """Play `config.envs_per_process` envs and feed the learner until told to stop.

    `conn` is the write end of this worker's own pipe to the learner (not a queue shared by all
    workers: a worker killed in the middle of a message must not wedge the others, see
    `lib.pool.WorkerPool`). A background thread sends; with at most two messages waiting in the
    worker and one in the pipe, a worker runs only a few micro-batches ahead of the learner.
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
        for exp in exp_source:
            finished = exp_source.pop_rewards_steps()
            if finished:
                scores, steps = zip(*finished, strict=True)
                sender.put(EpisodeScores(worker_id, list(scores), list(steps)))
            micro_batch.append(exp)
            if len(micro_batch) < config.micro_batch_size:
                continue
            batch = unpack_batch(micro_batch, net, device, gamma=config.gamma)
            micro_batch.clear()
            sender.put(
                MicroBatch(
                    worker_id,
                    batch.states.numpy(),
                    batch.actions.numpy(),
                    batch.ref_values.numpy(),
                )
            )
    except Stopped:
        pass
    except BaseException:
        sender.send_last(WorkerFailed(worker_id, traceback.format_exc()))
        raise SystemExit(1) from None
