"""experiments/common.py: atomic writes, subnormal flushing."""

import os

import pytest
import torch

from experiments.common import _UMASK, atomic_write_bytes, cpu_name, flush_denormals, write_json


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"previous")

    def half_then_fail(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_bytes(path, half_then_fail)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_written_files_get_the_usual_permissions(tmp_path):
    write_json(tmp_path / "results.json", {"accuracy": 1.0})
    assert os.stat(tmp_path / "results.json").st_mode & 0o777 == 0o666 & ~_UMASK


def test_cpu_name_names_every_preloaded_library(monkeypatch):
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    plain = cpu_name()
    assert plain and "LD_PRELOAD" not in plain
    # the loader takes spaces and colons between entries
    monkeypatch.setenv("LD_PRELOAD", "/opt/a/libx.so:build/liby.so  libz.so")
    assert cpu_name() == plain + ", LD_PRELOAD=libx.so liby.so libz.so"


@pytest.fixture
def subnormals_kept():
    torch.set_flush_denormal(False)
    yield torch.tensor([1e-39])  # subnormal in float32 (smallest normal: 1.2e-38)
    torch.set_flush_denormal(False)


def test_flush_denormals_computes_subnormals_as_zero(subnormals_kept):
    assert (subnormals_kept * 1.0).item() > 0
    flush_denormals()
    assert (subnormals_kept * 1.0).item() == 0
    assert (torch.tensor([2e-38]) * 1.0).item() > 0  # normal floats are untouched
