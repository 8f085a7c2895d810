import pytest
import torch
from torch import nn

from rim_core import GroupGRUCell, GroupLinear, GroupLSTMCell

B, N, IN, H = 5, 3, 7, 4


def test_group_linear_equals_separate_linears():
    torch.manual_seed(0)
    group = GroupLinear(IN, H, N)
    x = torch.randn(B, N, IN)
    y = group(x)
    assert y.shape == (B, N, H)
    for n in range(N):
        lin = nn.Linear(IN, H)
        with torch.no_grad():
            lin.weight.copy_(group.weight[n])
            lin.bias.copy_(group.bias[n])
        torch.testing.assert_close(y[:, n], lin(x[:, n]))


def test_group_linear_init_is_bounded_and_varied():
    group = GroupLinear(256, 8, N)
    bound = 1 / 256 ** 0.5
    assert group.weight.abs().max() <= bound
    assert group.weight.std() > bound / 3  # not constant (e.g. all ones)
    assert not torch.equal(group.weight[0], group.weight[1])


@pytest.mark.parametrize("cls,ref_cls", [(GroupLSTMCell, nn.LSTMCell), (GroupGRUCell, nn.GRUCell)])
def test_group_cell_equals_copied_torch_cells(cls, ref_cls):
    torch.manual_seed(0)
    group = cls(IN, H, N)
    x = torch.randn(B, N, IN)
    h = torch.randn(B, N, H)
    c = torch.randn(B, N, H)
    out = group(x, (h, c)) if cls is GroupLSTMCell else group(x, h)
    for n in range(N):
        ref = ref_cls(IN, H)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(ref, name).copy_(getattr(group, name)[n])
        if cls is GroupLSTMCell:
            h_ref, c_ref = ref(x[:, n], (h[:, n], c[:, n]))
            torch.testing.assert_close(out[0][:, n], h_ref)
            torch.testing.assert_close(out[1][:, n], c_ref)
        else:
            torch.testing.assert_close(out[:, n], ref(x[:, n], h[:, n]))


def test_group_cell_zero_default_state():
    torch.manual_seed(0)
    cell = GroupLSTMCell(IN, H, N)
    x = torch.randn(B, N, IN)
    zeros = torch.zeros(B, N, H)
    torch.testing.assert_close(cell(x), cell(x, (zeros, zeros)), rtol=0, atol=0)


def test_group_cell_init_matches_torch_bounds():
    cell = GroupGRUCell(IN, 64, N)
    bound = 1 / 64 ** 0.5
    for p in cell.parameters():
        assert p.abs().max() <= bound
        assert p.std() > bound / 3


def test_group_cell_rejects_wrong_shapes():
    cell = GroupLSTMCell(IN, H, N)
    with pytest.raises(ValueError, match="input must be"):
        cell(torch.randn(B, N + 1, IN))
    with pytest.raises(ValueError, match="state must be"):
        cell(torch.randn(B, N, IN), (torch.zeros(B, N, H + 1), torch.zeros(B, N, H + 1)))
    with pytest.raises(ValueError, match="num_units must be >= 1"):
        GroupGRUCell(IN, H, 0)
