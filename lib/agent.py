"""Agents: callables that map a batch of observations to a batch of actions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

Agent = Callable[[np.ndarray], np.ndarray]
"""Any callable: observations (first axis = environment) -> int actions, one per environment."""


def default_device(device: str = "auto") -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without it raises a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} was asked for, but torch sees no CUDA GPU "
            f"(torch {torch.__version__}); use --device cpu or --device auto"
        )
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported; use auto, cpu or cuda")
    return dev


class PolicyAgent:
    """Samples each action from the softmax of the network's policy logits.

    The network returns `(logits, value)`; the values of the last call are kept in
    `last_values` for whoever wants them (the benchmarks look at reusing them).
    """

    def __init__(self, net: nn.Module, device: torch.device | str = "cpu"):
        self.net = net
        self.device = torch.device(device)
        self.last_values: np.ndarray | None = None

    @torch.no_grad()
    def __call__(self, states: np.ndarray) -> np.ndarray:
        states_t = torch.as_tensor(np.asarray(states), device=self.device)
        logits, values = self.net(states_t)
        self.last_values = values.squeeze(-1).cpu().numpy()
        probs = torch.softmax(logits, dim=1)
        return torch.multinomial(probs, 1).squeeze(1).cpu().numpy()


class RandomAgent:
    """Uniformly random actions; the baseline for throughput ceilings and untrained scores."""

    def __init__(self, n_actions: int, seed: int | None = None):
        self.n_actions = n_actions
        self.rng = np.random.default_rng(seed)

    def __call__(self, states: np.ndarray) -> np.ndarray:
        return self.rng.integers(0, self.n_actions, size=len(states))
