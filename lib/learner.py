"""The A3C learner: one network and one optimizer, trained on what the workers send.

`Learner` owns everything the run's main process keeps: the network whose weights the workers
act with, Adam, the frame and update counters, the recent scores, the TensorBoard log and the
checkpoints. `lib.a3c.learn` hands it each message from the workers; every `batch_size` frames
it makes one A2C update (notebook 4) and logs what the seed logs.
"""

from __future__ import annotations

import copy
import ctypes
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from lib.a2c import A2CLoss, Batch, a2c_update, apply_gradients
from lib.checkpoint import check_compatible, load_checkpoint, save_checkpoint
from lib.config import A3CConfig
from lib.envs import obs_shape_and_actions
from lib.model import make_net
from lib.pool import WorkerRestarted
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
from lib.worker import EpisodeScores, Gradients, MicroBatch

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


class WorkerWeights:
    """The network the workers act with, and how the learner keeps it current.

    Shared (the seed's way, and always on a CPU): the workers read the learner's own network,
    CPU tensors in shared memory or CUDA tensors shared by CUDA, so inference runs on the
    learner's device and sees every update at once. Copied (`worker_device="cpu"` with a GPU
    learner): the workers read a CPU copy in shared memory, which `publish` refreshes after
    every update, so inference runs on the workers' own CPU cores and the GPU only learns.
    """

    def __init__(self, net: nn.Module, copied: bool, updates: int = 0):
        self.source = net
        self.copied = copied
        # The learner's update count, which the workers read to tag what they send: a raw
        # shared integer, lock-free like the pool's stop flag.
        self.version = mp.get_context("spawn").RawValue(ctypes.c_int64, updates)
        self.net = copy.deepcopy(net).cpu() if copied else net
        self.device = "cpu" if copied else str(next(net.parameters()).device)
        if self.device == "cpu":
            self.net.share_memory()
        self._pairs = list(
            zip(self.net.state_dict().values(), net.state_dict().values(), strict=True)
        )

    @torch.no_grad()
    def publish(self) -> None:
        """Copy the learner's weights into the workers' copy (nothing to do when shared), then
        count one more update."""
        if self.copied:
            for dst, src in self._pairs:
                dst.copy_(src)
        self.version.value += 1


def gather(micro_batches: list[MicroBatch], device: torch.device) -> Batch:
    """Concatenate micro-batches into one training batch on `device` (states still uint8)."""
    return Batch(
        *(
            torch.from_numpy(np.concatenate([getattr(m, name) for m in micro_batches])).to(device)
            for name in ("states", "actions", "ref_values")
        )
    )


class Learner:
    """Turns the workers' micro-batches into A2C updates, and keeps the run's records."""

    def __init__(
        self,
        config: A3CConfig,
        run_dir: str | os.PathLike,
        device: torch.device,
        resume: str | os.PathLike | None = None,
    ):
        self.config = config
        self.device = device
        self.obs_shape, self.n_actions = obs_shape_and_actions(config.env_id)
        state = None
        if resume is not None:  # checked before anything is written
            state = load_checkpoint(resume)
            check_compatible(state, config, self.obs_shape, self.n_actions)
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)

        torch.manual_seed(config.seed)
        self.net = make_net(config, self.obs_shape, self.n_actions)
        self.tracker = RewardTracker(config.score_window, config.stop_score)
        self.frames = self.updates = 0
        self.seconds_before = 0.0
        """Training seconds of the run before this process took it over (`resume`)."""
        self.scores: list[float] = []
        self.score_frames: list[int] = []
        self.score_seconds: list[float] = []
        self.net.to(device)
        # made after the move, so its state lives on the same device as the weights
        self.optimizer = torch.optim.Adam(
            self.net.parameters(), lr=config.learning_rate, eps=config.adam_eps
        )
        if state is not None:
            self.restore(state)
        self.updates_at_start = self.updates
        self.bytes_in = 0
        """Bytes the workers' messages took in the pipes, this process's share of the run."""
        self.bytes_out = 0
        """Bytes of weights serialised for the workers (Ray actors; 0 for local workers)."""
        self.weights = WorkerWeights(
            self.net,
            copied=config.worker_device == "cpu" and device.type != "cpu",
            updates=self.updates,
        )

        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=self.frames if state else None)
        self.writer.add_text("config", config_table(config.to_dict().items()), self.frames)
        self.tb = TBMeanTracker(self.writer, every=10)
        self.start = time.monotonic()
        self.first_update: tuple[float, int] | None = None
        """(time, frames) at the first update: the steady state is measured from there."""
        self.wait_seconds = 0.0
        """Seconds the learner waited for the workers since its last log line."""
        self._batch: list[MicroBatch] = []
        self._batch_frames = 0
        self._grads: list[Gradients] = []
        self._best: dict[str, Any] | None = None
        self._best_saved_at = self.start
        self.worker_nodes: list[str] | None = None
        """Where each worker runs (the Ray backend), as its last reply showed."""
        self.worker_restarts = 0

    # --- what the workers send -----------------------------------------------------------

    def restore(self, state: dict[str, Any]) -> None:
        """Go on from a checkpoint: weights, Adam, counters, scores and the curve's clock."""
        self.net.load_state_dict(state["model"])
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
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

    def workers_started(self, nodes: list[str] | None) -> None:
        """Note where the workers run (Ray actors: "host (node id)"; None for local ones)."""
        if nodes is None:
            return
        self.worker_nodes = nodes
        rows = [(f"worker {i}", node) for i, node in enumerate(nodes)]
        self.writer.add_text("workers", config_table(rows), self.frames)

    def worker_restarted(self, item: WorkerRestarted) -> None:
        """Log a worker Ray restarted: `perf/worker_restarts` counts them all."""
        self.worker_restarts = item.restarts
        self.writer.add_scalar("perf/worker_restarts", item.restarts, self.frames)

    def waited(self, seconds: float) -> None:
        """Count time spent waiting for the workers (logged as `perf/wait_s`)."""
        self.wait_seconds += seconds

    def add_micro_batch(self, item: MicroBatch) -> bool:
        """Keep a worker's micro-batch; once `batch_size` frames are in, train on them.

        Returns True when an update was made.
        """
        self._batch.append(item)
        if not self._count(len(item.actions)):
            return False
        lags = [self.updates - m.version for m in self._batch]
        ages = [m.bootstrap_age for m in self._batch]
        batch = gather(self._batch, self.device)
        self._batch.clear()
        self.update(batch)
        self._log_lag(lags, ages)
        return True

    def add_gradients(self, item: Gradients) -> bool:
        """Keep a worker's gradient; once they cover `batch_size` frames, step with their mean.

        The mean of the micro-batches' gradients is the gradient of the loss's mean over all
        their samples (equal-sized micro-batches): the update data parallelism would make from
        the same samples, except that each gradient was taken at the weights its worker had.
        Returns True when an update was made.
        """
        self._grads.append(item)
        if not self._count(item.frames):
            return False
        items, self._grads = self._grads, []
        lags = [self.updates - g.first_version for g in items]  # the data's age, as for data
        gradient_lags = [self.updates - g.version for g in items]  # the weights' age
        mean = [
            torch.from_numpy(np.mean([g.grads[i] for g in items], axis=0))
            for i in range(len(items[0].grads))
        ]
        grad_norm = apply_gradients(self.net, self.optimizer, mean, self.config.clip_grad)
        self._after_update()
        for tag in items[0].stats:
            self.tb.track(tag, float(np.mean([g.stats[tag] for g in items])), self.frames)
        self.tb.track("losses/grad_norm", grad_norm, self.frames)
        self._log_perf()
        self._log_lag(lags, [g.bootstrap_age for g in items])
        self.tb.track("perf/gradient_lag_mean", sum(gradient_lags) / len(items), self.frames)
        return True

    def _count(self, frames: int) -> bool:
        """Count a message's frames in; True once those waiting make a batch (count reset)."""
        self._batch_frames += frames
        self.frames += frames
        if self._batch_frames < self.config.batch_size:
            return False
        self._batch_frames = 0
        return True

    def received(self, total_bytes: int, weights_bytes: int = 0) -> None:
        """Note how many bytes of the workers' messages the learner has taken so far
        (`WorkerPool.bytes_delivered`), and how many bytes of weights it has put out for them
        (`bytes_published`); the growth since the last call is logged as
        `perf/bytes_per_update` and `perf/weights_bytes_per_update`."""
        self.tb.track("perf/bytes_per_update", total_bytes - self.bytes_in, self.frames)
        self.tb.track("perf/weights_bytes_per_update", weights_bytes - self.bytes_out, self.frames)
        self.bytes_in, self.bytes_out = total_bytes, weights_bytes

    def _log_lag(self, lags: list[int], ages: list[int]) -> None:
        step = self.frames
        self.tb.track("perf/policy_lag_mean", sum(lags) / len(lags), step)
        self.tb.track("perf/policy_lag_max", max(lags), step, reduce=max)
        self.tb.track("perf/bootstrap_age", sum(ages) / len(ages), step)

    def update(self, batch: Batch) -> None:
        """One A2C step on the shared network, then hand the new weights to the workers."""
        c = self.config
        loss, grad_norm = a2c_update(
            self.net, self.optimizer, batch, c.entropy_beta, c.clip_grad, c.value_loss_coef
        )
        self._after_update()
        self._log(loss, grad_norm, batch)

    def _after_update(self) -> None:
        """Hand the new weights to the workers and count the update."""
        self.weights.publish()
        self.updates += 1
        if self.first_update is None:
            self.first_update = (time.monotonic(), self.frames)

    def _log(self, loss: A2CLoss, grad_norm: torch.Tensor, batch: Batch) -> None:
        track, step = self.tb.track, self.frames
        track("charts/advantage", loss.advantage, step)
        track("charts/values", loss.values, step)
        track("charts/batch_rewards", batch.ref_values, step)
        track("losses/entropy", loss.entropy, step)
        track("charts/policy_entropy", loss.policy_entropy, step)
        track("losses/policy", loss.policy, step)
        track("losses/value", loss.value, step)
        track("losses/total", loss.total, step)
        track("losses/grad_norm", grad_norm, step)
        self._log_perf()

    def _log_perf(self) -> None:
        self.tb.track("perf/wait_s", self.wait_seconds, self.frames)
        self.tb.track("perf/fps", self.steady_fps(), self.frames)
        self.wait_seconds = 0.0

    # --- when to stop, and what to show --------------------------------------------------

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

    # --- checkpoints and the end of the run ----------------------------------------------

    def checkpoint_state(self, with_optimizer: bool = True) -> dict[str, Any]:
        data = {
            "model": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
            "config": self.config.to_dict(),
            "obs_shape": list(self.obs_shape),
            "n_actions": self.n_actions,
            "frames": self.frames,
            "updates": self.updates,
            "episodes": self.tracker.episodes,
            "scores": list(self.tracker.scores),
            "best_mean_score": self.tracker.best_mean,
            "wall_seconds": round(self.run_seconds(), 3),
        }
        if with_optimizer:  # what a resumed run needs to go on where this one stops
            data["optimizer"] = self.optimizer.state_dict()
            data["history"] = {
                "scores": list(self.scores),
                "frames": list(self.score_frames),
                "seconds": list(self.score_seconds),
            }
        return data

    def curve(self) -> dict[str, Any]:
        """The learning curve so far, with its settings and machine: `curve.json`'s content."""
        return {
            "preset": self.config.preset,
            "env_id": self.config.env_id,
            "config": self.config.to_dict(),
            "machine": {**machine_info(), "device": str(self.device)},
            "frames": self.frames,
            "seconds": round(self.run_seconds(), 1),
            "points": learning_curve(
                self.scores, self.score_frames, self.score_seconds, self.config.score_window
            ),
        }

    def save_last(self) -> None:
        """Write `last.pt` and `curve.json`, unless the weights are no longer finite (keep the
        good checkpoint)."""
        if all(torch.isfinite(p).all() for p in self.net.parameters()):
            save_checkpoint(self.ckpt_dir / "last.pt", self.checkpoint_state())
            write_json_atomic(self.run_dir / "curve.json", self.curve())

    def save_best(self) -> None:
        """Write `best.pt` from the snapshot taken when the mean score was highest."""
        if self._best is not None:
            save_checkpoint(self.ckpt_dir / "best.pt", self._best)
            self._best, self._best_saved_at = None, time.monotonic()

    def finish(self, stop_reason: str, error: str | None, end: float) -> Summary:
        """Save both checkpoints, write `summary.json`, close the log; return the summary."""
        self.tb.flush(self.frames)
        self.save_last()
        self.save_best()
        first = self.first_update[0] if self.first_update else end
        done = self.updates - self.updates_at_start
        summary = Summary(
            preset=self.config.preset,
            env_id=self.config.env_id,
            solved=stop_reason == "solved",
            stop_reason=stop_reason,
            frames=self.frames,
            updates=self.updates,
            episodes=self.tracker.episodes,
            wall_seconds=round(self.run_seconds(end), 3),
            startup_seconds=round(first - self.start, 3),
            steady_fps=round(self.steady_fps(end), 1),
            mean_score=finite_or_none(self.tracker.mean),
            best_mean_score=finite_or_none(self.tracker.best_mean),
            device=str(self.device),
            run_dir=str(self.run_dir),
            error=error,
            bytes_per_update=round(self.bytes_in / done) if done else None,
            weights_bytes_per_update=round(self.bytes_out / done) if done else None,
            worker_nodes=self.worker_nodes,
            worker_restarts=self.worker_restarts,
        )
        summary.save(self.run_dir / "summary.json")
        self.writer.add_text("summary", summary.line(), self.frames)
        self.writer.close()
        return summary
