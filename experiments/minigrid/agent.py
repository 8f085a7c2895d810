"""A trained agent, rebuilt from ``status.pt`` alone, acting in one or more environments."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from experiments.common import UserError, load_state
from experiments.minigrid.envs import IMAGE_KEY, preprocess_obss
from experiments.minigrid.model import ACModel, ModelConfig
from experiments.minigrid.storage import STATUS_FILE, load_status


def load_model(path: Path, use_rim: bool = False) -> tuple[ACModel, dict]:
    """The model saved in ``path/status.pt``, in eval mode, and the whole status.

    The architecture comes from the saved ``model_config``; ``use_rim`` (the scripts'
    ``--use_rim``, accepted for familiarity) only has to agree with it.
    """
    status = load_status(path)
    config = ModelConfig.from_dict(status["model_config"])
    if use_rim and not config.use_rim:
        raise UserError(f"--use_rim was given but the model in {path} has LSTM memory; drop --use_rim")
    model = ACModel(config)
    load_state(model, status["model_state"], path / STATUS_FILE)
    return model.eval(), status


def check_env_fits(config: ModelConfig, env: gym.Env, env_id: str) -> None:
    """One-line error when an environment's observations or actions differ from training's."""
    image_shape = tuple(env.observation_space[IMAGE_KEY].shape)
    if image_shape != tuple(config.image_shape):
        raise UserError(f"{env_id} gives {image_shape} observations but the agent was trained on "
                        f"{tuple(config.image_shape)}")
    if env.action_space.n != config.num_actions:
        raise UserError(f"{env_id} has {env.action_space.n} actions but the agent was trained "
                        f"with {config.num_actions}")


class Agent:
    """Acts in ``num_envs`` environments at once, carrying each one's memory between steps.

    Call :meth:`act` with the current observations, then :meth:`episodes_ended` with the
    environments' ``done`` flags so that a new episode starts from zero memory, as in
    training.
    """

    def __init__(self, model: ACModel, num_envs: int, argmax: bool = False) -> None:
        self.model = model
        self.argmax = argmax
        self.memory = torch.zeros(num_envs, model.memory_size)

    @torch.no_grad()
    def act(self, obss: Sequence[dict]) -> np.ndarray:
        dist, _, self.memory = self.model(preprocess_obss(obss), self.memory)
        actions = dist.probs.argmax(dim=1) if self.argmax else dist.sample()
        return actions.numpy()

    def episodes_ended(self, dones: Sequence[bool]) -> None:
        keep = 1.0 - torch.tensor(dones, dtype=torch.float).unsqueeze(1)
        self.memory = self.memory * keep

    @property
    def active_units(self) -> Tensor | None:
        """``(num_envs, num_units)`` bool mask of the RIM units active at the last step."""
        return self.model.last_active
