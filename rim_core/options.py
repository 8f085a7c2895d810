"""The switches in which RIM steps differ beyond their sizes: ``RIMOptions``.

Ablations are ``dataclasses.replace(options, ...)``; the presets that set every switch are
in ``rim_core.variants``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from rim_core.selection import SELECTION_RULES

# each switch of RIMOptions -> the values it takes
SWITCH_VALUES: dict[str, tuple] = {
    "inactive_offer": ("kept", "proposed"),
    "detach_inactive_offer": (False, True),
    "tie_break": tuple(SELECTION_RULES),
    "shared_comm_output": (False, True),
    "dropout_on": ("attention", "values"),
    "init": ("pytorch", "authors"),
}


@dataclasses.dataclass(frozen=True)
class RIMOptions:
    """How a RIM step computes where the paper leaves room, or where the authors' code differs.

    Attributes:
        inactive_offer: what an inactive unit offers to communication as query, key and
            value: ``"kept"``, the state it keeps (the paper: h̃ = h_{t-1}); or
            ``"proposed"``, the state its RNN computed from what it read and that is then
            discarded (the authors' code).
        detach_inactive_offer: no gradient flows back through what inactive units offer
            (their key/value weights still get gradient). The authors' code does this; the
            gradient is then not the gradient of the forward function.
        tie_break: how equal relevances are ordered at selection: ``"lower_index"`` (stable,
            every device) or ``"topk"`` (``torch.topk``'s order, as the authors' code); see
            ``rim_core.selection``.
        shared_comm_output: one communication output (and gate) layer for all units, as the
            authors' code, instead of one per unit.
        dropout_on: ``"attention"``: input and communication dropout act on the attention
            probabilities (one draw scales a unit's whole read); ``"values"``: on the read
            vector's features and on the communication output's value branch, as the
            authors' code. With ``"values"`` the read vector is materialised in training,
            so the input side of the step cannot be precomputed per sequence.
        init: initial weights, see :meth:`rim_core.RIMCell.reset_parameters`:
            ``"pytorch"`` (each layer's ``nn.Linear``-style default) or ``"authors"``.
    """

    inactive_offer: Literal["kept", "proposed"] = "kept"
    detach_inactive_offer: bool = False
    tie_break: Literal["lower_index", "topk"] = "lower_index"
    shared_comm_output: bool = False
    dropout_on: Literal["attention", "values"] = "attention"
    init: Literal["pytorch", "authors"] = "pytorch"

    def __post_init__(self) -> None:
        for name, allowed in SWITCH_VALUES.items():
            value = getattr(self, name)
            if value not in allowed or type(value) is not type(allowed[0]):
                raise ValueError(f"RIMOptions: unknown {name} {value!r}; choose one of {allowed}")
