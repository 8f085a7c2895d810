"""The cell's invariants, over a table of variants (as PyTorch's module_db does for modules).

Each row is a variant or one switch flipped alone; ``breaks`` names the invariants a row gives
up by design, and for each of those the test asserts what holds instead.
"""

from dataclasses import dataclass, field

import pytest
import torch

from rim_core import RIM, RIMCell, RIMOptions

SMALL = dict(input_key_size=8, input_query_size=8, input_value_size=12, comm_key_size=6,
             comm_query_size=6, comm_value_size=5, num_comm_heads=2)


@dataclass(frozen=True)
class Variant:
    kwargs: dict
    breaks: frozenset = field(default_factory=frozenset)


VARIANTS = {
    "default": Variant({}),
    # The authors' preset at small sizes; its blocked gradient is not the forward's gradient.
    "authors": Variant({"variant": "authors", "input_value_size": 12, "comm_key_size": 6,
                        "comm_query_size": 6, "comm_value_size": 5, "num_comm_heads": 2},
                       frozenset({"gradcheck", "ties_to_lower_index"})),
    "proposed offer": Variant({"options": RIMOptions(inactive_offer="proposed")},
                              frozenset({"no_gradient_to_inactive_units"})),
    "detached offer": Variant({"options": RIMOptions(detach_inactive_offer=True)}, frozenset({"gradcheck"})),
    "topk ties": Variant({"options": RIMOptions(tie_break="topk")}, frozenset({"ties_to_lower_index"})),
    "shared output": Variant({"options": RIMOptions(shared_comm_output=True)}),
    "dropout on values": Variant({"options": RIMOptions(dropout_on="values")}),
    "authors init": Variant({"options": RIMOptions(init="authors")}),
}
NAMES = list(VARIANTS)


def make_cell(name, rnn_cell="LSTM", k=2, num_units=4, hidden=6, inp=5, **kw):
    torch.manual_seed(0)
    return RIMCell(inp, hidden, num_units, k, rnn_cell, **{**SMALL, **VARIANTS[name].kwargs, **kw})


def random_state(cell, batch, dtype=torch.float32):
    shape = (batch, cell.num_units, cell.hidden_size)
    if cell.rnn_cell == "LSTM":
        return torch.randn(shape, dtype=dtype), torch.randn(shape, dtype=dtype)
    return torch.randn(shape, dtype=dtype)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rnn_cell", ["LSTM", "GRU"])
@pytest.mark.parametrize("heads", [1, 3])
def test_exactly_k_units_active(name, rnn_cell, heads):
    cell = make_cell(name, rnn_cell, k=3, num_units=5, num_input_heads=heads)
    x = torch.randn(32, 5)
    state, mask = cell(x)
    assert mask.shape == (32, 5) and mask.dtype == torch.bool
    assert (mask.sum(1) == 3).all()
    state, mask = cell(x, state)
    assert (mask.sum(1) == 3).all()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rnn_cell", ["LSTM", "GRU"])
def test_inactive_units_keep_state_bit_identical(name, rnn_cell):
    cell = make_cell(name, rnn_cell).train()  # dropout on: the kept state must still be exact
    hx = random_state(cell, 16)
    new, mask = cell(torch.randn(16, 5), hx)
    for old_s, new_s in zip(as_tuple(hx), as_tuple(new)):
        assert torch.equal(new_s[~mask], old_s[~mask])
    assert not torch.equal(as_tuple(new)[0][mask], as_tuple(hx)[0][mask])  # the active ones changed


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rnn_cell", ["LSTM", "GRU"])
def test_ties_go_to_the_lower_index(name, rnn_cell):
    # From the zero state every unit's query is zero, so all relevances tie.
    cell = make_cell(name, rnn_cell, k=3, num_units=6)
    _, mask = cell(torch.randn(16, 5))
    if "ties_to_lower_index" in VARIANTS[name].breaks:  # torch.topk's order instead
        # the authors' rule written out: the N - k largest null probabilities are inactive
        inactive = torch.topk(torch.full((16, 6), 0.5), 6 - 3, dim=1).indices
        assert torch.equal(mask, torch.ones(16, 6, dtype=torch.bool).scatter_(1, inactive, False))
    else:
        assert mask[:, :3].all() and not mask[:, 3:].any()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rnn_cell", ["LSTM", "GRU"])
def test_no_gradient_reaches_inactive_units_own_parameters(name, rnn_cell):
    cell = make_cell(name, rnn_cell, k=2, num_units=5)
    state, mask = cell(torch.randn(1, 5), random_state(cell, 1))
    sum(s.sum() for s in as_tuple(state)).backward()
    inactive, active = ~mask[0], mask[0]
    offered = [cell.rnn.weight_ih, cell.rnn.weight_hh, cell.rnn.bias_ih, cell.rnn.bias_hh,
               cell.input_query.weight]  # what computes a unit's proposal
    own = [] if cell.options.shared_comm_output else [cell.comm_output.weight]  # its discarded update
    proposals_offered = "no_gradient_to_inactive_units" in VARIANTS[name].breaks
    for params, reaches in ((offered, proposals_offered), (own, False)):
        for p in params:
            assert torch.count_nonzero(p.grad[active]) > 0
            # where inactive units offer their proposals, gradient reaches what computed them
            assert (torch.count_nonzero(p.grad[inactive]) > 0) == reaches


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rnn_cell", ["LSTM", "GRU"])
def test_gradcheck_float64(name, rnn_cell):
    cell = make_cell(name, rnn_cell, k=2, num_units=3, hidden=3, inp=2).to(torch.float64).eval()
    x = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    hx = tuple(s.requires_grad_() for s in as_tuple(random_state(cell, 2, torch.float64)))
    _, mask = cell(x, hx if rnn_cell == "LSTM" else hx[0])

    def fn(x, *hx):
        state, m = cell(x, hx if rnn_cell == "LSTM" else hx[0])
        assert torch.equal(m, mask)  # perturbations must not flip the top-k choice
        return as_tuple(state)

    exact = "gradcheck" not in VARIANTS[name].breaks  # else: a blocked gradient, by design
    assert torch.autograd.gradcheck(fn, (x, *hx), eps=1e-6, atol=1e-5, raise_exception=False) == exact


@pytest.mark.parametrize("name", NAMES)
def test_eval_mode_is_deterministic_and_train_mode_uses_dropout(name):
    cell = make_cell(name, input_dropout=0.5, comm_dropout=0.5)
    x, hx = torch.randn(10, 5), random_state(cell, 10)
    cell.eval()
    assert torch.equal(cell(x, hx)[0][0], cell(x, hx)[0][0])
    cell.train()
    torch.manual_seed(1)
    c, _ = cell(x, hx)
    torch.manual_seed(2)
    d, _ = cell(x, hx)
    assert not torch.equal(c[0], d[0])


@pytest.mark.parametrize("name", NAMES)
def test_each_dropout_acts_on_its_own_side(name):
    # c is written only by the input side (communication changes h alone), so input
    # dropout must make c random and communication dropout must leave it alone.
    x = torch.randn(16, 5)

    def two_draws(**dropouts):
        cell = make_cell(name, k=4, **dropouts).train()
        hx = random_state(cell, 16)
        torch.manual_seed(1)
        (h1, c1), _ = cell(x, hx)
        torch.manual_seed(2)
        (h2, c2), _ = cell(x, hx)
        return torch.equal(h1, h2), torch.equal(c1, c2)

    assert two_draws(input_dropout=0.0, comm_dropout=0.5) == (False, True)
    assert two_draws(input_dropout=0.5, comm_dropout=0.0) == (False, False)


@pytest.mark.parametrize("name", NAMES)
def test_unbatched_input_equals_a_batch_of_one(name):
    cell = make_cell(name).eval()
    x = torch.randn(5)
    (h, c), mask = cell(x)
    (hb, cb), maskb = cell(x.unsqueeze(0))
    assert h.shape == (4, 6) and mask.shape == (4,)
    torch.testing.assert_close(h, hb[0])
    assert torch.equal(mask, maskb[0])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("train", [False, True])
def test_rim_equals_stepping_the_cell(name, train):
    torch.manual_seed(0)
    rim = RIM(5, 6, 4, 2, **{**SMALL, **VARIANTS[name].kwargs}).train(train)
    x = torch.randn(9, 3, 5)
    torch.manual_seed(1)  # in training, the same dropout draws in the same order
    out, (h_n, c_n), masks = rim(x, return_masks=True)
    cell, state = rim.cells[0], None
    torch.manual_seed(1)
    for t in range(9):
        state, mask = cell(x[t], state)
        torch.testing.assert_close(out[t], state[0].reshape(3, -1))
        assert torch.equal(masks[t, :, 0], mask)
    torch.testing.assert_close(h_n[0], state[0].reshape(3, -1))
    torch.testing.assert_close(c_n[0], state[1].reshape(3, -1))


@pytest.mark.parametrize("switch,value", [("inactive_offer", "dropped"), ("tie_break", "random"),
                                          ("detach_inactive_offer", 1), ("shared_comm_output", "yes"),
                                          ("init", "xavier")])
def test_options_name_a_bad_switch_value(switch, value):
    # a value of another type is refused too (1 is not True), so a typo cannot pass silently
    with pytest.raises(ValueError, match=f"RIMOptions: unknown {switch} {value!r}; choose one of"):
        RIMOptions(**{switch: value})
