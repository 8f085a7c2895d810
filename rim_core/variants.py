"""Variants of the RIM step: presets that set every size and switch.

``RIMOptions`` (``rim_core.options``) groups the choices that change what a step computes
(or how it trains) beyond the sizes. Ablations are ``dataclasses.replace(options, ...)``. A
*variant* is a preset: a
function of the hidden size giving every size and switch; the arguments a user passes
explicitly override it. ``"default"`` is rim_core's model, which follows the paper's
equations; ``"authors"`` is the step of the authors' released code (``rim_core/authors.py``;
docs/model.md#the-authors-released-code lists every difference).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rim_core.authors import authors_preset
from rim_core.options import SWITCH_VALUES, RIMOptions

__all__ = ["RIMOptions", "SWITCH_VALUES", "VARIANTS", "default_preset", "resolve"]

def default_preset(hidden_size: int) -> dict[str, Any]:
    """rim_core's model: the paper's equations, with the gated communication update."""
    return {"input_key_size": 64, "input_value_size": 400, "input_query_size": 64, "num_input_heads": 1,
            "input_dropout": 0.1, "comm_key_size": 32, "comm_value_size": 100, "comm_query_size": 32,
            "num_comm_heads": 4, "comm_dropout": 0.1, "comm_update": "gated", "options": RIMOptions()}


# variant -> preset(hidden_size) -> every size and switch of RIMCell
VARIANTS: dict[str, Callable[[int], dict[str, Any]]] = {
    "default": default_preset,
    "authors": authors_preset,  # everything about their code lives in rim_core/authors.py
}


def resolve(variant: str, hidden_size: int, given: dict[str, Any]) -> dict[str, Any]:
    """The variant's preset, overridden by the arguments ``given`` that are not None."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown RIM variant {variant!r}; choose one of {sorted(VARIANTS)}")
    preset = VARIANTS[variant](hidden_size)
    return {**preset, **{name: value for name, value in given.items() if value is not None}}
