"""The learner's two halves driven by hand, as `lib.a3c.learn` drives them, without workers."""

from __future__ import annotations

import time

import numpy as np
import torch

from lib import get_preset
from lib.a2c import Batch
from lib.a3c import make_learner
from lib.messages import MicroBatch, TrainingMessage
from lib.record import RunRecord, write_summary
from lib.tracking import Summary
from lib.update import UpdateStep


def learner(config, run_dir, resume=None) -> tuple[UpdateStep, RunRecord]:
    return make_learner(config, run_dir, torch.device("cpu"), resume)


def feed(step: UpdateStep, record: RunRecord, message: TrainingMessage) -> bool:
    """What the learner loop does with a training message; True when it made an update."""
    record.frames += message.frames
    update = step.add(message)
    if update is not None:
        record.log_update(update)
    return update is not None


def finish(record: RunRecord, stop_reason: str = "max_frames", end: float | None = None) -> Summary:
    """The clean-up's saving stages, in their order."""
    record.save_last()
    record.save_best()
    summary = write_summary(record, stop_reason, None, time.monotonic() if end is None else end)
    record.close()
    return summary


def micro_batch(n: int, value: float = 1.0) -> MicroBatch:
    states = np.full((n, 4), 0.5, dtype=np.float32)
    return MicroBatch(0, states, np.zeros(n, dtype=np.int64), np.full(n, value, np.float32))


def cartpole_batch(n: int, seed: int) -> Batch:
    """A made-up CartPole batch: states, actions and reference values from `seed`."""
    g = torch.Generator().manual_seed(seed)
    return Batch(
        torch.randn(n, 4, generator=g),
        torch.randint(0, 2, (n,), generator=g),
        torch.randn(n, generator=g) * 5,
    )


def endless_cartpole(**overrides):
    """CartPole that is never solved and never runs out of frames: each run a test starts
    ends the way the test makes it end."""
    base = {"processes": 2, "envs_per_process": 2, "max_frames": 10**9, "stop_score": 1e9}
    return get_preset("cartpole", **{**base, **overrides})
