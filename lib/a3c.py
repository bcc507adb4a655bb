"""A3C with data parallelism: spawned workers gather experience, one learner trains.

`train(config)` is the whole run, used alike by `python -m lib.train` and notebook 5:

    workers (spawn): envs -> PolicyAgent -> ExperienceSourceFirstLast -> unpack_batch
        -> a pipe per worker: micro-batches (numpy, states uint8) and episode scores
    learner (this process, `lib.learner.Learner`): gather micro-batches into a batch
        -> a2c_loss -> clip -> Adam -> TensorBoard, RewardTracker, checkpoints, summary.json

`learn` is the loop between the two. The workers read the network the learner updates: its
parameters live in shared memory (`share_memory()` on CPU, CUDA's own inter-process sharing on
a GPU), or, with `worker_device="cpu"` and a GPU learner, in a CPU copy refreshed after every
update. Whatever ends the run
(the score bound, `max_frames`, Ctrl+C, SIGTERM, an exception, a dead worker), `train` stops
and reaps every worker, saves the last checkpoint and writes `summary.json` before it returns
or raises.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp
from torch import nn

from lib.agent import default_device
from lib.config import A3CConfig, validate
from lib.learner import Learner, Progress
from lib.tracking import RewardTracker, Summary
from lib.worker import EpisodeScores, MicroBatch, WorkerFailed, data_func

__all__ = ["Progress", "TrainingTerminated", "WorkerError", "WorkerPool", "learn", "train"]

WORKER_CHECK_SECONDS = 1.0
"""How often the learner checks that every worker is still alive."""
JOIN_SECONDS = 5.0
"""How long stopping workers get to exit before they are terminated, then killed."""
STALL_SECONDS = 300.0
"""A live worker that sends nothing for this long is stuck: the run stops with an error
instead of waiting for it forever. (A healthy worker sends every few steps of its envs.)"""


class WorkerError(RuntimeError):
    """A worker process died or raised; the message names it and carries its traceback."""


class TrainingTerminated(KeyboardInterrupt):
    """SIGTERM arrived; handled like Ctrl+C so everything is cleaned up."""


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


class WorkerPool:
    """Starts the worker processes, passes on what they send, and makes sure they are gone.

    The workers act with `net` on `device`: the learner's own network, or its CPU copy
    (`lib.learner.WorkerWeights`). Each worker sends through a pipe of its own, and the learner
    holds only the read ends. One `multiprocessing.Queue` shared by all workers hangs the
    learner when a worker is killed in the middle of a message: the half-written message blocks
    every read, and the dead worker still holds the queue's write lock. With a pipe per worker,
    the learner reads a dead worker's pipe to its end (`EOFError`) and carries on.

    A reader thread per pipe does the reading, so the learner's own thread never blocks on a
    worker: a worker frozen half-way through a message (stopped, or swapped out for ever)
    stalls only its reader, and `check` still notices the silence and names the worker. The
    readers pass whole messages on through a small bounded inbox; when the learner falls
    behind, the inbox fills, the readers wait, the pipes fill and the workers wait too, so no
    worker runs more than a few micro-batches ahead.
    """

    INBOX_PER_WORKER = 2
    """Whole messages waiting in the learner per worker, besides the one each reader holds."""

    def __init__(
        self,
        config: A3CConfig,
        net: nn.Module,
        device: str,
        target: Callable[..., None] = data_func,
    ):
        self.ctx = mp.get_context("spawn")
        # A raw shared flag, not an Event: an Event has a lock, and a worker killed or stopped
        # while holding it would block the learner's `set()` for ever.
        self.stop_flag = self.ctx.RawValue(ctypes.c_bool, False)
        self.procs: list[Any] = []
        self.readers: list[threading.Thread] = []
        self.inbox: queue.Queue[Any] = queue.Queue(self.INBOX_PER_WORKER * config.processes)
        self.last_heard: list[float] = []
        """When a whole message last arrived from each worker (monotonic seconds)."""
        self.tracebacks: dict[int, str] = {}
        """What each worker that caught an exception reported, by worker id."""
        self.config = config
        self.net = net
        self.device = device
        self.target = target

    def start(self) -> None:
        with _worker_environ():
            for worker_id in range(self.config.processes):
                reader, writer = self.ctx.Pipe(duplex=False)
                proc = self.ctx.Process(
                    target=self.target,
                    args=(
                        worker_id,
                        self.config,
                        self.net,
                        self.device,
                        writer,
                        self.stop_flag,
                        os.getpid(),
                    ),
                    name=f"a3c-worker-{worker_id}",
                    daemon=True,
                )
                proc.start()
                writer.close()  # the worker's copy is the only one: its death means EOF here
                self.procs.append(proc)
                self.last_heard.append(time.monotonic())
                thread = threading.Thread(
                    target=self._read,
                    args=(worker_id, reader),
                    name=f"a3c-reader-{worker_id}",
                    daemon=True,
                )
                thread.start()
                self.readers.append(thread)

    def _read(self, worker_id: int, conn: Any) -> None:
        """Reader thread: whole messages from one worker's pipe into the inbox, until EOF.

        After a stop it keeps reading and drops what it reads, so that a worker blocked in
        the middle of a send wakes up, sees the stop and exits; its exit ends the pipe.
        """
        try:
            while True:
                try:
                    item = conn.recv()
                except (EOFError, OSError):  # the worker has exited, maybe mid-message
                    return
                self.last_heard[worker_id] = time.monotonic()
                if isinstance(item, WorkerFailed):
                    self.tracebacks[worker_id] = item.traceback
                while not self.stop_flag.value:
                    try:
                        self.inbox.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
        finally:
            conn.close()

    def check(self) -> None:
        """Raise `WorkerError` if a worker has exited (it never should while training) or has
        sent no whole message for `STALL_SECONDS`."""
        now = time.monotonic()
        for worker_id, proc in enumerate(self.procs):
            silent = now - self.last_heard[worker_id]
            if proc.exitcode is None and silent > STALL_SECONDS:
                raise WorkerError(
                    f"worker {worker_id} (pid {proc.pid}) is alive but has sent nothing for "
                    f"{silent:.0f} s: it is stuck (stopped, deadlocked, or in an environment "
                    "step that never returns). The run was stopped rather than left waiting."
                )
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

    def get(self, timeout: float) -> MicroBatch | EpisodeScores | WorkerFailed | None:
        """The next message from any worker, or None if none came within `timeout` seconds."""
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def _find_traceback(self, worker_id: int, timeout: float = 5.0) -> str | None:
        """The traceback an exited worker sent, once its reader has read its pipe to the end.

        Messages still in the inbox are dropped to let the reader through: the run is ending.
        """
        reader = self.readers[worker_id]
        deadline = time.monotonic() + timeout
        while reader.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                while True:
                    self.inbox.get_nowait()
            reader.join(0.05)
        return self.tracebacks.get(worker_id)

    def stop(self) -> None:
        """Ask, then terminate, then kill; then wait for the readers, which close the pipes.

        The readers drain the pipes once the stop flag is up, so a worker blocked sending
        wakes up and exits: nothing here waits on a worker for more than `JOIN_SECONDS`.
        """
        self.stop_flag.value = True
        deadline = time.monotonic() + JOIN_SECONDS
        while any(p.is_alive() for p in self.procs) and time.monotonic() < deadline:
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
        for thread in self.readers:  # every worker is gone, so every pipe is at its end
            thread.join(timeout=2.0)
        with contextlib.suppress(queue.Empty):
            while True:
                self.inbox.get_nowait()


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
            self.bar.set_postfix(episodes=tracker.episodes, mean=mean, best=best, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def learn(
    learner: Learner,
    workers: WorkerPool,
    bar: _Bar,
    callback: Callable[[Progress], None] | None = None,
    callback_seconds: float = 2.0,
) -> str:
    """The learner loop: train on what the workers send until a stop; return the reason."""
    check_workers = _Every(WORKER_CHECK_SECONDS)
    save_last = _Every(learner.config.checkpoint_minutes * 60)
    report = _Every(callback_seconds)
    while True:
        if check_workers():
            workers.check()  # a dead worker raises WorkerError
        if learner.updates and save_last():
            learner.save_last()
        if callback is not None and report():
            callback(learner.progress())

        waited = time.monotonic()
        item = workers.get(timeout=WORKER_CHECK_SECONDS)
        learner.queue_wait += time.monotonic() - waited

        if item is None:
            continue
        if isinstance(item, WorkerFailed):
            raise WorkerError(f"worker {item.worker_id} failed; its traceback:\n{item.traceback}")
        if isinstance(item, EpisodeScores):
            solved = learner.add_scores(item)
            bar.scores(learner.tracker)
            if solved:
                return "solved"
            continue
        bar.frames(len(item.actions))
        if learner.add_micro_batch(item) and (reason := learner.limit_reached()):
            return reason


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
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    learner = Learner(config, run_dir, dev, resume)
    workers = WorkerPool(config, learner.weights.net, learner.weights.device)
    bar = _Bar(learner, enabled=progress)
    stop_reason, error = "running", None
    saved_threads = torch.get_num_threads()
    torch.set_num_threads(config.resolved_learner_threads())
    try:
        with _sigterm_as_interrupt():
            workers.start()
            stop_reason = learn(learner, workers, bar, callback, callback_seconds)
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
