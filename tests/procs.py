"""Finding spawned worker processes, so tests can prove none is left behind."""

from __future__ import annotations

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
