"""What the reproduction scripts share: a resumable job pool and the results-table writers."""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "results"


@dataclass
class Job:
    """One training run. ``done`` exists once it has finished; then it is skipped."""

    name: str
    command: list[str]
    done: Path
    log: Path
    env: dict = field(default_factory=dict)
    row: str = ""  # the table row it was launched for


def run_jobs(jobs: list[Job], parallel: int) -> list[str]:
    """Run the unfinished jobs, at most ``parallel`` at once, each with an equal share of
    the CPU threads; with one thread each, each job is pinned to a core of its own (two
    MNIST runs side by side trained 2-3% faster pinned, docs/performance.md). Returns the
    names of the jobs that failed."""
    todo = [j for j in jobs if not j.done.exists()]
    print(f"{len(jobs) - len(todo)} of {len(jobs)} runs already finished; running {len(todo)}, "
          f"{parallel} at a time")
    threads = str(threads_per_job(parallel))
    pin = threads == "1" and hasattr(os, "sched_setaffinity")
    free_cores = sorted(os.sched_getaffinity(0)) if pin else []
    running: list[tuple[Job, subprocess.Popen, float, int | None]] = []
    failed = []
    while todo or running:
        while todo and len(running) < parallel:
            job = todo.pop(0)
            job.log.parent.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "OMP_NUM_THREADS": threads, **job.env}
            core = free_cores.pop(0) if free_cores else None
            pinned = None if core is None else functools.partial(os.sched_setaffinity, 0, {core})
            with open(job.log, "a") as log:
                proc = subprocess.Popen(job.command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        preexec_fn=pinned)
            running.append((job, proc, time.time(), core))
            print(f"started  {job.name}  (log: {job.log})", flush=True)
        time.sleep(1)
        for entry in list(running):
            job, proc, start, core = entry
            if proc.poll() is None:
                continue
            running.remove(entry)
            if core is not None:
                free_cores.append(core)
            status = "finished" if proc.returncode == 0 and job.done.exists() else "FAILED"
            if status == "FAILED":
                failed.append(job.name)
            print(f"{status} {job.name} in {time.time() - start:.0f} s", flush=True)
    return failed


def add_executor_options(p: argparse.ArgumentParser) -> None:
    """--executor and the Slurm job's resources, for every reproduction script."""
    g = p.add_argument_group("where the runs go")
    g.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="local: run here, --jobs at a time (default); slurm: submit one job array "
                        "(--jobs elements at a time) through submitit and return; write the table "
                        "with --no-run once it has ended (docs/distributed.md)")
    g.add_argument("--slurm-partition", default=None, help="Slurm partition (default: the cluster's)")
    g.add_argument("--slurm-minutes", type=int, default=24 * 60,
                   help="time limit of each run's job; a run cut off is requeued and resumes (default: 1440)")
    g.add_argument("--slurm-cpus", type=int, default=2, help="CPUs per run (default: 2)")
    g.add_argument("--slurm-gpus", type=int, default=0, help="GPUs per run (default: 0; 1 with --cuda)")
    g.add_argument("--slurm-logs", type=Path, default=None,
                   help="submitit's folder for the jobs' logs and pickles (default: slurm/ beside the runs)")


@dataclass
class RunCommand:
    """One element of a Slurm job array: a run's trainer command, appending to its log.

    When Slurm preempts the job or its time runs out, submitit calls :meth:`checkpoint` and
    requeues the same command; the trainer resumes from its run folder (the trainers save on
    SIGTERM, and every --save-every updates)."""

    command: list[str]
    env: dict
    log: Path

    def __call__(self) -> int:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a") as log:
            return subprocess.run(self.command, stdout=log, stderr=subprocess.STDOUT, check=True,
                                  env={**os.environ, **self.env}).returncode

    def checkpoint(self):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)


def submit_jobs(jobs: list[Job], args: argparse.Namespace, folder: Path, cluster: str = "slurm") -> list:
    """Submit the unfinished jobs as one job array, ``--jobs`` of them running at once (all
    by default), and return submitit's jobs; ``folder``: submitit's logs unless --slurm-logs.
    ``cluster="debug"`` is submitit's in-process executor, for tests."""
    try:
        import submitit
    except ImportError:
        raise SystemExit("error: --executor slurm needs submitit: pip install '.[cluster]'") from None
    todo = [j for j in jobs if not j.done.exists()]
    print(f"{len(jobs) - len(todo)} of {len(jobs)} runs already finished", end="")
    if not todo:
        print("; nothing to submit. Write the table: the same command with --no-run")
        return []
    parallel = args.jobs or len(todo)
    executor = submitit.AutoExecutor(folder=args.slurm_logs or folder, cluster=cluster)
    gpus = args.slurm_gpus or (1 if getattr(args, "cuda", False) else 0)
    executor.update_parameters(timeout_min=args.slurm_minutes, cpus_per_task=args.slurm_cpus,
                               gpus_per_node=gpus, slurm_array_parallelism=parallel,
                               **({"slurm_partition": args.slurm_partition} if args.slurm_partition else {}))
    threads = str(args.slurm_cpus)
    with executor.batch():
        submitted = [executor.submit(RunCommand(j.command, {"OMP_NUM_THREADS": threads, **j.env}, j.log))
                     for j in todo]
    print(f"; submitted {len(todo)} as job {submitted[0].job_id.split('_')[0]}, {parallel} at a time. "
          "When they have ended, write the table: the same command with --no-run")
    return submitted


def add_cuda_options(p: argparse.ArgumentParser) -> None:
    """--cuda and --no-cuda-graph, for a script whose main.py has --cuda and --cuda_graph."""
    p.add_argument("--cuda", action="store_true",
                   help="train on the GPU (RIM rows replay a CUDA graph, see main.py --cuda_graph)")
    p.add_argument("--no-cuda-graph", action="store_true", help="with --cuda: train the RIM rows eagerly")


def cuda_arguments(args: argparse.Namespace, row: str) -> list[str]:
    """main.py's device options for one table row: eager, the RIM is launch-bound on a GPU,
    so its rows replay a CUDA graph; nn.LSTM / nn.GRU run cuDNN's fused kernels eagerly."""
    if not args.cuda:
        return []
    return ["--cuda", "--cuda_graph"] if row.startswith("RIM") and not args.no_cuda_graph else ["--cuda"]


def threads_per_job(parallel: int) -> int:
    """The CPU threads each of ``parallel`` jobs running at once gets: an equal share."""
    return max(1, (os.cpu_count() or 1) // parallel)


def default_jobs(args: argparse.Namespace) -> int:
    """Runs at once: one per CPU core, or one on the GPU."""
    return args.jobs or (1 if args.cuda else os.cpu_count() or 1)


def mean_std(values: list[float], digits: int = 2) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def run_name(row: str, seed: int) -> str:
    """A table row and seed as a folder name: "RIM (6,4)", 0 -> "RIM(6_4)_seed0"."""
    return f"{row.replace(' ', '').replace(',', '_')}_seed{seed}"


def model_spec(args: dict) -> dict:
    """What a run's config.json arguments say its model was: the architecture options, with
    the values that runs saved before an option existed used. Two runs belong to the same
    table row exactly when their specs are equal."""
    from experiments.recurrent import ARCHITECTURE_OPTIONS, SAVED_DEFAULTS, hidden_size, saved_rim_options

    spec = {option: args.get(option, SAVED_DEFAULTS.get(option)) for option in ARCHITECTURE_OPTIONS}
    spec["rim_options"] = saved_rim_options(spec["rim_options"])
    spec["hidden_size"] = hidden_size(args)
    if spec["model"] != "RIM":  # the RIM's sizes and switches do not apply
        spec = {option: spec[option] for option in ("model", "input_size", "hidden_size")}
    return spec


def counts_at_budget(done: Path, trained: int, budget: int, option: str, no_run: bool) -> bool:
    """Whether a finished run (``done``: its results.json; ``trained``: the epochs or updates
    it recorded) belongs in a table at ``budget``. A run trained for less is resumed to the
    budget: its results are removed so that the job runs again (main.py continues from last.pt
    and rewrites them); with ``no_run`` nothing is removed and the run is only left out. A
    run trained for more cannot be cut back, so this stops with a message."""
    if trained > budget:
        raise SystemExit(f"{done.parent} was trained for {trained} {option[2:]}, more than {option} "
                         f"{budget}: pass {option} {trained}, or another --runs-dir")
    if trained == budget:
        return True
    if no_run:
        print(f"{done.parent}: trained for {trained} {option[2:]}, not {budget}; left out",
              file=sys.stderr)
    else:
        done.unlink()
    return False


def group_runs(run_dirs: list[Path], rows: dict[str, dict]) -> dict[str, list[Path]]:
    """The finished runs among ``run_dirs`` (results.json) under the row whose model spec
    (``rows``: row -> :func:`model_spec` of its arguments) their config.json matches, so that
    a run is never counted into a row by its folder's name. A finished run that matches no row
    is reported and left out."""
    grouped: dict[str, list[Path]] = {row: [] for row in rows}
    for run_dir in run_dirs:
        if not (run_dir / "results.json").exists():
            continue
        spec = model_spec(json.loads((run_dir / "config.json").read_text())["args"])
        matches = [row for row, row_spec in rows.items() if row_spec == spec]
        if matches:
            grouped[matches[0]].append(run_dir)
        else:
            print(f"{run_dir}: its config.json matches no table row; left out", file=sys.stderr)
    return grouped


def diverged(run_dirs: list[Path]) -> int:
    """How many of these runs stopped because their loss became NaN or infinite."""
    return sum((d / "diverged.json").exists() for d in run_dirs)


def comm_update(extra: list[str]) -> str:
    """The RIM communication update that the runs used: the trainers' flag if it was passed
    through, else rim_core's default."""
    for i, arg in enumerate(extra):
        for flag in ("--comm_update", "--comm-update"):
            if arg == flag and i + 1 < len(extra):
                return extra[i + 1]
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return "gated"


def command_line() -> str:
    """How this script was invoked, for the table (``--no-run`` does not change the results)."""
    args = [a for a in sys.argv[1:] if a != "--no-run"]
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(RESULTS.parent) if script.is_relative_to(RESULTS.parent) else script
    return shlex.join(["python", str(shown), *args])


def hardware() -> str:
    from experiments.common import cpu_name  # here: it imports torch, which the drivers don't need

    return f"{os.cpu_count()} CPU cores ({cpu_name()})"


Cell = str | float | list[float]  # text, one number (published), or one value per seed


def write_table(name: str, header: list[str], rows: list[list[Cell]], preamble: str) -> None:
    """results/<name>.md (with the preamble; seed lists as mean ± std) and results/<name>.csv,
    which holds numbers only: one line per model and column, with mean, std, n and the
    values of the seeds. A name with a folder (``ablations/copying_pilot``) writes into that
    sub-folder of results/, which it creates."""
    (RESULTS / name).parent.mkdir(parents=True, exist_ok=True)

    def shown(cell: Cell) -> str:
        if isinstance(cell, list):
            return mean_std(cell)
        return f"{cell:.2f}" if isinstance(cell, float) else cell

    lines = [preamble.rstrip(), "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(shown(c) for c in r) + " |" for r in rows]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    with open(RESULTS / f"{name}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "column", "mean", "std", "n", "values"])
        for row in rows:
            for column, cell in zip(header[1:], row[1:]):
                if isinstance(cell, list):
                    std = f"{statistics.stdev(cell):.4f}" if len(cell) > 1 else ""
                    mean = f"{statistics.mean(cell):.4f}" if cell else ""
                    values = " ".join(f"{v:.4f}" for v in cell)
                    writer.writerow([row[0], column, mean, std, len(cell), values])
                elif cell not in ("", "–"):
                    writer.writerow([row[0], column, cell, "", "", ""])
    print(f"wrote {RESULTS / name}.md and .csv")


def write_tables(stem: Path, preamble: str, tables: list[tuple[str, list[str], list[list[str]]]],
                 csv_header: list[str], csv_rows: list[list]) -> None:
    """``stem``.md (the preamble, then one titled table per entry of ``tables``) and
    ``stem``.csv (``csv_rows`` under ``csv_header``), creating ``stem``'s folder: a name with
    a folder (``results/ablations/copying_pilot``) writes into that sub-folder."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    lines = [preamble.rstrip()]
    for title, header, rows in tables:
        lines += ["", f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    stem.with_name(stem.name + ".md").write_text("\n".join(lines) + "\n")
    with open(stem.with_name(stem.name + ".csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(csv_header)
        writer.writerows(csv_rows)
    print(f"wrote {stem}.md and .csv")


def legend(ax, **kwargs) -> None:
    """``ax.legend(**kwargs)`` when something is labelled: before any run has finished
    (``--no-run``) a plot has nothing to name, and matplotlib would warn."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)
