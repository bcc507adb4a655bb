"""The A3C paper's own design (Mnih et al., 2016): every worker updates the shared network itself.

Each worker plays, gathers `batch_size` n-step samples of its own, takes the A2C loss's gradient
on them and applies it to the parameters in shared memory, without a lock: a step may interleave
with another worker's (Hogwild, Niu et al., 2011). The optimiser's state is shared too, so that
every worker's step moves the same moments. The paper shares RMSProp's statistics; we share
Adam's (both moments and the step count), the optimiser every other variant of the course uses,
so that the three designs differ in where the update happens and nothing else.

The main process does not train. `HogwildStep` stands where `lib.update.UpdateStep` stands for
the other variants: it holds the shared network and optimiser state (for checkpoints), and
turns each worker's `Applied` report into what the run record logs. Policy lag here is the
number of updates the other workers applied between a worker's first action of a micro-batch
and its own update.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from lib.a2c import a2c_update, learning_rate_at, loss_stats, set_learning_rate
from lib.config import A3CConfig
from lib.messages import Applied
from lib.update import Update


class SharedCounts:
    """Updates applied so far, one lock-free counter per worker (each writes only its own, so
    no increment is lost and no lock can be left held by a killed worker); `value` is the sum,
    the run's update count."""

    def __init__(self, workers: int, updates: int = 0):
        self.counts = mp.get_context("spawn").RawArray(ctypes.c_int64, workers + 1)
        self.counts[workers] = updates  # the updates of earlier runs (a resume)

    @property
    def value(self) -> int:
        return int(sum(self.counts))

    def add(self, worker_id: int) -> None:
        self.counts[worker_id] += 1


class Shared:
    """What a Hogwild worker shares with the others: the update counts and Adam's state, one
    dict of tensors in shared memory per parameter."""

    def __init__(self, counts: SharedCounts, optimizer_state: list[dict[str, torch.Tensor]]):
        self.counts = counts
        self.optimizer_state = optimizer_state

    @property
    def value(self) -> int:
        """The run's update count (what `lib.worker.read_version` reads)."""
        return self.counts.value


def shared_adam_state(net: nn.Module) -> list[dict[str, torch.Tensor]]:
    """Adam's state for each parameter, zeroed, in shared memory."""
    return [
        {
            "step": torch.zeros((), dtype=torch.float32).share_memory_(),
            "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format).share_memory_(),
            "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format).share_memory_(),
        }
        for p in net.parameters()
    ]


def shared_adam(
    net: nn.Module, config: A3CConfig, state: list[dict[str, torch.Tensor]]
) -> torch.optim.Adam:
    """An Adam over `net` whose state is `state`: its steps update the shared moments in place."""
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate, eps=config.adam_eps)
    for p, s in zip(net.parameters(), state, strict=True):
        optimizer.state[p] = s
    return optimizer


def hogwild_update(
    worker_id: int,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: A3CConfig,
    batch: Any,
    counts: SharedCounts,
    first_version: int,
    bootstrap_age: int,
) -> Applied:
    """One Hogwild update by a worker: the A2C step on the shared weights, counted, and the
    report the main process logs. Raises `NumericalError` before a non-finite step."""
    c = config
    updates = counts.value
    lag = updates - first_version  # the others' updates since this micro-batch began
    lr = learning_rate_at(c, updates)
    set_learning_rate(optimizer, lr)  # this worker's own param_groups: the state is shared
    loss, grad_norm = a2c_update(
        net, optimizer, batch, c.entropy_beta, c.clip_grad, c.value_loss_coef
    )
    counts.add(worker_id)
    stats = loss_stats(loss, batch) | {"losses/grad_norm": grad_norm.item()}
    stats["losses/learning_rate"] = lr
    return Applied(worker_id, len(batch.actions), stats, lag, bootstrap_age)


class HogwildStep:
    """The main process's side of Hogwild: the shared network and optimiser state, and the
    workers' reports turned into the run record's `Update`s (see the module)."""

    def __init__(self, config: A3CConfig, net: nn.Module):
        self.config = config
        self.device = torch.device("cpu")
        self.net = net.cpu().share_memory()
        self.shared = Shared(SharedCounts(config.processes), shared_adam_state(self.net))
        self.optimizer = shared_adam(self.net, config, self.shared.optimizer_state)
        self.weights = SimpleNamespace(net=self.net, device="cpu", version=self.shared)
        """What `lib.a3c.make_pool` hands the workers, as `UpdateStep.weights` does."""

    @property
    def updates(self) -> int:
        return self.shared.counts.value

    def add(self, report: Applied) -> Update:
        """Every report is one update that a worker already made."""
        means = dict(report.stats)
        means["perf/policy_lag_mean"] = report.policy_lag
        means["perf/bootstrap_age"] = report.bootstrap_age
        return Update(self.updates, means, {"perf/policy_lag_max": report.policy_lag})

    def state(self, with_optimizer: bool = True) -> dict[str, Any]:
        """The shared weights as they are now (the workers may be mid-step: each tensor is
        copied whole, and every value in it is a finite weight), and Adam's state."""
        state: dict[str, Any] = {
            "model": {k: v.detach().clone() for k, v in self.net.state_dict().items()},
            "updates": self.updates,
        }
        if with_optimizer:
            state["optimizer"] = self.optimizer.state_dict()
        return state

    def restore(self, state: dict[str, Any]) -> None:
        """Go on from a checkpoint: copied into the shared tensors, which the workers hold."""
        self.net.load_state_dict(state["model"])  # in place: the memory stays shared
        saved = state.get("optimizer", {}).get("state", {})
        for i, shared in enumerate(self.shared.optimizer_state):
            for name, tensor in saved.get(i, {}).items():
                shared[name].copy_(tensor)
        counts = self.shared.counts.counts
        counts[len(counts) - 1] = int(state["updates"])
