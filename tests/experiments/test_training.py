"""experiments/training.py: signal handling and resume checks shared by the trainers."""

import argparse
import os
import signal
import time

import pytest

from experiments.common import UserError
from experiments.training import Interrupted, check_resumable, signals_held_back, stop_on_signals


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
