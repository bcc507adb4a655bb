"""Finding spawned worker processes, so tests can prove none is left behind."""

from __future__ import annotations

import signal
import time

import psutil


def is_worker(proc: psutil.Process) -> bool:
    try:
        return "spawn_main" in " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return False


def workers_of(pid: int | None = None) -> list[psutil.Process]:
    """Live spawned workers below process `pid` (default: this one)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if is_worker(p) and alive(p)]


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def report_weight_sums(net, conn) -> None:
    """Spawned child: on each request, send the sum of `net`'s weights as this process sees them."""
    import torch

    while conn.recv() is not None:
        with torch.no_grad():
            conn.send(float(sum(p.sum() for p in net.parameters())))


def blocked_in_pipe_write(proc: psutil.Process) -> bool:
    """True while one of `proc`'s threads waits in the kernel to write to a full pipe (Linux).

    For a worker this means the learner is not reading and the worker is part-way through
    sending a message (a Pong micro-batch is 14x a pipe's buffer).
    """
    try:
        for thread in proc.threads():
            with open(f"/proc/{proc.pid}/task/{thread.id}/wchan") as f:
                if "pipe_write" in f.read():
                    return True
    except (OSError, psutil.NoSuchProcess):
        pass
    return False


def worker_without_nice(*args) -> None:
    """Spawned child: a worker on a platform without `os.nice` (Windows)."""
    import os

    del os.nice
    from lib.worker import run_worker

    run_worker(*args)


def restore_sigint() -> None:
    """`preexec_fn` for a child that must see Ctrl+C even when this suite runs as a background
    job (whose children inherit SIGINT ignored): the default action, which the child's Python
    turns into KeyboardInterrupt as usual."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_micro_batches(pool, worker_ids: set[int], timeout: float = 120) -> set[int]:
    """Read a started pool until each of `worker_ids` has sent a micro-batch (so has set itself
    up and played), or `timeout` s pass; return the ids that did. A dead worker raises."""
    from lib.messages import MicroBatch

    sent: set[int] = set()
    deadline = time.monotonic() + timeout
    while sent != worker_ids and time.monotonic() < deadline:
        pool.check()
        item = pool.get(timeout=1.0)
        if isinstance(item, MicroBatch):
            sent.add(item.worker_id)
    return sent


def hogwild_one_update(worker_id, config, net, shared, batch) -> None:
    """Spawned child: one Hogwild worker's update on `batch` (shared weights and Adam state)."""
    import torch

    from lib.hogwild import hogwild_update, shared_adam

    torch.set_num_threads(1)
    optimizer = shared_adam(net, config, shared.optimizer_state)
    hogwild_update(worker_id, net, optimizer, config, batch, shared.counts, 0, 0)
