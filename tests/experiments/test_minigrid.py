"""MiniGrid agents: training writes and resumes its model directory, evaluate and visualize
rebuild the agent from status.pt alone, the memory round trip is exact, bad input gets a
one-line error. Tiny runs (2 environments, 16 frames per update, hidden size 8)."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest
import torch
from reproduce_minigrid import TASKS

from experiments.common import UserError, load_checkpoint
from experiments.minigrid import demo, evaluate, train, visualize
from experiments.minigrid.agent import Agent, load_model
from experiments.minigrid.envs import env_seeds, make_env, preprocess_obss
from experiments.minigrid.model import ACModel, ModelConfig, pack_memory, unpack_memory
from experiments.minigrid.storage import TrainingLog, save_status
from tests.helpers import MINIGRID_ENV as ENV
from tests.helpers import minigrid_train_args as train_args

ROOT = Path(__file__).resolve().parents[2]
FRAMES_PER_UPDATE = 16  # 2 procs x 8 frames


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Storage with a RIM agent of a non-default shape (3 units, 2 active) and an LSTM agent."""
    storage = tmp_path_factory.mktemp("storage")
    train.run(train.parse_args(train_args(storage, "rim", "--use_rim", "--num-units", "3", "--k", "2")))
    train.run(train.parse_args(train_args(storage, "lstm")))
    return storage


# ---------------------------------------------------------------- training


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
@pytest.mark.parametrize("use_rim", [False, True], ids=["lstm", "rim"])
def test_training_writes_every_model_directory_file(tmp_path, algo, use_rim):
    flags = ["--use_rim"] if use_rim else []
    result = train.run(train.parse_args(train_args(tmp_path, "m", *flags, algo=algo)))
    path = tmp_path / "m"
    assert result == {"model_dir": str(path), "num_frames": 32, "update": 2}
    assert len(list(path.glob("events.out.tfevents.*"))) == 1
    assert "U 2 | F 0000032" in (path / "log.txt").read_text()

    rows = read_csv(path / "log.csv")
    assert [int(r["update"]) for r in rows] == [1, 2]
    assert [int(r["frames"]) for r in rows] == [16, 32]
    for key in ("FPS", "duration", "return_mean", "return_std", "return_min", "return_max",
                "num_frames_mean", "entropy", "value", "policy_loss", "value_loss", "grad_norm"):
        assert np.isfinite(float(rows[-1][key])), key
    assert 0 < float(rows[-1]["entropy"]) <= np.log(7) + 1e-6  # 7 MiniGrid actions

    status = load_checkpoint(path / "status.pt")  # weights_only=True: plain data and tensors only
    assert status["num_frames"] == 32 and status["update"] == 2 and status["algo"] == algo
    assert status["model_config"]["use_rim"] is use_rim
    assert {"model_state", "optimizer_state", "rng_state"} <= set(status)


@pytest.mark.parametrize("memory", [["--use_rim"], []], ids=["rim", "lstm"])
def test_ppo_learns_the_training_grid(tmp_path, memory):
    # The other training tests compare runs of the same code; this one fails if PPO does
    # not learn. On Empty-5x5 the mean return rises from about 0.2 (a wandering agent) to
    # about 0.9 (0.955 is the best possible) within 12,000 frames.
    result = train.run(train.parse_args(["--algo", "ppo", "--env", ENV, "--model", "m", "--storage",
                                         str(tmp_path), "--frames", "12000", "--procs", "4",
                                         "--no-progress", "--seed", "1", *memory]))
    log = csv.DictReader(open(Path(result["model_dir"]) / "log.csv"))
    returns = [float(row["return_mean"]) for row in log]
    assert sum(returns[:3]) / 3 < 0.5 and sum(returns[-3:]) / 3 > 0.75


def test_resume_continues_from_the_saved_frame_count(tmp_path):
    train.run(train.parse_args(train_args(tmp_path, "m", "--use_rim")))
    before = load_checkpoint(tmp_path / "m" / "status.pt")
    # no --use_rim: the saved configuration decides
    result = train.run(train.parse_args(train_args(tmp_path, "m", frames=64)))
    after = load_checkpoint(tmp_path / "m" / "status.pt")

    assert result["num_frames"] == before["num_frames"] + 2 * FRAMES_PER_UPDATE == 64
    assert after["update"] == before["update"] + 2
    assert after["model_config"] == before["model_config"]
    # Adam's step count continues: the optimiser state was restored, not recreated. PPO
    # makes 2 then 1 optimiser steps per update (torch-ac shifts the sequences by half their
    # length every other epoch, dropping those that would cross the rollout's end).
    def adam_steps(status: dict) -> set[int]:
        return {int(state["step"]) for state in status["optimizer_state"]["state"].values()}
    assert adam_steps(before) == {3} and adam_steps(after) == {6}
    rows = read_csv(tmp_path / "m" / "log.csv")  # appended to, header once
    assert [int(r["frames"]) for r in rows] == [16, 32, 48, 64]
    assert (tmp_path / "m" / "log.txt").read_text().count("resuming in") == 1

    # reaching --frames already: nothing to do, nothing changes
    assert train.run(train.parse_args(train_args(tmp_path, "m", frames=64)))["update"] == 4


def test_resume_drops_the_log_rows_after_the_last_save(tmp_path):
    train.run(train.parse_args(train_args(tmp_path, "m", frames=48)))  # saved at updates 1, 2, 3
    status = load_checkpoint(tmp_path / "m" / "status.pt")
    status["update"], status["num_frames"] = 2, 32  # as if it had died after update 3's log row
    save_status(tmp_path / "m", status)
    train.run(train.parse_args(train_args(tmp_path, "m", frames=64)))
    rows = read_csv(tmp_path / "m" / "log.csv")
    assert [int(r["update"]) for r in rows] == [1, 2, 3, 4]



def test_resume_trims_a_log_csv_cut_off_by_a_crash(tmp_path):
    header = "update,frames,FPS\r\n"
    (tmp_path / "log.csv").write_text(header + "1,16,9.0\r\n2,32,9.0\r\n\r\n1")  # "13,..." cut off
    TrainingLog(tmp_path, echo=False, resume_update=2).close()
    assert (tmp_path / "log.csv").read_bytes() == (header + "1,16,9.0\r\n2,32,9.0\r\n").encode()
    (tmp_path / "log.csv").write_text("frames,FPS\r\n16,9.0\r\n")
    with pytest.raises(UserError, match="no 'update' column"):
        TrainingLog(tmp_path, echo=False, resume_update=2)

def test_same_seed_gives_the_same_training_run(tmp_path):
    for name in ("a", "b"):
        train.run(train.parse_args(train_args(tmp_path, name, "--use_rim", "--seed", "3")))
    a, b = (read_csv(tmp_path / name / "log.csv") for name in ("a", "b"))
    timing = {"FPS", "duration"}
    assert [{k: v for k, v in r.items() if k not in timing} for r in a] == \
           [{k: v for k, v in r.items() if k not in timing} for r in b]
    state_a, state_b = (load_checkpoint(tmp_path / n / "status.pt")["model_state"] for n in ("a", "b"))
    assert all(torch.equal(state_a[key], state_b[key]) for key in state_a)
    assert env_seeds(3, 3) == [3, 10003, 20003]


# ---------------------------------------------------------------- model and memory


def test_memory_round_trip_is_exact():
    config = ModelConfig(use_rim=True, num_actions=7, num_units=3, k=2, hidden_size=5)
    h, c = torch.randn(4, 3, 5), torch.randn(4, 3, 5)
    memory = pack_memory(h, c)
    assert memory.shape == (4, config.memory_size) == (4, 2 * 3 * 5)
    h2, c2 = unpack_memory(memory, config.state_shape)
    assert torch.equal(h2, h) and torch.equal(c2, c)
    flat = torch.randn(4, config.memory_size)
    assert torch.equal(pack_memory(*unpack_memory(flat, config.state_shape)), flat)


def test_model_carries_the_whole_rim_state_through_the_flat_memory():
    torch.manual_seed(0)
    model = ACModel(ModelConfig(use_rim=True, num_actions=7, num_units=4, k=3, hidden_size=6))
    env = make_env(ENV, seed=0)
    obs = preprocess_obss([env.reset(seed=i)[0] for i in range(5)])
    memory = torch.randn(5, model.memory_size)
    dist, value, new_memory = model(obs, memory)

    x = model.image_conv(obs.image.permute(0, 3, 1, 2))
    (h, c), active = model.memory_rnn(x, unpack_memory(memory, (4, 6)))
    assert torch.equal(new_memory, pack_memory(h, c))
    assert torch.equal(model.last_active, active)
    assert model.last_active.shape == (5, 4) and (model.last_active.sum(1) == 3).all()
    # inactive units keep h and c exactly: the mask recorded is the one that was applied
    old_h, old_c = unpack_memory(memory, (4, 6))
    new_h, new_c = unpack_memory(new_memory, (4, 6))
    kept = ~model.last_active
    assert torch.equal(new_h[kept], old_h[kept]) and torch.equal(new_c[kept], old_c[kept])
    assert dist.probs.shape == (5, 7) and value.shape == (5,)


def test_agent_resets_memory_only_where_an_episode_ended():
    agent = Agent(ACModel(ModelConfig(use_rim=False, num_actions=7, hidden_size=4)), num_envs=3)
    agent.memory = torch.randn(3, agent.memory.shape[1])
    before = agent.memory.clone()
    agent.episodes_ended([False, True, False])
    assert torch.equal(agent.memory[1], torch.zeros_like(before[1]))
    assert torch.equal(agent.memory[[0, 2]], before[[0, 2]])


# ---------------------------------------------------------------- evaluate and visualize


def test_evaluate_rebuilds_the_agent_from_status_alone(trained, tmp_path):
    out = tmp_path / "eval.json"
    # an unseen, larger environment; no --use_rim or shape flags although the shape is not the default
    stats = evaluate.run(evaluate.parse_args(["--env", "MiniGrid-Empty-6x6-v0", "--model", "rim", "--storage",
                                              str(trained), "--episodes", "5", "--procs", "2",
                                              "--json", str(out)]))
    assert json.loads(out.read_text()) == json.loads(json.dumps(stats))
    assert stats["episodes"] == 5 and stats["use_rim"] is True and stats["trained_on"] == ENV
    assert 0.0 <= stats["return_min"] <= stats["return_mean"] <= stats["return_max"] < 1.0
    assert 1 <= stats["length_min"] <= stats["length_mean"] <= stats["length_max"] <= 4 * 6 * 6
    assert 0.0 <= stats["success_rate"] <= 1.0
    # a success earns a positive return, a failure none
    assert (stats["success_rate"] > 0) == (stats["return_max"] > 0)
    model, _ = load_model(trained / "rim")
    assert (model.config.num_units, model.config.k, model.config.hidden_size) == (3, 2, 8)


def test_evaluate_is_deterministic_for_a_seed(trained):
    args = ["--env", ENV, "--model", "lstm", "--storage", str(trained), "--episodes", "4", "--procs", "2"]
    first, second = (evaluate.run(evaluate.parse_args(args + ["--seed", "5"])) for _ in range(2))
    first.pop("seconds"), second.pop("seconds")
    assert first == second


def test_visualize_writes_a_gif_with_the_active_units_strip(trained, tmp_path):
    result = visualize.run(visualize.parse_args(["--env", ENV, "--model", "rim", "--storage", str(trained),
                                                 "--gif", str(tmp_path / "rim"), "--episodes", "2",
                                                 "--max-frames", "15", "--tile-size", "16"]))
    assert result["gif"] == tmp_path / "rim.gif"
    frames = iio.imread(result["gif"], index=None)
    render_height = 5 * 16
    assert len(frames) == result["frames"] >= 2  # every step is its own frame (captions differ)
    assert frames.shape[1:3] == (render_height + visualize.strip_height(3), 5 * 16)

    strip_top = render_height + visualize.CAPTION_HEIGHT
    for frame in frames[..., :3]:
        cells = [frame[strip_top + 4:strip_top + visualize.UNITS_HEIGHT - 5, x0 + 12:x1 - 2]
                 for x0, x1 in visualize.unit_cells(frame.shape[1], 3)]
        bright = [np.median(cell.max(axis=-1)) > 100 for cell in cells]
        assert sum(bright) == 2  # k = 2 of the 3 units are active at every step


def test_visualize_lstm_agent_has_captions_but_no_units_strip(trained, tmp_path):
    result = visualize.run(visualize.parse_args(["--env", ENV, "--model", "lstm", "--storage", str(trained),
                                                 "--gif", str(tmp_path / "lstm.gif"), "--max-frames", "3",
                                                 "--tile-size", "16"]))
    frames = iio.imread(result["gif"], index=None)
    assert frames.shape[:3] == (result["frames"], 5 * 16 + visualize.strip_height(None), 5 * 16)


# ---------------------------------------------------------------- errors


def error_line(capsys, main, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("changes, message", [
    ({"--env": "MiniGrid-Empty-5x5-v9"}, "unknown environment 'MiniGrid-Empty-5x5-v9'; did you mean"),
    ({"--num-units": "4", "--k": "5"}, "--k 5 must be between 1 and --num-units 4"),
    ({"--frames-per-proc": "10"}, "--recurrence 4 must divide --frames-per-proc 10"),
    ({"--batch-size": "6"}, "--recurrence 4 must divide --batch-size 6"),
    ({"--procs": "0"}, "--procs must be >= 1"),
    ({"--model": "a/b"}, "must be a plain folder name"),
    ({"--max-grad-norm": "-1"}, "--max-grad-norm must be > 0"),
    ({"--discount": "5"}, "--discount must be in [0, 1]"),
    ({"--frames-per-proc": "4"}, "--frames-per-proc 4 must be at least twice --recurrence 4 with PPO"),
    ({"--seed": "-1"}, "--seed must be between 0 and 2**32 - 1, got -1"),
])
def test_training_errors_are_one_line(tmp_path, capsys, changes, message):
    argv = train_args(tmp_path, "m", "--use_rim")
    for flag, value in changes.items():
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    assert message in error_line(capsys, train.main, argv)
    assert list(tmp_path.iterdir()) == []  # nothing created on bad input


def test_errors_of_trained_models_are_one_line(trained, tmp_path, capsys):
    missing = ["--env", ENV, "--model", "nope", "--storage", str(trained)]
    assert "nope does not exist" in error_line(capsys, evaluate.main, missing)
    assert "nope does not exist" in error_line(capsys, visualize.main, missing + ["--gif", "x"])
    lstm = ["--env", ENV, "--model", "lstm", "--storage", str(trained)]
    assert "has LSTM memory" in error_line(capsys, evaluate.main, lstm + ["--use_rim"])
    resume = train_args(trained, "lstm", "--use_rim")
    assert "created with LSTM memory" in error_line(capsys, train.main, resume)
    resume = train_args(trained, "rim")
    resume[resume.index("--hidden-size") + 1] = "16"
    assert "--hidden-size 16 differs from model rim's 8" in error_line(capsys, train.main, resume)
    assert "trained with ppo" in error_line(capsys, train.main, train_args(trained, "rim", algo="a2c"))
    assert "--lr is 0.5 but model rim was trained with 0.001" in error_line(
        capsys, train.main, train_args(trained, "rim", "--lr", "0.5"))
    before = {f.name: f.read_bytes() for f in (trained / "rim").iterdir()}
    other_env = train_args(trained, "rim", frames=64)
    other_env[other_env.index("--env") + 1] = "MiniGrid-Empty-6x6-v0"
    assert f"--env MiniGrid-Empty-6x6-v0 differs from model rim's {ENV}" in error_line(
        capsys, train.main, other_env)
    assert "--seed 2 differs from model rim's 1; resume with --seed 1" in error_line(
        capsys, train.main, train_args(trained, "rim", "--seed", "2", frames=64))
    assert {f.name: f.read_bytes() for f in (trained / "rim").iterdir()} == before  # left as it was
    assert "is not a MiniGrid environment" in error_line(capsys, evaluate.main,
                                                         ["--env", "CartPole-v1", "--model", "lstm",
                                                          "--storage", str(trained)])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "status.pt").write_bytes(b"not a checkpoint")
    assert "corrupt" in error_line(capsys, evaluate.main,
                                   ["--env", ENV, "--model", "bad", "--storage", str(tmp_path)])


# ---------------------------------------------------------------- scripts as programs


@pytest.mark.slow
def test_scripts_run_from_the_root_and_from_their_folder(tmp_path):
    folder = ROOT / "experiments" / "minigrid"
    for cwd, script, frames in ((ROOT, "experiments/minigrid/train.py", 16), (folder, "train.py", 32)):
        proc = subprocess.run([sys.executable, script, *train_args(tmp_path, "cli", frames=frames)],
                              cwd=cwd, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    assert load_checkpoint(tmp_path / "cli" / "status.pt")["num_frames"] == 32  # the second run resumed
    proc = subprocess.run([sys.executable, "evaluate.py", "--env", "Nope-v0", "--model", "cli", "--storage",
                           str(tmp_path)], cwd=folder, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown environment 'Nope-v0'")
    assert proc.stderr.count("\n") == 1, proc.stderr


def start_training(tmp_path: Path, **popen) -> tuple[subprocess.Popen, list[int]]:
    """train.py in a process of its own, once it has logged two updates, and its workers' pids."""
    argv = train_args(tmp_path, "m", "--use_rim", frames=10**7)
    argv[argv.index("--procs") + 1] = "3"
    argv[argv.index("--save-interval") + 1] = "0"  # status.pt only at the end, or on a signal
    proc = subprocess.Popen([sys.executable, str(ROOT / "experiments" / "minigrid" / "train.py"), *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    log_csv, deadline = tmp_path / "m" / "log.csv", time.monotonic() + 120
    while not (log_csv.exists() and len(log_csv.read_text().splitlines()) >= 3):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    children = [int(pid) for task in Path(f"/proc/{proc.pid}/task").iterdir()
                for pid in (task / "children").read_text().split()]
    assert len(children) == 2  # --procs 3: the trainer steps the first environment itself
    return proc, children


def all_gone(pids: list[int], timeout: float = 10.0) -> bool:
    """Whether every process ended (a zombie awaiting its reaper counts as ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if Path(f"/proc/{p}/stat").exists()
                 and Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
        if not alive:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_the_last_update_and_ends_in_one_line(tmp_path, signum, code):
    """SIGTERM to the trainer, or Ctrl-C to its whole process group as a terminal sends it."""
    proc, workers = start_training(tmp_path, start_new_session=True)
    os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    assert err.strip() == f"{signal.Signals(signum).name}: saved {tmp_path / 'm' / 'status.pt'}; " \
                          "run the same command to resume"
    with open(tmp_path / "m" / "log.csv", newline="") as f:
        last_logged = int(list(csv.DictReader(f))[-1]["update"])
    assert load_checkpoint(tmp_path / "m" / "status.pt")["update"] == last_logged >= 2
    assert all_gone(workers)


@pytest.mark.slow
def test_environment_workers_die_with_a_killed_trainer(tmp_path):
    proc, workers = start_training(tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    assert all_gone(workers)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_torch_ac_imports_whatever_start_method_was_chosen_first(method):
    code = (f"import multiprocessing; multiprocessing.set_start_method({method!r}); "
            "from experiments.minigrid.envs import torch_ac; "
            "print(torch_ac.utils.ParallelEnv.__name__, multiprocessing.get_start_method())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ParallelEnv", method]


def test_demo_runs_end_to_end_when_tiny(tmp_path, capsys):
    result = demo.run(demo.parse_args(["--frames", "256", "--procs", "2", "--episodes", "2",
                                       "--storage", str(tmp_path)]))
    path = tmp_path / "demo_rim_empty5x5"
    assert load_checkpoint(path / "status.pt")["num_frames"] == 256
    for env in (demo.TRAIN_ENV, demo.TEST_ENV):
        for suffix in ("", "_argmax"):
            assert json.loads((path / f"eval_{env}{suffix}.json").read_text())["episodes"] == 2
    assert len(result["evaluations"]) == 4
    assert len(iio.imread(result["gif"], index=None)) >= 2
    out = capsys.readouterr().out
    assert f"tensorboard --logdir {path}" in out and str(path / "demo_16x16.gif") in out


def test_training_stops_on_a_non_finite_loss_and_keeps_the_last_status(tmp_path, monkeypatch, capsys):
    train.run(train.parse_args(train_args(tmp_path, "m", "--use_rim")))  # saved at update 2
    saved = load_checkpoint(tmp_path / "m" / "status.pt")
    update_parameters = train.torch_ac.PPOAlgo.update_parameters

    def diverging(self, exps):
        logs = update_parameters(self, exps)
        return {**logs, "value_loss": float("nan")}

    monkeypatch.setattr(train.torch_ac.PPOAlgo, "update_parameters", diverging)
    with pytest.raises(SystemExit) as exit_info:
        train.main(train_args(tmp_path, "m", frames=64))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "training diverged at update 3 (value_loss nan)" in err
    assert json.loads((tmp_path / "m" / "diverged.json").read_text())["update"] == 3
    kept = load_checkpoint(tmp_path / "m" / "status.pt")  # still loadable, and not overwritten
    assert kept["update"] == saved["update"] == 2
    for name, tensor in saved["model_state"].items():
        assert torch.equal(tensor, kept["model_state"][name]), name


def test_a_blown_up_step_is_reported_as_divergence_in_one_line(tmp_path, capsys):
    """With --lr 1e30 the first step leaves non-finite parameters, and the next forward
    pass fails inside torch.distributions before any loss could be checked."""
    err = error_line(capsys, train.main, train_args(tmp_path, "m", "--use_rim", "--lr", "1e30"))
    assert "training diverged at update 1 (parameter norm" in err
    diverged = (tmp_path / "m" / "diverged.json").read_text()
    assert json.loads(diverged)["update"] == 1
    assert "Infinity" not in diverged and "NaN" not in diverged  # standard JSON, for any reader
    assert not (tmp_path / "m" / "status.pt").exists()


def test_models_saved_before_comm_update_existed_load_as_residual():
    data = ModelConfig(use_rim=True, num_actions=7).to_dict()
    del data["comm_update"]
    assert ModelConfig.from_dict(data).comm_update == "residual"
    assert ModelConfig(use_rim=True, num_actions=7).comm_update == "gated"


def test_the_authors_variant_reaches_the_rim_memory_and_binds_on_resume(tmp_path, capsys):
    args = train_args(tmp_path, "authors", "--use_rim", "--variant", "authors",
                      "--rim-option", "tie_break=lower_index")
    train.main(args)
    model, _ = load_model(tmp_path / "authors")
    cell = model.memory_rnn
    assert cell.variant == "authors" and cell.options.inactive_offer == "proposed"
    assert cell.options.tie_break == "lower_index" and cell.comm_output.weight.size(0) == 1
    assert cell.hidden_size == 8 and cell.input_value_size == 64  # this model's sizes, not 4H
    resume = train_args(tmp_path, "authors", "--variant", "default", frames=64)
    assert "--variant default differs from model authors's authors" in error_line(capsys, train.main, resume)


def numbers_in(label: str) -> dict[str, int]:
    """What a column's label says: "N4-S5 (4 rooms, v1)" -> rooms 4, size 5; "16x16" -> size 16."""
    patterns = {"rooms": r"\bN(\d+)|(\d+) rooms", "size": r"\bS(\d+)|(\d+)x\d+"}
    found = {}
    for key, pattern in patterns.items():
        values = {int(a or b) for a, b in re.findall(pattern, label)}
        assert len(values) <= 1, f"the label {label!r} says two {key}"
        found.update({key: values.pop()} if values else {})
    return found


TABLE_COLUMNS = [column for task in TASKS.values() for column in task["columns"]]


@pytest.mark.parametrize("column", TABLE_COLUMNS, ids=lambda column: column.env)
def test_each_table_column_builds_what_its_label_says(column):
    """MultiRoom-N4-S5-v0 built 4 rooms in 2020 and builds 6 today: a column's environment
    must build the rooms, sizes and step limit its label and its Column entry name."""
    said = numbers_in(column.label)
    assert said, f"the label {column.label!r} names no size and no room count"
    env = gym.make(column.env).unwrapped
    for seed in range(3):
        env.reset(seed=seed)
        assert env.max_steps == column.max_steps
        if hasattr(env, "rooms"):  # MultiRoom: rooms of random sizes up to maxRoomSize
            assert len(env.rooms) == column.rooms == said["rooms"]
            assert env.maxRoomSize == column.size == said.get("size", column.size)
            assert all(max(room.size) <= column.size for room in env.rooms)
        else:
            assert env.width == env.height == column.size == said["size"]
            assert "rooms" not in said
    env.close()
