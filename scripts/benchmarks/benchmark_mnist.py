"""Sequential-MNIST training speed and memory at the default settings (main.py's defaults).

Measures a fraction of an epoch and extrapolates, as docs/performance.md says:

* seconds per training batch (batch 64, 14x14 = 196 steps), median of ``--batches``
  batches after 2 warm-up batches, times the 860 batches of an epoch over 55,000 digits;
* seconds to evaluate one batch at 24x24 (576 steps), times the batches of the 10k test set;
* peak resident memory of the process (each model runs in a fresh process).

With ``--ddp``, also the training throughput (sequences/s) of main.py under
``torchrun --nproc_per_node=1`` and ``=2`` on CPU (gloo), on the same global batch.

    python scripts/benchmarks/benchmark_mnist.py                 # RIM and LSTM-600 on CPU
    python scripts/benchmarks/benchmark_mnist.py --ddp           # plus 1 vs 2 processes
    python scripts/benchmarks/benchmark_mnist.py --cuda --amp --compile   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from experiments.common import cpu_name, environment_info

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "experiments" / "mnist" / "main.py"


def measure(model_name: str, batches: int, device: str, amp: bool, compile_step: bool,
            comm_update: str) -> dict:
    """Runs in its own process (see main) so that the peak memory is this model's alone."""
    from experiments.mnist.main import parse_args
    from experiments.mnist.model import build_model

    config = vars(parse_args(["--model", model_name, "--comm-update", comm_update]))  # an LSTM ignores it
    torch.manual_seed(0)
    model = build_model(config).to(device)
    if compile_step and model_name == "RIM":
        model.rnn.compile_step()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    batch = config["batch_size"]

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def train_batch():
        tokens = torch.randint(0, 2, (batch, 14 * 14), device=device)
        labels = torch.randint(0, 10, (batch,), device=device)
        with torch.autocast(device, dtype=dtype, enabled=amp):
            loss = F.cross_entropy(model(tokens).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    times = []
    for i in range(batches + 2):
        sync()
        start = time.perf_counter()
        train_batch()
        sync()
        if i >= 2:
            times.append(time.perf_counter() - start)
    model.eval()
    eval_times = []
    with torch.no_grad(), torch.autocast(device, dtype=dtype, enabled=amp):
        for _ in range(3):
            tokens = torch.randint(0, 2, (batch, 24 * 24), device=device)
            sync()
            start = time.perf_counter()
            model(tokens)
            sync()
            eval_times.append(time.perf_counter() - start)
    per_batch = statistics.median(times)
    epoch_batches = -(-55_000 // batch)
    return {
        "model": model_name, "device": device, "amp": amp, "compile": compile_step,
        "batch_size": batch, "seconds_per_batch": per_batch, "epoch_batches": epoch_batches,
        "epoch_seconds_extrapolated": per_batch * epoch_batches,
        "sequences_per_second": batch / per_batch,
        "eval_24x24_seconds_per_batch": statistics.median(eval_times),
        "eval_24x24_test_set_seconds_extrapolated": statistics.median(eval_times) * -(-10_000 // batch),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
    }


def ddp_throughput(nproc: int, examples: int, comm_update: str) -> float:
    """Sequences/s of main.py's training loop under torchrun with ``nproc`` CPU processes."""
    with tempfile.TemporaryDirectory() as log_dir:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               str(MAIN), "--epochs", "1", "--train_examples", str(examples), "--eval_examples", "64",
               "--test_sizes", "16", "--comm-update", comm_update, "--log_dir", log_dir]
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, os.cpu_count() // nproc))}
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    match = re.search(r"([\d.]+) seq/s", out.stdout + out.stderr)
    return float(match.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, default=5, help="timed training batches per model")
    p.add_argument("--models", nargs="+", default=["RIM", "LSTM"])
    p.add_argument("--cuda", action="store_true")
    p.add_argument("--amp", action="store_true", help="also measure with bf16 autocast (CUDA)")
    p.add_argument("--compile", action="store_true", help="also measure the compiled RIM step")
    p.add_argument("--ddp", action="store_true", help="also measure torchrun with 1 and 2 CPU processes")
    p.add_argument("--ddp-examples", type=int, default=1280, help="training digits per torchrun run")
    p.add_argument("--comm-update", choices=("gated", "residual"), default="gated",
                   help="the RIM's communication update (default: gated, main.py's default)")
    p.add_argument("--out", type=Path, default=Path("runs/benchmark_mnist.json"),
                   help="(results/ holds the committed ones)")
    p.add_argument("--single", nargs=3, metavar=("MODEL", "AMP", "COMPILE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    device = "cuda" if args.cuda else "cpu"
    if args.single:  # child process: one measurement, printed as JSON
        model, amp, compile_step = args.single
        print(json.dumps(measure(model, args.batches, device, amp == "1", compile_step == "1",
                                 args.comm_update)))
        return

    variants = [(m, "0", "0") for m in args.models]
    if args.amp:
        variants += [(m, "1", "0") for m in args.models]
    if args.compile:
        variants += [("RIM", "0", "1")]
    rows = []
    for model, amp, compile_step in variants:
        out = subprocess.run([sys.executable, __file__, "--batches", str(args.batches), "--comm-update",
                              args.comm_update, *(["--cuda"] if args.cuda else []),
                              "--single", model, amp, compile_step],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores ({cpu_name()}), device {device}; "
          f"median of {args.batches} batches of 64 at 14x14")
    print(f"{'model':5} {'amp':5} {'compile':7} {'s/batch':>8} {'seq/s':>7} {'s/epoch (extrap.)':>18} "
          f"{'24x24 test s (extrap.)':>23} {'peak RSS MiB':>13}")
    for r in rows:
        print(f"{r['model']:5} {str(r['amp']):5} {str(r['compile']):7} {r['seconds_per_batch']:8.3f} "
              f"{r['sequences_per_second']:7.1f} {r['epoch_seconds_extrapolated']:18.0f} "
              f"{r['eval_24x24_test_set_seconds_extrapolated']:23.0f} {r['peak_rss_mib']:13.0f}")
    result = {"torch": torch.__version__, "cpu_cores": os.cpu_count(), "cpu": cpu_name(), "rows": rows,
              "comm_update": args.comm_update, "environment": environment_info()}
    if args.ddp:
        result["ddp_cpu_sequences_per_second"] = {n: ddp_throughput(n, args.ddp_examples, args.comm_update)
                                                  for n in (1, 2)}
        print("torchrun on CPU (gloo), RIM defaults, global batch 64: "
              + ", ".join(f"{n} process(es) {v:.1f} seq/s"
                          for n, v in result["ddp_cpu_sequences_per_second"].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
