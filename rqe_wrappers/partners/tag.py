"""Scripted Tag policies (the SRPO paper's Tag, :mod:`rqe_wrappers.envs.tag`).

Registered with :func:`~rqe_wrappers.core.policy.make_scripted`:

=========================  ==========================================================================
``tag/greedy-chaser``      a chaser that moves along the larger component of the runner's relative
                           position (reads ``obs[10:12]``)
``tag/evasive-runner``     a runner that moves away from the nearest chaser (``obs[8:10]``,
                           ``obs[10:12]``) and back towards the centre near the edge (``obs[2:4]``),
                           where mpe2 penalises it
``tag/still``              the no-op action, for any seat (``seat=`` picks the default spaces)
=========================  ==========================================================================

Every factory takes ``observation_space`` / ``action_space`` (the zoo passes a manifest's spaces)
and otherwise builds the paper's spaces; the observation layouts are documented, and checked
against mpe2, in :mod:`rqe_wrappers.envs.tag`. The policies are deterministic (one-hot action
probabilities), so they cost no random draws.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from rqe_wrappers.core.policy import ConstantPolicy, DiscretePolicy, Policy
from rqe_wrappers.envs.tag import (
    ACTION_DIRECTIONS,
    CHASER_RUNNER_REL,
    NOOP,
    RUNNER,
    RUNNER_CHASERS_REL,
    RUNNER_POS,
    chaser_observation_space,
    runner_observation_space,
    seat_spaces,
)
from rqe_wrappers.envs.tag import action_space as tag_action_space
from rqe_wrappers.errors import ConfigError, SpaceMismatchError


def _one_hot(actions: np.ndarray, n: int) -> np.ndarray:
    probs = np.zeros((len(actions), n))
    probs[np.arange(len(actions)), actions] = 1.0
    return probs


def _check_box(name: str, space: gym.Space, size: int) -> None:
    if not isinstance(space, gym.spaces.Box) or space.shape != (size,):
        raise SpaceMismatchError(
            f"{name} reads the paper's Tag layout, a Box of shape ({size},); got {space}. "
            "Use it on rqe_wrappers.envs.tag.tag_env() seats (unwrapped observations, no role feature)"
        )


def _check_action(name: str, space: gym.Space) -> None:
    if not isinstance(space, gym.spaces.Discrete) or space.n != len(ACTION_DIRECTIONS):
        raise SpaceMismatchError(f"{name} needs Tag's Discrete(5) actions, got {space}")


def _toward(direction: np.ndarray) -> np.ndarray:
    """The move (1-4) along the larger component of each row of ``direction``; no-op for zero rows."""
    dx, dy = direction[:, 0], direction[:, 1]
    along_x = np.abs(dx) >= np.abs(dy)
    act = np.where(along_x, np.where(dx > 0, 2, 1), np.where(dy > 0, 4, 3))
    return np.where((dx == 0) & (dy == 0), NOOP, act).astype(np.int64)


class GreedyChaser(DiscretePolicy):
    """Moves along the larger component of the runner's position relative to itself (``obs[10:12]``)."""

    name = "tag/greedy-chaser"

    def __init__(self, observation_space: gym.Space | None = None, action_space: gym.Space | None = None):
        observation_space = observation_space or chaser_observation_space()
        action_space = action_space or tag_action_space()
        _check_box(self.name, observation_space, 14)
        _check_action(self.name, action_space)
        super().__init__(observation_space, action_space)

    def action_probs(self, obs, *, state=None):
        rel = np.asarray(obs, dtype=np.float64)[:, CHASER_RUNNER_REL]
        return _one_hot(_toward(rel), int(self.action_space.n))

    def __repr__(self) -> str:
        return "GreedyChaser()"


class EvasiveRunner(DiscretePolicy):
    """Runs from the nearest chaser, and back towards the centre when near the edge.

    The desired direction is ``-rel / |rel|`` for the nearest chaser's relative position ``rel``,
    plus ``-edge_pull * pos * max(0, |pos|_inf - edge) / (1 - edge)`` once the runner is beyond
    ``edge`` in either coordinate (mpe2 penalises the runner from 0.9 on); the policy takes the
    move that points most along it.
    """

    name = "tag/evasive-runner"

    def __init__(
        self,
        observation_space: gym.Space | None = None,
        action_space: gym.Space | None = None,
        edge: float = 0.6,
        edge_pull: float = 2.0,
    ):
        observation_space = observation_space or runner_observation_space()
        action_space = action_space or tag_action_space()
        _check_box(self.name, observation_space, 12)
        _check_action(self.name, action_space)
        if not 0.0 <= float(edge) < 1.0:
            raise ConfigError(f"edge must be in [0, 1), got {edge!r}")
        if float(edge_pull) < 0:
            raise ConfigError(f"edge_pull must be >= 0, got {edge_pull!r}")
        super().__init__(observation_space, action_space)
        self.edge = float(edge)
        self.edge_pull = float(edge_pull)

    def action_probs(self, obs, *, state=None):
        obs = np.asarray(obs, dtype=np.float64)
        rels = np.stack([obs[:, s] for s in RUNNER_CHASERS_REL], axis=1)  # (batch, chasers, 2)
        dists = np.linalg.norm(rels, axis=2)
        nearest = np.argmin(dists, axis=1)
        rows = np.arange(len(obs))
        rel, dist = rels[rows, nearest], dists[rows, nearest]
        away = -rel / np.maximum(dist, 1e-6)[:, None]
        pos = obs[:, RUNNER_POS]
        outside = np.maximum(np.abs(pos).max(axis=1) - self.edge, 0.0) / (1.0 - self.edge)
        desired = away - self.edge_pull * outside[:, None] * pos
        scores = desired @ ACTION_DIRECTIONS[1:].T  # moves only: the runner never stands still
        return _one_hot(1 + np.argmax(scores, axis=1), int(self.action_space.n))

    def __repr__(self) -> str:
        return f"EvasiveRunner(edge={self.edge}, edge_pull={self.edge_pull})"


def greedy_chaser(observation_space: gym.Space | None = None, action_space: gym.Space | None = None) -> Policy:
    """A :class:`GreedyChaser` (default spaces: a Tag chaser's)."""
    return GreedyChaser(observation_space, action_space)


def evasive_runner(
    observation_space: gym.Space | None = None,
    action_space: gym.Space | None = None,
    edge: float = 0.6,
    edge_pull: float = 2.0,
) -> Policy:
    """An :class:`EvasiveRunner` (default spaces: the Tag runner's)."""
    return EvasiveRunner(observation_space, action_space, edge, edge_pull)


def still(
    observation_space: gym.Space | None = None, action_space: gym.Space | None = None, seat: str = RUNNER
) -> Policy:
    """Always the no-op action; default spaces are ``seat``'s (runner unless told)."""
    default_obs, default_act = seat_spaces(seat)
    return ConstantPolicy(observation_space or default_obs, action_space or default_act, NOOP)
