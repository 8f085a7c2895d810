"""The recurrent core of the sequence experiments (MNIST, copying, adding): RIM, LSTM or
GRU, built from the same command-line options in every experiment."""

from __future__ import annotations

import argparse

from torch import Tensor, nn

from experiments.common import UserError
from rim_core import RIM

MODELS = ("RIM", "LSTM", "GRU")

# command-line option -> RIMCell argument
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
# runs saved before --comm-update existed used the plain residual update
SAVED_DEFAULTS = {"comm_update": "residual"}
# the options that fix the architecture: a resumed run must agree on them
ARCHITECTURE_OPTIONS = ("model", "input_size", "hidden_size", "num_units", "k", "rnn_cell", *CELL_OPTIONS)


def add_model_options(p: argparse.ArgumentParser, input_size: int, input_help: str) -> None:
    """The model's options, with the reference implementation's defaults."""
    model = p.add_argument_group("model")
    model.add_argument("--model", default="RIM", help=f"one of {', '.join(MODELS)}")
    model.add_argument("--input-size", "--input_size", type=int, default=input_size, help=input_help)
    model.add_argument("--hidden-size", "--hidden_size", type=int, default=None,
                       help="RIM: per unit (default 100, paper: 6 x 100); LSTM/GRU: total "
                            "(default 600, the paper's matched baseline)")
    model.add_argument("--rnn-cell", "--rnn_cell", default="LSTM", help="RIM unit type: LSTM or GRU")
    model.add_argument("--num-units", "--num_units", type=int, default=6, help="RIM units, Kt (paper: 6)")
    model.add_argument("--k", type=int, default=4, help="active units per step, Ka (paper's best: 4)")
    sizes = (("key-size-input", 64, "input attention key size"),
             ("value-size-input", 400, "input attention value size"),
             ("query-size-input", 64, "input attention query size"),
             ("num-input-heads", 1, "input attention heads"),
             ("key-size-comm", 32, "communication key size"),
             ("value-size-comm", 100, "communication value size"),
             ("query-size-comm", 32, "communication query size"),
             ("num-comm-heads", 4, "communication heads"))
    for name, default, help in sizes:
        model.add_argument(f"--{name}", f"--{name.replace('-', '_')}", type=int, default=default, help=help)
    model.add_argument("--input-dropout", "--input_dropout", type=float, default=0.1,
                       help="dropout on input attention")
    model.add_argument("--comm-dropout", "--comm_dropout", type=float, default=0.1,
                       help="dropout on communication attention")
    model.add_argument("--comm-update", "--comm_update", default="gated", choices=("gated", "residual"),
                       help="gated: bounded, as in the authors' code (default); residual: the "
                            "paper's equation, unbounded (see rim_core.RIMCell)")


def hidden_size(config: dict) -> int:
    """``--hidden-size``, or its default: 100 per RIM unit, 600 for an LSTM/GRU."""
    if config["hidden_size"] is not None:
        return config["hidden_size"]
    return 100 if config["model"] == "RIM" else 600


def make_rnn(config: dict) -> tuple[nn.Module, int]:
    """The recurrent core a run's options describe, and the size of its output features."""
    model = config["model"]
    if model not in MODELS:
        raise UserError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    hidden = hidden_size(config)
    if model != "RIM":
        return (nn.LSTM if model == "LSTM" else nn.GRU)(config["input_size"], hidden), hidden
    cell_kwargs = {arg: config.get(option, SAVED_DEFAULTS.get(option))
                   for option, arg in CELL_OPTIONS.items()}
    try:
        rnn = RIM(config["input_size"], hidden, config["num_units"], config["k"], config["rnn_cell"],
                  **cell_kwargs)
    except ValueError as err:  # bad sizes, k > num_units, ...
        raise UserError(str(err)) from None
    return rnn, config["num_units"] * hidden


def run_rnn(rnn: nn.Module, x: Tensor) -> tuple[Tensor, Tensor | None]:
    """``x (L, B, input_size)`` -> outputs ``(L, B, features)`` and, for a RIM, its
    activation masks ``(L, B, num_units)`` (None for an LSTM/GRU)."""
    if isinstance(rnn, RIM):
        out, _, masks = rnn(x, return_masks=True)
        return out, masks[:, :, 0]
    return rnn(x)[0], None
