"""Single-process A2C: the baseline A3C is measured against.

Same network, hyperparameters, loss and update (`a2c_update`) as the A3C learner, and the same
total number of envs (`processes * envs_per_process`), but one process does everything in turn:
step the envs, unpack, update. Whatever A3C gains over this comes from running the workers in
parallel with the learner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from lib.a2c import a2c_update, learning_rate_at, set_learning_rate, unpack_batch
from lib.agent import PolicyAgent, default_device
from lib.config import A3CConfig, validate
from lib.envs import make_env
from lib.experience import ExperienceSourceFirstLast
from lib.model import make_net
from lib.tracking import RewardTracker


@dataclass
class A2CResult:
    frames: int
    updates: int
    wall_seconds: float
    startup_seconds: float
    steady_fps: float
    solved: bool
    scores: list[float] = field(default_factory=list)
    score_frames: list[int] = field(default_factory=list)
    score_seconds: list[float] = field(default_factory=list)


def train_a2c(
    config: A3CConfig, max_frames: int, device: str = "auto", threads: int | None = None
) -> A2CResult:
    """Train for `max_frames` frames (or until the preset's score bound) in this process,
    with `threads` torch threads (default: torch's own choice, one per core)."""
    validate(config)
    dev = default_device(device)
    saved_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _train(config, max_frames, dev)
    finally:
        torch.set_num_threads(saved_threads)


def _train(config: A3CConfig, max_frames: int, dev: torch.device) -> A2CResult:
    start = time.monotonic()
    torch.manual_seed(config.seed)
    envs = [make_env(config.env_id, seed=config.seed + i) for i in range(config.total_envs)]
    obs_shape = envs[0].observation_space.shape
    net = make_net(config, tuple(obs_shape), int(envs[0].action_space.n)).to(dev)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate, eps=config.adam_eps)
    source = ExperienceSourceFirstLast(
        envs,
        PolicyAgent(net, dev),
        gamma=config.gamma,
        steps_count=config.reward_steps,
        reuse_values=config.reuse_values,
    )
    tracker = RewardTracker(config.score_window, config.stop_score)
    result = A2CResult(0, 0, 0.0, 0.0, 0.0, False)
    batch = []
    first_update: tuple[float, int] | None = None
    for exp in source:
        for score in source.pop_total_rewards():
            result.solved = tracker.add(score) or result.solved
            result.scores.append(score)
            result.score_frames.append(result.frames)
            result.score_seconds.append(time.monotonic() - start)
        batch.append(exp)
        result.frames += 1
        if len(batch) < config.batch_size:
            continue
        data = unpack_batch(batch, net, dev, gamma=config.gamma)
        batch.clear()
        set_learning_rate(optimizer, learning_rate_at(config, result.updates))
        a2c_update(
            net,
            optimizer,
            type(data)(*(t.to(dev) for t in data)),
            config.entropy_beta,
            config.clip_grad,
            config.value_loss_coef,
        )
        result.updates += 1
        if first_update is None:
            first_update = (time.monotonic(), result.frames)
        out_of_time = config.max_seconds and time.monotonic() - start >= config.max_seconds
        if result.frames >= max_frames or result.solved or out_of_time:
            break
    end = time.monotonic()
    for env in envs:
        env.close()
    result.wall_seconds = end - start
    if first_update is not None and end > first_update[0]:
        result.startup_seconds = first_update[0] - start
        result.steady_fps = (result.frames - first_update[1]) / (end - first_update[0])
    return result
