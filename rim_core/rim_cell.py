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
* Dropout is on the attention probabilities by default: ``input_dropout`` on the input
  attention, ``comm_dropout`` on the communication attention (``RIMOptions.dropout_on``).
* The default state is zeros (never random), as in ``nn.LSTM``.

**Variants.** The authors' released code computes a different step (inactive units offer
the state they would have had, the gradient through those offers is blocked, ties go to
``torch.topk``'s order, one communication output layer for all units, dropout on values,
other initial weights and sizes). ``variant="authors"`` builds that step on the same
grouped cell; each difference is one field of :class:`~rim_core.RIMOptions`, switchable on
its own. docs/model.md lists them, with which side matches the paper.

Speed: everything that depends only on the input (keys, values, and the values'
product with each unit's input-to-gate weights, which is linear in them) is computed
by :meth:`RIMCell.project_input`, once for a whole sequence when ``RIM`` drives the cell.
:meth:`RIMCell.step` then holds only the state-dependent work, in group-major
``(N, B, ...)`` layout so every per-unit matmul is one ``bmm``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rim_core.authors import authors_weights, init_authors
from rim_core.group_linear import GroupLinear, group_matmul
from rim_core.group_rnn import GroupGRUCell, GroupLSTMCell
from rim_core.selection import SELECTION_RULES
from rim_core.variants import RIMOptions, resolve

State = Tensor | tuple[Tensor, Tensor]  # the public form: h (GRU) or (h, c) (LSTM)
Inner = tuple[Tensor, ...]  # inside rim_core, always a tuple: (h,) or (h, c)

RNN_CELLS = {"LSTM": GroupLSTMCell, "GRU": GroupGRUCell}
COMM_UPDATES = ("gated", "residual")


class ProjectedInput(NamedTuple):
    """State-independent part of the input attention, for ``M`` inputs.

    keys:   ``(M, num_input_heads, input_key_size)``
    gates:  ``(M, num_input_heads, N, G)``: each unit's input-to-gate map applied to each
            head's value, without bias (G = 4H for LSTM, 3H for GRU); or None when
    values: ``(M, num_input_heads, input_value_size)`` are given instead, because dropout on
            the read vector's features needs the read vector itself.

    All three are input-major, so one step's slice of a sequence has the same strides
    whatever the sequence's length: a compiled step then needs no new compilation for
    each length (a model trained on one length is tested on others).
    """

    keys: Tensor
    gates: Tensor | None
    values: Tensor | None = None

    def steps(self, seq_len: int, batch: int) -> list[ProjectedInput]:
        """Split the inputs of a time-major sequence (M = seq_len * batch) into one per step."""
        # unbind, not indexing: its backward writes all steps' gradients in one stack,
        # where indexing would add a full-size zero tensor per step.
        def split(t: Tensor | None) -> tuple[Tensor | None, ...]:
            return (None,) * seq_len if t is None else t.view(seq_len, batch, *t.shape[1:]).unbind(0)

        return [ProjectedInput(*parts) for parts in zip(*map(split, self))]

    def narrow(self, batch: int) -> ProjectedInput:
        """The first ``batch`` samples."""
        return ProjectedInput(*(None if t is None else t[:batch] for t in self))


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
        input_dropout: dropout rate of the input attention (where: ``options.dropout_on``).
        comm_key_size, comm_query_size: per-head key/query size of the communication
            attention (must be equal).
        comm_value_size: per-head value size of the communication attention.
        num_comm_heads: heads of the communication attention.
        comm_dropout: dropout rate of the communication (where: ``options.dropout_on``).
        comm_update: ``"gated"`` (bounded; the authors' code) or ``"residual"``
            (the paper's equation, unbounded); see the module docstring.
        bias: if False, the cell has no bias at all (the units' RNN biases and the
            communication output's); the attention maps never have one.
        variant: the preset that every size, rate and switch left at None takes its
            value from: ``"default"`` (rim_core's model: 64 / 400 / 64, 1 input head,
            communication 4 heads of 32 / 100 / 32, dropouts 0.1, ``"gated"``,
            ``RIMOptions()``) or ``"authors"`` (the authors' released code: input value
            4H, communication 4 heads of 16 / 16 / 16, and their switches; see
            docs/model.md).
        options: a :class:`~rim_core.RIMOptions`, the switches in which variants differ.
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
        >>> authors = RIMCell(32, 16, 6, 4, variant="authors")  # the authors' step
        >>> authors.input_value_size, authors.options.inactive_offer
        (64, 'proposed')
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_units: int,
        k: int,
        rnn_cell: str = "LSTM",
        input_key_size: int | None = None,
        input_value_size: int | None = None,
        input_query_size: int | None = None,
        num_input_heads: int | None = None,
        input_dropout: float | None = None,
        comm_key_size: int | None = None,
        comm_value_size: int | None = None,
        comm_query_size: int | None = None,
        num_comm_heads: int | None = None,
        comm_dropout: float | None = None,
        comm_update: str | None = None,
        bias: bool = True,
        *,
        variant: str = "default",
        options: RIMOptions | None = None,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        try:
            c = resolve(variant, hidden_size, dict(
                input_key_size=input_key_size, input_value_size=input_value_size,
                input_query_size=input_query_size, num_input_heads=num_input_heads,
                input_dropout=input_dropout, comm_key_size=comm_key_size, comm_value_size=comm_value_size,
                comm_query_size=comm_query_size, num_comm_heads=num_comm_heads, comm_dropout=comm_dropout,
                comm_update=comm_update, options=options))
        except ValueError as err:
            raise ValueError(f"RIMCell: {err}") from None
        _check_positive(input_size=input_size, hidden_size=hidden_size, num_units=num_units,
                        input_key_size=c["input_key_size"], input_value_size=c["input_value_size"],
                        num_input_heads=c["num_input_heads"], comm_key_size=c["comm_key_size"],
                        comm_value_size=c["comm_value_size"], num_comm_heads=c["num_comm_heads"])
        if not 1 <= k <= num_units:
            raise ValueError(f"RIMCell: k must satisfy 1 <= k <= num_units ({num_units}), got k={k}")
        if rnn_cell not in RNN_CELLS:
            raise ValueError(f"RIMCell: unknown rnn_cell {rnn_cell!r}; choose one of {sorted(RNN_CELLS)}")
        if c["input_key_size"] != c["input_query_size"]:
            raise ValueError(f"RIMCell: input_key_size ({c['input_key_size']}) must equal "
                             f"input_query_size ({c['input_query_size']}): queries are matched to keys")
        if c["comm_key_size"] != c["comm_query_size"]:
            raise ValueError(f"RIMCell: comm_key_size ({c['comm_key_size']}) must equal "
                             f"comm_query_size ({c['comm_query_size']}): queries are matched to keys")
        if c["comm_update"] not in COMM_UPDATES:
            raise ValueError(f"RIMCell: unknown comm_update {c['comm_update']!r}; "
                             f"choose one of {COMM_UPDATES}")
        for name in ("input_dropout", "comm_dropout"):
            if not 0.0 <= c[name] < 1.0:
                raise ValueError(f"RIMCell: {name} must be in [0, 1), got {c[name]}")
        if not isinstance(c["options"], RIMOptions):
            raise ValueError(f"RIMCell: options must be a RIMOptions, got {type(c['options']).__name__}")
        factory = {"device": device, "dtype": dtype}
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_units = num_units
        self.k = k
        self.rnn_cell = rnn_cell
        self.variant = variant
        self.num_input_heads = c["num_input_heads"]
        self.input_key_size = c["input_key_size"]
        self.input_value_size = c["input_value_size"]
        self.input_dropout = c["input_dropout"]
        self.num_comm_heads = c["num_comm_heads"]
        self.comm_key_size = c["comm_key_size"]
        self.comm_value_size = c["comm_value_size"]
        self.comm_dropout = c["comm_dropout"]
        self.comm_update = c["comm_update"]
        self.options: RIMOptions = c["options"]
        self.bias = bias
        self.step_is_compiled = False  # see compile_step

        heads, dk, dv = self.num_input_heads, self.input_key_size, self.input_value_size
        # Input attention: shared key/value maps of the input, a query map per unit.
        self.input_key = nn.Linear(input_size, heads * dk, bias=False, **factory)
        self.input_value = nn.Linear(input_size, heads * dv, bias=False, **factory)
        self.input_query = GroupLinear(hidden_size, heads * dk, num_units, bias=False, **factory)
        self.rnn = RNN_CELLS[rnn_cell](heads * dv, hidden_size, num_units, bias=bias, **factory)
        # Communication: fused per-unit query/key/value map, and the output map back to H.
        heads, dk, dv = self.num_comm_heads, self.comm_key_size, self.comm_value_size
        self.comm_qkv = GroupLinear(hidden_size, heads * (2 * dk + dv), num_units, bias=False, **factory)
        comm_out = 2 * hidden_size if self.comm_update == "gated" else hidden_size  # [value | gate]
        groups = 1 if self.options.shared_comm_output else num_units
        self.comm_output = GroupLinear(heads * dv, comm_out, groups, bias=bias, **factory)
        if self.options.init != "pytorch":
            self.reset_parameters()

    @property
    def is_lstm(self) -> bool:
        return self.rnn_cell == "LSTM"

    @property
    def _select(self) -> Callable[[Tensor, int], Tensor]:
        """The selection rule of ``options.tie_break``. Looked up by name, not stored: a
        module that holds no function pickles with ``torch.save(model)`` and loads with
        ``weights_only=True`` once its classes are allowed (``rim_core.SAFE_GLOBALS``)."""
        return SELECTION_RULES[self.options.tie_break]

    def extra_repr(self) -> str:
        variant = "" if self.variant == "default" else f", variant={self.variant!r}"
        options = "" if self.options == RIMOptions() else f", options={self.options}"
        return (f"{self.input_size}, {self.hidden_size}, num_units={self.num_units}, k={self.k}, "
                f"comm_update={self.comm_update!r}{variant}{options}")

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
            state = tuple(s.transpose(0, 1) for s in as_tuple(hx))
        state, mask = self.step(self.project_input(x), state)
        state, mask = tuple(s.transpose(0, 1) for s in state), mask.t()
        if not batched:
            state, mask = tuple(s.squeeze(0) for s in state), mask.squeeze(0)
        return from_tuple(state), mask

    @classmethod
    def from_authors(cls, state_dict: dict[str, Tensor], k: int, rnn_cell: str = "LSTM", *,
                     blockify: bool = False) -> RIMCell:
        """A cell with the ``"authors"`` variant and the weights of the authors' ``BlocksCore``.

        ``state_dict`` holds their parameter names and shapes (``inp_att.*``, ``mha.*``,
        ``block_lstm.lstm.*`` or ``block_lstm.gru.*``, the RNN weights dense); the sizes are
        read from the shapes. For layer 0 of their ``RNNModel``, strip the prefix
        ``bc_lst.0.`` first. Their forward zeroes the dense RNN weights' off-diagonal blocks
        (``blockify_params()``) before every use, but an optimiser step after it leaves them
        non-zero in a saved checkpoint: ``blockify=True`` drops them as their forward does;
        without it they must be zero. Raises a one-line ``ValueError`` naming the key for a
        missing or unexpected key, a wrong shape or a non-zero off-diagonal block, and for
        ``k`` out of range. See docs/model.md#the-authors-released-code.
        """
        sizes, weights = authors_weights(state_dict, rnn_cell, blockify)
        first = state_dict["inp_att.GLN_qs.w"]
        try:
            cell = cls(sizes["input_size"], sizes["hidden_size"], sizes["num_units"], k, rnn_cell,
                       comm_key_size=sizes["comm_dk"], comm_query_size=sizes["comm_dk"],
                       comm_value_size=sizes["comm_dv"], variant="authors", device=first.device,
                       dtype=first.dtype)
        except ValueError as err:
            raise ValueError(f"from_authors: {err}") from None
        cell.load_state_dict(weights)
        return cell

    def reset_parameters(self, init: str | None = None) -> None:
        """Draw every parameter afresh.

        ``init`` (default: ``options.init``):

        * ``"pytorch"``: each layer's ``nn.Linear``-style default,
          :math:`\\mathcal{U}(\\pm 1/\\sqrt{\\text{fan-in}})`, the units' RNNs
          :math:`\\mathcal{U}(\\pm 1/\\sqrt{H})` as ``nn.LSTMCell``.
        * ``"authors"``: the authors' code: every attention map (input key, value and
          query, communication query/key/value) :math:`\\mathcal{N}(0, 0.01^2)`; the RNNs
          :math:`\\mathcal{U}(\\pm 1/\\sqrt{NH})`, the scale of their one dense cell of
          size N*H; the communication output as ``"pytorch"``.
        """
        init = self.options.init if init is None else init
        if init == "authors":
            init_authors(self)
        elif init == "pytorch":
            for module in (self.input_key, self.input_value, self.input_query, self.rnn, self.comm_qkv,
                           self.comm_output):
                module.reset_parameters()
        else:
            raise ValueError(f"RIMCell: unknown init {init!r}; choose 'pytorch' or 'authors'")

    def compile_step(self, **compile_kwargs: Any) -> RIMCell:
        """Replace :meth:`step` by its ``torch.compile``'d version (returns self).

        Shapes are static by default (``dynamic=False``): one compilation per batch size.
        """
        compile_kwargs.setdefault("dynamic", False)
        self.step = torch.compile(self.step, **compile_kwargs)
        self.step_is_compiled = True
        return self

    def initial_state(self, batch_size: int, like: Tensor) -> Inner:
        """Zero state in group-major layout, ``(h,)`` or ``(h, c)`` of ``(N, B, H)``, on
        ``like``'s device and dtype."""
        zeros = like.new_zeros(self.num_units, batch_size, self.hidden_size)
        return (zeros, zeros.clone()) if self.is_lstm else (zeros,)

    def project_input(self, x: Tensor) -> ProjectedInput:
        """The state-independent part of a step, for ``x`` of shape ``(M, input_size)``.

        ``RIM`` calls this once for all T*B inputs of a sequence.
        """
        heads, dv, n = self.num_input_heads, self.input_value_size, self.num_units
        keys = self.input_key(x).view(-1, heads, self.input_key_size)
        if self._reads_values():
            return ProjectedInput(keys, None, self.input_value(x).view(-1, heads, dv))
        # Per head h: gates = (x W_v,h^T) W_ih,h^T. Multiply in the cheaper order; the
        # product is the same either way.
        w_value = self.input_value.weight.view(heads, dv, self.input_size)
        w_ih = self.rnn.weight_ih.view(n, -1, heads, dv).permute(2, 0, 1, 3).reshape(heads, -1, dv)
        if self.input_size < dv:
            gates = torch.matmul(x, torch.bmm(w_ih, w_value).transpose(1, 2))
        else:
            gates = torch.bmm(torch.matmul(x, w_value.transpose(1, 2)), w_ih.transpose(1, 2))
        gates = gates.view(heads, x.size(0), n, self.rnn.weight_ih.size(1))  # (heads, M, N, G)
        # Input-major (see ProjectedInput): free for one head, a copy for several.
        gates = gates.squeeze(0).unsqueeze(1) if heads == 1 else gates.transpose(0, 1).contiguous()
        return ProjectedInput(keys, gates)

    def step(self, inp: ProjectedInput, state: Inner) -> tuple[Inner, Tensor]:
        """Advance the group-major state by one step.

        Args:
            inp: :meth:`project_input` of this step's ``(B, input_size)`` input.
            state: ``(h,)`` (GRU) or ``(h, c)`` (LSTM), each ``(N, B, H)``.

        Returns:
            ``(state, mask)`` with the next state and the ``(N, B)`` bool mask of active units.
        """
        p_input = self._input_attention(inp, state[0])
        relevance = p_input.detach()  # averaged over heads; one head's is its own mean
        relevance = relevance.squeeze(-1) if self.num_input_heads == 1 else relevance.mean(-1)
        mask = self._select(relevance, self.k)
        # Every unit's RNN runs on what it read (its proposal); only active units keep it.
        proposed = self.rnn.recurrence(self._read(inp, p_input), state)
        active = mask.unsqueeze(-1)
        kept = tuple(torch.where(active, new, old) for new, old in zip(proposed, state))
        # What inactive units offer to communication, and whether gradient flows back through it.
        offered = kept[0] if self.options.inactive_offer == "kept" else proposed[0]
        if self.options.detach_inactive_offer:
            offered = torch.where(active, offered, offered.detach())
        h = torch.where(active, kept[0] + self._communicate(offered), kept[0])
        return (h, *kept[1:]), mask

    # ------------------------------------------------------------------ internals

    def _reads_values(self) -> bool:
        """Whether this call needs the read vector itself (dropout on its features)."""
        return self.training and self.options.dropout_on == "values" and self.input_dropout > 0

    def _input_attention(self, inp: ProjectedInput, h: Tensor) -> Tensor:
        """Each unit's attention on the real input vs the null input, ``(N, B, heads)``."""
        n, b, heads = self.num_units, h.size(1), self.num_input_heads
        query = group_matmul(h, self.input_query.weight).view(n, b, heads, self.input_key_size)
        score = (query * inp.keys).sum(-1) / math.sqrt(self.input_key_size)
        return torch.sigmoid(score)  # = softmax([0, score])[1]: the null key is 0

    def _read(self, inp: ProjectedInput, p_input: Tensor) -> Tensor:
        """What each unit reads, as its RNN's input gates ``(N, B, G)``, biases included."""
        if inp.gates is None:  # the read vector, for dropout on its features
            read = (p_input.unsqueeze(-1) * inp.values).flatten(2)  # (N, B, heads * dv)
            return self.rnn.input_gates(F.dropout(read, self.input_dropout, self.training))
        p_read = p_input
        if self.options.dropout_on == "attention" and self.training and self.input_dropout > 0:
            p_read = F.dropout(p_input, self.input_dropout, True)
        gates = inp.gates.permute(1, 2, 0, 3)  # (B, heads, N, G) -> (heads, N, B, G)
        bias = self.rnn.input_bias()
        if self.num_input_heads == 1:  # squeeze, not [0]: select's backward writes a zero tensor per step
            if bias is None:
                return p_read * gates.squeeze(0)
            return torch.addcmul(bias.unsqueeze(1), p_read, gates.squeeze(0))
        gates_in = (p_read.permute(2, 0, 1).unsqueeze(-1) * gates).sum(0)
        return gates_in if bias is None else gates_in + bias.unsqueeze(1)

    def _communicate(self, h: Tensor) -> Tensor:
        """Attention across the units on ``h (N, B, H)``: each unit's update ``(N, B, H)``."""
        n, b, heads = self.num_units, h.size(1), self.num_comm_heads
        dk, dv = self.comm_key_size, self.comm_value_size
        on_values = self.options.dropout_on == "values"
        q, k, v = group_matmul(h, self.comm_qkv.weight).split([heads * dk, heads * dk, heads * dv], -1)
        if heads > 1:  # (N, B, heads*d) -> (N, B*heads, d)
            q, k, v = (t.reshape(n, b * heads, t.size(-1) // heads) for t in (q, k, v))
        # (N, B*heads, d) -> (B*heads, N, d): attention runs across the units.
        attention = torch.bmm(q.transpose(0, 1), k.permute(1, 2, 0)).mul_(1 / math.sqrt(dk)).softmax(-1)
        if not on_values and self.training and self.comm_dropout > 0:
            attention = F.dropout(attention, self.comm_dropout, True)
        context = torch.bmm(attention, v.transpose(0, 1)).transpose(0, 1)
        if heads > 1:
            context = context.reshape(n, b, heads * dv)
        if self.options.shared_comm_output:  # one layer for every unit
            out = group_matmul(context.reshape(1, n * b, heads * dv), self.comm_output.weight,
                               self.comm_output.bias).view(n, b, -1)
        else:
            out = group_matmul(context, self.comm_output.weight, self.comm_output.bias)
        if self.comm_update == "residual":
            return F.dropout(out, self.comm_dropout, self.training) if on_values else out
        value, gate = out.chunk(2, dim=-1)
        if on_values:  # the value branch only, before the tanh
            value = F.dropout(value, self.comm_dropout, self.training)
        return torch.sigmoid(gate) * torch.tanh(value)


def as_tuple(hx: State) -> Inner:
    """The public state (a tensor or an ``(h, c)`` pair) as rim_core's tuple."""
    return tuple(hx) if isinstance(hx, (tuple, list)) else (hx,)


def from_tuple(state: Inner) -> State:
    """rim_core's tuple as the public state: ``h`` alone for a GRU, ``(h, c)`` for an LSTM."""
    return state if len(state) == 2 else state[0]


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

