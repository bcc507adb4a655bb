"""The update step: the workers' messages in, one optimiser step, the new weights out.

`UpdateStep` owns the network the workers act with, its optimiser and the update count. It
collects training messages until they cover `batch_size` frames, then makes one update:

    data: micro-batches -> gather -> a2c_loss -> backward -> clip -> Adam  (notebook 4)
    grad: gradients     -> mean   ->                        clip -> Adam

and publishes the new weights to the workers. It returns what the run record logs, policy lag
included. Everything else a run keeps (scores, TensorBoard, checkpoints) is `lib.record`'s.
"""

from __future__ import annotations

import copy
import ctypes
import multiprocessing as mp
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from lib.a2c import (
    Batch,
    a2c_update,
    apply_gradients,
    learning_rate_at,
    loss_stats,
    set_learning_rate,
)
from lib.config import A3CConfig
from lib.messages import Gradients, MicroBatch, TrainingMessage


class WorkerWeights:
    """The network the workers act with, and how the learner keeps it current.

    Shared (the reference code's way, and always on a CPU): the workers read the learner's own
    network, CPU tensors in shared memory or CUDA tensors shared by CUDA, so inference runs on
    the learner's device and sees every update at once. Copied (`worker_device="cpu"` with a
    GPU learner): the workers read a CPU copy in shared memory, which `publish` refreshes after
    every update, so inference runs on the workers' own CPU cores and the GPU only learns.
    """

    def __init__(self, net: nn.Module, copied: bool, updates: int = 0):
        self.source = net
        self.copied = copied
        # The learner's update count, which the workers read to tag what they send: a raw
        # shared integer, lock-free like the pool's stop flag.
        self.version = mp.get_context("spawn").RawValue(ctypes.c_int64, updates)
        self.net = copy.deepcopy(net).cpu() if copied else net
        self.device = "cpu" if copied else str(next(net.parameters()).device)
        if self.device == "cpu":
            self.net.share_memory()
        self._pairs = list(
            zip(self.net.state_dict().values(), net.state_dict().values(), strict=True)
        )

    @torch.no_grad()
    def publish(self, version: int) -> None:
        """Copy the learner's weights into the workers' copy (nothing to do when shared), then
        tell the workers which update they are (`version`)."""
        if self.copied:
            for dst, src in self._pairs:
                dst.copy_(src)
        self.version.value = version


def gather(micro_batches: list[MicroBatch], device: torch.device) -> Batch:
    """Concatenate micro-batches into one training batch on `device` (states still uint8)."""
    return Batch(
        *(
            torch.from_numpy(np.concatenate([getattr(m, name) for m in micro_batches])).to(device)
            for name in ("states", "actions", "ref_values")
        )
    )


class Update(NamedTuple):
    """What one update did, for the run record: TensorBoard tags and values."""

    number: int
    """The update count after it."""
    means: dict[str, Any]
    """Averaged over the record's logging interval (tensors or floats)."""
    maxima: dict[str, float]
    """Maxima over that interval (policy lag)."""


class UpdateStep:
    """Turns the workers' training messages into updates of one network (see the module)."""

    def __init__(self, config: A3CConfig, net: nn.Module, device: torch.device):
        self.config = config
        self.device = device
        self.net = net.to(device)
        # made after the move, so its state lives on the same device as the weights
        self.optimizer = torch.optim.Adam(
            self.net.parameters(), lr=config.learning_rate, eps=config.adam_eps
        )
        self.updates = 0
        self.weights = WorkerWeights(
            self.net, copied=config.worker_device == "cpu" and device.type != "cpu"
        )
        self.pending: list[TrainingMessage] = []
        self.pending_frames = 0

    def add(self, message: TrainingMessage) -> Update | None:
        """Keep a micro-batch or a gradient; once they cover `batch_size` frames, make one
        update with them and return what it did (else None)."""
        self.pending.append(message)
        self.pending_frames += message.frames
        if self.pending_frames < self.config.batch_size:
            return None
        messages, self.pending, self.pending_frames = self.pending, [], 0
        lr = learning_rate_at(self.config, self.updates)
        set_learning_rate(self.optimizer, lr)
        if isinstance(messages[0], Gradients):
            means = self._step_with_gradients(messages)
        else:
            means = self._step_with_batch(messages)
        means["losses/learning_rate"] = lr
        lags = [self.updates - m.first_version for m in messages]  # how old the data is
        means["perf/policy_lag_mean"] = sum(lags) / len(lags)
        means["perf/bootstrap_age"] = sum(m.bootstrap_age for m in messages) / len(messages)
        self.updates += 1
        self.weights.publish(self.updates)
        return Update(self.updates, means, {"perf/policy_lag_max": max(lags)})

    def _step_with_batch(self, micro_batches: list[MicroBatch]) -> dict[str, Any]:
        """Data parallelism: one A2C step on the gathered batch (the reference code's)."""
        c = self.config
        batch = gather(micro_batches, self.device)
        loss, grad_norm = a2c_update(
            self.net, self.optimizer, batch, c.entropy_beta, c.clip_grad, c.value_loss_coef
        )
        return loss_stats(loss, batch) | {"losses/grad_norm": grad_norm}

    def _step_with_gradients(self, gradients: list[Gradients]) -> dict[str, Any]:
        """Gradient parallelism: step with the mean of the workers' gradients.

        With equal-sized micro-batches that mean is the gradient of the loss's mean over all
        their samples: the update data parallelism would make from the same samples, except
        that each gradient was taken at the weights its worker had (`weights_version`).
        """
        mean = [
            torch.from_numpy(np.mean([g.grads[i] for g in gradients], axis=0))
            for i in range(len(gradients[0].grads))
        ]
        grad_norm = apply_gradients(self.net, self.optimizer, mean, self.config.clip_grad)
        means: dict[str, Any] = {
            tag: float(np.mean([g.stats[tag] for g in gradients])) for tag in gradients[0].stats
        }
        means["losses/grad_norm"] = grad_norm
        ages = [self.updates - g.weights_version for g in gradients]
        means["perf/gradient_lag_mean"] = sum(ages) / len(ages)
        return means

    # --- checkpoints -----------------------------------------------------------------------

    def state(self, with_optimizer: bool = True) -> dict[str, Any]:
        """The weights (on the CPU), and for a resume the optimiser and the update count."""
        state: dict[str, Any] = {
            "model": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
            "updates": self.updates,
        }
        if with_optimizer:
            state["optimizer"] = self.optimizer.state_dict()
        return state

    def restore(self, state: dict[str, Any]) -> None:
        """Go on from a checkpoint: weights, optimiser and update count (the workers' copy and
        version follow)."""
        self.net.load_state_dict(state["model"])
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self.weights.publish(self.updates)

    def finite(self) -> bool:
        """True while every weight is finite (a checkpoint of bad weights is never written)."""
        return all(torch.isfinite(p).all() for p in self.net.parameters())
