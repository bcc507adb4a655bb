"""Run as a script: CartPole runs whose clean-up gets real signals at each of its stages.

    python tests/cleanup_signals.py OUT_DIR BACKEND [RAY_ADDRESS]

For each stage of `lib.a3c.train`'s clean-up (on Ray, each stage that calls the pool), one
short run: a first SIGINT ends its training (sent by the callback once it has trained), and a
second signal (SIGTERM and SIGINT in turn) arrives at the start of that stage. A last run gets
a second and a third signal at the start of the stage that saves `last.pt`; on local workers
one more run, of Hogwild, gets its second signal there too. Each run's folder is
`OUT_DIR/<stage>`; one line per run on stdout says how it ended.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

# this very course, whatever the working folder
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lib.a3c  # noqa: E402
from lib import get_preset  # noqa: E402
from lib.a3c import train  # noqa: E402
from lib.pool import WorkerPool  # noqa: E402
from lib.record import RunRecord  # noqa: E402
from lib.stopping import ForcedExit  # noqa: E402

STAGES = {
    "stopping the workers": "request_stop",
    "saving last.pt": "save_last",
    "saving best.pt": "save_best",
    "writing summary.json": "write_summary",
    "closing the TensorBoard log": "close",
    "reaping the workers": "stop",
}
POOL_STAGES = ("stopping the workers", "writing summary.json", "reaping the workers")
"""The stages that call the pool (the summary reads its nodes and restarts). The others only
save and close files, the same code for every backend: Ray runs skip them."""


def folder(stage: str) -> str:
    """The name of a stage's run folder under OUT_DIR (a suffix follows for a third signal or
    another variant)."""
    return stage.replace(" ", "_")


def one_run(
    out: Path,
    backend: str,
    address: str | None,
    stage: str,
    more: int,
    second: int,
    variant: str = "data",
) -> None:
    """A run stopped by a first SIGINT, then `more` signals at the start of `stage`."""
    method = STAGES[stage]
    owner = next(o for o in (RunRecord, lib.a3c, pool_class(backend)) if hasattr(o, method))
    original = getattr(owner, method)
    stopping, sent = [False], []

    def hooked(*args):
        if stopping[0] and not sent:  # at the stage's start, once, during the clean-up
            for signum in (second, signal.SIGINT)[:more]:
                sent.append(signum)
                os.kill(os.getpid(), signum)
        return original(*args)

    def stop_after_training(progress):
        if progress.updates and not stopping[0]:
            stopping[0] = True
            os.kill(os.getpid(), signal.SIGINT)  # the first signal: stop training

    config = get_preset("cartpole", stop_score=1e9, max_frames=10**9, variant=variant)
    name = folder(stage) + ("_third" if more == 2 else "")
    name += "" if variant == "data" else f"_{variant}"
    setattr(owner, method, hooked)
    try:
        summary = train(
            config,
            run_dir=out / name,
            progress=False,
            backend=backend,
            address=address,
            callback=stop_after_training,
            callback_seconds=0.2,
        )
        print(f"{name}: returned {summary.stop_reason} after {len(sent)} more", flush=True)
    except ForcedExit:
        print(f"{name}: forced exit after {len(sent)} more", flush=True)
    finally:
        setattr(owner, method, original)


def pool_class(backend: str) -> type:
    if backend == "ray":
        from lib.ray_pool import RayWorkerPool

        return RayWorkerPool
    return WorkerPool


def main(out: Path, backend: str, address: str | None) -> None:
    if address:  # connect once: each run's pool then leaves the connection as it found it
        import ray

        ray.init(address=address, include_dashboard=False, logging_level="WARNING")
    stages = STAGES if backend == "local" else POOL_STAGES
    runs = [(stage, 1, "data") for stage in stages] + [("saving last.pt", 2, "data")]
    if backend == "local":  # Hogwild's shared weights and Adam state, saved under the signal
        runs.append(("saving last.pt", 1, "hogwild"))
    for i, (stage, more, variant) in enumerate(runs):
        second = signal.SIGTERM if i % 2 else signal.SIGINT  # both kinds, in turn
        one_run(out, backend, address, stage, more, second, variant)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
