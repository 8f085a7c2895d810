"""nn.LSTM drop-in: PackedSequence input, bias=False, flatten_parameters, nn.LSTM's warning,
the docstring examples."""

import doctest
import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rim_core.rim
import rim_core.rim_cell
from rim_core import RIM

SMALL = dict(input_key_size=4, input_query_size=4, input_value_size=6, comm_key_size=3,
             comm_query_size=3, comm_value_size=4, num_comm_heads=2)
LENGTHS = [5, 9, 1, 7]  # not sorted: the original order must come back


def build(rnn_cell, layers, bidirectional, batch_first=False):
    torch.manual_seed(0)
    return RIM(3, 4, 4, 2, rnn_cell, num_layers=layers, bidirectional=bidirectional,
               batch_first=batch_first, **SMALL).double().eval()


def per_sequence(rim, x, lengths, hx=None):
    """Each sequence alone: batch of 1, no padding. Returns outputs, h_n (and c_n), masks."""
    outs, states, masks = [], [], []
    for b, length in enumerate(lengths):
        state = None if hx is None else tuple(s[:, b:b + 1] for s in hx)
        if state is not None and rim.rnn_cell == "GRU":
            state = state[0]
        seq = x[:length, b:b + 1]
        out, state, mask = rim(seq.transpose(0, 1) if rim.batch_first else seq, state, return_masks=True)
        outs.append(out[0] if rim.batch_first else out[:, 0])
        states.append(state if isinstance(state, tuple) else (state,))
        masks.append(mask[0] if rim.batch_first else mask[:, 0])
    return outs, [torch.cat(parts, 1) for parts in zip(*states)], masks


CASES = list(itertools.product(["LSTM", "GRU"], [1, 2], [False, True], [False, True], [True, False]))


@pytest.mark.parametrize("rnn_cell,layers,bidirectional,batch_first,enforce_sorted", CASES)
def test_packed_equals_each_sequence_run_alone(rnn_cell, layers, bidirectional, batch_first,
                                               enforce_sorted):
    rim = build(rnn_cell, layers, bidirectional, batch_first)
    lengths = sorted(LENGTHS, reverse=True) if enforce_sorted else LENGTHS
    torch.manual_seed(1)
    x = torch.randn(max(lengths), len(lengths), 3, dtype=torch.float64)  # (T, B, in)
    packed = pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=enforce_sorted)
    out, state, masks = rim(packed, return_masks=True)
    want_out, want_state, want_masks = per_sequence(rim, x, lengths)

    assert isinstance(out, type(packed))
    assert torch.equal(out.batch_sizes, packed.batch_sizes)
    padded, out_lengths = pad_packed_sequence(out)
    assert out_lengths.tolist() == lengths
    states = state if isinstance(state, tuple) else (state,)
    for got, want in zip(states, want_state):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    assert masks.shape == (max(lengths), len(lengths), layers * (1 + bidirectional), 4)
    for b, length in enumerate(lengths):
        torch.testing.assert_close(padded[:length, b], want_out[b], rtol=1e-10, atol=1e-10)
        assert torch.equal(masks[:length, b], want_masks[b])
        assert not masks[length:, b].any()  # padded steps count as inactive


@pytest.mark.parametrize("rnn_cell", ["LSTM", "GRU"])
def test_packed_initial_state_is_in_the_original_batch_order(rnn_cell):
    rim = build(rnn_cell, 2, True)
    x = torch.randn(max(LENGTHS), 4, 3, dtype=torch.float64)
    hx = tuple(torch.randn(4, 4, 16, dtype=torch.float64) for _ in range(2 if rnn_cell == "LSTM" else 1))
    packed = pack_padded_sequence(x, torch.tensor(LENGTHS), enforce_sorted=False)
    _, state = rim(packed, hx if rnn_cell == "LSTM" else hx[0])
    _, want, _ = per_sequence(rim, x, LENGTHS, hx)
    for got, w in zip(state if isinstance(state, tuple) else (state,), want):
        torch.testing.assert_close(got, w, rtol=1e-10, atol=1e-10)


def test_packed_gradients_equal_per_sequence_gradients():
    rim = build("LSTM", 2, True)
    x = torch.randn(max(LENGTHS), 4, 3, dtype=torch.float64, requires_grad=True)
    out, (h_n, _) = rim(pack_padded_sequence(x, torch.tensor(LENGTHS), enforce_sorted=False))
    (out.data.pow(2).sum() + h_n.sum()).backward()
    packed_grads = [p.grad.clone() for p in rim.parameters()]
    x_grad = x.grad.clone()
    rim.zero_grad()
    x.grad = None
    outs, (h, _), _ = per_sequence(rim, x, LENGTHS)
    (sum(o.pow(2).sum() for o in outs) + h.sum()).backward()
    for got, want in zip(packed_grads, (p.grad for p in rim.parameters())):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(x_grad, x.grad, rtol=1e-9, atol=1e-10)
    for b, length in enumerate(LENGTHS):
        assert not x_grad[length:, b].any()  # padding never reaches the loss


def test_packed_input_errors():
    rim = build("LSTM", 1, False)
    with pytest.raises(ValueError, match=r"packed input must hold \(sum of lengths, 3\) data"):
        rim(pack_padded_sequence(torch.randn(5, 2, 7), torch.tensor([5, 3])))
    with pytest.raises(RuntimeError, match="Length of all samples has to be greater than 0"):
        pack_padded_sequence(torch.randn(5, 2, 3), torch.tensor([5, 0]), enforce_sorted=False)
    too_long = pack_padded_sequence(torch.randn(5, 2, 3), torch.tensor([6, 3]))  # torch accepts it
    with pytest.raises(ValueError, match="a length exceeded the padded input's seq_len"):
        rim(too_long)


@pytest.mark.parametrize("rnn_cell", ["LSTM", "GRU"])
def test_bias_false_removes_every_bias(rnn_cell):
    rim = RIM(3, 4, 4, 2, rnn_cell, num_layers=2, bias=False, **SMALL)
    assert not [name for name, _ in rim.named_parameters() if "bias" in name]
    with_bias = {name for name, _ in RIM(3, 4, 4, 2, rnn_cell, **SMALL).named_parameters() if "bias" in name}
    assert with_bias == {"cells.0.rnn.bias_ih", "cells.0.rnn.bias_hh", "cells.0.comm_output.bias"}
    out, _ = rim(torch.randn(6, 2, 3))
    assert torch.isfinite(out).all()
    # no bias and a zero state and input: nothing can move the state off zero
    out, _ = rim.eval()(torch.zeros(6, 2, 3))
    assert torch.equal(out, torch.zeros_like(out))


def test_flatten_parameters_is_a_no_op():
    rim = build("LSTM", 1, False)
    before = {k: v.clone() for k, v in rim.state_dict().items()}
    assert rim.flatten_parameters() is None
    assert all(torch.equal(v, before[k]) for k, v in rim.state_dict().items())


def test_dropout_with_one_layer_warns_like_nn_lstm():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1") as ours:
        RIM(3, 4, 4, 2, dropout=0.3)
    with pytest.warns(UserWarning) as theirs:
        torch.nn.LSTM(3, 4, dropout=0.3)
    assert str(ours[0].message) == str(theirs[0].message)


@pytest.mark.parametrize("module", [rim_core.rim, rim_core.rim_cell])
def test_docstring_examples_run(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("rnn_cell", ["LSTM", "GRU"])
def test_a_compiled_step_runs_the_whole_batch_and_gives_the_same_results(rnn_cell):
    # A compiled step is not shown a shrinking batch (it would recompile per batch size):
    # the finished sequences' results are dropped instead. The flag alone selects that path.
    rim = build(rnn_cell, 2, True)
    x = torch.randn(max(LENGTHS), 4, 3, dtype=torch.float64)
    packed = pack_padded_sequence(x, torch.tensor(LENGTHS), enforce_sorted=False)
    shrinking = rim(packed, return_masks=True)
    for cell in rim.cells:
        cell.step_is_compiled = True
    whole_batch = rim(packed, return_masks=True)
    torch.testing.assert_close(whole_batch[0].data, shrinking[0].data, rtol=1e-12, atol=1e-12)
    for got, want in zip(*(s if isinstance(s, tuple) else (s,) for s in (whole_batch[1], shrinking[1]))):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert torch.equal(whole_batch[2], shrinking[2])
