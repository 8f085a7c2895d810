"""Recurrent Independent Mechanisms (Goyal et al. 2019) for PyTorch."""

from rim_core.group_linear import GroupLinear, group_matmul
from rim_core.group_rnn import GroupGRUCell, GroupLSTMCell
from rim_core.rim import RIM
from rim_core.rim_cell import ProjectedInput, RIMCell
from rim_core.variants import VARIANTS, RIMOptions

__all__ = ["GroupLinear", "group_matmul", "GroupLSTMCell", "GroupGRUCell", "RIMCell", "RIM",
           "ProjectedInput", "RIMOptions", "VARIANTS"]
__version__ = "0.1.0"
