"""The reproduction scripts' job pool: skips finished runs, reports failed ones."""

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import pytest
from reproduce_common import Job, mean_std, run_jobs

from tests.helpers import MNIST_TINY

# main.py arguments the copying script passes through: a tiny model and task
TINY_COPYING = ["--input-size", "8", "--hidden-size", "8", "--key-size-input", "8", "--query-size-input", "8",
                "--value-size-input", "8", "--key-size-comm", "8", "--query-size-comm", "8",
                "--value-size-comm", "8", "--num-comm-heads", "2", "--train-len", "3", "--test-lens", "3",
                "6", "--eval-examples", "8", "--batch-size", "4", "--eval-every", "2"]


def job(tmp_path: Path, name: str, code: str) -> Job:
    done = tmp_path / f"{name}.done"
    return Job(name, [sys.executable, "-c", code.format(done=done)], done, tmp_path / f"{name}.log")


def test_run_jobs_runs_unfinished_skips_finished_and_reports_failures(tmp_path):
    ok = job(tmp_path, "ok", "open(r'{done}', 'w').write('x')")
    crash = job(tmp_path, "crash", "raise SystemExit(3)")
    finished = job(tmp_path, "finished", "raise SystemExit('must not run')")
    finished.done.write_text("already")
    assert run_jobs([ok, crash, finished], parallel=2) == ["crash"]
    assert ok.done.read_text() == "x"
    assert finished.done.read_text() == "already"
    assert not finished.log.exists()


def test_mean_std_formats_seeds():
    assert mean_std([]) == "–"
    assert mean_std([50.0]) == "50.00"
    assert mean_std([1.0, 3.0]) == "2.00 ± 1.41"


def test_tables_count_diverged_runs_and_name_the_comm_update(tmp_path):
    from reproduce_common import comm_update, diverged
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    (tmp_path / "b" / "diverged.json").write_text("{}")
    assert diverged([tmp_path / n for n in ("a", "b", "c")]) == 1
    assert comm_update([]) == "gated"
    assert comm_update(["--seeds", "2", "--comm_update", "residual"]) == "residual"
    assert comm_update(["--comm-update=residual"]) == "residual"


def mnist_commands(argv: list[str]) -> dict[str, list[str]]:
    from reproduce_mnist import make_jobs, parse_args
    args, extra = parse_args(argv)
    jobs, _ = make_jobs(args, extra)
    return {job.name: job.command[2:] for job in jobs}  # without the interpreter and main.py


def test_reproduce_mnist_on_cuda_graphs_the_rim_rows_only(tmp_path):
    from experiments.mnist.main import parse_args as main_args
    rows = ["--rows", "RIM (6,4)", "LSTM-600", "--seeds", "1", "--runs-dir", str(tmp_path)]
    on_gpu = mnist_commands([*rows, "--cuda", "--eval_batch_size", "250"])
    rim, lstm = main_args(on_gpu["RIM (6,4) seed 0"]), main_args(on_gpu["LSTM-600 seed 0"])
    assert rim.cuda and rim.cuda_graph and rim.eval_batch_size == 250  # the user's value wins
    assert lstm.cuda and not lstm.cuda_graph
    eager = mnist_commands([*rows, "--cuda", "--no-cuda-graph"])
    assert not main_args(eager["RIM (6,4) seed 0"]).cuda_graph
    on_cpu = main_args(mnist_commands(rows)["RIM (6,4) seed 0"])
    assert not on_cpu.cuda and not on_cpu.cuda_graph and on_cpu.eval_batch_size == 256  # main.py's default


def test_reproduce_copying_on_cuda_graphs_the_rim_rows_only(tmp_path):
    from reproduce_copying import make_jobs, parse_args

    from experiments.copying.main import parse_args as main_args
    rows = ["--rows", "RIM (6,4)", "LSTM-600", "--seeds", "1", "--runs-dir", str(tmp_path)]

    def commands(argv: list[str]) -> dict[str, argparse.Namespace]:
        return {job.name: main_args(job.command[2:]) for job in make_jobs(*parse_args([*rows, *argv]))}

    on_gpu = commands(["--cuda"])
    rim, lstm = on_gpu["RIM (6,4) seed 0"], on_gpu["LSTM-600 seed 0"]
    assert rim.cuda and rim.cuda_graph and lstm.cuda and not lstm.cuda_graph
    assert not commands(["--cuda", "--no-cuda-graph"])["RIM (6,4) seed 0"].cuda_graph
    on_cpu = commands([])["RIM (6,4) seed 0"]
    assert not on_cpu.cuda and not on_cpu.cuda_graph


def test_reproduce_copying_runs_the_all_active_control_only_when_named(tmp_path):
    from reproduce_copying import make_jobs, parse_args

    from experiments.copying.main import parse_args as main_args
    where = ["--seeds", "1", "--runs-dir", str(tmp_path)]
    default = {job.name for job in make_jobs(*parse_args(where))}
    assert "RIM (6,4) seed 0" in default and "GRU-600 seed 0" in default
    assert not any(name.startswith("RIM (6,6)") for name in default)
    [control] = make_jobs(*parse_args([*where, "--rows", "RIM (6,6)"]))
    assert main_args(control.command[2:]).k == 6


def test_compare_runs_tells_identical_runs_from_different_ones(tmp_path):
    from compare_runs import compare_runs

    from experiments.mnist.main import main
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        main([*MNIST_TINY, "--epochs", "1", "--seed", seed, "--log_dir", str(tmp_path / name)])
    same = compare_runs(tmp_path / "a", tmp_path / "b")
    assert same["max_parameter_difference"] == 0.0
    assert same["test_accuracy"][0] == same["test_accuracy"][1] is not None
    assert compare_runs(tmp_path / "a", tmp_path / "c")["max_parameter_difference"] > 0.0


def test_reproduce_copying_writes_tables_with_every_length_and_the_published_values(tmp_path, monkeypatch):
    import reproduce_copying
    monkeypatch.setattr(reproduce_copying, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(sys, "argv", ["reproduce_copying.py", "--seeds", "2", "--updates", "2", "--rows",
                                      "RIM (6,4)", "LSTM-300", "--runs-dir", str(tmp_path / "runs"),
                                      *TINY_COPYING])
    reproduce_copying.main()
    table = (tmp_path / "results" / "copying.md").read_text()
    assert "| RIM (6,4) | 2 | 0 |" in table
    assert "ours T=3 | ours T=6 | published T=50 | published T=200" in table
    assert "Budget: 2 updates" in table and "`gated` communication update" in table
    # one line of unit activation rates per RIM run (the LSTM has no units), at the longest T
    assert "activation rate per phase at T=6" in table
    assert "| run | digits | dormant | marker | recall |" in table
    assert "| RIM (6,4) seed 1 |" in table and "| LSTM-300 seed" not in table
    rows = list(csv.DictReader(open(tmp_path / "results" / "copying.csv")))
    assert {(r["model"], r["metric"], r["T"], r["n"]) for r in rows} == {
        (m, metric, T, "2") for m in ("RIM (6,4)", "LSTM-300")
        for metric in ("ce_all", "ce_copy", "digit_accuracy", "sequence_accuracy") for T in ("3", "6")}
    for r in rows:  # each seed's value, and the mean of them
        seed_values = [float(v) for v in r["values"].split()]
        assert len(seed_values) == 2 and abs(sum(seed_values) / 2 - float(r["mean"])) < 1e-4
    assert (tmp_path / "results" / "copying.png").stat().st_size > 0
    # the validation curves come from every run's TensorBoard events
    curve_steps, curve = reproduce_copying.validation_curve(tmp_path / "runs" / "RIM(6_4)_seed1", "ce_copy")
    assert curve_steps == [2] and curve[0] > 0
    assert (tmp_path / "results" / "copying_curves.png").stat().st_size > 0
    points = list(csv.DictReader(open(tmp_path / "results" / "copying_curves.csv")))
    assert len(points) == 4  # 2 rows x 2 seeds, one evaluation each
    rim1 = next(p for p in points if (p["model"], p["seed"]) == ("RIM (6,4)", "1"))
    assert (int(rim1["update"]), float(rim1["validation ce_copy"])) == (2, pytest.approx(curve[0], abs=1e-4))
    picture = tmp_path / "results" / "copying_activations.png"  # the first RIM run's
    assert picture.read_bytes() == (tmp_path / "runs" / "RIM(6_4)_seed0" / "activations.png").read_bytes()
    # a second invocation finds every run finished and launches none
    jobs = reproduce_copying.make_jobs(*reproduce_copying.parse_args(sys.argv[1:]))
    assert all(job.done.exists() for job in jobs) and reproduce_copying.run_jobs(jobs, 1) == []


def test_tables_show_mean_and_std_and_their_csv_holds_numbers_only(tmp_path, monkeypatch):
    import reproduce_common
    monkeypatch.setattr(reproduce_common, "RESULTS", tmp_path)
    reproduce_common.write_table("t", ["model", "seeds", "ours", "published"],
                                 [["RIM", "2", [0.5, 0.7], 0.9], ["LSTM", "1", [0.25], "–"]], "# T")
    assert "| RIM | 2 | 0.60 ± 0.14 | 0.90 |" in (tmp_path / "t.md").read_text()
    rows = {(r["model"], r["column"]): r for r in csv.DictReader(open(tmp_path / "t.csv"))}
    assert rows["RIM", "ours"] == {"model": "RIM", "column": "ours", "mean": "0.6000", "std": "0.1414",
                                   "n": "2", "values": "0.5000 0.7000"}
    assert rows["LSTM", "ours"]["std"] == "" and rows["RIM", "published"]["mean"] == "0.9"
    assert ("LSTM", "published") not in rows  # no number, no line
    for row in rows.values():
        float(row["mean"])


def test_runs_are_counted_into_the_row_their_config_describes(tmp_path, monkeypatch):
    import reproduce_copying
    from reproduce_common import group_runs, model_spec

    from experiments.copying.main import parse_args as main_args
    rows = ["RIM (6,4)", "RIM (6,4) authors"]
    monkeypatch.setattr(reproduce_copying, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(sys, "argv", ["reproduce_copying.py", "--seeds", "1", "--updates", "2", "--rows",
                                      *rows, "--runs-dir", str(tmp_path / "runs"), *TINY_COPYING])
    reproduce_copying.main()
    table = (tmp_path / "results" / "copying.md").read_text()
    # "RIM (6,4) authors seed 0" starts with "RIM (6,4)", but is not counted into it
    assert "| RIM (6,4) | 1 | 0 |" in table and "| RIM (6,4) authors | 1 | 0 |" in table
    assert (tmp_path / "results" / "copying_activations_rim_6_4_authors.png").stat().st_size > 0
    # a folder named for one row that holds a run of the other is counted by its config.json
    swapped = tmp_path / "RIM(6_4)_seed1"
    (tmp_path / "runs" / "RIM(6_4)authors_seed0").rename(swapped)
    specs = {row: model_spec(vars(main_args([*reproduce_copying.ROWS[row], *TINY_COPYING]))) for row in rows}
    assert specs[rows[0]] != specs[rows[1]]
    assert group_runs([swapped, tmp_path / "runs" / "RIM(6_4)_seed0"], specs) == {
        rows[0]: [tmp_path / "runs" / "RIM(6_4)_seed0"], rows[1]: [swapped]}


@pytest.mark.filterwarnings("error::UserWarning")  # e.g. matplotlib's, for a legend of nothing
def test_a_name_with_a_folder_writes_into_that_folder_of_results(tmp_path, monkeypatch):
    """results/README.md puts pilots and ablations under results/ablations/; the command it
    quotes (--name ablations/NAME) must write them there, creating the folder."""
    import reproduce_common
    import reproduce_copying
    monkeypatch.setattr(reproduce_common, "RESULTS", tmp_path / "results")
    reproduce_common.write_table("ablations/t", ["model", "ours"], [["RIM", [0.5]]], "# T")
    assert {p.name for p in (tmp_path / "results" / "ablations").iterdir()} == {"t.md", "t.csv"}

    monkeypatch.setattr(reproduce_copying, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(sys, "argv", ["reproduce_copying.py", "--no-run", "--seeds", "1", "--rows",
                                      "RIM (6,4)", "--runs-dir", str(tmp_path / "runs"),
                                      "--name", "ablations/pilot"])
    reproduce_copying.main()  # no finished runs: an empty table and plots, in the right place
    assert {p.name for p in (tmp_path / "results" / "ablations").iterdir()} == {
        "t.md", "t.csv", "pilot.md", "pilot.csv", "pilot.png", "pilot_curves.png", "pilot_curves.csv"}
    assert not list((tmp_path / "results").glob("pilot*"))


def test_reproduce_mnist_writes_both_selections_the_curves_and_an_activation_picture(tmp_path, monkeypatch):
    import reproduce_mnist
    tiny = ["--train_examples", "64", "--eval_examples", "32", "--batch_size", "32", "--input_size", "8",
            "--hidden_size", "8", "--key_size_input", "8", "--query_size_input", "8", "--value_size_input",
            "8", "--key_size_comm", "8", "--query_size_comm", "8", "--value_size_comm", "8",
            "--num_comm_heads", "2", "--size", "6", "--no-compile", "--epoch-eval-examples", "16"]
    results, runs = tmp_path / "results", tmp_path / "runs"
    monkeypatch.setattr(reproduce_mnist, "RESULTS", results)
    argv = ["--seeds", "2", "--epochs", "2", "--rows", "RIM (6,4)", "LSTM-600", "--runs-dir", str(runs),
            *tiny]
    monkeypatch.setattr(sys, "argv", ["reproduce_mnist.py", *argv])
    reproduce_mnist.main()
    table = (results / "mnist.md").read_text()
    assert "| RIM (6,4) | 2 | 0 |" in table and "| LSTM-600 | 2 | 0 |" in table
    assert "| ours 6x6 | ours 16x16 | ours 19x19 | ours 24x24 | per-size 16x16 |" in table
    assert "# Sequential MNIST: train 6x6, test" in table and "REDUCED protocol: 2 epochs." in table
    assert "RIM rows: `gated` communication update." in table
    lines = {(r["model"], r["column"]): r for r in csv.DictReader(open(results / "mnist.csv"))}
    rim = [json.loads((runs / f"RIM(6_4)_seed{seed}" / "results.json").read_text()) for seed in (0, 1)]
    per_size = [r["per_size_selection"]["24x24"]["test_accuracy"] for r in rim]
    assert [float(v) for v in lines[("RIM (6,4)", "per-size 24x24")]["values"].split()] == \
        pytest.approx(per_size, abs=1e-4)
    mean = sum(per_size) / 2  # the binomial standard error of an accuracy on 32 digits
    assert float(lines[("RIM (6,4)", "per-size 24x24")]["standard_error"]) == \
        pytest.approx(100 * (mean / 100 * (1 - mean / 100) / 32) ** 0.5, abs=1e-4)
    assert lines[("LSTM-600", "published 16x16")]["mean"] == "84.5"
    # the reference implementation's values are a second, labelled published group
    assert lines[("RIM (6,4)", "reference impl. 24x24")]["mean"] == "46.23"
    assert "| published 24x24 | reference impl. 16x16 |" in table
    assert next(line for line in table.splitlines() if line.startswith("| LSTM-600 |")).endswith(
        "| 84.5 | 52.2 | 21.9 | 80.43 | 39.74 | 20.48 |")
    from matplotlib.image import imread
    for picture in ("mnist.png", "mnist_activations.png"):  # drawn: dark lines and marks on white
        pixels = imread(results / picture)[..., :3].mean(-1)
        assert (pixels > 0.95).mean() > 0.3 and (pixels < 0.3).mean() > 0.001
    # the training time is the runs' own record of each epoch, whichever session ran it
    every = [json.loads(p.read_text()) for p in runs.glob("*/results.json")]
    seconds = {m: [h["train_seconds"] for r in every if r["model"] == m for h in r["history"]]
               for m in ("RIM", "LSTM")}
    assert [len(s) for s in seconds.values()] == [4, 4] and all(s > 0 for s in seconds["RIM"])
    rim_min, lstm_min = (sum(s) / 4 / 60 for s in seconds.values())
    assert (f"per epoch of one run, mean over epochs: RIM (6,4) {rim_min:.1f} min, LSTM-600 "
            f"{lstm_min:.1f} min; evaluation" in table)
    # a cell that holds fewer seeds than its row says how many
    rim0 = runs / "RIM(6_4)_seed0" / "results.json"
    rim0.write_text(json.dumps({**rim[0], "per_size_selection": {}}))
    monkeypatch.setattr(sys, "argv", ["reproduce_mnist.py", *argv, "--no-run"])
    reproduce_mnist.main()
    row = next(line for line in (results / "mnist.md").read_text().splitlines() if line.startswith("| RIM"))
    assert row.count("(n=1)") == 3 and f"{per_size[1]:.1f} [" in row
    rim0.write_text(json.dumps(rim[0]))
    # a run whose results.json predates "epochs" counts its history's epochs
    lstm = runs / "LSTM-600_seed0" / "results.json"
    lstm.write_text(json.dumps({k: v for k, v in json.loads(lstm.read_text()).items() if k != "epochs"}))
    reproduce_mnist.make_jobs(*reproduce_mnist.parse_args(argv))
    assert lstm.exists()
    # a table at a larger budget leaves the finished runs out, and in place, under --no-run ...
    more = [*argv[:2], "--epochs", "3", *argv[4:]]
    assert reproduce_mnist.make_jobs(*reproduce_mnist.parse_args([*more, "--no-run"]))[0] == []
    assert len(list(runs.glob("*/results.json"))) == 4
    # ... and continues them otherwise
    jobs, _ = reproduce_mnist.make_jobs(*reproduce_mnist.parse_args(more))
    assert all("--loadsaved" in job.command and not job.done.exists() for job in jobs)
    # a run trained for more than asked cannot be cut back to the budget: a message, not a loop
    (runs / "LSTM-600_seed0" / "results.json").write_text(json.dumps({"epochs": 3}))
    with pytest.raises(SystemExit, match=r"LSTM-600_seed0 was trained for 3 epochs, more than --epochs 2"):
        reproduce_mnist.make_jobs(*reproduce_mnist.parse_args(argv))


def test_mnist_passes_the_data_dir_to_the_activation_picture_in_either_spelling():
    from reproduce_mnist import data_dir
    assert data_dir(["--data_dir", "/d"]) == data_dir(["--data-dir=/d"]) == ["--data_dir", "/d"]
    assert data_dir(["--epochs", "2"]) == []


def test_mnist_training_time_counts_only_the_epochs_that_recorded_it():
    from reproduce_mnist import training_time
    recorded = {"history": [{"train_seconds": 600.0}, {"train_seconds": 1200.0}]}
    older = {"history": [{}, {}, {}]}  # a run made before main.py recorded the time
    line = training_time({"RIM (6,4)": [recorded, older], "LSTM-600": [older]}, threads=1)
    assert line == ("training time per epoch of one run, mean over epochs: RIM (6,4) 15.0 min; "
                    "6 of 8 epochs, run before main.py recorded it, not counted; evaluation not included")
    assert "not recorded" in training_time({"LSTM-600": [older]}, threads=1)


def test_mnist_training_time_averages_epochs_at_another_thread_count_apart():
    from reproduce_mnist import training_time
    shared = {"history": [{"train_seconds": 1800.0, "threads": 1}, {"train_seconds": 1200.0}]}
    alone = {"history": [{"train_seconds": 600.0, "threads": 2}, {"train_seconds": 660.0, "threads": 2}]}
    line = training_time({"RIM (5,3) x102": [alone, shared]}, threads=1)
    assert line == ("training time per epoch of one run, mean over epochs: "
                    "RIM (5,3) x102 25.0 min / 10.5 min (2 epochs at 2 threads); evaluation not included")
    single = training_time({"LSTM-600": [{"history": [{"train_seconds": 60.0, "threads": 1}]}]}, threads=2)
    assert "LSTM-600 1.0 min (1 epoch at 1 thread)" in single


def test_run_jobs_pins_one_thread_jobs_to_a_core_each(tmp_path):
    cores = sorted(os.sched_getaffinity(0))
    code = ("import os, time; time.sleep(1.5); "
            "open(r'{done}', 'w').write(' '.join(map(str, sorted(os.sched_getaffinity(0)))))")
    jobs = [job(tmp_path, f"j{i}", code) for i in range(len(cores))]
    assert run_jobs(jobs, len(cores)) == []
    pinned = [job.done.read_text() for job in jobs]
    assert sorted(pinned) == [str(core) for core in cores]  # one core each, all different


def test_minigrid_training_time_is_each_runs_last_logged_duration(tmp_path):
    from reproduce_minigrid import training_minutes
    for name, durations in {"a": [30.0, 90.0], "b": [60.0, 120.0, 150.0]}.items():
        (tmp_path / name).mkdir()
        rows = "".join(f"{i},{d}\n" for i, d in enumerate(durations))
        (tmp_path / name / "log.csv").write_text("update,duration\n" + rows)
    assert training_minutes([tmp_path / "a", tmp_path / "b"]) == pytest.approx((90 + 150) / 60)


def fake_minigrid_run(storage: Path, task: int, row: str, seed: int, returns: dict[str, float]) -> None:
    """A finished run folder as reproduce_minigrid.py leaves it: log.csv and one evaluation each."""
    from reproduce_common import run_name
    from reproduce_minigrid import TASKS, eval_file
    run = storage / f"task{task}_{run_name(row, seed)}_f{TASKS[task]['frames']}"
    run.mkdir(parents=True)
    (run / "log.csv").write_text("update,frames,duration,return_mean\n1,2048,30.0,0.1\n2,4096,60.0,0.5\n")
    for column in TASKS[task]["columns"]:
        (run / eval_file(column)).write_text(json.dumps({"return_mean": returns[column.label]}))


def test_minigrid_table_gives_each_seed_the_intervals_and_the_comparison(tmp_path, monkeypatch):
    import reproduce_minigrid
    monkeypatch.setattr(reproduce_minigrid, "RESULTS", tmp_path / "results")
    unseen = {"RIM (4,3)": [0.9, 0.8, 0.7, 0.6], "RIM (4,2)": [0.1, 0.0, 0.9, 0.2],
              "LSTM": [0.0, 0.1, 0.2, 0.3]}
    for row, values in unseen.items():
        for seed, value in enumerate(values, start=1):
            returns = {"N2-S4": 0.8, "N4-S5 (4 rooms, v1)": value, "6 rooms (v0 today)": value / 2, "N6": 0.0}
            fake_minigrid_run(tmp_path / "runs", 2, row, seed, returns)
    monkeypatch.setattr(sys, "argv", ["reproduce_minigrid.py", "--task", "2", "--seeds", "4", "--no-run",
                                      "--storage", str(tmp_path / "runs")])
    reproduce_minigrid.main()

    table = (tmp_path / "results" / "minigrid_task2.md").read_text()
    # published beside the 4-room column; the 6-room column has none
    assert ("| RIM (4,3) | 4 | 0 | 0.80 ± 0.00 | 0.75 ± 0.13 | 0.38 ± 0.06 | 0.00 ± 0.00 "
            "| 0.81 | 0.66 | 0.05 |") in table
    assert "published 6 rooms" not in table
    assert "| RIM (4,3) | 0.80 [0.80, 0.80] | 0.75 [" in table  # IQM of 0.6..0.9 = mean of 0.7, 0.8
    assert "| RIM (4,2) | 4/4 [0.40, 1.00] | 1/4 [0.01, 0.81] | 0/4 [0.00, 0.60] |" in table
    assert "| N4-S5 (4 rooms, v1) | RIM (4,3) vs LSTM | 1.00 [1.00, 1.00] | 4/4 vs 0/4 | 0.008 |" in table

    with open(tmp_path / "results" / "minigrid_task2.csv", newline="") as f:
        rows = {(r["model"], r["column"], r["statistic"]): r for r in csv.DictReader(f)}
    mean = rows["RIM (4,2)", "N4-S5 (4 rooms, v1)", "mean"]
    assert (mean["seeds"], mean["values"]) == ("1 2 3 4", "0.1000 0.0000 0.9000 0.2000")
    assert rows["RIM (4,2)", "N4-S5 (4 rooms, v1)", "transfers"]["value"] == "1"
    assert rows["LSTM", "N4-S5 (4 rooms, v1)", "published"]["value"] == "0.04"
    assert float(rows["RIM (4,2) vs LSTM", "N6", "boschloo_p"]["value"]) == 1.0


def test_slurm_executor_submits_the_unfinished_runs_as_one_array_and_the_table_follows(tmp_path, monkeypatch):
    """--executor slurm through submitit's in-process debug executor (no cluster here): the
    script submits, writes no table, and --no-run writes it from the finished run folders."""
    import reproduce_common
    import reproduce_copying
    submitted = []

    def debug_submit(jobs, args, folder):
        submitted.extend(reproduce_common.submit_jobs(jobs, args, folder, cluster="debug"))

    monkeypatch.setattr(reproduce_copying, "submit_jobs", debug_submit)
    monkeypatch.setattr(reproduce_copying, "RESULTS", tmp_path / "results")
    argv = ["reproduce_copying.py", "--seeds", "2", "--updates", "2", "--rows", "LSTM-300", "--runs-dir",
            str(tmp_path / "runs"), "--executor", "slurm", "--jobs", "1", *TINY_COPYING]
    monkeypatch.setattr(sys, "argv", argv)
    reproduce_copying.main()
    assert len(submitted) == 2 and not (tmp_path / "results").exists()  # submitted, nothing run yet
    for job in submitted:
        assert job.result() == 0  # the debug executor runs the element now
    assert sorted(p.parent.name for p in (tmp_path / "runs").glob("*/results.json")) == \
        ["LSTM-300_seed0", "LSTM-300_seed1"]
    submitted.clear()
    reproduce_copying.main()  # every run finished: nothing to submit
    assert submitted == []
    monkeypatch.setattr(sys, "argv", [*argv, "--no-run"])
    reproduce_copying.main()
    assert "| LSTM-300 | 2 | 0 |" in (tmp_path / "results" / "copying.md").read_text()


def test_a_requeued_slurm_element_runs_the_same_command(tmp_path):
    """submitit requeues a preempted or timed-out element with what checkpoint() returns:
    the same trainer command, which resumes from its run folder."""
    from reproduce_common import RunCommand
    command = RunCommand([sys.executable, "-c", "print('ran')"], {"OMP_NUM_THREADS": "2"}, tmp_path / "log")
    again = command.checkpoint()
    assert again.function is command and again.args == () and again.kwargs == {}
    assert again.result() == 0 and (tmp_path / "log").read_text() == "ran\n"
