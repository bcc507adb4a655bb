"""The run record: everything a run keeps besides its network and optimiser.

`RunRecord` counts the frames the learner consumed, keeps the episode scores and the stop
bound (`RewardTracker`), the TensorBoard log, the learning curve (`curve.json`), the two
checkpoints (`last.pt` to resume, `best.pt` at the best mean score) and `summary.json`. Its
clock is the run's training time across resumes. The update step (`lib.update`) makes the
updates; this only writes down what they did.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.tensorboard import SummaryWriter

from lib.checkpoint import save_checkpoint
from lib.config import A3CConfig, Layout, usable_cores
from lib.messages import EpisodeScores
from lib.tracking import (
    RewardTracker,
    Summary,
    TBMeanTracker,
    config_table,
    finite_or_none,
    learning_curve,
    machine_info,
    write_json_atomic,
)
from lib.update import Update

BEST_SAVE_SECONDS = 60.0
"""The best model is written at most this often (and always at exit)."""


@dataclass
class Progress:
    """A snapshot for progress displays and notebook callbacks."""

    frames: int
    updates: int
    episodes: int
    elapsed: float
    fps: float
    mean_score: float
    best_mean_score: float | None
    scores: list[float] = field(default_factory=list)
    """Every episode score so far, in the order the learner received them."""
    score_frames: list[int] = field(default_factory=list)
    """The frame count at which each score arrived."""
    score_seconds: list[float] = field(default_factory=list)
    """Seconds since the start of `train` at which each score arrived."""


class RunRecord:
    """Scores, TensorBoard, the curve, checkpoints and the summary of one run (see the module).

    `learner_state(with_optimizer)` gives the update step's part of a checkpoint (weights, and
    for `last.pt` the optimiser and update count); `shape` is what the checkpoint says the
    network was made for: (observation shape, number of actions).
    """

    def __init__(
        self,
        config: A3CConfig,
        run_dir: str | os.PathLike,
        device: torch.device,
        learner_state: Callable[[bool], dict[str, Any]],
        shape: tuple[tuple[int, ...], int],
        resume: dict[str, Any] | None = None,
    ):
        self.config = config
        self.device = device
        self.learner_state = learner_state
        self.obs_shape, self.n_actions = shape
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.tracker = RewardTracker(config.score_window, config.stop_score)
        self.frames = self.updates = 0
        self.seconds_before = 0.0
        """Training seconds of the run before this process took it over (a resume)."""
        self.scores: list[float] = []
        self.score_frames: list[int] = []
        self.score_seconds: list[float] = []
        if resume is not None:
            self._restore(resume)
        self.updates_at_start = self.updates
        self.bytes_in = self.bytes_out = 0
        """Bytes of the workers' messages, and of weights serialised for them, so far."""
        self.restarts = 0
        self.writer = SummaryWriter(
            log_dir=str(run_dir), purge_step=self.frames if resume else None
        )
        self.writer.add_text("config", config_table(config.to_dict().items()), self.frames)
        self.tb = TBMeanTracker(self.writer, every=10)
        self.start = time.monotonic()
        self.first_update: tuple[float, int] | None = None
        """(time, frames) at the first update: the steady state is measured from there."""
        self.wait_seconds = 0.0
        """Seconds the learner waited for the workers since its last update."""
        self._best: dict[str, Any] | None = None
        self._best_saved_at = self.start
        self.layout: Layout | None = None
        """The machine's layout the config was fitted to, for the summary (None: as given)."""

    def _restore(self, state: dict[str, Any]) -> None:
        """Go on from a checkpoint: counters, scores and the curve's clock."""
        self.frames, self.updates = int(state["frames"]), int(state["updates"])
        for score in state.get("scores", []):
            self.tracker.add(score)
        self.tracker.episodes = int(state["episodes"])
        self.tracker.best_mean = state.get("best_mean_score")
        self.seconds_before = float(state.get("wall_seconds", 0.0))
        history = state.get("history", {})  # checkpoints older than curve.json have none
        self.scores = list(history.get("scores", []))
        self.score_frames = list(history.get("frames", []))
        self.score_seconds = list(history.get("seconds", []))

    # --- during the run ----------------------------------------------------------------------

    def run_seconds(self, now: float | None = None) -> float:
        """Training seconds of the whole run, across resumes: the clock of its learning curve."""
        now = time.monotonic() if now is None else now
        return self.seconds_before + now - self.start

    def add_scores(self, item: EpisodeScores) -> bool:
        """Record finished episodes; True once the mean score reaches the stop bound."""
        now = time.monotonic()
        solved = False
        for score, steps in zip(item.scores, item.steps, strict=True):
            solved = self.tracker.add(score) or solved
            self.scores.append(score)
            self.score_frames.append(self.frames)
            self.score_seconds.append(self.run_seconds(now))
            self.writer.add_scalar("charts/episode_score", score, self.frames)
            self.writer.add_scalar("charts/episode_steps", steps, self.frames)
            if self.tracker.full:
                self.writer.add_scalar("charts/score_mean", self.tracker.mean, self.frames)
                if self.tracker.mean >= self.tracker.best_mean:
                    self._best = self.checkpoint_state(with_optimizer=False)
        if self._best is not None and now - self._best_saved_at >= BEST_SAVE_SECONDS:
            self.save_best()
        return solved

    def waited(self, seconds: float) -> None:
        """Count time spent waiting for the workers (logged as `perf/wait_s`)."""
        self.wait_seconds += seconds

    def log_update(self, update: Update, workers: Any = None) -> None:
        """Write down one update: its losses and lag, frames/s, the wait for the workers, and
        the bytes that crossed (`workers` is the run's `lib.pool.Pool`, if any)."""
        self.updates = update.number
        if self.first_update is None:
            self.first_update = (time.monotonic(), self.frames)
        step = self.frames
        for tag, value in update.means.items():
            self.tb.track(tag, value, step)
        for tag, value in update.maxima.items():
            self.tb.track(tag, value, step, reduce=max)
        self.tb.track("perf/wait_s", self.wait_seconds, step)
        self.tb.track("perf/fps", self.steady_fps(), step)
        self.wait_seconds = 0.0
        if workers is None:
            return
        self.tb.track("perf/bytes_per_update", workers.bytes_delivered - self.bytes_in, step)
        self.tb.track(
            "perf/weights_bytes_per_update", workers.bytes_published - self.bytes_out, step
        )
        self.bytes_in, self.bytes_out = workers.bytes_delivered, workers.bytes_published
        if workers.restarts != self.restarts:
            self.restarts = workers.restarts
            self.writer.add_scalar("perf/worker_restarts", self.restarts, step)

    def workers_started(self, nodes: list[str] | None) -> None:
        """Note where the workers run (Ray actors: "host (node id)"; None for local ones)."""
        if nodes is not None:
            rows = [(f"worker {i}", node) for i, node in enumerate(nodes)]
            self.writer.add_text("workers", config_table(rows), self.frames)

    def limit_reached(self) -> str | None:
        """ "max_frames" or "max_seconds" once that limit of the config is reached.

        Frames count over the whole run (a resumed run goes on from its checkpoint's count);
        seconds count this process's time, so a resumed run gets `max_seconds` more.
        """
        c = self.config
        if c.max_frames and self.frames >= c.max_frames:
            return "max_frames"
        if c.max_seconds and time.monotonic() - self.start >= c.max_seconds:
            return "max_seconds"
        return None

    def steady_fps(self, now: float | None = None) -> float:
        """Frames per second since the first update: start-up (spawning, env creation) left out."""
        now = time.monotonic() if now is None else now
        if self.first_update is None or now <= self.first_update[0]:
            return 0.0
        return (self.frames - self.first_update[1]) / (now - self.first_update[0])

    def progress(self, now: float | None = None) -> Progress:
        now = time.monotonic() if now is None else now
        return Progress(
            self.frames,
            self.updates,
            self.tracker.episodes,
            self.run_seconds(now),
            self.steady_fps(now),
            self.tracker.mean,
            self.tracker.best_mean,
            list(self.scores),
            list(self.score_frames),
            list(self.score_seconds),
        )

    # --- checkpoints and the end of the run --------------------------------------------------

    def checkpoint_state(self, with_optimizer: bool = True) -> dict[str, Any]:
        """The network's part (from the update step) and the record's: counters and scores;
        `with_optimizer` adds what a resumed run needs to go on where this one stops."""
        data = {
            **self.learner_state(with_optimizer),
            "config": self.config.to_dict(),
            "obs_shape": list(self.obs_shape),
            "n_actions": self.n_actions,
            "frames": self.frames,
            "episodes": self.tracker.episodes,
            "scores": list(self.tracker.scores),
            "best_mean_score": self.tracker.best_mean,
            "wall_seconds": round(self.run_seconds(), 3),
        }
        if with_optimizer:
            data["history"] = {
                "scores": list(self.scores),
                "frames": list(self.score_frames),
                "seconds": list(self.score_seconds),
            }
        return data

    def save_last(self) -> None:
        """Write `last.pt` and `curve.json`, unless the weights are no longer finite (keep the
        good checkpoint)."""
        state = self.checkpoint_state()
        # Hogwild's workers count their updates themselves, and a report can be lost when they
        # stop: the count saved with the weights is the run's, so the summary says it too.
        self.updates = state["updates"]
        if all(torch.isfinite(v).all() for v in state["model"].values()):
            save_checkpoint(self.ckpt_dir / "last.pt", state)
            write_json_atomic(self.run_dir / "curve.json", curve(self))

    def save_best(self) -> None:
        """Write `best.pt` from the snapshot taken when the mean score was highest."""
        if self._best is not None:
            save_checkpoint(self.ckpt_dir / "best.pt", self._best)
            self._best, self._best_saved_at = None, time.monotonic()

    def close(self) -> None:
        """Write what TensorBoard still holds and close its file."""
        self.tb.flush(self.frames)
        self.writer.close()


def curve(record: RunRecord) -> dict[str, Any]:
    """The learning curve so far, with its settings and machine: `curve.json`'s content."""
    config = record.config
    return {
        "preset": config.preset,
        "env_id": config.env_id,
        "config": config.to_dict(),
        "machine": {**machine_info(), "device": str(record.device)},
        "frames": record.frames,
        "seconds": round(record.run_seconds(), 1),
        "points": learning_curve(
            record.scores, record.score_frames, record.score_seconds, config.score_window
        ),
    }


def write_summary(
    record: RunRecord, stop_reason: str, error: str | None, end: float, workers: Any = None
) -> Summary:
    """The run's `Summary` (`workers`: its `lib.pool.Pool`, if any), written to
    `summary.json` and TensorBoard."""
    first = record.first_update[0] if record.first_update else end
    done = record.updates - record.updates_at_start
    summary = Summary(
        preset=record.config.preset,
        env_id=record.config.env_id,
        solved=stop_reason == "solved",
        stop_reason=stop_reason,
        frames=record.frames,
        updates=record.updates,
        episodes=record.tracker.episodes,
        wall_seconds=round(record.run_seconds(end), 3),
        startup_seconds=round(first - record.start, 3),
        steady_fps=round(record.steady_fps(end), 1),
        mean_score=finite_or_none(record.tracker.mean),
        best_mean_score=finite_or_none(record.tracker.best_mean),
        device=str(record.device),
        run_dir=str(record.run_dir),
        error=error,
        bytes_per_update=round(record.bytes_in / done) if done else None,
        weights_bytes_per_update=round(record.bytes_out / done) if done else None,
        worker_nodes=None if workers is None else workers.nodes,
        worker_restarts=0 if workers is None else workers.restarts,
        cores=usable_cores(),
        layout=None if record.layout is None else dataclasses.asdict(record.layout),
    )
    summary.save(record.run_dir / "summary.json")
    record.writer.add_text("summary", summary.line(), record.frames)
    return summary
