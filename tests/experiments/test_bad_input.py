"""Inputs that a new user gave the supervised trainers and that once ended in a traceback or
were silently ignored: each is now a one-line error, exit 2, with the run folder untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from experiments.copying.main import main as copying_main
from experiments.mnist.main import main as mnist_main
from tests.helpers import COPYING_TINY, MNIST_TINY

MAINS = {"copying": copying_main, "mnist": mnist_main}


def tiny(trainer: str, log_dir: Path, *extra: str) -> list[str]:
    if trainer == "copying":
        return [*COPYING_TINY, "--log-dir", str(log_dir), *extra]
    return [*MNIST_TINY, "--epochs", "1", "--log_dir", str(log_dir), *extra]


def error_line(capsys, trainer: str, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        MAINS[trainer](argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("error: ") and not any("Traceback" in line for line in err), err
    return err[-1]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, synthetic_mnist_dir) -> dict[str, Path]:
    """One finished tiny run of each trainer (MNIST on the synthetic digits: this fixture
    outlives the per-test MNIST_DIR that conftest.py sets)."""
    root = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MNIST_DIR", str(synthetic_mnist_dir))
        for trainer, main in MAINS.items():
            main(tiny(trainer, root / trainer))
    return {trainer: root / trainer for trainer in MAINS}


@pytest.mark.parametrize("trainer", sorted(MAINS))
@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_numpy_cannot_take_is_refused(tmp_path, capsys, trainer, seed):
    line = error_line(capsys, trainer, tiny(trainer, tmp_path / "run", "--seed", seed))
    assert f"--seed must be between 0 and 2**32 - 1, got {seed}" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("trainer, flag", [("copying", "--hidden-size"), ("mnist", "--hidden_size")])
def test_a_model_too_large_for_memory_is_one_line(tmp_path, capsys, trainer, flag):
    line = error_line(capsys, trainer, tiny(trainer, tmp_path / "run", flag, str(10**9)))
    assert "not enough memory for this run (it tried to allocate" in line


def test_an_evaluation_set_larger_than_memory_is_refused_before_anything_is_written(tmp_path, capsys):
    """Built of many small tensors, it would never fail an allocation: the kernel would kill
    the run without a word once the machine's memory is gone."""
    line = error_line(capsys, "copying", tiny("copying", tmp_path / "run", "--eval-examples", str(10**8)))
    assert "--eval-examples 100000000 sequences of length 29 need about" in line
    assert not (tmp_path / "run").exists()


def test_images_too_large_for_memory_are_one_line(tmp_path, capsys):
    line = error_line(capsys, "mnist", tiny("mnist", tmp_path / "run", "--test_sizes", "100000"))
    assert "not enough memory for this run" in line


@pytest.mark.parametrize("changed, message", [
    (["--clip_grad", "0"], "--clip-grad is 0.0 but the run"),
    (["--eval_examples", "8"], "--eval-examples is 8 but the run"),
    (["--test_sizes", "7"], "--test-sizes is [7] but the run"),
])
def test_mnist_resume_refuses_changed_evaluation_and_clipping(finished, capsys, changed, message):
    before = snapshot(finished["mnist"])
    argv = tiny("mnist", finished["mnist"], "--loadsaved", *changed)
    argv[argv.index("--epochs") + 1] = "2"
    assert message in error_line(capsys, "mnist", argv)
    assert snapshot(finished["mnist"]) == before


@pytest.mark.parametrize("trainer, flags, message", [
    ("mnist", ["--model", "LSTM"], "--eval-only: --model LSTM contradicts the run"),
    ("mnist", ["--hidden_size", "30"], "--eval-only: --hidden-size 30 contradicts the run"),
    ("copying", ["--num-units", "5"], "--eval-only: --num-units 5 contradicts the run"),
    ("copying", ["--task", "adding"], "--eval-only: --task adding contradicts the run"),
])
def test_eval_only_refuses_model_flags_that_contradict_the_run(finished, capsys, trainer, flags, message):
    before = snapshot(finished[trainer])
    log_flag = "--log-dir" if trainer == "copying" else "--log_dir"
    assert message in error_line(capsys, trainer, ["--eval-only", log_flag, str(finished[trainer]), *flags])
    assert snapshot(finished[trainer]) == before


@pytest.mark.parametrize("trainer, other, message", [
    ("copying", "mnist", "holds a sequential MNIST run, not a copying or adding one"),
    ("mnist", "copying", "holds a copying or adding run, not an MNIST one"),
])
def test_eval_only_names_a_run_of_the_other_trainer(finished, capsys, trainer, other, message):
    before = snapshot(finished[other])
    log_flag = "--log-dir" if trainer == "copying" else "--log_dir"
    assert message in error_line(capsys, trainer, ["--eval-only", log_flag, str(finished[other])])
    assert snapshot(finished[other]) == before


def test_a_compilation_that_fails_falls_back_to_the_same_eager_run(tmp_path, capsys, monkeypatch):
    """A damaged file in torch's compile cache fails every compilation with an ImportError
    (pytorch#102539); the run goes on eagerly, with the results of a run that never compiled."""
    mnist_main(tiny("mnist", tmp_path / "eager"))
    capsys.readouterr()

    def damaged_cache(fn, **kwargs):
        def compiled(*args):
            raise ImportError("/tmp/torchinductor_root/xy/cxy.so: file too short")
        return compiled

    monkeypatch.setattr(torch, "compile", damaged_cache)
    mnist_main([*tiny("mnist", tmp_path / "compiled"), "--compile"])
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "torch.compile failed (ImportError: " in warnings[0]
    eager, compiled = (json.loads((tmp_path / name / "results.json").read_text())
                       for name in ("eager", "compiled"))
    assert compiled["test_accuracy"] == eager["test_accuracy"]
    assert compiled["history"][0]["val"] == eager["history"][0]["val"]
