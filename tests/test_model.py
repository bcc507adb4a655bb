"""Networks: the reference code's AtariA2C exactly, the MLP, and the agent that samples."""

import numpy as np
import torch

from lib import AtariA2C, MlpA2C, PolicyAgent
from lib.model import SmallAtariA2C, count_parameters


def test_atari_a2c_parameter_count_matches_the_seed():
    net = AtariA2C((4, 84, 84), 6)
    conv = (4 * 32 * 8 * 8 + 32) + (32 * 64 * 4 * 4 + 64) + (64 * 64 * 3 * 3 + 64)
    flat = 64 * 7 * 7  # 84 -> 20 -> 9 -> 7
    policy = (flat * 512 + 512) + (512 * 6 + 6)
    value = (flat * 512 + 512) + (512 * 1 + 1)
    assert count_parameters(net) == conv + policy + value == 3_293_863


def test_atari_a2c_takes_uint8_and_scales_inside():
    net = AtariA2C((4, 84, 84), 6)
    frames = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    logits, value = net(frames)
    assert logits.shape == (5, 6) and value.shape == (5, 1)
    assert logits.dtype == torch.float32
    # same as feeding the frames already scaled to [0, 1]
    features = net.conv(frames.float() / 255.0)
    torch.testing.assert_close(value, net.value(features))


def test_small_atari_a2c_is_the_a3c_papers_network():
    net = SmallAtariA2C((4, 84, 84), 6)
    conv = (4 * 16 * 8 * 8 + 16) + (16 * 32 * 4 * 4 + 32)
    flat = 32 * 9 * 9  # 84 -> 20 -> 9
    hidden = flat * 256 + 256  # one layer, shared by both outputs
    heads = (256 * 6 + 6) + (256 * 1 + 1)
    assert count_parameters(net) == conv + hidden + heads == 677_943
    logits, value = net(torch.zeros(3, 4, 84, 84, dtype=torch.uint8))
    assert logits.shape == (3, 6) and value.shape == (3, 1)


def test_mlp_a2c_shapes():
    logits, value = MlpA2C((4,), 2, hidden_size=16)(torch.zeros(3, 4))
    assert logits.shape == (3, 2) and value.shape == (3, 1)


def test_policy_agent_samples_from_the_softmax():
    class Fixed(torch.nn.Module):
        def forward(self, x):
            # action 2 has all the probability mass
            logits = torch.tensor([[-1e9, -1e9, 0.0]]).repeat(len(x), 1)
            return logits, torch.full((len(x), 1), 7.0)

    agent = PolicyAgent(Fixed())
    actions = agent(np.zeros((4, 3), dtype=np.float32))
    assert actions.tolist() == [2, 2, 2, 2]
    assert agent.last_values.tolist() == [7.0] * 4


def test_policy_agent_distribution_follows_probabilities():
    class Biased(torch.nn.Module):
        def forward(self, x):
            logits = torch.log(torch.tensor([[0.8, 0.2]])).repeat(len(x), 1)
            return logits, torch.zeros(len(x), 1)

    torch.manual_seed(0)
    actions = PolicyAgent(Biased())(np.zeros((4000, 1), dtype=np.float32))
    assert abs(actions.mean() - 0.2) < 0.03
