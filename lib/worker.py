"""The worker process: plays its envs with the shared network and sends what it learned:
micro-batches of experience (`variant="data"`) or their gradients (`variant="grad"`).

`data_func` and `grad_func` are the targets of the spawned workers. They live in `lib` (not in
a script or a notebook) so the `spawn` start method can import them by name in the fresh child
interpreter.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from lib.a2c import Batch, a2c_gradients, unpack_batch
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


class Gradients(NamedTuple):
    """Gradient parallelism's message: the A2C loss's gradient on one micro-batch (float32,
    one array per parameter, in `net.parameters()` order) and what the learner logs."""

    worker_id: int
    grads: list[np.ndarray]
    frames: int
    """Samples in the micro-batch the gradient was computed on."""
    version: int
    """The learner's update count when the gradient was computed: the weights it belongs to."""
    bootstrap_age: int
    """As `MicroBatch.bootstrap_age`."""
    stats: dict[str, float]
    """The loss parts and batch means, under their TensorBoard tags."""
    first_version: int = 0
    """As `MicroBatch.version`: the update count when the micro-batch's first transition came
    in, so that the policy lag means the same in both variants: how old the data is."""


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


def experience_message(
    net: nn.Module, device: str, config: A3CConfig, version: Any
) -> Callable[[int, Batch, int, int], MicroBatch]:
    """Data parallelism's message: the micro-batch itself, as numpy arrays."""

    def experience(worker_id: int, batch: Batch, first_version: int, age: int) -> MicroBatch:
        return MicroBatch(
            worker_id,
            batch.states.numpy(),
            batch.actions.numpy(),
            batch.ref_values.numpy(),
            first_version,
            age,
        )

    return experience


def gradients_message(
    net: nn.Module, device: str, config: A3CConfig, version: Any
) -> Callable[[int, Batch, int, int], Gradients]:
    """Gradient parallelism's message: the A2C loss's gradient on the micro-batch, taken at
    the weights the worker has now."""

    def gradients(worker_id: int, batch: Batch, first_version: int, age: int) -> Gradients:
        weights_version = read_version(version)  # the weights this gradient is taken at
        return gradient_message(
            worker_id, net, device, config, batch, weights_version, age, first_version
        )

    return gradients


MESSAGES = {"data": experience_message, "grad": gradients_message}
"""What a worker sends for each micro-batch, by `A3CConfig.variant`. The local pool's processes
and the Ray backend's actors (`lib.ray_pool`) both use it."""


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
    """Data parallelism's worker: play `config.envs_per_process` envs and send micro-batches
    of experience until told to stop.

    `conn` is the write end of this worker's own pipe to the learner (not a queue shared by all
    workers: a worker killed in the middle of a message must not wedge the others, see
    `lib.pool.WorkerPool`). A background thread sends; with at most two messages waiting in the
    worker and one in the pipe, a worker runs only a few micro-batches ahead of the learner.
    `version`, a shared integer, is the learner's update count; each micro-batch carries it
    for the policy-lag metrics.
    """
    message = experience_message(net, device, config, version)
    _play(worker_id, config, net, device, conn, stop_flag, parent_pid, version, message)


def grad_func(
    worker_id: int,
    config: A3CConfig,
    net: nn.Module,
    device: str,
    conn: Any,
    stop_flag: Any,
    parent_pid: int,
    version: Any = None,
) -> None:
    """Gradient parallelism's worker: play like `data_func`, but turn each micro-batch into
    the gradient of the A2C loss at the current shared weights, and send that instead.

    The backward pass, most of a Pong update's work, moves from the learner to the workers;
    what crosses the pipe is one float32 per parameter instead of the micro-batch's frames.
    """
    message = gradients_message(net, device, config, version)
    _play(worker_id, config, net, device, conn, stop_flag, parent_pid, version, message)


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
    """The A2C loss's gradient on `batch` at `net`'s weights, as `grad_func` sends it."""
    on_device = Batch(*(t.to(device) for t in batch))
    grads, loss = a2c_gradients(net, on_device, config.entropy_beta, config.value_loss_coef)
    stats = {
        "losses/policy": loss.policy.item(),
        "losses/value": loss.value.item(),
        "losses/entropy": loss.entropy.item(),
        "charts/policy_entropy": loss.policy_entropy.item(),
        "losses/total": loss.total.item(),
        "charts/advantage": loss.advantage.mean().item(),
        "charts/values": loss.values.mean().item(),
        "charts/batch_rewards": batch.ref_values.mean().item(),
    }
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


WORKER_TARGETS = {"data": data_func, "grad": grad_func}
"""The worker process of each `A3CConfig.variant`."""


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


def _play(
    worker_id: int,
    config: A3CConfig,
    net: nn.Module,
    device: str,
    conn: Any,
    stop_flag: Any,
    parent_pid: int,
    version: Any,
    message: Callable[[int, Batch, int, int], Any],
) -> None:
    """A spawned worker process: set up, then `play`, sending through this worker's pipe."""
    prepare_worker(config, worker_id)

    def should_stop() -> bool:
        return stop_flag.value or os.getppid() != parent_pid

    play(worker_id, config, net, device, Sender(conn, should_stop), version, message)


def play(
    worker_id: int,
    config: A3CConfig,
    net: nn.Module,
    device: str,
    sender: Any,
    version: Any,
    message: Callable[[int, Batch, int, int], Any],
) -> None:
    """Both variants' and both backends' worker loop: play, send finished episodes' scores,
    and send `message(worker_id, batch, first_version, bootstrap_age)` for every micro-batch.

    `sender` has `put` (block while full; raise `Stopped` once the run stops) and `send_last`
    (a final message). A caught exception goes to the learner as `WorkerFailed`; the process
    then exits with code 1.
    """
    seed = worker_seed(config, worker_id)
    torch.manual_seed(seed)
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
            sender.put(message(worker_id, batch, first_version, age))
    except Stopped:
        pass
    except BaseException:
        sender.send_last(WorkerFailed(worker_id, traceback.format_exc()))
        raise SystemExit(1) from None
