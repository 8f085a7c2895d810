"""Variants of the RIM step: the switches in which they differ, and presets that set them all.

``RIMOptions`` groups the choices that change what a step computes (or how it trains) beyond
the sizes. Ablations are ``dataclasses.replace(options, ...)``. A *variant* is a preset: a
function of the hidden size giving every size and switch; the arguments a user passes
explicitly override it. ``"default"`` is rim_core's model, which follows the paper's
equations; ``"authors"`` is the step of the authors' released code (``rim_core/authors.py``;
docs/model.md#the-authors-released-code lists every difference).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

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


def default_preset(hidden_size: int) -> dict[str, Any]:
    """rim_core's model: the paper's equations, with the gated communication update."""
    return {"input_key_size": 64, "input_value_size": 400, "input_query_size": 64, "num_input_heads": 1,
            "input_dropout": 0.1, "comm_key_size": 32, "comm_value_size": 100, "comm_query_size": 32,
            "num_comm_heads": 4, "comm_dropout": 0.1, "comm_update": "gated", "options": RIMOptions()}


def _authors_preset(hidden_size: int) -> dict[str, Any]:
    from rim_core.authors import authors_preset  # everything about their code lives there

    return authors_preset(hidden_size)


# variant -> preset(hidden_size) -> every size and switch of RIMCell
VARIANTS: dict[str, Callable[[int], dict[str, Any]]] = {
    "default": default_preset,
    "authors": _authors_preset,
}


def resolve(variant: str, hidden_size: int, given: dict[str, Any]) -> dict[str, Any]:
    """The variant's preset, overridden by the arguments ``given`` that are not None."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown RIM variant {variant!r}; choose one of {sorted(VARIANTS)}")
    preset = VARIANTS[variant](hidden_size)
    return {**preset, **{name: value for name, value in given.items() if value is not None}}
