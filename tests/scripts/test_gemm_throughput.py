"""scripts/benchmarks/gemm_throughput.py: the two backends compute the same products, and the
training-step count includes every product of the forward and backward passes."""


import torch
from gemm_throughput import LSTMCellLoop, onednn_linear, products, training_step_macs

from rim_core import RIMCell


def test_onednn_and_mkl_compute_the_same_products():
    torch.manual_seed(0)
    cell = RIMCell(8, 12, num_units=3, k=2, input_key_size=5, input_query_size=5,
                   comm_key_size=4, comm_query_size=4, comm_value_size=6, num_comm_heads=2)
    for _, in_features, out_features in products(cell, lstm_hidden=16).values():
        x, w = torch.randn(7, in_features), torch.randn(out_features, in_features)
        torch.testing.assert_close(onednn_linear(x, w), x @ w.t())


def test_lstm_count_has_forward_and_both_backward_products():
    seq_len, batch, inputs, hidden = 5, 3, 4, 6
    x = torch.randn(seq_len, batch, inputs)  # needs no gradient: no product for dx
    gates = 4 * hidden
    forward = seq_len * batch * gates * (inputs + hidden)
    weight_grads = forward
    state_grads = (seq_len - 1) * batch * gates * hidden  # the zero initial state needs none
    assert training_step_macs(LSTMCellLoop(inputs, hidden), x) == forward + weight_grads + state_grads
