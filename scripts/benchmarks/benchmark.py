"""Speed of RIM against PyTorch's own recurrent layers (forward + backward of one training step).

1. ``RIM(64, 100, num_units=6, k=4)`` (LSTM and GRU cells, all other arguments default;
   ``--comm-update residual`` times the plain residual communication update) against
   ``nn.LSTM(64, 600)`` / ``nn.GRU(64, 600)`` on x of shape (T=196, B=64, 64), the shape
   of a 14x14 sequential-MNIST batch. Optionally also with ``torch.compile`` of the step.
   Also timed: the RIM's matrix products alone (forward and backward, same shapes, no
   element-wise work), a floor that no fusion of the element-wise work can go below;
   and on CUDA, the same training step captured once in a CUDA graph and replayed.
2. Time per step of the grouped cell (``GroupLSTMCell``) as the number of units grows,
   against a Python loop over one ``nn.LSTMCell`` per unit.

Every figure is the median of ``--repeats`` timed runs after warm-up. Prints a table,
writes ``<out>.json`` and a plot ``<out>.png``.

    python scripts/benchmarks/benchmark.py                 # full benchmark, CPU (and CUDA if present)
    python scripts/benchmarks/benchmark.py --quick         # a smaller, faster run
    python scripts/benchmarks/benchmark.py --compile       # also time the torch.compile'd RIM step
    python scripts/benchmarks/benchmark.py --devices cuda --compile --out results/benchmark_cuda   # GPU only
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

from experiments.common import cpu_name, environment_info
from rim_core import RIM, GroupLSTMCell, RIMCell


def median_time(fn, device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in seconds; synchronises only around each timed call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_step(model: nn.Module, x: torch.Tensor):
    def step():
        model.zero_grad(set_to_none=True)
        model(x)[0].sum().backward()
    return step


def capture_cuda_graph(step):
    """Capture ``step()`` (e.g. a whole forward + backward) once; returns the graph's replay.

    RIM has no host-device syncs, so the whole sequence fits in one graph. Tensors the
    step reads (inputs, parameters) must stay where they are: copy new data into them.
    """
    side = torch.cuda.Stream()  # warm up (cuBLAS handles, allocator) off the capture stream
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def compare_layers(device: torch.device, seq_len: int, batch: int, repeats: int,
                   compile_step: bool, comm_update: str) -> list[dict]:
    rows = []
    x = torch.randn(seq_len, batch, 64, device=device)
    for cell, torch_cls in (("LSTM", nn.LSTM), ("GRU", nn.GRU)):
        torch.manual_seed(0)
        baseline = torch_cls(64, 600).to(device)
        rim = RIM(64, 100, num_units=6, k=4, rnn_cell=cell, comm_update=comm_update).to(device)
        t_base = median_time(train_step(baseline, x), device, repeats)
        times = {"eager": median_time(train_step(rim, x), device, repeats),
                 "matmuls only": median_time(matmuls_only(rim.cells[0], seq_len, batch, device),
                                             device, repeats)}
        if device.type == "cuda":  # eager launches ~180 kernels per step; a graph replays them
            try:
                times["CUDA graph"] = median_time(capture_cuda_graph(train_step(rim, x)), device, repeats)
            except RuntimeError as error:  # report, and still time the other variants
                print(f"CUDA graph capture of the RIM {cell} step failed: {error}")
        if compile_step:
            rim.compile_step()
            times["compile_step"] = median_time(train_step(rim, x), device, repeats, warmup=3)
        rows += [dict(device=device.type, cell=cell, baseline=f"nn.{cell}(64, 600)", baseline_s=t_base,
                      variant=variant, rim_s=seconds, ratio=seconds / t_base)
                 for variant, seconds in times.items()]
    return rows


def matmuls_only(cell: RIMCell, seq_len: int, batch: int, device: torch.device):
    """Every matrix product of a RIM training step over the sequence, and nothing else.

    Forward products with the shapes ``RIMCell`` uses, and for each the two products of
    its backward (``dC B^T`` and ``A^T dC``, as autograd computes them). Its time is a
    floor for the whole step: what remains if all element-wise work were free.
    """
    n, hid, gates = cell.num_units, cell.hidden_size, cell.rnn.weight_hh.size(1)
    heads, dk, dv = cell.num_comm_heads, cell.comm_key_size, cell.comm_value_size
    rows, in_size = seq_len * batch, cell.input_size

    def weight_product(a_shape, out_features):  # x @ W^T with W stored (groups, out, in)
        return torch.randn(a_shape, device=device), torch.randn(
            a_shape[0], out_features, a_shape[-1], device=device).transpose(1, 2)

    def product(a_shape, b_shape):
        return torch.randn(a_shape, device=device), torch.randn(b_shape, device=device)

    once = [weight_product((1, rows, in_size), n * gates),  # input to gates, all steps at once
            weight_product((1, rows, in_size), cell.num_input_heads * cell.input_key_size)]
    per_step = [weight_product((n, batch, hid), cell.num_input_heads * cell.input_key_size),
                weight_product((n, batch, hid), gates),
                weight_product((n, batch, hid), heads * (2 * dk + dv)),
                product((batch * heads, n, dk), (batch * heads, dk, n)),
                product((batch * heads, n, n), (batch * heads, n, dv)),
                weight_product((n, batch, heads * dv), (2 if cell.comm_update == "gated" else 1) * hid)]
    with_grads = [(a, b, torch.bmm(a, b).normal_()) for a, b in once + per_step]
    once, per_step = with_grads[:len(once)], with_grads[len(once):]

    def forward_backward(a, b, grad):
        torch.bmm(a, b)
        torch.bmm(grad, b.transpose(1, 2))
        torch.bmm(a.transpose(1, 2), grad)

    def run():
        with torch.no_grad():
            for operands in once:
                forward_backward(*operands)
            for _ in range(seq_len):
                for operands in per_step:
                    forward_backward(*operands)
    return run


def grouped_step(cell: GroupLSTMCell, x, h, c) -> None:
    cell.zero_grad(set_to_none=True)
    out_h, out_c = cell(x, (h, c))
    (out_h.sum() + out_c.sum()).backward()


def looped_step(cells: nn.ModuleList, x, h, c) -> None:
    cells.zero_grad(set_to_none=True)
    total = 0
    for i, cell in enumerate(cells):
        out_h, out_c = cell(x[:, i], (h[:, i], c[:, i]))
        total = total + out_h.sum() + out_c.sum()
    total.backward()


def scale_units(device: torch.device, batch: int, repeats: int, units: list[int]) -> list[dict]:
    rows = []
    hidden = 100
    for n in units:
        torch.manual_seed(0)
        grouped = GroupLSTMCell(hidden, hidden, n).to(device)
        loop = nn.ModuleList(nn.LSTMCell(hidden, hidden) for _ in range(n)).to(device)
        tensors = [torch.randn(batch, n, hidden, device=device) for _ in range(3)]  # x, h, c
        t_group = median_time(partial(grouped_step, grouped, *tensors), device, repeats)
        t_loop = median_time(partial(looped_step, loop, *tensors), device, repeats)
        rows.append(dict(device=device.type, num_units=n, grouped_ms=t_group * 1e3,
                         loop_ms=t_loop * 1e3, speedup=t_loop / t_group))
    return rows


def plot(layer_rows: list[dict], unit_rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4))
    labels = [f"{r['device']} {r['cell']}\n{r['variant']}" for r in layer_rows]
    ax1.bar(labels, [r["ratio"] for r in layer_rows], color="tab:blue")
    ax1.axhline(1.5, color="tab:red", ls="--", label="goal 1.5x")
    ax1.set_ylabel("RIM time / nn.LSTM|GRU time")
    ax1.set_title("fwd+bwd, T=196, B=64 (6x100 units vs 600)")
    ax1.tick_params(axis="x", labelsize=7)
    ax1.legend()
    for device in sorted({r["device"] for r in unit_rows}):
        rows = [r for r in unit_rows if r["device"] == device]
        ax2.plot([r["num_units"] for r in rows], [r["grouped_ms"] for r in rows], "o-",
                 label=f"GroupLSTMCell ({device})")
        ax2.plot([r["num_units"] for r in rows], [r["loop_ms"] for r in rows], "s--",
                 label=f"loop of nn.LSTMCell ({device})")
    ax2.set_xscale("log", base=2)
    ax2.set_xlabel("num_units (hidden 100 each)")
    ax2.set_ylabel("ms per step (fwd+bwd)")
    ax2.set_title("one step, B=64")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per figure (median)")
    parser.add_argument("--seq-len", type=int, default=196)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--units", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of the RIM step")
    parser.add_argument("--devices", nargs="+", choices=["cpu", "cuda"], default=None,
                        help="devices to time (default: cpu, and cuda if available)")
    parser.add_argument("--quick", action="store_true", help="3 repeats, T=50, units 2 8 32")
    parser.add_argument("--comm-update", choices=("gated", "residual"), default="gated",
                        help="the RIM's communication update (default: gated, the RIM's default)")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark"),
                        help="writes OUT.json and OUT.png (results/ holds the committed ones)")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.seq_len, args.units = 3, 50, [2, 8, 32]

    if args.devices is None:
        args.devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    if "cuda" in args.devices and not torch.cuda.is_available():
        parser.error("--devices cuda: no CUDA device is available to this PyTorch")
    devices = [torch.device(name) for name in args.devices]
    layer_rows, unit_rows = [], []
    for device in devices:
        layer_rows += compare_layers(device, args.seq_len, args.batch, args.repeats, args.compile,
                                     args.comm_update)
        unit_rows += scale_units(device, args.batch, args.repeats, args.units)

    host = f"{cpu_name()}, {torch.get_num_threads()} threads"
    if "cuda" in args.devices:
        host += f", {torch.cuda.get_device_name()}"
    print(f"torch {torch.__version__}; {host}; T={args.seq_len}, B={args.batch}, "
          f"median of {args.repeats}; {args.comm_update} communication update")
    print(f"{'device':6} {'cell':4} {'RIM variant':13} {'baseline s':>10} {'RIM s':>8} {'RIM/baseline':>12}")
    for r in layer_rows:
        print(f"{r['device']:6} {r['cell']:4} {r['variant']:13} {r['baseline_s']:10.3f} "
              f"{r['rim_s']:8.3f} {r['ratio']:12.2f}")
    print(f"\n{'device':6} {'units':>5} {'grouped ms':>10} {'loop ms':>8} {'loop/grouped':>12}")
    for r in unit_rows:
        print(f"{r['device']:6} {r['num_units']:5d} {r['grouped_ms']:10.2f} {r['loop_ms']:8.2f} "
              f"{r['speedup']:12.2f}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(torch=torch.__version__, host=host, seq_len=args.seq_len, batch=args.batch,
                repeats=args.repeats, comm_update=args.comm_update, environment=environment_info())
    args.out.with_suffix(".json").write_text(json.dumps(dict(meta=meta, layers=layer_rows,
                                                             units=unit_rows), indent=2))
    plot(layer_rows, unit_rows, args.out.with_suffix(".png"))
    print(f"\nwrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
