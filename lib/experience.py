"""n-step experience: play several environments with one agent and emit (first, last) transitions.

For a window of n = `steps_count` steps starting at time t, one `ExperienceFirstLast` holds

    state      s_t
    action     a_t
    reward     r_t + gamma r_{t+1} + ... + gamma^(k-1) r_{t+k-1}      (k = steps <= n)
    last_state s_{t+k}, or None when the episode *terminated* inside the window
    steps      k, the number of rewards summed: the bootstrap term is gamma^k V(s_{t+k})
    last_value V(s_{t+k}) as the agent saw it, when the source was asked to keep it (else None)

k is n for every window except the tail of a finished episode, whose windows are shorter. A
*truncated* episode (a time limit) did not reach a terminal state, so its tail keeps
`last_state` and is bootstrapped like any other window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium.vector import VectorEnv

from lib.agent import Agent
from lib.envs import episode_score


class ExperienceFirstLast(NamedTuple):
    state: np.ndarray
    action: int
    reward: float
    last_state: np.ndarray | None
    steps: int
    last_value: float | None = None


class _Step(NamedTuple):
    state: np.ndarray
    action: int
    reward: float


class EnvStep(NamedTuple):
    """One env's step, as the experience source needs it."""

    next_obs: np.ndarray
    """The observation the step led to (an episode's last one when it ended)."""
    reward: float
    """What the agent learns from (clipped for Atari)."""
    raw_reward: float
    terminated: bool
    truncated: bool
    score: float | None
    """The episode's real score when it ended and the env recorded it, else None."""
    obs: np.ndarray
    """What the agent sees next: `next_obs`, or the first of a new episode after an end."""


class EnvList:
    """Gymnasium envs stepped one after another (`lib.make_env`'s pipeline)."""

    def __init__(self, envs: list[gym.Env]):
        if not envs:
            raise ValueError("envs is empty: pass one gymnasium env or a non-empty list")
        self.envs = envs
        self.n_envs = len(envs)

    def reset(self, seed: int | None) -> list[np.ndarray]:
        return [
            env.reset(seed=None if seed is None else seed + i)[0] for i, env in enumerate(self.envs)
        ]

    def step(self, actions: np.ndarray) -> Iterator[EnvStep]:
        for env, action in zip(self.envs, actions, strict=True):
            next_obs, reward, terminated, truncated, info = env.step(int(action))
            obs, score = next_obs, None
            if terminated or truncated:
                score = episode_score(info)
                obs, _ = env.reset()
            yield EnvStep(next_obs, float(reward), float(reward), terminated, truncated, score, obs)


class VectorEnvSteps:
    """A vector env that steps all its envs in one call (ale-py's `AtariVectorEnv`, in C++)
    and starts a new episode in the same step (`autoreset_mode="SameStep"`); its rewards are
    the game's own, clipped here for learning."""

    def __init__(self, envs: VectorEnv, clip_rewards: bool = True):
        self.envs = envs
        self.n_envs = envs.num_envs
        self.clip_rewards = clip_rewards

    def reset(self, seed: int | None) -> list[np.ndarray]:
        obs, _ = self.envs.reset(seed=seed)
        return list(obs)

    def step(self, actions: np.ndarray) -> Iterator[EnvStep]:
        obs, rewards, terminated, truncated, info = self.envs.step(np.asarray(actions))
        for i in range(self.n_envs):
            done = bool(terminated[i] or truncated[i])
            raw = float(rewards[i])
            reward = max(-1.0, min(1.0, raw)) if self.clip_rewards else raw
            next_obs = info["final_obs"][i] if done else obs[i]
            yield EnvStep(
                next_obs, reward, raw, bool(terminated[i]), bool(truncated[i]), None, obs[i]
            )


class ExperienceSourceFirstLast:
    """Iterate over n-step transitions from one env or a list of envs stepped in lockstep, or
    from a vector env that steps them all in one call.

    The agent is called once per step on the stacked observations of all envs. Episode scores
    (undiscounted; the real game score when the env records `info["episode"]`) are collected
    for `pop_total_rewards`.

    With `reuse_values=True` the agent must also set `last_values`, one V(s) per env, on each
    call (as `PolicyAgent` does). A window that ends in a live state is then held back for one
    step, until the agent has looked at that state, and carries V(last_state) in `last_value`,
    so `unpack_batch` needs no second forward pass. Windows cut by a time limit keep
    `last_value=None`: the agent never sees an episode's final observation.
    """

    def __init__(
        self,
        envs: gym.Env | Sequence[gym.Env] | VectorEnv,
        agent: Agent,
        gamma: float,
        steps_count: int = 2,
        seed: int | None = None,
        reuse_values: bool = False,
    ):
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma={gamma!r} must be in [0, 1]")
        if int(steps_count) != steps_count or steps_count < 1:
            raise ValueError(f"steps_count={steps_count!r} must be an integer >= 1")
        if isinstance(envs, VectorEnv):
            self.steppers: EnvList | VectorEnvSteps = VectorEnvSteps(envs)
        else:
            self.steppers = EnvList([envs] if isinstance(envs, gym.Env) else list(envs))
        self.agent = agent
        self.gamma = float(gamma)
        self.steps_count = int(steps_count)
        self.seed = seed
        self.reuse_values = reuse_values
        self._total_rewards: list[float] = []
        self._total_steps: list[int] = []

    def _discounted(self, rewards: Sequence[float]) -> float:
        total = 0.0
        for r in reversed(rewards):
            total = r + self.gamma * total
        return total

    def _window(self, history: Sequence[_Step], last_state: np.ndarray | None):
        first = history[0]
        return ExperienceFirstLast(
            state=first.state,
            action=first.action,
            reward=self._discounted([s.reward for s in history]),
            last_state=last_state,
            steps=len(history),
        )

    def __iter__(self) -> Iterator[ExperienceFirstLast]:
        n_envs = self.steppers.n_envs
        states = self.steppers.reset(self.seed)
        histories: list[deque[_Step]] = [deque() for _ in range(n_envs)]
        raw_scores = [0.0] * n_envs
        lengths = [0] * n_envs
        waiting: list[tuple[int, ExperienceFirstLast]] = []  # (env, window) needing V(last)

        while True:
            actions = self.agent(np.stack(states))
            if waiting:
                values = self.agent.last_values  # type: ignore[attr-defined]
                for i, exp in waiting:
                    yield exp._replace(last_value=float(values[i]))
                waiting.clear()
            for i, step in enumerate(self.steppers.step(actions)):
                raw_scores[i] += step.raw_reward
                lengths[i] += 1
                history = histories[i]
                history.append(_Step(states[i], int(actions[i]), step.reward))
                if step.terminated or step.truncated:
                    score = raw_scores[i] if step.score is None else step.score
                    self._total_rewards.append(score)
                    self._total_steps.append(lengths[i])
                    raw_scores[i], lengths[i] = 0.0, 0
                    last = None if step.terminated else step.next_obs
                    while history:  # the tail: every remaining window, shorter and shorter
                        yield self._window(history, last)
                        history.popleft()
                elif len(history) == self.steps_count:
                    if self.reuse_values:  # states[i] becomes next_obs: V comes next step
                        waiting.append((i, self._window(history, step.next_obs)))
                    else:
                        yield self._window(history, step.next_obs)
                    history.popleft()
                states[i] = step.obs

    def pop_total_rewards(self) -> list[float]:
        """Scores of the episodes finished since the last call (and forget them)."""
        rewards, self._total_rewards = self._total_rewards, []
        self._total_steps = []
        return rewards

    def pop_rewards_steps(self) -> list[tuple[float, int]]:
        """(score, length in steps) of the episodes finished since the last call."""
        result = list(zip(self._total_rewards, self._total_steps, strict=True))
        self._total_rewards, self._total_steps = [], []
        return result
