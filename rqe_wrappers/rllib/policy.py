"""An RLlib ``RLModule`` (torch, Discrete actions) as the project's :class:`~rqe_wrappers.core.policy.Policy`.

The module's action-distribution inputs are logits; :class:`RLModulePolicy` turns them into
probabilities and samples with the numpy ``Generator`` the caller passes, so ``rqe_wrappers.eval``
(``crossplay``, ``evaluate_population``, ``as_policy``, ``PartnerRole`` for SRPO-trained modules)
reads RLlib-trained policies exactly as SB3 ones. It holds a detached CPU copy.
"""

from __future__ import annotations

import copy
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns

from rqe_wrappers.core.policy import DiscretePolicy
from rqe_wrappers.errors import ConfigError


def _to_tensor(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {k: _to_tensor(v) for k, v in obs.items()}
    return torch.as_tensor(np.asarray(obs, dtype=np.float32))


class RLModulePolicy(DiscretePolicy):
    """A torch ``RLModule`` with ``Discrete`` actions playing one seat (stateless modules only).

    Args:
        module: the RLModule (e.g. ``algorithm.get_module("shared")``); a detached CPU copy is kept.
        deterministic: play the most likely action instead of sampling.
        observation_space: what the module is fed (default: the module's own).
    """

    def __init__(self, module: Any, deterministic: bool = False, observation_space: gym.Space | None = None):
        self.module: Any  # an RLModule: its forward methods are RLlib's, not torch.nn.Module's
        if not isinstance(module, torch.nn.Module):
            raise ConfigError(f"RLModulePolicy needs a torch RLModule, got {type(module).__name__}")
        module = cast(Any, module)
        if not isinstance(module.action_space, gym.spaces.Discrete):
            raise ConfigError(f"RLModulePolicy supports Discrete actions, the module acts in {module.action_space}")
        if module.is_stateful():
            raise ConfigError("RLModulePolicy supports stateless modules (no LSTM/attention state)")
        super().__init__(observation_space or module.observation_space, module.action_space)
        self.module = copy.deepcopy(module).to("cpu")
        self.module.eval()
        self.deterministic = bool(deterministic)

    @classmethod
    def from_algorithm(cls, algorithm: Any, module_id: str, deterministic: bool = False) -> RLModulePolicy:
        """The algorithm's current module ``module_id`` (its weights as the learner has them now)."""
        module = algorithm.get_module(module_id)
        if module is None:
            raise ConfigError(f"the algorithm has no module {module_id!r}")
        policy = cls(module, deterministic)
        weights = algorithm.learner_group.get_weights(module_ids=[module_id])[module_id]
        policy.set_weights(weights)
        return policy

    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.module.state_dict().items()}

    def set_weights(self, weights: dict[str, Any]) -> None:
        """Load a state dict (numpy arrays or tensors); keys the module lacks (e.g. a learner's value head
        on an inference-only module) are ignored."""
        own = self.module.state_dict()
        self.module.load_state_dict(
            {k: torch.as_tensor(np.asarray(v), dtype=own[k].dtype) for k, v in weights.items() if k in own}
        )

    def action_probs(self, obs: Any, *, state: Any = None) -> np.ndarray:
        with torch.no_grad():
            out = self.module.forward_inference({Columns.OBS: _to_tensor(obs)})
        logits = out[Columns.ACTION_DIST_INPUTS].double()
        return torch.softmax(logits, dim=-1).numpy()

    def act(self, obs: Any, *, rng: np.random.Generator, mask: np.ndarray | None = None, state: Any = None):
        if self.deterministic:
            return self.masked_probs(obs, mask, state).argmax(axis=1), state
        return super().act(obs, rng=rng, mask=mask, state=state)
