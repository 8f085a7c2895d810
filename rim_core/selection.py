"""Selection rules: which k of the N units are active at a step, given each unit's relevance.

A rule takes ``relevance (N, B)`` (the attention each unit pays to the real input, relative to
the null input) and ``k``, and returns the ``(N, B)`` bool mask of active units, exactly k per
column. Units with higher relevance win; the rules differ only where relevances tie. Ties are
not rare: from the zero state (no biases) every unit's relevance is exactly 0.5, so every t=0
is an all-way tie, and a unit that has never been active keeps tying at 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def lower_index_wins(relevance: Tensor, k: int) -> Tensor:
    """Ties go to the lower unit index, on every device: the first k of a stable sort.

    Computed from comparisons, not by sorting, so that ``torch.jit.trace`` and both ONNX
    exporters take it: unit n's place in the stable descending order is the number of units
    that beat it, those with a higher relevance and the lower-indexed ones with an equal
    one. A NaN counts as +inf, which puts it first, as ``torch.sort`` does (a relevance is an
    attention probability, never infinite).
    """
    n = relevance.size(0)
    relevance = relevance.nan_to_num(nan=math.inf, posinf=math.inf, neginf=-math.inf)
    other, unit = relevance.unsqueeze(1), relevance.unsqueeze(0)  # (N, 1, B), (1, N, B)
    lower_index = torch.ones(n, n, dtype=torch.bool, device=relevance.device).triu(1).unsqueeze(-1)
    beats = torch.where(lower_index, other >= unit, other > unit)  # (other N, unit N, B)
    return beats.sum(0) < k


def topk_order(relevance: Tensor, k: int) -> Tensor:
    """Ties go where ``torch.topk`` puts them, as in the authors' released code.

    Their code ranks the null input's probability ``1 - relevance``, ``(B, N)``, and makes the
    ``N - k`` largest inactive. ``torch.topk``'s order among equal values is unspecified: it
    depends on the device and the torch version (on CPU, torch 2.14, an all-way tie of 6 units
    with k=4 leaves units 3 and 5 inactive). Computed exactly as theirs, so that it ties the
    same way.
    """
    n = relevance.size(0)
    null = (1 - relevance).t()
    inactive = torch.topk(null, n - k, dim=1).indices
    # out of place, from a tensor: torch.jit.trace and the TorchScript ONNX exporter have no
    # in-place scatter of a bool scalar
    mask = torch.ones_like(null, dtype=torch.bool)
    return mask.scatter(1, inactive, torch.zeros_like(inactive, dtype=torch.bool)).t()


SELECTION_RULES: dict[str, Callable[[Tensor, int], Tensor]] = {
    "lower_index": lower_index_wins,
    "topk": topk_order,
}
