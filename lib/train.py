"""Command line: `python -m lib.train --preset pong --device auto`.

`--backend ray` runs the workers as Ray actors (`--address` joins a cluster). Every field of
`A3CConfig` is an option (`--learning-rate`, `--adam-eps`, ...), built from the
dataclass and its docstrings, so a new setting appears here by itself. Every setting is checked
before any process starts; the run ends with a one-line summary and `summary.json` in its run
folder.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields, replace
from pathlib import Path

from lib.config import (
    LAYOUT_FIELDS,
    NETS,
    PRESETS,
    VARIANTS,
    WORKER_DEVICES,
    A3CConfig,
    ConfigError,
    field_docs,
    fit_layout,
    get_preset,
    override,
)

ALIASES = {"envs_per_process": ("--envs",), "learning_rate": ("--lr",)}
"""Short spellings kept from earlier versions of this command line."""
CHOICES = {"net": NETS, "worker_device": WORKER_DEVICES, "variant": VARIANTS}
TYPES = {"int": int, "float": float, "str": str}
NOT_OPTIONS = ("preset",)
"""Fields set another way: `--preset` picks the whole starting config."""


def option(field: str) -> str:
    """The command-line option of a config field: `envs_per_process` -> `--envs-per-process`."""
    return "--" + field.replace("_", "-")


def config_fields() -> list[str]:
    """The config fields that are command-line options, in the dataclass's order."""
    return [f.name for f in fields(A3CConfig) if f.name not in NOT_OPTIONS]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lib.train",
        description="Train A3C: spawned workers play; one learner trains on their experience "
        "(--variant data) or their gradients (--variant grad), or each worker updates the shared "
        "weights itself (--variant hogwild, the A3C paper's design).",
    )
    p.add_argument(
        "--preset",
        help=f"starting settings: {', '.join(PRESETS)} [pong; with --resume, the run's own]",
    )
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--run-dir", help="folder for TensorBoard, checkpoints and summary.json")
    p.add_argument("--run-name", help="name of the run folder under runs/ (if no --run-dir)")
    p.add_argument(
        "--resume",
        metavar="PATH",
        help="continue a run: its folder (goes on in the same folder) or a checkpoint file",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--layout",
        default="auto",
        choices=("auto", "preset"),
        help="auto: workers, envs per worker, learner threads and worker device fitted to this "
        "machine's cores and GPU (options you give still win); preset: the preset's own",
    )
    p.add_argument(
        "--backend",
        default="local",
        choices=("local", "ray"),
        help="where the workers run: spawned processes on this machine (local) or Ray actors "
        "on one machine or a cluster (ray; pip install -e '.[distributed]')",
    )
    p.add_argument(
        "--address",
        help="with --backend ray: join the Ray cluster at this address (host:port, as `ray "
        "start --head` prints it) instead of starting a Ray instance for the run",
    )
    p.add_argument(
        "--max-restarts",
        type=int,
        default=3,
        metavar="INT",
        help="with --backend ray: how many times Ray restarts each worker whose process dies "
        "before the run stops with an error [3]",
    )
    group = p.add_argument_group("settings (default: the preset's value)")
    docs = field_docs()
    for f in fields(A3CConfig):
        if f.name in NOT_OPTIONS:
            continue
        names = (option(f.name), *ALIASES.get(f.name, ()))
        default = "" if f.default is MISSING else f" [pong: {f.default}]"
        kwargs = {
            "dest": f.name,
            "default": None,
            "help": (docs[f.name] + default).replace("%", "%%"),
        }
        if f.type == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = TYPES[str(f.type)]
            kwargs["metavar"] = str(f.type).upper()
            if f.name in CHOICES:
                kwargs["choices"] = CHOICES[f.name]
                del kwargs["metavar"]
        group.add_argument(*names, **kwargs)
    return p


def describe(config: A3CConfig) -> str:
    """The layout fields of a config, in words."""
    threads = config.learner_threads or "auto"
    envs = "ale-py's vector env" if config.vector_env else "gymnasium's wrappers"
    return (
        f"{config.processes} workers x {config.envs_per_process} envs ({envs}), learner "
        f"threads {threads}, worker device {config.worker_device}"
    )


def resume_paths(resume: str, run_dir: str | None) -> tuple[Path, Path | None]:
    """`--resume` names a run folder or a checkpoint: the checkpoint, and the folder a run
    folder goes on in (None for a checkpoint file: a new folder unless --run-dir)."""
    path = Path(resume)
    if path.is_dir():
        return path / "checkpoints" / "last.pt", Path(run_dir) if run_dir else path
    return path, Path(run_dir) if run_dir else None


def starting_config(args: argparse.Namespace, saved: A3CConfig | None) -> A3CConfig:
    """The preset with the options given. A resumed run starts from its checkpoint's settings
    instead, so that it goes on as it began unless an option says otherwise; its layout is the
    preset's, for `--layout` to fit to this machine (the checkpoint's fitted another)."""
    given = {k: getattr(args, k) for k in config_fields()}
    if saved is None or args.preset not in (None, saved.preset):
        return get_preset(args.preset or "pong", **given)  # another preset: train() refuses it
    base = get_preset(saved.preset)
    own = [
        f"{k}={getattr(saved, k)}"
        for k in config_fields()
        if k not in LAYOUT_FIELDS and given[k] is None and getattr(saved, k) != getattr(base, k)
    ]
    new = [f"{k}={v}" for k, v in given.items() if v is not None]
    print(
        f"resume: the run's own settings, preset {saved.preset}"
        + "".join(f", {x}" for x in own)
        + (f"; changed here: {', '.join(new)}" if new else ""),
        file=sys.stderr,
        flush=True,
    )
    layout = {k: getattr(base, k) for k in LAYOUT_FIELDS}
    return override(saved, **(layout | {k: v for k, v in given.items() if v is not None}))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from lib.checkpoint import CheckpointError, config_from_checkpoint, load_checkpoint

    resume, run_dir, saved = None, Path(args.run_dir) if args.run_dir else None, None
    if args.resume:
        resume, run_dir = resume_paths(args.resume, args.run_dir)
        try:
            saved = config_from_checkpoint(load_checkpoint(resume))
        except CheckpointError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    # Everything that can be checked is checked here, before any worker starts.
    try:
        from lib.envs import check_env_id

        config = starting_config(args, saved)
        check_env_id(config.env_id)
        from lib.a3c import check_backend, check_device

        device = check_device(config, args.device)
        check_backend(args.backend, args.address, args.max_restarts, config.variant)
        layout = None
        if args.layout == "auto" and args.backend == "local":
            layout = fit_layout(config, cuda=device.type == "cuda")
            given = [k for k in LAYOUT_FIELDS if getattr(args, k) is not None]
            config = override(
                config, **{k: v for k, v in layout.overrides().items() if k not in given}
            )
            if given:  # the rule's reason alone would claim the options' values as its own
                named = ", ".join(option(k) for k in given)
                layout = replace(layout, reason=f"{layout.reason}, with {named} as given")
            print(f"layout: {describe(config)}: {layout.reason}", file=sys.stderr, flush=True)
    except (ConfigError, ValueError, ImportError) as exc:
        parser.error(str(exc))

    from lib.a3c import default_run_dir, train
    from lib.stopping import ForcedExit

    if run_dir is None:
        run_dir = Path("runs") / args.run_name if args.run_name else default_run_dir(config)
    try:
        summary = train(
            config,
            run_dir=run_dir,
            device=args.device,
            resume=resume,
            progress=not args.no_progress,
            backend=args.backend,
            address=args.address,
            max_restarts=args.max_restarts,
            layout=layout,
        )
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ForcedExit:  # a third Ctrl+C: what was skipped is already on stderr
        return 130
    print(summary.line())
    return 130 if summary.stop_reason == "interrupted" else 0


if __name__ == "__main__":
    sys.exit(main())
