"""Bookkeeping of a run: scores and the stop bound, TensorBoard averages, `summary.json`."""

from __future__ import annotations

import json
import math
import os
import platform
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter


class RewardTracker:
    """Keeps the recent episode scores and says when their mean reaches the stop bound.

    The bound counts only once `window` episodes have finished, so a few lucky early games do
    not end a run.
    """

    def __init__(self, window: int = 100, stop_score: float | None = None):
        self.window = window
        self.stop_score = stop_score
        self.scores: deque[float] = deque(maxlen=window)
        self.episodes = 0
        self.best_mean: float | None = None

    def add(self, score: float) -> bool:
        """Record one episode's score; True when the bound is reached."""
        self.scores.append(float(score))
        self.episodes += 1
        if self.full:
            mean = self.mean
            if self.best_mean is None or mean > self.best_mean:
                self.best_mean = mean
        return self.solved

    @property
    def full(self) -> bool:
        return len(self.scores) == self.window

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores)) if self.scores else math.nan

    @property
    def solved(self) -> bool:
        return self.stop_score is not None and self.full and self.mean >= self.stop_score


class TBMeanTracker:
    """Averages scalars over `every` calls before writing them, so TensorBoard stays readable.

    A tag tracked with `reduce=max` gets the largest of its `every` values instead: a maximum
    that is averaged is no maximum.
    """

    def __init__(self, writer: SummaryWriter, every: int = 10):
        self.writer = writer
        self.every = every
        self._values: dict[str, list[float]] = {}
        self._reduce: dict[str, Callable[[list[float]], float]] = {}

    def track(
        self, tag: str, value: Any, step: int, reduce: Callable[[list[float]], float] = np.mean
    ) -> None:
        if hasattr(value, "detach"):
            value = value.detach().float().mean().item()
        self._reduce[tag] = reduce
        values = self._values.setdefault(tag, [])
        values.append(float(value))
        if len(values) >= self.every:
            self._write(tag, step)

    def _write(self, tag: str, step: int) -> None:
        values = self._values.pop(tag, [])
        if values:
            self.writer.add_scalar(tag, float(self._reduce.get(tag, np.mean)(values)), step)

    def flush(self, step: int) -> None:
        for tag in list(self._values):
            self._write(tag, step)


@dataclass
class Summary:
    """What a run did; written to `summary.json` in the run folder whatever ended it."""

    preset: str
    env_id: str
    solved: bool
    stop_reason: str
    frames: int
    updates: int
    episodes: int
    wall_seconds: float
    startup_seconds: float
    steady_fps: float
    mean_score: float | None
    best_mean_score: float | None
    device: str
    run_dir: str
    error: str | None = None
    bytes_per_update: int | None = None
    """Mean bytes the workers piped to the learner per update, in this process's share of the
    run: micro-batches (data parallelism) or gradients (gradient parallelism), with scores."""
    weights_bytes_per_update: int | None = None
    """Mean bytes of weights the learner serialised for the workers per update: 0 for local
    workers (they read shared memory), one pickled copy per update for Ray actors."""
    worker_nodes: list[str] | None = None
    """Where each worker ran, "host (node id)", with the Ray backend (None: local processes)."""
    worker_restarts: int = 0
    """Workers Ray restarted after their process died (the Ray backend)."""
    cores: int | None = None
    """CPU cores the run could use (its affinity and CPU quota)."""
    layout: dict[str, Any] | None = None
    """The layout `--layout auto` fitted to the machine, and why (None: the config as given)."""

    def line(self) -> str:
        mean = "n/a" if self.mean_score is None else f"{self.mean_score:.2f}"
        best = "n/a" if self.best_mean_score is None else f"{self.best_mean_score:.2f}"
        return (
            f"[{self.preset}] {self.stop_reason}: solved={self.solved} frames={self.frames} "
            f"episodes={self.episodes} mean={mean} best_mean={best} "
            f"wall={self.wall_seconds:.1f}s steady={self.steady_fps:.0f} frames/s "
            f"-> {self.run_dir}"
        )

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, asdict(self))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Summary:
        names = {f.name for f in fields(cls)}  # older summaries lack the newer fields
        return cls(**{k: v for k, v in json.loads(Path(path).read_text()).items() if k in names})


def finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Write a file through `write(file)` so that a kill mid-write leaves the previous one.

    The data goes to a temporary file in the same folder, is flushed to disk, and only then
    replaces `path` in one `os.replace`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    text = json.dumps(data, indent=2) + "\n"
    write_atomic(path, lambda f: f.write(text.encode()))


def config_table(items: Iterable[tuple[str, Any]]) -> str:
    """A markdown table of settings, for TensorBoard's text tab."""
    rows = "\n".join(f"|{k}|{v}|" for k, v in items)
    return "|setting|value|\n|-|-|\n" + rows


def machine_info() -> dict[str, Any]:
    """What a run or a benchmark was measured on: cores, CPU model, GPU, torch, Python, date."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "gpu": gpu,
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def running_mean(values: Sequence[float], window: int) -> np.ndarray:
    """Mean of the last `window` values at each position (fewer at the start)."""
    x = np.asarray(values, dtype=np.float64)
    if window < 1:
        raise ValueError(f"window={window} must be >= 1")
    if x.size == 0:
        return x
    cumsum = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(1, x.size + 1)
    start = np.maximum(0, idx - window)
    return (cumsum[idx] - cumsum[start]) / (idx - start)


def learning_curve(
    scores: list[float], frames: list[int], seconds: list[float], window: int
) -> list[dict[str, float]]:
    """One point per finished episode: frames and training seconds when its score arrived,
    the score, and the mean of the last `window` scores (of all so far, before `window`)."""
    means = running_mean(scores, window)
    return [
        {"frames": int(f), "seconds": round(float(t), 1), "score": float(s), "mean": round(m, 3)}
        for s, f, t, m in zip(scores, frames, seconds, means.tolist(), strict=True)
    ]
