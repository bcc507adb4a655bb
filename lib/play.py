"""Command line: `python -m lib.play --checkpoint runs/.../checkpoints/best.pt --gif pong.gif`.

Plays episodes with a saved model (the policy's most likely action, or sampled with
`--sample`), prints each score, and can write the first episode to a GIF.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from lib.checkpoint import CheckpointError, load_model
from lib.envs import make_env
from lib.tracking import machine_info

# CartPole draws its frames with pygame, which wants a sound card and a window; it needs neither.
for _name in ("SDL_AUDIODRIVER", "SDL_VIDEODRIVER"):
    os.environ.setdefault(_name, "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def play_episode(
    net: torch.nn.Module,
    env_id: str,
    seed: int = 0,
    sample: bool = False,
    max_steps: int = 20_000,
    record: bool = False,
) -> tuple[float, list[np.ndarray]]:
    """One episode: its real score and, with `record`, the RGB frames the player would see."""
    env = make_env(env_id, seed=seed, render_mode="rgb_array" if record else None)
    frames: list[np.ndarray] = []
    obs, _ = env.reset(seed=seed)
    score, steps = 0.0, 0
    try:
        while steps < max_steps:
            if record:
                frames.append(env.render())
            with torch.no_grad():
                logits, _ = net(torch.as_tensor(obs[None]))
            if sample:
                action = int(torch.multinomial(torch.softmax(logits, 1), 1).item())
            else:
                action = int(logits.argmax(1).item())
            obs, reward, terminated, truncated, info = env.step(action)
            steps += 1
            score += float(reward)
            if terminated or truncated:
                score = float(info["episode"]["r"]) if "episode" in info else score
                break
    finally:
        env.close()
    return score, frames


def encode_animation(
    frames: list[np.ndarray],
    fmt: str = "GIF",
    fps: int = 30,
    every: int = 2,
    scale: float = 1.0,
) -> bytes:
    """RGB frames as an animated GIF or PNG (APNG): every `every`-th frame, resized by `scale`.

    An animated PNG is still a PNG, so a notebook can show it as an ordinary `image/png`
    output, which GitHub, JupyterLab and an HTML export all display (a GIF output is dropped
    by the HTML export).
    """
    from PIL import Image

    if not frames:
        raise ValueError("no frames to encode")
    if fmt not in ("GIF", "PNG"):
        raise ValueError(f"fmt={fmt!r}: use 'GIF' or 'PNG'")
    images = [Image.fromarray(f) for f in frames[::every]]
    if scale != 1.0:
        w, h = images[0].size
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        images = [img.resize(size, Image.Resampling.BILINEAR) for img in images]
    out = io.BytesIO()
    images[0].save(
        out,
        format=fmt,
        save_all=True,
        append_images=images[1:],
        duration=int(1000 * every / fps),
        loop=0,
        optimize=True,
    )
    return out.getvalue()


def write_gif(
    frames: list[np.ndarray], path: str | Path, fps: int = 30, every: int = 2, scale: float = 1.0
) -> Path:
    """Save RGB frames as an animated GIF (see `encode_animation`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_animation(frames, "GIF", fps, every, scale))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lib.play", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a best.pt or last.pt file")
    p.add_argument("--episodes", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sample", action="store_true", help="sample actions instead of argmax")
    p.add_argument("--max-steps", type=int, default=20_000, help="cap on steps per episode")
    p.add_argument("--gif", help="write the first episode to this GIF file")
    p.add_argument("--gif-scale", type=float, default=1.0, help="resize the GIF's frames")
    p.add_argument("--json", help="also write the scores, their mean and the settings here")
    args = p.parse_args(argv)
    if args.episodes < 1:
        p.error("--episodes must be >= 1")
    try:
        net, config = load_model(args.checkpoint)
    except CheckpointError as exc:
        p.error(str(exc))
    scores = []
    for i in range(args.episodes):
        record = bool(args.gif) and i == 0
        score, frames = play_episode(
            net, config.env_id, args.seed + i, args.sample, args.max_steps, record
        )
        scores.append(score)
        print(f"episode {i + 1}: score {score:g}")
        if record:
            path = write_gif(frames, args.gif, scale=args.gif_scale)
            print(f"wrote {path} ({len(frames)} frames)")
    mean = round(float(np.mean(scores)), 2)
    print(f"mean score over {len(scores)} episodes: {mean:.2f}")
    if args.json:
        record = {
            "checkpoint": str(args.checkpoint),
            "env_id": config.env_id,
            "actions": "sampled" if args.sample else "greedy (the most likely)",
            "seeds": [args.seed + i for i in range(args.episodes)],
            "scores": scores,
            "mean": mean,
            "machine": machine_info(),
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
