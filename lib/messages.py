"""Every message a worker sends to the main process, in one place.

A worker sends `EpisodeScores` whenever episodes finish, and one training message per
micro-batch: `MicroBatch` (its experience, variant "data"), `Gradients` (the A2C loss's
gradient on it, variant "grad") or `Applied` (the update it made itself, variant "hogwild").
`WorkerFailed` carries the traceback of a worker that caught an exception. `lib.a3c.learn`
matches on these types; any other is an error.

Versions are the learner's update count, which every worker can read: `first_version` is the
count when a micro-batch's first transition came in, so `updates - first_version` at training
time is the data's *policy lag*, in every variant.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class EpisodeScores(NamedTuple):
    """Scores (the real game score) and lengths of the episodes a worker finished."""

    worker_id: int
    scores: list[float]
    steps: list[int]


class MicroBatch(NamedTuple):
    """`micro_batch_size` training samples as numpy arrays (states stay uint8 for Atari)."""

    worker_id: int
    states: np.ndarray
    actions: np.ndarray
    ref_values: np.ndarray
    first_version: int = 0
    """The update count when the first transition came in (the oldest action is at most
    `reward_steps` steps older)."""
    bootstrap_age: int = 0
    """Updates made while this micro-batch filled (0 with `reuse_values=False`): at most how
    much older its reused bootstrap values V(s_last) are than a forward pass at the end."""

    @property
    def frames(self) -> int:
        return len(self.actions)


class Gradients(NamedTuple):
    """The A2C loss's gradient on one micro-batch (float32, one array per parameter, in
    `net.parameters()` order) and the loss parts the learner logs."""

    worker_id: int
    grads: list[np.ndarray]
    frames: int
    """Samples in the micro-batch the gradient was computed on."""
    weights_version: int
    """The update count of the weights the gradient was taken at."""
    bootstrap_age: int
    """As `MicroBatch.bootstrap_age`."""
    stats: dict[str, float]
    """The loss parts and batch means, under their TensorBoard tags."""
    first_version: int = 0
    """As `MicroBatch.first_version`: how old the data is."""


class Applied(NamedTuple):
    """A Hogwild worker applied an update to the shared weights itself (variant "hogwild"):
    what the main process logs of it."""

    worker_id: int
    frames: int
    """Samples in the batch the update was computed on (`batch_size`)."""
    stats: dict[str, float]
    """The loss parts, batch means and gradient norm, under their TensorBoard tags."""
    policy_lag: int
    """Updates the other workers applied since the batch's first action."""
    bootstrap_age: int
    """As `MicroBatch.bootstrap_age`."""


class WorkerFailed(NamedTuple):
    """A worker caught an exception; the learner raises it with this traceback."""

    worker_id: int
    traceback: str


Message = EpisodeScores | MicroBatch | Gradients | Applied | WorkerFailed
TrainingMessage = MicroBatch | Gradients | Applied
