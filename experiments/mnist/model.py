"""Sequence classifiers for sequential MNIST: pixel embedding -> LSTM / GRU / RIM -> linear."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor, nn

from experiments.common import UserError, load_checkpoint, load_state
from rim_core import RIM

MODELS = ("RIM", "LSTM", "GRU")

# main.py option -> RIMCell argument
CELL_OPTIONS = {
    "key_size_input": "input_key_size",
    "value_size_input": "input_value_size",
    "query_size_input": "input_query_size",
    "num_input_heads": "num_input_heads",
    "input_dropout": "input_dropout",
    "key_size_comm": "comm_key_size",
    "value_size_comm": "comm_value_size",
    "query_size_comm": "comm_query_size",
    "num_comm_heads": "num_comm_heads",
    "comm_dropout": "comm_dropout",
    "comm_update": "comm_update",
}
# runs saved before --comm_update existed used the plain residual update
SAVED_DEFAULTS = {"comm_update": "residual"}
# the options that fix the architecture: a resumed run must agree on them
ARCHITECTURE_OPTIONS = ("model", "input_size", "hidden_size", "num_units", "k", "rnn_cell",
                        *CELL_OPTIONS)


class SequenceClassifier(nn.Module):
    """Embeds each binary pixel, runs the recurrent model, classifies from the last step.

    The embedding (not the raw pixel) is the RNN's input, so a black pixel is a learned
    vector, distinct from the RIM input attention's null (zero) input.

    Shape: tokens ``(B, L)`` long in {0, 1} -> logits ``(B, 10)``; with ``return_masks``
    also the RIM activation masks ``(L, B, num_units)`` (None for LSTM/GRU).
    """

    def __init__(self, model: str, input_size: int, hidden_size: int, num_units: int = 6, k: int = 4,
                 rnn_cell: str = "LSTM", num_classes: int = 10, **cell_kwargs) -> None:
        super().__init__()
        if model not in MODELS:
            raise UserError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
        self.model = model
        self.embedding = nn.Embedding(2, input_size)
        if model == "RIM":
            try:
                self.rnn = RIM(input_size, hidden_size, num_units, k, rnn_cell, **cell_kwargs)
            except ValueError as err:  # bad sizes, k > num_units, ...
                raise UserError(str(err)) from None
            features = num_units * hidden_size
        else:
            self.rnn = (nn.LSTM if model == "LSTM" else nn.GRU)(input_size, hidden_size)
            features = hidden_size
        self.head = nn.Linear(features, num_classes)

    def forward(self, tokens: Tensor, return_masks: bool = False):
        x = self.embedding(tokens).transpose(0, 1)  # (L, B, input_size)
        masks = None
        if self.model == "RIM":
            out, _, masks = self.rnn(x, return_masks=True)
            masks = masks[:, :, 0]
        else:
            out, _ = self.rnn(x)
        logits = self.head(out[-1])
        return (logits, masks) if return_masks else logits


def build_model(config: dict) -> SequenceClassifier:
    """The model described by a run's configuration (main.py's arguments)."""
    hidden = config["hidden_size"]
    if hidden is None:
        hidden = 100 if config["model"] == "RIM" else 600
    cell_kwargs = {arg: config.get(option, SAVED_DEFAULTS.get(option))
                   for option, arg in CELL_OPTIONS.items()}
    return SequenceClassifier(config["model"], config["input_size"], hidden, config["num_units"],
                              config["k"], config["rnn_cell"], **cell_kwargs)


def load_run(log_dir: str | Path, checkpoint: str = "best.pt",
             map_location: str | torch.device = "cpu") -> tuple[SequenceClassifier, dict, dict]:
    """Rebuild a trained model from a run directory: returns (model, config, checkpoint)."""
    log_dir = Path(log_dir)
    config_path = log_dir / "config.json"
    if not config_path.is_file():
        raise UserError(f"{log_dir} is not a run directory (no config.json); train with --log_dir first")
    config = json.loads(config_path.read_text())["args"]
    state = load_checkpoint(log_dir / checkpoint, map_location)
    model = build_model(config)
    load_state(model, state["model"], log_dir / checkpoint)
    return model.to(map_location), config, state
