"""``RolePolicy``: SB3's ``MlpPolicy`` with separate networks for the partner and the shadow role.

With one network for both roles (the role feature as two more inputs), the shadow's reward (minus
its team's) and the partner's pull the shared weights in opposite directions. Where the team's
reward comes from actions both roles take (in cooking every pick-up pays the partner +1 and the
shadow -1), the two gradients cancel early in training and the partner never learns the task: on
the cooking gridworld SRPO with one network stayed at a return of 0 for every tau tried (docs/results/srpo.md).
The SRPO paper keeps a separate adversary policy; ``RolePolicy`` does the same inside one SB3
policy, so stock PPO, ``SRPOCallback`` (which evaluates the partner role on shadow rows) and
saving/loading work unchanged: ``PPO(RolePolicy, venv, ...)``.

Every layer is per role: two ``MlpExtractor``s; a row's latent is ``[h_partner, 1, 0, 0]`` or
``[0, 0, h_shadow, 1]`` (the 1 a per-role bias), so PPO's action and value heads use disjoint
weights for the two roles. Only the heads' own biases are shared. Observations must be 1-D Box
(or one-hot-encoded) with the role as their last two entries (``srpo_wrap`` / ``batched_vec_env``
layouts ``box`` and ``encoded``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import MlpExtractor
from torch import nn

from rqe_wrappers.errors import ConfigError

__all__ = ["RolePolicy"]


class _RoleSplit(nn.Module):
    """Two ``MlpExtractor``s; each row goes through its role's (the shadow flag: the last feature)."""

    def __init__(self, feature_dim: int, net_arch: Any, activation_fn: type[nn.Module], device: Any):
        super().__init__()
        self.partner = MlpExtractor(feature_dim, net_arch, activation_fn, device)
        self.shadow = MlpExtractor(feature_dim, net_arch, activation_fn, device)
        self.latent_dim_pi = 2 * (self.partner.latent_dim_pi + 1)
        self.latent_dim_vf = 2 * (self.partner.latent_dim_vf + 1)

    @staticmethod
    def _route(features: th.Tensor, partner: th.Tensor, shadow: th.Tensor) -> th.Tensor:
        is_shadow = (features[:, -1:] > 0.5).to(partner.dtype)
        one = th.ones_like(is_shadow)
        return th.cat([partner * (1 - is_shadow), one - is_shadow, shadow * is_shadow, is_shadow], dim=1)

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        return self._route(features, self.partner.forward_actor(features), self.shadow.forward_actor(features))

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        return self._route(features, self.partner.forward_critic(features), self.shadow.forward_critic(features))


class RolePolicy(ActorCriticPolicy):
    """``MlpPolicy`` with disjoint networks for the partner role and the shadow role (see the module doc)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, *args: Any, **kwargs: Any):
        if not (isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1):
            raise ConfigError(
                f"RolePolicy needs 1-D Box observations ending in the role feature (srpo_wrap's Box layout), "
                f"got {observation_space}; use MlpPolicy / MultiInputPolicy for other layouts"
            )
        super().__init__(observation_space, action_space, *args, **kwargs)

    def _build_mlp_extractor(self) -> None:
        split = _RoleSplit(self.features_dim, self.net_arch, self.activation_fn, self.device)
        self.mlp_extractor = split  # type: ignore[assignment]  # SB3 types it as MlpExtractor; same interface
