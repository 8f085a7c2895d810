"""Reading tests/data/blockscore_golden.pt: outputs and gradients of the authors'
BlocksCore (see tests/data/README.md), and running the same steps through a RIMCell."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from rim_core import RIMCell
from rim_core.authors import RNN_PREFIX, convert, infer_sizes

GOLDEN = Path(__file__).parents[1] / "data" / "blockscore_golden.pt"
CASES = ("lstm_n4_h4", "gru_n4_h4", "lstm_n6_h10", "gru_n6_h10")


def dense(blocks: torch.Tensor) -> torch.Tensor:
    """The file's diagonal blocks ``(gates, N, H, din)`` -> their dense block-diagonal matrix."""
    gates, n, h, din = blocks.shape
    out = blocks.new_zeros(gates, n, h, n, din)
    for unit in range(n):
        out[:, unit, :, unit, :] = blocks[:, unit]
    return out.reshape(gates * n * h, n * din)


@dataclass
class Case:
    config: dict[str, int]
    rnn_cell: str
    params: dict[str, torch.Tensor]  # their names, RNN weights dense, as a BlocksCore holds them
    grads: dict[str, torch.Tensor]  # likewise, where their gradient is not None
    data: dict[str, torch.Tensor]  # x, h, c, mask, tie, loss_weight_h/_c, grad_x, ...

    @property
    def k(self) -> int:
        return self.config["topk"]

    def ours(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Their parameters or gradients in a RIMCell's names and layout."""
        return convert(tensors, self.rnn_cell, infer_sizes(self.params, self.rnn_cell))


def load_case(name: str) -> Case:
    golden = torch.load(GOLDEN, weights_only=True)
    prefix = f"{name}/"
    mine = {key[len(prefix):]: value for key, value in golden.items() if key.startswith(prefix)}
    config = {k.split("/", 1)[1]: v for k, v in mine.items() if k.startswith("config/")}
    rnn_cell = "GRU" if config["do_gru"] else "LSTM"

    def named(kind: str) -> dict[str, torch.Tensor]:
        tensors = {k.split("/", 1)[1]: v for k, v in mine.items() if k.startswith(f"{kind}/")}
        for weight in ("weight_ih", "weight_hh"):
            tensors[RNN_PREFIX[rnn_cell] + weight] = dense(tensors[RNN_PREFIX[rnn_cell] + weight])
        return tensors

    data = {k: v for k, v in mine.items() if "/" not in k}
    return Case(config, rnn_cell, named("param"), named("grad"), data)


def run_cell(cell: RIMCell, case: Case, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Step ``cell`` (on ``device``) over the case's inputs from the zero state, with the
    case's loss, and backpropagate: h, c (``(T, B, N*H)``, unit-major as theirs), masks,
    loss, dL/dx; on the CPU."""
    x = case.data["x"].to(device, copy=True).requires_grad_(True)
    steps, batch, _ = x.shape
    hx, loss = None, x.new_zeros(())
    hs, cs, masks = [], [], []
    for t in range(steps):
        hx, mask = cell(x[t], hx)
        state = hx if isinstance(hx, tuple) else (hx,)
        h = state[0].reshape(batch, -1)
        hs.append(h)
        masks.append(mask)
        loss = loss + (h * case.data["loss_weight_h"][t].to(device).float() / 4).sum()
        if len(state) == 2:
            cs.append(state[1].reshape(batch, -1))
            loss = loss + (cs[-1] * case.data["loss_weight_c"][t].to(device).float() / 4).sum()
    loss.backward()
    out = {"h": torch.stack(hs), "mask": torch.stack(masks), "loss": loss, "grad_x": x.grad}
    if cs:
        out["c"] = torch.stack(cs)
    return {key: value.detach().cpu() for key, value in out.items()}
