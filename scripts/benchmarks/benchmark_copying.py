"""Training speed of every model of the copying / adding tables, on one machine, in one process.

The reproduction tables' ``s / update`` column is each run's own clock: runs of different
tables may have run on different machines, and two runs at a time share the memory
bandwidth. This script times the same update for every row of
``scripts/reproduction/reproduce_copying.py`` (built by ``experiments/copying/main.py``'s
own options and model): a fresh batch at ``--train-len``, forward, the task's loss,
backward, gradient clipping and the Adam step, which is what a run's ``train_seconds``
counts. The rows are timed in turn, round after round, so that a load that comes and goes
on the machine affects all of them; each figure is the median of ``--repeats`` rounds
after one warm-up round. Prints each row's seconds per update and its ratio to LSTM-600,
and writes them to ``--out``.

    python scripts/benchmarks/benchmark_copying.py                     # 1 thread, as the tables' runs
    python scripts/benchmarks/benchmark_copying.py --threads 2 --task adding
    python scripts/benchmarks/benchmark_copying.py --out results/benchmark_copying.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from experiments.common import environment_info
from experiments.copying.main import parse_args as main_args
from experiments.copying.model import TaskModel
from experiments.copying.tasks import TASKS, TRAIN_STREAM, stream
from experiments.training import clipped_step

# the table rows, as the reproduction script runs them (scripts/ is not a package)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reproduction"))
from reproduce_copying import ABLATIONS, ROWS  # noqa: E402


def update_fn(row: str, task: str, train_len: int, batch_size: int) -> tuple[Callable[[], None], TaskModel]:
    """One training update of ``row``'s model, as main.py runs it, on a fresh batch each
    call; and the model."""
    args = main_args(["--task", task, *ROWS[row], "--train-len", str(train_len),
                      "--batch-size", str(batch_size)])
    torch.manual_seed(0)
    model = TaskModel(vars(args)).train()
    return training_update(model, vars(args)), model


def training_update(model: TaskModel, config: dict) -> Callable[[], None]:
    """main.py's training update of ``model`` under a run's ``config`` (task, lengths, batch
    size, lr, clipping), on seed 0's next training batch at each call."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    spec, count = TASKS[config["task"]], [0]

    def update() -> None:
        batch = stream(0, TRAIN_STREAM, count[0])  # seed 0's training batches, as main.py draws them
        inputs, targets = spec.batch(config["batch_size"], config["train_len"], batch)
        count[0] += 1
        loss = spec.loss(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # main.py's own clipped step (no run directory: a non-finite norm only raises)
        clipped_step(model.parameters(), optimizer, None, config["clip_grad"], count[0], ".", lambda: "none",
                     record=False)

    return update


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="copying", choices=sorted(TASKS))
    p.add_argument("--rows", nargs="+", default=[row for row in ROWS if row not in ABLATIONS],
                   choices=list(ROWS), metavar="ROW",
                   help=f"of {', '.join(ROWS)} (default: all but the ablations of the authors' preset)")
    p.add_argument("--train-len", type=int, default=50, help="T at training (main.py's default)")
    p.add_argument("--batch-size", type=int, default=64, help="(main.py's default)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the tables' runs: 1)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", type=Path, default=Path("runs/benchmark_copying.json"))
    args = p.parse_args()
    if args.threads < 1 or args.repeats < 1:
        p.error("--threads and --repeats must be >= 1")
    torch.set_num_threads(args.threads)

    updates, parameters = {}, {}
    for row in args.rows:
        updates[row], model = update_fn(row, args.task, args.train_len, args.batch_size)
        parameters[row] = sum(p.numel() for p in model.parameters())
    times: dict[str, list[float]] = {row: [] for row in args.rows}
    for i in range(args.repeats + 1):
        for row, update in updates.items():
            start = time.perf_counter()
            update()
            if i:  # the first round warms up
                times[row].append(time.perf_counter() - start)

    seconds = {row: statistics.median(t) for row, t in times.items()}
    reference = seconds.get("LSTM-600")
    env = environment_info()
    print(f"{args.task}, T={args.train_len}, batch {args.batch_size}; torch {env['torch']}; {env['cpu']}; "
          f"{args.threads} thread(s); median of {args.repeats}")
    rows = []
    for row, s in seconds.items():
        ratio = s / reference if reference else None
        rows.append({"row": row, "parameters": parameters[row], "seconds_per_update": s,
                     "ratio_to_lstm600": ratio})
        shown = f"{ratio:5.2f}x LSTM-600" if ratio else ""
        print(f"{row:10} {parameters[row]:>10,} parameters  {s:6.3f} s / update  {shown}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"environment": env, "task": args.task, "train_len": args.train_len, "batch_size": args.batch_size,
            "threads": args.threads, "repeats": args.repeats}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
