"""On a GPU: CUDA computes what the CPU computes, and the compiled step and a CUDA-graph
replay compute what the eager step does (the checks of scripts/benchmarks/check_cuda.py, for pytest).
Skipped where no CUDA device is available; run ``pytest tests/rim_core/test_cuda.py`` on a GPU."""

import copy

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from rim_core import RIM, RIMCell
from tests.rim_core.authors_golden import CASES as GOLDEN_CASES
from tests.rim_core.authors_golden import load_case, run_cell

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
T, B, INPUT = 30, 8, 16
CELLS = ["LSTM", "GRU"]


def build(cell: str, dtype: torch.dtype) -> RIM:
    torch.manual_seed(0)
    return RIM(INPUT, 20, num_units=6, k=4, rnn_cell=cell, num_layers=2, bidirectional=True).to(dtype).eval()


def run(model: RIM, x) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Forward + backward: (outputs, states and every parameter gradient), masks."""
    model.zero_grad(set_to_none=True)
    out, state, masks = model(x, return_masks=True)
    out = out.data if isinstance(out, torch.nn.utils.rnn.PackedSequence) else out
    states = list(state) if isinstance(state, tuple) else [state]
    (out.square().mean() + sum(s.square().mean() for s in states)).backward()
    return [out, *states, *(p.grad for p in model.parameters())], masks


def assert_all_close(a: list[torch.Tensor], b: list[torch.Tensor], tol: float) -> None:
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.double().cpu(), y.double().cpu(), rtol=tol, atol=tol)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_cuda_float64_equals_cpu(cell, packed):
    cpu = build(cell, torch.float64)
    gpu = copy.deepcopy(cpu).cuda()
    x = torch.randn(T, B, INPUT, dtype=torch.float64)
    lengths = torch.randint(1, T + 1, (B,))

    def inp(t):
        return pack_padded_sequence(t, lengths, enforce_sorted=False) if packed else t

    values_cpu, masks_cpu = run(cpu, inp(x))
    values_gpu, masks_gpu = run(gpu, inp(x.cuda()))
    assert torch.equal(masks_cpu, masks_gpu.cpu())
    assert_all_close(values_cpu, values_gpu, 1e-9)


@pytest.mark.parametrize("cell", CELLS)
def test_compiled_step_equals_eager_on_cuda(cell):
    eager = build(cell, torch.float32).cuda()
    compiled = copy.deepcopy(eager).compile_step()
    x = torch.randn(T, B, INPUT, device="cuda")
    values_eager, masks_eager = run(eager, x)
    values_compiled, masks_compiled = run(compiled, x)
    assert torch.equal(masks_eager, masks_compiled)
    assert_all_close(values_eager, values_compiled, 1e-4)


@pytest.mark.parametrize("cell", CELLS)
def test_cuda_graph_replay_equals_eager(cell):
    eager = build(cell, torch.float32).cuda()
    graphed = copy.deepcopy(eager)
    x = torch.randn(T, B, INPUT, device="cuda")
    values_eager, masks_eager = run(eager, x)

    static_x, captured = torch.zeros_like(x), []  # the graph reads static_x: copy new data in
    side = torch.cuda.Stream()  # warm up off the capture stream
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            run(graphed, static_x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured.append(run(graphed, static_x))
    static_x.copy_(x)
    graph.replay()
    values_graph, masks_graph = captured[0]
    assert torch.equal(masks_eager, masks_graph)
    assert_all_close(values_eager, values_graph, 1e-5)


@pytest.mark.parametrize("cell", CELLS)
def test_bf16_autocast_training_is_finite(cell):
    model = build(cell, torch.float32).cuda().train()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        values, _ = run(model, torch.randn(T, B, INPUT, device="cuda"))
    assert all(torch.isfinite(v).all() for v in values)


@pytest.mark.parametrize("name", GOLDEN_CASES)
def test_authors_variant_on_cuda_equals_cpu_ties_included(name):
    """The "authors" variant breaks ties in torch.topk's order, which is unspecified and may
    differ on CUDA; the golden data (made on the CPU) fixes the CPU's. Every t=0 is a tie."""
    case = load_case(name)
    cell = RIMCell.from_authors(case.params, case.k, case.rnn_cell).eval()
    cpu = run_cell(cell, case)
    gpu = run_cell(copy.deepcopy(cell).cuda(), case, "cuda")
    assert torch.equal(gpu["mask"], cpu["mask"]), "CUDA's topk orders ties unlike the CPU's"
    for key in cpu:
        if key != "mask":
            torch.testing.assert_close(gpu[key], cpu[key], rtol=1e-4, atol=1e-5)
