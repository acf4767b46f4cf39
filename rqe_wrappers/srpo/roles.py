"""The role feature: every learning seat sees whether it plays the *partner* or the *shadow*.

Box observations (1-D) get a one-hot ``[partner, shadow]`` appended as their last two entries;
Dict observations get a ``"role"`` key holding the same one-hot. One network then serves both
roles, and the SRPO callback can re-evaluate a shadow's action under the partner role by flipping
the feature (:func:`set_role`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import gymnasium as gym
import numpy as np

from rqe_wrappers.errors import UnsupportedSpaceError

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


@functools.lru_cache(maxsize=None)
def _feature_dtype(dtype: np.dtype) -> np.dtype:
    """Observations with the role feature keep a float dtype; integer ones become float32."""
    return np.dtype(dtype) if np.issubdtype(dtype, np.floating) else np.dtype(np.float32)


@functools.lru_cache(maxsize=None)
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
    out = np.array(obs_batch, copy=True)
    out[..., -2:] = 0
    out[..., -2 + role] = 1
    return out


def role_of(obs) -> int:
    """Read the role back from one observation."""
    feat = obs[ROLE_KEY] if isinstance(obs, Mapping) else np.asarray(obs)[-2:]
    return int(np.argmax(feat))
