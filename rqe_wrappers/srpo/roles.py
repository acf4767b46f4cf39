"""The role feature: every learning seat sees whether it plays the *partner* or the *shadow*.

A 1-D Box gets a one-hot ``[partner, shadow]`` as its last two entries, a ``uint8`` image as its
last two channels (0/255), a Discrete-like space is one-hot encoded first, and a Dict gets a
``"role"`` key; an optional seat identity goes just before the role
(:mod:`rqe_wrappers.srpo.features` holds the layouts). One network then serves both roles, and the
SRPO callback re-evaluates a shadow's action under the partner role by flipping the feature
(:func:`set_role`). A trained policy is deployed on the env's own observations in the partner role
with :class:`PartnerRole` / :func:`as_partner`. Docs: docs/srpo.md.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.core.policy import Policy
from rqe_wrappers.errors import SpaceMismatchError, UnsupportedSpaceError
from rqe_wrappers.srpo.features import (
    PARTNER,
    ROLE_KEY,
    SHADOW,
    ObsFeatures,
    feature_dtype,
    role_features,
    set_role,
)

ROLES = ("partner", "shadow")
__all__ = [
    "PARTNER",
    "ROLES",
    "ROLE_KEY",
    "SHADOW",
    "PartnerRole",
    "add_role",
    "as_partner",
    "one_hot",
    "role_features",
    "role_of",
    "set_role",
    "with_role_space",
]


def with_role_space(space: gym.Space) -> gym.Space:
    """The observation space once the role feature is added (no seat identity)."""
    return ObsFeatures(space).space


def one_hot(role: int, dtype=np.float32) -> np.ndarray:
    """The role feature ``[partner, shadow]`` for ``role`` (a fresh array)."""
    out = np.zeros(2, dtype)
    out[role] = 1
    return out


_feature_dtype = feature_dtype  # the old private name


def add_role(obs: Any, space: gym.Space, role: int) -> Any:
    """Add the role feature to one observation of ``space`` (the space *before* the role)."""
    return ObsFeatures(space).add(obs, role)


def role_of(obs: Any) -> int:
    """Read the role back from one observation (any layout of :mod:`~rqe_wrappers.srpo.features`)."""
    return int(np.argmax(role_features(obs)))


class PartnerRole(Policy):
    """A policy trained with SRPO (role-featured observations) playing the *partner* role on raw observations.

    Deployment: every observation of ``observation_space`` (the env's, without the features) gets
    the partner role, and with ``seat`` the seat one-hot the policy was trained with
    (``srpo_wrap(..., seat_id=True)``; ``seat`` is the index in ``env.learning_seats``), before
    ``policy`` sees it. ``action_probs`` and ``log_prob`` are forwarded when ``policy`` has them.
    """

    def __init__(self, policy: Policy, observation_space: gym.Space, *, seat: int | None = None):
        features = ObsFeatures.matching(observation_space, policy.observation_space)
        if features is None:
            raise SpaceMismatchError(
                f"PartnerRole: the policy observes {policy.observation_space}, but {observation_space} with the "
                f"role feature is {with_role_space(observation_space)}; pass the env's observation space"
            )
        if not features.n_seats:
            seat = None  # trained without seat identity: one policy for every seat
        elif seat is None or not 0 <= int(seat) < features.n_seats:
            raise SpaceMismatchError(
                f"PartnerRole: the policy was trained with seat identity ({features.n_seats} seats): pass "
                f"seat=<the seat's index in env.learning_seats, 0 to {features.n_seats - 1}>, got {seat}"
            )
        super().__init__(observation_space, policy.action_space)
        self.inner = policy
        self.features = features
        self.seat = None if seat is None else int(seat)

    def featured(self, obs):
        """A batch of raw observations with the partner role (and the seat one-hot) added."""
        return self.features.add_batch(obs, PARTNER, self.seat)

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

    def probs_sampler(self) -> Any:
        """The wrapped policy's (its probabilities are taken on :meth:`featured` observations)."""
        return self.inner.probs_sampler() if hasattr(self.inner, "action_probs") else None

    def stackable(self) -> Any:
        """The wrapped policy's, its transform after :meth:`featured`."""
        inner = self.inner.stackable()
        if inner is None:
            return None
        transform, net, deterministic = inner
        return (_Featured(self.features, self.seat, transform), net, deterministic)

    def __repr__(self) -> str:
        return f"PartnerRole({self.inner!r}" + ("" if self.seat is None else f", seat={self.seat}") + ")"


class _Featured:
    """``then(obs with the partner role and seat added)``; equal to another with equal features, seat and
    ``then``, so the batched path can transform a stacked group's rows in one call."""

    def __init__(self, features: ObsFeatures, seat: int | None, then: Any):
        self.features, self.seat, self.then = features, seat, then

    def __call__(self, obs: Any) -> Any:
        return self.then(self.features.add_batch(obs, PARTNER, self.seat))

    def __eq__(self, other: object) -> bool:
        f, g = self.features, getattr(other, "features", None)
        return (
            isinstance(other, _Featured)
            and isinstance(g, ObsFeatures)
            and (f.raw, f.n_seats, self.seat) == (g.raw, g.n_seats, other.seat)
            and self.then == other.then
        )

    __hash__ = None  # type: ignore[assignment]  # equal by value, mutable parts: not a dict key


def as_partner(policy: Policy, observation_space: gym.Space, *, seat: int | None = None) -> Policy:
    """``policy`` playing on ``observation_space`` (the env's): as is, or in the partner role if SRPO-trained.

    ``seat``: the seat's index among the learning seats (``env.learning_seats``); needed for a
    policy trained with seat identity, ignored for one trained without.
    Raises :class:`~rqe_wrappers.errors.SpaceMismatchError` if it observes neither space.
    """
    if policy.observation_space == observation_space:
        return policy
    features = ObsFeatures.matching(observation_space, policy.observation_space)
    if features is not None:
        return PartnerRole(policy, observation_space, seat=seat)
    try:
        featured = with_role_space(observation_space)
    except UnsupportedSpaceError:
        featured = None
    raise SpaceMismatchError(
        f"the policy observes {policy.observation_space}, but this seat gives {observation_space}"
        + (f" (or {featured} with SRPO's role feature)" if featured is not None else "")
        + ". Was it trained for another seat?"
    )
