"""The iterated prisoner's dilemma of the minimax-Bayes paper (section 8.1) as a PettingZoo parallel env.

Rules: two seats, ``"player_0"`` and ``"player_1"``, play the prisoner's dilemma ``rounds`` times.
Action 0 = cooperate (C), 1 = defect (D). Payoff per round, own action first:
CC = 4, CD = 0 (I cooperate, you defect), DC = 5, DD = 1.

Observation (each seat from its own perspective): the whole history of joint actions so far.
A ``float32`` vector of length ``5 * rounds + 1``:

- ``4 * rounds`` entries: for each round ``t`` a one-hot block of the joint action
  ``j = 2 * own + other`` (CC = 0, CD = 1, DC = 2, DD = 3), all zeros for rounds not yet played;
- ``rounds + 1`` entries: one-hot of the number of rounds played so far (0 .. rounds).

Since every history is its own state, fully adaptive tabular policies are tables over histories:
:func:`history_index` numbers the ``n_histories(rounds) = 1 + 4 + ... + 4**(rounds-1)`` histories
in which a decision is still due (breadth first: the empty history is 0 and the history ``h + j``
has index ``4 * index(h) + j + 1``, the paper's code numbers its tree the same way).

The episode ends by *termination* after ``rounds`` rounds: the game is over, nothing follows, and
the history in the observation already says how far the game has come, so there is no time limit
to bootstrap across.

Default ``rounds = 3``: the paper's IPD table fits three rounds exactly (maximin-utility's
worst-case utility 3.00 = three rounds of mutual defection; its worst-case regret 9.00 = 12 for
cooperating in self-play minus those 3), and its worst-case regrets above 10 rule out two rounds
(at most 5 per round). Three rounds keep the history table at 21 states.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from rqe_wrappers.envs.batched import BatchedBase, BatchStep, Seeds, batch_actions
from rqe_wrappers.errors import ConfigError

COOPERATE = 0
DEFECT = 1
DEFAULT_ROUNDS = 3
#: ``PAYOFFS[own, other]``: one round's reward of the player taking ``own``.
PAYOFFS = np.array([[4.0, 0.0], [5.0, 1.0]])
#: Joint action index as seen by the other player: ``2 * own + other`` -> ``2 * other + own``.
_SWAP = np.array([0, 2, 1, 3])


def check_rounds(rounds: int) -> int:
    """``rounds`` as an int, or :class:`ConfigError` if it is not a whole number >= 1."""
    try:
        ok = not isinstance(rounds, bool) and int(rounds) == rounds and int(rounds) >= 1
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"rounds must be a whole number >= 1, got {rounds!r}")
    return int(rounds)


def obs_size(rounds: int) -> int:
    """Length of an observation vector: ``4 * rounds`` history entries + ``rounds + 1`` round entries."""
    return 5 * check_rounds(rounds) + 1


def n_histories(rounds: int) -> int:
    """Number of histories in which a move is still due: ``1 + 4 + ... + 4**(rounds - 1)``."""
    return (4 ** check_rounds(rounds) - 1) // 3


def level_offset(t: int) -> int:
    """Index of the first history of length ``t`` (``1 + 4 + ... + 4**(t - 1)``)."""
    return (4**t - 1) // 3


def observation_space(rounds: int) -> gym.spaces.Box:
    """The observation space of every seat for a game of ``rounds`` rounds."""
    return gym.spaces.Box(0.0, 1.0, (obs_size(rounds),), np.float32)


def encode_history(history, rounds: int) -> np.ndarray:
    """Observation for a history given as ``[(own, other), ...]`` (oldest round first)."""
    rounds = check_rounds(rounds)
    history = list(history)
    if len(history) > rounds:
        raise ConfigError(f"a history of {len(history)} rounds does not fit a {rounds}-round game")
    obs = np.zeros(obs_size(rounds), np.float32)
    for t, pair in enumerate(history):
        own, other = (int(a) for a in pair)
        if own not in (0, 1) or other not in (0, 1):
            raise ConfigError(f"actions must be 0 (cooperate) or 1 (defect), got {pair!r} in round {t}")
        obs[4 * t + 2 * own + other] = 1.0
    obs[4 * rounds + len(history)] = 1.0
    return obs


def decode_history(obs: np.ndarray) -> list[tuple[int, int]]:
    """``[(own, other), ...]`` for one observation; :class:`ConfigError` if it is no valid history."""
    obs = np.asarray(obs)
    rounds = _rounds_of(obs)
    length = _check_one(obs, rounds)
    joint = np.argmax(obs[: 4 * rounds].reshape(rounds, 4), axis=1)[:length]
    return [(int(j) // 2, int(j) % 2) for j in joint]


def history_length(obs: np.ndarray) -> int:
    """Rounds played so far in one observation."""
    obs = np.asarray(obs)
    return _check_one(obs, _rounds_of(obs))


def history_index(obs: np.ndarray) -> int:
    """Unique index ``0 .. n_histories(rounds) - 1`` of the history in one observation.

    Only histories in which a move is still due have an index; the complete history (after the
    last round) raises :class:`ConfigError`.
    """
    obs = np.asarray(obs)
    rounds = _rounds_of(obs)
    length = _check_one(obs, rounds)
    if length == rounds:
        raise ConfigError(
            f"the history has all {rounds} rounds: the game is over and no move is due, so it has no index"
        )
    return int(history_indices(obs[None])[0])


def history_indices(obs_batch: np.ndarray) -> np.ndarray:
    """Vectorised :func:`history_index` for a batch, shape ``(batch,)``, without validation.

    Complete histories (the game is over) get ``-1``.
    """
    obs_batch = np.asarray(obs_batch)
    if obs_batch.ndim != 2:
        raise ConfigError(f"expected a batch of IPD observations (batch, 5 * rounds + 1), got {obs_batch.shape}")
    rounds = _rounds_of(obs_batch)
    if rounds <= _EXACT_ROUNDS:  # the index as two dot products (exact in float64), for one-hot rows
        digits, scale = _index_weights(rounds)
        index = np.rint((obs_batch[:, : 4 * rounds] @ digits) * (obs_batch[:, 4 * rounds :] @ scale))
        return np.where(obs_batch[:, -1] > 0, -1, index.astype(np.int64))
    length = np.argmax(obs_batch[:, 4 * rounds :], axis=1)
    joint = np.argmax(obs_batch[:, : 4 * rounds].reshape(len(obs_batch), rounds, 4), axis=2)
    index = np.zeros(len(obs_batch), np.int64)
    for t in range(rounds):
        index = np.where(t < length, 4 * index + joint[:, t] + 1, index)
    return np.where(length < rounds, index, -1)


#: up to this many rounds :func:`history_indices` computes in float64 without rounding error (2 * rounds + 1 bits)
_EXACT_ROUNDS = 25


@functools.cache
def _index_weights(rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """``(digits, scale)``: round ``t``'s joint action ``j`` weighs ``(j + 1) / 4**t``, a history of length
    ``L`` scales that by ``4**(L - 1)``; the product is the index ``sum_t (j_t + 1) * 4**(L - 1 - t)``."""
    digits = ((np.arange(4) + 1.0)[None, :] * 4.0 ** -np.arange(rounds)[:, None]).reshape(-1)
    return digits, 4.0 ** (np.arange(rounds + 1) - 1)


def history_observations(rounds: int, length: int | None = None) -> np.ndarray:
    """Observations of all histories, row ``i`` = history with index ``i``.

    With ``length``, only the ``4**length`` histories of that length, in index order (which is
    ``length == rounds`` too: the complete histories, ordered as their indices would continue).
    """
    rounds = check_rounds(rounds)
    if length is None:
        return np.concatenate([history_observations(rounds, t) for t in range(rounds)])
    if not 0 <= length <= rounds:
        raise ConfigError(f"length must be in 0..{rounds}, got {length}")
    obs = np.zeros((4**length, obs_size(rounds)), np.float32)
    rows = np.arange(4**length)
    for t in range(length):
        joint = (rows // 4 ** (length - 1 - t)) % 4
        obs[rows, 4 * t + joint] = 1.0
    obs[:, 4 * rounds + length] = 1.0
    return obs


def swap_perspective(obs_batch: np.ndarray) -> np.ndarray:
    """The same histories as the other player sees them (own and other's actions swapped)."""
    obs_batch = np.asarray(obs_batch)
    rounds = _rounds_of(obs_batch)
    out = obs_batch.copy()
    hist = out[..., : 4 * rounds].reshape(*out.shape[:-1], rounds, 4)
    out[..., : 4 * rounds] = hist[..., _SWAP].reshape(*out.shape[:-1], 4 * rounds)
    return out


def _rounds_of(obs: np.ndarray) -> int:
    size = obs.shape[-1] if obs.ndim else 0
    if obs.ndim not in (1, 2) or size < 6 or (size - 1) % 5:
        raise ConfigError(f"not an IPD observation: expected length 5 * rounds + 1, got shape {obs.shape}")
    return (size - 1) // 5


def _check_one(obs: np.ndarray, rounds: int) -> int:
    if obs.ndim != 1:
        raise ConfigError(f"expected one observation of shape ({obs_size(rounds)},), got {obs.shape}")
    hist = obs[: 4 * rounds].reshape(rounds, 4)
    marker = obs[4 * rounds :]
    if not (np.isin(obs, (0.0, 1.0)).all() and marker.sum() == 1):
        raise ConfigError("not an IPD observation: entries must be 0/1 with exactly one round marker")
    length = int(np.argmax(marker))
    played = hist.sum(axis=1)
    if not ((played[:length] == 1).all() and (played[length:] == 0).all()):
        raise ConfigError(
            f"not an IPD observation: the round marker says {length} rounds were played, "
            f"but the history blocks hold {played.astype(int).tolist()}"
        )
    return length


class BatchedIPD(BatchedBase):
    """The iterated prisoner's dilemma over ``n_copies`` copies at once (numpy, deterministic).

    Observations ``(n_copies, 2, 5 * rounds + 1)``, each seat's from its own side (as
    :func:`encode_history`); a copy terminates after ``rounds`` rounds and must be reset
    (``reset(copies=...)``) before it is stepped again. The same rules as :class:`IPDEnv`, checked
    step for step against it in tests/test_batched_envs.py.

    Example:
        >>> core = BatchedIPD(n_copies=2, rounds=3)
        >>> obs = core.reset()
        >>> core.step(np.array([[COOPERATE, DEFECT], [DEFECT, DEFECT]])).rewards.tolist()
        [[0.0, 5.0], [1.0, 1.0]]
    """

    possible_agents = ["player_0", "player_1"]

    def __init__(self, n_copies: int = 1, rounds: int = DEFAULT_ROUNDS):
        self.rounds = check_rounds(rounds)
        super().__init__(
            n_copies, {a: (observation_space(self.rounds), gym.spaces.Discrete(2)) for a in self.possible_agents}
        )
        self.joint = np.zeros((self.n_copies, self.rounds), np.int64)  # 2 * action of player_0 + action of player_1
        self.t = np.zeros(self.n_copies, np.int64)

    def reset(self, seeds: Seeds = None, copies: np.ndarray | None = None) -> np.ndarray:
        """Reset ``copies`` (all for ``None``; the game has no randomness, ``seeds`` is only checked)."""
        idx, _ = self._reset_copies(seeds, copies)
        self.joint[idx] = 0
        self.t[idx] = 0
        return self.observe()

    def observe(self) -> np.ndarray:
        """Observations ``(n_copies, 2, 5 * rounds + 1)`` float32."""
        rounds = self.rounds
        out = np.zeros((self.n_copies, 2, obs_size(rounds)), np.float32)
        copy, t = np.nonzero(np.arange(rounds) < self.t[:, None])
        joint = self.joint[copy, t]
        out[copy, 0, 4 * t + joint] = 1.0
        out[copy, 1, 4 * t + _SWAP[joint]] = 1.0
        out[np.arange(self.n_copies), :, 4 * rounds + self.t] = 1.0
        return out

    def step(self, actions: np.ndarray) -> BatchStep:
        """Play one round in every copy; ``actions`` ``(n_copies, 2)`` of 0 (cooperate) / 1 (defect)."""
        acts = batch_actions(actions, self.n_copies, (2, 2), "0 cooperate, 1 defect")
        if not self._started or (self.t >= self.rounds).any():
            raise ConfigError("step() on a finished or never reset copy: reset() it first")
        rows = np.arange(self.n_copies)
        self.joint[rows, self.t] = 2 * acts[:, 0] + acts[:, 1]
        self.t += 1
        done = self.t >= self.rounds
        return BatchStep(
            obs=self.observe(),
            rewards=np.stack([PAYOFFS[acts[:, 0], acts[:, 1]], PAYOFFS[acts[:, 1], acts[:, 0]]], axis=1),
            terminated=done,
            truncated=np.zeros(self.n_copies, bool),
            costs=None,
        )


class IPDEnv(ParallelEnv):
    """Iterated prisoner's dilemma, parallel API, deterministic (``reset(seed)`` has nothing to seed).

    Pure Python for speed in a per-copy loop; :class:`BatchedIPD` is its array twin (the two are
    checked step for step in tests/test_batched_envs.py).

    Example:
        >>> env = IPDEnv(rounds=3)
        >>> obs, infos = env.reset(seed=0)
        >>> obs, rewards, terms, truncs, infos = env.step({"player_0": 0, "player_1": 1})
        >>> rewards
        {'player_0': 0.0, 'player_1': 5.0}
    """

    metadata = {"name": "ipd_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, rounds: int = DEFAULT_ROUNDS):
        self.rounds = check_rounds(rounds)
        self.possible_agents = ["player_0", "player_1"]
        self.agents: list[str] = []
        self.render_mode = None
        self._history: list[tuple[int, int]] = []  # (action of player_0, action of player_1)

    @functools.cache
    def observation_space(self, agent):
        return observation_space(self.rounds)

    @functools.cache
    def action_space(self, agent):
        return gym.spaces.Discrete(2)

    def _obs(self, agents):
        out = {}
        for agent in agents:
            seat = self.possible_agents.index(agent)
            out[agent] = encode_history([(h[seat], h[1 - seat]) for h in self._history], self.rounds)
        return out

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self._history = []
        return self._obs(self.agents), {a: {} for a in self.agents}

    def step(self, actions):
        if not self.agents:
            raise ConfigError("step() called after the game ended; call reset() first")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ConfigError(f"step() needs an action for every seat; missing {missing}")
        pair = []
        for agent in self.possible_agents:
            a = actions[agent]
            if not (np.ndim(a) == 0 and a in (0, 1)):
                raise ConfigError(f"{agent}: action must be 0 (cooperate) or 1 (defect), got {a!r}")
            pair.append(int(a))
        self._history.append((pair[0], pair[1]))
        rewards = {
            "player_0": float(PAYOFFS[pair[0], pair[1]]),
            "player_1": float(PAYOFFS[pair[1], pair[0]]),
        }
        agents = self.agents
        done = len(self._history) >= self.rounds
        obs = self._obs(agents)
        terms = {a: done for a in agents}
        truncs = {a: False for a in agents}
        infos: dict[str, dict[str, Any]] = {a: {} for a in agents}
        if done:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def close(self):
        pass


def ipd_env(rounds: int = DEFAULT_ROUNDS) -> IPDEnv:
    """The iterated prisoner's dilemma (parallel API)."""
    return IPDEnv(rounds=rounds)
