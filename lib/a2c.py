"""From n-step transitions to training tensors, and the A2C loss the learner minimises."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lib.experience import ExperienceFirstLast

if TYPE_CHECKING:
    from lib.config import A3CConfig


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
    factor is the reference code's `last_val_gamma = GAMMA ** REWARD_STEPS`; carrying `steps`
    per entry keeps the shorter tail windows of time-limited episodes exact too. V(last_state) comes
    from `exp.last_value` when the experience source kept it, else from one batched forward
    pass of `net`. States stay in their own dtype (uint8 frames) until the network scales them.
    """
    states = torch.from_numpy(np.stack([exp.state for exp in batch]))
    actions = torch.tensor([exp.action for exp in batch], dtype=torch.int64)
    ref_values = torch.tensor([exp.reward for exp in batch], dtype=torch.float32)
    live = [i for i, exp in enumerate(batch) if exp.last_state is not None]
    if live:
        last_values = torch.tensor(
            [batch[i].last_value if batch[i].last_value is not None else 0.0 for i in live]
        )
        unknown = [j for j, i in enumerate(live) if batch[i].last_value is None]
        if unknown:
            last_states = np.stack([batch[live[j]].last_state for j in unknown])
            values = net(torch.from_numpy(last_states).to(device))[1]
            last_values[unknown] = values.squeeze(-1).float().cpu()
        discounts = torch.tensor([gamma ** batch[i].steps for i in live])
        ref_values[live] += discounts * last_values
    return Batch(states, actions, ref_values)


class A2CLoss(NamedTuple):
    """The loss and its parts, each a scalar tensor; `advantage` and `values` are per sample
    (detached), for logging."""

    policy: torch.Tensor
    value: torch.Tensor
    entropy: torch.Tensor
    total: torch.Tensor
    advantage: torch.Tensor
    values: torch.Tensor
    policy_entropy: torch.Tensor
    """The policy's mean entropy in nats (detached): `entropy` without beta and sign, so it
    can be watched with any beta, 0 included. ln(n_actions) is a uniform choice."""


def a2c_loss(
    logits: torch.Tensor,
    values: torch.Tensor,
    actions: torch.Tensor,
    ref_values: torch.Tensor,
    entropy_beta: float,
    value_coef: float = 1.0,
) -> A2CLoss:
    """The reference code's actor-critic loss, with a weight on the value term.

    value   = mean (ref - V(s))^2
    policy  = -mean A * log pi(a|s),  A = ref - V(s), with V detached (no critic gradient here)
    entropy = beta * mean sum_a pi log pi   (minus beta times the entropy: it rewards exploring)
    total   = policy + value_coef * value + entropy

    `value_coef` is 1.0 in the reference code; 0.5 (OpenAI Baselines' A2C) halves the critic's
    pull on the trunk the two heads share.
    """
    values = values.squeeze(-1)
    loss_value = F.mse_loss(values, ref_values)
    log_probs = F.log_softmax(logits, dim=1)
    advantage = ref_values - values.detach()
    log_prob_actions = log_probs.gather(1, actions.unsqueeze(1)).squeeze(1)
    loss_policy = -(advantage * log_prob_actions).mean()
    probs = log_probs.exp()
    neg_entropy = (probs * log_probs).sum(dim=1).mean()
    loss_entropy = entropy_beta * neg_entropy
    total = loss_policy + value_coef * loss_value + loss_entropy
    return A2CLoss(
        loss_policy,
        loss_value,
        loss_entropy,
        total,
        advantage,
        values.detach(),
        -neg_entropy.detach(),
    )


def loss_stats(loss: A2CLoss, batch: Batch) -> dict[str, float]:
    """The loss's parts and the batch's means under their TensorBoard tags, as every variant
    logs them."""
    return {
        "losses/policy": loss.policy.item(),
        "losses/value": loss.value.item(),
        "losses/entropy": loss.entropy.item(),
        "charts/policy_entropy": loss.policy_entropy.item(),
        "losses/total": loss.total.item(),
        "charts/advantage": loss.advantage.mean().item(),
        "charts/values": loss.values.mean().item(),
        "charts/batch_rewards": batch.ref_values.mean().item(),
    }


class NumericalError(RuntimeError):
    """The loss or its gradient is NaN or infinite; training stops before the bad step."""


def _check_finite(name: str, value: torch.Tensor) -> None:
    if not torch.isfinite(value).all():
        shown = value.item() if value.numel() == 1 else "not finite"
        raise NumericalError(
            f"the {name} is {shown}: training stopped before applying it; the last good "
            "checkpoint is kept. Lower learning_rate or clip_grad, or check the rewards."
        )


def _backward(net: nn.Module, batch: Batch, entropy_beta: float, value_coef: float) -> A2CLoss:
    """Forward pass, the A2C loss, and its gradient into the parameters' `.grad`."""
    logits, values = net(batch.states)
    loss = a2c_loss(logits, values, batch.actions, batch.ref_values, entropy_beta, value_coef)
    _check_finite("loss", loss.total.detach())
    loss.total.backward()
    return loss


def _clip_and_step(
    net: nn.Module, optimizer: torch.optim.Optimizer, clip_grad: float
) -> torch.Tensor:
    grad_norm = nn.utils.clip_grad_norm_(net.parameters(), clip_grad)
    _check_finite("gradient norm", grad_norm.detach())
    optimizer.step()
    return grad_norm


def learning_rate_at(config: A3CConfig, updates: int) -> float:
    """The rate for the next update, `updates` into the run: `learning_rate`, or with
    `lr_anneal` that rate times the share of `max_frames` still ahead. Each update counts as
    the `batch_size` frames it learns from, so a resumed run goes on where its rate was."""
    if not config.lr_anneal:
        return config.learning_rate
    return config.learning_rate * max(0.0, 1.0 - updates * config.batch_size / config.max_frames)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def a2c_update(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    entropy_beta: float,
    clip_grad: float,
    value_coef: float = 1.0,
) -> tuple[A2CLoss, torch.Tensor]:
    """One learner step: loss, backward, clip the gradient norm, optimizer step.

    Shared by the A3C learner and single-process A2C. Raises `NumericalError` (before the
    step, so the weights stay good) when the loss or the gradient norm is not finite.
    Returns the loss parts and the gradient norm before clipping.
    """
    optimizer.zero_grad()
    loss = _backward(net, batch, entropy_beta, value_coef)
    return loss, _clip_and_step(net, optimizer, clip_grad)


def a2c_gradients(
    net: nn.Module, batch: Batch, entropy_beta: float, value_coef: float = 1.0
) -> tuple[list[torch.Tensor], A2CLoss]:
    """The gradient of the A2C loss on `batch`, one tensor per parameter, without a step.

    What a worker of gradient-parallel A3C computes (`variant="grad"`). `net`'s own `.grad`
    is left empty, so a network shared with the learner carries no gradient of this process.
    """
    net.zero_grad(set_to_none=True)
    loss = _backward(net, batch, entropy_beta, value_coef)
    grads = [
        p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
        for p in net.parameters()
    ]
    net.zero_grad(set_to_none=True)
    return grads, loss


def apply_gradients(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    grads: Sequence[torch.Tensor],
    clip_grad: float,
) -> torch.Tensor:
    """The learner's step of gradient-parallel A3C: `grads` as the parameters' gradient, then
    the same clip and optimizer step as `a2c_update`. Returns the norm before clipping."""
    optimizer.zero_grad()
    for p, g in zip(net.parameters(), grads, strict=True):
        p.grad = g.to(device=p.device, dtype=p.dtype)
    return _clip_and_step(net, optimizer, clip_grad)
