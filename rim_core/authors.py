"""The authors' released RIM code (anirudh9119/RIMs, ``event_based/``), in rim_core's terms.

Everything rim_core knows about that code lives here: the ``"authors"`` preset (their
hard-wired sizes and the switches in which their step differs from rim_core's default), their
initial weights, and the map from their ``BlocksCore`` parameters to a :class:`RIMCell`'s.
The step itself is rim_core's grouped cell with those switches; docs/model.md lists every
difference and which side matches the paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from rim_core.options import RIMOptions

AUTHORS_OPTIONS = RIMOptions(inactive_offer="proposed", detach_inactive_offer=True, tie_break="topk",
                             shared_comm_output=True, dropout_on="values", init="authors")
COMM_HEADS = 4  # hard-wired in their BlocksCore, as are the sizes below
INPUT_KEY_SIZE = 64
COMM_KEY_SIZE = 16


def authors_preset(hidden_size: int) -> dict[str, Any]:
    """Every size and switch of their step: input key 64 and value 4H in one head,
    communication 4 heads of key = value = 16, dropouts 0.1, the gated update."""
    return {"input_key_size": INPUT_KEY_SIZE, "input_value_size": 4 * hidden_size,
            "input_query_size": INPUT_KEY_SIZE, "num_input_heads": 1, "input_dropout": 0.1,
            "comm_key_size": COMM_KEY_SIZE, "comm_value_size": COMM_KEY_SIZE,
            "comm_query_size": COMM_KEY_SIZE, "num_comm_heads": COMM_HEADS, "comm_dropout": 0.1,
            "comm_update": "gated", "options": AUTHORS_OPTIONS}


@torch.no_grad()
def init_authors(cell: nn.Module) -> None:
    """Their initial weights on a RIMCell: attention maps N(0, 0.01^2), each unit's RNN
    U(+-1/sqrt(N*H)) (their N units are one dense cell of size N*H, masked block-diagonal),
    the communication output layer U(+-1/sqrt(fan-in)), as their ``nn.Linear``."""
    for layer in (cell.input_key, cell.input_value, cell.input_query, cell.comm_qkv):
        nn.init.normal_(layer.weight, std=0.01)
    bound = 1.0 / math.sqrt(cell.num_units * cell.hidden_size)
    for p in cell.rnn.parameters():
        nn.init.uniform_(p, -bound, bound)
    cell.comm_output.reset_parameters()


# ---------------------------------------------------------------- their parameters -> ours
#
# Their GroupLinearLayer.w is (groups, in, out), applied as x @ w; ours is (groups, out, in).
# Their input attention has a key/value map per slot: slot 0 multiplies the null input (a
# zero row), so only slot 1 is live. Their RNN is one dense nn.LSTMCell / nn.GRUCell whose
# weights are block-diagonal, rows gate-major: dense[g*N*H + n*H + j, n*din + d].

RNN_PREFIX = {"LSTM": "block_lstm.lstm.", "GRU": "block_lstm.gru."}
NUM_GATES = {"LSTM": 4, "GRU": 3}
UNUSED = ("inp_att.gate_fc.", "inp_att.ln.", "mha.ln.")  # built by their code, never used


def _transposed(w: Tensor, sizes: dict) -> Tensor:
    return w.transpose(1, 2)


def _live_slot(w: Tensor, sizes: dict) -> Tensor:
    return w[1].t()


def _rnn_blocks(w: Tensor, sizes: dict) -> Tensor:
    g, n, h = sizes["gates"], sizes["num_units"], sizes["hidden_size"]
    din = w.size(1) // n
    blocks = w.reshape(g, n, h, n, din)
    diagonal = torch.diagonal(blocks, dim1=1, dim2=3)  # (g, h, din, n)
    if not sizes["blockify"] and torch.count_nonzero(w) != torch.count_nonzero(diagonal):
        raise ValueError("its off-diagonal blocks are not zero; their forward zeroes them "
                         "(blockify_params()) before every use: pass blockify=True to do the same")
    return diagonal.permute(3, 0, 1, 2).reshape(n, g * h, din)


def _rnn_bias(b: Tensor, sizes: dict) -> Tensor:
    g, n, h = sizes["gates"], sizes["num_units"], sizes["hidden_size"]
    return b.reshape(g, n, h).permute(1, 0, 2).reshape(n, g * h)


def _shared(w: Tensor, sizes: dict) -> Tensor:
    return w.unsqueeze(0)  # one group: the layer all units share


# their name ("rnn." stands for their RNN's prefix) -> (our name[:part], transform)
MAPPING: dict[str, tuple[str, Callable[[Tensor, dict], Tensor]]] = {
    "inp_att.GLN_qs.w": ("input_query.weight", _transposed),
    "inp_att.GLN_ks.w": ("input_key.weight", _live_slot),
    "inp_att.GLN_vs.w": ("input_value.weight", _live_slot),
    "rnn.weight_ih": ("rnn.weight_ih", _rnn_blocks),
    "rnn.weight_hh": ("rnn.weight_hh", _rnn_blocks),
    "rnn.bias_ih": ("rnn.bias_ih", _rnn_bias),
    "rnn.bias_hh": ("rnn.bias_hh", _rnn_bias),
    "mha.GLN_qs.w": ("comm_qkv.weight:q", _transposed),
    "mha.GLN_ks.w": ("comm_qkv.weight:k", _transposed),
    "mha.GLN_vs.w": ("comm_qkv.weight:v", _transposed),
    "mha.fc.weight": ("comm_output.weight:value", _shared),
    "mha.fc.bias": ("comm_output.bias:value", _shared),
    "mha.gate_fc.weight": ("comm_output.weight:gate", _shared),
    "mha.gate_fc.bias": ("comm_output.bias:gate", _shared),
}


def their_shapes(s: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """The shape of each of their parameters, from the sizes (:func:`infer_sizes`)."""
    n, h, gates = s["num_units"], s["hidden_size"], s["gates"] * s["num_units"] * s["hidden_size"]
    comm_qk, comm_v = COMM_HEADS * s["comm_dk"], COMM_HEADS * s["comm_dv"]
    return {"inp_att.GLN_qs.w": (n, h, s["dk"]), "inp_att.GLN_ks.w": (2, s["input_size"], s["dk"]),
            "inp_att.GLN_vs.w": (2, s["input_size"], s["dv"]), "rnn.weight_ih": (gates, n * s["dv"]),
            "rnn.weight_hh": (gates, n * h), "rnn.bias_ih": (gates,), "rnn.bias_hh": (gates,),
            "mha.GLN_qs.w": (n, h, comm_qk), "mha.GLN_ks.w": (n, h, comm_qk), "mha.GLN_vs.w": (n, h, comm_v),
            "mha.fc.weight": (h, comm_v), "mha.fc.bias": (h,), "mha.gate_fc.weight": (h, comm_v),
            "mha.gate_fc.bias": (h,)}


def their_key(name: str, rnn_cell: str) -> str:
    """A MAPPING name as it appears in their state dict."""
    return RNN_PREFIX[rnn_cell] + name[4:] if name.startswith("rnn.") else name


def _tensor(state_dict: dict[str, Tensor], key: str, ndim: int) -> Tensor:
    if key not in state_dict:
        raise ValueError(f"from_authors: missing key {key!r} (strip a prefix such as 'bc_lst.0.' "
                         "from an RNNModel's keys first)")
    t = state_dict[key]
    if not isinstance(t, Tensor) or t.dim() != ndim:
        raise ValueError(f"from_authors: {key!r} must be a {ndim}-d tensor, got "
                         f"{tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__}")
    return t


def infer_sizes(state_dict: dict[str, Tensor], rnn_cell: str) -> dict[str, int]:
    """The sizes of their BlocksCore, read from the shapes of its parameters."""
    num_units, hidden_size, dk = _tensor(state_dict, "inp_att.GLN_qs.w", 3).shape
    input_size = _tensor(state_dict, "inp_att.GLN_ks.w", 3).size(1)
    dv = _tensor(state_dict, "inp_att.GLN_vs.w", 3).size(2)
    comm_dk = _tensor(state_dict, "mha.GLN_qs.w", 3).size(2) // COMM_HEADS
    comm_dv = _tensor(state_dict, "mha.GLN_vs.w", 3).size(2) // COMM_HEADS
    return {"num_units": num_units, "hidden_size": hidden_size, "input_size": input_size, "dk": dk,
            "dv": dv, "comm_dk": comm_dk, "comm_dv": comm_dv, "gates": NUM_GATES[rnn_cell]}


def convert(state_dict: dict[str, Tensor], rnn_cell: str, sizes: dict[str, int],
            blockify: bool = False) -> dict[str, Tensor]:
    """Their tensors (parameters, or gradients of them) -> ours, by :data:`MAPPING`.

    The map is linear and one-to-one on the live entries, so it carries gradients too. The
    RNN weights' off-diagonal blocks must be zero unless ``blockify``, which drops them.
    """
    parts: dict[str, Tensor] = {}
    sizes = {**sizes, "blockify": blockify}
    shapes = their_shapes(sizes)
    for name, (ours, transform) in MAPPING.items():
        key = their_key(name, rnn_cell)
        t = _tensor(state_dict, key, len(shapes[name]))
        if tuple(t.shape) != shapes[name]:
            raise ValueError(f"from_authors: {key!r} has shape {tuple(t.shape)}, expected {shapes[name]} "
                             f"for {sizes['num_units']} units of {sizes['hidden_size']}")
        try:
            parts[ours] = transform(t.detach(), sizes)
        except ValueError as err:
            raise ValueError(f"from_authors: {key!r}: {err}") from None
    out = {name: t for name, t in parts.items() if ":" not in name}
    out["comm_qkv.weight"] = torch.cat([parts["comm_qkv.weight:q"], parts["comm_qkv.weight:k"],
                                        parts["comm_qkv.weight:v"]], dim=1)
    out["comm_output.weight"] = torch.cat([parts["comm_output.weight:value"],
                                           parts["comm_output.weight:gate"]], dim=1)
    out["comm_output.bias"] = torch.cat([parts["comm_output.bias:value"], parts["comm_output.bias:gate"]],
                                        dim=1)
    return out


def authors_weights(state_dict: dict[str, Tensor], rnn_cell: str = "LSTM",
                    blockify: bool = False) -> tuple[dict[str, int], dict[str, Tensor]]:
    """The sizes read from the shapes of their ``BlocksCore`` weights, and those weights under
    a :class:`RIMCell`'s names (see :meth:`rim_core.RIMCell.from_authors`)."""
    if rnn_cell not in RNN_PREFIX:
        raise ValueError(f"from_authors: unknown rnn_cell {rnn_cell!r}; choose 'LSTM' or 'GRU'")
    known = {their_key(name, rnn_cell) for name in MAPPING}
    unknown = sorted(key for key in state_dict if key not in known and not key.startswith(UNUSED))
    if unknown:
        raise ValueError(f"from_authors: unexpected key {unknown[0]!r} for a BlocksCore with "
                         f"rnn_cell={rnn_cell!r}")
    sizes = infer_sizes(state_dict, rnn_cell)
    if sizes["dk"] != INPUT_KEY_SIZE or sizes["dv"] != 4 * sizes["hidden_size"]:
        raise ValueError(f"from_authors: 'inp_att.GLN_ks.w' / 'inp_att.GLN_vs.w' give input key "
                         f"{sizes['dk']} and value {sizes['dv']}; their code hard-wires 64 and 4H = "
                         f"{4 * sizes['hidden_size']}")
    return sizes, convert(state_dict, rnn_cell, sizes, blockify)
