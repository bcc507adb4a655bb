"""A3C with data parallelism, built to be read: every piece the notebooks teach lives here once."""

import lib.deps  # noqa: F401  first: it names any missing package and the line that installs it
from lib.a2c import A2CLoss, Batch, a2c_loss, unpack_batch
from lib.agent import PolicyAgent, RandomAgent, default_device
from lib.config import (
    BREAKOUT,
    CARTPOLE,
    PONG,
    PRESETS,
    A3CConfig,
    ConfigError,
    get_preset,
    quick_mode,
)
from lib.envs import FireResetEnv, make_env
from lib.experience import ExperienceFirstLast, ExperienceSourceFirstLast
from lib.model import AtariA2C, MlpA2C, SmallAtariA2C, make_net
from lib.tracking import RewardTracker, Summary

__all__ = [
    "A2CLoss",
    "A3CConfig",
    "AtariA2C",
    "BREAKOUT",
    "Batch",
    "CARTPOLE",
    "ConfigError",
    "ExperienceFirstLast",
    "ExperienceSourceFirstLast",
    "FireResetEnv",
    "MlpA2C",
    "PONG",
    "PRESETS",
    "PolicyAgent",
    "RandomAgent",
    "RewardTracker",
    "SmallAtariA2C",
    "Summary",
    "a2c_loss",
    "default_device",
    "get_preset",
    "make_env",
    "make_net",
    "quick_mode",
    "unpack_batch",
]
