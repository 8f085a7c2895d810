"""``GroupLSTMCell`` and ``GroupGRUCell``: N independent recurrent cells computed together.

Each unit n owns the same parameters an ``nn.LSTMCell`` / ``nn.GRUCell`` would, stacked
along a leading unit dimension, with the same gate order (LSTM: i, f, g, o; GRU: r, z, n)
and the same initialisation :math:`\\mathcal{U}(-1/\\sqrt{H}, 1/\\sqrt{H})`. Copying
``nn.LSTMCell`` weights into ``weight_ih[n]`` etc. reproduces that cell exactly.

The public ``forward`` takes batch-first ``(B, N, ...)`` tensors. ``RIMCell`` drives the
cells through :meth:`recurrence`, which works on group-major ``(N, B, ...)`` tensors so
that every matmul is one ``bmm`` without copies.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rim_core.group_linear import group_matmul


class _GroupRNNCellBase(nn.Module):
    num_gates: int  # 4 for LSTM, 3 for GRU

    def __init__(self, input_size: int, hidden_size: int, num_units: int, bias: bool = True,
                 *, device=None, dtype=None) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_units", num_units)):
            if value < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be >= 1, got {value}")
        factory = {"device": device, "dtype": dtype}
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_units = num_units
        gates = self.num_gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(num_units, gates, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(num_units, gates, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(num_units, gates, **factory))
            self.bias_hh = nn.Parameter(torch.empty(num_units, gates, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_units={self.num_units}, "
                f"bias={self.bias_ih is not None}")

    def input_bias(self) -> Tensor | None:
        """The bias that :meth:`recurrence` expects to be already added to ``gi``."""
        return self.bias_ih

    def input_gates(self, x: Tensor) -> Tensor:
        """``x W_ih^T`` plus :meth:`input_bias`, per unit; x is group-major ``(N, M, input_size)``."""
        return group_matmul(x, self.weight_ih, self.input_bias())

    def _check(self, x: Tensor, states: tuple[Tensor, ...]) -> None:
        n, name = self.num_units, type(self).__name__
        if x.dim() != 3 or x.size(1) != n or x.size(2) != self.input_size:
            raise ValueError(f"{name}: input must be (batch, {n}, {self.input_size}), "
                             f"got {tuple(x.shape)}")
        want = (x.size(0), n, self.hidden_size)
        for s in states:
            if tuple(s.shape) != want:
                raise ValueError(f"{name}: state must be {want}, got {tuple(s.shape)}")

    def _zeros(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.size(0), self.num_units, self.hidden_size)


class GroupLSTMCell(_GroupRNNCellBase):
    r"""N independent LSTM cells.

    For every unit n (gate order i, f, g, o as in ``nn.LSTMCell``):

    .. math::
        [i, f, g, o] = x_n W_{ih,n}^\top + b_{ih,n} + h_n W_{hh,n}^\top + b_{hh,n} \\
        c_n' = \sigma(f) \odot c_n + \sigma(i) \odot \tanh(g), \quad
        h_n' = \sigma(o) \odot \tanh(c_n')

    Args:
        input_size: features of each unit's input.
        hidden_size: features of each unit's state.
        num_units: number of independent cells (N).

    Shape:
        - x: ``(B, N, input_size)``
        - hx: ``(h, c)``, each ``(B, N, hidden_size)``; zeros if omitted.
        - returns ``(h', c')``, each ``(B, N, hidden_size)``.
    """

    num_gates = 4

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        if hx is None:
            hx = (self._zeros(x), self._zeros(x))
        self._check(x, hx)
        h, c = (s.transpose(0, 1) for s in hx)
        h, c = self.recurrence(self.input_gates(x.transpose(0, 1)), (h, c))
        return h.transpose(0, 1), c.transpose(0, 1)

    def input_bias(self) -> Tensor | None:
        # Both biases sit outside the non-linearity, so they are added once, input side.
        return None if self.bias_ih is None else self.bias_ih + self.bias_hh

    def recurrence(self, gi: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """One step from input gates ``gi`` (N, B, 4H), biases included, and state (N, B, H)."""
        h, c = state
        gates = torch.baddbmm(gi, h, self.weight_hh.transpose(1, 2))
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class GroupGRUCell(_GroupRNNCellBase):
    r"""N independent GRU cells.

    For every unit n (gate order r, z, n as in ``nn.GRUCell``):

    .. math::
        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}), \quad
        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})), \quad
        h' = (1 - z) \odot n + z \odot h

    Shape:
        - x: ``(B, N, input_size)``
        - hx: ``(B, N, hidden_size)``; zeros if omitted.
        - returns ``h'``: ``(B, N, hidden_size)``.
    """

    num_gates = 3

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        if hx is None:
            hx = self._zeros(x)
        self._check(x, (hx,))
        (h,) = self.recurrence(self.input_gates(x.transpose(0, 1)), (hx.transpose(0, 1),))
        return h.transpose(0, 1)

    def recurrence(self, gi: Tensor, state: tuple[Tensor]) -> tuple[Tensor]:
        """One step from input gates ``gi`` (N, B, 3H), ``b_ih`` included, and state ``(h,)``,
        h (N, B, H); a tuple, as the LSTM's ``(h, c)``, so that callers treat both alike."""
        (h,) = state
        gh = group_matmul(h, self.weight_hh, self.bias_hh)
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        return (torch.lerp(n, h, z),)
