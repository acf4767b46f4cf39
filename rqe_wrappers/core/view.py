"""The trainer's view of an env observation, and the learner's snapshot fed that view.

A trainer (the SB3 adapter, :class:`rqe_wrappers.sb3.PettingZooVecEnv`) does not learn from
``obs["action_mask"]``: :class:`TrainerView` strips it (the mask goes to ``mask=``) and unwraps a
lone remaining ``"observation"`` key. A snapshot of the learner that plays other seats must get its
input the same way: :class:`ViewedPolicy` / :func:`learner_snapshot`. See docs/adapter.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.core.policy import Policy, check_policy_spaces
from rqe_wrappers.core.snapshot import SnapshotPolicy, shared
from rqe_wrappers.errors import UnsupportedSpaceError

MASK_KEY = "action_mask"


def zero_observation(space: gym.Space) -> Any:
    """A fresh all-zero (lowest, for discrete spaces) observation of ``space``."""
    if isinstance(space, gym.spaces.Dict):
        return {k: zero_observation(s) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Box):
        return np.zeros(space.shape, space.dtype)
    if isinstance(space, gym.spaces.Discrete):
        return np.asarray(space.start, space.dtype)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return np.asarray(getattr(space, "start", np.zeros(space.nvec.shape)), space.dtype)
    if isinstance(space, gym.spaces.MultiBinary):
        return np.zeros(space.shape, space.dtype)
    raise UnsupportedSpaceError(
        f"PettingZooVecEnv supports Box, Discrete, MultiDiscrete, MultiBinary and Dict observations "
        f"(what SB3 supports), got {type(space).__name__}; flatten it first (e.g. supersuit.flatten_v0)"
    )


def mask_width(action_space: gym.Space) -> int | None:
    """Length of an action mask for ``action_space`` (``None``: masks not supported)."""
    if isinstance(action_space, gym.spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        return int(np.sum(action_space.nvec))
    return None


class TrainerView:
    """Turns an env observation into what the trainer sees and finds its action mask.

    Attributes:
        raw_space: the env's observation space.
        space: what the trainer sees (``raw_space`` less the mask, a lone ``"observation"`` unwrapped).
        identity: ``True`` when the view passes observations through unchanged.
        mask_in_obs: whether the mask is ``obs["action_mask"]`` (else it may be ``info["action_mask"]``).
        zero: an observation of :attr:`space` for idle slots (shared: do not modify it).
        mask_width: see :func:`mask_width`.
    """

    def __init__(self, raw_space: gym.Space, action_space: gym.Space):
        self.raw_space = raw_space
        self.keys: list[str] | None = None  # Dict keys kept; None = observation passed through
        self.unwrap = False  # {"observation": x, "action_mask": m} -> x
        self.mask_in_obs = False
        space = raw_space
        if isinstance(raw_space, gym.spaces.Dict) and MASK_KEY in raw_space.spaces:
            self.mask_in_obs = True
            rest = {k: s for k, s in raw_space.spaces.items() if k != MASK_KEY}
            if not rest:
                raise UnsupportedSpaceError("the observation Dict holds only an action mask; nothing to learn from")
            if list(rest) == ["observation"]:
                self.unwrap, space = True, rest["observation"]
            else:
                self.keys, space = list(rest), gym.spaces.Dict(rest)
        self.space = space
        self.identity = not self.unwrap and self.keys is None
        self.zero = zero_observation(space)
        self.mask_width = mask_width(action_space)

    def __call__(self, obs: Any) -> Any:
        """Works on one observation and on a batch alike (it only selects keys)."""
        if self.unwrap:
            return obs["observation"]
        if self.keys is not None:
            return {k: obs[k] for k in self.keys}
        return obs

    def mask_of(self, raw_obs: Any, info: Mapping | None) -> Any:
        """The action mask of one raw observation (``obs["action_mask"]`` or ``info["action_mask"]``)."""
        if self.mask_in_obs:
            return raw_obs[MASK_KEY]
        return info.get(MASK_KEY) if info else None


class ViewedPolicy(Policy):
    """``inner`` fed raw env observations through ``view`` (it sees what the trainer sees).

    Its ``observation_space`` is the env's (``view.raw_space``). When ``inner`` is a
    :class:`~rqe_wrappers.core.snapshot.SnapshotPolicy`, each newly shared snapshot is checked
    against the trainer's spaces before it plays (``check=True``): a stale snapshot left under the
    same name by another run in this process fails loudly, naming ``who``, instead of playing (or
    crashing) with the wrong observations.
    """

    def __init__(self, inner: Policy, view: TrainerView, *, who: str | None = None, check: bool = True):
        super().__init__(view.raw_space, inner.action_space)
        self.inner, self.view = inner, view
        self._name = inner.name if check and isinstance(inner, SnapshotPolicy) else None
        self.who = who or (f"the snapshot shared as {self._name!r}" if self._name is not None else repr(inner))
        self._checked: Policy | None = None

    def initial_state(self, batch_size: int) -> Any:
        return self.inner.initial_state(batch_size)

    def act(self, obs, *, rng, mask=None, state=None):
        if self._name is not None:
            live = shared(self._name)
            if live is not None and live is not self._checked:
                check_policy_spaces(live, self.view.space, self.action_space, self.who)
                self._checked = live
        return self.inner.act(self.view(obs), rng=rng, mask=mask, state=state)

    def log_prob(self, obs, actions, *, mask=None, state=None):
        return self.inner.log_prob(self.view(obs), actions, mask=mask, state=state)

    def __repr__(self) -> str:
        return repr(self.inner)


def learner_snapshot(
    observation_space: gym.Space,
    action_space: gym.Space,
    name: str = "learner",
    *,
    who: str | None = None,
    check: bool = True,
    view: TrainerView | None = None,
) -> ViewedPolicy:
    """The snapshot shared as ``name``, playing a seat whose raw spaces are given, fed the trainer's view.

    ``who`` and ``check``: see :class:`ViewedPolicy`. Pass ``view`` to reuse one built for these spaces.

    Example:
        >>> from gymnasium.spaces import Box, Dict, Discrete
        >>> raw = Dict({"observation": Box(0, 1, (3,)), "action_mask": Box(0, 1, (2,), "int8")})
        >>> snap = learner_snapshot(raw, Discrete(2), "doc-learner")
        >>> snap.view.space
        Box(0.0, 1.0, (3,), float32)
    """
    view = view or TrainerView(observation_space, action_space)
    return ViewedPolicy(SnapshotPolicy(view.space, action_space, name), view, who=who, check=check)
