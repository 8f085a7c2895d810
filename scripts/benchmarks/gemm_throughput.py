"""Matrix-product throughput of PyTorch's two CPU backends, for the RIM's and nn.LSTM's products.

On x86 CPUs, PyTorch's float32 ``mm``/``bmm`` (every product of the RIM) calls MKL, and
``nn.LSTM``'s CPU kernel calls oneDNN. This script times the same products through both
backends, in multiply-adds per second. oneDNN is reached through
``torch.ops.mkldnn._linear_pointwise``, a private operator used here only to measure. It
also counts the multiply-adds of one training step (forward + backward) of the RIM and of
``nn.LSTM`` with ``scripts/benchmarks/benchmark.py``'s shapes (``torch.utils.flop_counter``).

    python scripts/benchmarks/gemm_throughput.py                  # 1 thread, then all threads
    python scripts/benchmarks/gemm_throughput.py --threads 2 --out results/gemm_throughput
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from experiments.common import cpu_name, environment_info
from rim_core import RIM, RIMCell

SEQ_LEN, BATCH = 196, 64  # benchmark.py's shapes: one 14x14 sequential-MNIST batch


def products(cell: RIMCell, lstm_hidden: int) -> dict[str, tuple[int, int, int]]:
    """``(groups, in, out)`` of each per-step product: the RIM's per-unit weight maps and
    nn.LSTM's recurrent product, read from the parameters' shapes."""
    def of(weight: torch.Tensor) -> tuple[int, int, int]:
        groups, out_features, in_features = weight.shape
        return groups, in_features, out_features

    return {"RIM input query": of(cell.input_query.weight),
            "RIM recurrence": of(cell.rnn.weight_hh),
            "RIM comm q/k/v": of(cell.comm_qkv.weight),
            "RIM comm output": of(cell.comm_output.weight),
            "nn.LSTM recurrence": (1, lstm_hidden, 4 * lstm_hidden)}


def onednn_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T`` computed by oneDNN."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, None, "none", [], "")


def giga_macs_per_s(fn, macs: int, repeats: int) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(10):
            fn()
        times.append((time.perf_counter() - start) / 10)
    return macs / statistics.median(times) / 1e9


def throughput(shapes: dict[str, tuple[int, int, int]], batch: int, repeats: int) -> list[dict]:
    rows = []
    for name, (groups, in_features, out_features) in shapes.items():
        x = torch.randn(groups, batch, in_features)
        w = torch.randn(groups, out_features, in_features)
        one_unit = batch * in_features * out_features
        row = dict(product=name, groups=groups, rows=batch, inner=in_features, cols=out_features,
                   mkl_mm=giga_macs_per_s(partial(torch.mm, x[0], w[0].t()), one_unit, repeats),
                   onednn=giga_macs_per_s(partial(onednn_linear, x[0], w[0]), one_unit, repeats))
        if groups > 1:  # what RIMCell runs: one bmm over all units
            row["mkl_bmm"] = giga_macs_per_s(partial(torch.bmm, x, w.transpose(1, 2)),
                                             groups * one_unit, repeats)
        rows.append(row)
    return rows


def training_step_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of the matrix products of ``model(x)[0].sum().backward()``."""
    with FlopCounterMode(display=False) as counter:
        model(x)[0].sum().backward()
    return counter.get_total_flops() // 2


class LSTMCellLoop(nn.Module):
    """nn.LSTM's arithmetic as a loop of ``nn.LSTMCell``, whose products the flop counter sees
    (it does not look inside oneDNN's fused LSTM kernel)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(input_size, hidden_size)

    def forward(self, x: torch.Tensor):
        h = c = x.new_zeros(x.size(1), self.cell.hidden_size)
        outputs = []
        for x_t in x:
            h, c = self.cell(x_t, (h, c))
            outputs.append(h)
        return torch.stack(outputs), (h, c)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="thread counts to time (default: 1 and all)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per figure (median)")
    parser.add_argument("--comm-update", choices=("gated", "residual"), default="gated",
                        help="the RIM's communication update (default: gated, the RIM's default)")
    parser.add_argument("--out", type=Path, default=Path("runs/gemm_throughput"),
                        help="writes OUT.json (results/ holds the committed ones)")
    args = parser.parse_args()
    if not torch.backends.mkldnn.is_available():
        parser.error("this PyTorch build has no oneDNN (mkldnn); nothing to compare")
    threads = args.threads or sorted({1, torch.get_num_threads()})

    torch.manual_seed(0)
    x = torch.randn(SEQ_LEN, BATCH, 64)
    rim = RIM(64, 100, num_units=6, k=4, comm_update=args.comm_update)
    macs = {"RIM": training_step_macs(rim, x), "nn.LSTM": training_step_macs(LSTMCellLoop(64, 600), x)}
    shapes = products(rim.cells[0], lstm_hidden=600)

    rows = []
    for n in threads:
        torch.set_num_threads(n)
        rows += [dict(threads=n, **row) for row in throughput(shapes, BATCH, args.repeats)]

    print(f"torch {torch.__version__}; {cpu_name()}; "
          f"median of {args.repeats}; rows = batch = {BATCH}; {args.comm_update} communication update")
    print(f"{'threads':>7} {'product (per unit)':20} {'in':>4} {'out':>5} "
          f"{'MKL mm':>7} {'oneDNN':>7} {'MKL bmm':>8}   GMAC/s")
    for r in rows:
        bmm = f"{r['mkl_bmm']:8.1f}" if "mkl_bmm" in r else f"{'':8}"
        print(f"{r['threads']:7d} {r['product']:20} {r['inner']:4d} {r['cols']:5d} "
              f"{r['mkl_mm']:7.1f} {r['onednn']:7.1f} {bmm}")
    print(f"\nmultiply-adds of one training step (T={SEQ_LEN}, B={BATCH}): "
          f"RIM {macs['RIM'] / 1e9:.1f} G, nn.LSTM(64, 600) {macs['nn.LSTM'] / 1e9:.1f} G "
          f"(RIM / nn.LSTM = {macs['RIM'] / macs['nn.LSTM']:.2f})")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(torch=torch.__version__, host=cpu_name(), seq_len=SEQ_LEN, batch=BATCH, repeats=args.repeats,
                comm_update=args.comm_update, environment=environment_info())
    args.out.with_suffix(".json").write_text(json.dumps(
        dict(meta=meta, training_step_macs=macs, throughput=rows), indent=2))
    print(f"wrote {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
