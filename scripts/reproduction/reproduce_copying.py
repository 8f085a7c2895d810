"""Reproduce the copying (paper table 1) and adding (table 5) results: train at T=50, test
at longer T, for RIM (6,4), (6,3), (6,2), LSTM-300, LSTM-600 and GRU-600; and rows run
only when --rows names them: RIM (6,6), a control with every unit active at every step;
RIM (6,4) as the authors' released code computes it (--variant authors); and that preset
with one of its switches set back to rim_core's default, to attribute a difference.

Every run goes through experiments/copying/main.py; finished runs (results.json) are
skipped and interrupted ones resumed (--loadsaved), so the script can be killed and
restarted; a run finished at a smaller --updates is continued to the new budget. Runs are
counted into the row their config.json describes (never by folder name). Writes
results/<task>.md (one table per metric), results/<task>.csv (one line per model, metric
and length: mean, std, n and each seed's value), results/<task>.png (each metric against
the test length, mean and the seed range), results/<task>_curves.png (the validation
metric that selects best.pt against the update, one line per run: did the curves flatten
within the budget?) with its points in results/<task>_curves.csv, and
results/<task>_activations.png (the first RIM run's activation picture per RIM row,
copying only: <task>_activations.png for the first, then <task>_activations_<row>.png,
the row in lower case with "_" for anything else: rim_6_4_authors). --name writes them
as results/<name>.* instead; pilots and ablations go under results/ablations/ (--name
ablations/copying_pilot), and results/README.md says which of them are kept.

    python scripts/reproduction/reproduce_copying.py --seeds 3 --updates 1200 \
        --rows "RIM (6,4)" LSTM-600 LSTM-300
    python scripts/reproduction/reproduce_copying.py --task adding --seeds 3 --updates 600 \
        --rows "RIM (6,4)" LSTM-600

Arguments it does not know go to main.py unchanged (e.g. --test-lens 50 200).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import statistics
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
    mean_std,
    model_spec,
    run_jobs,
    run_name,
    submit_jobs,
    write_tables,
)

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "experiments" / "copying" / "main.py"
# name -> main.py arguments
ROWS = {
    "RIM (6,4)": ["--model", "RIM", "--num-units", "6", "--k", "4"],
    "RIM (6,3)": ["--model", "RIM", "--num-units", "6", "--k", "3"],
    "RIM (6,2)": ["--model", "RIM", "--num-units", "6", "--k", "2"],
    "RIM (6,6)": ["--model", "RIM", "--num-units", "6", "--k", "6"],
    "LSTM-300": ["--model", "LSTM", "--hidden-size", "300"],
    "LSTM-600": ["--model", "LSTM", "--hidden-size", "600"],
    "GRU-600": ["--model", "GRU", "--hidden-size", "600"],
    "RIM (6,4) authors": ["--model", "RIM", "--num-units", "6", "--k", "4", "--variant", "authors"],
}
AUTHORS = ROWS["RIM (6,4) authors"]
# the authors' preset with one difference set back to rim_core's default (docs/model.md)
ABLATIONS = {
    "RIM (6,4) authors, offer kept": ["--rim-option", "inactive_offer=kept",
                                      "--rim-option", "detach_inactive_offer=false"],
    "RIM (6,4) authors, output per unit": ["--rim-option", "shared_comm_output=false"],
    "RIM (6,4) authors, dropout on attention": ["--rim-option", "dropout_on=attention"],
    "RIM (6,4) authors, pytorch init": ["--rim-option", "init=pytorch"],
    "RIM (6,4) authors, our sizes": ["--key-size-comm", "32", "--query-size-comm", "32",
                                     "--value-size-comm", "100"],
}
ROWS.update({row: AUTHORS + switch for row, switch in ABLATIONS.items()})
# run only when --rows names them: a RIM without sparse activation, and the authors' code
CONTROLS = ("RIM (6,6)", "RIM (6,4) authors", *ABLATIONS)
# Goyal et al. 2019 (not our runs): copying, table 1, the all-positions CE at T=50 / T=200;
# adding, table 5, at T=200 (their MSE)
PUBLISHED = {
    "copying": {"RIM (6,4)": {50: 0.00, 200: 0.00}, "LSTM-300": {50: 0.00, 200: 4.32},
                "LSTM-600": {50: 0.00, 200: 3.56}},
    "adding": {"RIM (6,4)": {200: 0.0}},
}
METRICS = {
    "copying": {"ce_all": "all-positions CE (official metric, blanks included)",
                "ce_copy": "CE over the 10 copied digits (per digit)",
                "digit_accuracy": "digit accuracy %", "sequence_accuracy": "whole-sequence accuracy %"},
    "adding": {"mse": "MSE of the sum", "baseline_mse": "MSE of always predicting 1.0 (trivial baseline)"},
}
PUBLISHED_METRIC = {"copying": "ce_all", "adding": "mse"}


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    """The script's options, and the arguments it passes through to main.py unchanged."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="copying", choices=("copying", "adding"))
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per row")
    p.add_argument("--updates", type=int, default=None,
                   help="updates per run (default: main.py's, the authors' full budget)")
    paper_rows = [row for row in ROWS if row not in CONTROLS]
    p.add_argument("--rows", nargs="+", default=paper_rows, choices=list(ROWS), metavar="ROW",
                   help=f"table rows to run, of {', '.join(ROWS)} (default: all but {', '.join(CONTROLS)})")
    p.add_argument("--no-run", action="store_true",
                   help="launch nothing; only write the tables and plot from the runs that finished")
    add_cuda_options(p)
    add_executor_options(p)
    p.add_argument("--jobs", type=int, default=None,
                   help="runs at once (default: 1 with --cuda, else one per CPU core)")
    p.add_argument("--runs-dir", type=Path, default=None, help="default: runs/reproduce_<task>")
    p.add_argument("--name", default=None,
                   help="results/<name>.md, .csv, .png, ... (default: the task); a pilot or ablation "
                        "goes under results/ablations/: --name ablations/copying_pilot")
    args, extra = p.parse_known_args(argv)
    args.runs_dir = args.runs_dir or ROOT / "runs" / f"reproduce_{args.task}"
    args.name = args.name or args.task
    return args, extra


def make_jobs(args: argparse.Namespace, extra: list[str]) -> list[Job]:
    budget = ["--updates", str(args.updates)] if args.updates else []
    jobs = []
    for row in args.rows:
        for seed in range(args.seeds):
            run_dir = args.runs_dir / run_name(row, seed)
            cmd = [sys.executable, str(MAIN), "--task", args.task, *ROWS[row], *cuda_arguments(args, row),
                   *budget, *extra, "--seed", str(seed), "--log-dir", str(run_dir)]
            done = run_dir / "results.json"
            if args.updates and done.exists() and not counts_at_budget(
                    done, json.loads(done.read_text())["updates"], args.updates, "--updates", args.no_run):
                if args.no_run:
                    continue
            if (run_dir / "last.pt").exists():
                cmd.append("--loadsaved")
            jobs.append(Job(f"{row} seed {seed}", cmd, run_dir / "results.json", run_dir / "stdout.log",
                            row=row))
    return jobs


def summarise(values: list[float]) -> tuple[str, str, int]:
    """(mean, std, n) as the CSV holds them; std is empty for a single run."""
    if not values:
        return "", "", 0
    std = f"{statistics.stdev(values):.4f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.4f}", std, len(values)


def file_slug(row: str) -> str:
    """A table row as part of a file name that a Markdown link takes as it is:
    "RIM (6,4) authors, offer kept" -> "rim_6_4_authors_offer_kept"."""
    return re.sub(r"[^a-z0-9]+", "_", row.lower()).strip("_")


def main() -> None:
    args, extra = parse_args()
    jobs = make_jobs(args, extra)
    parallel = default_jobs(args)
    if args.executor == "slurm" and not args.no_run:
        submit_jobs(jobs, args, args.runs_dir / "slurm")
        return
    failed = [] if args.no_run else run_jobs(jobs, parallel)

    from experiments.copying.main import parse_args as main_args  # here: it imports torch

    specs = {row: model_spec(vars(main_args(["--task", args.task, *ROWS[row], *extra]))) for row in args.rows}
    finished = group_runs([j.done.parent for j in jobs], specs)
    runs = {row: [json.loads((d / "results.json").read_text()) for d in dirs]
            for row, dirs in finished.items()}
    lengths = sorted({int(T) for rs in runs.values() for r in rs for T in r["test"]})
    train_lens = sorted({r["train_len"] for rs in runs.values() for r in rs})
    updates = sorted({r["updates"] for rs in runs.values() for r in rs})
    metrics, published = METRICS[args.task], PUBLISHED[args.task]
    tables, csv_rows = [], []
    for metric, title in metrics.items():
        header = ["model", "seeds", "diverged", "s / update", *(f"ours T={T}" for T in lengths)]
        if metric == PUBLISHED_METRIC[args.task]:
            header += [f"published T={T}" for T in sorted({T for p in published.values() for T in p})]
        rows = []
        for row, rs in runs.items():
            stopped = diverged([j.done.parent for j in jobs if j.row == row])
            speed = mean_std([r["seconds_per_update"] for r in rs])
            values = {T: [r["test"][str(T)][metric] for r in rs if str(T) in r["test"]] for T in lengths}
            digits = 1 if metric.endswith("accuracy") else 3
            line = [row, str(len(rs)), str(stopped), speed, *(mean_std(values[T], digits) for T in lengths)]
            if metric == PUBLISHED_METRIC[args.task]:
                for T in sorted({T for p in published.values() for T in p}):
                    value = published.get(row, {}).get(T)
                    line.append("–" if value is None else f"{value:.2f}")
            rows.append(line)
            for T in lengths:
                mean, std, n = summarise(values[T])
                pub = published.get(row, {}).get(T) if metric == PUBLISHED_METRIC[args.task] else None
                seed_values = " ".join(f"{v:.4f}" for v in values[T])  # seeds 0, 1, ... in order
                csv_rows.append([row, metric, T, mean, std, n, seed_values, stopped,
                                 "" if pub is None else pub])
        tables.append((title, header, rows))

    units = activation_table(runs, lengths)
    if units:
        tables.append(units)
    trained_minutes = sum(r["seconds_per_update"] * r["updates"] for rs in runs.values() for r in rs) / 60
    what = "Copying" if args.task == "copying" else "Adding"
    preamble = (f"# {what} task: trained at T={'/'.join(map(str, train_lens))}, tested at longer T\n\n"
                f"Budget: {'/'.join(f'{u:,}' for u in updates)} updates of 64 sequences (the authors' "
                f"code: {'40,000' if args.task == 'copying' else '46,800'}). Ours: mean ± std over seeds "
                f"of the checkpoint with the best validation score at the training length (never "
                f"a test length), each test set 1,000 fixed sequences. Published: Goyal et al. 2019, "
                f"table {'1' if args.task == 'copying' else '5'} (not our runs). RIM rows: "
                f"`{comm_update(extra)}` communication update; diverged: runs stopped by a NaN or "
                f"infinite loss (not in the means); s / update: training time per update of one run "
                f"with {max(1, (os.cpu_count() or 1) // parallel)} thread(s).\n\n"
                f"Command: `{command_line()}`  \n"
                f"Hardware: {hardware()}; training time of the runs: {trained_minutes:.1f} min "
                f"summed over runs (s / update x updates, across resumes; evaluation not included), "
                f"{parallel} at a time")
    write_tables(RESULTS / args.name, preamble, tables,
                 ["model", "metric", "T", "mean", "std", "n", "values", "diverged", "published"], csv_rows)
    plot(runs, lengths, metrics, published, PUBLISHED_METRIC[args.task], RESULTS / f"{args.name}.png")
    from experiments.copying.tasks import TASKS  # here: it imports torch, which the jobs' driver need not

    plot_curves(finished, TASKS[args.task].select, train_lens, RESULTS / f"{args.name}_curves.png")
    pictures = {row: next(d / "activations.png" for d in dirs if (d / "activations.png").exists())
                for row, dirs in finished.items() if any((d / "activations.png").exists() for d in dirs)}
    for i, (row, picture) in enumerate(pictures.items()):  # which units were active in each phase
        path = RESULTS / (f"{args.name}_activations.png" if i == 0 else
                          f"{args.name}_activations_{file_slug(row)}.png")
        shutil.copyfile(picture, path)
        print(f"wrote {path} (from {picture.parent.name})")
    if failed:
        raise SystemExit(f"failed runs: {', '.join(failed)} (see their stdout.log)")


def activation_table(runs: dict[str, list[dict]], lengths: list[int]) -> tuple | None:
    """Each RIM run's unit activation rates per phase at the paper's test length (or the
    longest tested): a unit at 0.00 through the dormant span keeps its state unchanged."""
    T = 200 if 200 in lengths else max(lengths, default=0)
    rims = [(row, r) for row, rs in runs.items() for r in rs
            if "activation_rate" in r["test"].get(str(T), {})]
    if not rims:
        return None
    phases = list(rims[0][1]["test"][str(T)]["activation_rate"])
    rows = [[f"{row} seed {r['seed']}",
             *(" ".join(f"{x:.2f}" for x in r["test"][str(T)]["activation_rate"][phase]) for phase in phases)]
            for row, r in rims]
    return (f"RIM units' activation rate per phase at T={T} (one number per unit; 0.00: never active)",
            ["run", *phases], rows)


def plot(runs: dict, lengths: list[int], metrics: dict, published: dict, published_metric: str,
         path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4), squeeze=False)
    for ax, (metric, title) in zip(axes[0], metrics.items()):
        for row, rs in runs.items():
            if not rs:
                continue
            values = [[r["test"][str(T)][metric] for r in rs] for T in lengths]
            line, = ax.plot(lengths, [statistics.mean(v) for v in values], marker="o", label=f"{row} (ours)")
            ax.fill_between(lengths, [min(v) for v in values], [max(v) for v in values],
                            color=line.get_color(), alpha=0.2)
            if metric == published_metric and row in published:
                Ts = sorted(published[row])
                ax.plot(Ts, [published[row][T] for T in Ts], ls="", marker="x", color=line.get_color(),
                        label=f"{row} (published)")
        ax.set_xlabel("test length T")
        ax.set_title(title, fontsize=8)
        ax.set_xticks(lengths)
    legend(axes[0, 0], fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


def validation_curve(run_dir: Path, metric: str) -> tuple[list[int], list[float]]:
    """(updates, values) of val/<metric> from a run's TensorBoard events (one file per
    start of the run, read in order)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points: dict[int, float] = {}
    for events in sorted(run_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if f"val/{metric}" in acc.Tags()["scalars"]:
            points.update({e.step: e.value for e in acc.Scalars(f"val/{metric}")})
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def plot_curves(run_dirs: dict[str, list[Path]], metric: str, train_lens: list[int], path: Path) -> None:
    """The validation metric against the update, one line per run: whether the budget
    was long enough for the curves to flatten. Its numbers go to ``path`` as .csv, one line
    per run and evaluation, for the pages that quote a point of a curve."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    points = []
    for i, (row, dirs) in enumerate(run_dirs.items()):
        for j, run_dir in enumerate(dirs):
            seed = json.loads((run_dir / "config.json").read_text())["args"]["seed"]
            steps, values = validation_curve(run_dir, metric)
            points += [[row, seed, step, f"{value:.4f}"] for step, value in zip(steps, values)]
            ax.plot(steps, values, color=f"C{i}", alpha=0.8, label=row if j == 0 else None)
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        csv.writer(f).writerows([["model", "seed", "update", f"validation {metric}"], *points])
    ax.set_xlabel("update")
    ax.set_ylabel(f"validation {metric} (T={'/'.join(map(str, train_lens))})")
    ax.set_title("one line per seed", fontsize=8)
    legend(ax, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path} and .csv")


if __name__ == "__main__":
    main()
