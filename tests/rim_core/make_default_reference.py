"""Record what the default RIM computes on fixed seeds: tests/data/default_reference.pt.

Written once, before the cell was given its seams (issue 29), so that test_default_reference.py
can show that the refactor left the default step's outputs and gradients unchanged. Rerun it
only on purpose, when the default model is meant to change:

    python tests/rim_core/make_default_reference.py
"""

from __future__ import annotations

from pathlib import Path

import torch

from rim_core import RIM

OUT = Path(__file__).parents[1] / "data" / "default_reference.pt"
SIZES = {"input_key_size": 8, "input_query_size": 8, "input_value_size": 12, "comm_key_size": 6,
         "comm_query_size": 6, "comm_value_size": 5}
# name -> RIM arguments beyond the sizes; each case runs in train mode (dropout) and eval mode
CASES = {
    "lstm": {"rnn_cell": "LSTM"},
    "gru": {"rnn_cell": "GRU"},
    "lstm_2heads_residual": {"rnn_cell": "LSTM", "num_input_heads": 2, "comm_update": "residual"},
    "gru_nobias_2layers_bidir": {"rnn_cell": "GRU", "bias": False, "num_layers": 2, "bidirectional": True},
}
T, B, INPUT, HIDDEN, UNITS, K = 6, 3, 7, 5, 4, 2


def run_case(kwargs: dict, train: bool) -> dict[str, torch.Tensor]:
    """Outputs, masks and every gradient of one seeded RIM on one seeded input."""
    torch.manual_seed(0)
    rim = RIM(INPUT, HIDDEN, UNITS, K, **SIZES, **kwargs).train(train)
    x = torch.randn(T, B, INPUT, requires_grad=True)
    torch.manual_seed(1)  # the dropout draws
    out, state, masks = rim(x, return_masks=True)
    states = state if isinstance(state, tuple) else (state,)
    loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum() + sum(s.sum() for s in states)
    loss.backward()
    record = {"out": out.detach(), "masks": masks, "grad_x": x.grad}
    record.update({f"state{i}": s.detach() for i, s in enumerate(states)})
    record.update({f"grad/{name}": p.grad for name, p in rim.named_parameters()})
    return record


def main() -> None:
    torch.set_num_threads(1)
    data = {}
    for name, kwargs in CASES.items():
        for train in (False, True):
            for key, value in run_case(kwargs, train).items():
                data[f"{name}/{'train' if train else 'eval'}/{key}"] = value
    OUT.parent.mkdir(exist_ok=True)
    torch.save(data, OUT)
    print(f"wrote {len(data)} tensors to {OUT}")


if __name__ == "__main__":
    main()
