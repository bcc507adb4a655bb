"""A3C: spawned workers play, one learner trains; `train(config)` is the whole run.

Used alike by `python -m lib.train` and the notebooks. A frame travels

    env -> worker (`lib.worker`: PolicyAgent, n-step windows, a message per micro-batch)
        -> the pool (`lib.pool`: a pipe per process, or `lib.ray_pool`: Ray actors)
        -> `learn`, the loop below -> the update step (`lib.update`: batch, loss or averaged
           gradients, clip, Adam, publish the weights) -> the run record (`lib.record`)

and only weights travel back: the workers read the learner's network in shared memory (or a
CPU copy of it that every update refreshes). Whatever ends the run (the score bound,
`max_frames`, Ctrl+C, SIGTERM, an exception, a dead worker), `train` saves the last
checkpoint, writes `summary.json` and reaps every worker before it returns or raises
(`lib.stopping` says how signals are handled meanwhile).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import torch

from lib.agent import default_device
from lib.checkpoint import check_compatible, load_checkpoint
from lib.config import A3CConfig, Layout, validate
from lib.envs import obs_shape_and_actions
from lib.hogwild import HogwildStep
from lib.messages import Applied, EpisodeScores, Gradients, MicroBatch, WorkerFailed
from lib.model import make_net
from lib.pool import Pool, WorkerError, WorkerPool
from lib.record import Progress, RunRecord, write_summary
from lib.stopping import Cleanup, StopRequest, TrainingTerminated
from lib.tracking import RewardTracker, Summary
from lib.update import UpdateStep, WorkerWeights
from lib.worker import run_worker

__all__ = ["Progress", "TrainingTerminated", "WorkerError", "learn", "train"]

BACKENDS = ("local", "ray")
"""Where the workers run: spawned processes with a pipe each (`lib.pool.WorkerPool`), or Ray
actors on one machine or a cluster (`lib.ray_pool.RayWorkerPool`, `pip install -e
'.[distributed]'`)."""

Step = UpdateStep | HogwildStep
"""Where updates are made (`UpdateStep`), or reported from (`HogwildStep`: by the workers)."""

WORKER_CHECK_SECONDS = 1.0
"""How often the learner checks that every worker is still alive."""
LOG_LINE_SECONDS = 60.0
"""How often the progress goes to a log file (a run in the background) as a line of its own."""


def default_run_dir(config: A3CConfig, root: str | os.PathLike = "runs") -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{config.preset}-{stamp}-s{config.seed}"


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


class _Bar:
    """The tqdm line: frames and frames/s, with episodes, mean and best score beside them.

    Into a log file (stderr not a terminal, not a notebook) it writes a whole line every
    `LOG_LINE_SECONDS` instead of redrawing one line, so `tail -f` shows the run's progress.
    """

    def __init__(self, config: A3CConfig, record: RunRecord, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            to_log = not sys.stderr.isatty() and "ipykernel" not in sys.modules
            log_style = {
                "mininterval": LOG_LINE_SECONDS,
                "bar_format": "{desc}: {n_fmt} frames [{elapsed}, {rate_fmt}{postfix}]\n",
            }
            self.bar = tqdm(
                total=config.max_frames or None,
                initial=record.frames,
                unit="frame",
                unit_scale=True,
                desc=f"A3C {config.preset}",
                dynamic_ncols=True,
                **(log_style if to_log else {}),
            )
            self.scores(record.tracker)

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


def chores(
    record: RunRecord,
    workers: Pool,
    callback: Callable[[Progress], None] | None = None,
    callback_seconds: float = 2.0,
) -> Callable[[], None]:
    """What the learner loop does besides training, each at its own pace: check that every
    worker is alive (a dead one raises `WorkerError`), save `last.pt`, call `callback`."""
    check, save, report = (
        _Every(s)
        for s in (WORKER_CHECK_SECONDS, record.config.checkpoint_minutes * 60, callback_seconds)
    )

    def run() -> None:
        if check():
            workers.check()
        if record.updates and save():
            record.save_last()
        if callback is not None and report():
            callback(record.progress())

    return run


def learn(
    step: Step,
    record: RunRecord,
    workers: Pool,
    bar: _Bar,
    stop: StopRequest,
    do_chores: Callable[[], None],
) -> str:
    """The learner loop: train on what the workers send until a stop; return the reason."""
    while not stop:
        do_chores()
        waited = time.monotonic()
        message = workers.get(timeout=WORKER_CHECK_SECONDS)
        record.waited(time.monotonic() - waited)
        match message:
            case None:
                continue
            case WorkerFailed(worker_id=worker_id, traceback=tb):
                raise WorkerError(f"worker {worker_id} failed; its traceback:\n{tb}")
            case EpisodeScores():
                solved = record.add_scores(message)
                bar.scores(record.tracker)
                if solved:
                    return "solved"
            case MicroBatch() | Gradients() | Applied():
                record.frames += message.frames
                bar.frames(message.frames)
                if update := step.add(message):  # a full batch: one optimiser step
                    record.log_update(update, workers)
                    if reason := record.limit_reached():
                        return reason
            case _:
                raise TypeError(f"a worker sent a {type(message).__name__}, which is no message")
    return "interrupted"


def check_backend(
    backend: str, address: str | None, max_restarts: int, variant: str = "data"
) -> None:
    """Raise `ValueError` (or `ImportError` for a missing Ray) naming the fix, before any
    process starts."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is invalid: use one of {BACKENDS}")
    if backend == "ray" and variant == "hogwild":
        raise ValueError(
            "--variant hogwild has every worker write the network in this machine's shared "
            "memory, and Ray actors may run on other machines: use --backend local with "
            "hogwild, or --variant data or grad with Ray"
        )
    if address and backend != "ray":
        raise ValueError("--address joins a Ray cluster: it needs --backend ray")
    if max_restarts < 0:
        raise ValueError(f"max_restarts={max_restarts} is invalid: must be >= 0")
    if backend == "ray":
        from lib.ray_pool import require_ray

        require_ray()


def make_learner(
    config: A3CConfig,
    run_dir: str | os.PathLike,
    device: torch.device,
    resume: str | os.PathLike | None = None,
) -> tuple[UpdateStep, RunRecord]:
    """The learner's two halves: the update step (network, Adam; with Hogwild, the shared
    network and Adam state the workers update) and the run record, both going on from the
    checkpoint `resume` if given (checked before anything is written)."""
    shape = obs_shape_and_actions(config.env_id)
    state = None
    if resume is not None:
        state = load_checkpoint(resume)
        check_compatible(state, config, *shape)
    torch.manual_seed(config.seed)
    net = make_net(config, *shape)
    step: Step = (
        HogwildStep(config, net) if config.variant == "hogwild" else UpdateStep(config, net, device)
    )
    if state is not None:
        step.restore(state)
    return step, RunRecord(config, run_dir, step.device, step.state, shape, state)


def check_device(config: A3CConfig, device: str) -> torch.device:
    """The learner's device (`lib.agent.default_device`); Hogwild's network lives in CPU shared
    memory, so "auto" means the CPU there, and CUDA is refused with the fix."""
    if config.variant == "hogwild":
        if device not in ("auto", "cpu"):
            raise ValueError(
                f"--variant hogwild trains in the workers, on the CPU, on weights in shared "
                f"memory; --device {device} has no use there: use --device cpu (or auto)"
            )
        return torch.device("cpu")
    return default_device(device)


def make_pool(
    config: A3CConfig, weights: WorkerWeights, backend: str, address: str | None, max_restarts: int
) -> Pool:
    """The workers of `backend`, acting with `weights`."""
    if backend == "ray":
        from lib.ray_pool import RayWorkerPool

        return RayWorkerPool(config, weights.net, weights.version, address, max_restarts)
    return WorkerPool(config, weights.net, weights.device, run_worker, weights.version)


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
    layout: Layout | None = None,
) -> Summary:
    """Train A3C (`config.variant`) until solved, `max_frames`, an interrupt or an error.

    Returns the run's `Summary` (also written to `run_dir/summary.json`). Ctrl+C, SIGTERM and
    Jupyter's interrupt button end the run cleanly and return with `stop_reason="interrupted"`;
    a dead worker or a non-finite loss raises after the same clean-up.

    `backend="ray"` runs the workers as Ray actors (`lib.ray_pool`): on a Ray instance of the
    run's own, or on the cluster at `address`. Ray restarts a worker that dies, up to
    `max_restarts` times per worker; past that the run stops with `WorkerError`. `layout`, the
    machine's layout that `config` was fitted to (`lib.config.fit_layout`), goes into the
    summary.
    """
    validate(config)
    check_backend(backend, address, max_restarts, config.variant)
    dev = check_device(config, device)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(config)
    step, record = make_learner(config, run_dir, dev, resume)
    record.layout = layout
    workers = make_pool(config, step.weights, backend, address, max_restarts)
    bar = _Bar(config, record, enabled=progress)
    stop_reason, error, summary = "running", None, None
    saved_threads = torch.get_num_threads()
    with StopRequest() as stop:
        try:
            workers.start()
            torch.set_num_threads(config.resolved_learner_threads(workers.local_workers))
            record.workers_started(workers.nodes)
            do_chores = chores(record, workers, callback, callback_seconds)
            stop_reason = learn(step, record, workers, bar, stop, do_chores)
        except KeyboardInterrupt:
            stop_reason = "interrupted"
        except BaseException as exc:
            stop_reason, error = "error", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            end = time.monotonic()  # the run's clock stops here; clean-up is not training time

            def summarize() -> None:
                nonlocal summary
                summary = write_summary(record, stop_reason, error, end, workers)

            try:
                Cleanup(stop).run(
                    [
                        ("stopping the workers", workers.request_stop),
                        ("saving last.pt", record.save_last),
                        ("saving best.pt", record.save_best),
                        ("writing summary.json", summarize),
                        ("closing the TensorBoard log", record.close),
                        ("reaping the workers", workers.stop),
                    ]
                )
            finally:
                torch.set_num_threads(saved_threads)
                bar.close()
    if callback is not None:
        callback(record.progress(end))
    assert summary is not None
    return summary
