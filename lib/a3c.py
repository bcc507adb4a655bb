"""A3C: spawned workers play, one learner trains; `train(config)` is the whole run.

Used alike by `python -m lib.train` and the notebooks. Two ways to split the work
(`config.variant`):

    data (the seed's): workers: envs -> PolicyAgent -> ExperienceSourceFirstLast -> unpack_batch
        -> micro-batches (numpy, states uint8) and episode scores, a pipe per worker
        learner (`lib.learner.Learner`): gather micro-batches into a batch -> a2c_loss -> clip
        -> Adam
    grad: workers as above, then the A2C loss's gradient on each micro-batch (`a2c_gradients`)
        -> gradients and episode scores
        learner: the mean of `batch_size / micro_batch_size` gradients -> clip -> Adam

Either way the learner keeps TensorBoard, RewardTracker, checkpoints and summary.json, and
`learn` is the loop between the two. The workers read the network the learner updates: its
parameters live in shared memory (`share_memory()` on CPU, CUDA's own inter-process sharing on
a GPU), or, with `worker_device="cpu"` and a GPU learner, in a CPU copy refreshed after every
update. Whatever ends the run
(the score bound, `max_frames`, Ctrl+C, SIGTERM, an exception, a dead worker), `train` stops
and reaps every worker, saves the last checkpoint and writes `summary.json` before it returns
or raises.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from lib.agent import default_device
from lib.config import A3CConfig, validate
from lib.learner import Learner, Progress
from lib.pool import WorkerError, WorkerFailed, WorkerPool, WorkerRestarted
from lib.tracking import RewardTracker, Summary
from lib.worker import EpisodeScores, Gradients

__all__ = ["Progress", "TrainingTerminated", "WorkerError", "WorkerPool", "learn", "train"]

BACKENDS = ("local", "ray")
"""Where the workers run: spawned processes with a pipe each (`lib.pool.WorkerPool`), or Ray
actors on one machine or a cluster (`lib.ray_pool.RayWorkerPool`, `pip install -e
'.[distributed]'`)."""

WORKER_CHECK_SECONDS = 1.0
"""How often the learner checks that every worker is still alive."""


class TrainingTerminated(KeyboardInterrupt):
    """A second Ctrl+C or SIGTERM arrived before the learner loop saw the first; handled like
    Ctrl+C so everything is cleaned up."""


def default_run_dir(config: A3CConfig, root: str | os.PathLike = "runs") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{config.preset}-{stamp}-s{config.seed}"


class StopRequest:
    """Ctrl+C (SIGINT), Jupyter's stop button (SIGINT too) and SIGTERM, while training: the
    first one only raises a flag, and the learner loop ends the run at its next turn (within
    about a second). A second one raises `TrainingTerminated` at once, for a learner stuck in a
    call that never returns.

    A handler that raises wherever the main thread happens to be can break a library half-way
    through its own bookkeeping: a SIGTERM that landed inside TensorBoard's `queue.put` left its
    writer thread failing with "task_done() called too many times", and the run then died in its
    clean-up without `summary.json` (seen once in CI, on a Ray run). Handlers are installed in the
    main thread only; a SIGINT that is ignored (a shell's background job) stays ignored.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __bool__(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise TrainingTerminated(f"signal {signum}, the second")
        self.signum = signum

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()


class _Every:
    """True at most once every `seconds`: the learner loop's clock for its chores."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.last = time.monotonic()

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


LOG_LINE_SECONDS = 60.0
"""How often the progress goes to a log file (a run in the background) as a line of its own."""


class _Bar:
    """The tqdm line: frames and frames/s, with episodes, mean and best score beside them.

    Into a log file (stderr not a terminal, not a notebook) it writes a whole line every
    `LOG_LINE_SECONDS` instead of redrawing one line, so `tail -f` shows the run's progress.
    """

    def __init__(self, learner: Learner, enabled: bool):
        self.bar = None
        self.restarts = 0
        if enabled:
            from tqdm.auto import tqdm

            to_log = not sys.stderr.isatty() and "ipykernel" not in sys.modules
            log_style = {
                "mininterval": LOG_LINE_SECONDS,
                "bar_format": "{desc}: {n_fmt} frames [{elapsed}, {rate_fmt}{postfix}]\n",
            }
            self.bar = tqdm(
                total=learner.config.max_frames or None,
                initial=learner.frames,
                unit="frame",
                unit_scale=True,
                desc=f"A3C {learner.config.preset}",
                dynamic_ncols=True,
                **(log_style if to_log else {}),
            )
            self.scores(learner.tracker)

    def frames(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def scores(self, tracker: RewardTracker) -> None:
        if self.bar is not None:
            mean = "n/a" if not tracker.scores else f"{tracker.mean:.1f}"
            best = "n/a" if tracker.best_mean is None else f"{tracker.best_mean:.1f}"
            extra = {"restarts": self.restarts} if self.restarts else {}
            self.bar.set_postfix(
                episodes=tracker.episodes, mean=mean, best=best, **extra, refresh=False
            )

    def restarted(self, item: WorkerRestarted, tracker: RewardTracker) -> None:
        """A line of its own for a worker Ray restarted (on its first reply from the new
        process), and the count on the progress line."""
        self.restarts = item.restarts
        line = (
            f"worker {item.worker_id} died and Ray restarted it, on node {item.node} "
            f"(restarts so far: {item.restarts})"
        )
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
            self.scores(tracker)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def learn(
    learner: Learner,
    workers: Any,
    bar: _Bar,
    callback: Callable[[Progress], None] | None = None,
    callback_seconds: float = 2.0,
    stop: StopRequest | None = None,
) -> str:
    """The learner loop: train on what the workers send until a stop; return the reason.

    `workers` is a started `WorkerPool` or `RayWorkerPool`: `get`, `check`, `bytes_delivered`,
    `bytes_published`.
    `stop` ends the loop with "interrupted" once a signal has raised it.
    """
    check_workers = _Every(WORKER_CHECK_SECONDS)
    save_last = _Every(learner.config.checkpoint_minutes * 60)
    report = _Every(callback_seconds)
    while True:
        if stop:
            return "interrupted"
        if check_workers():
            workers.check()  # a dead worker raises WorkerError
        if learner.updates and save_last():
            learner.save_last()
        if callback is not None and report():
            callback(learner.progress())

        waited = time.monotonic()
        item = workers.get(timeout=WORKER_CHECK_SECONDS)
        learner.waited(time.monotonic() - waited)

        if item is None:
            continue
        if isinstance(item, WorkerFailed):
            raise WorkerError(f"worker {item.worker_id} failed; its traceback:\n{item.traceback}")
        if isinstance(item, WorkerRestarted):
            learner.worker_restarted(item)
            bar.restarted(item, learner.tracker)
            continue
        if isinstance(item, EpisodeScores):
            solved = learner.add_scores(item)
            bar.scores(learner.tracker)
            if solved:
                return "solved"
            continue
        if isinstance(item, Gradients):
            bar.frames(item.frames)
            trained = learner.add_gradients(item)
        else:
            bar.frames(len(item.actions))
            trained = learner.add_micro_batch(item)
        if trained:
            learner.received(workers.bytes_delivered, workers.bytes_published)
            if reason := learner.limit_reached():
                return reason


def check_backend(backend: str, address: str | None, max_restarts: int) -> None:
    """Raise `ValueError` (or `ImportError` for a missing Ray) naming the fix, before any
    process starts."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is invalid: use one of {BACKENDS}")
    if address and backend != "ray":
        raise ValueError("--address joins a Ray cluster: it needs --backend ray")
    if max_restarts < 0:
        raise ValueError(f"max_restarts={max_restarts} is invalid: must be >= 0")
    if backend == "ray":
        from lib.ray_pool import require_ray

        require_ray()


def train(
    config: A3CConfig,
    run_dir: str | os.PathLike | None = None,
    device: str = "auto",
    resume: str | os.PathLike | None = None,
    progress: bool = True,
    callback: Callable[[Progress], None] | None = None,
    callback_seconds: float = 2.0,
    backend: str = "local",
    address: str | None = None,
    max_restarts: int = 3,
) -> Summary:
    """Train A3C (`config.variant`) until solved, `max_frames`, an interrupt or an error.

    Returns the run's `Summary` (also written to `run_dir/summary.json`). Ctrl+C, SIGTERM and
    Jupyter's interrupt button end the run cleanly and return with `stop_reason="interrupted"`;
    a dead worker or a non-finite loss raises after the same clean-up.

    `backend="ray"` runs the workers as Ray actors (`lib.ray_pool`): on a Ray instance of the
    run's own, or on the cluster at `address`. Ray restarts a worker that dies, up to
    `max_restarts` times per worker; past that the run stops with `WorkerError`.
    """
    validate(config)
    check_backend(backend, address, max_restarts)
    dev = default_device(device)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    learner = Learner(config, run_dir, dev, resume)
    weights = learner.weights
    if backend == "ray":
        from lib.ray_pool import RayWorkerPool

        workers: Any = RayWorkerPool(config, weights.net, weights.version, address, max_restarts)
    else:
        workers = WorkerPool(config, weights.net, weights.device, version=weights.version)
    bar = _Bar(learner, enabled=progress)
    stop_reason, error = "running", None
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(config.resolved_learner_threads())
    try:
        with StopRequest() as stop:
            workers.start()
            learner.workers_started(workers.nodes)
            stop_reason = learn(learner, workers, bar, callback, callback_seconds, stop)
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    except BaseException as exc:
        stop_reason, error = "error", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        end = time.monotonic()  # the run's clock stops here; clean-up is not training time
        workers.stop()
        torch.set_num_threads(saved_threads)
        bar.close()
        summary = learner.finish(stop_reason, error, end)
        if callback is not None:
            callback(learner.progress(end))
    return summary
