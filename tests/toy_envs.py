"""Tiny deterministic environments whose n-step returns can be worked out by hand."""

from __future__ import annotations

import os
import signal

import gymnasium as gym
import numpy as np
import torch
from torch import nn


class CountEnv(gym.Env):
    """obs = [offset + t]; the step from t pays reward t + 1; ends after `length` steps.

    With `truncate=True` the end is a time limit (truncated), otherwise a terminal state.
    """

    def __init__(self, length: int, truncate: bool = False, offset: int = 0):
        self.length, self.truncate, self.offset = length, truncate, offset
        self.observation_space = gym.spaces.Box(-1e6, 1e6, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.offset + self.t], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        reward = float(self.t + 1)
        self.t += 1
        done = self.t >= self.length
        terminated, truncated = (False, done) if self.truncate else (done, False)
        return self._obs(), reward, terminated, truncated, {}


class ObsValueNet(nn.Module):
    """V(s) = 10 * s[0]; uniform policy over 2 actions. Lets tests know every value exactly."""

    def forward(self, x: torch.Tensor):
        x = x.float()
        return torch.zeros(len(x), 2), 10.0 * x[:, :1]


def zero_agent(states: np.ndarray) -> np.ndarray:
    return np.zeros(len(states), dtype=np.int64)


class CrashEnv(CountEnv):
    """Raises inside `step` after `crash_after` steps: a worker that fails mid-run."""

    def __init__(self, crash_after: int = 200):
        super().__init__(length=50)
        self.crash_after, self.total = crash_after, 0

    def step(self, action):
        self.total += 1
        if self.total > self.crash_after:
            self.fail()
        return super().step(action)

    def fail(self):
        raise RuntimeError("boom: CrashEnv failed on purpose")


class NanRewardEnv(CountEnv):
    """Pays NaN: the loss becomes NaN and training must stop before the bad update."""

    def step(self, action):
        obs, _, terminated, truncated, info = super().step(action)
        return obs, float("nan"), terminated, truncated, info


gym.register("Crash-v0", entry_point=CrashEnv)
gym.register("NanReward-v0", entry_point=lambda: NanRewardEnv(length=20))
gym.register("Count-v0", entry_point=lambda: CountEnv(length=20), max_episode_steps=None)


class SegfaultEnv(CrashEnv):
    """Crashes its whole process with SIGSEGV, as a broken C extension would: no Python
    exception, no traceback."""

    def fail(self):
        os.kill(os.getpid(), signal.SIGSEGV)


gym.register("Segfault-v0", entry_point=SegfaultEnv)
