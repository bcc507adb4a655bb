"""A3C with data parallelism: spawned workers gather experience, one learner trains.

`train(config)` is the whole run, used alike by `python -m lib.train` and notebook 5:

    workers (spawn): envs -> PolicyAgent -> ExperienceSourceFirstLast -> unpack_batch
        -> bounded queue of micro-batches (numpy, states uint8) and episode scores
    learner (this process): gather micro-batches into a batch -> a2c_loss -> clip -> Adam
        -> TensorBoard, RewardTracker, checkpoints, summary.json

The workers read the same network the learner updates: its parameters live in shared memory
(`share_memory()` on CPU, CUDA's own inter-process sharing on a GPU). Whatever ends the run
(the score bound, `max_frames`, Ctrl+C, SIGTERM, an exception, a dead worker), `train` stops
and reaps every worker, saves the last checkpoint and writes `summary.json` before it returns
or raises.
"""

from __future__ import annotations

import contextlib
import os
import queue as queue_mod
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from lib.a2c import Batch, a2c_update
from lib.agent import default_device
from lib.checkpoint import (
    check_compatible,
    load_checkpoint,
    save_checkpoint,
)
from lib.config import A3CConfig, validate
from lib.envs import obs_shape_and_actions
from lib.model import make_net
from lib.tracking import (
    RewardTracker,
    Summary,
    TBMeanTracker,
    config_table,
    finite_or_none,
)
from lib.worker import EpisodeScores, MicroBatch, WorkerFailed, data_func

WORKER_CHECK_SECONDS = 1.0
"""How often the learner checks that every worker is still alive."""
JOIN_SECONDS = 5.0
"""How long stopping workers get to exit before they are terminated, then killed."""
BEST_SAVE_SECONDS = 60.0
"""The best model is written at most this often (and always at exit)."""


class WorkerError(RuntimeError):
    """A worker process died or raised; the message names it and carries its traceback."""


class TrainingTerminated(KeyboardInterrupt):
    """SIGTERM arrived; handled like Ctrl+C so everything is cleaned up."""


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


def default_run_dir(config: A3CConfig, root: str | os.PathLike = "runs") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{config.preset}-{stamp}-s{config.seed}"


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into `TrainingTerminated` while training (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise TrainingTerminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _worker_environ() -> Iterator[None]:
    """Spawned children copy os.environ: give them one OpenMP thread each.

    Our own parallelism is the processes; extra OpenMP threads per worker only fight over the
    same cores (the seed saw a 3-4x slowdown without this).
    """
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved


class _Workers:
    """Starts the worker processes and guarantees they are gone afterwards."""

    def __init__(self, config: A3CConfig, net: nn.Module, device: torch.device):
        self.ctx = mp.get_context("spawn")
        self.queue = self.ctx.Queue(maxsize=max(2, 2 * config.processes))
        self.stop_event = self.ctx.Event()
        self.procs: list[Any] = []
        self.config = config
        self.net = net
        self.device = str(device)

    def start(self) -> None:
        with _worker_environ():
            for worker_id in range(self.config.processes):
                proc = self.ctx.Process(
                    target=data_func,
                    args=(
                        worker_id,
                        self.config,
                        self.net,
                        self.device,
                        self.queue,
                        self.stop_event,
                        os.getpid(),
                    ),
                    name=f"a3c-worker-{worker_id}",
                    daemon=True,
                )
                proc.start()
                self.procs.append(proc)

    def check(self) -> None:
        """Raise `WorkerError` if a worker has exited (it never should while training)."""
        for worker_id, proc in enumerate(self.procs):
            if proc.exitcode is not None:
                tb = self._find_traceback(worker_id)
                how = (
                    f"was killed by signal {-proc.exitcode}"
                    if proc.exitcode < 0
                    else f"exited with code {proc.exitcode}"
                )
                message = f"worker {worker_id} (pid {proc.pid}) {how}"
                if tb:
                    raise WorkerError(f"{message}; its traceback:\n{tb}")
                if proc.exitcode == 1:  # died while starting, before data_func could report
                    message += (
                        " while starting. If train() is called from a script, put the call "
                        "under `if __name__ == '__main__':`: spawned workers import the main "
                        "module again"
                    )
                raise WorkerError(message)

    def _find_traceback(self, worker_id: int, seconds: float = 2.0) -> str | None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                item = self.queue.get(timeout=0.1)
            except queue_mod.Empty:
                continue
            if isinstance(item, WorkerFailed) and item.worker_id == worker_id:
                return item.traceback
        return None

    def stop(self) -> None:
        """Ask, then terminate, then kill; drain the queue so no worker blocks on `put`."""
        self.stop_event.set()
        deadline = time.monotonic() + JOIN_SECONDS
        while any(p.is_alive() for p in self.procs) and time.monotonic() < deadline:
            self._drain()
            time.sleep(0.05)
        for sig_method in ("terminate", "kill"):
            alive = [p for p in self.procs if p.is_alive()]
            for p in alive:
                getattr(p, sig_method)()
            for p in alive:
                p.join(timeout=2.0)
        for p in self.procs:
            p.join(timeout=0.1)
            with contextlib.suppress(ValueError):
                p.close()
        self._drain()
        self.queue.close()
        self.queue.cancel_join_thread()

    def _drain(self) -> None:
        with contextlib.suppress(Exception):
            while True:
                self.queue.get_nowait()


def _gather(micro_batches: list[MicroBatch], device: torch.device) -> Batch:
    """Concatenate micro-batches into one training batch on `device` (states still uint8)."""
    return Batch(
        *(
            torch.from_numpy(np.concatenate([getattr(m, name) for m in micro_batches])).to(device)
            for name in ("states", "actions", "ref_values")
        )
    )


def _all_finite(net: nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in net.parameters())


def train(
    config: A3CConfig,
    run_dir: str | os.PathLike | None = None,
    device: str = "auto",
    resume: str | os.PathLike | None = None,
    progress: bool = True,
    callback: Callable[[Progress], None] | None = None,
    callback_seconds: float = 2.0,
) -> Summary:
    """Train with A3C data parallelism until solved, `max_frames`, an interrupt or an error.

    Returns the run's `Summary` (also written to `run_dir/summary.json`). Ctrl+C, SIGTERM and
    Jupyter's interrupt button end the run cleanly and return with `stop_reason="interrupted"`;
    a dead worker or a non-finite loss raises after the same clean-up.
    """
    validate(config)
    dev = default_device(device)
    obs_shape, n_actions = obs_shape_and_actions(config.env_id)
    state = None
    if resume is not None:
        state = load_checkpoint(resume)
        check_compatible(state, config, obs_shape, n_actions)

    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(config.seed)
    net = make_net(config, obs_shape, n_actions)
    tracker = RewardTracker(config.score_window, config.stop_score)
    frames = updates = 0
    if state is not None:
        net.load_state_dict(state["model"])
        frames, updates = int(state["frames"]), int(state["updates"])
        for score in state.get("scores", []):
            tracker.add(score)
        tracker.episodes = int(state["episodes"])
        tracker.best_mean = state.get("best_mean_score")
    net.to(dev)
    # made after the move, so its state lives on the same device as the weights
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate, eps=config.adam_eps)
    if state is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    if dev.type == "cpu":
        net.share_memory()

    writer = SummaryWriter(log_dir=str(run_dir), purge_step=frames if state else None)
    writer.add_text("config", config_table(config.to_dict().items()), frames)
    tb = TBMeanTracker(writer, every=10)
    workers = _Workers(config, net, dev)

    def checkpoint_state(with_optimizer: bool = True) -> dict[str, Any]:
        data = {
            "model": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
            "config": config.to_dict(),
            "obs_shape": list(obs_shape),
            "n_actions": n_actions,
            "frames": frames,
            "updates": updates,
            "episodes": tracker.episodes,
            "scores": list(tracker.scores),
            "best_mean_score": tracker.best_mean,
        }
        if with_optimizer:
            data["optimizer"] = optimizer.state_dict()
        return data

    start = time.monotonic()
    first_update_time: float | None = None
    first_update_frames = frames
    stop_reason, error, solved = "running", None, False
    all_scores: list[float] = []
    score_frames: list[int] = []
    score_seconds: list[float] = []
    best_snapshot: dict[str, Any] | None = None
    best_saved_at = start
    last_ckpt = start
    last_check = start
    last_callback = start
    queue_wait = 0.0

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=config.max_frames or None,
            initial=frames,
            unit="frame",
            unit_scale=True,
            desc=f"A3C {config.preset}",
            dynamic_ncols=True,
        )

    def show_scores() -> None:
        if bar is not None:
            mean = "n/a" if not tracker.scores else f"{tracker.mean:.1f}"
            best = "n/a" if tracker.best_mean is None else f"{tracker.best_mean:.1f}"
            bar.set_postfix(episodes=tracker.episodes, mean=mean, best=best)

    show_scores()

    def steady_fps(now: float) -> float:
        """Frames per second since the first update: start-up (spawning, env creation) left out."""
        if first_update_time is None or now <= first_update_time:
            return 0.0
        return (frames - first_update_frames) / (now - first_update_time)

    def snapshot(now: float) -> Progress:
        return Progress(
            frames,
            updates,
            tracker.episodes,
            now - start,
            steady_fps(now),
            tracker.mean,
            tracker.best_mean,
            list(all_scores),
            list(score_frames),
            list(score_seconds),
        )

    batch: list[MicroBatch] = []
    batch_len = 0
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(config.resolved_learner_threads())
    try:
        with _sigterm_as_interrupt():
            workers.start()
            while True:
                now = time.monotonic()
                if now - last_check >= WORKER_CHECK_SECONDS:
                    workers.check()
                    last_check = now
                if updates and now - last_ckpt >= config.checkpoint_minutes * 60:
                    save_checkpoint(ckpt_dir / "last.pt", checkpoint_state())
                    last_ckpt = now
                if callback is not None and now - last_callback >= callback_seconds:
                    callback(snapshot(now))
                    last_callback = now

                t0 = time.monotonic()
                try:
                    item = workers.queue.get(timeout=WORKER_CHECK_SECONDS)
                except queue_mod.Empty:
                    continue
                queue_wait += time.monotonic() - t0

                if isinstance(item, WorkerFailed):
                    workers.check()  # raises with the traceback once the worker has exited
                    raise WorkerError(f"worker {item.worker_id} failed:\n{item.traceback}")
                if isinstance(item, EpisodeScores):
                    for score, steps in zip(item.scores, item.steps, strict=True):
                        solved = tracker.add(score) or solved
                        all_scores.append(score)
                        score_frames.append(frames)
                        score_seconds.append(now - start)
                        writer.add_scalar("charts/episode_score", score, frames)
                        writer.add_scalar("charts/episode_steps", steps, frames)
                        if tracker.full:
                            writer.add_scalar("charts/score_mean", tracker.mean, frames)
                        if tracker.full and tracker.mean >= tracker.best_mean:
                            best_snapshot = checkpoint_state(with_optimizer=False)
                    show_scores()
                    if best_snapshot is not None and now - best_saved_at >= BEST_SAVE_SECONDS:
                        save_checkpoint(ckpt_dir / "best.pt", best_snapshot)
                        best_snapshot, best_saved_at = None, now
                    if solved:
                        stop_reason = "solved"
                        break
                    continue

                batch.append(item)
                batch_len += len(item.actions)
                frames += len(item.actions)
                if bar is not None:
                    bar.update(len(item.actions))
                if batch_len < config.batch_size:
                    continue

                data = _gather(batch, dev)
                batch.clear()
                batch_len = 0
                loss, grad_norm = a2c_update(
                    net, optimizer, data, config.entropy_beta, config.clip_grad
                )
                updates += 1
                if first_update_time is None:
                    first_update_time, first_update_frames = time.monotonic(), frames

                tb.track("charts/advantage", loss.advantage, frames)
                tb.track("charts/values", loss.values, frames)
                tb.track("charts/batch_rewards", data.ref_values, frames)
                tb.track("losses/entropy", loss.entropy, frames)
                tb.track("losses/policy", loss.policy, frames)
                tb.track("losses/value", loss.value, frames)
                tb.track("losses/total", loss.total, frames)
                tb.track("losses/grad_norm", grad_norm, frames)
                tb.track("perf/queue_wait_s", queue_wait, frames)
                tb.track("perf/fps", steady_fps(time.monotonic()), frames)
                queue_wait = 0.0

                if config.max_frames and frames >= config.max_frames:
                    stop_reason = "max_frames"
                    break
                if config.max_seconds and time.monotonic() - start >= config.max_seconds:
                    stop_reason = "max_seconds"
                    break
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    except BaseException as exc:
        stop_reason, error = "error", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        end = time.monotonic()  # the run's clock stops here; clean-up is not training time
        workers.stop()
        torch.set_num_threads(saved_threads)
        if bar is not None:
            bar.close()
        tb.flush(frames)
        if _all_finite(net):
            save_checkpoint(ckpt_dir / "last.pt", checkpoint_state())
        if best_snapshot is not None:
            save_checkpoint(ckpt_dir / "best.pt", best_snapshot)
        steady = steady_fps(end)
        summary = Summary(
            preset=config.preset,
            env_id=config.env_id,
            solved=solved,
            stop_reason=stop_reason,
            frames=frames,
            updates=updates,
            episodes=tracker.episodes,
            wall_seconds=round(end - start, 3),
            startup_seconds=round((first_update_time or end) - start, 3),
            steady_fps=round(steady, 1),
            mean_score=finite_or_none(tracker.mean),
            best_mean_score=finite_or_none(tracker.best_mean),
            device=str(dev),
            run_dir=str(run_dir),
            error=error,
        )
        summary.save(run_dir / "summary.json")
        writer.add_text("summary", summary.line(), frames)
        writer.close()
        if callback is not None:
            callback(snapshot(end))
    return summary
