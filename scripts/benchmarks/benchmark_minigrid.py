"""Training speed of the MiniGrid agent with LSTM memory against RIM memory, in one run.

PPO with train.py's defaults (16 environments x 128 frames per update, recurrence 4,
4 epochs of batches of 256 frames) on MiniGrid-Empty-5x5-v0. Both agents are built
first, then timed in alternating rounds of --updates updates each, so a change in the
machine's load hits both alike. Reports the median over rounds of the frames per second
of whole updates (collection + optimisation), and of each part.

    python scripts/benchmarks/benchmark_minigrid.py                  # 16 procs, 5 rounds of 3 updates
    python scripts/benchmarks/benchmark_minigrid.py --rounds 2 --updates 1 --procs 4   # quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from experiments.common import cpu_name, environment_info, seed_everything
from experiments.minigrid import train
from experiments.minigrid.envs import make_envs, worker_processes
from experiments.minigrid.model import ACModel


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="MiniGrid-Empty-5x5-v0", help="environment (default: %(default)s)")
    p.add_argument("--procs", type=int, default=16, help="parallel environments (default: 16)")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds per memory (default: 5)")
    p.add_argument("--updates", type=int, default=3, help="PPO updates per round (default: 3)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: train.py's default)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the results to FILE")
    return p.parse_args()


def timed_update(algo) -> tuple[float, float, int]:
    start = time.perf_counter()
    exps, logs = algo.collect_experiences()
    middle = time.perf_counter()
    algo.update_parameters(exps)
    return middle - start, time.perf_counter() - middle, logs["num_frames"]


def main() -> None:
    args = parse_args()
    seed_everything(0)
    torch.set_num_threads(args.threads or train.parse_args(["--algo", "ppo", "--env", args.env]).threads)
    results = {}
    with worker_processes():
        algos = {}
        for memory in ("lstm", "rim"):
            flags = ["--algo", "ppo", "--env", args.env, "--procs", str(args.procs)]
            train_args = train.parse_args(flags + (["--use_rim"] if memory == "rim" else []))
            envs = make_envs(args.env, args.procs, seed=1)
            model = ACModel(train.resolve_config(train_args, None, envs[0]))
            algos[memory] = train.make_algo(train_args, envs, model)
            timed_update(algos[memory])  # warm-up: first-call allocations, worker start
            results[memory] = {"parameters": sum(p.numel() for p in model.parameters()),
                               "memory_size": model.memory_size, "rounds": []}
        for _ in range(args.rounds):
            for memory, algo in algos.items():
                collect = optimise = frames = 0
                for _ in range(args.updates):
                    c, o, f = timed_update(algo)
                    collect, optimise, frames = collect + c, optimise + o, frames + f
                results[memory]["rounds"].append(
                    {"collect_s": collect, "update_s": optimise, "frames": frames})

    print(f"PPO on {args.env}, {args.procs} procs, {args.rounds} rounds x {args.updates} updates "
          f"of {results['lstm']['rounds'][0]['frames'] // args.updates} frames; "
          f"{cpu_name()}, {torch.get_num_threads()} torch threads\n")
    print(f"{'memory':<8}{'params':>9}{'FPS':>9}{'collect FPS':>14}{'update FPS':>13}")
    for memory, result in results.items():
        rounds = result["rounds"]
        result["fps"] = statistics.median(r["frames"] / (r["collect_s"] + r["update_s"]) for r in rounds)
        result["collect_fps"] = statistics.median(r["frames"] / r["collect_s"] for r in rounds)
        result["update_fps"] = statistics.median(r["frames"] / r["update_s"] for r in rounds)
        print(f"{memory:<8}{result['parameters']:>9}{result['fps']:>9.0f}{result['collect_fps']:>14.0f}"
              f"{result['update_fps']:>13.0f}")
    ratio = results["rim"]["fps"] / results["lstm"]["fps"]
    print(f"\nRIM / LSTM FPS: {ratio:.2f} (goal >= 0.8)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "results": results, "rim_over_lstm": ratio,
                       "environment": environment_info()}, f, indent=2)


if __name__ == "__main__":
    main()
