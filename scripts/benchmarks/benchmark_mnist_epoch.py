"""What a sequential-MNIST epoch costs on this CPU, one thread per run (two runs side by side
on 2 cores), with the settings main.py had before and has now.

Measures, each model in a fresh process with one thread:

* training sequences/s (batch 64 at 14x14), eager, and compiled (``compile_step()``) for the RIM;
* evaluation sequences/s at every size (14, 16, 19, 24), batch 64 under ``no_grad`` (before)
  and batch ``--eval-batch`` under ``inference_mode`` (after), eager and compiled;

and, with ``--placement``, where the two runs' threads should go: two RIM training
processes at once, each pinned to its own core or both left to the scheduler;

and from them the wall time of one epoch with its evaluation:

* before: train 55,000 digits; evaluate all 5,000 validation digits at 14x14 and all
  10,000 test digits at 14, 16, 19 and 24;
* after: train; all 5,000 validation digits at 14x14 (model selection), and the first
  2,000 validation and 2,000 test digits at each test size (main.py's
  ``--epoch-eval-examples``); the selected checkpoints alone get the full test set, once
  per run.

    python scripts/benchmarks/benchmark_mnist_epoch.py --out results/benchmark_mnist_epoch.json
    python scripts/benchmarks/benchmark_mnist_epoch.py --placement --repeats 10 \
        --out results/benchmark_mnist_placement.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

SIZES = (14, 16, 19, 24)
TRAIN, VAL, TEST, SUBSET = 55_000, 5_000, 10_000, 2_000


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(model_name: str, compiled: bool, eval_batch: int, repeats: int) -> dict:
    """One model's speeds (sequences/s), in this process, one thread."""
    from experiments.common import flush_denormals
    from experiments.mnist.main import parse_args
    from experiments.mnist.model import build_model

    torch.set_num_threads(1)
    flush_denormals()  # as main.py does
    config = vars(parse_args(["--model", model_name]))
    torch.manual_seed(0)
    model = build_model(config)
    if compiled:
        model.rnn.compile_step()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)

    def train_batch() -> None:
        tokens = torch.randint(0, 2, (64, 14 * 14), generator=generator)
        loss = F.cross_entropy(model(tokens), torch.randint(0, 10, (64,), generator=generator))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    row = {"model": model_name, "compiled": compiled, "train": 64 / timed(train_batch, repeats)}
    model.eval()
    for name, batch, context in (("eval_before", 64, torch.no_grad), ("eval_after", eval_batch,
                                                                     torch.inference_mode)):
        row[name] = {}
        for size in SIZES:
            tokens = torch.randint(0, 2, (batch, size * size), generator=generator)
            with context():
                row[name][size] = batch / timed(lambda t=tokens: model(t), max(1, repeats // 3))
    return row


def train_speed(batches: int, core: int | None) -> float:
    """Training sequences/s of the eager RIM in this process, one thread, optionally pinned."""
    from experiments.common import flush_denormals
    from experiments.mnist.main import parse_args
    from experiments.mnist.model import build_model

    if core is not None:
        os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    flush_denormals()
    torch.manual_seed(0)
    model = build_model(vars(parse_args(["--no-compile"])))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    tokens, labels = torch.randint(0, 2, (64, 196)), torch.randint(0, 10, (64,))

    def train_batch() -> None:
        loss = F.cross_entropy(model(tokens), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return 64 / timed(train_batch, batches)


def placement(batches: int) -> dict:
    """Two training processes at once, pinned to cores 0 and 1 or not: each one's sequences/s."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = {}
    for name, cores in (("unpinned", ("none", "none")), ("pinned", ("0", "1"))):
        command = [sys.executable, __file__, "--repeats", str(batches), "--pair-child"]
        children = [subprocess.Popen([*command, core], stdout=subprocess.PIPE, text=True, env=env)
                    for core in cores]
        result[name] = [float(child.communicate()[0].strip().splitlines()[-1]) for child in children]
    return result


def epoch_seconds(train: dict, eval_speed: dict, before: bool) -> float:
    """One epoch's wall time from the speeds (sequences/s)."""
    seconds = TRAIN / train + VAL / eval_speed[14]
    if before:
        return seconds + sum(TEST / eval_speed[s] for s in SIZES)
    return seconds + SUBSET / eval_speed[14] + sum(2 * SUBSET / eval_speed[s] for s in SIZES[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="timed training batches per setting")
    p.add_argument("--eval-batch", type=int, default=256, help="evaluation batch of the 'after' setting")
    p.add_argument("--out", type=Path, default=Path("runs/benchmark_mnist_epoch.json"))
    p.add_argument("--placement", action="store_true",
                   help="only time two RIM training processes at once, pinned to a core each or not")
    p.add_argument("--single", nargs=2, metavar=("MODEL", "COMPILED"), help=argparse.SUPPRESS)
    p.add_argument("--pair-child", metavar="CORE", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.pair_child:  # child process of --placement: its training speed
        print(train_speed(args.repeats, None if args.pair_child == "none" else int(args.pair_child)))
        return
    if args.placement:
        from experiments.common import environment_info

        result = placement(args.repeats)
        for name, speeds in result.items():
            print(f"{name:9} two RIM runs at once, one thread each: "
                  + " / ".join(f"{v:.1f}" for v in speeds) + " sequences/s")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {"environment": environment_info(), "threads": 1, "batches": args.repeats,
                  "sequences_per_second": result}
        args.out.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.out}")
        return
    if args.single:  # child process: one measurement, printed as JSON
        print(json.dumps(measure(args.single[0], args.single[1] == "1", args.eval_batch, args.repeats)))
        return

    from experiments.common import environment_info

    rows = []
    for model, compiled in (("RIM", "0"), ("RIM", "1"), ("LSTM", "0")):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, __file__, "--repeats", str(args.repeats), "--eval-batch",
                              str(args.eval_batch), "--single", model, compiled],
                             capture_output=True, text=True, check=True, env=env)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        for name in ("eval_before", "eval_after"):
            row[name] = {int(size): speed for size, speed in row[name].items()}
        row["epoch_seconds_before"] = epoch_seconds(row["train"], row["eval_before"], before=True)
        row["epoch_seconds_after"] = epoch_seconds(row["train"], row["eval_after"], before=False)
        rows.append(row)
    print(f"sequences/s, one thread; eval before: batch 64, no_grad; after: batch {args.eval_batch}, "
          "inference_mode")
    for r in rows:
        label = f"{r['model']}{' compiled' if r['compiled'] else ''}"
        print(f"{label:13} train {r['train']:6.1f}  eval before "
              + " ".join(f"{s}:{r['eval_before'][s]:6.1f}" for s in SIZES) + "  after "
              + " ".join(f"{s}:{r['eval_after'][s]:6.1f}" for s in SIZES)
              + f"  epoch {r['epoch_seconds_before'] / 60:5.1f} -> {r['epoch_seconds_after'] / 60:5.1f} min")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": environment_info(), "threads": 1,
                                    "eval_batch_after": args.eval_batch, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
