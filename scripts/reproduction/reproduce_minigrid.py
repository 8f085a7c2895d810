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
import sys
from pathlib import Path

from reproduce_common import (
    RESULTS,
    Job,
    comm_update,
    command_line,
    diverged,
    hardware,
    legend,
    run_jobs,
    run_name,
    write_table,
)

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "experiments" / "minigrid" / "train.py"
EVALUATE = ROOT / "experiments" / "minigrid" / "evaluate.py"
ROWS = {
    "RIM (4,3)": ["--use_rim", "--num-units", "4", "--k", "3"],
    "RIM (4,2)": ["--use_rim", "--num-units", "4", "--k", "2"],
    "LSTM": [],
}
# Published: the reference implementation's README (PPO, a single run each); not our runs.
TASKS = {
    1: {"train": "MiniGrid-Empty-5x5-v0", "frames": 80_000,
        "evaluate": ["MiniGrid-Empty-5x5-v0", "MiniGrid-Empty-16x16-v0"],
        "published": {"RIM (4,3)": (0.91, 0.92), "RIM (4,2)": (0.92, 0.95), "LSTM": (0.80, 0.84)}},
    2: {"train": "MiniGrid-MultiRoom-N2-S4-v0", "frames": 1_000_000,
        "evaluate": ["MiniGrid-MultiRoom-N2-S4-v0", "MiniGrid-MultiRoom-N4-S5-v0",
                     "MiniGrid-MultiRoom-N6-v0"],
        "published": {"RIM (4,3)": (0.81, 0.66, 0.05), "RIM (4,2)": (0.81, 0.10, 0.00),
                      "LSTM": (0.82, 0.04, 0.00)}},
    3: {"train": "MiniGrid-DoorKey-5x5-v0", "frames": 300_000,
        "evaluate": ["MiniGrid-DoorKey-5x5-v0", "MiniGrid-DoorKey-6x6-v0", "MiniGrid-DoorKey-8x8-v0",
                     "MiniGrid-DoorKey-16x16-v0"],
        "published": {"RIM (4,3)": (0.90, 0.68, 0.38, 0.18), "RIM (4,2)": (0.85, 0.62, 0.29, 0.13),
                      "LSTM": (0.90, 0.63, 0.35, 0.12)}},
}


def short(env: str) -> str:
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
    args, extra = p.parse_known_args()  # anything else goes to train.py unchanged
    task = TASKS[args.task]
    frames = int(task["frames"] * args.frames_scale)

    jobs = {}
    for row in args.rows:
        for seed in range(1, args.seeds + 1):
            name = f"task{args.task}_{run_name(row, seed)}_f{frames}"
            model_dir = args.storage / name
            steps = [[sys.executable, str(TRAIN), "--algo", "ppo", "--env", task["train"], "--model", name,
                      "--storage", str(args.storage), "--frames", str(frames), "--seed", str(seed),
                      "--procs", str(args.procs), "--no-progress", *ROWS[row], *extra]]
            for env in task["evaluate"]:
                steps.append([sys.executable, str(EVALUATE), "--env", env, "--model", name,
                              "--storage", str(args.storage), "--episodes", str(args.episodes),
                              "--seed", str(seed), "--json", str(model_dir / f"eval_{short(env)}.json")])
            jobs[row, seed] = Job(f"{row} seed {seed}",
                                  ["bash", "-c", " && ".join(shlex.join(s) for s in steps)],
                                  model_dir / f"eval_{short(task['evaluate'][-1])}.json",
                                  model_dir / "reproduce.log")
    parallel = args.jobs or os.cpu_count() or 1
    failed = [] if args.no_run else run_jobs(list(jobs.values()), parallel)

    table, curves = [], {}
    finished = [j.done.parent for j in jobs.values() if j.done.exists()]
    for row in args.rows:
        done = [j for (r, _), j in jobs.items() if r == row and j.done.exists()]
        cells = []
        for env in task["evaluate"]:
            returns = [json.loads((j.done.parent / f"eval_{short(env)}.json").read_text())["return_mean"]
                       for j in done]
            cells.append(returns)
        stopped = diverged([j.done.parent for (r, _), j in jobs.items() if r == row])
        table.append([row, str(len(done)), str(stopped), *cells,
                      *(float(v) for v in task["published"][row])])
        curves[row] = [read_curve(j.done.parent / "log.csv") for j in done]
    header = ["model", "seeds", "diverged", *(f"ours {short(e)}" for e in task["evaluate"]),
              *(f"published {short(e)}" for e in task["evaluate"])]
    reduced = f"REDUCED: {frames:,} training frames instead of {task['frames']:,}. " \
        if frames != task["frames"] else ""
    preamble = (f"# MiniGrid task {args.task}: PPO trained on {short(task['train'])}, "
                f"mean return per episode\n\n"
                f"{reduced}Trained for {frames:,} frames on {task['train']} ({args.procs} environments; "
                f"training stops at the first whole update past that); "
                f"evaluated on {args.episodes} episodes per environment with sampled actions. "
                f"Ours: mean ± std over seeds. Published: the reference implementation's README "
                f"(PPO, one run; not our runs). RIM rows: `{comm_update(extra)}` communication "
                f"update; diverged: runs stopped by a NaN or infinite loss (not in the means).\n\n"
                f"Command: `{command_line()}`  \n"
                f"Hardware: {hardware()}; training time: {training_minutes(finished):.1f} min summed over "
                f"runs (log.csv's duration, across resumes; evaluation not included), {parallel} at a time")
    write_table(f"minigrid_task{args.task}", header, table, preamble)
    plot(curves, RESULTS / f"minigrid_task{args.task}.png", f"task {args.task}: {short(task['train'])}")
    if failed:
        raise SystemExit(f"failed runs: {', '.join(failed)} (see their reproduce.log)")


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
