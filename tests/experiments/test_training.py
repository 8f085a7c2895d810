"""experiments/training.py: signal handling and resume checks shared by the trainers."""

import argparse
import json
import os
import signal
import time

import pytest
import torch

from experiments.common import DIVERGED_FILE, TrainingDiverged, UserError, rng_state
from experiments.training import (
    Checkpoints,
    Interrupted,
    check_resumable,
    clipped_step,
    signals_held_back,
    stop_on_signals,
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_the_held_back_block_is_delivered_after_it(signum):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}  # SIG_IGN under nohup
    finished = []
    with pytest.raises(Interrupted) as info:
        with signals_held_back():
            os.kill(os.getpid(), signum)
            time.sleep(0.05)  # Python runs signal handlers between bytecodes: here, in the block
            finished.append(True)
    assert finished == [True] and info.value.signum == signum
    assert {s: signal.getsignal(s) for s in before} == before  # the handlers are restored


def test_sigterm_stops_a_training_loop_like_ctrl_c():
    with pytest.raises(KeyboardInterrupt) as info:  # what the trainers' save-and-exit path catches
        with stop_on_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
    assert info.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_resuming_under_other_options_names_the_option():
    args = argparse.Namespace(log_dir="runs/x", train_len=60, lr=1e-3)
    check_resumable(args, {"train_len": 60, "lr": 1e-3}, ("train_len", "lr"))
    with pytest.raises(UserError, match="--train-len is 60 but the run in runs/x used 50"):
        check_resumable(args, {"train_len": 50, "lr": 1e-3}, ("train_len", "lr"))
    with pytest.raises(UserError, match="no run to resume"):
        check_resumable(args, {}, ("lr",))
    # an option that runs saved before it existed used a known value
    check_resumable(args, {"lr": 1e-3}, ("train_len", "lr"), saved_defaults={"train_len": 60})


def linear_with_gradient(norm: float) -> tuple[torch.nn.Linear, torch.optim.SGD]:
    """A layer whose gradient (over all its parameters) has L2 norm ``norm``, and SGD at lr 1."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    for p in layer.parameters():
        p.grad = torch.ones_like(p)
    total = torch.cat([p.grad.flatten() for p in layer.parameters()]).norm()
    for p in layer.parameters():
        p.grad *= norm / total
    return layer, torch.optim.SGD(layer.parameters(), lr=1.0)


def test_clipped_step_clips_the_global_norm_then_steps(tmp_path):
    layer, optimizer = linear_with_gradient(10.0)
    before = [p.detach().clone() for p in layer.parameters()]
    norm = clipped_step(layer.parameters(), optimizer, None, 1.0, 1, tmp_path, lambda: "none")
    assert norm == pytest.approx(10.0)
    steps = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, layer.parameters())])
    assert steps.norm().item() == pytest.approx(1.0, rel=1e-5)  # lr 1: the step is the clipped gradient
    # clip 0: no clipping, the whole gradient is stepped
    layer, optimizer = linear_with_gradient(10.0)
    before = [p.detach().clone() for p in layer.parameters()]
    assert clipped_step(layer.parameters(), optimizer, None, 0.0, 1, tmp_path, lambda: "none") is None
    steps = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, layer.parameters())])
    assert steps.norm().item() == pytest.approx(10.0, rel=1e-5)


def test_clipped_step_stops_on_an_infinite_gradient_before_stepping(tmp_path):
    layer, optimizer = linear_with_gradient(1.0)
    layer.weight.grad[0, 0] = float("inf")
    before = [p.detach().clone() for p in layer.parameters()]
    with pytest.raises(TrainingDiverged, match=r"update 7 \(grad_norm inf\).*runs/x/last.pt"):
        clipped_step(layer.parameters(), optimizer, None, 1.0, 7, tmp_path, lambda: "runs/x/last.pt")
    assert all(torch.equal(b, p) for b, p in zip(before, layer.parameters()))
    assert json.loads((tmp_path / DIVERGED_FILE).read_text())["update"] == 7


def test_a_run_directory_is_never_overwritten_nor_resumed_by_another_number_of_processes(tmp_path):
    layer = torch.nn.Linear(2, 2)
    run = Checkpoints(tmp_path, {"model": layer}, {"step": 3}, {})
    run.refuse_overwrite()  # nothing there yet
    run.save("last.pt", [rng_state()])
    saved = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(UserError, match="already holds a run; resume it with --loadsaved"):
        Checkpoints(tmp_path, {"model": torch.nn.Linear(2, 2)}, {"step": 0}, {}).refuse_overwrite()
    with pytest.raises(UserError, match=r"written by 1 process\(es\); resume it with as many \(got 2\)"):
        Checkpoints(tmp_path, {"model": torch.nn.Linear(2, 2)}, {"step": 0}, {}).resume("cpu", 0, 2)
    assert (tmp_path / "last.pt").read_bytes() == saved
