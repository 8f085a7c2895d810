"""What the three trainers do to a run folder they cannot have: one that another run holds,
or one whose files cannot be written (full disk, file-size limit, read-only folder). Each
ends in one line and a non-zero exit, and leaves the folder as it was."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import COPYING_TINY, MNIST_TINY, minigrid_train_args

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {"copying": ROOT / "experiments" / "copying" / "main.py",
           "mnist": ROOT / "experiments" / "mnist" / "main.py",
           "minigrid": ROOT / "experiments" / "minigrid" / "train.py"}


def trainer_command(trainer: str, folder: Path, *extra: str) -> list[str]:
    """A tiny training run of ``trainer`` whose run folder is ``folder``."""
    if trainer == "copying":
        args = [*COPYING_TINY, "--log-dir", str(folder)]
    elif trainer == "mnist":
        args = [*MNIST_TINY, "--epochs", "1", "--log_dir", str(folder)]
    else:
        args = minigrid_train_args(folder.parent, folder.name, "--use_rim")
    return [sys.executable, str(SCRIPTS[trainer]), *args, *extra]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The error line of a run that failed as it should: exit 2, no traceback, one line
    (after the progress bar, which also goes to stderr)."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and proc.stderr.rstrip().endswith(errors[0]), proc.stderr
    return errors[0]


@pytest.mark.slow
@pytest.mark.parametrize("trainer", sorted(SCRIPTS))
def test_a_folder_held_by_a_live_run_is_refused_untouched(tmp_path, trainer):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; from experiments.common import hold_run_dir; "
                               f"hold_run_dir({str(folder)!r}, '--x'); print('held', flush=True); "
                               "time.sleep(120)"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = snapshot(folder)
        proc = subprocess.run(trainer_command(trainer, folder), capture_output=True, text=True, timeout=300)
        line = one_line_error(proc)
        assert f"{folder} is in use by another run (process {holder.pid})" in line
        assert snapshot(folder) == before
    finally:
        holder.kill()
        holder.wait()
    # once the holder is gone, the folder is free again (a kill -9 releases it too)
    proc = subprocess.run(trainer_command(trainer, folder), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def limit_file_size(size: int):
    """A preexec_fn: files of the child may not grow past ``size`` bytes (ulimit -f)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


@pytest.mark.slow
@pytest.mark.parametrize("trainer", sorted(SCRIPTS))
def test_a_checkpoint_that_cannot_be_written_ends_in_one_line(tmp_path, trainer):
    folder = tmp_path / "run"
    proc = subprocess.run(trainer_command(trainer, folder), capture_output=True, text=True, timeout=300,
                          preexec_fn=limit_file_size(8192))
    line = one_line_error(proc)
    assert "could not write" in line and "File too large" in line
    assert not [p for p in folder.rglob("*.tmp")]  # no half-written temporary file is left


@pytest.mark.slow
@pytest.mark.parametrize("trainer, flag", [("copying", "--eval-only"), ("mnist", "--eval-only")])
def test_eval_only_checks_it_can_write_before_it_evaluates(tmp_path, trainer, flag):
    folder = tmp_path / "run"
    subprocess.run(trainer_command(trainer, folder), check=True, capture_output=True, timeout=300)
    (folder / "results.json").unlink()
    before = snapshot(folder)
    proc = subprocess.run(trainer_command(trainer, folder, flag), capture_output=True, text=True,
                          timeout=300, preexec_fn=limit_file_size(0))
    line = one_line_error(proc)
    assert f"could not write {folder}" in line and "File too large" in line
    assert "test accuracy" not in proc.stdout and "by test length" not in proc.stdout  # nothing evaluated
    assert snapshot(folder) == before
