"""Evaluate a trained agent on any MiniGrid environment, typically a larger, unseen one.

    python experiments/minigrid/evaluate.py --env MiniGrid-Empty-16x16-v0 --model rim5x5 --json eval.json

The agent is rebuilt from <storage>/<model>/status.pt alone (no architecture flags). Runs
--episodes episodes in parallel environments and prints the mean, std, min and max of
the return and of the episode length, and the success rate (episodes that reached the
goal, i.e. ended by termination with a positive reward).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from experiments.common import UserError, cli_main, write_json
from experiments.minigrid.agent import Agent, check_env_fits, load_model
from experiments.minigrid.envs import make_envs, torch_ac, worker_processes
from experiments.minigrid.storage import add_storage_argument, existing_model_dir, synthesize


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True, help="MiniGrid environment id to evaluate on (REQUIRED)")
    p.add_argument("--model", required=True, help="name of the trained model's directory (REQUIRED)")
    add_storage_argument(p)
    p.add_argument("--episodes", type=int, default=100, help="episodes to evaluate (default: 100)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the action sampling and environment i with SEED + 10000*i (default: 0)")
    p.add_argument("--procs", type=int, default=16,
                   help="parallel environments, at most --episodes (default: 16)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default: 1; the environment workers need the other cores)")
    p.add_argument("--argmax", action="store_true",
                   help="take the most probable action instead of sampling one")
    p.add_argument("--use_rim", "--use-rim", action="store_true",
                   help="optional; the architecture is read from status.pt, this only checks it is a RIM")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the statistics to FILE as JSON")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Evaluate and return the statistics (the dict written by ``--json``)."""
    if min(args.episodes, args.procs, args.threads) < 1:
        raise UserError("--episodes, --procs and --threads must be >= 1")
    model, status = load_model(existing_model_dir(args.model, args.storage), args.use_rim)
    procs = min(args.procs, args.episodes)
    envs = make_envs(args.env, procs, args.seed)
    check_env_fits(model.config, envs[0], args.env)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # the sampling of actions
    agent = Agent(model, procs, argmax=args.argmax)

    # Each environment runs a fixed share of the episodes: stopping at the first N
    # episodes to finish, whichever environment they come from, would favour short ones.
    quota = [args.episodes // procs + (i < args.episodes % procs) for i in range(procs)]
    finished = [0] * procs
    returns, lengths, successes = [], [], []
    episode_return = np.zeros(procs)
    episode_length = np.zeros(procs, dtype=np.int64)
    start = time.perf_counter()
    with worker_processes():
        penv = torch_ac.utils.ParallelEnv(envs)
        obss = penv.reset()
        while finished != quota:
            obss, rewards, terminated, truncated, _ = penv.step(agent.act(obss))
            dones = [term or trunc for term, trunc in zip(terminated, truncated)]
            agent.episodes_ended(dones)
            episode_return += rewards
            episode_length += 1
            for i in np.flatnonzero(dones):
                if finished[i] < quota[i]:
                    returns.append(episode_return[i])
                    lengths.append(episode_length[i])
                    successes.append(bool(terminated[i]) and rewards[i] > 0)
                    finished[i] += 1
                episode_return[i], episode_length[i] = 0.0, 0
    elapsed = time.perf_counter() - start

    stats = {"env": args.env, "model": args.model, "trained_on": status.get("env"),
             "trained_frames": status["num_frames"], "use_rim": model.config.use_rim,
             "episodes": len(returns), "argmax": args.argmax, "seed": args.seed,
             "success_rate": float(np.mean(successes)), "seconds": elapsed}
    stats.update({f"return_{key}": value for key, value in synthesize(returns).items()})
    stats.update({f"length_{key}": value for key, value in synthesize(lengths).items()})
    print(f"{args.model} on {args.env}: {len(returns)} episodes "
          f"({'argmax' if args.argmax else 'sampled'} actions, {elapsed:.1f}s)\n"
          f"  return  {stats['return_mean']:.3f} +- {stats['return_std']:.3f} "
          f"[{stats['return_min']:.3f}, {stats['return_max']:.3f}]\n"
          f"  length  {stats['length_mean']:.1f} +- {stats['length_std']:.1f} "
          f"[{stats['length_min']:.0f}, {stats['length_max']:.0f}]\n"
          f"  success {100 * stats['success_rate']:.1f}%")
    if args.json:
        write_json(args.json, stats)
    return stats


@cli_main
def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
