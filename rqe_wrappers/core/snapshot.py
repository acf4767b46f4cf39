"""The learner's lagged snapshot, as a :class:`~rqe_wrappers.core.policy.Policy` other seats can play.

Wrappers hold a :class:`SnapshotPolicy` that looks up, at every call, the policy last *shared*
under its name in this process. A training callback shares a fresh copy of the learner every
rollout (``PettingZooVecEnv.share_snapshot`` reaches subprocess workers too). Until the first
share the snapshot plays uniformly at random, which is what an untrained learner does anyway.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers._compat import deprecated_alias
from rqe_wrappers.core.policy import Obs, Policy, batch_size

_LIVE: dict[str, Policy] = {}


def share(name: str, policy: Policy) -> None:
    """Make ``policy`` the current snapshot ``name`` in this process."""
    _LIVE[name] = policy


def clear() -> None:
    """Forget every shared snapshot in this process (between independent runs in one process)."""
    _LIVE.clear()


def shared(name: str) -> Policy | None:
    """The current snapshot ``name`` in this process, if any."""
    return _LIVE.get(name)


publish = deprecated_alias(share, "publish")
published = deprecated_alias(shared, "published")


class SnapshotPolicy(Policy):
    """Plays as the snapshot shared under ``name`` (uniform random before the first share)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, name: str = "learner"):
        super().__init__(observation_space, action_space)
        self.name = name

    def act(
        self, obs: Obs, *, rng: np.random.Generator, mask: np.ndarray | None = None, state: Any = None
    ) -> tuple[np.ndarray, Any]:
        live = _LIVE.get(self.name)
        if live is not None:
            return live.act(obs, rng=rng, mask=mask, state=state)
        n = batch_size(obs)
        if isinstance(self.action_space, gym.spaces.Discrete):
            if mask is None:
                return rng.integers(self.action_space.n, size=n) + self.action_space.start, state
            m = np.asarray(mask, dtype=bool)
            return np.array([rng.choice(np.flatnonzero(row)) for row in m]) + self.action_space.start, state
        if isinstance(self.action_space, gym.spaces.Box):
            low, high = self.action_space.low, self.action_space.high
            return rng.uniform(np.maximum(low, -1.0), np.minimum(high, 1.0), size=(n, *low.shape)).astype(
                self.action_space.dtype
            ), state
        raise NotImplementedError(f"SnapshotPolicy cannot sample {self.action_space} before the first share")

    def __repr__(self) -> str:
        return f"SnapshotPolicy({self.name!r}, live={self.name in _LIVE})"
