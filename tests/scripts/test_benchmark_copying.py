import json
import sys

import torch
from benchmark_copying import update_fn
from torch import nn

from experiments.copying.main import main as copying_main
from rim_core import RIM
from tests.experiments.test_copying import TINY


def test_each_row_times_the_tables_model_and_trains_it():
    models = {row: update_fn(row, "copying", 3, 4) for row in ("RIM (6,2)", "LSTM-300")}
    update, rim = models["RIM (6,2)"]
    assert isinstance(rim.rnn, RIM) and (rim.rnn.num_units, rim.rnn.k) == (6, 2)
    assert rim.encoder.embedding_dim == 600 and rim.drop.p == 0.5  # main.py's copying defaults
    lstm = models["LSTM-300"][1].rnn
    assert isinstance(lstm, nn.LSTM) and lstm.hidden_size == 300
    before = [p.detach().clone() for p in rim.parameters()]
    update()
    assert any(not torch.equal(a, b) for a, b in zip(before, rim.parameters()))


def test_the_denormal_benchmark_times_a_runs_last_checkpoint_and_leaves_flushing_off(tmp_path, monkeypatch):
    import benchmark_denormals
    copying_main([*TINY, "--updates", "3", "--log-dir", str(tmp_path / "run")])
    torch.set_flush_denormal(False)  # the trainer turned it on for this process
    out = tmp_path / "denormals.json"
    monkeypatch.setattr(sys, "argv", ["benchmark_denormals.py", str(tmp_path / "run"), "--rounds", "1",
                                      "--repeats", "1", "--out", str(out)])
    benchmark_denormals.main()
    result = json.loads(out.read_text())
    assert result["trained_updates"] == 3 and result["model"] == "RIM"
    assert result["slowdown_without_flush"] == result["trained_seconds"] / result["trained_flushed_seconds"]
    assert (torch.tensor([1e-39]) * 1.0).item() > 0  # the process is left as the benchmark found it
