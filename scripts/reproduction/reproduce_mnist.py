"""Reproduce the sequential-MNIST table (paper table 1): train at 14x14, test at 16x16, 19x19
and 24x24. Paper rows: RIM (6,6), (6,5), (6,4), LSTM-300 and LSTM-600; rows run only when
--rows names them: the RIM the authors suggest for this task (5 units of 102 = 510, k=3) and
RIM (6,4) as the authors' released code computes it (--variant authors).

Every run goes through experiments/mnist/main.py; finished runs (results.json) are skipped
and interrupted ones resumed (--loadsaved), so the script can be killed and restarted; a run
finished at fewer --epochs is continued to the new budget. Runs are counted into the row
their config.json describes (never by folder name). Writes:

* results/<name>.md and .csv: the test accuracy of two model selections, each mean ± std
  over seeds with the standard error that the number of test digits alone gives: ours (the
  checkpoint with the best 14x14 validation accuracy, for every size) and the authors' rule
  (for each test size, the epoch with the best validation accuracy at that size: optimistic);
* results/<name>.png: the test accuracy after every epoch at each size (on main.py's
  --epoch-eval-examples digits), mean and seed range per row, the published values marked;
* results/<name>_activations.png: the first RIM run's active units on 24x24 test digits.

    python scripts/reproduction/reproduce_mnist.py --seeds 3 --epochs 5 \
        --rows "RIM (6,4)" LSTM-600 "RIM (5,3) x102"
    python scripts/reproduction/reproduce_mnist.py --seeds 3 --cuda          # the full protocol, on a GPU
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

from reproduce_common import (
    RESULTS,
    Job,
    add_cuda_options,
    add_executor_options,
    comm_update,
    command_line,
    counts_at_budget,
    cuda_arguments,
    default_jobs,
    diverged,
    group_runs,
    hardware,
    legend,
    model_spec,
    run_jobs,
    run_name,
    submit_jobs,
    threads_per_job,
    write_tables,
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
    # suggested by the authors for this task (anirudh9119/RIMs#2): 510 units in 5 RIMs, k=3
    "RIM (5,3) x102": (["--model", "RIM", "--num_units", "5", "--k", "3", "--hidden_size", "102"], None),
    "RIM (6,4) authors": (["--model", "RIM", "--num_units", "6", "--k", "4", "--variant", "authors"], None),
}
EXTRA_ROWS = ("RIM (5,3) x102", "RIM (6,4) authors")  # run only when --rows names them
# The reference implementation's README (dido1998/Recurrent-Independent-Mechanisms, one run
# each, h = 600): accuracy % at 16/19/24, a second published group; not our runs.
REFERENCE = {"RIM (6,6)": (80.31, 56.19, 37.45), "RIM (6,5)": (88.67, 59.32, 28.85),
             "RIM (6,4)": (87.89, 69.75, 46.23), "LSTM-600": (80.43, 39.74, 20.48)}


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """The script's options, and the arguments it passes through to main.py unchanged."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per row")
    p.add_argument("--epochs", type=int, default=100, help="epochs per run (paper: 100)")
    p.add_argument("--train-limit", type=int, default=None, help="training digits per run (default: all)")
    p.add_argument("--eval-limit", type=int, default=None,
                   help="validation and test digits per run (default: all)")
    paper_rows = [row for row in ROWS if row not in EXTRA_ROWS]
    p.add_argument("--rows", nargs="+", default=paper_rows, choices=list(ROWS), metavar="ROW",
                   help=f"table rows to run, of {', '.join(ROWS)} (default: {', '.join(paper_rows)})")
    add_cuda_options(p)
    add_executor_options(p)
    p.add_argument("--no-run", action="store_true",
                   help="launch nothing; only write the table and plots from the runs that finished")
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
            done = run_dir / "results.json"
            if done.exists() and not counts_at_budget(done, epochs_trained(json.loads(done.read_text())),
                                                      args.epochs, "--epochs", args.no_run):
                if args.no_run:
                    continue
            if (run_dir / "last.pt").exists():
                cmd.append("--loadsaved")
            jobs.append(Job(f"{row} seed {seed}", cmd, done, run_dir / "stdout.log", row=row))
    return jobs, reduced


def epochs_trained(results: dict) -> int:
    """A finished run's epochs (results.json made before "epochs" was recorded: its history)."""
    return results.get("epochs") or len(results.get("history", []))


def standard_error(accuracy: float, digits: int) -> float:
    """The binomial standard error (%) of an accuracy measured on ``digits`` test digits."""
    p = accuracy / 100
    return 100 * math.sqrt(p * (1 - p) / digits)


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def training_time(runs: dict[str, list[dict]], threads: int) -> str:
    """Each row's training time per epoch of one run (evaluation not included), from each
    epoch's record: a run's own record, so it holds however many sessions it took. Epochs
    recorded at another thread count than ``threads`` (the command's share of the machine)
    are averaged apart and labelled."""
    per_row, missing, total = [], 0, 0
    for row, rs in runs.items():
        epochs = [h for r in rs for h in r.get("history", [])]
        timed = [h for h in epochs if "train_seconds" in h]
        missing, total = missing + len(epochs) - len(timed), total + len(epochs)
        by_threads: dict[int, list[float]] = {}
        for h in timed:  # an epoch recorded before main.py noted its threads: taken as the command's
            by_threads.setdefault(h.get("threads", threads), []).append(h["train_seconds"])
        times = [f"{statistics.mean(seconds) / 60:.1f} min"
                 + ("" if n == threads else f" ({plural(len(seconds), 'epoch')} at {plural(n, 'thread')})")
                 for n, seconds in sorted(by_threads.items(), key=lambda item: item[0] != threads)]
        if times:
            per_row.append(f"{row} {' / '.join(times)}")
    if not per_row:
        return "training time: not recorded (runs made before main.py recorded it)"
    untimed = (f"; {missing} of {total} epochs, run before main.py recorded it, not counted"
               if missing else "")
    return (f"training time per epoch of one run, mean over epochs: {', '.join(per_row)}"
            f"{untimed}; evaluation not included")


def cell(values: list[float], digits: int) -> str:
    """mean ± std over seeds, and in brackets the standard error from the test digits."""
    if not values:
        return "–"
    mean = statistics.mean(values)
    spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{mean:.1f}{spread} [{standard_error(mean, digits):.1f}]"


def main() -> None:
    args, extra = parse_args()
    jobs, reduced = make_jobs(args, extra)
    parallel = default_jobs(args)
    if args.executor == "slurm" and not args.no_run:
        submit_jobs(jobs, args, args.runs_dir / "slurm")
        return
    failed = [] if args.no_run else run_jobs(jobs, parallel)

    from experiments.mnist.main import parse_args as main_args  # here: it imports torch

    specs = {row: model_spec(vars(main_args([*ROWS[row][0], *extra]))) for row in args.rows}
    finished = group_runs([j.done.parent for j in jobs], specs)
    runs = {row: [json.loads((d / "results.json").read_text()) for d in dirs]
            for row, dirs in finished.items()}
    digits = sorted({r["test_examples"] for rs in runs.values() for r in rs}) or [0]
    tests = [f"{s}x{s}" for s in SIZES]
    trained = next((k for rs in runs.values() for r in rs for k in r["test_accuracy"] if k not in tests),
                   "14x14")  # the training size (main.py --size)
    sizes = [trained, *tests]
    header = ["model", "seeds", "diverged", "best epoch", *(f"ours {s}" for s in sizes),
              *(f"per-size {s}x{s}" for s in SIZES), *(f"published {s}x{s}" for s in SIZES),
              *(f"reference impl. {s}x{s}" for s in SIZES)]
    rows, csv_rows = [], []
    for row, rs in runs.items():
        stopped = diverged([j.done.parent for j in jobs if j.row == row])
        columns = {f"ours {s}": [r["test_accuracy"][s] for r in rs] for s in sizes}
        columns.update({f"per-size {s}": [r["per_size_selection"][s]["test_accuracy"]
                                          for r in rs if r.get("per_size_selection")] for s in tests})
        published = ROWS[row][1] or (None,) * len(SIZES)
        reference = REFERENCE.get(row, (None,) * len(SIZES))
        epochs = " ".join(str(r["best_epoch"]) for r in rs) or "–"
        rows.append([row, str(len(rs)), str(stopped), epochs,
                     *(cell(v, digits[-1]) + (f" (n={len(v)})" if len(v) < len(rs) else "")
                       for v in columns.values()),
                     *("–" if p is None else f"{p:.1f}" for p in published),
                     *("–" if p is None else f"{p:.2f}" for p in reference)])
        for column, values in columns.items():
            mean = statistics.mean(values) if values else None
            csv_rows.append([row, column, "" if mean is None else f"{mean:.4f}",
                             f"{statistics.stdev(values):.4f}" if len(values) > 1 else "", len(values),
                             " ".join(f"{v:.4f}" for v in values),
                             "" if mean is None else f"{standard_error(mean, digits[-1]):.4f}"])
        for group, values in (("published", published), ("reference impl.", reference)):
            csv_rows += [[row, f"{group} {s}x{s}", p, "", "", "", ""] for s, p in zip(SIZES, values)
                         if p is not None]
    protocol = ("full protocol (paper: 100 epochs, all 55k/5k/10k digits)" if not reduced else
                "REDUCED protocol: " + ", ".join(reduced))
    preamble = (f"# Sequential MNIST: train {trained}, test {' / '.join(tests)} (accuracy %)\n\n"
                f"{protocol}. Each cell: mean ± std over seeds [the standard error that "
                f"{'/'.join(map(str, digits))} test digits alone give an accuracy near that mean]. "
                f"**ours**: the checkpoint with the best {trained} validation accuracy, tested at every "
                f"size (best epoch per seed). **per-size**: the authors' code's selection, for each "
                f"test size the epoch with the best validation accuracy at that size (validation "
                f"digits rescaled; main.py's --epoch-eval-examples of them), tested on the whole test "
                f"set: it selects on the test size, so it is optimistic. Published: Goyal et al. 2019, "
                f"table 1; reference impl.: the README of the reference implementation "
                f"(dido1998/Recurrent-Independent-Mechanisms, one run each); not our runs. "
                f"RIM rows: `{comm_update(extra)}` communication update. "
                f"diverged: runs stopped by a NaN or infinite loss (not in the means).\n\n"
                f"Command: `{command_line()}`  \n"
                f"Hardware: {hardware()}{', CUDA' if args.cuda else ''}; "
                f"{training_time(runs, threads_per_job(parallel))}, {parallel} at a time")
    write_tables(RESULTS / args.name, preamble, [("Test accuracy", header, rows)],
                 ["model", "column", "mean", "std", "n", "values", "standard_error"], csv_rows)
    plot_curves(runs, sizes, RESULTS / f"{args.name}.png", protocol)
    rims = [d for row, dirs in finished.items() for d in dirs if specs[row]["model"] == "RIM"]
    if rims:  # which units were active while reading 24x24 digits, never seen in training
        out = RESULTS / f"{args.name}_activations.png"
        subprocess.run([sys.executable, str(MAIN.with_name("plot_activations.py")), "--log_dir", str(rims[0]),
                        "--size", "24", "--num", "4", "--out", str(out), *data_dir(extra)], check=True)
    if failed:
        raise SystemExit(f"failed runs: {', '.join(failed)} (see their stdout.log)")


def data_dir(extra: list[str]) -> list[str]:
    """The --data_dir passed through to main.py, for plot_activations.py."""
    for i, arg in enumerate(extra):
        if arg in ("--data_dir", "--data-dir") and i + 1 < len(extra):
            return ["--data_dir", extra[i + 1]]
        if arg.startswith(("--data_dir=", "--data-dir=")):
            return ["--data_dir", arg.split("=", 1)[1]]
    return []


def plot_curves(runs: dict[str, list[dict]], sizes: list[str], path: Path, protocol: str) -> None:
    """Test accuracy after every epoch at each size (``sizes``: the training size, then the
    test sizes): per row the mean over seeds and the seed range; the published accuracy as
    a dotted line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(sizes), figsize=(3.4 * len(sizes), 3.2), sharey=True)
    for i, (row, rs) in enumerate(runs.items()):
        histories = [r["history"] for r in rs if r.get("history")]
        if not histories:
            continue
        epochs = range(1, min(len(h) for h in histories) + 1)
        for ax, s in zip(axes, sizes):
            values = [[h[e - 1]["test"][s] for h in histories] for e in epochs]
            ax.plot(epochs, [statistics.mean(v) for v in values], color=f"C{i}", label=row)
            ax.fill_between(epochs, [min(v) for v in values], [max(v) for v in values], color=f"C{i}",
                            alpha=0.2)
            published = ROWS[row][1]
            if published is not None and s != sizes[0]:
                ax.axhline(published[sizes.index(s) - 1], color=f"C{i}", ls=":", lw=1,
                           label=f"{row} (published)" if s == sizes[1] else None)
    for ax, s in zip(axes, sizes):
        ax.set_title(f"{s}{' (trained)' if s == sizes[0] else ''}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("test accuracy % (per-epoch subset)")
    legend(axes[1], fontsize=6)
    fig.suptitle(protocol, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
