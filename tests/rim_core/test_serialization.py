"""Saving a whole model: ``torch.save(model)`` and ``torch.load(..., weights_only=True)`` with
rim_core's classes allow-listed, as PyTorch's examples save an ``nn.LSTM``."""

import io
import pickle

import pytest
import torch
from torch import nn

import rim_core
from rim_core import RIM, GroupGRUCell, GroupLinear, GroupLSTMCell, RIMCell, RIMOptions

SMALL = dict(input_key_size=8, input_query_size=8, input_value_size=12, comm_key_size=6,
             comm_query_size=6, comm_value_size=5, num_comm_heads=2)
# rim_core's classes and the torch.nn modules they hold: no functions
CLASSES = [RIM, RIMCell, GroupLinear, GroupLSTMCell, GroupGRUCell, RIMOptions, nn.ModuleList, nn.Linear]

MODELS = {
    "rim": lambda: RIM(5, 6, 4, 2, **SMALL),
    "rim_gru_2_layers_bidirectional": lambda: RIM(5, 6, 4, 2, "GRU", num_layers=2, bidirectional=True,
                                                  dropout=0.2, **SMALL),
    "rim_authors": lambda: RIM(5, 6, 4, 2, variant="authors"),
    "cell": lambda: RIMCell(5, 6, 4, 2, **SMALL),
    "cell_authors_gru": lambda: RIMCell(5, 6, 4, 2, "GRU", variant="authors"),
}


def save_and_load(model: nn.Module, allowed: list) -> nn.Module:
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    with torch.serialization.safe_globals(allowed):
        return torch.load(buffer, weights_only=True)


def outputs(model: nn.Module) -> list[torch.Tensor]:
    torch.manual_seed(1)
    if isinstance(model, RIM):
        out, state, masks = model(torch.randn(7, 3, 5), return_masks=True)
    else:
        state, masks = model(torch.randn(3, 5))
        out = None
    state = state if isinstance(state, tuple) else (state,)
    return [t for t in (out, *state, masks) if t is not None]


@pytest.mark.parametrize("name", list(MODELS))
def test_whole_model_loads_with_weights_only_and_its_classes_allowed(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    loaded = save_and_load(model, CLASSES)
    assert type(loaded) is type(model) and not loaded.training
    for got, want in zip(outputs(loaded), outputs(model), strict=True):
        assert torch.equal(got, want)


@pytest.mark.parametrize("name", list(MODELS))
def test_safe_globals_loads_every_model(name):
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    loaded = save_and_load(model, rim_core.SAFE_GLOBALS)
    for got, want in zip(outputs(loaded), outputs(model), strict=True):
        assert torch.equal(got, want)


def test_safe_globals_is_the_minimal_list():
    assert sorted(rim_core.SAFE_GLOBALS, key=str) == sorted(CLASSES, key=str)
    models = [make().eval() for make in MODELS.values()]
    for dropped in rim_core.SAFE_GLOBALS:
        allowed = [g for g in rim_core.SAFE_GLOBALS if g is not dropped]
        needed = False
        for model in models:
            try:
                save_and_load(model, allowed)
            except pickle.UnpicklingError as err:
                assert dropped.__name__ in str(err)
                needed = True
        assert needed, f"{dropped.__name__} is not needed"


class Tagger(nn.Module):
    """A user's model around a RIM."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 5)
        self.rim = RIM(5, 6, 4, 2, batch_first=True, **SMALL)
        self.head = nn.Linear(24, 3)

    def forward(self, tokens):
        return self.head(self.rim(self.embed(tokens))[0])


def test_a_model_around_a_rim_loads_with_its_own_classes_added():
    torch.manual_seed(0)
    model = Tagger().eval()
    loaded = save_and_load(model, [*rim_core.SAFE_GLOBALS, Tagger, nn.Embedding])
    tokens = torch.randint(0, 10, (3, 7))
    assert torch.equal(loaded(tokens), model(tokens))
