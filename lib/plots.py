"""Figures that several notebooks draw: frames, learning curves, and what they read them from.

Every function returns the matplotlib objects it made, so a notebook can tweak them and a test
can look inside. Figures that only one notebook draws live beside the notebooks, in
`notebooks/figures.py`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from lib.tracking import running_mean


def show_images(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    show_shape: bool = True,
    size: float = 2.4,
    suptitle: str | None = None,
) -> Figure:
    """One row of images: (H, W) arrays in grayscale, (H, W, 3) arrays in colour.

    uint8 images are shown on the fixed 0..255 scale, so equal values look equal across panels.
    """
    n = len(images)
    if n == 0:
        raise ValueError("no images to show")
    fig, axes = plt.subplots(1, n, figsize=(size * n, size * 1.15), squeeze=False)
    for i, (ax, img) in enumerate(zip(axes[0], images, strict=True)):
        img = np.asarray(img)
        scale = {"vmin": 0, "vmax": 255} if img.dtype == np.uint8 else {}
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, **scale)
        title = titles[i] if titles is not None else ""
        if show_shape:
            shape = "×".join(str(s) for s in img.shape)
            title = f"{title}\n{shape} {img.dtype}" if title else f"{shape} {img.dtype}"
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    return fig


def show_frame_stack(obs: np.ndarray, title: str | None = None, size: float = 2.4) -> Figure:
    """The frames of one stacked observation (C, H, W), oldest on the left."""
    obs = np.asarray(obs)
    if obs.ndim != 3:
        raise ValueError(f"expected one observation (C, H, W), got shape {obs.shape}")
    n = obs.shape[0]
    titles = [f"t{i - n + 1}" if i < n - 1 else "t (newest)" for i in range(n)]
    return show_images(list(obs), titles, show_shape=False, size=size, suptitle=title)


def read_scalars(
    run_dir: str | os.PathLike, tags: Sequence[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(steps, values) of each TensorBoard scalar `tag` logged in `run_dir`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    available = set(acc.Tags()["scalars"])
    missing = [t for t in tags if t not in available]
    if missing:
        raise KeyError(f"no scalars {missing} in {run_dir}; it has {sorted(available)}")
    result = {}
    for tag in tags:
        events = acc.Scalars(tag)
        result[tag] = (
            np.array([e.step for e in events], dtype=np.int64),
            np.array([e.value for e in events], dtype=np.float64),
        )
    return result


def load_benchmark(name: str, results_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The result a benchmark saved as `results_dir/<name>.json`, or None if there is none.

    A missing file is not an error: the notebook says how to make it (`make bench`) and goes on.
    """
    path = Path(results_dir) / f"{name}.json"
    if not path.exists():
        print(
            f"{path.name} is missing from {path.parent}: run `make bench` in the repository root "
            "to measure it on this machine, then run this notebook again."
        )
        return None
    return json.loads(path.read_text())


def plot_learning_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    x: str = "frames",
    window: int = 100,
    stop_score: float | None = None,
    labels: Mapping[str, str] | None = None,
    colors: Mapping[str, str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Running mean of the episode scores, one line per seed, against `x` = "frames" or
    "seconds" (wall clock since the start of the run). Each run is a `benchmarks.learning` row
    with `scores`, `score_frames` and `score_seconds`; its end is marked o if it reached the
    stop score, x if it ran out of budget."""
    if x not in ("frames", "seconds"):
        raise ValueError(f"x={x!r}: use 'frames' or 'seconds'")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    default_colors = iter(["tab:blue", "tab:orange", "tab:green", "tab:red"])
    for name, seeds in runs.items():
        color = (colors or {}).get(name) or next(default_colors)
        label = (labels or {}).get(name, name)
        for i, run in enumerate(seeds):
            xs = np.asarray(run[f"score_{x}"], dtype=np.float64)
            if xs.size == 0:
                continue
            ys = running_mean(run["scores"], window)
            ax.plot(
                xs,
                ys,
                color=color,
                lw=1.2,
                alpha=0.85,
                label=f"{label} ({len(seeds)} seed{'s' * (len(seeds) > 1)})" if i == 0 else None,
            )
            ax.plot(xs[-1], ys[-1], "o" if run.get("solved") else "x", color=color, ms=5)
    return score_axes(ax, x, window, stop_score)


def score_axes(ax: Axes, x: str, window: int, stop_score: float | None) -> Axes:
    """The frame of a score-curve plot: the stop line, the x axis ("frames", or wall-clock
    "seconds" or "minutes" since the start), the y label and the grid."""
    if stop_score is not None:
        ax.axhline(stop_score, color="gray", ls="--", lw=1)
    if x == "frames":
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_xlabel("frames (agent steps)")
    else:
        ax.set_xlabel(f"wall-clock {x} since the start")
    ax.set_ylabel(f"score (mean of last {window})")
    ax.grid(alpha=0.3)
    return ax
