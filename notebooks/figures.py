"""Figures that one notebook draws each: n-step windows (3), scores (4), the live training plot
and TensorBoard panels (5), the benchmark results (6), and the design sketches (7, 8).

They live beside the notebooks, not in `lib`: `lib` is the algorithm. Every function returns the
matplotlib objects it made, so a notebook can tweak them and a test can look inside. `LivePlot`
draws on its own `Figure` and updates one output in place.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from lib.plots import read_scalars, score_axes
from lib.tracking import running_mean

if TYPE_CHECKING:
    from lib.a3c import Progress


def plot_scores(
    scores: Sequence[float],
    frames: Sequence[int],
    window: int = 100,
    stop_score: float | None = None,
    ax: Axes | None = None,
    label: str | None = None,
    color: str | None = None,
) -> Axes:
    """Episode scores (dots) and their running mean (line) against frames."""
    if len(scores) != len(frames):
        raise ValueError(f"{len(scores)} scores but {len(frames)} frame counts")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    (line,) = ax.plot(
        frames, running_mean(scores, window), color=color, label=label or f"mean of {window}"
    )
    ax.scatter(frames, scores, s=3, alpha=0.25, color=line.get_color())
    if stop_score is not None:
        ax.axhline(stop_score, color="gray", ls="--", lw=1)
        ax.annotate(
            f"stop at {stop_score:g}",
            (1, stop_score),
            xycoords=("axes fraction", "data"),
            xytext=(-3, 3),
            textcoords="offset points",
            ha="right",
            fontsize=8,
            color="gray",
        )
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_xlabel("frames (agent steps)")
    ax.set_ylabel("episode score")
    ax.grid(alpha=0.3)
    return ax


def plot_nstep_windows(
    starts: Sequence[int],
    steps: Sequence[int],
    bootstrapped: Sequence[bool],
    labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """One bar per n-step transition: from its first step over the `steps` rewards it sums.

    A circle at the right end means the value of the last state is added (bootstrap); a cross
    means the episode terminated inside the window, so nothing is added.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.45 * len(starts) + 1.2))
    for row, (start, k, boot) in enumerate(zip(starts, steps, bootstrapped, strict=True)):
        y = len(starts) - 1 - row
        ax.barh(y, k, left=start, height=0.5, color="tab:blue", alpha=0.6)
        end = start + k
        if boot:
            ax.plot(end, y, "o", color="tab:green", ms=9)
        else:
            ax.plot(end, y, "x", color="tab:red", ms=10, mew=2)
        if labels is not None:
            ax.text(end + 0.25, y, labels[row], va="center", fontsize=8)
    ax.set_yticks(range(len(starts)), [f"from t={s}" for s in reversed(starts)])
    ax.set_xlabel("time step t")
    right = max(s + k for s, k in zip(starts, steps, strict=True))
    ax.set_xlim(-0.3, right + (2.5 if labels is not None else 0.7))
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.grid(axis="x", alpha=0.3)
    ax.plot([], [], "o", color="tab:green", label="+ γ^steps · V(last state)")
    ax.plot([], [], "x", color="tab:red", mew=2, label="terminal: nothing added")
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def plot_scalars(
    run_dir: str | os.PathLike, tags: Sequence[str], size: tuple[float, float] = (3.6, 2.6)
) -> Figure:
    """One small panel per TensorBoard scalar of a run, against frames."""
    data = read_scalars(run_dir, tags)
    fig, axes = plt.subplots(1, len(tags), figsize=(size[0] * len(tags), size[1]), squeeze=False)
    for ax, tag in zip(axes[0], tags, strict=True):
        steps, values = data[tag]
        ax.plot(steps, values, lw=1.2)
        ax.set_title(tag, fontsize=9)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_xlabel("frames", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _in_notebook() -> bool:
    """True inside a Jupyter kernel, where rich outputs can be updated in place."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class LivePlot:
    """A `train(callback=...)` callback: scores and frames/s, redrawn in place while training.

    Inside Jupyter it keeps one output (an IPython display handle) and replaces its PNG on
    every call; elsewhere it prints one line per call. Either way the data stays available:
    `last` is the latest `Progress`, `history` holds (elapsed seconds, frames, frames/s).
    """

    def __init__(
        self,
        window: int = 100,
        stop_score: float | None = None,
        title: str = "A3C training",
        figsize: tuple[float, float] = (10.0, 3.2),
        dpi: int = 80,
        notebook: bool | None = None,
    ):
        self.window = window
        self.stop_score = stop_score
        self.title = title
        self.dpi = dpi
        self.notebook = _in_notebook() if notebook is None else notebook
        self.fig = Figure(figsize=figsize)
        self.ax_scores, self.ax_fps = self.fig.subplots(1, 2, width_ratios=[3, 2])
        self.last: Progress | None = None
        self.history: list[tuple[float, int, float]] = []
        self.calls = 0
        self._handle: Any = None

    def __call__(self, progress: Progress) -> None:
        self.last = progress
        self.history.append((progress.elapsed, progress.frames, progress.fps))
        self.calls += 1
        if self.notebook:
            self._show()
        else:
            print(self.status(), flush=True)

    def status(self) -> str:
        """One line: frames, episodes, mean score, frames/s."""
        p = self.last
        if p is None:
            return "no progress yet"
        mean = "n/a" if math.isnan(p.mean_score) else f"{p.mean_score:.1f}"
        return (
            f"{p.elapsed:6.1f}s  frames {p.frames:,}  episodes {p.episodes:,}  "
            f"mean score {mean}  {p.fps:,.0f} frames/s"
        )

    def draw(self) -> Figure:
        """Redraw both panels from the data so far and return the figure."""
        for ax in (self.ax_scores, self.ax_fps):
            ax.clear()
        p = self.last
        if p is not None and p.scores:
            plot_scores(
                p.scores,
                p.score_frames,
                window=self.window,
                stop_score=self.stop_score,
                ax=self.ax_scores,
            )
        else:
            self.ax_scores.text(0.5, 0.5, "waiting for the first episode", ha="center")
            self.ax_scores.set_xlabel("frames (agent steps)")
        self.ax_scores.set_title(self.status() if p is not None else self.title, fontsize=9)
        if self.history:
            elapsed, _, fps = zip(*self.history, strict=True)
            self.ax_fps.plot(elapsed, fps, marker=".", lw=1.2)
        self.ax_fps.set_xlabel("seconds since start")
        self.ax_fps.set_ylabel("frames / s (steady)")
        self.ax_fps.set_ylim(bottom=0)
        self.ax_fps.grid(alpha=0.3)
        self.fig.suptitle(self.title, fontsize=10)
        self.fig.tight_layout()
        return self.fig

    def png(self) -> bytes:
        """The current figure as PNG bytes."""
        buf = io.BytesIO()
        self.draw().savefig(buf, format="png", dpi=self.dpi)
        return buf.getvalue()

    def _show(self) -> None:
        from IPython.display import Image, display

        image = Image(data=self.png(), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)


# Notebook 6: figures from the JSON files the benchmarks write (benchmarks/results/*.json).


def plot_median_bars(
    runs: Mapping[str, Sequence[float]],
    labels: Mapping[str, str] | None = None,
    colors: Mapping[str, str] | None = None,
    xlabel: str = "",
    ax: Axes | None = None,
    value_format: str = "{:,.0f}",
) -> Axes:
    """One horizontal bar per key, first key on top: the bar is the median of the key's runs,
    the black dots are the runs themselves and the number is the median."""
    keys = list(runs)
    if not keys:
        raise ValueError("no runs to show")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.42 * len(keys) + 1.1))
    top = max(max(runs[k]) for k in keys)
    for row, key in enumerate(keys):
        y = len(keys) - 1 - row
        values = np.asarray(runs[key], dtype=np.float64)
        median = float(np.median(values))
        color = (colors or {}).get(key, "tab:blue")
        ax.barh(y, median, height=0.6, color=color, alpha=0.75)
        ax.scatter(values, np.full(values.size, y), s=14, color="black", zorder=3)
        ax.text(
            max(median, values.max()) + 0.015 * top,
            y,
            value_format.format(median),
            va="center",
            fontsize=8,
        )
    ax.set_yticks(range(len(keys)), [(labels or {}).get(k, k) for k in reversed(keys)])
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlim(0, 1.15 * top)
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return ax


def _throughput_color(key: str) -> str:
    if key.startswith("a3c_"):
        return "lightsteelblue"
    if key.startswith("a3c"):
        return "tab:blue"
    if key.startswith("a2c"):
        return "tab:orange"
    return "0.6"  # ceilings


def plot_throughput(
    result: Mapping[str, Any], ax: Axes | None = None, frame_skip: int | None = 4
) -> Axes:
    """The rows of `benchmarks.throughput` (ceilings grey, A3C blue, single-process A2C orange):
    median frames/s as bars, each repeat as a dot; emulator frames/s on the top axis."""
    runs = result["runs"]
    labels = {k: re.sub(r"\b1 threads\b", "1 thread", result["labels"].get(k, k)) for k in runs}
    ax = plot_median_bars(
        runs,
        labels=labels,
        colors={k: _throughput_color(k) for k in runs},
        xlabel="frames/s (agent steps consumed by the learner)",
        ax=ax,
    )
    if frame_skip:
        top = ax.secondary_xaxis(
            "top", functions=(lambda x: x * frame_skip, lambda x: x / frame_skip)
        )
        top.xaxis.set_major_formatter(EngFormatter(sep=""))
        top.set_xlabel(f"emulator frames/s (frame skip {frame_skip})", fontsize=8)
        top.tick_params(labelsize=8)
    ax.set_title(
        f"{result['preset']}: {result['processes']} workers × {result['envs_per_process']} envs, "
        f"median of {result['repeats']} (dots: each run)",
        fontsize=10,
    )
    return ax


def plot_scaling(result: Mapping[str, Any], size: tuple[float, float] = (10.0, 3.2)) -> Figure:
    """`benchmarks.scaling`: frames/s against the number of worker processes (left, with the
    linear speed-up from one worker dashed) and the memory of each process (right)."""
    layouts = sorted((int(n), d) for n, d in result["layouts"].items())
    workers = [n for n, _ in layouts]
    medians = [d["fps_median"] for _, d in layouts]
    fig, (ax_fps, ax_mem) = plt.subplots(1, 2, figsize=size)
    for n, d in layouts:
        ax_fps.scatter([n] * len(d["fps"]), d["fps"], s=14, color="black", zorder=3)
    ax_fps.plot(workers, medians, "o-", color="tab:blue", label="A3C, median")
    ax_fps.plot(
        workers,
        [medians[0] * n / workers[0] for n in workers],
        "--",
        color="gray",
        lw=1,
        label="linear from the first",
    )
    ax_fps.set_xticks(workers)
    ax_fps.set_xlabel(f"worker processes ({result['envs_per_process']} envs each)")
    ax_fps.set_ylabel("frames/s (steady)")
    ax_fps.set_ylim(bottom=0)
    ax_fps.legend(fontsize=8)
    ax_fps.grid(alpha=0.3)

    x = np.arange(len(workers))
    uss = [d["worker_uss_mb"] for _, d in layouts]
    rss = [d["learner_rss_mb"] for _, d in layouts]
    ax_mem.bar(x - 0.2, uss, width=0.4, color="tab:blue", label="each worker (USS)")
    ax_mem.bar(x + 0.2, rss, width=0.4, color="0.6", label="learner (RSS)")
    ax_mem.set_xticks(x, [str(n) for n in workers])
    ax_mem.set_xlabel("worker processes")
    ax_mem.set_ylabel("memory (MiB)")
    ax_mem.set_ylim(0, 1.3 * np.nanmax([*uss, *rss]))
    ax_mem.legend(fontsize=8, loc="upper center", ncols=2)
    ax_mem.grid(axis="y", alpha=0.3)
    fig.suptitle(
        f"{result['preset']}: scaling, median of {result['repeats']} runs of "
        f"{result['frames_per_run']:,} frames",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def learning_table(
    runs: Mapping[str, Sequence[Mapping[str, Any]]], labels: Mapping[str, str] | None = None
) -> str:
    """A markdown table of `benchmarks.learning` runs: one row per seed, then mean ± std (over
    seeds, n-1) of the frames, seconds, steady frames/s and final mean score."""

    def mean_std(values: Sequence[float], fmt: str) -> str:
        v = np.asarray(values, dtype=np.float64)
        if v.size > 1:
            return f"{fmt.format(v.mean())} ± {fmt.format(v.std(ddof=1))}"
        return fmt.format(v.mean()) if v.size else ""

    columns = [
        ("frames", "{:,.0f}"),
        ("seconds", "{:,.1f}"),
        ("steady_fps", "{:,.0f}"),
        ("mean_score", "{:,.1f}"),
    ]
    head = "| run | seed | solved | frames | seconds | steady frames/s | mean score (last 100) |"
    lines = [head, "|---|---|---|---:|---:|---:|---:|"]
    for name, seeds in runs.items():
        label = (labels or {}).get(name, name)
        for i, run in enumerate(seeds):
            cells = [fmt.format(run[key]) for key, fmt in columns]
            lines.append(
                f"| {label} | {i} | {'yes' if run['solved'] else 'no'} | "
                + " | ".join(cells)
                + " |"
            )
        if seeds:
            solved = sum(bool(r["solved"]) for r in seeds)
            cells = [f"**{mean_std([r[key] for r in seeds], fmt)}**" for key, fmt in columns]
            lines.append(
                f"| **{label}** | mean ± std | {solved}/{len(seeds)} | " + " | ".join(cells) + " |"
            )
    return "\n".join(lines)


def plot_mean_curves(
    runs: Mapping[str, Sequence[Mapping[str, float]]],
    x: str = "frames",
    window: int = 100,
    stop_score: float | None = None,
    ax: Axes | None = None,
    colors: Mapping[str, str] | None = None,
) -> Axes:
    """One line per run, labelled by its key: each curve point's `mean` (of the last `window`
    scores) against "frames" or wall-clock "minutes"; a circle where a run reached `stop_score`.
    `colors` maps a label to its colour, so that one seed keeps its colour across panels.

    The points are a `lib.train` run's `curve.json` points (frames, seconds, score, mean), as
    `benchmarks.pong_runs` stores them.
    """
    if x not in ("frames", "minutes"):
        raise ValueError(f"x={x!r}: use 'frames' or 'minutes'")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.4))
    for label, points in runs.items():
        if not points:
            continue
        xs = [p["frames"] if x == "frames" else p["seconds"] / 60 for p in points]
        ys = [p["mean"] for p in points]
        (line,) = ax.plot(xs, ys, lw=1.2, label=label, color=(colors or {}).get(label))
        if stop_score is not None and ys[-1] >= stop_score:
            ax.plot(xs[-1], ys[-1], "o", color=line.get_color(), ms=5)
    return score_axes(ax, x, window, stop_score)


DESIGNS = {
    "data": (
        "Data parallelism (--variant data)",
        "main process, the learner:\nloss, gradient, clip, Adam step on θ",
        "play, n-step,\nmicro-batch",
        "micro-batches\n(states, actions, returns)",
    ),
    "grad": (
        "Gradient parallelism (--variant grad)",
        "main process, the learner:\nmean of the g, clip, Adam step on θ",
        "play, n-step,\ngradient g of\nits micro-batch",
        "gradients g\n(a float per weight)",
    ),
}
"""Per design with a learner: title, the learner's box, what each worker does, what it sends."""


def draw_designs(size: tuple[float, float] = (12.0, 3.8)) -> Figure:
    """The three designs as `lib` runs them (`--variant data`, `grad`, `hogwild`): what each
    worker sends to the main process (red), where the Adam step on the weights θ happens, and
    the workers reading θ in shared memory (dashed). In Hogwild the workers step θ and Adam's
    shared moments themselves, and the main process only records their reports."""
    fig, axes = plt.subplots(1, 3, figsize=size)
    for ax in axes:
        ax.set_xlim(-0.1, 10.1)
        ax.set_ylim(0, 10)
        ax.axis("off")
    for ax, (title, top, work, sent) in zip(axes, DESIGNS.values(), strict=False):
        ax.set_title(title, fontsize=10)
        _box(ax, 1.5, 7.0, 7.0, 2.2, top + "\n(θ in shared memory)", "#dbe9f6")
        for i in range(3):
            x = 0.3 + 3.3 * i
            _box(ax, x, 0.6, 3.0, 2.2, f"worker {i}\n{work}", "#fde7c8")
            _arrow(ax, (x + 1.5, 2.95), (3.5 + 1.5 * i, 6.85), lw=1.3, color="tab:red")
            _arrow(ax, (3.1 + 1.5 * i, 6.85), (x + 0.9, 2.95), lw=0.9, ls="--", color="0.45")
        ax.text(
            5.0,
            4.9,
            sent,
            ha="center",
            va="center",
            fontsize=8,
            color="tab:red",
            bbox={"fc": "white", "ec": "none", "alpha": 0.85},
        )

    ax = axes[2]  # Hogwild: every worker steps the shared θ and moments; the main process records
    ax.set_title("Hogwild, the A3C paper's (--variant hogwild)", fontsize=10)
    shared = "shared memory, no lock:\nθ, Adam's moments and step count"
    _box(ax, 1.5, 7.5, 7.0, 1.7, shared, "#e4f2dc")
    _box(
        ax,
        1.5,
        0.3,
        7.0,
        1.3,
        "main process: records only\n(scores, TensorBoard, checkpoints)",
        "#dbe9f6",
    )
    for i in range(3):
        x = 0.3 + 3.3 * i
        worker = f"worker {i}\nplay, a batch,\nloss, gradient,\nAdam step"
        _box(ax, x, 3.6, 3.0, 2.2, worker, "#fde7c8")
        _arrow(ax, (x + 1.9, 5.95), (3.7 + 1.5 * i, 7.35), lw=1.3, color="tab:green")
        _arrow(ax, (3.1 + 1.5 * i, 7.35), (x + 1.1, 5.95), lw=0.9, ls="--", color="0.45")
        _arrow(ax, (x + 1.5, 3.45), (3.5 + 1.5 * i, 1.75), lw=1.3, color="tab:red")
    for y, text, color in (
        (6.65, "writes θ and the moments", "tab:green"),
        (2.6, "reports: loss, lag", "tab:red"),
    ):
        ax.text(
            5.0,
            y,
            text,
            ha="center",
            va="center",
            fontsize=8,
            color=color,
            bbox={"fc": "white", "ec": "none", "alpha": 0.85},
        )
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.text(
        0.01,
        0.01,
        "red: what a worker sends through its pipe   green: a Hogwild worker's step on the "
        "shared θ   dashed: workers read θ in place",
        fontsize=7,
        color="0.35",
    )
    return fig


def plot_study(result: Mapping[str, Any], size: tuple[float, float] = (12.0, 5.6)) -> Figure:
    """The learning-rate x entropy-beta study (`benchmarks.study`): for each learning rate, the
    policy's entropy (top) and the 20-episode mean score (bottom) over frames, one colour per
    beta and one line per seed."""
    lrs, betas = result["lrs"], result["betas"]
    fig, axes = plt.subplots(2, len(lrs), figsize=size, sharex=True, squeeze=False)
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(betas)))
    ln2 = math.log(2)
    for col, lr in enumerate(lrs):
        top, bottom = axes[0][col], axes[1][col]
        for beta, color in zip(betas, colors, strict=True):
            for i, run in enumerate(result["runs"][f"lr={lr:g} beta={beta:g}"]):
                label = f"beta {beta:g}" if i == 0 else None
                e = run["entropy"]
                top.plot(e["frames"], e["values"], color=color, lw=1, alpha=0.8, label=label)
                s = run["score_mean20"]
                if s:
                    bottom.plot(s["frames"], s["values"], color=color, lw=1, alpha=0.8)
                if run["solved"]:
                    bottom.plot(run["frames"], 500, "v", color=color, ms=5)
        top.axhline(ln2, color="0.5", ls="--", lw=0.8)
        top.set_title(f"learning rate {lr:g}", fontsize=10)
        top.set_ylim(0, ln2 * 1.08)
        bottom.set_ylim(0, 520)
        bottom.set_xlabel("frames", fontsize=8)
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    axes[0][0].set_ylabel("policy entropy (nats)\n(dashed: ln 2, uniform)", fontsize=8)
    axes[1][0].set_ylabel("mean score of 20 episodes\n(▼: solved there)", fontsize=8)
    axes[0][-1].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def _box(ax: Axes, x: float, y: float, w: float, h: float, text: str, color: str) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.1", fc=color, ec="0.3", lw=1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], **style: Any) -> None:
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, **style))


def draw_backends(size: tuple[float, float] = (12.0, 4.2)) -> Figure:
    """The two worker backends side by side: spawned processes with a pipe each on one machine
    (`--backend local`), and Ray actors on any number of nodes (`--backend ray`). Same workers,
    same learner; only the transport differs."""
    from matplotlib.patches import Rectangle

    fig, (left, right) = plt.subplots(1, 2, figsize=size)
    for ax, title in (
        (left, "--backend local: spawned processes, a pipe each"),
        (right, "--backend ray: Ray actors, on one node or many"),
    ):
        ax.set_xlim(0, 10)
        ax.set_ylim(-0.6, 10)
        ax.axis("off")
        ax.set_title(title, fontsize=10)
    worker = "worker {}\nenvs, agent,\nn-step, micro-batch"

    # local: one machine, pipes up, shared weights read in place
    left.add_patch(Rectangle((0.05, 0.1), 9.9, 9.5, fill=False, ls=":", ec="0.5"))
    left.text(0.25, 9.2, "one machine", fontsize=8, color="0.4")
    _box(left, 2.0, 6.6, 6.0, 1.8, "learner: loss, Adam,\nweights θ in shared memory", "#dbe9f6")
    for i in range(3):
        x = 0.4 + 3.2 * i
        _box(left, x, 0.7, 2.8, 2.2, worker.format(i), "#fde7c8")
        _arrow(left, (x + 1.7, 3.05), (3.4 + 1.6 * i, 6.45), lw=1.3, color="tab:red")
        _arrow(left, (2.9 + 1.6 * i, 6.45), (x + 0.9, 3.05), lw=0.9, ls="--", color="0.45")
    left.text(
        5.0,
        4.75,
        "pickled micro-batches\nthrough each pipe",
        ha="center",
        fontsize=8,
        color="tab:red",
        bbox={"fc": "white", "ec": "none", "alpha": 0.85},
    )
    left.text(0.3, -0.45, "dashed: workers read θ in place (no copy)", fontsize=7, color="0.35")

    # ray: two nodes, each with its object store; the learner on the head, an actor on each
    for x, label in ((0.05, "node 1 (head)"), (5.25, "node 2")):
        right.add_patch(Rectangle((x, 0.1), 4.7, 9.5, fill=False, ls=":", ec="0.5"))
        right.text(x + 0.2, 9.2, label, fontsize=8, color="0.4")
        _box(right, x + 2.45, 4.3, 2.0, 1.3, "object\nstore", "#e4f2dc")
    _box(right, 0.35, 6.9, 4.0, 1.6, "learner: loss, Adam;\nray.wait, ray.put(θ)", "#dbe9f6")
    for i, x in enumerate((0.35, 5.55)):
        _box(right, x, 0.7, 4.0, 2.2, f"actor {i}: the same\nplay loop as worker {i}", "#fde7c8")
    # θ: put into node 1's store once per update; node 2's store copies it once; actors read
    _arrow(right, (3.4, 6.8), (3.4, 5.75), lw=1.1, color="tab:blue")
    _arrow(right, (4.65, 5.0), (7.55, 5.0), lw=1.1, color="tab:blue")
    _arrow(right, (2.9, 4.15), (2.9, 3.05), lw=1.1, color="tab:blue")
    _arrow(right, (8.1, 4.15), (8.1, 3.05), lw=1.1, color="tab:blue")
    # replies: up to the learner
    _arrow(right, (1.2, 3.05), (1.2, 6.75), lw=1.3, color="tab:red")
    _arrow(right, (6.2, 3.05), (2.2, 6.75), lw=1.3, color="tab:red")
    right.text(6.1, 5.85, "θ copied\nonce per node", fontsize=7, color="tab:blue", ha="center")
    right.text(
        0.3,
        -0.45,
        "red: replies (pickled messages; ray.wait takes the first ready)   blue: θ, put once "
        "per update",
        fontsize=7,
        color="0.35",
    )
    fig.tight_layout()
    return fig
