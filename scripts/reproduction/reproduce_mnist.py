"""Reproduce the sequential-MNIST table (paper table 1): accuracy at 16x16 / 19x19 / 24x24
after training at 14x14, for RIM (6,6), (6,5), (6,4), LSTM-300 and LSTM-600.

Every run goes through experiments/mnist/main.py; finished runs (results.json) are skipped
and interrupted ones resumed (--loadsaved), so the script can be killed and restarted.
Writes results/mnist.md, results/mnist.csv and results/mnist.png.

    python scripts/reproduction/reproduce_mnist.py --seeds 3          # full protocol (GPU: add --cuda)
    python scripts/reproduction/reproduce_mnist.py --epochs 3 --train-limit 5000 --eval-limit 2000  # reduced
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from reproduce_common import (
    RESULTS,
    Job,
    add_cuda_options,
    comm_update,
    command_line,
    cuda_arguments,
    default_jobs,
    diverged,
    hardware,
    run_jobs,
    run_minutes,
    run_name,
    write_table,
)

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "experiments" / "mnist" / "main.py"
SIZES = (16, 19, 24)
# name -> (main.py arguments, published accuracy % at 16/19/24, Goyal et al. 2019 table 1)
ROWS = {
    "RIM (6,6)": (["--model", "RIM", "--num_units", "6", "--k", "6"], (85.5, 56.2, 30.9)),
    "RIM (6,5)": (["--model", "RIM", "--num_units", "6", "--k", "5"], (88.3, 43.1, 22.1)),
    "RIM (6,4)": (["--model", "RIM", "--num_units", "6", "--k", "4"], (90.0, 73.4, 38.1)),
    "LSTM-300": (["--model", "LSTM", "--hidden_size", "300"], (86.8, 42.3, 25.2)),
    "LSTM-600": (["--model", "LSTM", "--hidden_size", "600"], (84.5, 52.2, 21.9)),
}


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """The script's options, and the arguments it passes through to main.py unchanged."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per row")
    p.add_argument("--epochs", type=int, default=100, help="epochs per run (paper: 100)")
    p.add_argument("--train-limit", type=int, default=None, help="training digits per run (default: all)")
    p.add_argument("--eval-limit", type=int, default=None,
                   help="validation and test digits per run (default: all)")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), metavar="ROW",
                   help=f"table rows to run (default: all of {', '.join(ROWS)})")
    add_cuda_options(p)
    p.add_argument("--no-run", action="store_true",
                   help="launch nothing; only write the table and plot from the runs that finished")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs at once (default: 1 with --cuda, else one per CPU core)")
    p.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "reproduce_mnist")
    p.add_argument("--name", default="mnist", help="results/<name>.md, .csv, .png")
    return p.parse_known_args(argv)


def make_jobs(args: argparse.Namespace, extra: list[str]) -> tuple[list[Job], list[str]]:
    """One main.py run per row and seed, and what the protocol reduces (for the table header)."""
    reduced = [f"{args.epochs} epoch{'s' if args.epochs != 1 else ''}"] if args.epochs != 100 else []
    common = ["--epochs", str(args.epochs), *extra]
    if args.train_limit:
        common += ["--train_examples", str(args.train_limit)]
        reduced.append(f"{args.train_limit} training digits")
    if args.eval_limit:
        common += ["--eval_examples", str(args.eval_limit)]
        reduced.append(f"{args.eval_limit} validation/test digits")
    if args.cuda:  # evaluation is launch-bound on a GPU too: fewer, larger batches (same result)
        common = ["--eval_batch_size", "1000", *common]
    jobs = []
    for row in args.rows:
        for seed in range(args.seeds):
            run_dir = args.runs_dir / run_name(row, seed)
            cmd = [sys.executable, str(MAIN), *ROWS[row][0], *cuda_arguments(args, row), *common,
                   "--seed", str(seed), "--log_dir", str(run_dir)]
            if (run_dir / "last.pt").exists():
                cmd.append("--loadsaved")
            jobs.append(Job(f"{row} seed {seed}", cmd, run_dir / "results.json", run_dir / "stdout.log"))
    return jobs, reduced


def main() -> None:
    args, extra = parse_args()
    jobs, reduced = make_jobs(args, extra)
    parallel = default_jobs(args)
    failed = [] if args.no_run else run_jobs(jobs, parallel)

    table, curves = [], {}
    for row in args.rows:
        runs = [json.loads(j.done.read_text()) for j in jobs if j.name.startswith(row) and j.done.exists()]
        accs = {s: [r["test_accuracy"][f"{s}x{s}"] for r in runs] for s in (14, *SIZES)}
        curves[row] = accs
        stopped = diverged([j.done.parent for j in jobs if j.name.startswith(row)])
        table.append([row, str(len(runs)), str(stopped), accs[14]]
                     + [accs[s] for s in SIZES]
                     + [f"{v:.1f}" for v in ROWS[row][1]])
    header = ["model", "seeds", "diverged", "ours 14x14", *(f"ours {s}x{s}" for s in SIZES),
              *(f"published {s}x{s}" for s in SIZES)]
    protocol = "full protocol (paper: 100 epochs, all 55k/5k/10k digits)" if not reduced else \
        "REDUCED protocol: " + ", ".join(reduced)
    preamble = (f"# Sequential MNIST: train 14x14, test 16x16 / 19x19 / 24x24 (accuracy %)\n\n"
                f"{protocol}. Ours: mean ± std over seeds of the best-validation checkpoint "
                f"(model selection on 14x14 validation only). Published: Goyal et al. 2019, "
                f"table 1 (not our runs). RIM rows: `{comm_update(extra)}` communication update; "
                f"diverged: runs stopped by a NaN or infinite loss (not in the means).\n\n"
                f"Command: `{command_line()}`  \n"
                f"Hardware: {hardware()}{', CUDA' if args.cuda else ''}; wall time of the runs: "
                f"{run_minutes(jobs):.1f} min summed, {parallel} at a time")
    write_table(args.name, header, table, preamble)
    plot(curves, RESULTS / f"{args.name}.png", protocol)
    if failed:
        raise SystemExit(f"failed runs: {', '.join(failed)} (see their stdout.log)")


def plot(curves: dict, path: Path, protocol: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    sizes = (14, *SIZES)
    for row, accs in curves.items():
        if not accs[14]:
            continue
        means = [statistics.mean(accs[s]) for s in sizes]
        stds = [statistics.stdev(accs[s]) if len(accs[s]) > 1 else 0.0 for s in sizes]
        line = ax.errorbar(sizes, means, yerr=stds, marker="o", capsize=3, label=f"{row} (ours)")
        ax.plot(SIZES, ROWS[row][1], ls=":", marker="x", color=line[0].get_color(),
                label=f"{row} (published)")
    ax.set_xticks(sizes)
    ax.set_xlabel("test image size (trained at 14)")
    ax.set_ylabel("accuracy %")
    ax.set_title(protocol, fontsize=8)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
