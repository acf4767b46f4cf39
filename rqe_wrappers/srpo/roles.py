"""The role feature: every learning seat sees whether it plays the *partner* or the *shadow*.

Box observations (1-D) get a one-hot ``[partner, shadow]`` appended as their last two entries;
Dict observations get a ``"role"`` key holding the same one-hot. One network then serves both
roles, and the SRPO callback can re-evaluate a shadow's action under the partner role by flipping
the feature (:func:`set_role`). A trained policy is deployed on the env's own observations in the
partner role with :class:`PartnerRole` / :func:`as_partner`. Docs: docs/srpo.md.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import gymnasium as gym
import numpy as np

from rqe_wrappers.core.policy import Policy
from rqe_wrappers.errors import SpaceMismatchError, UnsupportedSpaceError

ROLES = ("partner", "shadow")
PARTNER, SHADOW = 0, 1
ROLE_KEY = "role"


def with_role_space(space: gym.Space) -> gym.Space:
    """The observation space once the role feature is added."""
    if isinstance(space, gym.spaces.Box):
        if len(space.shape) != 1:
            raise UnsupportedSpaceError(
                f"the role feature is appended to 1-D Box observations, got shape {space.shape}; "
                "flatten the observations first (e.g. supersuit.flatten_v0) or use a Dict observation space"
            )
        dtype = _feature_dtype(space.dtype)
        low = np.concatenate([space.low.astype(dtype), np.zeros(2, dtype)])
        high = np.concatenate([space.high.astype(dtype), np.ones(2, dtype)])
        return gym.spaces.Box(low, high, dtype=dtype)
    if isinstance(space, gym.spaces.Dict):
        if ROLE_KEY in space.spaces:
            raise UnsupportedSpaceError(f"the observation Dict already has a {ROLE_KEY!r} key; rename it first")
        return gym.spaces.Dict({**space.spaces, ROLE_KEY: gym.spaces.Box(0.0, 1.0, (2,), np.float32)})
    raise UnsupportedSpaceError(
        f"cannot add a role feature to a {type(space).__name__} observation space; "
        "wrap the env so observations are a 1-D Box (supersuit.flatten_v0) or a Dict"
    )


def one_hot(role: int, dtype=np.float32) -> np.ndarray:
    """The role feature ``[partner, shadow]`` for ``role`` (a fresh array)."""
    out = np.zeros(2, dtype)
    out[role] = 1
    return out


@functools.cache
def _feature_dtype(dtype: np.dtype) -> np.dtype:
    """Observations with the role feature keep a float dtype; integer ones become float32."""
    return np.dtype(dtype) if np.issubdtype(dtype, np.floating) else np.dtype(np.float32)


@functools.cache
def _one_hots(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Read-only ``(partner, shadow)`` features of ``dtype``, shared by every observation."""
    features = (one_hot(PARTNER, dtype), one_hot(SHADOW, dtype))
    for f in features:
        f.setflags(write=False)
    return features


def add_role(obs, space: gym.Space, role: int):
    """Add the role feature to one observation of ``space`` (the space *before* the role)."""
    if isinstance(space, gym.spaces.Dict):
        return {**obs, ROLE_KEY: one_hot(role)}
    dtype = _feature_dtype(space.dtype)
    obs = obs if getattr(obs, "dtype", None) == dtype else np.asarray(obs, dtype=dtype)
    return np.concatenate((obs, _one_hots(dtype)[role]))


def set_role(obs_batch, role: int):
    """A copy of a batch of role-featured observations, all set to ``role``."""
    if isinstance(obs_batch, Mapping):
        out = dict(obs_batch)
        r = np.zeros_like(np.asarray(obs_batch[ROLE_KEY]))
        r[..., role] = 1
        out[ROLE_KEY] = r
        return out
    arr = np.array(obs_batch, copy=True)
    arr[..., -2:] = 0
    arr[..., -2 + role] = 1
    return arr


def role_of(obs) -> int:
    """Read the role back from one observation."""
    feat = obs[ROLE_KEY] if isinstance(obs, Mapping) else np.asarray(obs)[-2:]
    return int(np.argmax(feat))


class PartnerRole(Policy):
    """A policy trained with SRPO (role-featured observations) playing the *partner* role on raw observations.

    Deployment: every observation of ``observation_space`` (the env's, without the role feature)
    gets the partner one-hot before ``policy`` sees it, the role a trained policy plays with real
    teammates. ``action_probs`` and ``log_prob`` are forwarded when ``policy`` has them.
    """

    def __init__(self, policy: Policy, observation_space: gym.Space):
        if policy.observation_space != with_role_space(observation_space):
            raise SpaceMismatchError(
                f"PartnerRole: the policy observes {policy.observation_space}, but {observation_space} with the "
                f"role feature is {with_role_space(observation_space)}; pass the env's observation space"
            )
        super().__init__(observation_space, policy.action_space)
        self.inner = policy

    def featured(self, obs):
        """A batch of raw observations with the partner one-hot added."""
        space = self.observation_space
        if isinstance(space, gym.spaces.Dict):
            n = len(next(iter(obs.values())))
            return {**obs, ROLE_KEY: np.broadcast_to(one_hot(PARTNER), (n, 2))}
        dtype = _feature_dtype(space.dtype)
        obs = np.asarray(obs, dtype=dtype)
        return np.concatenate([obs, np.broadcast_to(_one_hots(dtype)[PARTNER], (len(obs), 2))], axis=1)

    def initial_state(self, batch_size: int):
        return self.inner.initial_state(batch_size)

    def act(self, obs, *, rng, mask=None, state=None):
        return self.inner.act(self.featured(obs), rng=rng, mask=mask, state=state)

    def action_probs(self, obs, *, state=None) -> np.ndarray:
        probs = getattr(self.inner, "action_probs", None)
        if probs is None:
            raise NotImplementedError(f"{type(self.inner).__name__} does not expose action probabilities")
        return probs(self.featured(obs), state=state)

    def log_prob(self, obs, actions, *, mask=None, state=None) -> np.ndarray:
        return self.inner.log_prob(self.featured(obs), actions, mask=mask, state=state)

    def __repr__(self) -> str:
        return f"PartnerRole({self.inner!r})"


def as_partner(policy: Policy, observation_space: gym.Space) -> Policy:
    """``policy`` playing on ``observation_space`` (the env's): as is, or in the partner role if SRPO-trained.

    Raises :class:`~rqe_wrappers.errors.SpaceMismatchError` if it observes neither space.
    """
    if policy.observation_space == observation_space:
        return policy
    try:
        featured = with_role_space(observation_space)
    except UnsupportedSpaceError:
        featured = None
    if policy.observation_space == featured:
        return PartnerRole(policy, observation_space)
    raise SpaceMismatchError(
        f"the policy observes {policy.observation_space}, but this seat gives {observation_space}"
        + (f" (or {featured} with SRPO's role feature)" if featured is not None else "")
        + ". Was it trained for another seat?"
    )
