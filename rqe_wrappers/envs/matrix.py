"""Two-player normal-form games as PettingZoo parallel envs, and the SRPO paper's coordination game."""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from rqe_wrappers.core.checks import integer
from rqe_wrappers.core.checks import payoffs as check_payoffs
from rqe_wrappers.envs.batched import BatchedBase, BatchStep, Seeds, action_index, batch_actions
from rqe_wrappers.errors import ConfigError


class BatchedMatrixGame(BatchedBase):
    """A bimatrix game repeated ``rounds`` times over ``n_copies`` copies at once (numpy, deterministic).

    Same rules as :class:`MatrixGameEnv` (checked step for step in tests/test_batched_envs.py): observations
    ``[t / rounds]`` per seat, ``(n_copies, 2, 1)``; after ``rounds`` steps a copy is truncated
    (``time_limit=True``) or terminated, and must be reset (``reset(copies=...)``) before it is
    stepped again.

    Example:
        >>> core = BatchedMatrixGame(coordination_payoffs(0.5), n_copies=2)
        >>> obs = core.reset()
        >>> core.step(np.array([[1, 0], [0, 0]])).rewards.tolist()
        [[0.5, 1.0], [0.0, 0.0]]
    """

    possible_agents = ["player_0", "player_1"]

    def __init__(self, payoffs: Any, n_copies: int = 1, rounds: int = 1, time_limit: bool = True):
        self.payoffs = check_payoffs(payoffs)
        box = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        super().__init__(
            n_copies,
            {
                a: (box, gym.spaces.Discrete(n))
                for a, n in zip(self.possible_agents, self.payoffs.shape[:2], strict=True)
            },
        )
        self.rounds = integer("rounds", rounds, low=1)
        self.time_limit = bool(time_limit)
        self.t = np.zeros(self.n_copies, np.int64)

    def reset(self, seeds: Seeds = None, copies: np.ndarray | None = None) -> np.ndarray:
        """Reset ``copies`` (all for ``None``; the game has no randomness, ``seeds`` is only checked)."""
        idx, _ = self._reset_copies(seeds, copies)
        self.t[idx] = 0
        return self.observe()

    def observe(self) -> np.ndarray:
        """Observations ``(n_copies, 2, 1)`` float32: ``t / rounds`` for both seats."""
        frac = (self.t / self.rounds).astype(np.float32)
        return np.repeat(frac[:, None, None], 2, axis=1)

    def step(self, actions: np.ndarray) -> BatchStep:
        """Play one round in every copy; ``actions`` ``(n_copies, 2)`` ints."""
        acts = batch_actions(actions, self.n_copies, self.payoffs.shape[:2])
        if not self._started or (self.t >= self.rounds).any():
            raise ConfigError("step() on a finished or never reset copy: reset() it first")
        self.t += 1
        done = self.t >= self.rounds
        return BatchStep(
            obs=self.observe(),
            rewards=self.payoffs[acts[:, 0], acts[:, 1]],
            terminated=done & (not self.time_limit),
            truncated=done & self.time_limit,
            costs=None,
        )


class MatrixGameEnv(ParallelEnv):
    """A bimatrix game repeated ``rounds`` times.

    ``payoffs[a0, a1]`` is ``(reward of player_0, reward of player_1)``. Observations are
    ``[t / rounds]``. With ``time_limit=True`` the episode is *truncated* after ``rounds`` steps
    (a time limit: PPO must bootstrap the last value, a good truncation test); with
    ``time_limit=False`` the game *terminates* there (the game is over, nothing to bootstrap).
    Pure Python for speed in a per-copy loop; :class:`BatchedMatrixGame` is its array twin (the two
    are checked step for step in tests/test_batched_envs.py).
    """

    metadata = {"name": "matrix_game_v0", "render_modes": []}

    def __init__(self, payoffs, rounds: int = 1, name: str = "matrix_game_v0", time_limit: bool = True):
        self.payoffs = check_payoffs(payoffs)
        self.rounds = integer("rounds", rounds, low=1)
        self.time_limit = bool(time_limit)
        self.metadata = {**self.metadata, "name": name}
        self.possible_agents = ["player_0", "player_1"]
        self.agents: list[str] = []
        self._t = 0

    @functools.cache
    def observation_space(self, agent):
        return gym.spaces.Box(0.0, 1.0, (1,), np.float32)

    @functools.cache
    def action_space(self, agent):
        return gym.spaces.Discrete(self.payoffs.shape[self.possible_agents.index(agent)])

    def _obs(self):
        return {a: np.array([self._t / self.rounds], np.float32) for a in self.agents}

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self._t = 0
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions):
        if not self.agents:
            raise ConfigError("step() called after the game ended; call reset() first")
        n0, n1 = self.payoffs.shape[:2]
        a0, a1 = action_index("player_0", actions["player_0"], n0), action_index("player_1", actions["player_1"], n1)
        r = self.payoffs[a0, a1]
        self._t += 1
        rewards = {"player_0": float(r[0]), "player_1": float(r[1])}
        done = self._t >= self.rounds
        obs = self._obs()
        terms = {a: done and not self.time_limit for a in self.agents}
        truncs = {a: done and self.time_limit for a in self.agents}
        infos: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terms, truncs, infos


def coordination_payoffs(cost: float = 0.5) -> np.ndarray:
    """The SRPO paper's coordination game. Action 1 = collaborate, 0 = free-ride.

    Both players get 1 if at least one collaborates; a collaborator pays a private ``cost``.
    """
    if not 0.0 < cost < 1.0:
        raise ConfigError(f"cost must be in (0, 1) for a coordination dilemma, got {cost}")
    p = np.zeros((2, 2, 2))
    for a0 in (0, 1):
        for a1 in (0, 1):
            team = 1.0 if (a0 or a1) else 0.0
            p[a0, a1] = (team - cost * a0, team - cost * a1)
    return p


def coordination_game(cost: float = 0.5, rounds: int = 1) -> MatrixGameEnv:
    """``MatrixGameEnv`` for the coordination game (parallel API); the game terminates after ``rounds``."""
    return MatrixGameEnv(coordination_payoffs(cost), rounds=rounds, name="coordination_v0", time_limit=False)
