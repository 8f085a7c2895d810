"""The communication update: gated (bounded, the default) and residual (the paper's equation)."""

import math

import pytest
import torch

from rim_core import RIM, RIMCell

SMALL = dict(input_key_size=4, input_query_size=4, input_value_size=3, comm_key_size=3,
             comm_query_size=3, comm_value_size=2, num_comm_heads=2, num_input_heads=2)


def reference_step(cell: RIMCell, x, h, c=None):
    """One RIM step written out unit by unit from the formulas (eval mode: no dropout).

    x: (B, I); h, c: (B, N, H). Returns (h, c or None, mask)."""
    n_units, hidden = cell.num_units, cell.hidden_size
    heads, dk, dv = cell.num_input_heads, cell.input_key_size, cell.input_value_size
    keys = (x @ cell.input_key.weight.T).view(-1, heads, dk)
    values = (x @ cell.input_value.weight.T).view(-1, heads, dv)
    p = torch.stack([torch.sigmoid(((h[:, n] @ cell.input_query.weight[n].T).view(-1, heads, dk) * keys)
                                   .sum(-1) / math.sqrt(dk)) for n in range(n_units)], 1)  # (B, N, heads)
    relevance = p.mean(-1)
    mask = torch.zeros_like(relevance, dtype=torch.bool)
    for b in range(x.size(0)):  # the k largest; ties to the lower index
        order = sorted(range(n_units), key=lambda n: (-relevance[b, n].item(), n))
        mask[b, order[: cell.k]] = True
    rnn = cell.rnn
    h_new, c_new = h.clone(), None if c is None else c.clone()
    for n in range(n_units):
        read = (p[:, n].unsqueeze(-1) * values).reshape(x.size(0), heads * dv)
        gi = read @ rnn.weight_ih[n].T + rnn.bias_ih[n]
        gh = h[:, n] @ rnn.weight_hh[n].T + rnn.bias_hh[n]
        if c is not None:
            i, f, g, o = (gi + gh).chunk(4, -1)
            cn = torch.sigmoid(f) * c[:, n] + torch.sigmoid(i) * torch.tanh(g)
            hn = torch.sigmoid(o) * torch.tanh(cn)
            c_new[:, n] = torch.where(mask[:, n:n + 1], cn, c[:, n])
        else:
            ir, iz, i_n = gi.chunk(3, -1)
            hr, hz, h_n = gh.chunk(3, -1)
            r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
            cand = torch.tanh(i_n + r * h_n)
            hn = (1 - z) * cand + z * h[:, n]
        h_new[:, n] = torch.where(mask[:, n:n + 1], hn, h[:, n])
    ch, cdk, cdv = cell.num_comm_heads, cell.comm_key_size, cell.comm_value_size
    qkv = [h_new[:, n] @ cell.comm_qkv.weight[n].T for n in range(n_units)]
    q = torch.stack([t[:, : ch * cdk] for t in qkv], 1).view(-1, n_units, ch, cdk)
    k = torch.stack([t[:, ch * cdk: 2 * ch * cdk] for t in qkv], 1).view(-1, n_units, ch, cdk)
    v = torch.stack([t[:, 2 * ch * cdk:] for t in qkv], 1).view(-1, n_units, ch, cdv)
    attention = torch.einsum("bnhd,bmhd->bhnm", q, k).div(math.sqrt(cdk)).softmax(-1)
    context = torch.einsum("bhnm,bmhd->bnhd", attention, v).reshape(-1, n_units, ch * cdv)
    out = h_new.clone()
    for n in range(n_units):
        w, bias = cell.comm_output.weight[n], cell.comm_output.bias[n]
        if cell.comm_update == "gated":
            value = context[:, n] @ w[:hidden].T + bias[:hidden]
            gate = context[:, n] @ w[hidden:].T + bias[hidden:]
            update = torch.sigmoid(gate) * torch.tanh(value)
        else:
            update = context[:, n] @ w.T + bias
        out[:, n] = torch.where(mask[:, n:n + 1], h_new[:, n] + update, h_new[:, n])
    return out, c_new, mask


@pytest.mark.parametrize("comm_update", ["gated", "residual"])
@pytest.mark.parametrize("rnn_cell", ["LSTM", "GRU"])
def test_step_matches_the_written_out_formula(comm_update, rnn_cell):
    torch.manual_seed(0)
    cell = RIMCell(5, 4, 5, 3, rnn_cell, comm_update=comm_update, **SMALL).double().eval()
    x = torch.randn(3, 5, dtype=torch.float64)
    h = torch.randn(3, 5, 4, dtype=torch.float64)
    c = torch.randn(3, 5, 4, dtype=torch.float64) if rnn_cell == "LSTM" else None
    state, mask = cell(x, (h, c) if c is not None else h)
    want_h, want_c, want_mask = reference_step(cell, x, h, c)
    assert torch.equal(mask, want_mask)
    torch.testing.assert_close(state[0] if c is not None else state, want_h, rtol=1e-12, atol=1e-12)
    if c is not None:
        torch.testing.assert_close(state[1], want_c, rtol=1e-12, atol=1e-12)


def test_gated_output_map_holds_value_and_gate():
    gated = RIMCell(5, 4, 3, 2, comm_update="gated", **SMALL)
    residual = RIMCell(5, 4, 3, 2, comm_update="residual", **SMALL)
    assert gated.comm_output.weight.shape == (3, 8, 4)
    assert residual.comm_output.weight.shape == (3, 4, 4)
    assert "comm_update='gated'" in repr(gated)


def run_long(rnn_cell, comm_update, train, steps=1000, scale=10.0):
    """max|h| after each step of a fresh RIM whose communication weights are scaled."""
    torch.manual_seed(0)
    rim = RIM(8, 16, 6, 4, rnn_cell, comm_update=comm_update, input_dropout=0.1, comm_dropout=0.1)
    with torch.no_grad():
        for cell in rim.cells:
            cell.comm_qkv.weight.mul_(scale)
            cell.comm_output.weight.mul_(scale)
            cell.comm_output.bias.mul_(scale)
    rim.train(train)
    with torch.no_grad():
        out, _ = rim(torch.randn(steps, 4, 8))
    return out.abs().amax(dim=(1, 2))


@pytest.mark.parametrize("train", [False, True])
def test_gated_lstm_state_stays_below_two(train):
    peak = run_long("LSTM", "gated", train)
    assert torch.isfinite(peak).all()
    assert peak.max() < 2  # |h~| < 1 from the LSTM, plus at most 1 from communication


@pytest.mark.parametrize("train", [False, True])
def test_gated_gru_state_grows_at_most_linearly(train):
    peak = run_long("GRU", "gated", train)
    assert torch.isfinite(peak).all()
    steps = torch.arange(1, len(peak) + 1, dtype=peak.dtype)
    assert (peak <= steps + 1).all()  # the docstring's bound: t + 1 after t steps


def test_residual_update_blows_up_with_the_same_weights():
    # the failure the gated update prevents: same weights, the paper's plain residual
    peak = run_long("LSTM", "residual", train=False, steps=200)
    assert not (torch.isfinite(peak) & (peak < 2)).all()


def test_unknown_comm_update_is_a_one_line_error():
    with pytest.raises(ValueError, match="unknown comm_update 'plain'; choose one of"):
        RIMCell(5, 4, 3, 2, comm_update="plain")
