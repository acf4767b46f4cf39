"""What a batched env (the rules of a game over N copies as arrays) offers, and its per-copy random streams.

A batched env steps every copy at once; copy ``k`` after ``reset(seeds=[..., s, ...])`` plays
exactly as the PettingZoo env after ``reset(seed=s)`` (the PettingZoo envs here run the same core
with one copy). It never resets a copy by itself: whoever steps it (a VecEnv) resets finished
copies with :meth:`BatchedEnv.reset` and ``copies=``. See docs/cooking.md.

Random streams are counter based: each copy holds a 64-bit key drawn from its seed
(:func:`copy_keys`); the ``j``-th uniform of draw ``c`` is a hash of ``(key, c, j)``
(:func:`uniforms`), so all copies draw in one array operation and no copy's draws depend on
another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import gymnasium as gym
import numpy as np

from rqe_wrappers.core.checks import is_integer
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.errors import ConfigError, SeatError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S11, _S27, _S30, _S31 = (np.uint64(k) for k in (11, 27, 30, 31))

Seeds = int | Sequence[int | None] | None


class BatchStep(NamedTuple):
    """One step of every copy. Seats are in ``possible_agents`` order.

    Attributes:
        obs: ``(n_copies, n_seats, *obs_shape)``; a finished copy's row is its final observation.
        rewards: ``(n_copies, n_seats)`` float64.
        terminated: ``(n_copies,)`` bool: the game is over (nothing to bootstrap).
        truncated: ``(n_copies,)`` bool: a time limit ended the episode.
        costs: ``(n_copies, n_seats)`` float64 private costs already inside ``rewards``, or ``None``.
    """

    obs: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    costs: np.ndarray | None


class BatchedEnv(Protocol):
    """The interface of the batched envs in ``envs/`` (every seat of every copy acts each step)."""

    n_copies: int
    possible_agents: list[str]

    def observation_space(self, agent: str) -> gym.spaces.Space: ...

    def action_space(self, agent: str) -> gym.spaces.Space: ...

    def reset(self, seeds: Seeds = None, copies: np.ndarray | None = None) -> np.ndarray:
        """Reset ``copies`` (all when ``None``); returns the observations of *all* copies."""
        ...

    def step(self, actions: np.ndarray) -> BatchStep:
        """Step every copy with ``actions`` of shape ``(n_copies, n_seats)``."""
        ...


class BatchedBase:
    """What every batched env here shares: copies, spaces, and the checks of ``reset(seeds, copies)``."""

    possible_agents: list[str]

    def __init__(self, n_copies: int, spaces: dict[str, tuple[gym.spaces.Space, gym.spaces.Space]]):
        self.n_copies = check_n_copies(n_copies)
        self._spaces = spaces
        self._started = False

    def observation_space(self, agent: str) -> Any:
        return self._seat(agent)[0]

    def action_space(self, agent: str) -> Any:
        return self._seat(agent)[1]

    def _seat(self, agent: str) -> tuple[gym.spaces.Space, gym.spaces.Space]:
        if agent not in self._spaces:
            raise SeatError(f"unknown seat {agent!r}; the seats are {list(self._spaces)}")
        return self._spaces[agent]

    def _reset_copies(self, seeds: Seeds, copies: np.ndarray | None) -> tuple[np.ndarray, list[int | None]]:
        """The indices and per-copy seeds of a reset, checked (the first reset must reset every copy)."""
        idx = check_copies(copies, self.n_copies)
        per_copy = expand_seeds(seeds, len(idx))
        if not self._started and len(idx) < self.n_copies:
            raise ConfigError("the first reset() must reset every copy (copies=None)")
        self._started = True
        return idx, per_copy


def check_n_copies(n_copies: int) -> int:
    """``n_copies`` as an int >= 1, or :class:`ConfigError`."""
    if not is_integer(n_copies) or int(n_copies) < 1:
        raise ConfigError(f"n_copies must be a whole number >= 1, got {n_copies!r}")
    return int(n_copies)


def check_copies(copies: np.ndarray | Sequence[int] | None, n_copies: int) -> np.ndarray:
    """Indices of the copies to reset (all for ``None``; a bool mask is accepted), or :class:`ConfigError`."""
    if copies is None:
        return np.arange(n_copies)
    idx = np.asarray(copies)
    if idx.dtype == bool:
        if idx.shape != (n_copies,):
            raise ConfigError(f"a copies mask must have shape ({n_copies},), got {idx.shape}")
        return np.flatnonzero(idx)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ConfigError(f"copies must be a 1-d array of copy indices or a bool mask, got {copies!r}")
    if idx.size and (idx.min() < 0 or idx.max() >= n_copies or len(np.unique(idx)) != idx.size):
        raise ConfigError(f"copies must be distinct indices in 0..{n_copies - 1}, got {idx.tolist()}")
    return idx.astype(np.int64)


def expand_seeds(seeds: Seeds, count: int) -> list[int | None]:
    """Per-copy seeds: ``None`` -> all ``None``; an int ``s`` -> ``s, s + 1, ...`` (SB3's VecEnv rule)."""
    if seeds is None:
        return [None] * count
    if is_integer(seeds):
        return [int(seeds) + k for k in range(count)]
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence | np.ndarray):
        raise ConfigError(f"seeds must be None, an int or one seed (or None) per copy, got {seeds!r}")
    out = list(seeds)
    if len(out) != count:
        raise ConfigError(f"seeds has {len(out)} entries for {count} copies being reset; give one per copy")
    for s in out:
        if s is not None and not (is_integer(s) and int(s) >= 0):
            raise ConfigError(f"each seed must be None or a whole number >= 0, got {s!r}")
    return [None if s is None else int(s) for s in out]


def batch_actions(actions: Any, n_copies: int, sizes: Sequence[int], names: str = "") -> np.ndarray:
    """``actions`` as int64 ``(n_copies, n_seats)``, seat ``i``'s in ``0..sizes[i] - 1``; else :class:`ConfigError`."""
    acts = np.asarray(actions)
    shape = (n_copies, len(sizes))
    if acts.shape != shape or acts.dtype.kind not in "iu":
        raise ConfigError(
            f"actions must be an integer array of shape {shape} (copy, seat), got {acts.dtype} {acts.shape}"
        )
    suspect = acts.size and (acts.min() < 0 or acts.max() >= min(sizes))  # two reductions: the common case
    if suspect and ((acts < 0) | (acts >= np.asarray(sizes))).any():
        hint = f" ({names})" if names else ""
        raise ConfigError(
            f"seat i's actions must be in 0..sizes[i] - 1 for sizes {list(sizes)}{hint}, got {acts.tolist()}"
        )
    return acts.astype(np.int64, copy=False)


def action_index(agent: str, action: Any, n: int, names: str = "") -> int:
    """One seat's action (an int or a 0-d integer array) as an int in ``0..n - 1``, or :class:`ConfigError`."""
    if type(action) is int and 0 <= action < n:  # the common case, fast
        return action
    a = np.asarray(action)
    if not (a.ndim == 0 and a.dtype.kind in "iu" and 0 <= int(a) < n):
        hint = f" ({names})" if names else ""
        raise ConfigError(f"{agent}: action must be an integer in 0..{n - 1}{hint}, got {action!r}")
    return int(a)


def mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a uint64 array (a bijection that scrambles every bit); a new array."""
    z = np.array(x, dtype=np.uint64)
    return _mix_inplace(z, np.empty_like(z))


def _mix_inplace(z: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """:func:`mix` of ``z`` written into ``z`` (``tmp``: scratch of its shape): no other temporaries."""
    for shift, mult in ((_S30, _MIX1), (_S27, _MIX2)):
        np.right_shift(z, shift, out=tmp)
        z ^= tmp
        z *= mult
    np.right_shift(z, _S31, out=tmp)
    z ^= tmp
    return z


def copy_keys(seeds: Sequence[int | None], previous: np.ndarray, name: str) -> np.ndarray:
    """One uint64 key per copy: from the seed (via :func:`~rqe_wrappers.core.seeding.stream`).

    A ``None`` seed continues the copy's ``previous`` key (the next episode of its stream, as
    gymnasium's ``reset()`` without a seed continues its Generator); a copy that never had a key
    (``previous`` 0) draws fresh entropy.
    """
    previous = np.asarray(previous, dtype=np.uint64)
    keys = np.empty(len(seeds), np.uint64)
    go_on = np.array([s is None for s in seeds], bool) & (previous != 0)
    keys[go_on] = mix(previous[go_on] + _GOLDEN)  # SplitMix64's next state
    for k in np.flatnonzero(~go_on).tolist():
        keys[k] = stream(seeds[k], name).integers(1, 2**64, dtype=np.uint64)
    keys[keys == 0] = 1  # 0 marks "no key yet"
    return keys


#: counters below this are mixed once per draw width and looked up (a step's counter is its step number)
_TABLE_COUNTERS = 1 << 12
_counter_tables: dict[int, np.ndarray] = {}


def _counter_bits(counters: np.ndarray, width: int) -> np.ndarray:
    """``mix(counter * width + j + golden)`` for ``j < width``, ``(len(counters), width)`` uint64; a new array."""
    z = counters[:, None] * np.uint64(width) + np.arange(width, dtype=np.uint64)
    z += _GOLDEN
    return _mix_inplace(z, np.empty_like(z))


def _mixed_counters(counters: np.ndarray, width: int) -> np.ndarray:
    """:func:`_counter_bits`, looked up from a table of the first counters (computed beyond it)."""
    top = int(counters.max()) if counters.size else 0
    if top >= _TABLE_COUNTERS:
        return _counter_bits(counters, width)
    table = _counter_tables.get(width)
    if table is None or len(table) <= top:  # grown to the next power of two, at most _TABLE_COUNTERS rows
        rows = min(_TABLE_COUNTERS, max(128, 1 << top.bit_length()))
        table = _counter_tables[width] = _counter_bits(np.arange(rows, dtype=np.uint64), width)
    return table[counters]


def uniforms(keys: np.ndarray, counters: np.ndarray, width: int) -> np.ndarray:
    """``(len(keys), width)`` uniforms in ``[0, 1)``: the ``width`` draws of counter ``counters[k]`` of copy ``k``."""
    z = _mixed_counters(np.asarray(counters, dtype=np.uint64), width)
    tmp = np.empty_like(z)
    z += np.asarray(keys, dtype=np.uint64)[:, None]
    z = _mix_inplace(z, tmp)
    z >>= _S11
    out = z.astype(np.float64)
    out *= 1.0 / 2**53
    return out
