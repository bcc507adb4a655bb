"""How a micro-batch should cross from a worker to the learner.

    python -m benchmarks.queue_transfer --repeats 5

One spawned producer puts micro-batches of Pong-sized states (32 x 4 x 84 x 84) on a bounded
queue as fast as it can; the learner-side loop takes them and touches every state. Compared:
  numpy uint8       what lib.worker sends: pickled through the queue's pipe (0.9 MB each)
  numpy float32     the same states as float, 4x the bytes
  torch uint8 (shm) torch tensors through torch.multiprocessing, moved to shared memory
                    (the reference code's way): only a handle crosses the pipe; the receiver
                    fetches the memory from the sender, which must still be alive then
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.multiprocessing as mp

from benchmarks.common import machine, machine_line, median, save, table

SHAPE = (32, 4, 84, 84)
KINDS = ("numpy uint8", "numpy float32", "torch uint8 (shm)")


def _producer(kind: str, count: int, q, done) -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, SHAPE, dtype=np.uint8)
    for i in range(count):
        states = base.copy()
        states[0, 0, 0, 0] = i % 255
        if kind == "numpy float32":
            q.put(states.astype(np.float32))
        elif kind == "torch uint8 (shm)":
            q.put(torch.from_numpy(states).share_memory_())
        else:
            q.put(states)
    q.put(None)
    # A shared-memory tensor is fetched from its sender when the receiver unpickles it: a
    # producer that exits early leaves the learner with "connection reset" (seen here).
    done.wait(timeout=600)


def measure(kind: str, count: int) -> tuple[float, int]:
    """Micro-batches per second received, and open descriptors gained by the receiver."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue(maxsize=4)
    fds_before = len(os.listdir("/proc/self/fd"))
    done = ctx.Event()
    proc = ctx.Process(target=_producer, args=(kind, count, q, done))
    proc.start()
    first = q.get(timeout=120)  # start-up (spawn, imports) excluded
    t0, received = time.monotonic(), 0
    while True:
        item = q.get(timeout=120)
        if item is None:
            break
        float(item[0, 0, 0, 0])  # touch the data, as the learner would
        received += 1
        del item
    rate = received / (time.monotonic() - t0)
    del first
    done.set()
    proc.join()
    return rate, len(os.listdir("/proc/self/fd")) - fds_before


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=1_000, help="micro-batches per run")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    runs: dict[str, list[float]] = {k: [] for k in KINDS}
    fds: dict[str, list[int]] = {k: [] for k in KINDS}
    for _ in range(args.repeats):
        for kind in KINDS:
            rate, fd_gain = measure(kind, args.count)
            runs[kind].append(rate)
            fds[kind].append(fd_gain)
    mb = {k: float(np.prod(SHAPE)) * (4 if "float32" in k else 1) / 2**20 for k in KINDS}
    rows = [
        {
            "micro-batch as": k,
            "MiB each": mb[k],
            "micro-batches/s (median)": median(runs[k]),
            "frames/s it could carry": 32 * median(runs[k]),
            "receiver fds gained": max(fds[k]),
        }
        for k in KINDS
    ]
    m = machine()
    result = {"machine": m, "shape": SHAPE, "count": args.count, "runs": runs, "fds": fds}
    path = save("queue_transfer", result)
    print(f"\nmicro-batch {SHAPE}, median of {args.repeats}; {machine_line(m)}\n")
    print(table(rows, list(rows[0])))
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
