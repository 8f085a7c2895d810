"""The default RIM computes what it computed when tests/data/default_reference.pt was recorded
(make_default_reference.py, before the cell got its variant seams): outputs, masks and every
gradient, in training (dropout) and eval mode. Bit-identical on the machine that recorded
it; the tolerance allows for another BLAS."""

import pytest
import torch

from tests.rim_core.make_default_reference import CASES, OUT, run_case

REFERENCE = torch.load(OUT, weights_only=True)


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", list(CASES))
def test_default_step_is_unchanged(name, train):
    got = run_case(CASES[name], train)
    prefix = f"{name}/{'train' if train else 'eval'}/"
    want = {key[len(prefix):]: value for key, value in REFERENCE.items() if key.startswith(prefix)}
    assert set(got) == set(want)
    assert torch.equal(got["masks"], want["masks"])
    for key, value in got.items():
        torch.testing.assert_close(value, want[key], rtol=1e-5, atol=1e-6, msg=key)
