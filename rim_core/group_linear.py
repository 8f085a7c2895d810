"""``GroupLinear``: N independent affine maps evaluated in one batched matmul."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def group_matmul(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x[n] @ weight[n].T + bias[n]`` for every group n, as one batched matmul.

    Args:
        x: ``(N, M, in)``, group-major (the layout the RIM step keeps its state in).
        weight: ``(N, out, in)``.
        bias: ``(N, out)`` or ``None``.

    Returns:
        ``(N, M, out)``.
    """
    w = weight.transpose(1, 2)
    if bias is None:
        return torch.bmm(x, w)
    return torch.baddbmm(bias.unsqueeze(1), x, w)


class GroupLinear(nn.Module):
    r"""Applies a separate affine map to each of ``num_groups`` groups.

    .. math:: y_n = x_n W_n^\top + b_n \qquad n = 1 \dots N

    Args:
        in_features: size of each group's input.
        out_features: size of each group's output.
        num_groups: number of independent maps (N).
        bias: learn a per-group additive bias.

    Shape:
        - Input: ``(*, N, in_features)``, e.g. ``(B, N, in)``.
        - Output: ``(*, N, out_features)``.

    Attributes:
        weight: ``(N, out_features, in_features)``, the layout of N stacked
            ``nn.Linear.weight`` tensors.
        bias: ``(N, out_features)``.

    Initialisation follows ``nn.Linear`` for every group:
    :math:`\mathcal{U}(-1/\sqrt{in}, 1/\sqrt{in})`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_groups: int,
        bias: bool = True,
        *,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features),
                            ("num_groups", num_groups)):
            if value < 1:
                raise ValueError(f"GroupLinear: {name} must be >= 1, got {value}")
        factory = {"device": device, "dtype": dtype}
        self.in_features = in_features
        self.out_features = out_features
        self.num_groups = num_groups
        self.weight = nn.Parameter(torch.empty(num_groups, out_features, in_features, **factory))
        self.bias = nn.Parameter(torch.empty(num_groups, out_features, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2 or x.size(-2) != self.num_groups or x.size(-1) != self.in_features:
            raise ValueError(
                f"GroupLinear expects input of shape (*, {self.num_groups}, {self.in_features}), "
                f"got {tuple(x.shape)}"
            )
        unit_major = x.reshape(-1, self.num_groups, self.in_features).transpose(0, 1)
        y = group_matmul(unit_major, self.weight, self.bias)
        return y.transpose(0, 1).reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"num_groups={self.num_groups}, bias={self.bias is not None}")
