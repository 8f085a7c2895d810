"""Reproduce the MiniGrid generalisation tables: PPO agents trained on one environment
and evaluated (mean return per episode) on it and on larger, unseen ones.

Rows: RIM (Kt=4, Ka=3), RIM (Kt=4, Ka=2) and an LSTM. Every run goes through
experiments/minigrid/train.py and evaluate.py; a run whose evaluations exist is skipped,
and an interrupted one resumes from its status.pt, so the script can be killed and restarted.
Writes results/minigrid_task<N>.md, .csv and .png (learning curves with seed bands).

    python scripts/reproduction/reproduce_minigrid.py --task 1 --seeds 3
    python scripts/reproduction/reproduce_minigrid.py --task 3 --seeds 3 --frames-scale 0.25   # reduced
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import interval_stats as stats
from reproduce_common import (
    RESULTS,
    Job,
    add_executor_options,
    comm_update,
    command_line,
    diverged,
    hardware,
    legend,
    mean_std,
    run_jobs,
    run_name,
    submit_jobs,
    write_tables,
)

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "experiments" / "minigrid" / "train.py"
EVALUATE = ROOT / "experiments" / "minigrid" / "evaluate.py"
ROWS = {
    "RIM (4,3)": ["--use_rim", "--num-units", "4", "--k", "3"],
    "RIM (4,2)": ["--use_rim", "--num-units", "4", "--k", "2"],
    "LSTM": [],
}
COMPARED = ("LSTM", ["RIM (4,3)", "RIM (4,2)"])  # the baseline, and the rows held against it


@dataclass(frozen=True)
class Column:
    """One evaluation environment of a table and what it must build (a test checks it, and
    that the label says the same): the grid's side for Empty and DoorKey; for MultiRoom the
    number of rooms and the largest side a room may have; and the episode's step limit. The
    values are those gym-minigrid 1.0.1 built in 2020, except for the 6-room column."""

    env: str
    label: str
    size: int
    max_steps: int
    rooms: int = 1


# Published: the reference implementation's README (PPO, a single run each; gym-minigrid 1.0.1,
# 2020); not our runs. None: no published value (today's 6-room MultiRoom-N4-S5-v0).
TASKS = {
    1: {"train": "MiniGrid-Empty-5x5-v0", "frames": 80_000,
        "columns": [Column("MiniGrid-Empty-5x5-v0", "Empty-5x5", 5, 100),
                    Column("MiniGrid-Empty-16x16-v0", "Empty-16x16", 16, 1024)],
        "published": {"RIM (4,3)": (0.91, 0.92), "RIM (4,2)": (0.92, 0.95), "LSTM": (0.80, 0.84)}},
    # MultiRoom-N4-S5-v0 built 4 rooms in 2020 and builds 6 today; -v1 is the 2020 environment.
    2: {"train": "MiniGrid-MultiRoom-N2-S4-v0", "frames": 1_000_000,
        "columns": [Column("MiniGrid-MultiRoom-N2-S4-v0", "N2-S4", 4, 40, rooms=2),
                    Column("MiniGrid-MultiRoom-N4-S5-v1", "N4-S5 (4 rooms, v1)", 5, 80, rooms=4),
                    Column("MiniGrid-MultiRoom-N4-S5-v0", "6 rooms (v0 today)", 5, 120, rooms=6),
                    Column("MiniGrid-MultiRoom-N6-v0", "N6", 10, 120, rooms=6)],
        "published": {"RIM (4,3)": (0.81, 0.66, None, 0.05), "RIM (4,2)": (0.81, 0.10, None, 0.00),
                      "LSTM": (0.82, 0.04, None, 0.00)}},
    3: {"train": "MiniGrid-DoorKey-5x5-v0", "frames": 300_000,
        "columns": [Column("MiniGrid-DoorKey-5x5-v0", "DoorKey-5x5", 5, 250),
                    Column("MiniGrid-DoorKey-6x6-v0", "6x6", 6, 360),
                    Column("MiniGrid-DoorKey-8x8-v0", "8x8", 8, 640),
                    Column("MiniGrid-DoorKey-16x16-v0", "16x16", 16, 2560)],
        "published": {"RIM (4,3)": (0.90, 0.68, 0.38, 0.18), "RIM (4,2)": (0.85, 0.62, 0.29, 0.13),
                      "LSTM": (0.90, 0.63, 0.35, 0.12)}},
}


def short(env: str) -> str:
    """An id without its prefix and without "-v0": the name of its evaluation file."""
    return env.removeprefix("MiniGrid-").removesuffix("-v0")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", type=int, required=True, choices=sorted(TASKS))
    p.add_argument("--seeds", type=int, default=3, help="seeds 1..N per row")
    p.add_argument("--frames-scale", type=float, default=1.0,
                   help="train for this fraction of the task's frames (reduced runs)")
    p.add_argument("--episodes", type=int, default=100, help="evaluation episodes per environment")
    p.add_argument("--procs", type=int, default=16, help="environments per training run")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), metavar="ROW")
    p.add_argument("--no-run", action="store_true",
                   help="launch nothing; only write the table and plot from the runs that finished")
    p.add_argument("--jobs", type=int, default=None, help="runs at once (default: one per CPU core)")
    p.add_argument("--storage", type=Path, default=ROOT / "storage" / "reproduce",
                   help="where the model directories go")
    add_executor_options(p)
    args, extra = p.parse_known_args()  # anything else goes to train.py unchanged
    task = TASKS[args.task]
    frames = int(task["frames"] * args.frames_scale)

    jobs = {}
    for seed in range(1, args.seeds + 1):  # seed-major: a run cut short leaves the rows even
        for row in args.rows:
            name = f"task{args.task}_{run_name(row, seed)}_f{frames}"
            model_dir = args.storage / name
            steps = [[sys.executable, str(TRAIN), "--algo", "ppo", "--env", task["train"], "--model", name,
                      "--storage", str(args.storage), "--frames", str(frames), "--seed", str(seed),
                      "--procs", str(args.procs), "--no-progress", *ROWS[row], *extra]]
            for column in task["columns"]:
                steps.append([sys.executable, str(EVALUATE), "--env", column.env, "--model", name,
                              "--storage", str(args.storage), "--episodes", str(args.episodes),
                              "--seed", str(seed), "--json", str(model_dir / eval_file(column))])
            jobs[row, seed] = Job(f"{row} seed {seed}",
                                  ["bash", "-c", " && ".join(shlex.join(s) for s in steps)],
                                  model_dir / eval_file(task["columns"][-1]),
                                  model_dir / "reproduce.log")
    parallel = args.jobs or os.cpu_count() or 1
    if args.executor == "slurm" and not args.no_run:
        submit_jobs(list(jobs.values()), args, args.storage / "slurm")
        return
    failed = [] if args.no_run else run_jobs(list(jobs.values()), parallel)

    runs = {row: {seed: j.done.parent for (r, seed), j in jobs.items() if r == row and j.done.exists()}
            for row in args.rows}
    stopped = {row: diverged([j.done.parent for (r, _), j in jobs.items() if r == row]) for row in args.rows}
    finished = [d for row_runs in runs.values() for d in row_runs.values()]
    reduced = f"REDUCED: {frames:,} training frames instead of {task['frames']:,}. " \
        if frames != task["frames"] else ""
    preamble = (f"# MiniGrid task {args.task}: PPO trained on {short(task['train'])}, "
                f"mean return per episode\n\n"
                f"{reduced}Trained for {frames:,} frames on {task['train']} ({args.procs} environments; "
                f"training stops at the first whole update past that); "
                f"evaluated on {args.episodes} episodes per environment with sampled actions. "
                f"Published: the reference implementation's README (PPO, one run, gym-minigrid 1.0.1; "
                f"not our runs). RIM rows: `{comm_update(extra)}` communication update; diverged: "
                f"runs stopped by a NaN or infinite loss (not in the statistics). The statistics and "
                f"the transfer threshold were fixed before the runs: docs/results.md.\n\n"
                f"Command: `{command_line()}`  \n"
                f"Hardware: {hardware()}; training time: {training_minutes(finished):.1f} min summed over "
                f"runs (log.csv's duration, across resumes; evaluation not included), {parallel} at a time")
    write_tables(RESULTS / f"minigrid_task{args.task}", preamble,
                 *statistics_tables(task, runs, stopped))
    plot({row: [read_curve(d / "log.csv") for d in row_runs.values()] for row, row_runs in runs.items()},
         RESULTS / f"minigrid_task{args.task}.png", f"task {args.task}: {short(task['train'])}")
    if failed:
        raise SystemExit(f"failed runs: {', '.join(failed)} (see their reproduce.log)")


def statistics_tables(task: dict, runs: dict[str, dict[int, Path]],
                      stopped: dict[str, int]) -> tuple[list, list[str], list[list]]:
    """The markdown tables (title, header, rows) and the long CSV (header, rows) of one task:
    per row and column the seeds' returns, their IQM and the transfer count with their
    intervals; per RIM row and unseen column the comparison with the LSTM."""
    columns, labels = task["columns"], [c.label for c in task["columns"]]
    returns = {row: [[json.loads((d / eval_file(c)).read_text())["return_mean"] for d in row_runs.values()]
                     for c in columns] for row, row_runs in runs.items()}
    published = [i for i in range(len(columns)) if any(task["published"][r][i] is not None for r in runs)]
    csv_rows: list[list] = []
    means, iqms, counts = [], [], []
    for row, row_runs in runs.items():
        seeds = " ".join(str(s) for s in row_runs)
        summaries = [summarize(values) for values in returns[row]]
        for label, values, summary in zip(labels, returns[row], summaries):
            csv_rows += [[row, label, statistic, *map(fmt, numbers), len(values), seeds,
                          " ".join(fmt(v) for v in values)] for statistic, numbers in summary.items()]
        csv_rows += [[row, labels[i], "published", task["published"][row][i], "", "", "", "", ""]
                     for i in published if task["published"][row][i] is not None]
        means.append([row, str(len(row_runs)), str(stopped[row]), *(mean_std(v) for v in returns[row]),
                      *(fmt_published(task["published"][row][i]) for i in published)])
        iqms.append([row, *(cell("{:.2f}", *s["iqm"]) if s else "–" for s in summaries)])
        counts.append([row, *(cell(f"{{:.0f}}/{len(v)}", *s["transfers"]) if s else "–"
                              for s, v in zip(summaries, returns[row]))])

    baseline, compared = COMPARED
    comparisons = []
    for i, label in enumerate(labels[1:], start=1):  # the unseen environments
        for row in [r for r in compared if r in runs and baseline in runs]:
            x, y = returns[row][i], returns[baseline][i]
            if not x or not y:
                continue
            name, n = f"{row} vs {baseline}", f"{len(x)} {len(y)}"
            kx, ky = stats.transfers(x), stats.transfers(y)
            improvement = (stats.probability_of_improvement(x, y), *stats.improvement_interval(x, y))
            p_value = stats.boschloo_p(kx, len(x), ky, len(y))
            comparisons.append([label, name, cell("{:.2f}", *improvement), f"{kx}/{len(x)} vs {ky}/{len(y)}",
                                f"{p_value:.3f}"])
            csv_rows += [[name, label, "probability_of_improvement", *map(fmt, improvement), n, "", ""],
                         [name, label, "boschloo_p", fmt(p_value), "", "", n, "", ""]]

    at_least = f"at least {stats.TRANSFER_THRESHOLD:g}"
    tables = [
        ("Mean return, mean ± std over seeds",
         ["model", "seeds", "diverged", *(f"ours {label}" for label in labels),
          *(f"published {labels[i]}" for i in published)], means),
        ("Interquartile mean of the seeds' returns [95% stratified bootstrap interval]",
         ["model", *labels], iqms),
        (f"Seeds whose mean return is {at_least} [Clopper-Pearson 95% interval of the fraction]",
         ["model", *labels], counts),
        (f"RIM against LSTM on the unseen environments: the probability that a RIM seed beats an LSTM "
         f"seed [95% bootstrap interval]; the seeds {at_least}, and Boschloo's exact test on those counts",
         ["environment", "rows", "P(RIM > LSTM)", f"seeds {at_least}", "Boschloo p (two-sided)"],
         comparisons),
    ]
    csv_header = ["model", "column", "statistic", "value", "low", "high", "n", "seeds", "values"]
    return tables, csv_header, csv_rows


def summarize(values: list[float]) -> dict[str, tuple[float, float, float]]:
    """(value, low, high) per statistic of one row's seeds on one environment; an interval
    is NaN where there are too few seeds for one. Empty for no seeds."""
    if not values:
        return {}
    nan = float("nan")
    k = stats.transfers(values)
    return {"mean": (statistics.mean(values), nan, nan),
            "std": (statistics.stdev(values) if len(values) > 1 else nan, nan, nan),
            "iqm": (stats.iqm(values), *stats.iqm_interval(values)),
            "transfers": (k, *stats.clopper_pearson(k, len(values)))}


def cell(form: str, value: float, low: float, high: float) -> str:
    """A markdown cell: the value in ``form``, then its interval where it has one."""
    return form.format(value) if low != low else f"{form.format(value)} [{low:.2f}, {high:.2f}]"


def eval_file(column: Column) -> str:
    return f"eval_{short(column.env)}.json"


def fmt(value: float) -> str:
    """A number for the CSV; NaN (no interval) as an empty field, counts as integers."""
    if isinstance(value, int):
        return str(value)
    return "" if value != value else f"{value:.4f}"


def fmt_published(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def training_minutes(run_dirs: list[Path]) -> float:
    """The runs' training time: each log.csv's last duration, which train.py carries over resumes."""
    total = 0.0
    for run_dir in run_dirs:
        with open(run_dir / "log.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        total += float(rows[-1]["duration"]) if rows else 0.0
    return total / 60


def read_curve(log_csv: Path) -> tuple[list[float], list[float]]:
    """(frames, mean return) per logged update of one run."""
    with open(log_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    return [float(r["frames"]) for r in rows], [float(r["return_mean"]) for r in rows]


def plot(curves: dict, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4))
    for row, runs in curves.items():
        if not runs:
            continue
        # seeds log at slightly different frame counts: compare them on a common grid
        grid = np.linspace(0, min(max(f) for f, _ in runs), 50)
        values = np.stack([np.interp(grid, f, r) for f, r in runs])
        mean, std = values.mean(0), values.std(0)
        ax.plot(grid, mean, label=f"{row} ({len(runs)} seeds)")
        ax.fill_between(grid, mean - std, mean + std, alpha=0.25)
    ax.set_xlabel("frames")
    ax.set_ylabel("mean return per episode (training)")
    ax.set_title(title)
    legend(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
