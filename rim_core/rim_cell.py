r"""``RIMCell``: one step of Recurrent Independent Mechanisms (Goyal et al. 2019, arXiv 1909.10893).

Notation: N units (``num_units``, the paper's :math:`K_T`), k active units (:math:`K_A`),
hidden size H per unit, state :math:`h_{t-1}, c_{t-1} \in \mathbb{R}^{N \times H}`.

**Input attention** (paper section 2.2). The input is the real input :math:`x_t` and a
null input :math:`\varnothing = 0`. For each head, with no biases, as in the paper:

.. math::
    q_{n} = h_{t-1,n} W^q_n, \quad k_x = x_t W^k, \quad v_x = x_t W^v, \quad
    k_\varnothing = v_\varnothing = 0 \\
    p_{n} = \mathrm{softmax}\big([q_n k_\varnothing^\top, q_n k_x^\top] / \sqrt{d_k}\big)_{x}
          = \sigma(q_n k_x^\top / \sqrt{d_k})

The relevance of unit n is :math:`\bar p_n`, the attention on the real input (relative to
the null input) averaged over heads. The top-k units by :math:`\bar p_n` are active
(exactly k per sample; ties go to the lower index, on every device). Each
unit reads :math:`a_n = \mathrm{concat}_{heads}(\mathrm{dropout}(p_n) \, v_x)` (the null
slot contributes :math:`p_\varnothing v_\varnothing = 0`).

**Independent dynamics** (section 2.3). Active units run their own LSTM/GRU on
:math:`a_n`; inactive units keep their state exactly:
:math:`\tilde h_{t,n} = \mathrm{RNN}_n(a_n, h_{t-1,n})` if n is active, else
:math:`h_{t-1,n}` (likewise c).

**Communication** (section 2.4). Multi-head attention across units, from the active
units to all units (inactive ones offer their kept state), with a skip connection:

.. math::
    Q = \tilde h W^{\tilde q}, K = \tilde h W^{\tilde e}, V = \tilde h W^{\tilde v}
    \;\;\text{(per unit, per head)} \\
    a_n = \mathrm{concat}_{heads}
      \mathrm{dropout}(\mathrm{softmax}(Q_n K^\top / \sqrt{d}))\, V

and, for active n (``h_{t,n} = \tilde h_{t,n}`` otherwise), by ``comm_update``:

.. math::
    \text{gated (default):}\quad h_{t,n} = \tilde h_{t,n}
      + \sigma(a_n W^g_n + b^g_n) \odot \tanh(a_n W^o_n + b^o_n) \\
    \text{residual:}\quad h_{t,n} = \tilde h_{t,n} + a_n W^o_n + b^o_n

**Bounds on the state.** With the gated update each step adds at most 1 to any entry
of an active unit's h. An LSTM unit's fresh :math:`\tilde h = o \odot \tanh(c)` lies in
(-1, 1), and an inactive unit keeps a state that was bounded when it was written, so
:math:`|h_t| < 2` for every unit at every step (c grows at most by 1 per step, as in
``nn.LSTM``). A GRU unit's :math:`\tilde h` is a convex combination of its previous h
and a tanh, so :math:`\|h_t\|_\infty \le \max(1, \|h_{t-1}\|_\infty) + 1`: at most
linear growth, t + 1 after t steps from the zero state. The input attention only scales
what each unit reads (:math:`p \in (0, 1)`), before the RNN's own squashing, so it adds
no growth. The residual update has no such bound: a state kept by an inactive unit is
offered again as a value at the next step, so it can be multiplied by about
:math:`\|W^{\tilde v} W^o\|` per step, and it grows geometrically once the
communication weights are large.

Choices where the paper is ambiguous:

* Relevance uses the *softmax probability* of the real input, averaged over heads,
  not the raw score of one slot (some public code ranks on the wrong score).
* Attention projections have no biases, as the paper writes them (``XW``); this keeps
  the null input's key and value exactly zero. Query/key/value maps of the
  communication and the input query are per unit (the paper's :math:`W_k`); the
  input key and value maps are shared, since the input is shared.
* Input heads are concatenated, so each unit's RNN input has
  ``num_input_heads * input_value_size`` features.
* The communication heads are concatenated and projected back to ``hidden_size`` by a
  per-unit output map ``W^o`` (with bias), so ``comm_value_size`` need not equal
  ``hidden_size``. Only ``h`` is changed by communication; ``c`` is not.
* The communication update is gated and tanh-bounded by default, as in the authors'
  released code (which produced the published numbers); the paper's equation writes the
  plain residual, which ``comm_update="residual"`` selects. The gated update keeps the
  state bounded (see above); the residual one can blow up in long training. In gated
  mode ``comm_output`` maps to ``2 * hidden_size`` features, ``[W^o | W^g]``, so the
  gate costs no extra matmul call.
* Dropout is on the attention probabilities: ``input_dropout`` on the input attention,
  ``comm_dropout`` on the communication attention.
* The default state is zeros (never random), as in ``nn.LSTM``.

Speed: everything that depends only on the input (keys, values, and the values'
product with each unit's input-to-gate weights, which is linear in them) is computed
by :meth:`RIMCell.project_input`, once for a whole sequence when ``RIM`` drives the cell.
:meth:`RIMCell.step` then holds only the state-dependent work, in group-major
``(N, B, ...)`` layout so every per-unit matmul is one ``bmm``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rim_core.group_linear import GroupLinear, group_matmul
from rim_core.group_rnn import GroupGRUCell, GroupLSTMCell

State = Tensor | tuple[Tensor, Tensor]

RNN_CELLS = {"LSTM": GroupLSTMCell, "GRU": GroupGRUCell}
COMM_UPDATES = ("gated", "residual")


class ProjectedInput(NamedTuple):
    """State-independent part of the input attention, for ``M`` inputs.

    keys:  ``(M, num_input_heads, input_key_size)``
    gates: ``(num_input_heads, M, N, G)``: each unit's input-to-gate map applied to each
           head's value, without bias (G = 4H for LSTM, 3H for GRU).
    """

    keys: Tensor
    gates: Tensor


class RIMCell(nn.Module):
    r"""One step of a layer of Recurrent Independent Mechanisms.

    Args:
        input_size: features of the input x.
        hidden_size: features of each unit's state (H).
        num_units: number of units N (the paper's :math:`K_T`).
        k: number of units active at each step (:math:`K_A`), ``1 <= k <= num_units``.
        rnn_cell: ``"LSTM"`` or ``"GRU"``.
        input_key_size, input_query_size: per-head key/query size of the input
            attention (must be equal).
        input_value_size: per-head value size of the input attention.
        num_input_heads: heads of the input attention.
        input_dropout: dropout on the input attention probabilities.
        comm_key_size, comm_query_size: per-head key/query size of the communication
            attention (must be equal).
        comm_value_size: per-head value size of the communication attention.
        num_comm_heads: heads of the communication attention.
        comm_dropout: dropout on the communication attention probabilities.
        comm_update: ``"gated"`` (default, bounded; the authors' code) or ``"residual"``
            (the paper's equation, unbounded); see the module docstring.
        bias: if False, the cell has no bias at all (the units' RNN biases and the
            communication output's); the attention maps never have one.
        device, dtype: factory kwargs, as for every ``torch.nn`` module.

    Call ``state, mask = cell(x, hx)``:

    Shape:
        - x: ``(B, input_size)`` or unbatched ``(input_size,)``.
        - hx: LSTM: ``(h, c)``, each ``(B, num_units, hidden_size)``; GRU: ``h``.
          Zeros if omitted. Unbatched input takes unbatched ``(num_units, hidden_size)``.
        - state: the next state, same structure and shapes as ``hx``.
        - mask: ``(B, num_units)`` bool, True for the units active at this step.

    Examples::

        >>> cell = RIMCell(input_size=32, hidden_size=16, num_units=6, k=4)
        >>> x = torch.randn(8, 32)
        >>> (h, c), mask = cell(x)
        >>> h.shape, c.shape, mask.shape
        (torch.Size([8, 6, 16]), torch.Size([8, 6, 16]), torch.Size([8, 6]))
        >>> mask.sum(1).tolist() == [4] * 8
        True
        >>> (h, c), mask = cell(x, (h, c))  # the next step
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_units: int,
        k: int,
        rnn_cell: str = "LSTM",
        input_key_size: int = 64,
        input_value_size: int = 400,
        input_query_size: int = 64,
        num_input_heads: int = 1,
        input_dropout: float = 0.1,
        comm_key_size: int = 32,
        comm_value_size: int = 100,
        comm_query_size: int = 32,
        num_comm_heads: int = 4,
        comm_dropout: float = 0.1,
        comm_update: str = "gated",
        bias: bool = True,
        *,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        _check_positive(input_size=input_size, hidden_size=hidden_size, num_units=num_units,
                        input_key_size=input_key_size, input_value_size=input_value_size,
                        num_input_heads=num_input_heads, comm_key_size=comm_key_size,
                        comm_value_size=comm_value_size, num_comm_heads=num_comm_heads)
        if not 1 <= k <= num_units:
            raise ValueError(f"RIMCell: k must satisfy 1 <= k <= num_units ({num_units}), got k={k}")
        if rnn_cell not in RNN_CELLS:
            raise ValueError(f"RIMCell: unknown rnn_cell {rnn_cell!r}; choose one of {sorted(RNN_CELLS)}")
        if input_key_size != input_query_size:
            raise ValueError(f"RIMCell: input_key_size ({input_key_size}) must equal "
                             f"input_query_size ({input_query_size}): queries are matched to keys")
        if comm_key_size != comm_query_size:
            raise ValueError(f"RIMCell: comm_key_size ({comm_key_size}) must equal "
                             f"comm_query_size ({comm_query_size}): queries are matched to keys")
        if comm_update not in COMM_UPDATES:
            raise ValueError(f"RIMCell: unknown comm_update {comm_update!r}; choose one of {COMM_UPDATES}")
        for name, p in (("input_dropout", input_dropout), ("comm_dropout", comm_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"RIMCell: {name} must be in [0, 1), got {p}")
        factory = {"device": device, "dtype": dtype}
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_units = num_units
        self.k = k
        self.rnn_cell = rnn_cell
        self.num_input_heads = num_input_heads
        self.input_key_size = input_key_size
        self.input_value_size = input_value_size
        self.input_dropout = input_dropout
        self.num_comm_heads = num_comm_heads
        self.comm_key_size = comm_key_size
        self.comm_value_size = comm_value_size
        self.comm_dropout = comm_dropout
        self.comm_update = comm_update
        self.bias = bias
        self.step_is_compiled = False  # see compile_step

        # Input attention: shared key/value maps of the input, a query map per unit.
        self.input_key = nn.Linear(input_size, num_input_heads * input_key_size, bias=False, **factory)
        self.input_value = nn.Linear(input_size, num_input_heads * input_value_size, bias=False,
                                     **factory)
        self.input_query = GroupLinear(hidden_size, num_input_heads * input_key_size, num_units,
                                       bias=False, **factory)
        self.rnn = RNN_CELLS[rnn_cell](num_input_heads * input_value_size, hidden_size, num_units,
                                       bias=bias, **factory)
        # Communication: fused per-unit query/key/value map, and the output map back to H.
        self.comm_qkv = GroupLinear(hidden_size, num_comm_heads * (2 * comm_key_size + comm_value_size),
                                    num_units, bias=False, **factory)
        comm_out = 2 * hidden_size if comm_update == "gated" else hidden_size  # [value | gate]
        self.comm_output = GroupLinear(num_comm_heads * comm_value_size, comm_out, num_units, bias=bias,
                                       **factory)

    @property
    def is_lstm(self) -> bool:
        return self.rnn_cell == "LSTM"

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_units={self.num_units}, k={self.k}, "
                f"comm_update={self.comm_update!r}")

    # ------------------------------------------------------------------ public API

    def forward(self, x: Tensor, hx: State | None = None) -> tuple[State, Tensor]:
        batched = x.dim() == 2
        if x.dim() not in (1, 2) or x.size(-1) != self.input_size:
            raise ValueError(f"RIMCell: input must be (batch, {self.input_size}) or "
                             f"({self.input_size},), got {tuple(x.shape)}")
        if not batched:
            x = x.unsqueeze(0)
            if hx is not None:
                hx = map_state(hx, lambda s: s.unsqueeze(0))
        if hx is None:
            state = self.initial_state(x.size(0), x)
        else:
            check_state(hx, self.rnn_cell, (x.size(0), self.num_units, self.hidden_size), "RIMCell",
                        "batch, num_units, hidden_size")
            state = map_state(hx, lambda s: s.transpose(0, 1))
        state, mask = self.step(self.project_input(x), state)
        state = map_state(state, lambda s: s.transpose(0, 1))
        mask = mask.t()
        if not batched:
            state, mask = map_state(state, lambda s: s.squeeze(0)), mask.squeeze(0)
        return state, mask

    def compile_step(self, **compile_kwargs: Any) -> RIMCell:
        """Replace :meth:`step` by its ``torch.compile``'d version (returns self).

        Shapes are static by default (``dynamic=False``): one compilation per batch size.
        """
        compile_kwargs.setdefault("dynamic", False)
        self.step = torch.compile(self.step, **compile_kwargs)
        self.step_is_compiled = True
        return self

    def initial_state(self, batch_size: int, like: Tensor) -> State:
        """Zero state in group-major layout ``(N, B, H)``, on ``like``'s device and dtype."""
        zeros = like.new_zeros(self.num_units, batch_size, self.hidden_size)
        return (zeros, zeros.clone()) if self.is_lstm else zeros

    def project_input(self, x: Tensor) -> ProjectedInput:
        """The state-independent part of a step, for ``x`` of shape ``(M, input_size)``.

        ``RIM`` calls this once for all T*B inputs of a sequence.
        """
        heads, dv, n = self.num_input_heads, self.input_value_size, self.num_units
        keys = self.input_key(x).view(-1, heads, self.input_key_size)
        # Per head h: gates = (x W_v,h^T) W_ih,h^T. Multiply in the cheaper order; the
        # product is the same either way.
        w_value = self.input_value.weight.view(heads, dv, self.input_size)
        w_ih = self.rnn.weight_ih.view(n, -1, heads, dv).permute(2, 0, 1, 3).reshape(heads, -1, dv)
        if self.input_size < dv:
            gates = torch.matmul(x, torch.bmm(w_ih, w_value).transpose(1, 2))
        else:
            gates = torch.bmm(torch.matmul(x, w_value.transpose(1, 2)), w_ih.transpose(1, 2))
        return ProjectedInput(keys, gates.view(heads, x.size(0), n, self.rnn.weight_ih.size(1)))

    def step(self, inp: ProjectedInput, state: State) -> tuple[State, Tensor]:
        """Advance the group-major state ``(N, B, H)`` by one step.

        Args:
            inp: :meth:`project_input` of this step's ``(B, input_size)`` input.
            state: ``h`` (GRU) or ``(h, c)`` (LSTM), each ``(N, B, H)``.

        Returns:
            ``(state, mask)`` with the next state and the ``(N, B)`` bool mask of active units.
        """
        h_prev = state[0] if self.is_lstm else state
        n, b, heads = self.num_units, h_prev.size(1), self.num_input_heads

        # Input attention: each unit's attention on the real input vs the null input.
        query = group_matmul(h_prev, self.input_query.weight).view(n, b, heads, self.input_key_size)
        score = (query * inp.keys).sum(-1) / math.sqrt(self.input_key_size)
        p_input = torch.sigmoid(score)  # = softmax([0, score])[1]: the null key is 0
        relevance = p_input.detach().mean(-1)
        # Not topk: its tie order is unspecified and differs between CPU and CUDA, and at
        # t=0 (zero state, no biases) every unit ties. A stable sort gives the lower index.
        top = relevance.sort(dim=0, descending=True, stable=True).indices[: self.k]
        mask = torch.zeros_like(relevance, dtype=torch.bool).scatter_(0, top, True)

        # Independent dynamics: every unit's RNN on what it read; only active units keep it.
        p_read = F.dropout(p_input, self.input_dropout, self.training)
        gates = inp.gates.transpose(1, 2)  # (heads, N, B, G)
        bias = self.rnn.input_bias()
        if heads == 1:  # squeeze, not [0]: select's backward writes a zero tensor per step
            gates_in = (p_read * gates.squeeze(0) if bias is None
                        else torch.addcmul(bias.unsqueeze(1), p_read, gates.squeeze(0)))
        else:
            gates_in = (p_read.permute(2, 0, 1).unsqueeze(-1) * gates).sum(0)
            if bias is not None:
                gates_in = gates_in + bias.unsqueeze(1)
        updated = self.rnn.recurrence(gates_in, state)
        active = mask.unsqueeze(-1)
        if self.is_lstm:
            h = torch.where(active, updated[0], state[0])
            c = torch.where(active, updated[1], state[1])
        else:
            h = torch.where(active, updated, state)

        h = self._communicate(h, active)
        return ((h, c) if self.is_lstm else h), mask

    # ------------------------------------------------------------------ internals

    def _communicate(self, h: Tensor, active: Tensor) -> Tensor:
        n, b, heads = self.num_units, h.size(1), self.num_comm_heads
        dk, dv = self.comm_key_size, self.comm_value_size
        q, k, v = group_matmul(h, self.comm_qkv.weight).split([heads * dk, heads * dk, heads * dv], -1)
        # (N, B, heads*d) -> (B*heads, N, d): attention runs across the units.
        q, k, v = (t.reshape(n, b * heads, t.size(-1) // heads).transpose(0, 1) for t in (q, k, v))
        attention = torch.bmm(q, k.transpose(1, 2)).mul_(1 / math.sqrt(dk)).softmax(-1)
        attention = F.dropout(attention, self.comm_dropout, self.training)
        context = torch.bmm(attention, v).transpose(0, 1).reshape(n, b, heads * dv)
        out = group_matmul(context, self.comm_output.weight, self.comm_output.bias)
        if self.comm_update == "gated":
            value, gate = out.chunk(2, dim=-1)
            out = torch.sigmoid(gate) * torch.tanh(value)
        return torch.where(active, h + out, h)


def check_state(hx: State, rnn_cell: str, want: tuple[int, ...], owner: str, layout: str) -> None:
    """One-line ``ValueError`` unless ``hx`` is an ``(h, c)`` pair (LSTM) or one tensor (GRU),
    each of shape ``want``; ``layout`` names the dimensions for the message."""
    if rnn_cell == "LSTM":
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError(f"{owner}(rnn_cell='LSTM'): hx must be a tuple (h, c)")
        states = hx
    else:
        if not isinstance(hx, Tensor):
            raise ValueError(f"{owner}(rnn_cell='GRU'): hx must be a single tensor h")
        states = (hx,)
    for s in states:
        if tuple(s.shape) != want:
            raise ValueError(f"{owner}: state must have shape {want} ({layout}), got {tuple(s.shape)}")


def map_state(state: State, fn) -> State:
    return tuple(fn(s) for s in state) if isinstance(state, (tuple, list)) else fn(state)


def _check_positive(**sizes: int) -> None:
    for name, value in sizes.items():
        if value < 1:
            raise ValueError(f"RIMCell: {name} must be >= 1, got {value}")
