"""The copying and adding tasks: seeded batch generators, losses and metrics.

Copying (as the authors' ``copying_data.py``): 10 digits drawn uniformly from 1..8, then
a dormant span of ``T - 1`` blanks (0), the marker (9) and 10 blanks; the target is blank
for the first ``T + 10`` steps, then the 10 digits. Length ``T + 20``.

Adding (as the authors' ``adding_data.py``): ``T`` steps, each with a value drawn from
U[0, 1] and two marker channels; one step in the first half and one in the second half
are marked; the target is the sum of their two values.

Every batch comes from its own generator, seeded from a tuple of integers (:func:`stream`),
so the data of a run depends only on its seed and the update, and evaluation sets are
identical across models and seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

BLANK, MARKER = 0, 9
NUM_DIGITS = 10  # copied per sequence
VOCAB = 10  # blank, digits 1..8, marker
ADDING_FEATURES = 3  # value, first marker, second marker

# generator streams: training batches per (seed, update); evaluation sets per (split, T)
TRAIN_STREAM, VAL_STREAM, TEST_STREAM = 0, 1, 2
EVAL_SEED = 20191024  # fixed: the same evaluation sets for every model and seed


def stream(*parts: int) -> torch.Generator:
    """A generator seeded from integers (SeedSequence mixes them: no two tuples collide in practice)."""
    seed = int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator().manual_seed(seed)


def copying_batch(n: int, T: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` copying sequences with dormant span ``T``: inputs and targets, both ``(n, T + 20)`` long."""
    digits = torch.randint(1, 9, (n, NUM_DIGITS), generator=generator)
    blanks = torch.full((n, T + 20), BLANK, dtype=torch.long)
    inputs, targets = blanks.clone(), blanks
    inputs[:, :NUM_DIGITS] = digits
    inputs[:, T + NUM_DIGITS - 1] = MARKER
    targets[:, T + NUM_DIGITS:] = digits
    return inputs, targets


def adding_batch(n: int, T: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` adding sequences of length ``T`` (>= 2): inputs ``(n, T, 3)`` float, targets ``(n,)``."""
    values = torch.rand(n, T, generator=generator)
    half = T // 2
    first = torch.randint(0, half, (n,), generator=generator)
    second = half + torch.randint(0, T - half, (n,), generator=generator)
    rows = torch.arange(n)
    inputs = torch.zeros(n, T, ADDING_FEATURES)
    inputs[:, :, 0] = values
    inputs[rows, first, 1] = 1.0
    inputs[rows, second, 2] = 1.0
    return inputs, values[rows, first] + values[rows, second]


def copying_phases(inputs: Tensor) -> dict[str, Tensor]:
    """Where each phase of a copying sequence lies: name -> ``(n, T + 20)`` bool."""
    length = inputs.shape[1]
    steps = torch.arange(length).expand_as(inputs)
    marker = length - NUM_DIGITS - 1
    return {"digits": steps < NUM_DIGITS, "dormant": (steps >= NUM_DIGITS) & (steps < marker),
            "marker": steps == marker, "recall": steps > marker}


def adding_phases(inputs: Tensor) -> dict[str, Tensor]:
    marked = inputs[:, :, 1:].sum(-1) > 0
    return {"marked": marked, "unmarked": ~marked}


class CopyingScores:
    """Accumulates, over batches, the three ways the copying task is scored:

    * ``ce_all``: cross-entropy averaged over all ``T + 20`` positions, blanks included
      (the official loss and reported number; blanks alone make it small at large T);
    * ``ce_copy``: cross-entropy over the 10 copied digits only, per digit;
    * ``digit_accuracy`` and ``sequence_accuracy`` (%): digits right, whole sequences right.
    """

    def __init__(self) -> None:
        self.ce_all = self.ce_copy = 0.0
        self.positions = self.digits = self.digits_right = self.sequences = self.sequences_right = 0

    def add(self, logits: Tensor, targets: Tensor) -> None:
        """``logits (n, L, VOCAB)``, ``targets (n, L)``."""
        ce = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")  # (n, L)
        right = logits[:, -NUM_DIGITS:].argmax(-1) == targets[:, -NUM_DIGITS:]
        self.ce_all += ce.sum().item()
        self.ce_copy += ce[:, -NUM_DIGITS:].sum().item()
        self.positions += ce.numel()
        self.digits += right.numel()
        self.digits_right += right.sum().item()
        self.sequences += len(right)
        self.sequences_right += right.all(-1).sum().item()

    def result(self) -> dict[str, float]:
        return {"ce_all": self.ce_all / self.positions, "ce_copy": self.ce_copy / self.digits,
                "digit_accuracy": 100.0 * self.digits_right / self.digits,
                "sequence_accuracy": 100.0 * self.sequences_right / self.sequences}


class AddingScores:
    """Mean squared error of the predicted sum, beside that of always predicting 1.0 (the
    mean of the target: the trivial baseline, about 1/6)."""

    def __init__(self) -> None:
        self.se = self.baseline_se = 0.0
        self.n = 0

    def add(self, predictions: Tensor, targets: Tensor) -> None:
        """``predictions (n,)``, ``targets (n,)``."""
        self.se += (predictions.float() - targets).pow(2).sum().item()
        self.baseline_se += (1.0 - targets).pow(2).sum().item()
        self.n += len(targets)

    def result(self) -> dict[str, float]:
        return {"mse": self.se / self.n, "baseline_mse": self.baseline_se / self.n}


@dataclass(frozen=True)
class Task:
    name: str
    batch: Callable[[int, int, torch.Generator], tuple[Tensor, Tensor]]
    loss: Callable[[Tensor, Tensor], Tensor]
    scores: Callable[[], CopyingScores | AddingScores]
    phases: Callable[[Tensor], dict[str, Tensor]]
    select: str  # validation metric that picks best.pt (lower is better)
    min_len: int  # shortest T the generator supports
    # the authors' settings where the paper is silent (event_based/train_*.py, experiment_*.sh)
    dropout: float
    clip_grad: float
    updates: int

    def length(self, T: int) -> int:
        """Sequence length at dormant span / length ``T``."""
        return T + 2 * NUM_DIGITS if self.name == "copying" else T


def _copying_loss(logits: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(logits.float().transpose(1, 2), targets)  # all positions, as the official code


def _adding_loss(predictions: Tensor, targets: Tensor) -> Tensor:
    return F.mse_loss(predictions.float(), targets)


TASKS = {
    # 200 epochs x 200 batches; clip 1.0; dropout 0.5 (train_copying.py, experiment_copying.sh)
    "copying": Task("copying", copying_batch, _copying_loss, CopyingScores, copying_phases, "ce_copy",
                    min_len=1, dropout=0.5, clip_grad=1.0, updates=40_000),
    # 100 epochs x 30,000 / 64 batches; clip 0.1; dropout 0.2 (train_adding.py, experiment_adding.sh)
    "adding": Task("adding", adding_batch, _adding_loss, AddingScores, adding_phases, "mse",
                   min_len=2, dropout=0.2, clip_grad=0.1, updates=100 * (30_000 // 64)),
}
