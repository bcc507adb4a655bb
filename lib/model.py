"""Actor-critic networks: the reference code's `AtariA2C` and a small MLP for vector observations.

Both map a batch of observations to `(logits, value)`:

    =========  ==================  =====================
    tensor     shape               dtype
    =========  ==================  =====================
    input      (B, *obs_shape)     uint8 (Atari) / float
    logits     (B, n_actions)      float32
    value      (B, 1)              float32
    =========  ==================  =====================
"""

from __future__ import annotations

import torch
from torch import nn

from lib.config import A3CConfig


class AtariA2C(nn.Module):
    """Conv trunk (32-64-64) shared by a policy head and a value head of 512 units each.

    Frames arrive as `uint8` and are scaled to [0, 1] inside `forward`, so they cross process
    boundaries and batches at a quarter of the size of float32.
    """

    def __init__(self, input_shape: tuple[int, ...], n_actions: int, hidden_size: int = 512):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(input_shape[0], 32, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            conv_out = self.conv(torch.zeros(1, *input_shape)).shape[1]
        self.policy = nn.Sequential(
            nn.Linear(conv_out, hidden_size), nn.ReLU(), nn.Linear(hidden_size, n_actions)
        )
        self.value = nn.Sequential(
            nn.Linear(conv_out, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1)
        )
        # Channels-last conv weights: on CPU the update ran ~20% and inference ~10% faster
        # (benchmarks/README.md). Same numbers, another memory layout.
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.conv(x.float() / 255.0)
        return self.policy(features), self.value(features)


class SmallAtariA2C(nn.Module):
    """The A3C paper's network (Mnih et al., 2016): conv 16-32 and one shared 256-unit layer.

    About a quarter of `AtariA2C`'s multiply-adds per frame, so on a CPU, where the network
    costs most of each frame, a run plays and learns several times more frames per second.
    Policy and value are two linear outputs of the same hidden layer, as in the paper.
    """

    def __init__(self, input_shape: tuple[int, ...], n_actions: int, hidden_size: int = 256):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(input_shape[0], 16, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            conv_out = self.trunk(torch.zeros(1, *input_shape)).shape[1]
        self.trunk.extend([nn.Linear(conv_out, hidden_size), nn.ReLU()])
        self.policy = nn.Linear(hidden_size, n_actions)
        self.value = nn.Linear(hidden_size, 1)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x.float() / 255.0)
        return self.policy(features), self.value(features)


class MlpA2C(nn.Module):
    """Two-layer MLP trunk with policy and value heads, for CartPole-like vector observations."""

    def __init__(self, input_shape: tuple[int, ...], n_actions: int, hidden_size: int = 128):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Flatten(),
            nn.Linear(int(torch.tensor(input_shape).prod()), hidden_size),
            nn.Tanh(),
            nn.Linear(hidden_size, hidden_size),
            nn.Tanh(),
        )
        self.policy = nn.Linear(hidden_size, n_actions)
        self.value = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x.float())
        return self.policy(features), self.value(features)


NETWORKS: dict[str, type[nn.Module]] = {
    "atari": AtariA2C,
    "atari-small": SmallAtariA2C,
    "mlp": MlpA2C,
}
"""The class of each network a config can name (`lib.config.NETS`)."""


def make_net(config: A3CConfig, input_shape: tuple[int, ...], n_actions: int) -> nn.Module:
    """The network named by `config.net`."""
    cls = NETWORKS[config.net]
    return cls(input_shape, n_actions, hidden_size=config.hidden_size)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
