"""Sequence models for the copying and adding tasks: encoder -> LSTM / GRU / RIM -> linear."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from experiments import training
from experiments.copying.tasks import ADDING_FEATURES, VOCAB
from experiments.recurrent import make_rnn, run_rnn

INITS = ("pytorch", "authors")


class TaskModel(nn.Module):
    """As the authors' models: dropout on the encoded input and on the recurrent output.

    * copying: tokens ``(B, L)`` long -> embedding -> RNN -> logits ``(B, L, 10)`` at every step;
    * adding: ``(B, L, 3)`` float -> linear -> RNN -> the predicted sum ``(B,)`` from the last step.

    With ``return_masks`` also the RIM activation masks ``(L, B, num_units)`` (None for LSTM/GRU).
    """

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.task = config["task"]
        size = config["input_size"]
        if self.task == "copying":
            self.encoder: nn.Module = nn.Embedding(VOCAB, size)
        else:
            self.encoder = nn.Linear(ADDING_FEATURES, size)
        self.drop = nn.Dropout(config["dropout"])
        self.rnn, features = make_rnn(config)
        self.decoder = nn.Linear(features, VOCAB if self.task == "copying" else 1)
        if config.get("init", "pytorch") == "authors":
            init_as_authors(self)

    def forward(self, inputs: Tensor, return_masks: bool = False):
        out, masks = run_rnn(self.rnn, self.drop(self.encoder(inputs)).transpose(0, 1))
        out = self.drop(out)
        if self.task == "copying":
            y = self.decoder(out).transpose(0, 1)
        else:
            y = self.decoder(out[-1]).squeeze(-1)
        return (y, masks) if return_masks else y


@torch.no_grad()
def init_as_authors(model: TaskModel) -> None:
    """The initial weight scales of the authors' copying and adding code (event_based/) for
    the encoder and decoder: weights U(-0.1, 0.1), decoder bias 0. A RIM's own are its
    ``RIMOptions.init`` (``"authors"`` with ``--init authors``, see rim_core/authors.py);
    ``nn.LSTM`` / ``nn.GRU`` baselines keep theirs."""
    nn.init.uniform_(model.encoder.weight, -0.1, 0.1)
    nn.init.uniform_(model.decoder.weight, -0.1, 0.1)
    nn.init.zeros_(model.decoder.bias)


def load_run(log_dir: str | Path, checkpoint: str = "best.pt",
             map_location: str | torch.device = "cpu") -> tuple[TaskModel, dict, dict]:
    """Rebuild a trained model from a run directory: returns (model, config, checkpoint)."""
    return training.load_run(log_dir, TaskModel, checkpoint, map_location)
