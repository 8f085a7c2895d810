import copy

import pytest
import torch
from torch import nn

from rim_core import RIM, RIMCell

SMALL = dict(input_key_size=8, input_query_size=8, input_value_size=12, comm_key_size=6,
             comm_query_size=6, comm_value_size=5, num_comm_heads=2)


def make_cell(rnn_cell="LSTM", k=2, num_units=4, hidden=6, inp=5, **kw):
    torch.manual_seed(0)
    return RIMCell(inp, hidden, num_units, k, rnn_cell, **{**SMALL, **kw})


def random_state(cell, batch):
    shape = (batch, cell.num_units, cell.hidden_size)
    if cell.rnn_cell == "LSTM":
        return torch.randn(shape), torch.randn(shape)
    return torch.randn(shape)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def test_active_units_are_the_top_k_by_input_attention():
    cell = make_cell(num_input_heads=2).eval()
    x = torch.randn(8, 5)
    h, c = random_state(cell, 8)
    _, mask = cell(x, (h, c))
    # recompute relevance from the parameters: softmax over [null, input], averaged over heads
    q = torch.einsum("bnh,nqh->bnq", h, cell.input_query.weight).view(8, 4, 2, -1)
    k = cell.input_key(x).view(8, 1, 2, -1)
    scores = (q * k).sum(-1) / cell.input_key_size ** 0.5
    null_and_input = torch.stack([torch.zeros_like(scores), scores], -1).softmax(-1)
    relevance = null_and_input[..., 1].mean(-1)
    expected = torch.zeros_like(mask).scatter_(1, relevance.topk(2, dim=1).indices, True)
    assert torch.equal(mask, expected)


@pytest.mark.parametrize("rnn_cell", ["LSTM", "GRU"])
def test_k_equals_num_units_updates_every_unit(rnn_cell):
    cell = make_cell(rnn_cell, k=4, num_units=4)
    hx = random_state(cell, 6)
    new, mask = cell(torch.randn(6, 5), hx)
    assert mask.all()
    for old_s, new_s in zip(as_tuple(hx), as_tuple(new)):
        assert (new_s != old_s).any(-1).all()


def test_factory_kwargs_and_state_dict_round_trip():
    cell = RIMCell(5, 6, 4, 2, dtype=torch.float64, **SMALL)
    assert all(p.dtype == torch.float64 for p in cell.parameters())
    rim = RIM(5, 6, 4, 2, num_layers=2, **SMALL).eval()
    clone = RIM(5, 6, 4, 2, num_layers=2, **SMALL).eval()
    clone.load_state_dict(rim.state_dict())
    x = torch.randn(7, 3, 5)
    assert torch.equal(rim(x)[0], clone(x)[0])


@pytest.mark.parametrize("kwargs,message", [
    (dict(k=0), "k must satisfy"),
    (dict(k=5), "k must satisfy"),
    (dict(rnn_cell="RNN"), "unknown rnn_cell"),
    (dict(input_query_size=9), "input_key_size"),
    (dict(comm_query_size=9), "comm_key_size"),
    (dict(input_dropout=1.0), "input_dropout"),
    (dict(comm_dropout=-0.1), r"comm_dropout must be in \[0, 1\), got -0.1"),
    (dict(hidden_size=0), "hidden_size must be >= 1"),
    (dict(input_size=0), "input_size must be >= 1"),
    (dict(num_units=0, k=0), "num_units must be >= 1"),
    (dict(num_input_heads=0), "num_input_heads must be >= 1"),
    (dict(comm_value_size=0), "comm_value_size must be >= 1"),
    (dict(num_comm_heads=0), "num_comm_heads must be >= 1"),
    (dict(options={"init": "authors"}), "options must be a RIMOptions, got dict"),
])
def test_cell_constructor_errors(kwargs, message):
    args = dict(input_size=5, hidden_size=6, num_units=4, k=2, **SMALL)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        RIMCell(**args)


def test_cell_rejects_wrong_shapes():
    cell = make_cell()
    with pytest.raises(ValueError, match="input must be"):
        cell(torch.randn(3, 4))
    with pytest.raises(ValueError, match="state must have shape"):
        cell(torch.randn(3, 5), (torch.zeros(3, 4, 7), torch.zeros(3, 4, 7)))
    with pytest.raises(ValueError, match="tuple"):
        cell(torch.randn(3, 5), torch.zeros(3, 4, 6))
    gru = make_cell("GRU")
    with pytest.raises(ValueError, match="single tensor"):
        gru(torch.randn(3, 5), (torch.zeros(3, 4, 6), torch.zeros(3, 4, 6)))


# ---------------------------------------------------------------- RIM (sequence)


@pytest.mark.parametrize("rnn_cell,torch_cls", [("LSTM", nn.LSTM), ("GRU", nn.GRU)])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (3, False), (2, True)])
def test_rim_shapes_equal_torch_rnn(rnn_cell, torch_cls, layers, bidirectional):
    T, B, IN, N, H = 6, 3, 5, 4, 6
    rim = RIM(IN, H, N, 2, rnn_cell, num_layers=layers, bidirectional=bidirectional, **SMALL)
    ref = torch_cls(IN, N * H, num_layers=layers, bidirectional=bidirectional)
    x = torch.randn(T, B, IN)
    out, state, masks = rim(x, return_masks=True)
    ref_out, ref_state = ref(x)
    assert out.shape == ref_out.shape
    for s, r in zip(as_tuple(state), as_tuple(ref_state)):
        assert s.shape == r.shape
    assert masks.shape == (T, B, layers * (2 if bidirectional else 1), N)
    assert (masks.sum(-1) == 2).all()
    # a given state is used, and has nn.LSTM's shapes
    out2, _ = rim(x, ref_state)
    assert out2.shape == out.shape and not torch.allclose(out2, out)
    # an empty batch gives empty outputs of nn.LSTM's shapes, as nn.LSTM does
    empty, ref_empty = rim(x[:, :0]), ref(x[:, :0])
    for s, r in zip((empty[0], *as_tuple(empty[1])), (ref_empty[0], *as_tuple(ref_empty[1]))):
        assert s.shape == r.shape


def test_rim_zero_default_state():
    rim = RIM(5, 6, 4, 2, **SMALL).eval()
    x = torch.randn(4, 2, 5)
    zeros = torch.zeros(1, 2, 24)
    assert torch.equal(rim(x)[0], rim(x, (zeros, zeros))[0])


@pytest.mark.parametrize("heads", [1, 2])
def test_a_compiled_step_is_not_recompiled_for_a_longer_sequence(heads):
    # Models are tested on longer sequences than they were trained on; each step's input
    # must look the same to torch.compile's guards whatever the length (its strides too).
    torch._dynamo.reset()
    compiled = []

    def count(graph, example_inputs):
        compiled.append(graph)
        return graph.forward

    eager = RIM(5, 6, 4, 2, num_input_heads=heads, **SMALL).eval()
    rim = copy.deepcopy(eager).compile_step(backend=count)
    with torch.no_grad():
        rim(torch.randn(3, 2, 5))
        first = len(compiled)
        for length in (4, 9):
            x = torch.randn(length, 2, 5)
            out, _, masks = rim(x, return_masks=True)
            expected, _, expected_masks = eager(x, return_masks=True)
            assert torch.equal(out, expected) and torch.equal(masks, expected_masks)  # the traced step
    torch._dynamo.reset()
    assert first > 0 and len(compiled) == first


def test_batch_first_equals_transposed_call():
    rim = RIM(5, 6, 4, 2, num_layers=2, bidirectional=True, **SMALL).eval()
    x = torch.randn(7, 3, 5)
    out, (h, c), masks = rim(x, return_masks=True)
    rim.batch_first = True
    out_bf, (h_bf, c_bf), masks_bf = rim(x.transpose(0, 1), return_masks=True)
    torch.testing.assert_close(out_bf, out.transpose(0, 1))
    torch.testing.assert_close(h_bf, h)
    assert torch.equal(masks_bf, masks.transpose(0, 1))


def test_unbatched_sequence():
    rim = RIM(5, 6, 4, 2, **SMALL).eval()
    x = torch.randn(7, 5)
    out, (h, c) = rim(x)
    out_b, (h_b, c_b) = rim(x.unsqueeze(1))
    assert out.shape == (7, 24) and h.shape == (1, 24)
    torch.testing.assert_close(out, out_b[:, 0])


def test_bidirectional_reverse_direction_depends_only_on_the_future():
    rim = RIM(5, 6, 4, 2, bidirectional=True, **SMALL).eval()
    x = torch.randn(8, 2, 5)
    out = rim(x)[0]
    t = 4
    x2 = x.clone()
    x2[:t] = torch.randn(t, 2, 5)  # change only the past
    out2 = rim(x2)[0]
    reverse = slice(24, 48)
    torch.testing.assert_close(out2[t:, :, reverse], out[t:, :, reverse], rtol=0, atol=0)
    assert not torch.allclose(out2[t:, :, :24], out[t:, :, :24])  # forward direction sees it


def test_inter_layer_dropout_only_in_training():
    rim = RIM(5, 6, 4, 2, num_layers=2, dropout=0.5, input_dropout=0.0, comm_dropout=0.0,
              **{k: v for k, v in SMALL.items()})
    x = torch.randn(5, 3, 5)
    rim.eval()
    assert torch.equal(rim(x)[0], rim(x)[0])
    rim.train()
    torch.manual_seed(0)
    a = rim(x)[0]
    torch.manual_seed(1)
    assert not torch.equal(a, rim(x)[0])


def test_n_layers_alias():
    assert RIM(5, 6, 4, 2, n_layers=3, **SMALL).num_layers == 3
    with pytest.raises(ValueError, match="alias"):
        RIM(5, 6, 4, 2, num_layers=2, n_layers=3, **SMALL)


def test_rim_backward_reaches_all_layers():
    rim = RIM(5, 6, 4, 2, num_layers=2, **SMALL)
    x = torch.randn(6, 3, 5, requires_grad=True)
    rim(x)[0].sum().backward()
    assert x.grad.abs().sum() > 0
    for cell in rim.cells:
        assert cell.rnn.weight_hh.grad.abs().sum() > 0


@pytest.mark.parametrize("call,message", [
    (lambda rim: rim(torch.randn(4, 3, 6)), "input must be"),
    (lambda rim: rim(torch.randn(4, 3, 2, 5)), "input must be"),
    (lambda rim: rim(torch.randn(4, 3, 5), (torch.zeros(1, 3, 24),) * 2), "state must have shape"),
    (lambda rim: rim(torch.randn(4, 3, 5), torch.zeros(2, 3, 24)), "tuple"),
    (lambda rim: rim(torch.randn(0, 3, 5)), "empty"),
])
def test_rim_rejects_bad_input(call, message):
    rim = RIM(5, 6, 4, 2, num_layers=2, **SMALL)
    with pytest.raises(ValueError, match=message):
        call(rim)


def test_rim_constructor_errors():
    with pytest.raises(ValueError, match="k must satisfy"):
        RIM(5, 6, 4, 5)
    with pytest.raises(ValueError, match="num_layers"):
        RIM(5, 6, 4, 2, num_layers=0)
    with pytest.raises(ValueError, match="unknown rnn_cell"):
        RIM(5, 6, 4, 2, rnn_cell="lstm")
    for dropout in (-0.1, 1.0):
        with pytest.raises(ValueError, match=rf"RIM: dropout must be in \[0, 1\), got {dropout}"):
            RIM(5, 6, 4, 2, num_layers=2, dropout=dropout)


def test_reset_parameters_names_an_unknown_init():
    with pytest.raises(ValueError, match="unknown init 'xavier'; choose 'pytorch' or 'authors'"):
        make_cell().reset_parameters("xavier")

