"""Actor-critic with memory for MiniGrid: image encoder -> LSTM or RIM -> actor and critic.

The encoder and heads follow rl-starter-files: three small convolutions turn the 7x7x3
grid into 64 features; actor and critic are each a 64-unit tanh layer and a linear
output. The memory is ``nn.LSTMCell`` or ``rim_core.RIMCell``; both carry
``num_units * hidden_size`` features of h (and as many of c), so the LSTM baseline and
the RIM agent have memories of the same size, and the heads read all of h.

torch-ac keeps the recurrent state as one flat vector per environment, ``(B, memory_size)``,
which it zeroes at episode ends. :func:`pack_memory` / :func:`unpack_memory` convert it
from / to the ``(h, c)`` pair; the layout is ``[h of unit 0, ..., h of unit N-1, c of
unit 0, ..., c of unit N-1]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.distributions import Categorical

from experiments.common import UserError
from experiments.minigrid.envs import torch_ac
from experiments.recurrent import saved_rim_options
from rim_core import RIMCell, RIMOptions


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an :class:`ACModel`; saved in ``status.pt``."""

    use_rim: bool
    num_actions: int
    image_shape: tuple[int, int, int] = (7, 7, 3)
    num_units: int = 4  # the paper's Kt; the LSTM has num_units * hidden_size features
    k: int = 3  # the paper's Ka: units active at each step
    hidden_size: int = 16  # per unit
    # RIM attention sizes. Values as in the reference MiniGrid RIM (input values of 64
    # features, communication values of 16, its unit size); keys and the number of
    # communication heads smaller than rim_core's defaults, for speed: at this size the
    # cell's time goes to per-operation overhead, and each head costs attention calls.
    input_key_size: int = 32
    input_value_size: int = 64
    num_input_heads: int = 1
    comm_key_size: int = 16
    comm_value_size: int = 16
    num_comm_heads: int = 1
    comm_update: str = "gated"  # bounded, as in the authors' code; see rim_core.RIMCell
    # rim_core's variant and its switches (RIMOptions as a dict). The sizes above apply to
    # every variant: "authors" changes what the step computes, not its size here.
    variant: str = "default"
    rim_options: dict = dataclasses.field(default_factory=lambda: dataclasses.asdict(RIMOptions()))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        names = {field.name for field in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) - names or "use_rim" not in data:
            raise UserError("the saved model_config does not match this version of the MiniGrid "
                            "model; retrain the agent")
        # models saved before comm_update existed used the plain residual update
        return cls(**{"comm_update": "residual", **data,
                      "image_shape": tuple(data.get("image_shape", cls.image_shape)),
                      "rim_options": saved_rim_options(data.get("rim_options"))})

    @property
    def state_shape(self) -> tuple[int, ...]:
        """Shape of h (and of c) for one environment."""
        if self.use_rim:
            return (self.num_units, self.hidden_size)
        return (self.num_units * self.hidden_size,)

    @property
    def memory_size(self) -> int:
        return 2 * self.num_units * self.hidden_size


def pack_memory(h: Tensor, c: Tensor) -> Tensor:
    """``(h, c)``, each ``(B, *state_shape)`` -> torch-ac's flat ``(B, 2 * prod(state_shape))``."""
    return torch.cat([h.flatten(1), c.flatten(1)], dim=1)


def unpack_memory(memory: Tensor, state_shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`pack_memory`: views of ``memory``, no copy."""
    h, c = memory.chunk(2, dim=1)
    return h.view(-1, *state_shape), c.view(-1, *state_shape)


def _init_head(layer: nn.Linear) -> None:
    # rl-starter-files' initialisation: unit-norm rows, zero bias; small initial logits
    # keep the first policy close to uniform.
    with torch.no_grad():
        layer.weight.normal_(0, 1)
        layer.weight /= layer.weight.norm(dim=1, keepdim=True)
        layer.bias.zero_()


class ACModel(nn.Module, torch_ac.RecurrentACModel):
    """``forward(obs, memory) -> (dist, value, memory)``, as torch-ac expects.

    After each call, ``last_active`` holds the ``(B, num_units)`` bool mask of the RIM
    units that were active at that step (``None`` for the LSTM).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        height, width, channels = config.image_shape
        self.image_conv = nn.Sequential(
            nn.Conv2d(channels, 16, (2, 2)), nn.ReLU(), nn.MaxPool2d((2, 2)),
            nn.Conv2d(16, 32, (2, 2)), nn.ReLU(),
            nn.Conv2d(32, 64, (2, 2)), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            embedding_size = self.image_conv(torch.zeros(1, channels, height, width)).shape[1]

        memory_features = config.num_units * config.hidden_size
        if config.use_rim:
            # No dropout: PPO compares the policy that collected the data with the policy
            # being updated, and dropout would make the two differ at random.
            self.memory_rnn = RIMCell(
                embedding_size, config.hidden_size, config.num_units, config.k, "LSTM",
                input_key_size=config.input_key_size, input_query_size=config.input_key_size,
                input_value_size=config.input_value_size, num_input_heads=config.num_input_heads,
                input_dropout=0.0, comm_key_size=config.comm_key_size,
                comm_query_size=config.comm_key_size, comm_value_size=config.comm_value_size,
                num_comm_heads=config.num_comm_heads, comm_dropout=0.0, comm_update=config.comm_update,
                variant=config.variant, options=RIMOptions(**config.rim_options))
        else:
            self.memory_rnn = nn.LSTMCell(embedding_size, memory_features)

        self.actor = nn.Sequential(nn.Linear(memory_features, 64), nn.Tanh(),
                                   nn.Linear(64, config.num_actions))
        self.critic = nn.Sequential(nn.Linear(memory_features, 64), nn.Tanh(), nn.Linear(64, 1))
        for layer in (*self.actor, *self.critic):
            if isinstance(layer, nn.Linear):
                _init_head(layer)
        self.last_active: Tensor | None = None

    @property
    def memory_size(self) -> int:
        return self.config.memory_size

    def forward(self, obs, memory: Tensor) -> tuple[Categorical, Tensor, Tensor]:
        # (B, H, W, C) grid of indices -> (B, C, H, W) floats for the convolutions
        x = self.image_conv(obs.image.permute(0, 3, 1, 2))
        if self.config.use_rim:
            memory, embedding = self._rim_step(x, memory)
        else:
            embedding, c = self.memory_rnn(x, unpack_memory(memory, self.config.state_shape))
        dist = Categorical(logits=self.actor(embedding))
        value = self.critic(embedding).squeeze(1)
        if not self.config.use_rim:  # packed after the heads, so h's gradients add up in the same order
            memory = pack_memory(embedding, c)
        return dist, value, memory

    def _rim_step(self, x: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
        """One RIM step on torch-ac's flat memory: the new memory and its h, ``(B, N * H)``.

        Computes exactly ``memory_rnn(x, unpack_memory(memory))`` and :func:`pack_memory` of
        the result, but drives the cell's group-major step directly: the state goes in and
        out as views and one copy, and h is read back from the new memory, not copied again.
        At batch 16-64 a step's time is per-operation overhead (experiments/minigrid/README.md).
        """
        cell, batch = self.memory_rnn, memory.size(0)
        # (B, [h | c] x N x H) -> (2, N, B, H): the (N, B, H) layout of RIMCell.step
        state = memory.view(batch, 2, self.config.num_units, self.config.hidden_size).permute(1, 2, 0, 3)
        (h, c), active = cell.step(cell.project_input(x), tuple(state.unbind(0)))
        self.last_active = active.t()  # (B, N)
        memory = torch.stack((h, c)).permute(2, 0, 1, 3).reshape(batch, -1)
        return memory, memory[:, : h.size(0) * h.size(2)]
