"""The worker: plays its envs with the learner's network and sends what it learned.

`run_worker` is the target of every spawned worker process, whatever the variant: it lives in
`lib` (not in a script or a notebook) so the `spawn` start method can import it by name in the
fresh child interpreter. `play` is the loop itself, shared with the Ray actors
(`lib.ray_pool`); `message_maker` turns each micro-batch into what the variant sends.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import torch
from torch import nn

from lib.a2c import Batch, a2c_gradients, loss_stats, unpack_batch
from lib.agent import PolicyAgent
from lib.config import A3CConfig
from lib.envs import is_atari, make_env, make_vector_env
from lib.experience import ExperienceSourceFirstLast
from lib.messages import (
    Applied,
    EpisodeScores,
    Gradients,
    MicroBatch,
    TrainingMessage,
    WorkerFailed,
)
from lib.pool import Sender, Stopped

MessageMaker = Callable[[int, Batch, int, int], TrainingMessage]
"""(worker_id, batch, first_version, bootstrap_age) -> the message for one micro-batch."""


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


def message_maker(config: A3CConfig, net: nn.Module, device: str, version: Any) -> MessageMaker:
    """What a worker sends for each micro-batch: the experience itself (variant "data"), the
    A2C loss's gradient on it at the weights the worker has now (variant "grad"), or the report
    of the update it applied to the shared weights itself (variant "hogwild": `version` then
    holds the shared update counts and Adam state, `lib.hogwild.Shared`)."""
    if config.variant == "hogwild":
        from lib.hogwild import hogwild_update, shared_adam

        optimizer = shared_adam(net, config, version.optimizer_state)

        def update(worker_id: int, batch: Batch, first_version: int, age: int) -> Applied:
            return hogwild_update(
                worker_id, net, optimizer, config, batch, version.counts, first_version, age
            )

        return update
    if config.variant == "grad":

        def gradients(worker_id: int, batch: Batch, first_version: int, age: int) -> Gradients:
            weights_version = read_version(version)  # the weights this gradient is taken at
            return gradient_message(
                worker_id, net, device, config, batch, weights_version, age, first_version
            )

        return gradients

    def experience(worker_id: int, batch: Batch, first_version: int, age: int) -> MicroBatch:
        states, actions, ref_values = (t.numpy() for t in batch)
        return MicroBatch(worker_id, states, actions, ref_values, first_version, age)

    return experience


def gradient_message(
    worker_id: int,
    net: nn.Module,
    device: str,
    config: A3CConfig,
    batch: Batch,
    weights_version: int,
    bootstrap_age: int,
    first_version: int = 0,
) -> Gradients:
    """The A2C loss's gradient on `batch` at `net`'s weights, as a grad worker sends it.

    The backward pass, most of a Pong update's work, moves from the learner to the workers;
    what crosses is one float32 per parameter instead of the micro-batch's frames.
    """
    on_device = Batch(*(t.to(device) for t in batch))
    grads, loss = a2c_gradients(net, on_device, config.entropy_beta, config.value_loss_coef)
    stats = loss_stats(loss, batch)
    grads_np = [g.cpu().numpy() for g in grads]
    return Gradients(
        worker_id,
        grads_np,
        len(batch.actions),
        weights_version,
        bootstrap_age,
        stats,
        first_version,
    )


def worker_envs(config: A3CConfig, seed: int) -> list[gym.Env] | gym.vector.VectorEnv:
    """The `envs_per_process` envs a worker plays: gymnasium's wrappers one after another, or
    ale-py's vector env (`config.vector_env`, Atari only)."""
    if config.vector_env and is_atari(config.env_id):
        return make_vector_env(config.env_id, config.envs_per_process, seed=seed)
    return [make_env(config.env_id, seed=seed + i) for i in range(config.envs_per_process)]


def prepare_worker(config: A3CConfig, worker_id: int) -> None:
    """What a worker process sets up before it plays: one torch thread and a lower priority
    (and, in the main thread, no Ctrl+C: the process group gets it, only the learner decides
    how to stop)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    if not lower_priority(config.worker_nice) and worker_id == 0:
        print(
            f"note: os.nice is not available on {sys.platform}; the workers run at the "
            "learner's priority (worker_nice is ignored)",
            file=sys.stderr,
            flush=True,
        )


def run_worker(
    worker_id: int,
    config: A3CConfig,
    net: nn.Module,
    device: str,
    conn: Any,
    stop_flag: Any,
    parent_pid: int,
    version: Any = None,
) -> None:
    """A spawned worker process of any variant: play `config.envs_per_process` envs and send
    what `message_maker` makes of each micro-batch until told to stop.

    `conn` is the write end of this worker's own pipe to the learner (see `lib.pool`).
    `version`, a shared integer, is the learner's update count. The worker stops when the stop
    flag rises or its parent (the learner) is gone.
    """
    prepare_worker(config, worker_id)

    def should_stop() -> bool:
        return stop_flag.value or os.getppid() != parent_pid

    message = message_maker(config, net, device, version)
    play(worker_id, config, net, device, Sender(conn, should_stop), version, message)


def play(
    worker_id: int,
    config: A3CConfig,
    net: nn.Module,
    device: str,
    sender: Any,
    version: Any,
    message: MessageMaker,
    refresh: Callable[[], None] | None = None,
) -> None:
    """Every worker's loop, local process or Ray actor: play, send finished episodes' scores,
    and send `message(worker_id, batch, first_version, bootstrap_age)` for every micro-batch.

    `sender` has `put` (block while full; raise `Stopped` once the run stops) and `send_last`
    (a final message). `refresh`, if given, runs between micro-batches: a Ray actor loads new
    weights there, never between a forward pass and its backward pass. A caught exception goes
    to the learner as `WorkerFailed`; the process then exits with code 1.
    """
    seed = worker_seed(config, worker_id)
    torch.manual_seed(seed)
    try:
        exp_source = ExperienceSourceFirstLast(
            worker_envs(config, seed),
            PolicyAgent(net, device),
            gamma=config.gamma,
            steps_count=config.reward_steps,
            reuse_values=config.reuse_values,
        )
        micro_batch = []
        first_version = 0
        # a Hogwild worker updates on a whole batch of its own, as the learner does for the others
        size = config.batch_size if config.variant == "hogwild" else config.micro_batch_size
        for exp in exp_source:
            if finished := exp_source.pop_rewards_steps():
                scores, steps = zip(*finished, strict=True)
                sender.put(EpisodeScores(worker_id, list(scores), list(steps)))
            if not micro_batch:
                first_version = read_version(version)
            micro_batch.append(exp)
            if len(micro_batch) < size:
                continue
            batch = unpack_batch(micro_batch, net, device, gamma=config.gamma)
            micro_batch.clear()
            age = read_version(version) - first_version if config.reuse_values else 0
            sender.put(message(worker_id, batch, first_version, age))
            if refresh is not None:
                refresh()
    except Stopped:
        pass
    except BaseException:
        sender.send_last(WorkerFailed(worker_id, traceback.format_exc()))
        raise SystemExit(1) from None
