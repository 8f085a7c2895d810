"""What subnormal floats cost a trained model's training update on the CPU.

Times one copying / adding training update (main.py's model, loss and clipped Adam step,
as ``benchmark_copying.py`` runs it) of a run's saved model, with subnormal floats
computed as usual and flushed to zero (``torch.set_flush_denormal``), alternating, and of
a freshly initialised model for reference. The trainers flush them
(``experiments.common.flush_denormals``).

    python scripts/benchmarks/benchmark_denormals.py "runs/reproduce_copying/RIM(6_4)_seed0" \\
        --out results/benchmark_denormals.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from benchmark_copying import training_update

from experiments.common import cli_main, environment_info
from experiments.copying.model import TaskModel, load_run


def seconds(update, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        update()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@cli_main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a copying / adding run directory (its last.pt is timed)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of each setting")
    p.add_argument("--repeats", type=int, default=3, help="updates per round (median)")
    p.add_argument("--out", type=Path, default=Path("runs/benchmark_denormals.json"))
    args = p.parse_args()
    torch.set_num_threads(1)  # as the tables' runs
    trained, config, checkpoint = load_run(args.run, "last.pt")
    torch.set_flush_denormal(False)
    torch.manual_seed(0)
    fresh = seconds(training_update(TaskModel(config), config), args.repeats)
    update = training_update(trained, config)
    timed: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for flush in (False, True):
            torch.set_flush_denormal(flush)
            timed[flush].append(seconds(update, args.repeats))
    torch.set_flush_denormal(False)
    result = {"run": str(args.run), "model": config["model"],
              "trained_updates": checkpoint["progress"]["step"],
              "fresh_model_seconds": fresh,
              "trained_seconds": statistics.median(timed[False]),
              "trained_flushed_seconds": statistics.median(timed[True])}
    result["slowdown_without_flush"] = result["trained_seconds"] / result["trained_flushed_seconds"]
    print(f"{config['model']} at update {result['trained_updates']}: "
          f"{result['trained_seconds']:.2f} s / update, "
          f"{result['trained_flushed_seconds']:.2f} s with subnormals flushed "
          f"({result['slowdown_without_flush']:.2f}x); fresh model {fresh:.2f} s (1 thread)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": environment_info(), **result}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
