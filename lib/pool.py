"""Both ends of the workers' channels: start, watch, read and stop the workers.

`Pool` is what the learner loop needs of any set of workers; `WorkerPool` (spawned processes
with a pipe each, here) and `lib.ray_pool.RayWorkerPool` (Ray actors) implement it.
`WorkerPool` spawns the workers, reads each one's pipe on a thread of its own, notices a worker
that died or went silent, and makes sure none is left when the run ends. `Sender` is the
worker's end: it sends on a background thread so the worker keeps playing. Neither looks inside
the messages; the worker function is the pool's `target` (`lib.worker.run_worker`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.reduction import ForkingPickler
from typing import Any, Protocol

import torch.multiprocessing as mp
from torch import nn

from lib.config import A3CConfig
from lib.messages import Message, WorkerFailed

JOIN_SECONDS = 5.0
"""How long stopping workers get to exit before they are terminated, then killed."""
STALL_SECONDS = 300.0
"""A live worker that sends nothing for this long is stuck: the run stops with an error
instead of waiting for it forever. (A healthy worker sends every few steps of its envs.)"""


class WorkerError(RuntimeError):
    """A worker process died or raised; the message names it and carries its traceback."""


class Pool(Protocol):
    """What the learner loop (`lib.a3c`) needs of its workers, on any backend."""

    bytes_delivered: int
    """Bytes of the messages `get` has handed out, as they crossed from the workers."""
    bytes_published: int
    """Bytes of weights serialised for the workers (0 where they read shared memory)."""
    nodes: list[str] | None
    """Where each worker runs, "host (node id)"; None for processes on this machine."""
    restarts: int
    """Workers restarted after their process died, in all (the local pool never restarts)."""
    local_workers: int
    """Workers on this machine: they and the learner share its cores."""

    def start(self) -> None: ...

    def check(self) -> None:
        """Raise `WorkerError` for a worker that died (past any restart) or went silent."""

    def get(self, timeout: float) -> Message | None:
        """The next message from any worker, or None after `timeout` seconds."""

    def request_stop(self) -> None:
        """Tell the workers to stop, without waiting for them."""

    def stop(self) -> None:
        """Make sure no worker is left (bounded in time)."""


class Stopped(Exception):
    """Raised in a worker by `Sender.put` once the run stops or the learner is gone."""


class Sender:
    """Sends on a background thread, so the worker plays on while a micro-batch crosses the
    pipe (what `multiprocessing.Queue`'s feeder thread does; sending from the worker's own
    loop cost 12% of A3C's frames/s on Pong). At most `maxsize` messages wait here."""

    def __init__(self, conn: Any, should_stop: Callable[[], bool], maxsize: int = 2):
        self.conn = conn
        self.should_stop = should_stop
        self.items: queue.Queue[Any] = queue.Queue(maxsize)
        self.broken = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sender", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.items.get()) is not None:
            try:
                self.conn.send(item)
            except OSError:  # the learner closed its end (stopping) or is gone
                self.broken.set()
                return

    def put(self, item: Any) -> None:
        """Queue `item`; block while full, but wake up to notice a stop or a lost learner."""
        while True:
            if self.should_stop() or self.broken.is_set():
                raise Stopped
            try:
                self.items.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def send_last(self, item: Any, timeout: float = 10.0) -> None:
        """Send `item` after what is queued, and wait (bounded) until it has left."""
        with contextlib.suppress(queue.Full):
            self.items.put(item, timeout=timeout)
            self.items.put(None, timeout=timeout)
        self.thread.join(timeout)


@contextlib.contextmanager
def worker_environ() -> Iterator[None]:
    """Spawned children copy os.environ: give them one OpenMP thread each.

    Our own parallelism is the processes; extra OpenMP threads per worker only fight over the
    same cores (the reference code saw a 3-4x slowdown without this).
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
    (`lib.update.WorkerWeights`). Each worker sends through a pipe of its own, and the learner
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
        target: Callable[..., None],
        version: Any = None,
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
        self.bytes_delivered = 0
        """Bytes (pickled, as they crossed the pipes) of the messages `get` has handed out."""
        self.bytes_published = 0
        """Bytes of weights serialised for the workers: none, they read shared memory."""
        self.nodes: list[str] | None = None
        self.restarts = 0
        self.local_workers = config.processes
        self.tracebacks: dict[int, str] = {}
        """What each worker that caught an exception reported, by worker id."""
        self.config = config
        self.net = net
        self.device = device
        self.version = version
        """The learner's update count, shared with the workers (`WorkerWeights.version`)."""
        self.target = target

    def start(self) -> None:
        with worker_environ():
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
                        self.version,
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
                    # what `conn.recv()` does, in two steps, so the message's size is known
                    buf = conn.recv_bytes()
                except (EOFError, OSError):  # the worker has exited, maybe mid-message
                    return
                item = ForkingPickler.loads(buf)
                self.last_heard[worker_id] = time.monotonic()
                if isinstance(item, WorkerFailed):
                    self.tracebacks[worker_id] = item.traceback
                while not self.stop_flag.value:
                    try:
                        self.inbox.put((item, len(buf)), timeout=0.5)
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
                if proc.exitcode == 1:  # died while starting, before run_worker could report
                    message += (
                        " while starting. If train() is called from a script, put the call "
                        "under `if __name__ == '__main__':`: spawned workers import the main "
                        "module again"
                    )
                raise WorkerError(message)

    def get(self, timeout: float) -> Any:
        """The next whole message from any worker, or None if none came within `timeout` s."""
        try:
            item, size = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        self.bytes_delivered += size
        return item

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

    def request_stop(self) -> None:
        """Raise the stop flag: each worker exits at its next send (and the readers start
        draining the pipes, so that none stays blocked half-way through a message)."""
        self.stop_flag.value = True

    def stop(self) -> None:
        """Ask, then terminate, then kill; then wait for the readers, which close the pipes.

        The readers drain the pipes once the stop flag is up, so a worker blocked sending
        wakes up and exits: nothing here waits on a worker for more than `JOIN_SECONDS`.
        """
        self.request_stop()
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
