"""Command line: `python -m lib.train --preset pong --device auto`.

Every setting is checked before any process starts; the run ends with a one-line summary and
`summary.json` in its run folder.
"""

from __future__ import annotations

import argparse
import sys

from lib.config import PRESETS, ConfigError, get_preset


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lib.train",
        description="Train A3C with data parallelism (spawned workers, one learner).",
    )
    p.add_argument("--preset", default="pong", help=f"one of: {', '.join(PRESETS)}")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--processes", type=int, help="worker processes")
    p.add_argument("--envs", type=int, dest="envs_per_process", help="envs per worker")
    p.add_argument("--batch-size", type=int, help="samples per learner update")
    p.add_argument("--micro-batch-size", type=int, help="samples per worker message")
    p.add_argument("--max-frames", type=int, help="stop after this many frames (0: no limit)")
    p.add_argument("--max-seconds", type=float, help="stop after this many seconds (0: none)")
    p.add_argument("--stop-score", type=float, help="stop when the mean score reaches this")
    p.add_argument("--lr", type=float, dest="learning_rate", help="Adam learning rate")
    p.add_argument("--seed", type=int, help="base random seed")
    p.add_argument("--env-id", help="override the preset's environment id")
    p.add_argument(
        "--worker-device",
        choices=("learner", "cpu"),
        help="where workers run the network: on the learner's device, or on their CPU cores",
    )
    p.add_argument("--checkpoint-minutes", type=float, help="save last.pt this often")
    p.add_argument("--run-dir", help="folder for TensorBoard, checkpoints and summary.json")
    p.add_argument("--run-name", help="name of the run folder under runs/ (if no --run-dir)")
    p.add_argument("--resume", metavar="PATH", help="continue from a checkpoint (last.pt)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


OVERRIDES = (
    "processes",
    "envs_per_process",
    "batch_size",
    "micro_batch_size",
    "max_frames",
    "max_seconds",
    "stop_score",
    "learning_rate",
    "seed",
    "env_id",
    "checkpoint_minutes",
    "worker_device",
)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Everything that can be checked is checked here, before any worker starts.
    try:
        from lib.agent import default_device
        from lib.envs import check_env_id

        config = get_preset(args.preset, **{k: getattr(args, k) for k in OVERRIDES})
        check_env_id(config.env_id)
        default_device(args.device)
    except (ConfigError, ValueError) as exc:
        parser.error(str(exc))

    from pathlib import Path

    from lib.a3c import default_run_dir, train
    from lib.checkpoint import CheckpointError

    if args.run_dir:
        run_dir = Path(args.run_dir)
    elif args.run_name:
        run_dir = Path("runs") / args.run_name
    else:
        run_dir = default_run_dir(config)
    try:
        summary = train(
            config,
            run_dir=run_dir,
            device=args.device,
            resume=args.resume,
            progress=not args.no_progress,
        )
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary.line())
    return 130 if summary.stop_reason == "interrupted" else 0


if __name__ == "__main__":
    sys.exit(main())
