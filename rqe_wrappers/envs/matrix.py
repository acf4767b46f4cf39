"""Two-player normal-form games as PettingZoo parallel envs, and the SRPO paper's coordination game."""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from rqe_wrappers.errors import ConfigError


class MatrixGameEnv(ParallelEnv):
    """A bimatrix game repeated ``rounds`` times.

    ``payoffs[a0, a1]`` is ``(reward of player_0, reward of player_1)``. Observations are
    ``[t / rounds]``. With ``time_limit=True`` the episode is *truncated* after ``rounds`` steps
    (a time limit: PPO must bootstrap the last value, a good truncation test); with
    ``time_limit=False`` the game *terminates* there (the game is over, nothing to bootstrap).
    """

    metadata = {"name": "matrix_game_v0", "render_modes": []}

    def __init__(self, payoffs, rounds: int = 1, name: str = "matrix_game_v0", time_limit: bool = True):
        payoffs = np.asarray(payoffs, dtype=np.float64)
        if payoffs.ndim != 3 or payoffs.shape[2] != 2 or min(payoffs.shape[:2]) < 1:
            raise ConfigError(f"payoffs must have shape (n0, n1, 2), got {payoffs.shape}")
        if not np.all(np.isfinite(payoffs)):
            raise ConfigError("payoffs must be finite")
        if int(rounds) < 1:
            raise ConfigError(f"rounds must be >= 1, got {rounds}")
        self.payoffs = payoffs
        self.rounds = int(rounds)
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
        a0, a1 = int(actions["player_0"]), int(actions["player_1"])
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
