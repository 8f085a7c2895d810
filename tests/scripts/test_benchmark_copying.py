import torch
from benchmark_copying import update_fn
from torch import nn

from rim_core import RIM


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
