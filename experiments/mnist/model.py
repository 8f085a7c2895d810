"""Sequence classifiers for sequential MNIST: pixel embedding -> LSTM / GRU / RIM -> linear."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from experiments import training
from experiments.recurrent import make_rnn, run_rnn


class SequenceClassifier(nn.Module):
    """Embeds each binary pixel, runs the recurrent model, classifies from the last step.

    The embedding (not the raw pixel) is the RNN's input, so a black pixel is a learned
    vector, distinct from the RIM input attention's null (zero) input.

    Shape: tokens ``(B, L)`` long in {0, 1} -> logits ``(B, 10)``; with ``return_masks``
    also the RIM activation masks ``(L, B, num_units)`` (None for LSTM/GRU).
    """

    def __init__(self, config: dict, num_classes: int = 10) -> None:
        super().__init__()
        self.embedding = nn.Embedding(2, config["input_size"])
        self.rnn, features = make_rnn(config)
        self.head = nn.Linear(features, num_classes)

    def forward(self, tokens: Tensor, return_masks: bool = False):
        out, masks = run_rnn(self.rnn, self.embedding(tokens).transpose(0, 1))  # (L, B, input_size) in
        logits = self.head(out[-1])
        return (logits, masks) if return_masks else logits


def build_model(config: dict) -> SequenceClassifier:
    """The model described by a run's configuration (main.py's arguments)."""
    return SequenceClassifier(config)


def load_run(log_dir: str | Path, checkpoint: str = "best.pt",
             map_location: str | torch.device = "cpu") -> tuple[SequenceClassifier, dict, dict]:
    """Rebuild a trained model from a run directory: returns (model, config, checkpoint)."""
    return training.load_run(log_dir, build_model, checkpoint, map_location)
