"""The MiniGrid demo: train a RIM agent on a small grid, test it on a large unseen one.

    python experiments/minigrid/demo.py

1. trains a PPO agent with RIM memory (4 units, 3 active) on MiniGrid-Empty-5x5-v0 for
   80k frames (train.py's defaults otherwise: 16 environments, recurrence 4, lr 0.001);
2. evaluates it on MiniGrid-Empty-5x5-v0 and on the unseen MiniGrid-Empty-16x16-v0,
   100 episodes each with sampled actions and with the most probable (argmax) ones, and
   writes eval_<env>[_argmax].json next to the model;
3. renders two argmax episodes on MiniGrid-Empty-16x16-v0 to demo_16x16.gif, with the
   strip of active units under each frame;
4. prints where the logs are and how to open TensorBoard.

Needs no download. Running it again reuses the trained model (training resumes only if
--frames grew); --storage elsewhere starts afresh.
"""

from __future__ import annotations

import argparse
import time

from experiments.common import cli_main
from experiments.minigrid import evaluate, train, visualize
from experiments.minigrid.storage import add_storage_argument, model_dir

TRAIN_ENV = "MiniGrid-Empty-5x5-v0"
TEST_ENV = "MiniGrid-Empty-16x16-v0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=80_000, help="training frames (default: 80000)")
    p.add_argument("--procs", type=int, default=16, help="parallel environments (default: 16)")
    p.add_argument("--episodes", type=int, default=100, help="evaluation episodes per environment "
                                                                "(default: 100)")
    p.add_argument("--seed", type=int, default=1, help="training seed (default: 1)")
    p.add_argument("--model", default="demo_rim_empty5x5", help="model directory name (default: %(default)s)")
    add_storage_argument(p)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Run the demo; return the evaluations and the gif's path."""
    start = time.perf_counter()
    common = ["--model", args.model] + (["--storage", args.storage] if args.storage else [])
    path = model_dir(args.model, args.storage)

    print(f"== 1/3 training PPO + RIM on {TRAIN_ENV} for {args.frames} frames")
    train.run(train.parse_args(["--algo", "ppo", "--env", TRAIN_ENV, "--use_rim", "--frames",
                                str(args.frames), "--procs", str(args.procs), "--seed", str(args.seed),
                                *common]))
    trained = time.perf_counter()

    print(f"\n== 2/3 evaluating on {TRAIN_ENV} (seen) and {TEST_ENV} (unseen)")
    results = {}
    for env in (TRAIN_ENV, TEST_ENV):
        for argmax in (False, True):
            name = f"{env}{'_argmax' if argmax else ''}"
            results[name] = evaluate.run(evaluate.parse_args(
                ["--env", env, "--episodes", str(args.episodes), "--procs", str(args.procs),
                 "--json", str(path / f"eval_{name}.json"), *common] + (["--argmax"] if argmax else [])))

    print(f"\n== 3/3 rendering {TEST_ENV}")
    gif = visualize.run(visualize.parse_args(
        ["--env", TEST_ENV, "--gif", str(path / "demo_16x16.gif"), "--episodes", "2", "--argmax",
         "--max-frames", "200", "--tile-size", "16", *common]))["gif"]

    print(f"\n{'environment':<26}{'actions':>9}{'return':>16}{'length':>9}{'success':>9}")
    for stats in results.values():
        print(f"{stats['env']:<26}{'argmax' if stats['argmax'] else 'sampled':>9}"
              f"{stats['return_mean']:>9.3f} +- {stats['return_std']:.3f}"
              f"{stats['length_mean']:>9.1f}{100 * stats['success_rate']:>8.0f}%")
    print(f"\ntraining took {trained - start:.0f}s, the whole demo {time.perf_counter() - start:.0f}s")
    print(f"model, logs and results: {path}/ (status.pt, log.csv, log.txt, eval_*.json)")
    print(f"animation with the active RIM units: {gif}")
    print(f"TensorBoard: tensorboard --logdir {path}   (pip install tensorboard if needed)")
    return {"evaluations": results, "gif": str(gif), "model_dir": str(path)}


@cli_main
def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
