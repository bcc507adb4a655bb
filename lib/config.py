"""Hyperparameter presets (one frozen dataclass each) and their validation.

Every setting a run depends on lives in `A3CConfig`, so a config can be pickled to the spawned
workers, saved next to a checkpoint, logged to TensorBoard and shown at the top of a notebook.
`validate` checks it all before any process starts and names the field and the fix.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import html
import inspect
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A setting is out of range; the message names the field and what to change."""


@dataclass(frozen=True)
class A3CConfig:
    """One training run's settings. Defaults are the reference code's Pong hyperparameters."""

    preset: str = "pong"
    """Name of the preset this config started from (checked on --resume)."""
    env_id: str = "PongNoFrameskip-v4"
    """Gymnasium id of the game; Atari ids get the full DQN-style wrapper pipeline."""
    net: str = "atari"
    """Network: "atari" (AtariA2C, the reference code's), "atari-small" (SmallAtariA2C, the
    A3C paper's) or "mlp" (MlpA2C, vector observations)."""
    hidden_size: int = 512
    """Units in the hidden layer of each head (the reference code uses 512)."""
    gamma: float = 0.99
    """Discount factor."""
    learning_rate: float = 0.001
    """Adam learning rate."""
    lr_anneal: bool = False
    """Lower the learning rate linearly from `learning_rate` to zero at `max_frames` (the A3C
    paper's schedule); off, it stays constant (the reference code's)."""
    adam_eps: float = 1e-3
    """Adam epsilon (the reference code uses a large 1e-3 for stability)."""
    entropy_beta: float = 0.01
    """Weight of the entropy bonus."""
    value_loss_coef: float = 1.0
    """Weight of the value term in the loss (the reference code's 1.0; A2C often uses 0.5)."""
    batch_size: int = 128
    """Samples per learner update (gathered from several micro-batches)."""
    reward_steps: int = 4
    """n in the n-step return; a window of k <= n steps discounts its bootstrap by gamma ** k."""
    clip_grad: float = 0.1
    """Maximum L2 norm of the gradient."""
    processes: int = 4
    """Worker processes that play the game and send micro-batches."""
    envs_per_process: int = 8
    """Environments stepped together by each worker."""
    micro_batch_size: int = 32
    """Samples a worker gathers before sending them to the learner (a Hogwild worker gathers
    `batch_size`, then updates)."""
    stop_score: float = 18.0
    """Stop when the mean score of the last `score_window` episodes reaches this."""
    score_window: int = 100
    """How many recent episodes the mean score is taken over."""
    max_frames: int = 0
    """Stop after this many frames (agent steps consumed by the learner); 0 means no limit."""
    max_seconds: float = 0.0
    """Stop after this much wall-clock time in seconds; 0 means no limit."""
    seed: int = 0
    """Base seed; worker i seeds its envs from seed + 1000 * (i + 1)."""
    checkpoint_minutes: float = 10.0
    """Save the last checkpoint at least this often (and always on exit)."""
    reuse_values: bool = True
    """Bootstrap from the V(s) the worker computed when it acted in s, instead of a second
    forward pass in unpack_batch (the reference code's way, False). Same value, at most a
    micro-batch older or newer; saves about a sixth of the CPU work per frame on Pong."""
    worker_nice: int = 10
    """Niceness added to each worker process (0-19). The learner is the bottleneck; when it
    has work, the workers yield the CPU to it (+13% frames/s on 2 cores, benchmarks/README.md)."""
    learner_threads: int = 0
    """torch threads for the learner; 0 = the cores the workers leave free (at least 1)."""
    variant: str = "data"
    """How the work is split: "data" (workers send experience, the learner computes every
    gradient: the reference code's design), "grad" (workers send the gradients of their own
    micro-batches; the learner averages them and steps Adam) or "hogwild" (the A3C paper's:
    each worker updates the shared weights and Adam state itself, a batch of its own a step)."""
    vector_env: bool = False
    """Atari workers play with ale-py's AtariVectorEnv (the same preprocessing in C++) instead
    of `make_env`'s gymnasium wrappers (`lib.envs.make_vector_env`)."""
    worker_device: str = "cpu"
    """Where the workers run their forward passes: "cpu" (on their own cores, with a shared CPU
    copy of the weights refreshed after every update) or "learner" (on the learner's device,
    with its own weights: the reference code's way). Only a GPU learner tells them apart
    (benchmarks/README.md measures both)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def _repr_html_(self) -> str:
        """A table in notebooks (JupyterLab, GitHub, HTML export) instead of one long line:
        each field, its value, and the first sentence of its docstring; bold where the value
        differs from preset `pong`, the reference code's hyperparameters."""
        caption = f"A3CConfig, preset {self.preset}"
        if self.preset != PONG.preset:
            caption += "; bold = differs from preset pong"
        return _fields_table(self, [f.name for f in fields(self)], PONG, caption)

    def changed(self, base: A3CConfig | None = None) -> FieldTable:
        """Only the fields that differ from `base` (default: the preset this config started
        from), for a notebook that shows what it changes and nothing else."""
        base = PRESETS.get(self.preset, PONG) if base is None else base
        names = [f.name for f in fields(self) if getattr(self, f.name) != getattr(base, f.name)]
        caption = f"A3CConfig: the fields that differ from preset {base.preset}"
        return FieldTable(names, _fields_table(self, names, base, caption))

    @property
    def total_envs(self) -> int:
        return self.processes * self.envs_per_process

    def resolved_learner_threads(self, local_workers: int | None = None) -> int:
        """Workers run one thread each; the learner takes the cores they leave on this machine
        (`local_workers` of them run here, all by default), never fewer than 1.

        On 2 cores with 2 workers a 2-thread learner made A3C 2.6x slower than a 1-thread one
        (128 against 329 frames/s, benchmarks/README.md): oversubscribed threads wait on each
        other.
        """
        if self.learner_threads:
            return self.learner_threads
        here = self.processes if local_workers is None else local_workers
        return max(1, usable_cores() - here)


@dataclass(frozen=True)
class FieldTable:
    """Some fields of a config, shown by a notebook as a table."""

    names: list[str]
    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"A3CConfig fields: {', '.join(self.names) or 'none changed'}"


def _fields_table(config: A3CConfig, names: list[str], base: A3CConfig, caption: str) -> str:
    docs = field_docs()
    rows = []
    for name in names:
        value = html.escape(repr(getattr(config, name)))
        if getattr(config, name) != getattr(base, name):
            value = f"<b>{value}</b>"
        doc = html.escape(docs.get(name, "").split(". ")[0].rstrip("."))
        rows.append(f"<tr><td><code>{name}</code></td><td>{value}</td><td>{doc}</td></tr>")
    head = "<tr><th>field</th><th>value</th><th>what it is</th></tr>"
    return (
        f'<table><caption style="text-align:left">{html.escape(caption)}</caption>'
        f"<thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"
    )


PONG = A3CConfig()
BREAKOUT = replace(PONG, preset="breakout", env_id="BreakoutNoFrameskip-v4", stop_score=400.0)
# CartPole: the same algorithm on a vector observation, tuned to learn in about a minute on 2 cores.
CARTPOLE = A3CConfig(
    preset="cartpole",
    env_id="CartPole-v1",
    net="mlp",
    hidden_size=128,
    gamma=0.99,
    learning_rate=0.002,
    adam_eps=1e-8,
    entropy_beta=0.01,
    value_loss_coef=0.5,  # against 1.0: half the frames, far fewer falls (a2c_value_coef.json)
    batch_size=256,
    reward_steps=4,
    clip_grad=1.0,
    processes=2,
    envs_per_process=8,
    micro_batch_size=32,
    stop_score=475.0,
    score_window=100,
    max_frames=4_000_000,  # a safety net: runs here solved in 0.25M-0.52M frames
    checkpoint_minutes=10.0,
)

# Pong on a CPU: the A3C paper's smaller network (1.92x the frames/s of the reference code's on
# 2 cores, measured side by side) and the usual A2C optimiser scale, chosen against a second
# candidate (benchmarks/README.md, "Pong on 2 cores"), eight-step returns and the value term
# weighted 0.5 (same file).
PONG_FAST = replace(
    PONG,
    preset="pong-fast",
    net="atari-small",
    hidden_size=256,
    learning_rate=7e-4,
    adam_eps=1e-5,
    clip_grad=0.5,
    processes=2,
    envs_per_process=16,
    reward_steps=8,  # median frames to solve 6.97M over 4 seeds, n = 4 7.53M (..._nstep.json)
    value_loss_coef=0.5,  # seeds 1-4: median 4.63M frames, 1.0 6.97M (..._n8_vlc0.5.json)
    vector_env=True,  # 1.16x A3C's frames/s on 2 cores (benchmarks/results/vector_env_loop_*.json)
    checkpoint_minutes=5.0,
)

PRESETS: dict[str, A3CConfig] = {
    "pong": PONG,
    "pong-fast": PONG_FAST,
    "breakout": BREAKOUT,
    "cartpole": CARTPOLE,
}

NETS = ("atari", "atari-small", "mlp")
"""The networks a config can name; `lib.model.NETWORKS` makes each."""
WORKER_DEVICES = ("learner", "cpu")
VARIANTS = ("data", "grad", "hogwild")


@functools.cache
def field_docs() -> dict[str, str]:
    """Each `A3CConfig` field's docstring, read from this file: the command line's help."""
    tree = ast.parse(inspect.getsource(A3CConfig))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
        ):
            docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (`taskset`, a container's cpuset),
    and a cgroup's CPU quota (`docker --cpus`) where one is set, whichever is fewer."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


@dataclass(frozen=True)
class Layout:
    """How a run spreads over the machine: the config fields the layout rule sets, and why."""

    processes: int
    envs_per_process: int
    learner_threads: int
    worker_device: str
    vector_env: bool
    cores: int
    """CPU cores the run may use (`usable_cores`)."""
    cuda: bool
    reason: str

    def overrides(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in LAYOUT_FIELDS}


LAYOUT_FIELDS = ("processes", "envs_per_process", "learner_threads", "worker_device", "vector_env")
"""The config fields the layout rule sets, unless the command line names them."""
GPU_ENVS_PER_PROCESS = 8
"""Environments per worker with a GPU learner: 14 workers x 8 solved Pong on a 16-core H100."""


def fit_layout(config: A3CConfig, cores: int | None = None, cuda: bool = False) -> Layout:
    """The layout for this machine: the preset's own, measured on 2 cores, scaled to `cores`
    and to a CUDA learner for the Atari presets (CartPole keeps its own everywhere).

    With CUDA the learner's work moves to the GPU, and one worker per core but two (the
    learner's process and its pipe readers keep those) play, 8 envs each, with gymnasium's
    wrappers (the vector env was 0.92x there): 14 x 8 solved Pong on a 16-core GPU machine. On
    a CPU alone the learner needs cores of its own as the workers add frames: a quarter of the
    cores (the fastest of three layouts tried on 16 and on 8 cores, with gymnasium's wrappers),
    the rest play. Hogwild's main process does not train: every core plays and learns. Up to
    `processes + 1` cores the preset is kept: on 2 cores its 2 workers share the cores with the
    learner, at a lower priority.
    """
    cores = cores or usable_cores()
    keep = Layout(
        config.processes,
        config.envs_per_process,
        config.learner_threads,
        config.worker_device,
        config.vector_env,
        cores,
        cuda,
        f"the {config.preset} preset's own layout",
    )
    if config.net == "mlp" or cores <= config.processes + 1:
        return keep
    if config.variant == "hogwild":
        return Layout(
            cores,
            config.envs_per_process,
            1,
            config.worker_device,
            config.vector_env,
            cores,
            cuda,
            f"{cores} CPU cores, Hogwild: {cores} workers x {config.envs_per_process} envs play "
            "and update the shared weights (not measured beyond 2 cores)",
        )
    if cuda:
        workers = cores - 2
        return Layout(
            workers,
            GPU_ENVS_PER_PROCESS,
            0,
            "cpu",
            False,
            cores,
            cuda,
            f"a CUDA GPU learns and {cores} cores play: {workers} workers x "
            f"{GPU_ENVS_PER_PROCESS} envs (14 x 8 solved Pong on a 16-core GPU machine)",
        )
    threads = max(1, cores // 4)
    workers = cores - threads
    return Layout(
        workers,
        config.envs_per_process,
        threads,
        config.worker_device,
        False,
        cores,
        cuda,
        f"{cores} CPU cores: {workers} workers x {config.envs_per_process} envs play, and the "
        f"learner takes {threads} thread{'s' * (threads > 1)}",
    )


def quick_mode() -> bool:
    """True when `A3C_QUICK=1`: notebooks and demos shrink every long run (used by CI)."""
    return os.environ.get("A3C_QUICK", "0") not in ("", "0", "false", "False")


def get_preset(name: str, **overrides: Any) -> A3CConfig:
    """The named preset with `overrides` applied and validated."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.{hint}")
    return override(PRESETS[name], **overrides)


def override(config: A3CConfig, **overrides: Any) -> A3CConfig:
    """`config` with the given fields replaced (None means keep), then validated."""
    names = {f.name for f in fields(A3CConfig)}
    unknown = [k for k in overrides if k not in names]
    if unknown:
        raise ConfigError(f"unknown config field(s) {unknown}; valid fields: {sorted(names)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    new = replace(config, **changes)
    validate(new)
    return new


def _check(ok: bool, field: str, value: Any, rule: str) -> None:
    if not ok:
        raise ConfigError(f"{field}={value!r} is invalid: {rule}")


def validate(config: A3CConfig) -> A3CConfig:
    """Raise `ConfigError` naming the first bad field and its valid range; return the config."""
    c = config
    _check(c.net in NETS, "net", c.net, f"use one of {NETS}")
    _check(c.hidden_size >= 1, "hidden_size", c.hidden_size, "must be >= 1")
    _check(0.0 <= c.gamma <= 1.0, "gamma", c.gamma, "must be in [0, 1]")
    _check(c.learning_rate > 0, "learning_rate", c.learning_rate, "must be > 0")
    _check(c.adam_eps > 0, "adam_eps", c.adam_eps, "must be > 0")
    _check(c.entropy_beta >= 0, "entropy_beta", c.entropy_beta, "must be >= 0")
    _check(c.value_loss_coef > 0, "value_loss_coef", c.value_loss_coef, "must be > 0")
    _check(c.reward_steps >= 1, "reward_steps", c.reward_steps, "must be >= 1")
    _check(c.clip_grad > 0, "clip_grad", c.clip_grad, "must be > 0")
    _check(c.processes >= 1, "processes", c.processes, "must be >= 1 (one worker at least)")
    _check(c.envs_per_process >= 1, "envs_per_process", c.envs_per_process, "must be >= 1")
    _check(c.micro_batch_size >= 1, "micro_batch_size", c.micro_batch_size, "must be >= 1")
    _check(
        c.batch_size >= c.micro_batch_size,
        "batch_size",
        c.batch_size,
        f"must be >= micro_batch_size ({c.micro_batch_size}); raise batch_size or lower "
        "micro_batch_size",
    )
    _check(c.score_window >= 1, "score_window", c.score_window, "must be >= 1")
    _check(c.max_frames >= 0, "max_frames", c.max_frames, "must be >= 0 (0 = no limit)")
    _check(
        c.max_frames > 0 or not c.lr_anneal,
        "lr_anneal",
        c.lr_anneal,
        "needs max_frames > 0, the frame at which the rate reaches zero: set --max-frames",
    )
    _check(c.max_seconds >= 0, "max_seconds", c.max_seconds, "must be >= 0 (0 = no limit)")
    _check(c.seed >= 0, "seed", c.seed, "must be >= 0")
    _check(c.checkpoint_minutes > 0, "checkpoint_minutes", c.checkpoint_minutes, "must be > 0")
    _check(0 <= c.worker_nice <= 19, "worker_nice", c.worker_nice, "must be in [0, 19]")
    _check(c.learner_threads >= 0, "learner_threads", c.learner_threads, "must be >= 0 (0 = auto)")
    _check(c.variant in VARIANTS, "variant", c.variant, f"use one of {VARIANTS}")
    _check(
        c.worker_device in WORKER_DEVICES,
        "worker_device",
        c.worker_device,
        f"use one of {WORKER_DEVICES}",
    )
    return c
