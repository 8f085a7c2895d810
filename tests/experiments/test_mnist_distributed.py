"""Two-process torchrun (gloo, CPU) against one process on the same global batch and seed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from experiments.common import load_checkpoint
from tests.helpers import MNIST_TINY

MAIN = Path(__file__).resolve().parents[2] / "experiments" / "mnist" / "main.py"
# dropout off: each process draws its own dropout noise, which one process cannot match
ARGS = [*MNIST_TINY, "--epochs", "2", "--input_dropout", "0", "--comm_dropout", "0"]


def run(log_dir: Path, nproc: int) -> None:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*launcher, str(MAIN), *ARGS, "--log_dir", str(log_dir)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
    run(tmp_path / "one", 1)
    run(tmp_path / "two", 2)
    one = load_checkpoint(tmp_path / "one" / "last.pt")
    two = load_checkpoint(tmp_path / "two" / "last.pt")
    assert one["progress"]["step"] == two["progress"]["step"] == 12
    for name, tensor in one["model"].items():
        torch.testing.assert_close(two["model"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    assert len(two["rng"]) == 2  # every process's RNG state, for an exact resume

    # rank 0 alone wrote: one set of outputs, no leftovers of concurrent writers
    names = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert [n for n in names if not n.startswith("events")] == \
        [".lock", "best.pt", "config.json", "epochs", "last.pt", "results.json"]  # rank 0's lock
    assert sorted(p.name for p in (tmp_path / "two" / "epochs").iterdir()) == ["epoch_001.pt", "epoch_002.pt"]
    assert len([n for n in names if n.startswith("events")]) == 1
