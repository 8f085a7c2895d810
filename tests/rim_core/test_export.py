"""Tracing and ONNX export of a RIM (docs/model.md#limitations), and the selection rules'
exportable form against the sort and scatter they replace.

The exported graphs are run with ONNX's reference evaluator (pure Python, part of ``onnx``);
the ONNX tests skip where ``onnx`` / ``onnxscript`` are not installed.
"""

import io

import pytest
import torch
from torch import nn

from rim_core import RIM
from rim_core.selection import lower_index_wins, topk_order

pytestmark = pytest.mark.filterwarnings("ignore")  # trace's and the exporters' deprecation notes


def relevances():
    """Relevances ``(N, B)`` full of ties (and some NaN), with every k."""
    gen = torch.Generator().manual_seed(0)
    for trial in range(600):
        n = int(torch.randint(1, 10, (), generator=gen))
        b = int(torch.randint(1, 6, (), generator=gen))
        relevance = torch.randint(0, 3, (n, b), generator=gen).float() / 2  # ties
        if trial % 3 == 0:
            relevance = torch.rand(n, b, generator=gen)
        if trial % 5 == 0:
            relevance[torch.rand(n, b, generator=gen) < 0.3] = float("nan")
        for k in range(1, n + 1):
            yield relevance, k


def test_lower_index_wins_is_the_first_k_of_a_stable_sort():
    for relevance, k in relevances():
        top = relevance.sort(dim=0, descending=True, stable=True).indices[:k]
        want = torch.zeros_like(relevance, dtype=torch.bool).scatter_(0, top, True)
        assert torch.equal(lower_index_wins(relevance, k), want), (relevance, k)


def test_topk_order_is_torch_topk_order():
    for relevance, k in relevances():
        null = (1 - relevance).t()
        inactive = torch.topk(null, relevance.size(0) - k, dim=1).indices
        want = torch.ones_like(null, dtype=torch.bool).scatter_(1, inactive, False).t()
        assert torch.equal(topk_order(relevance, k), want), (relevance, k)


class WithMasks(nn.Module):
    """``rim(x, hx, return_masks=True)`` as a module to trace or export: out, h_n, c_n, masks."""

    def __init__(self, rim: RIM):
        super().__init__()
        self.rim = rim

    def forward(self, x, h0, c0):
        out, (h, c), masks = self.rim(x, (h0, c0), return_masks=True)
        return out, h, c, masks


def model_and_inputs(variant: str, random_state: bool):
    """A small RIM in eval mode, an input ``(T, B, 5)``, and a zero state (every unit ties at
    t=0) or a random one (no ties)."""
    torch.manual_seed(0)
    rim = RIM(5, 6, 4, 2, variant=variant).eval()
    x = torch.randn(4, 3, 5)
    shape = (1, 3, rim.state_size)
    state = (torch.randn(shape), torch.randn(shape)) if random_state else (torch.zeros(shape),) * 2
    return WithMasks(rim).eval(), (x, *state)


def check(got, want, atol):
    for g, w in zip(got, want, strict=True):
        g = torch.as_tensor(g)
        if w.dtype == torch.bool:
            assert torch.equal(g, w)
        else:
            torch.testing.assert_close(g, w, rtol=0, atol=atol)


@pytest.mark.parametrize("variant", ["default", "authors"])
def test_trace_equals_eager_from_a_tie(variant):
    model, inputs = model_and_inputs(variant, random_state=False)
    traced = torch.jit.trace(model, inputs)
    with torch.no_grad():
        check(traced(*inputs), model(*inputs), atol=1e-6)
        other_batch = (inputs[0][:, :2], inputs[1][:, :2], inputs[2][:, :2])
        check(traced(*other_batch), model(*other_batch), atol=1e-6)


def run_onnx(model_proto, inputs):
    from onnx.reference import ReferenceEvaluator

    names = [i.name for i in model_proto.graph.input]
    return ReferenceEvaluator(model_proto).run(None, {n: t.numpy() for n, t in zip(names, inputs)})


# The authors' variant ranks with topk, whose order among equal values is ONNX TopK's
# (lower index first) in the graph and unspecified in torch: compared from a random state.
@pytest.mark.parametrize("variant, random_state", [("default", False), ("authors", True)])
def test_onnx_export_torchscript_equals_eager(variant, random_state):
    onnx = pytest.importorskip("onnx")
    model, inputs = model_and_inputs(variant, random_state)
    buffer = io.BytesIO()
    torch.onnx.export(model, inputs, buffer, dynamo=False)
    model_proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(model_proto)
    with torch.no_grad():
        check(run_onnx(model_proto, inputs), model(*inputs), atol=1e-5)


def test_onnx_export_dynamo_equals_eager():
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    model, inputs = model_and_inputs("default", random_state=False)
    model_proto = torch.onnx.export(model, inputs, dynamo=True, verbose=False).model_proto
    onnx.checker.check_model(model_proto)
    with torch.no_grad():
        check(run_onnx(model_proto, inputs), model(*inputs), atol=1e-5)
