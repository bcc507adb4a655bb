"""The worker process: plays its envs with the shared network and sends micro-batches.

`data_func` is the target of every spawned worker. It lives in `lib` (not in a script or a
notebook) so the `spawn` start method can import it by name in the fresh child interpreter.
"""

from __future__ import annotations

import os
import queue as queue_mod
import signal
import threading
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


class WorkerFailed(NamedTuple):
    """A worker caught an exception; the learner raises it with this traceback."""

    worker_id: int
    traceback: str


def worker_seed(config: A3CConfig, worker_id: int) -> int:
    return config.seed + 1000 * (worker_id + 1)


class _Stopped(Exception):
    pass


def data_func(
    worker_id: int,
    config: A3CConfig,
    net: nn.Module,
    device: str,
    train_queue: Any,
    stop_event: Any,
    parent_pid: int,
) -> None:
    """Play `config.envs_per_process` envs and feed the learner until told to stop."""
    # Ctrl+C reaches the whole process group; only the learner decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    if config.worker_nice:
        os.nice(config.worker_nice)  # the learner, the bottleneck, goes first
    seed = worker_seed(config, worker_id)
    torch.manual_seed(seed)

    def should_stop() -> bool:
        return stop_event.is_set() or os.getppid() != parent_pid

    def put(item: Any) -> None:
        # A bounded queue: block, but wake up to notice a stop or an orphaned worker.
        while True:
            if should_stop():
                raise _Stopped
            try:
                train_queue.put(item, timeout=0.5)
                return
            except queue_mod.Full:
                continue

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
                put(EpisodeScores(worker_id, list(scores), list(steps)))
            micro_batch.append(exp)
            if len(micro_batch) < config.micro_batch_size:
                continue
            batch = unpack_batch(micro_batch, net, device, gamma=config.gamma)
            micro_batch.clear()
            put(
                MicroBatch(
                    worker_id,
                    batch.states.numpy(),
                    batch.actions.numpy(),
                    batch.ref_values.numpy(),
                )
            )
    except _Stopped:
        pass
    except BaseException:
        _report_failure(train_queue, WorkerFailed(worker_id, traceback.format_exc()))
        raise SystemExit(1) from None
    # Stopping: do not wait at exit for queued items nobody will read any more.
    train_queue.cancel_join_thread()


def _report_failure(train_queue: Any, failure: WorkerFailed, timeout: float = 10.0) -> None:
    """Send the traceback and wait (bounded) until it has left this process."""
    try:
        train_queue.put(failure, timeout=timeout)
        train_queue.close()
        flusher = threading.Thread(target=train_queue.join_thread, daemon=True)
        flusher.start()
        flusher.join(timeout)
    except Exception:
        pass
    train_queue.cancel_join_thread()
