"""From n-step transitions to training tensors, and the A2C loss the learner minimises."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lib.experience import ExperienceFirstLast


class Batch(NamedTuple):
    """Training tensors: states (B, *obs) as the env gives them (uint8 for Atari), actions (B,)
    int64, ref_values (B,) float32."""

    states: torch.Tensor
    actions: torch.Tensor
    ref_values: torch.Tensor


@torch.no_grad()
def unpack_batch(
    batch: Sequence[ExperienceFirstLast],
    net: nn.Module,
    device: torch.device | str = "cpu",
    gamma: float = 0.99,
) -> Batch:
    """Turn transitions into `(states, actions, ref_values)`.

    ref_value = reward + gamma ** steps * V(last_state) for windows that did not end in a
    terminal state, and just `reward` for those that did. With full windows of n steps the
    factor is the seed's `last_val_gamma = GAMMA ** REWARD_STEPS`; carrying `steps` per entry
    keeps the shorter tail windows of time-limited episodes exact too. States stay in their
    own dtype (uint8 frames) until the network scales them.
    """
    states = torch.from_numpy(np.stack([exp.state for exp in batch]))
    actions = torch.tensor([exp.action for exp in batch], dtype=torch.int64)
    ref_values = torch.tensor([exp.reward for exp in batch], dtype=torch.float32)
    not_done = [i for i, exp in enumerate(batch) if exp.last_state is not None]
    if not_done:
        last_states = np.stack([batch[i].last_state for i in not_done])
        last_states_t = torch.from_numpy(last_states).to(device)
        last_values = net(last_states_t)[1].squeeze(-1).float().cpu()
        discounts = torch.tensor([gamma ** batch[i].steps for i in not_done])
        ref_values[not_done] += discounts * last_values
    return Batch(states, actions, ref_values)


class A2CLoss(NamedTuple):
    """The loss and its parts, each a scalar tensor; `advantage` is per sample (detached)."""

    policy: torch.Tensor
    value: torch.Tensor
    entropy: torch.Tensor
    total: torch.Tensor
    advantage: torch.Tensor


def a2c_loss(
    logits: torch.Tensor,
    values: torch.Tensor,
    actions: torch.Tensor,
    ref_values: torch.Tensor,
    entropy_beta: float,
) -> A2CLoss:
    """The seed's actor-critic loss.

    value   = mean (ref - V(s))^2
    policy  = -mean A * log pi(a|s),  A = ref - V(s), with V detached (no critic gradient here)
    entropy = beta * mean sum_a pi log pi   (minus beta times the entropy: it rewards exploring)
    total   = policy + value + entropy
    """
    values = values.squeeze(-1)
    loss_value = F.mse_loss(values, ref_values)
    log_probs = F.log_softmax(logits, dim=1)
    advantage = ref_values - values.detach()
    log_prob_actions = log_probs.gather(1, actions.unsqueeze(1)).squeeze(1)
    loss_policy = -(advantage * log_prob_actions).mean()
    probs = log_probs.exp()
    loss_entropy = entropy_beta * (probs * log_probs).sum(dim=1).mean()
    total = loss_policy + loss_value + loss_entropy
    return A2CLoss(loss_policy, loss_value, loss_entropy, total, advantage)
