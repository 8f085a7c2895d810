"""``RIM``: multi-layer, optionally bidirectional RIMs over a sequence; a drop-in for ``nn.LSTM``."""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any, Literal, overload

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rim_core.rim_cell import Inner, RIMCell, State, as_tuple, check_state, from_tuple, map_state


class RIM(nn.Module):
    r"""Recurrent Independent Mechanisms over a sequence, with ``nn.LSTM``'s interface.

    Each layer and direction is a :class:`RIMCell`. The output of a layer at step t is the
    concatenation of all units' hidden states (``num_units * hidden_size`` features per
    direction), which is what the next layer reads.

    Args:
        input_size: features of the input.
        hidden_size: features of each unit's state (H).
        num_units: units per layer (N).
        k: active units per step.
        rnn_cell: ``"LSTM"`` or ``"GRU"``.
        num_layers: stacked RIM layers (``n_layers`` is accepted as an alias).
        bidirectional: also run a reverse-time RIM per layer.
        batch_first: input and output are ``(B, T, *)`` instead of ``(T, B, *)``.
        dropout: dropout on each layer's output except the last, as in ``nn.LSTM``.
        **cell_kwargs: every other :class:`RIMCell` argument (attention sizes, heads,
            dropouts, ``comm_update``, ``bias``, ``variant``, ``options``), plus ``device``
            and ``dtype``. ``variant="authors"`` gives every layer the step of the authors'
            released code (docs/model.md#the-authors-released-code).

    Call ``out, hx = rim(x, hx)`` or ``out, hx, masks = rim(x, hx, return_masks=True)``.
    With D = 2 if bidirectional else 1 and S = num_units * hidden_size:

    Shape:
        - x: ``(T, B, input_size)`` (``(B, T, input_size)`` if batch_first), or
          unbatched ``(T, input_size)``.
        - hx: LSTM ``(h_0, c_0)``, GRU ``h_0``; each ``(num_layers * D, B, S)``, zeros
          if omitted (unbatched: ``(num_layers * D, S)``).
        - out: ``(T, B, D * S)`` (``(B, T, D * S)`` if batch_first): the last layer's
          hidden state at every step.
        - hx (returned): ``(h_n, c_n)`` or ``h_n``, each ``(num_layers * D, B, S)``.
        - masks: ``(T, B, num_layers * D, num_units)`` bool (batch_first:
          ``(B, T, ...)``): which units were active at each step, in the same
          layer/direction order as ``h_n``.

    Variable-length batches: ``x`` may be a :class:`~torch.nn.utils.rnn.PackedSequence`
    (of ``(sum of lengths, input_size)`` data), as for ``nn.LSTM``. Then ``out`` is packed
    the same way; ``h_n`` and ``c_n`` hold each sequence's state at its own last step, in
    the batch's original order; the reverse direction starts at each sequence's own last
    step; ``batch_first`` has no effect. As in cuDNN, step t runs only the sequences that
    are that long (a prefix of the batch in packed order), so padding costs no compute,
    except with :meth:`compile_step`, which would recompile for every batch size: a
    compiled step runs the whole batch and drops the finished sequences' results. Padded
    steps change no state and count as
    inactive: ``masks`` is then padded, ``(T_max, B, num_layers * D, num_units)`` in the
    original batch order, False at every step past a sequence's length.

    Examples::

        >>> rim = RIM(input_size=32, hidden_size=16, num_units=6, k=4, num_layers=2)
        >>> x = torch.randn(50, 8, 32)  # (T, B, input_size)
        >>> out, (h_n, c_n) = rim(x)
        >>> out.shape, h_n.shape  # 6 units x 16 features per step and layer
        (torch.Size([50, 8, 96]), torch.Size([2, 8, 96]))
        >>> out, (h_n, c_n), masks = rim(x, (h_n, c_n), return_masks=True)
        >>> masks.shape, masks.sum(-1).unique().tolist()  # exactly k units active
        (torch.Size([50, 8, 2, 6]), [4])
        >>> from torch.nn.utils.rnn import pack_padded_sequence
        >>> packed = pack_padded_sequence(x, torch.tensor([50, 20, 35, 50, 1, 9, 42, 30]),
        ...                               enforce_sorted=False)
        >>> out, (h_n, c_n) = rim(packed)  # out is a PackedSequence
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_units: int,
        k: int,
        rnn_cell: str = "LSTM",
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = False,
        dropout: float = 0.0,
        *,
        n_layers: int | None = None,
        **cell_kwargs: Any,
    ) -> None:
        super().__init__()
        if n_layers is not None:
            if num_layers not in (1, n_layers):
                raise ValueError(f"RIM: n_layers={n_layers} is an alias of num_layers={num_layers}; "
                                 "give only one")
            num_layers = n_layers
        if num_layers < 1:
            raise ValueError(f"RIM: num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"RIM: dropout must be in [0, 1), got {dropout}")
        if dropout > 0 and num_layers == 1:  # nn.LSTM's warning
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero "
                          f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                          f"num_layers={num_layers}", stacklevel=2)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_units = num_units
        self.k = k
        self.rnn_cell = rnn_cell
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.batch_first = batch_first
        self.dropout = dropout
        self.num_directions = 2 if bidirectional else 1
        self.state_size = num_units * hidden_size
        self.cells = nn.ModuleList(
            RIMCell(input_size if layer == 0 else self.num_directions * self.state_size,
                    hidden_size, num_units, k, rnn_cell, **cell_kwargs)
            for layer in range(num_layers)
            for _ in range(self.num_directions)
        )

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_units={self.num_units}, k={self.k}, "
                f"rnn_cell={self.rnn_cell!r}, num_layers={self.num_layers}, "
                f"bidirectional={self.bidirectional}, batch_first={self.batch_first}")

    def compile_step(self, **compile_kwargs: Any) -> RIM:
        """Compile every cell's :meth:`RIMCell.step` with ``torch.compile`` (returns self).

        The step is compiled, not the whole sequence, so compile time does not grow with
        the sequence length, and one compilation serves every length: a new one is made
        for each batch size, for training and evaluation, and for a first step whose state
        carries no gradient (``torch.compile`` keeps 8 per function unless
        ``torch._dynamo.config.recompile_limit`` allows more). See docs/performance.md for
        when this pays off.
        """
        for cell in self.cells:
            cell.compile_step(**compile_kwargs)
        return self

    def flatten_parameters(self) -> None:
        """Does nothing: the parameters need no flattening (``nn.LSTM`` compacts its own
        for cuDNN). Here so that code written for ``nn.LSTM`` runs unchanged."""

    @overload
    def forward(self, x: Tensor | PackedSequence, hx: State | None = None,
                return_masks: Literal[False] = False) -> tuple[Tensor | PackedSequence, State]: ...

    @overload
    def forward(self, x: Tensor | PackedSequence, hx: State | None,
                return_masks: Literal[True]) -> tuple[Tensor | PackedSequence, State, Tensor]: ...

    @overload
    def forward(self, x: Tensor | PackedSequence, hx: State | None = None, *,
                return_masks: Literal[True]) -> tuple[Tensor | PackedSequence, State, Tensor]: ...

    def forward(self, x, hx=None, return_masks=False):
        packed_input = x if isinstance(x, PackedSequence) else None
        batch_sizes = None
        if packed_input is not None:
            if packed_input.data.dim() != 2 or packed_input.data.size(-1) != self.input_size:
                raise ValueError(f"RIM: packed input must hold (sum of lengths, {self.input_size}) "
                                 f"data, got {tuple(packed_input.data.shape)}")
            batch_sizes = packed_input.batch_sizes.tolist()
            if sum(batch_sizes) != packed_input.data.size(0):  # pack_padded_sequence does not check this
                raise ValueError(f"RIM: packed input has {packed_input.data.size(0)} rows but its "
                                 f"batch_sizes add up to {sum(batch_sizes)}: a length exceeded the "
                                 "padded input's seq_len")
            # Run in the packed order (longest first), as cuDNN does: at step t only the first
            # batch_sizes[t] sequences have input, so the step runs on that prefix alone.
            x, _ = pad_packed_sequence(PackedSequence(packed_input.data, packed_input.batch_sizes))
            if hx is not None and packed_input.sorted_indices is not None:
                hx = map_state(hx, lambda s: s.index_select(1, packed_input.sorted_indices))
        batched = x.dim() == 3
        if x.dim() not in (2, 3) or x.size(-1) != self.input_size:
            raise ValueError(f"RIM: input must be (seq_len, batch, {self.input_size}) "
                             f"({'batch, seq_len' if self.batch_first else 'seq_len, batch'} order), "
                             f"or unbatched (seq_len, {self.input_size}); got {tuple(x.shape)}")
        if not batched:
            x = x.unsqueeze(1)
            if hx is not None:
                hx = map_state(hx, lambda s: s.unsqueeze(1))
        elif self.batch_first and packed_input is None:  # packed data has no batch dimension
            x = x.transpose(0, 1)
        seq_len, batch = x.shape[:2]
        if seq_len == 0:
            raise ValueError("RIM: the input sequence is empty (seq_len == 0)")
        if hx is not None:
            check_state(hx, self.rnn_cell, (self.num_layers * self.num_directions, batch, self.state_size),
                        "RIM", "num_layers * num_directions, batch, num_units * hidden_size")

        layer_input = x
        last_states: list[Inner] = []
        masks: list[Tensor] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                cell: RIMCell = self.cells[index]
                if hx is None:
                    state = cell.initial_state(batch, x)
                else:  # (L*D, B, N*H) -> this cell's group-major (N, B, H)
                    state = tuple(map(partial(_unit_major, index=index, num_units=self.num_units),
                                      as_tuple(hx)))
                out, state, mask = self._run_direction(cell, layer_input, state, direction == 1,
                                                       batch_sizes)
                outputs.append(out)
                last_states.append(state)
                masks.append(mask)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
            if self.dropout > 0 and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, self.training)

        def stack(parts: list[Tensor]) -> Tensor:  # [(N, B, H)] -> (L*D, B, N*H)
            return torch.stack([p.transpose(0, 1).reshape(batch, self.state_size) for p in parts])

        state_out: State = from_tuple(tuple(stack(list(parts)) for parts in zip(*last_states)))
        output = layer_input
        all_masks = torch.stack(masks, dim=2)  # (T, B, L*D, N)
        if packed_input is not None:
            output, state_out, all_masks = _repack(output, state_out, all_masks, packed_input)
        elif not batched:
            output, all_masks = output.squeeze(1), all_masks.squeeze(1)
            state_out = map_state(state_out, lambda s: s.squeeze(1))
        elif self.batch_first:
            output, all_masks = output.transpose(0, 1), all_masks.transpose(0, 1)
        return (output, state_out, all_masks) if return_masks else (output, state_out)

    @staticmethod
    def _run_direction(cell: RIMCell, x: Tensor, state: Inner, reverse: bool,
                       batch_sizes: list[int] | None):
        """Run one cell over ``x`` (T, B, in); returns out (T, B, N*H), last state, masks (T, B, N).

        With ``batch_sizes`` (packed input, longest sequence first), only the first
        ``batch_sizes[t]`` samples run step t; the others hold their state, no unit active."""
        seq_len, batch = x.shape[:2]
        inputs = cell.project_input(x.reshape(seq_len * batch, x.size(-1))).steps(seq_len, batch)
        units = cell.num_units
        hs, masks = [None] * seq_len, [None] * seq_len
        steps = range(seq_len - 1, -1, -1) if reverse else range(seq_len)
        # A compiled step would recompile for every batch size: it runs the whole batch and
        # the finished samples' results are dropped instead.
        shrink = not getattr(cell, "step_is_compiled", False)
        for t in steps:
            b = batch if batch_sizes is None else batch_sizes[t]
            if b == batch:
                state, masks[t] = cell.step(inputs[t], state)
            elif shrink:
                new, mask = cell.step(inputs[t].narrow(b), tuple(s[:, :b] for s in state))
                state = tuple(torch.cat([n, s[:, b:]], 1) for n, s in zip(new, state))
                masks[t] = torch.cat([mask, mask.new_zeros(units, batch - b)], 1)
            else:
                new, mask = cell.step(inputs[t], state)
                keep = (torch.arange(batch, device=x.device) < b).view(1, batch, 1)
                state = tuple(torch.where(keep, n, s) for n, s in zip(new, state))
                masks[t] = mask & keep[..., 0]
            hs[t] = state[0]
        out = torch.stack(hs).transpose(1, 2).reshape(seq_len, batch, cell.num_units * cell.hidden_size)
        return out, state, torch.stack(masks).transpose(1, 2)


def _unit_major(state: Tensor, index: int, num_units: int) -> Tensor:
    return state[index].view(state.size(1), num_units, state.size(2) // num_units).transpose(0, 1)


def _repack(output: Tensor, state: State, masks: Tensor, like: PackedSequence):
    """Results computed in packed order -> ``output`` packed as ``like`` is; state and
    masks in the original batch order."""
    lengths = (like.batch_sizes.unsqueeze(0) > torch.arange(output.size(1)).unsqueeze(1)).sum(1)
    data = pack_padded_sequence(output, lengths, enforce_sorted=True).data
    if like.unsorted_indices is not None:
        state = map_state(state, lambda s: s.index_select(1, like.unsorted_indices))
        masks = masks.index_select(1, like.unsorted_indices)
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices), state, masks
