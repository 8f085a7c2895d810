"""Check that RIM computes the same thing on a GPU as on the CPU (needs CUDA).

The test suite runs on the CPU only (CI has no GPU); run this on a machine with one.

1. float64, dropout off: outputs, final states, selected units and every parameter
   gradient of a 2-layer bidirectional RIM (LSTM and GRU cells) on CUDA equal the CPU's
   to 1e-9.
2. float32 on CUDA: the ``torch.compile``'d step gives the eager step's outputs and
   gradients (to 1e-4), and so does a CUDA graph of the whole forward + backward, captured
   once and replayed on new input (to 1e-5).
3. bf16 autocast on CUDA: forward and backward give finite values.

Prints one line per check and exits non-zero if any fails.

    python scripts/benchmarks/check_cuda.py
"""

from __future__ import annotations

import copy
import sys

import torch
from benchmark import capture_cuda_graph  # scripts/ is on the path when run as a script

from rim_core import RIM

T, B, INPUT = 30, 8, 16


def build(cell: str, dtype: torch.dtype) -> RIM:
    torch.manual_seed(0)
    return RIM(INPUT, 20, num_units=6, k=4, rnn_cell=cell, num_layers=2,
               bidirectional=True).to(dtype).eval()


def run(model: RIM, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Forward + backward; returns (outputs, states, grads) as a flat list, and the masks."""
    model.zero_grad(set_to_none=True)
    out, state, masks = model(x, return_masks=True)
    states = list(state) if isinstance(state, tuple) else [state]
    (out.square().mean() + sum(s.square().mean() for s in states)).backward()
    return [out, *states, *(p.grad for p in model.parameters())], masks


def graph_run(model: RIM, x: torch.Tensor):
    """``run(model, x)`` captured in a CUDA graph: (replay, the captured call's tensors,
    which each replay rewrites)."""
    captured = []
    replay = capture_cuda_graph(lambda: captured.append(run(model, x)))
    return replay, captured[-1]


def max_difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max((x.double().cpu() - y.double().cpu()).abs().max().item() for x, y in zip(a, b))


def main() -> int:
    if not torch.cuda.is_available():
        print("check_cuda.py: no CUDA device is available to this PyTorch; run it on a GPU machine")
        return 2
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    failures = 0

    def report(name: str, ok: bool, detail: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")

    for cell in ("LSTM", "GRU"):
        cpu = build(cell, torch.float64)
        gpu = copy.deepcopy(cpu).cuda()
        x = torch.randn(T, B, INPUT, dtype=torch.float64)
        values_cpu, masks_cpu = run(cpu, x)
        values_gpu, masks_gpu = run(gpu, x.cuda())
        same_masks = torch.equal(masks_cpu, masks_gpu.cpu())
        diff = max_difference(values_cpu, values_gpu)
        report(f"{cell} float64 CUDA vs CPU", same_masks and diff < 1e-9,
               f"same units selected: {same_masks}, max |difference| {diff:.1e}")

        eager = build(cell, torch.float32).cuda()
        compiled = copy.deepcopy(eager)
        for rim_cell in compiled.cells:
            rim_cell.compile_step()
        x32 = torch.randn(T, B, INPUT, device="cuda")
        values_eager, masks_eager = run(eager, x32)
        values_compiled, masks_compiled = run(compiled, x32)
        same_masks = torch.equal(masks_eager, masks_compiled)
        diff = max_difference(values_eager, values_compiled)
        report(f"{cell} float32 compiled step vs eager", same_masks and diff < 1e-4,
               f"same units selected: {same_masks}, max |difference| {diff:.1e}")

        static_x = torch.zeros_like(x32)  # the graph reads this tensor: new data is copied in
        replay, (values_graph, masks_graph) = graph_run(copy.deepcopy(eager), static_x)
        static_x.copy_(x32)
        replay()
        same_masks = torch.equal(masks_eager, masks_graph)
        diff = max_difference(values_eager, values_graph)
        report(f"{cell} float32 CUDA graph replay vs eager", same_masks and diff < 1e-5,
               f"same units selected: {same_masks}, max |difference| {diff:.1e}")

        eager.train()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            values_bf16, _ = run(eager, x32)
        finite = all(torch.isfinite(v).all().item() for v in values_bf16)
        report(f"{cell} bf16 autocast, training mode", finite, f"all outputs and gradients finite: {finite}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
