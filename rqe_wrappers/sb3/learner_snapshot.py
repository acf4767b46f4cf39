"""The learner's snapshot for the seats it plays inside the envs, shared by the training callbacks.

Both callbacks share a fresh CPU copy of the learner at training start and at every rollout end,
just before PPO's update, so the seats it plays lag the learner by one update. Behind a
``VecNormalize`` (``norm_obs=True``) the snapshot normalises its observations with a frozen copy
of the statistics of that moment, so it plays on the inputs the learner sees. See docs/adapter.md.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import SubprocVecEnv, VecEnv, VecNormalize

from rqe_wrappers.core import snapshot
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.sb3.normalize import normalizers, vec_env_layers
from rqe_wrappers.sb3.sb3_policy import SB3Policy


def base_venv(env: VecEnv) -> VecEnv:
    """``env`` without its ``VecEnvWrapper`` layers (VecNormalize, VecMonitor, ...)."""
    *_, base = vec_env_layers(env)
    return base


def check_snapshots_reach(env: VecEnv, who: str) -> None:
    """Refuse a VecEnv whose worker processes a shared snapshot cannot reach."""
    if isinstance(base_venv(env), SubprocVecEnv) and not hasattr(env, "share_snapshot"):
        raise ConfigError(
            f"{who}: learner snapshots cannot reach SubprocVecEnv workers; use rqe_wrappers.sb3.PettingZooVecEnv"
            " (its share_snapshot reaches them), or an in-process VecEnv"
        )


def share_policy(env: VecEnv, name: str, policy: Policy) -> None:
    """Share ``policy`` as snapshot ``name`` in this process and in every worker of ``env``."""
    share = getattr(env, "share_snapshot", None)
    if callable(share):
        share(name, policy)
    else:
        snapshot.share(name, policy)


class NormalizedInput(Policy):
    """``inner`` (an SB3 policy) fed observations normalised by frozen copies of ``VecNormalize`` layers.

    ``layers`` innermost first. Its ``observation_space`` is the one before normalisation (what the
    env's seats give); weights are ``inner``'s (``get_weights`` / ``set_weights``).
    """

    def __init__(self, inner: SB3Policy, layers: list[VecNormalize]):
        if not layers:
            raise ConfigError("NormalizedInput needs at least one VecNormalize layer")
        super().__init__(layers[0].venv.observation_space, inner.action_space)
        self.inner = inner
        self.layers = [copy.deepcopy(v) for v in layers]  # VecNormalize pickles without its venv

    def normalize(self, obs: Any) -> Any:
        """A batch of observations as the learner sees it."""
        for layer in self.layers:
            obs = layer.normalize_obs(obs)
        return obs

    def initial_state(self, batch_size: int) -> Any:
        return self.inner.initial_state(batch_size)

    def act(self, obs, *, rng, mask=None, state=None):
        return self.inner.act(self.normalize(obs), rng=rng, mask=mask, state=state)

    def log_prob(self, obs, actions, *, mask=None, state=None):
        return self.inner.log_prob(self.normalize(obs), actions, mask=mask, state=state)

    def get_weights(self) -> dict[str, np.ndarray]:
        return self.inner.get_weights()

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.inner.set_weights(weights)

    def __repr__(self) -> str:
        return f"NormalizedInput({self.inner!r})"


def learner_policy(env: VecEnv, model: BaseAlgorithm) -> SB3Policy | NormalizedInput:
    """A frozen CPU copy of ``model``'s policy, playing on ``env``'s observations before any ``VecNormalize``."""
    policy = SB3Policy.from_model(model)
    layers = normalizers(env)
    return NormalizedInput(policy, layers) if layers else policy


def share_learner(env: VecEnv, name: str, model: BaseAlgorithm) -> Policy:
    """Share a frozen CPU copy of ``model``'s policy as snapshot ``name``; returns the copy."""
    policy = learner_policy(env, model)
    share_policy(env, name, policy)
    return policy
