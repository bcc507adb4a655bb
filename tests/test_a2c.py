"""unpack_batch and the A2C loss against numbers worked out by hand."""

import itertools
import math

import numpy as np
import pytest
import torch
from toy_envs import CountEnv, ObsValueNet, zero_agent

from lib import ExperienceSourceFirstLast, a2c_loss, unpack_batch


def test_unpack_batch_reference_values():
    # gamma 0.5, n 3, V(s) = 10 s. Windows from test_experience:
    #   s0: 2.75 + 0.5^3 * V(s3) = 2.75 + 0.125 * 30 = 6.5
    #   s1: 4.5  + 0.125 * V(s4) = 4.5 + 5 = 9.5
    #   s2: 6.25 (terminal), s3: 6.5 (terminal), s4: 5.0 (terminal)
    source = ExperienceSourceFirstLast(CountEnv(5), zero_agent, gamma=0.5, steps_count=3)
    batch = list(itertools.islice(iter(source), 5))
    states, actions, refs = unpack_batch(batch, ObsValueNet(), "cpu", gamma=0.5)
    assert refs.tolist() == pytest.approx([6.5, 9.5, 6.25, 6.5, 5.0])
    assert states.shape == (5, 1) and states.dtype == torch.float32
    assert actions.tolist() == [0] * 5 and actions.dtype == torch.int64
    assert refs.dtype == torch.float32


def test_unpack_batch_truncated_tail_uses_gamma_to_the_window_length():
    # Truncated at s5 (V = 50): s3 window has 2 steps -> 6.5 + 0.5^2 * 50 = 19.0;
    # s4 has 1 step -> 5 + 0.5 * 50 = 30.0; s2 has 3 steps -> 6.25 + 0.125 * 50 = 12.5
    source = ExperienceSourceFirstLast(
        CountEnv(5, truncate=True), zero_agent, gamma=0.5, steps_count=3
    )
    batch = list(itertools.islice(iter(source), 5))
    _, _, refs = unpack_batch(batch, ObsValueNet(), "cpu", gamma=0.5)
    assert refs.tolist() == pytest.approx([6.5, 9.5, 12.5, 19.0, 30.0])


def test_unpack_batch_keeps_uint8_frames():
    from lib import ExperienceFirstLast

    frame = torch.randint(0, 255, (4, 84, 84), dtype=torch.uint8).numpy()
    batch = [ExperienceFirstLast(frame, 1, 1.0, None, 4)] * 3
    states, _, refs = unpack_batch(batch, ObsValueNet(), "cpu", gamma=0.99)
    assert states.dtype == torch.uint8 and states.shape == (3, 4, 84, 84)
    assert refs.tolist() == [1.0, 1.0, 1.0]


def test_a2c_loss_terms_by_hand():
    # sample 1: probs (1/2, 1/2), action 0, V 1, ref 2 -> advantage +1
    # sample 2: probs (3/4, 1/4), action 1, V 2, ref 1 -> advantage -1
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]], requires_grad=True)
    values = torch.tensor([[1.0], [2.0]], requires_grad=True)
    actions = torch.tensor([0, 1])
    refs = torch.tensor([2.0, 1.0])
    loss = a2c_loss(logits, values, actions, refs, entropy_beta=0.01)

    policy = -(1 * math.log(0.5) + (-1) * math.log(0.25)) / 2  # = -ln(2)/2
    value = (1.0**2 + 1.0**2) / 2
    neg_entropy = (math.log(0.5) + (0.75 * math.log(0.75) + 0.25 * math.log(0.25))) / 2
    assert loss.policy.item() == pytest.approx(policy)
    assert loss.value.item() == pytest.approx(value)
    assert loss.entropy.item() == pytest.approx(0.01 * neg_entropy)
    assert loss.total.item() == pytest.approx(policy + value + 0.01 * neg_entropy)
    assert loss.advantage.tolist() == pytest.approx([1.0, -1.0])

    half = a2c_loss(logits, values, actions, refs, entropy_beta=0.01, value_coef=0.5)
    assert half.value.item() == pytest.approx(value)  # the term itself is unweighted
    assert half.total.item() == pytest.approx(policy + 0.5 * value + 0.01 * neg_entropy)


def test_policy_loss_does_not_train_the_critic():
    logits = torch.zeros(3, 4, requires_grad=True)
    values = torch.tensor([[0.5], [1.0], [-1.0]], requires_grad=True)
    loss = a2c_loss(logits, values, torch.tensor([0, 1, 2]), torch.ones(3), 0.01)
    loss.policy.backward()
    assert values.grad is None or torch.all(values.grad == 0)
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_unpack_batch_uses_kept_values_without_a_forward_pass():
    from lib import ExperienceFirstLast

    class NoForward(torch.nn.Module):
        def forward(self, x):
            raise AssertionError("the network should not run: every value is known")

    s = np.zeros(1, dtype=np.float32)
    batch = [
        ExperienceFirstLast(s, 0, 1.0, s, 2, last_value=4.0),  # 1 + 0.5^2 * 4 = 2
        ExperienceFirstLast(s, 1, 3.0, None, 1),  # terminal: 3
    ]
    _, _, refs = unpack_batch(batch, NoForward(), "cpu", gamma=0.5)
    assert refs.tolist() == pytest.approx([2.0, 3.0])


def test_unpack_batch_mixes_kept_and_computed_values():
    from lib import ExperienceFirstLast

    s2, s5 = np.array([2.0], np.float32), np.array([5.0], np.float32)
    batch = [
        ExperienceFirstLast(s2, 0, 1.0, s2, 1, last_value=7.0),  # 1 + 0.5 * 7 = 4.5
        ExperienceFirstLast(s2, 0, 1.0, s5, 1),  # 1 + 0.5 * V(s5) = 1 + 25 = 26
    ]
    _, _, refs = unpack_batch(batch, ObsValueNet(), "cpu", gamma=0.5)
    assert refs.tolist() == pytest.approx([4.5, 26.0])
