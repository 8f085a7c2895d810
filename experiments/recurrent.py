"""The recurrent core of the sequence experiments (MNIST, copying, adding): RIM, LSTM or
GRU, built from the same command-line options in every experiment.

One spec carries the model from the command line to config.json to the tables:
:func:`add_model_options` declares it, :func:`resolve_model_options` fills in what the RIM
variant decides (so config.json records every size and switch the model was built with), and
:func:`make_rnn` builds the model from that record.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable

from torch import Tensor, nn

from experiments.common import UserError, rng_state, set_rng_state
from rim_core import RIM, VARIANTS, RIMOptions
from rim_core.variants import SWITCH_VALUES

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
# what runs saved before an option existed used: the plain residual update (before
# --comm-update), rim_core's default variant and switches (before --variant)
SAVED_DEFAULTS = {"comm_update": "residual", "variant": "default",
                  "rim_options": dataclasses.asdict(RIMOptions())}
# the options that fix the architecture: a resumed run must agree on them
ARCHITECTURE_OPTIONS = ("model", "input_size", "hidden_size", "num_units", "k", "rnn_cell", "variant",
                        "rim_options", *CELL_OPTIONS)


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
    add_variant_options(model, "default", "RIM preset of every size and switch below: default (rim_core's "
                        "model, the paper's equations) or authors (the step of the authors' released "
                        "code, see docs/model.md); the options below override it")
    sizes = (("key-size-input", 64, "input attention key size"),
             ("value-size-input", 400, "input attention value size (authors: 4 x hidden size)"),
             ("query-size-input", 64, "input attention query size"),
             ("num-input-heads", 1, "input attention heads"),
             ("key-size-comm", 32, "communication key size (authors: 16)"),
             ("value-size-comm", 100, "communication value size (authors: 16)"),
             ("query-size-comm", 32, "communication query size (authors: 16)"),
             ("num-comm-heads", 4, "communication heads"))
    for name, default, help in sizes:
        model.add_argument(f"--{name}", f"--{name.replace('-', '_')}", type=int, default=None,
                           help=f"{help} (default: the variant's; default variant: {default})")
    model.add_argument("--input-dropout", "--input_dropout", type=float, default=None,
                       help="input attention dropout (default: the variant's, 0.1)")
    model.add_argument("--comm-dropout", "--comm_dropout", type=float, default=None,
                       help="communication dropout (default: the variant's, 0.1)")
    model.add_argument("--comm-update", "--comm_update", default=None, choices=("gated", "residual"),
                       help="gated: bounded, as in the authors' code (both variants' default); residual: "
                            "the paper's equation, unbounded (see rim_core.RIMCell)")


def add_variant_options(group: argparse._ArgumentGroup, default: str | None, help: str) -> None:
    """--variant and --rim-option, which every experiment with a RIM shares."""
    group.add_argument("--variant", default=default, choices=sorted(VARIANTS), help=help)
    group.add_argument("--rim-option", "--rim_option", action="append", default=[], metavar="NAME=VALUE",
                       help="change one switch of the variant, for ablations (repeatable): " + "; ".join(
                           f"{name}={'|'.join(choices)}" for name, choices in switch_choices().items()))


def switch_choices() -> dict[str, tuple[str, ...]]:
    """Each RIMOptions switch and the values it takes on the command line."""
    return {name: tuple(str(v).lower() if isinstance(v, bool) else v for v in values)
            for name, values in SWITCH_VALUES.items()}


def resolve_model_options(args: argparse.Namespace) -> None:
    """Fill every RIM size, rate and switch left unset with the variant's, in place; the
    switches become ``args.rim_options`` (a dict), with ``--rim-option`` applied. One-line
    errors for a bad switch. Then config.json records the model completely."""
    preset = VARIANTS[args.variant](hidden_size(vars(args)))
    for option, arg in CELL_OPTIONS.items():
        if getattr(args, option) is None:
            setattr(args, option, preset[arg])
    args.rim_options = rim_switches(preset["options"], args.rim_option)


def rim_switches(options: RIMOptions, changes: list[str]) -> dict:
    """``options`` as a dict, with each ``--rim-option NAME=VALUE`` of ``changes`` applied;
    one-line errors for a bad switch."""
    options = dataclasses.asdict(options)
    allowed = switch_choices()
    for item in changes:
        name, _, value = item.partition("=")
        if name not in allowed:
            raise UserError(f"--rim-option {item!r}: unknown switch {name!r}; "
                            f"choose one of {', '.join(allowed)}")
        if value not in allowed[name]:
            raise UserError(f"--rim-option {item!r}: {name} takes one of {', '.join(allowed[name])}")
        options[name] = value == "true" if isinstance(SWITCH_VALUES[name][0], bool) else value
    return options


def saved_rim_options(saved: dict | None) -> dict:
    """A run's recorded switches (config.json's ``rim_options``), with every switch added
    since it was saved at its default. A switch is added with the behaviour before it as its
    default, so that every earlier run still resumes and still counts in its table's row."""
    return {**dataclasses.asdict(RIMOptions()), **(saved or {})}


def upgrade_saved_args(saved: dict) -> dict:
    """A run's saved arguments (config.json's ``args``, in place), read as today's code
    records them: see :func:`saved_rim_options`."""
    if "rim_options" in saved:
        saved["rim_options"] = saved_rim_options(saved["rim_options"])
    return saved


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
    options = config.get("rim_options", SAVED_DEFAULTS["rim_options"])
    try:
        rnn = RIM(config["input_size"], hidden, config["num_units"], config["k"], config["rnn_cell"],
                  variant=config.get("variant", "default"), options=RIMOptions(**options), **cell_kwargs)
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


# What a compilation that cannot be done raises: a damaged cache file (pytorch#102539, "file
# too short"), a missing compiler, a backend failure.
COMPILE_ERRORS = (ImportError, OSError, EOFError, RuntimeError)


def compile_with_fallback(rnn: RIM, warm_up: Callable[[], None]) -> None:
    """``rnn.compile_step()``, with the eager step (the same arithmetic, slower) taking over
    after one line on stderr where ``torch.compile`` fails.

    ``warm_up()`` runs a training step's forward and backward now, so that a compilation that
    fails in the backward pass is found before training (the RNG state is restored after it);
    a compilation that fails later (a new batch size at evaluation) falls back at that call.
    """
    rnn.compile_step()

    def fall_back(err: BaseException) -> None:
        for cell in rnn.cells:
            vars(cell).pop("step", None)  # the class's eager method again
            cell.step_is_compiled = False
        from torch._inductor.runtime.cache_dir_utils import cache_dir

        while err.__cause__ is not None:  # the backend's own error, not dynamo's wrapper of it
            err = err.__cause__
        reason = (str(err).strip().splitlines() or [""])[0][:120]
        print(f"warning: torch.compile failed ({type(err).__name__}: {reason}); the RIM step runs "
              f"eagerly (the same arithmetic, slower). Delete {cache_dir()} to compile again",
              file=sys.stderr)

    for cell in rnn.cells:
        compiled = cell.step

        def step(*args, compiled=compiled, cell=cell):
            try:
                return compiled(*args)
            except COMPILE_ERRORS as err:  # an error of the step itself is raised again eagerly
                fall_back(err)
                return cell.step(*args)

        cell.step = step
    state = rng_state()
    try:
        warm_up()
    except COMPILE_ERRORS as err:
        if not rnn.cells[0].step_is_compiled:  # fell back inside the step: the eager step's own error
            raise
        fall_back(err)
    finally:
        set_rng_state(state)
