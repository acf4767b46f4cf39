"""Background players with their own preferences: prosocial and risk-averse reward shaping (minimax-Bayes
paper, section 4.1), to train diverse background populations.

A seat with prosociality ``w`` and risk aversion ``rho`` in an ``n``-player game is paid, each step,

    r~ = (a * r_own + b * mean(r_others)) / (|a| + |b|),   a = sgn(1 - w) |1 - w|^log2(n),
                                                            b = sgn(w) |w|^log2(n / (n - 1))
    u  = max(r~, 0) + rho * min(r~, 0)

``w = 0`` is selfish, ``w = 1`` cares only for the others, ``w = 0.5`` is paid the mean over all
players (``a, b = 1/n, (n-1)/n`` after normalising), ``w < 0`` is spiteful; ``rho > 1`` weighs losses more than
gains (risk-averse), ``rho < 1`` less. The paper samples ``w ~ U(-0.2, 1.2)`` and ``rho ~ U(0.1, 2)``
per background policy (:func:`sample_preferences`). :func:`preference_wrap` applies the shaping to
any PettingZoo parallel env; the unshaped reward stays in ``infos[seat]["raw_reward"]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pettingzoo import ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper

from rqe_wrappers.core.checks import integer, real
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.errors import ConfigError, SeatError

#: the paper's sampling intervals (its code: prosociality U(-0.2, 1.2), risk aversion U(0.1, 2.0))
PROSOCIALITY_RANGE = (-0.2, 1.2)
RISK_AVERSION_RANGE = (0.1, 2.0)

__all__ = ["PreferenceWrapper", "Preferences", "preference_wrap", "sample_preferences", "shaped_reward"]


@dataclass(frozen=True)
class Preferences:
    """One player's preferences: ``prosociality`` (``w``, any finite number) and ``risk_aversion`` (``rho >= 0``)."""

    prosociality: float = 0.0
    risk_aversion: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "prosociality", real("prosociality", self.prosociality))
        object.__setattr__(self, "risk_aversion", real("risk_aversion", self.risk_aversion, low=0))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def weights(self, n_players: int) -> tuple[float, float]:
        """``(a, b) / (|a| + |b|)``: the weights of the own reward and of the others' mean."""
        n = integer("n_players", n_players, low=2)
        w = self.prosociality
        a = math.copysign(abs(1.0 - w) ** math.log2(n), 1.0 - w)
        b = math.copysign(abs(w) ** math.log2(n / (n - 1)), w)
        norm = abs(a) + abs(b)  # > 0: w and 1 - w are not both 0
        return a / norm, b / norm


def shaped_reward(own: float, others_mean: float, preferences: Preferences, n_players: int) -> float:
    """The shaped reward ``u`` of one step (module docstring)."""
    a, b = preferences.weights(n_players)
    mixed = a * own + b * others_mean
    return max(mixed, 0.0) + preferences.risk_aversion * min(mixed, 0.0)


def sample_preferences(
    n: int,
    seed: int,
    *,
    prosociality: tuple[float, float] = PROSOCIALITY_RANGE,
    risk_aversion: tuple[float, float] = RISK_AVERSION_RANGE,
) -> list[Preferences]:
    """``n`` preferences drawn uniformly from the ranges (the paper's by default), seeded by ``seed``."""
    n = integer("n", n, low=1)
    for name, (lo, hi) in (("prosociality", prosociality), ("risk_aversion", risk_aversion)):
        if not (real(f"{name}[0]", lo) <= real(f"{name}[1]", hi)):
            raise ConfigError(f"{name} must be a range (low, high) with low <= high, got {(lo, hi)}")
    if risk_aversion[0] < 0:
        raise ConfigError(f"risk_aversion must be >= 0, got the range {risk_aversion}")
    rng = stream(integer("seed", seed, low=0), "preferences")
    w = rng.uniform(*prosociality, size=n)
    rho = rng.uniform(*risk_aversion, size=n)
    return [Preferences(float(x), float(y)) for x, y in zip(w, rho, strict=True)]


class PreferenceWrapper(BaseParallelWrapper):
    """A parallel env whose seats in ``preferences`` are paid their shaped reward (module docstring)."""

    def __init__(self, env: ParallelEnv, preferences: Mapping[str, Preferences]):
        if not isinstance(env, ParallelEnv):
            raise ConfigError(
                f"preference_wrap takes a PettingZoo ParallelEnv, got {type(env).__name__} "
                "(convert AEC envs with pettingzoo.utils.conversions.aec_to_parallel)"
            )
        super().__init__(env)
        if not isinstance(preferences, Mapping) or not preferences:
            raise ConfigError(f"preferences must be a non-empty dict {{seat: Preferences}}, got {preferences!r}")
        unknown = [s for s in preferences if s not in env.possible_agents]
        if unknown:
            raise SeatError(f"preferences name seats {unknown}; the env's seats are {list(env.possible_agents)}")
        bad = [s for s, p in preferences.items() if not isinstance(p, Preferences)]
        if bad:
            raise ConfigError(f"preferences of {bad} must be Preferences(prosociality=..., risk_aversion=...)")
        if len(env.possible_agents) < 2:
            raise ConfigError("prosocial shaping needs at least two players")
        self.preferences = dict(preferences)

    def step(self, actions: dict[str, Any]):
        obs, rewards, term, trunc, infos = self.env.step(actions)
        infos = {a: dict(i) for a, i in infos.items()}
        n = len(self.env.possible_agents)
        shaped = dict(rewards)
        for seat, prefs in self.preferences.items():
            if seat not in rewards:
                continue
            others = [float(r) for a, r in rewards.items() if a != seat]
            mean = _mean(others)  # players that left pay nothing this step
            shaped[seat] = shaped_reward(float(rewards[seat]), mean, prefs, n)
            infos.setdefault(seat, {})["raw_reward"] = float(rewards[seat])
        return obs, shaped, term, trunc, infos


def _mean(values: list[float]) -> float:
    """``np.mean`` of a short list, summed left to right as numpy does below eight items (0 if empty)."""
    if not values:
        return 0.0
    total = 0.0
    for v in values:
        total += v
    return total / len(values)


def preference_wrap(env: ParallelEnv, preferences: Mapping[str, Preferences]) -> PreferenceWrapper:
    """``env`` with the seats in ``preferences`` paid their prosocial, risk-averse shaped reward.

    Example:
        >>> from rqe_wrappers.envs.matrix import coordination_game
        >>> env = preference_wrap(coordination_game(0.5), {"player_0": Preferences(0.5, 2.0)})
        >>> round(shaped_reward(-1.0, 3.0, Preferences(0.5, 2.0), 2), 3)  # (-1 + 3) / 2, a gain
        1.0
    """
    return PreferenceWrapper(env, preferences)
