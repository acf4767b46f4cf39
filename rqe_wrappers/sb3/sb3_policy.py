"""An SB3 policy as a :class:`~rqe_wrappers.core.policy.Policy` (CPU copy, numpy in and out, seeded sampling)."""

from __future__ import annotations

from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecTransposeImage, unwrap_vec_wrapper

from rqe_wrappers.core.policy import Policy, Sampler, draw_probs, mask_probs


class SB3Policy(Policy):
    """Wraps an SB3 ``ActorCriticPolicy`` (or any policy with ``get_distribution``).

    Sampling uses the numpy Generator passed to :meth:`act` (not torch's global RNG), so wrapped
    envs stay reproducible from ``reset(seed=...)``. Discrete and Box action spaces are supported.
    ``observation_space`` is what the policy is fed (default: the policy's own); for image
    observations SB3 transposes to channel-first (``VecTransposeImage``), and ``obs_to_tensor`` takes
    the env's channel-last images as they come, so :meth:`from_model` declares the env's space.
    """

    def __init__(self, policy: BasePolicy, deterministic: bool = False, observation_space: gym.Space | None = None):
        super().__init__(observation_space or policy.observation_space, policy.action_space)
        self.policy = policy
        self.policy.set_training_mode(False)
        self.deterministic = deterministic

    @classmethod
    def from_model(
        cls,
        model: BaseAlgorithm | BasePolicy,
        deterministic: bool = False,
        observation_space: gym.Space | None = None,
    ) -> SB3Policy:
        """A detached CPU copy of the model's current policy (later training does not change it).

        ``observation_space``: the env's, for a model loaded without its env whose images SB3 transposed
        (default: found from the model's env, else the policy's own)."""
        policy = model.policy if isinstance(model, BaseAlgorithm) else model
        fresh = type(policy)(**policy._get_constructor_parameters())
        fresh.load_state_dict({k: v.detach().to("cpu") for k, v in policy.state_dict().items()})
        return cls(fresh.to("cpu"), deterministic, observation_space or _untransposed_space(model))

    def to(self, device: Any) -> SB3Policy:
        """Move the network to ``device`` (in place; e.g. the learner's ``model.device``); returns ``self``."""
        self.policy.to(device)
        return self

    def stackable(self) -> Any:
        """``(identity, net, deterministic)`` for a Discrete ``ActorCriticPolicy`` on its own space, else ``None``."""
        if not isinstance(self.action_space, gym.spaces.Discrete) or not isinstance(self.policy, ActorCriticPolicy):
            return None
        if self.observation_space != self.policy.observation_space:  # e.g. images SB3 transposes
            return None
        return (_identity, self.policy, self.deterministic)

    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.policy.state_dict().items()}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.policy.load_state_dict(
            {k: th.as_tensor(np.asarray(v), device=self.policy.device) for k, v in weights.items()}
        )

    def _dist(self, obs):
        with th.no_grad():
            obs_t, _ = self.policy.obs_to_tensor(obs)
            # get_distribution is ActorCriticPolicy's (and its kin's), not BasePolicy's
            return cast(Any, self.policy).get_distribution(obs_t)

    def action_probs(self, obs, *, state=None) -> np.ndarray:
        """Action probabilities for Discrete action spaces, shape ``(batch, n)``."""
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise NotImplementedError("action_probs needs a Discrete action space")
        return self._dist(obs).distribution.probs.double().cpu().numpy()

    def probs_sampler(self) -> Sampler | None:
        """How :meth:`act` draws from :meth:`action_probs` (Discrete actions; ``None`` for Box)."""
        if not isinstance(self.action_space, gym.spaces.Discrete):
            return None
        return _argmax if self.deterministic else draw_probs

    def act(self, obs, *, rng, mask=None, state=None):
        if isinstance(self.action_space, gym.spaces.Discrete):
            sample = _argmax if self.deterministic else draw_probs
            return sample(self.action_probs(obs), rng, mask), state
        if isinstance(self.action_space, gym.spaces.Box):
            dist = self._dist(obs).distribution
            mean, std = dist.mean.cpu().numpy(), dist.stddev.cpu().numpy()
            acts = mean if self.deterministic else mean + std * rng.standard_normal(mean.shape)
            acts = acts.reshape((-1, *self.action_space.shape))
            if getattr(self.policy, "squash_output", False):
                acts = self.policy.unscale_action(np.tanh(acts))
            return np.clip(acts, self.action_space.low, self.action_space.high).astype(self.action_space.dtype), state
        raise NotImplementedError(f"SB3Policy supports Discrete and Box actions, got {self.action_space}")

    def log_prob(self, obs, actions, *, mask=None, state=None):
        with th.no_grad():
            dist = self._dist(obs)
            return dist.log_prob(th.as_tensor(np.asarray(actions), device=self.policy.device)).double().cpu().numpy()


def _identity(obs: Any) -> Any:
    return obs


def _argmax(probs: np.ndarray, rng: np.random.Generator, mask: np.ndarray | None) -> np.ndarray:
    return mask_probs(probs, mask).argmax(axis=1)


def _untransposed_space(model: BaseAlgorithm | BasePolicy) -> gym.Space | None:
    """The env's observation space when SB3 transposed its images for the model, else ``None``."""
    if not isinstance(model, BaseAlgorithm) or model.get_env() is None:
        return None
    transposer = unwrap_vec_wrapper(cast(VecEnv, model.get_env()), VecTransposeImage)
    return None if transposer is None else cast(VecEnvWrapper, transposer).venv.observation_space
