"""The one interface every partner implements: scripted, SB3-trained, random, learner snapshot.

A :class:`Policy` acts on a *batch* of observations and returns a batch of actions. All sampling
uses the numpy ``Generator`` passed in by the caller (wrappers pass the one seeded by
``reset(seed=...)``), so runs reproduce. Recurrent policies keep their state explicit: ``act``
takes and returns it; stateless policies return ``None``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.core.seeding import categorical
from rqe_wrappers.core.spaces import check_spaces_alike
from rqe_wrappers.errors import ConfigError, SpaceMismatchError, UnsupportedSpaceError

Obs = Any  # np.ndarray of shape (batch, ...) or dict of such arrays
#: ``sample(probs, rng, mask) -> actions``: how a policy draws from its action probabilities
Sampler = Callable[[np.ndarray, np.random.Generator, "np.ndarray | None"], np.ndarray]


class Policy(abc.ABC):
    """A fixed partner policy.

    Subclasses implement :meth:`act`; discrete policies that know their action probabilities
    should subclass :class:`DiscretePolicy` instead and get ``act`` and ``log_prob`` for free.
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space):
        self.observation_space = observation_space
        self.action_space = action_space

    def initial_state(self, batch_size: int) -> Any:
        """Recurrent state for ``batch_size`` fresh episodes (``None`` when stateless)."""
        return None

    @abc.abstractmethod
    def act(
        self,
        obs: Obs,
        *,
        rng: np.random.Generator,
        mask: np.ndarray | None = None,
        state: Any = None,
    ) -> tuple[np.ndarray, Any]:
        """Return ``(actions, new_state)`` for a batch of observations."""

    def log_prob(
        self, obs: Obs, actions: np.ndarray, *, mask: np.ndarray | None = None, state: Any = None
    ) -> np.ndarray:
        """Log-probabilities of ``actions`` (optional; discrete policies provide it)."""
        raise NotImplementedError(f"{type(self).__name__} does not expose log-probabilities")

    def to(self, device: Any) -> Policy:
        """Run on ``device`` (a torch device) where the policy has networks; returns ``self``.

        Numpy policies ignore it; a wrapper passes it to the policy it wraps (``inner``).
        """
        inner = getattr(self, "inner", None)
        if isinstance(inner, Policy):
            inner.to(device)
        return self

    def probs_sampler(self) -> Sampler | None:
        """``sample`` with ``act(obs, rng=rng, mask=mask) == (sample(action_probs(obs), rng, mask), None)``
        for this stateless policy, or ``None``. Callers holding observations of several envs (the
        adapter's env copies) then compute ``action_probs`` once over all of them and let each env
        draw its own rows with its own stream: one forward pass instead of one per env, same draws."""
        return None

    def tabular(self) -> tuple[Callable[[Obs], np.ndarray], np.ndarray] | None:
        """``(index, table)`` if this policy's action probabilities are ``table[index(obs)]`` on every row
        whose ``index`` is >= 0 (others: :meth:`action_probs`), it is stateless and its ``act`` draws as
        :class:`DiscretePolicy`'s does; else ``None``. The batched path then indexes the rows of all
        members sharing one ``index`` function in one call (the IPD's scripted partners)."""
        return None

    def stackable(self) -> Any:
        """``(transform, network, deterministic)`` if this policy's action probabilities are a torch
        network's on ``transform(obs)`` (Discrete actions, stateless, no mask), else ``None``: the
        batched path evaluates such members of one architecture in one forward pass
        (:mod:`rqe_wrappers.sb3.stacked`)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(obs={self.observation_space}, act={self.action_space})"


class DiscretePolicy(Policy):
    """A policy over a ``Discrete`` action space defined by its action probabilities."""

    action_space: gym.spaces.Discrete

    def __init__(self, observation_space: gym.Space, action_space: gym.Space):
        if not isinstance(action_space, gym.spaces.Discrete):
            raise SpaceMismatchError(f"{type(self).__name__} needs a Discrete action space, got {action_space}")
        super().__init__(observation_space, action_space)

    @abc.abstractmethod
    def action_probs(self, obs: Obs, *, state: Any = None) -> np.ndarray:
        """Probabilities, shape ``(batch, n_actions)``; rows sum to one."""

    def masked_probs(self, obs: Obs, mask: np.ndarray | None, state: Any = None) -> np.ndarray:
        """``action_probs`` restricted to legal actions and renormalised."""
        return mask_probs(self.action_probs(obs, state=state), mask)

    def act(self, obs, *, rng, mask=None, state=None):
        return draw_probs(self.action_probs(obs, state=state), rng, mask), state

    def probs_sampler(self) -> Sampler | None:
        """The draw :meth:`act` makes from the probabilities, unless a subclass acts otherwise or has state."""
        if type(self).act is not DiscretePolicy.act or self.initial_state(1) is not None:
            return None
        return draw_probs

    def log_prob(self, obs, actions, *, mask=None, state=None):
        probs = self.masked_probs(obs, mask, state)
        picked = probs[np.arange(len(actions)), np.asarray(actions, dtype=np.int64)]
        with np.errstate(divide="ignore"):
            return np.log(picked)


def mask_probs(probs: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``probs`` restricted to the legal actions of ``mask`` and renormalised (uniform over them if none had mass)."""
    probs = np.asarray(probs, dtype=np.float64)
    if mask is not None:
        probs = probs * np.asarray(mask, dtype=bool)
        total = probs.sum(axis=1, keepdims=True)
        uniform = np.asarray(mask, dtype=np.float64)
        uniform = uniform / np.maximum(uniform.sum(axis=1, keepdims=True), 1.0)
        probs = np.where(total > 0, probs / np.where(total > 0, total, 1.0), uniform)
    return probs


def draw_probs(probs: np.ndarray, rng: np.random.Generator, mask: np.ndarray | None) -> np.ndarray:
    """One draw per row of ``probs`` restricted to ``mask`` (:func:`mask_probs`), from ``rng``."""
    return categorical(mask_probs(probs, mask), rng)


class RandomPolicy(DiscretePolicy):
    """Uniform over the (legal) actions, for every action space gymnasium has.

    ``Discrete``: uniform over the legal actions (an action mask is honoured). ``MultiDiscrete``:
    each component uniform over its (legal) values; a mask is the components' masks concatenated.
    ``MultiBinary``: each entry 0 or 1 with probability 1/2. ``Box``: uniform within the bounds;
    an unbounded side gets a standard normal draw offset from the finite bound (or centred on 0).
    Every draw comes from the ``rng`` the caller passes (the env's seeded stream).

    Example:
        >>> import gymnasium as gym
        >>> pol = RandomPolicy(gym.spaces.Box(0, 1, (3,)), gym.spaces.Box(-1.0, 1.0, (2,)))
        >>> actions, _ = pol.act(np.zeros((4, 3)), rng=np.random.default_rng(0))
        >>> actions.shape, bool(np.all(np.abs(actions) <= 1))
        ((4, 2), True)
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space):
        if not isinstance(action_space, _RANDOM_SPACES):
            raise UnsupportedSpaceError(
                f"RandomPolicy supports Discrete, MultiDiscrete, MultiBinary and Box actions, got {action_space}; "
                "write a Policy subclass for this action space"
            )
        Policy.__init__(self, observation_space, action_space)

    def action_probs(self, obs, *, state=None):
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise NotImplementedError(f"action probabilities exist for Discrete actions, not {self.action_space}")
        n = batch_size(obs)
        return np.full((n, self.action_space.n), 1.0 / self.action_space.n)

    def act(self, obs, *, rng, mask=None, state=None):
        space = self.action_space
        n = batch_size(obs)
        if isinstance(space, gym.spaces.Discrete):
            if mask is not None:
                return super().act(obs, rng=rng, mask=mask, state=state)
            k = space.n  # rng.random is several times cheaper than rng.integers for tiny batches
            return (rng.random(n) * k).astype(np.int64) + space.start, state
        if isinstance(space, gym.spaces.MultiDiscrete):
            return _multi_discrete(space, n, rng, mask), state
        if isinstance(space, gym.spaces.MultiBinary):
            return (rng.random((n, *space.shape)) < 0.5).astype(space.dtype), state
        return _uniform_box(space, n, rng), state

    def log_prob(self, obs, actions, *, mask=None, state=None):
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            return super().log_prob(obs, actions, mask=mask, state=state)
        n = len(actions)
        if isinstance(space, gym.spaces.MultiDiscrete) and mask is None:
            return np.full(n, -float(np.sum(np.log(space.nvec))))
        if isinstance(space, gym.spaces.MultiBinary):
            return np.full(n, -float(np.prod(space.shape)) * np.log(2.0))
        if isinstance(space, gym.spaces.Box) and space.is_bounded("both"):
            width = np.asarray(space.high, np.float64) - np.asarray(space.low, np.float64)
            return np.full(n, -float(np.sum(np.log(width))))
        return super().log_prob(obs, actions, mask=mask, state=state)  # masked or unbounded: not exposed


_RANDOM_SPACES = (gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary, gym.spaces.Box)


def _multi_discrete(space: gym.spaces.MultiDiscrete, n: int, rng: np.random.Generator, mask) -> np.ndarray:
    """``n`` uniform draws of a (1-D) MultiDiscrete space; ``mask``: the components' masks concatenated."""
    nvec = np.asarray(space.nvec).reshape(-1)
    start = np.asarray(getattr(space, "start", np.zeros_like(nvec))).reshape(-1)
    if mask is None:
        out = (rng.random((n, len(nvec))) * nvec).astype(np.int64)
    else:
        bounds = np.cumsum(np.concatenate([[0], nvec]))
        m = np.asarray(mask, dtype=np.float64).reshape(n, -1)
        parts = []
        for j in range(len(nvec)):
            legal = m[:, bounds[j] : bounds[j + 1]]
            probs = np.where(legal.sum(axis=1, keepdims=True) > 0, legal, 1.0)
            parts.append(categorical(probs, rng))
        out = np.stack(parts, axis=1)
    return (out + start).reshape(n, *space.shape).astype(space.dtype)


def _uniform_box(space: gym.spaces.Box, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of ``space``: uniform where bounded, a standard normal offset from a finite bound elsewhere."""
    low = np.broadcast_to(np.asarray(space.low, np.float64), space.shape)
    high = np.broadcast_to(np.asarray(space.high, np.float64), space.shape)
    u = rng.random((n, *space.shape))
    z = rng.standard_normal((n, *space.shape))
    lo_ok, hi_ok = np.isfinite(low), np.isfinite(high)
    both = lo_ok & hi_ok
    integer = np.issubdtype(space.dtype, np.integer)
    span = np.where(both, high - low + (1.0 if integer else 0.0), 0.0)
    out = np.where(
        both,
        np.where(both, low, 0.0) + u * span,
        np.where(
            lo_ok, np.where(lo_ok, low, 0.0) + np.abs(z), np.where(hi_ok, np.where(hi_ok, high, 0.0) - np.abs(z), z)
        ),
    )
    if integer:
        out = np.floor(out)
    return np.clip(out, low, high).astype(space.dtype)


class ConstantPolicy(DiscretePolicy):
    """Always the same action (e.g. 'stay', or 'always cooperate')."""

    def __init__(self, observation_space, action_space, action: int):
        super().__init__(observation_space, action_space)
        if not action_space.contains(action):
            raise ConfigError(f"action {action} is not in {action_space}")
        self.action = int(action)

    def action_probs(self, obs, *, state=None):
        probs = np.zeros((batch_size(obs), self.action_space.n))
        probs[:, self.action] = 1.0
        return probs


class FunctionPolicy(DiscretePolicy):
    """Wraps ``fn(obs_batch) -> probs (batch, n)``; handy for scripted partners."""

    def __init__(self, observation_space, action_space, fn: Callable[[Obs], np.ndarray], name: str = ""):
        super().__init__(observation_space, action_space)
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "function")

    def action_probs(self, obs, *, state=None):
        return np.asarray(self.fn(obs), dtype=np.float64)

    def __repr__(self) -> str:
        return f"FunctionPolicy({self.name})"


def batch_size(obs: Obs) -> int:
    """Number of rows in a batch of (possibly dict) observations."""
    if isinstance(obs, Mapping):
        return batch_size(next(iter(obs.values())))
    return int(np.shape(obs)[0])


def stack_obs(observations: list[Obs]) -> Obs:
    """Stack single observations (arrays or dicts of arrays) into one batch."""
    first = observations[0]
    if len(observations) == 1 and isinstance(first, np.ndarray):
        return first[None]
    if isinstance(first, Mapping):
        return {k: stack_obs([o[k] for o in observations]) for k in first}
    return np.stack([np.asarray(o) for o in observations])


def check_policy_spaces(policy: Policy, observation_space: gym.Space, action_space: gym.Space, who: str) -> None:
    """Raise :class:`SpaceMismatchError` naming ``who`` and both spaces if the policy does not fit."""
    check_spaces_alike(
        [(who, policy.observation_space, policy.action_space)],
        lambda m: (
            f"{who}: {m.kind} space mismatch: the environment has {m.expected}, the policy expects {m.got}. "
            "Use a policy trained on this environment (same version and wrappers), or wrap the env "
            "so its spaces match."
        ),
        reference=("the environment", observation_space, action_space),
    )
