"""Environments: the reference code's Atari pipeline on gymnasium + ale-py, and plain vector
envs (CartPole).

gymnasium already has almost every piece the reference code's `wrap_dqn` built by hand; we add
`FireResetEnv`. The wrapper order, from the emulator outwards:

    ALE (frameskip=1) -> AtariPreprocessing (no-op starts, skip 4 + max of last 2 frames,
    84x84 grayscale) -> FireResetEnv -> FrameStackObservation(4) -> RecordEpisodeStatistics
    -> ClipReward(-1, 1)

`RecordEpisodeStatistics` sits *before* reward clipping, so `info["episode"]["r"]` is the real
game score of the whole game, while the agent learns from the clipped reward.
"""

from __future__ import annotations

import importlib
from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
from gymnasium.wrappers import (
    AtariPreprocessing,
    ClipReward,
    FrameStackObservation,
    RecordEpisodeStatistics,
)

gym.register_envs(ale_py)
# The emulator greets every new env on stderr; keep notebooks and worker logs clean.
ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)

DEFAULT_ENV_ID = "PongNoFrameskip-v4"
FRAME_STACK = 4
FRAME_SIZE = 84


class FireResetEnv(gym.Wrapper):
    """Press FIRE (then RIGHT) after every reset. Breakout launches its ball only on FIRE; Pong
    serves by itself, and there the wrapper only adds two steps, as the classic DQN wrappers do."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        meanings = env.unwrapped.get_action_meanings()
        if len(meanings) < 3 or meanings[1] != "FIRE":
            raise ValueError(f"FireResetEnv needs FIRE as action 1, got {meanings}")

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        for action in (1, 2):  # FIRE, then a move, as the classic DQN wrappers do
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset()
        return obs, info


def check_env_id(env_id: str) -> None:
    """Raise a ValueError when `env_id` is not registered, in gymnasium's own words (which
    suggest the closest name or versions).

    Like `gym.make`, a "module:EnvName-v0" id imports the module that registers the env.
    """
    if ":" in env_id:
        module, env_id = env_id.split(":", 1)
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ValueError(f"cannot import {module!r} to register {env_id!r}: {exc}") from exc
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise ValueError(
            f"unknown environment id {env_id!r}: {exc} Atari ids look like "
            "'PongNoFrameskip-v4' or 'ALE/Pong-v5'; see gymnasium.pprint_registry()."
        ) from None


def is_atari(env_id: str) -> bool:
    """True for ids backed by the Arcade Learning Environment."""
    check_env_id(env_id)
    entry = gym.spec(env_id.split(":")[-1]).entry_point
    return "ale_py" in str(entry)


def make_env(
    env_id: str = DEFAULT_ENV_ID,
    seed: int | None = None,
    clip_rewards: bool = True,
    noop_max: int = 30,
    render_mode: str | None = None,
    fire_reset: bool = True,
    stack_padding: str = "reset",
) -> gym.Env:
    """Build one environment.

    Atari ids give `uint8` observations of shape (4, 84, 84): the last four 84x84 grayscale
    frames, oldest first. Other ids (CartPole-v1) are returned as gymnasium makes them. Either
    way `info["episode"]["r"]` at the end of an episode holds its real, unclipped score.
    `fire_reset=False` leaves out `FireResetEnv`, and `stack_padding="zero"` starts an episode's
    stack with blank frames instead of copies of the first: `make_vector_env`'s conventions.
    """
    check_env_id(env_id)
    kwargs: dict[str, Any] = {} if render_mode is None else {"render_mode": render_mode}
    if not is_atari(env_id):
        env = RecordEpisodeStatistics(gym.make(env_id, **kwargs))
    else:
        # AtariPreprocessing does the frame skipping itself, so the emulator must not.
        env = gym.make(env_id, frameskip=1, **kwargs)
        env = AtariPreprocessing(
            env,
            noop_max=noop_max,
            frame_skip=4,
            screen_size=FRAME_SIZE,
            terminal_on_life_loss=False,
            grayscale_obs=True,
            scale_obs=False,
        )
        if fire_reset and "FIRE" in env.unwrapped.get_action_meanings()[1:2]:
            env = FireResetEnv(env)
        env = FrameStackObservation(env, FRAME_STACK, padding_type=stack_padding)
        env = RecordEpisodeStatistics(env)
        if clip_rewards:
            env = ClipReward(env, -1.0, 1.0)
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def make_vector_env(
    env_id: str,
    n_envs: int,
    seed: int | None = None,
    noop_max: int = 30,
    fire_reset: bool = True,
    threads: int = 1,
) -> gym.vector.VectorEnv:
    """`n_envs` Atari games stepped together in C++ by ale-py's `AtariVectorEnv`.

    The same preprocessing as `make_env` (frame skip 4 with the max of the last two frames,
    84x84 grayscale by area, four stacked frames, no-op starts), done by a thread pool of
    `threads` instead of Python wrappers. Two conventions differ: an episode's stack starts with
    blank frames, and FIRE is pressed once on reset where the game has it (`make_env` presses
    FIRE then RIGHT). Rewards are the game's own (`lib.experience` clips them), and a finished
    game restarts in the same step, its last observation in `info["final_obs"]`.
    """
    from ale_py.vector_env import AtariVectorEnv

    if not is_atari(env_id):
        raise ValueError(f"{env_id!r} is not an Atari game: the vector env plays only those")
    spec = gym.spec(env_id.split(":")[-1])
    game = spec.kwargs["game"]
    meanings = gym.make(env_id).unwrapped.get_action_meanings()
    envs = AtariVectorEnv(
        game,
        n_envs,
        num_threads=threads,
        repeat_action_probability=spec.kwargs.get("repeat_action_probability", 0.25),
        max_num_frames_per_episode=spec.kwargs.get("max_num_frames_per_episode", 108_000),
        noop_max=noop_max,
        use_fire_reset=fire_reset and meanings[1:2] == ["FIRE"],
        reward_clipping=False,
        autoreset_mode="SameStep",
    )
    if seed is not None:
        envs.reset(seed=seed)
    return envs


def obs_shape_and_actions(env_id: str) -> tuple[tuple[int, ...], int]:
    """Observation shape and number of actions, without keeping an env open."""
    env = make_env(env_id)
    try:
        shape = env.observation_space.shape
        assert shape is not None and isinstance(env.action_space, gym.spaces.Discrete)
        return tuple(shape), int(env.action_space.n)
    finally:
        env.close()


def episode_score(info: dict[str, Any]) -> float | None:
    """The real score of a finished episode from its last `info`, or None if not recorded."""
    episode = info.get("episode")
    if episode is None:
        return None
    return float(np.asarray(episode["r"]).item())
