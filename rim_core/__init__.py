"""Recurrent Independent Mechanisms (Goyal et al. 2019) for PyTorch."""

import torch

from rim_core.group_linear import GroupLinear, group_matmul
from rim_core.group_rnn import GroupGRUCell, GroupLSTMCell
from rim_core.rim import RIM
from rim_core.rim_cell import ProjectedInput, RIMCell
from rim_core.variants import VARIANTS, RIMOptions

# What a whole saved model of rim_core needs beyond torch's defaults to load with
# ``torch.load(path, weights_only=True)``: rim_core's classes and the torch.nn modules they hold.
#     with torch.serialization.safe_globals(rim_core.SAFE_GLOBALS):
#         model = torch.load(path, weights_only=True)
SAFE_GLOBALS: list[type] = [RIM, RIMCell, GroupLinear, GroupLSTMCell, GroupGRUCell, RIMOptions,
                            torch.nn.ModuleList, torch.nn.Linear]

__all__ = ["GroupLinear", "group_matmul", "GroupLSTMCell", "GroupGRUCell", "RIMCell", "RIM",
           "ProjectedInput", "RIMOptions", "VARIANTS", "SAFE_GLOBALS"]
__version__ = "0.1.0"
