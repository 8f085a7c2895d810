"""Render a trained agent's episodes to an animated gif (headless).

    python experiments/minigrid/visualize.py --env MiniGrid-Empty-16x16-v0 --model rim5x5 --gif rim16x16

Under each frame a caption gives the episode and step. For a RIM agent a strip below it
has one cell per unit, numbered from 0: coloured when the unit is active at that step
(it read the observation and updated its state), dark when it is not. The frame shows
the state the agent saw when it chose its action.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Sequence
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from experiments.common import UserError, cli_main
from experiments.minigrid.agent import Agent, check_env_fits, load_model
from experiments.minigrid.envs import make_env
from experiments.minigrid.storage import add_storage_argument, existing_model_dir

CAPTION_HEIGHT = 16
UNITS_HEIGHT = 24
CELL_MARGIN = 3
BACKGROUND = (20, 20, 20)
INACTIVE = (55, 55, 55)
# Okabe-Ito colours (distinguishable with colour-blindness); every one is bright, so a
# unit's cell is bright exactly when the unit is active.
UNIT_COLOURS = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
                (0, 114, 178), (213, 94, 0), (204, 121, 167)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help="MiniGrid environment id to act in (REQUIRED)")
    p.add_argument("--model", required=True, help="name of the trained model's directory (REQUIRED)")
    p.add_argument("--gif", required=True,
                   help="output file; .gif is appended if missing (REQUIRED)")
    add_storage_argument(p)
    p.add_argument("--episodes", type=int, default=3, help="episodes to render (default: 3)")
    p.add_argument("--max-frames", type=int, default=500,
                   help="stop after this many frames in all, keeping the gif small (default: 500)")
    p.add_argument("--seed", type=int, default=0, help="seeds the environment and the actions (default: 0)")
    p.add_argument("--argmax", action="store_true",
                   help="take the most probable action instead of sampling one")
    p.add_argument("--tile-size", type=int, default=32,
                   help="pixels per grid cell; 16 keeps large grids' gifs small (default: 32)")
    p.add_argument("--pause", type=float, default=0.2, help="seconds per frame in the gif (default: 0.2)")
    p.add_argument("--use_rim", "--use-rim", action="store_true",
                   help="optional; the architecture is read from status.pt, this only checks it is a RIM")
    return p.parse_args(argv)


def unit_cells(width: int, num_units: int) -> list[tuple[int, int]]:
    """Horizontal pixel range ``[x0, x1)`` of each unit's cell in the strip."""
    edges = np.linspace(0, width, num_units + 1).round().astype(int)
    return [(int(a) + CELL_MARGIN, int(b) - CELL_MARGIN) for a, b in zip(edges[:-1], edges[1:])]


@functools.cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=11)  # bundled with Pillow: no font files needed


def strip_height(num_units: int | None) -> int:
    return CAPTION_HEIGHT + (UNITS_HEIGHT if num_units else 0)


def add_strip(frame: np.ndarray, caption: str, active: Sequence[bool] | None) -> np.ndarray:
    """``frame`` with the caption and, if ``active`` is given, the units strip below it."""
    height, width = frame.shape[:2]
    image = Image.new("RGB", (width, height + strip_height(None if active is None else len(active))),
                      BACKGROUND)
    image.paste(Image.fromarray(frame), (0, 0))
    draw = ImageDraw.Draw(image)
    font = _font()
    draw.text((4, height + 2), caption, fill=(235, 235, 235), font=font)
    if active is not None:
        top, bottom = height + CAPTION_HEIGHT, height + CAPTION_HEIGHT + UNITS_HEIGHT - CELL_MARGIN
        for unit, ((x0, x1), on) in enumerate(zip(unit_cells(width, len(active)), active)):
            colour = UNIT_COLOURS[unit % len(UNIT_COLOURS)] if on else INACTIVE
            draw.rectangle((x0, top, x1 - 1, bottom - 1), fill=colour)
            draw.text((x0 + 3, top + 4), str(unit), fill=(0, 0, 0) if on else (150, 150, 150), font=font)
    return np.asarray(image)


def run(args: argparse.Namespace) -> dict:
    """Write the gif; return ``{"gif": path, "frames": count, "returns": [finished episodes' returns]}``."""
    if min(args.episodes, args.max_frames, args.tile_size) < 1 or args.pause <= 0:
        raise UserError("--episodes, --max-frames and --tile-size must be >= 1 and --pause > 0")
    model, _ = load_model(existing_model_dir(args.model, args.storage), args.use_rim)
    env = make_env(args.env, args.seed, render_mode="rgb_array", tile_size=args.tile_size)
    check_env_fits(model.config, env, args.env)
    torch.manual_seed(args.seed)
    agent = Agent(model, num_envs=1, argmax=args.argmax)
    out = Path(args.gif if args.gif.endswith(".gif") else args.gif + ".gif")

    frames, returns = [], []
    for episode in range(args.episodes):
        obs, _ = env.reset()
        agent.episodes_ended([True])  # zero memory, as at every episode start in training
        done, episode_return, step = False, 0.0, 0
        while not done and len(frames) < args.max_frames:
            frame = env.render()
            action = agent.act([obs])
            active = agent.active_units[0].tolist() if agent.active_units is not None else None
            frames.append(add_strip(frame, f"ep {episode + 1} step {step}", active))
            obs, reward, terminated, truncated, _ = env.step(action[0])
            done, episode_return, step = terminated or truncated, episode_return + reward, step + 1
        if not done:
            print(f"stopped at --max-frames {args.max_frames}, in episode {episode + 1}")
            break
        returns.append(episode_return)
    env.close()

    out.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(out, np.stack(frames), extension=".gif", duration=round(1000 * args.pause), loop=0)
    print(f"wrote {out}: {len(frames)} frames, episode returns {[round(r, 3) for r in returns]}")
    return {"gif": out, "frames": len(frames), "returns": returns}


@cli_main
def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
