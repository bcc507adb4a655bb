"""Checkpoints: written atomically, read back with checks that give clear errors."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lib.config import A3CConfig
from lib.tracking import write_atomic

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: unreadable, or from another preset or network shape."""


def versions() -> dict[str, str]:
    import ale_py
    import gymnasium
    import numpy

    return {
        "torch": str(torch.__version__),
        "gymnasium": str(gymnasium.__version__),
        "ale_py": str(ale_py.__version__),
        "numpy": str(numpy.__version__),
    }


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write `state` to `path` atomically: a kill mid-save leaves the previous file intact."""
    state = {"format_version": FORMAT_VERSION, "versions": versions(), **state}
    return write_atomic(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint; a missing, truncated or foreign file raises `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read: it is truncated, corrupt or not a "
            f"checkpoint of this project ({type(exc).__name__}). Use another file, e.g. the "
            "run's best.pt or last.pt."
        ) from None
    needed = ("format_version", "model", "config", "obs_shape", "n_actions")
    if not isinstance(state, dict) or any(k not in state for k in needed):
        raise CheckpointError(
            f"checkpoint {str(path)!r} is not a checkpoint of this project (missing keys)"
        )
    return state


def config_from_checkpoint(state: dict[str, Any]) -> A3CConfig:
    names = {f.name for f in fields(A3CConfig)}
    return A3CConfig(**{k: v for k, v in state["config"].items() if k in names})


def check_compatible(
    state: dict[str, Any], config: A3CConfig, obs_shape: tuple[int, ...], n_actions: int
) -> None:
    """Refuse to resume from a checkpoint of another preset or network shape."""
    saved = config_from_checkpoint(state)
    problems = []
    if saved.preset != config.preset:
        problems.append(f"preset {saved.preset!r} (this run: {config.preset!r})")
    if saved.env_id != config.env_id:
        problems.append(f"env_id {saved.env_id!r} (this run: {config.env_id!r})")
    if saved.net != config.net or saved.hidden_size != config.hidden_size:
        problems.append(
            f"network {saved.net}/{saved.hidden_size} (this run: {config.net}/{config.hidden_size})"
        )
    if tuple(state["obs_shape"]) != tuple(obs_shape) or int(state["n_actions"]) != n_actions:
        problems.append(
            f"observation shape {tuple(state['obs_shape'])} with {state['n_actions']} actions "
            f"(this run: {tuple(obs_shape)} with {n_actions})"
        )
    if problems:
        raise CheckpointError(
            "cannot resume: the checkpoint was made with " + "; ".join(problems) + ". "
            f"Resume with --preset {saved.preset} (or no --preset: the run's own settings), "
            "or start a new run without --resume."
        )


def export_model(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """A small file to share a trained agent: the weights in float16 with what `load_model`
    needs (config, shapes) and the run's frame count and best mean. No optimizer, no history.

    Half precision halves the file (the A3C paper's network: 1.4 MB) and changes the actions
    of a trained policy very rarely; `python -m lib.play` measures the exported file itself.
    """
    state = load_checkpoint(src)
    slim = {
        "model": {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()},
        **{k: state[k] for k in ("config", "obs_shape", "n_actions")},
        **{k: state.get(k) for k in ("frames", "updates", "episodes", "best_mean_score")},
    }
    return save_checkpoint(dst, slim)


def load_model(path: str | os.PathLike, device: str = "cpu") -> tuple[nn.Module, A3CConfig]:
    """The network stored in a checkpoint, in eval mode, with the config it was trained with."""
    from lib.model import make_net

    state = load_checkpoint(path)
    config = config_from_checkpoint(state)
    net = make_net(config, tuple(state["obs_shape"]), int(state["n_actions"]))
    net.load_state_dict(state["model"])  # float16 weights (export_model) become float32 here
    return net.to(device).eval(), config


def main(argv: list[str] | None = None) -> int:
    """`python -m lib.checkpoint --export best.pt notebooks/assets/pong_a3c.pt`"""
    import argparse

    p = argparse.ArgumentParser(prog="python -m lib.checkpoint", description=export_model.__doc__)
    p.add_argument("--export", nargs=2, metavar=("SRC", "DST"), required=True)
    args = p.parse_args(argv)
    try:
        path = export_model(*args.export)
    except CheckpointError as exc:
        p.error(str(exc))
    print(f"wrote {path} ({path.stat().st_size / 2**20:.2f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
