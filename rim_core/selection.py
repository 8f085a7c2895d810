"""Selection rules: which k of the N units are active at a step, given each unit's relevance.

A rule takes ``relevance (N, B)`` (the attention each unit pays to the real input, relative to
the null input) and ``k``, and returns the ``(N, B)`` bool mask of active units, exactly k per
column. Units with higher relevance win; the rules differ only where relevances tie. Ties are
not rare: from the zero state (no biases) every unit's relevance is exactly 0.5, so every t=0
is an all-way tie, and a unit that has never been active keeps tying at 0.5.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def lower_index_wins(relevance: Tensor, k: int) -> Tensor:
    """Ties go to the lower unit index, on every device (a stable sort)."""
    top = relevance.sort(dim=0, descending=True, stable=True).indices[:k]
    return torch.zeros_like(relevance, dtype=torch.bool).scatter_(0, top, True)


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
    return torch.ones_like(null, dtype=torch.bool).scatter_(1, inactive, False).t()


SELECTION_RULES: dict[str, Callable[[Tensor, int], Tensor]] = {
    "lower_index": lower_index_wins,
    "topk": topk_order,
}
