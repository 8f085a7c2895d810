"""The ``"authors"`` variant against the authors' own BlocksCore (golden data made by their
code, tests/data/README.md), RIMCell.from_authors, and one test per switch.

Tie order is checked on the CPU only: ``torch.topk``'s order among equal values is
unspecified and may differ on CUDA (test_cuda.py compares a CUDA run with a CPU run).
"""

import dataclasses

import pytest
import torch

from rim_core import RIM, RIMCell, RIMOptions
from rim_core.authors import AUTHORS_OPTIONS, NUM_GATES, their_key, their_shapes
from tests.rim_core.authors_golden import CASES, load_case, run_cell


@pytest.fixture(scope="module", params=CASES)
def case(request):
    return load_case(request.param)


def authors_cell(case, **changes) -> RIMCell:
    cell = RIMCell.from_authors(case.params, case.k, case.rnn_cell).eval()
    if changes:  # the same weights under other switches
        options = dataclasses.replace(cell.options, **changes)
        other = RIMCell(cell.input_size, cell.hidden_size, cell.num_units, cell.k, cell.rnn_cell,
                        variant="authors", options=options).eval()
        other.load_state_dict(cell.state_dict())
        cell = other
    return cell


def test_masks_states_and_gradients_equal_the_authors_code(case):
    torch.set_num_threads(1)  # as the golden data was made
    cell = authors_cell(case)
    got = run_cell(cell, case)
    assert case.data["tie"][0].all()  # t=0 is an all-way tie, decided by topk's order
    assert torch.equal(got["mask"], case.data["mask"])
    torch.testing.assert_close(got["h"], case.data["h"], rtol=0, atol=1e-6)
    if case.rnn_cell == "LSTM":
        torch.testing.assert_close(got["c"], case.data["c"], rtol=0, atol=1e-6)

    def close(ours, theirs, name):
        error = (ours - theirs).abs().max().item()
        assert error <= 1e-5 * theirs.abs().max().item(), f"{name}: {error}"

    close(got["grad_x"], case.data["grad_x"], "dL/dx")
    expected = case.ours(case.grads)
    for name, p in cell.named_parameters():
        close(p.grad, expected[name], name)
    # their null slot's key and value maps multiply a zero row: dead, gradient exactly 0
    for dead in ("inp_att.GLN_ks.w", "inp_att.GLN_vs.w"):
        assert not case.grads[dead][0].any()


def test_rim_sequence_equals_stepping_the_cell(case):
    cell = authors_cell(case)
    rim = RIM(cell.input_size, cell.hidden_size, cell.num_units, case.k, case.rnn_cell,
              variant="authors").eval()
    rim.cells[0].load_state_dict(cell.state_dict())
    out, _, masks = rim(case.data["x"], return_masks=True)
    stepped = run_cell(cell, case)
    torch.testing.assert_close(out, stepped["h"], rtol=0, atol=1e-7)
    assert torch.equal(masks[:, :, 0], stepped["mask"])


def test_inactive_offer_changes_the_state(case):
    """D1: inactive units offering the state they keep, not their proposal, changes h."""
    theirs = run_cell(authors_cell(case), case)
    ours = run_cell(authors_cell(case, inactive_offer="kept"), case)
    assert torch.equal(theirs["mask"][0], ours["mask"][0])
    assert (theirs["h"] - ours["h"]).abs().max() > 1e-3


def test_detached_offer_changes_only_gradients(case):
    """D2: the forward is the same; the gradients are not."""
    cells = [authors_cell(case), authors_cell(case, detach_inactive_offer=False)]
    blocked, full = (run_cell(cell, case) for cell in cells)
    assert torch.equal(blocked["h"], full["h"]) and torch.equal(blocked["mask"], full["mask"])
    assert (blocked["grad_x"] - full["grad_x"]).abs().max() > 1e-4
    grads = [torch.cat([p.grad.flatten() for p in cell.parameters()]) for cell in cells]
    assert (grads[0] - grads[1]).abs().max() > 1e-4


def test_tie_rule_changes_the_first_mask(case):
    """B2: from the zero state every unit ties; lower_index keeps units 0..k-1. topk's order
    (CPU) happens to agree for 4 units and k=2 (it drops units 2 and 3), not for 6 and k=4
    (it drops 3 and 5)."""
    ours = run_cell(authors_cell(case, tie_break="lower_index"), case)
    first = ours["mask"][0]
    assert first[:, : case.k].all() and not first[:, case.k:].any()
    assert torch.equal(first, case.data["mask"][0]) == (case.config["num_blocks"] == 4)


# ---------------------------------------------------------------- from_authors: bad input


def test_from_authors_reads_the_sizes_and_the_preset(case):
    cell = authors_cell(case)
    n, h = case.config["num_blocks"], case.config["block_size"]
    assert (cell.num_units, cell.hidden_size, cell.input_size) == (n, h, case.config["ninp"])
    assert (cell.input_value_size, cell.num_comm_heads, cell.comm_key_size) == (4 * h, 4, 16)
    assert cell.options == AUTHORS_OPTIONS and cell.comm_output.weight.shape == (1, 2 * h, 64)


def bad_input_cases():
    case = load_case("lstm_n4_h4")
    missing = {k: v for k, v in case.params.items() if k != "mha.fc.bias"}
    wrong = {**case.params, "mha.gate_fc.bias": torch.zeros(5)}
    dense_weight = case.params["block_lstm.lstm.weight_hh"].clone()
    dense_weight[0, -1] = 0.5  # unit 0's row, unit 3's column
    not_blockified = {**case.params, "block_lstm.lstm.weight_hh": dense_weight}
    prefixed = {f"bc_lst.0.{k}": v for k, v in case.params.items()}
    return [
        (missing, 2, "LSTM", "missing key 'mha.fc.bias'"),
        (wrong, 2, "LSTM", "'mha.gate_fc.bias' has shape (5,), expected (4,)"),
        (not_blockified, 2, "LSTM", "'block_lstm.lstm.weight_hh': its off-diagonal blocks are not zero"),
        (case.params, 5, "LSTM", "k must satisfy 1 <= k <= num_units (4), got k=5"),
        (case.params, 2, "GRU", "unexpected key 'block_lstm.lstm.bias_hh'"),
        (prefixed, 2, "LSTM", "unexpected key 'bc_lst.0."),
    ]


@pytest.mark.parametrize("state_dict,k,rnn_cell,message", bad_input_cases(),
                         ids=["missing", "shape", "dense", "k", "cell", "prefix"])
def test_from_authors_rejects_bad_input_in_one_line(state_dict, k, rnn_cell, message):
    with pytest.raises(ValueError) as err:
        RIMCell.from_authors(state_dict, k, rnn_cell)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_blockify_drops_what_their_forward_zeroes():
    """A checkpoint saved after an optimiser step holds non-zero off-diagonal RNN blocks, which
    their forward zeroes before use: with blockify=True they are dropped, the rest is kept."""
    case = load_case("gru_n4_h4")
    key = "block_lstm.gru.weight_ih"
    trained = {**case.params, key: case.params[key] + 0.5}  # every entry non-zero
    with pytest.raises(ValueError, match="pass blockify=True"):
        RIMCell.from_authors(trained, case.k, "GRU")
    cell = RIMCell.from_authors(trained, case.k, "GRU", blockify=True)
    clean = RIMCell.from_authors(case.params, case.k, "GRU")
    torch.testing.assert_close(cell.rnn.weight_ih, clean.rnn.weight_ih + 0.5)


def test_presets_merge_with_explicit_arguments():
    cell = RIMCell(8, 10, 4, 2, variant="authors", comm_value_size=8)
    assert (cell.input_value_size, cell.comm_value_size, cell.comm_key_size) == (40, 8, 16)
    assert RIMCell(8, 10, 4, 2, variant="authors", options=RIMOptions()).options == RIMOptions()
    with pytest.raises(ValueError, match="unknown RIM variant 'theirs'"):
        RIMCell(8, 10, 4, 2, variant="theirs")
    with pytest.raises(ValueError, match="unknown tie_break 'random'"):
        RIMOptions(tie_break="random")


@pytest.mark.parametrize("rnn_cell", ["LSTM", "GRU"])
def test_a_converted_cell_runs_in_a_rim_as_the_docs_show(rnn_cell):
    """docs/model.md#the-authors-released-code: their weights in a one-layer RIM, here with
    communication sizes other than the preset's 16."""
    sizes = {"num_units": 5, "hidden_size": 3, "input_size": 7, "dk": 64, "dv": 12, "comm_dk": 8,
             "comm_dv": 6, "gates": NUM_GATES[rnn_cell]}
    gen = torch.Generator().manual_seed(0)
    layer0 = {their_key(name, rnn_cell): 0.5 * torch.randn(shape, generator=gen)
              for name, shape in their_shapes(sizes).items()}
    cell = RIMCell.from_authors(layer0, k=3, rnn_cell=rnn_cell, blockify=True)
    assert cell.training and (cell.comm_key_size, cell.comm_value_size) == (8, 6)
    # as docs/model.md shows it
    rim = RIM(cell.input_size, cell.hidden_size, cell.num_units, cell.k, cell.rnn_cell,
              variant="authors", comm_key_size=cell.comm_key_size,
              comm_query_size=cell.comm_key_size, comm_value_size=cell.comm_value_size)
    rim.cells[0].load_state_dict(cell.state_dict())
    rim.eval()
    x = torch.randn(6, 2, 7, generator=gen)
    out, h_n, masks = rim(x, return_masks=True)
    cell.eval()
    hx = None
    for t in range(6):
        hx, mask = cell(x[t], hx)
        h = hx[0] if rnn_cell == "LSTM" else hx
        torch.testing.assert_close(out[t], h.reshape(2, -1), rtol=0, atol=1e-6)
        assert torch.equal(masks[t, :, 0], mask)
