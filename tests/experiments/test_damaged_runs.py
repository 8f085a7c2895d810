"""Every entry point that reads a run folder fails cleanly on each damaged file it reads.

One tiny real run per experiment is made once (module fixtures); each case copies it,
damages one file and runs the entry point's ``main``, which must exit non-zero with one
line on stderr, ``error: ...`` naming the file, and leave every file it found as it was.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from experiments.copying import main as copying_main
from experiments.minigrid import evaluate, train, visualize
from experiments.mnist import main as mnist_main
from experiments.mnist import plot_activations
from tests.helpers import COPYING_TINY, MINIGRID_ENV, MNIST_TINY, minigrid_train_args

MINIGRID_MODEL = "rim"


# ---------------------------------------------------------------- damage, bytes -> bytes


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def garbage(data: bytes) -> bytes:
    return bytes(range(256)) * 4  # not UTF-8, not JSON, not a zip archive


def not_json(data: bytes) -> bytes:
    return b"this run's configuration\n"


def empty_object(data: bytes) -> bytes:
    return b"{}\n"


def missing_keys(data: bytes) -> bytes:
    """The same file with every argument but the model's name gone."""
    config = json.loads(data)
    config["args"] = {"model": config["args"]["model"]}
    return json.dumps(config).encode()


CONFIG_DAMAGE = (truncated, not_json, empty_object, missing_keys)
CHECKPOINT_DAMAGE = (truncated, garbage)


def damage_for(file: str) -> tuple[Callable[[bytes], bytes], ...]:
    if file.endswith(".json"):
        return CONFIG_DAMAGE
    if file.endswith(".pt"):
        return CHECKPOINT_DAMAGE
    return (garbage,)  # log.csv


# ---------------------------------------------------------------- entry points


@dataclass(frozen=True)
class EntryPoint:
    name: str
    run: str  # which tiny run it reads: copying, mnist or minigrid
    main: Callable[[list[str]], None]
    argv: Callable[[Path, Path], list[str]]  # (the run's folder, a scratch folder) -> arguments
    files: tuple[str, ...]  # the run folder's files it reads, relative to the folder


ENTRY_POINTS = (
    EntryPoint("copying --loadsaved", "copying", copying_main.main,
               lambda run, tmp: [*COPYING_TINY, "--log-dir", str(run), "--loadsaved"],
               ("config.json", "last.pt", "best.pt")),
    EntryPoint("copying --eval-only", "copying", copying_main.main,
               lambda run, tmp: [*COPYING_TINY, "--log-dir", str(run), "--eval-only"],
               ("config.json", "best.pt", "last.pt")),
    EntryPoint("mnist --loadsaved", "mnist", mnist_main.main,
               lambda run, tmp: [*MNIST_TINY, "--epochs", "1", "--log_dir", str(run), "--loadsaved"],
               ("config.json", "last.pt", "best.pt", "epochs/epoch_001.pt")),
    EntryPoint("mnist --eval-only", "mnist", mnist_main.main,
               lambda run, tmp: ["--eval-only", "--log-dir", str(run), "--eval_examples", "64",
                                 "--test-sizes", "7", "9"],
               ("config.json", "best.pt", "last.pt", "epochs/epoch_001.pt")),
    EntryPoint("mnist plot_activations", "mnist", plot_activations.main,
               lambda run, tmp: ["--log_dir", str(run), "--size", "6", "--num", "1",
                                 "--out", str(tmp / "activations.png")],
               ("config.json", "best.pt")),
    EntryPoint("minigrid train (resume)", "minigrid", train.main,
               lambda run, tmp: minigrid_train_args(run.parent, run.name, "--use_rim", frames=48),
               ("status.pt", "log.csv")),
    EntryPoint("minigrid evaluate", "minigrid", evaluate.main,
               lambda run, tmp: ["--env", MINIGRID_ENV, "--model", run.name, "--storage", str(run.parent),
                                 "--episodes", "1", "--procs", "1"],
               ("status.pt",)),
    EntryPoint("minigrid visualize", "minigrid", visualize.main,
               lambda run, tmp: ["--env", MINIGRID_ENV, "--model", run.name, "--storage", str(run.parent),
                                 "--gif", str(tmp / "agent.gif"), "--episodes", "1", "--max-frames", "2"],
               ("status.pt",)),
)

CASES = [pytest.param(entry, file, damage, id=f"{entry.name}-{file}-{damage.__name__}")
         for entry in ENTRY_POINTS for file in entry.files for damage in damage_for(file)]


# ---------------------------------------------------------------- the tiny runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_mnist_dir) -> dict[str, Path]:
    """One finished tiny run per experiment: a RIM in each (plot_activations needs one)."""
    root = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    copying_main.main([*COPYING_TINY, "--log-dir", str(root / "copying")])
    mnist_main.main([*MNIST_TINY, "--epochs", "1", "--log_dir", str(root / "mnist"),
                     "--data_dir", str(synthetic_mnist_dir)])
    train.main(minigrid_train_args(root / "storage", MINIGRID_MODEL, "--use_rim"))
    torch.set_num_threads(threads)  # train.py sets its own for the rest of the process
    return {"copying": root / "copying", "mnist": root / "mnist",
            "minigrid": root / "storage" / MINIGRID_MODEL}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("entry", "file", "damage"), CASES)
def test_a_damaged_run_file_ends_in_one_line_naming_it_and_is_left_as_it_was(
        runs, tmp_path, capsys, entry, file, damage):
    run = tmp_path / "storage" / runs[entry.run].name
    shutil.copytree(runs[entry.run], run)
    target = run / file
    assert target.is_file(), f"the tiny {entry.run} run has no {file}"
    target.write_bytes(damage(target.read_bytes()))
    before = snapshot(run)
    capsys.readouterr()
    threads = torch.get_num_threads()
    try:
        with pytest.raises(SystemExit) as exit_info:
            entry.main(entry.argv(run, tmp_path))
    finally:
        torch.set_num_threads(threads)
    stderr = capsys.readouterr().err
    assert exit_info.value.code not in (0, None)
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert Path(file).name in lines[0], lines[0]
    after = snapshot(run)
    assert {name: after.get(name) for name in before} == before  # nothing it found was overwritten
