"""Hanabi cross-play between seeds and methods, and the score of uniformly random legal play.

Two players: :func:`~rqe_wrappers.eval.crossplay.crossplay` as is (seats both ways). Four players:
two agents alternate around the table, ``A, B, A, B`` (``player_0``, ``player_2`` to the row agent),
and ``B, A, B, A``; each agent then plays next to the other on both sides and both take part in every
round of hints. Rows follow crossplay's tidy table (``agent_seat`` is the row agent's first seat).
Docs: docs/hanabi.md, "Cross-play".
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np

from rqe_wrappers.core.checks import integer
from rqe_wrappers.core.policy import RandomPolicy
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.eval.agents import Agent
from rqe_wrappers.eval.crossplay import CrossPlayResult, crossplay, crossplay_rows, pair_games, seat_policies
from rqe_wrappers.eval.episodes import play_episodes
from rqe_wrappers.eval.runner import play_seatings
from rqe_wrappers.experiments.hanabi.env import hanabi_env

#: Cross-play episodes per seating, and the seed of episode 0.
EVAL_EPISODES = 32
EVAL_SEED = 10_000

__all__ = ["EVAL_EPISODES", "EVAL_SEED", "alternating_seatings", "hanabi_crossplay", "random_score"]


def alternating_seatings(seats: list[str], first: str, second: str) -> dict[str, str]:
    """``{seat: agent}`` with ``first`` in the even seats and ``second`` in the odd ones."""
    return {s: (first if i % 2 == 0 else second) for i, s in enumerate(seats)}


def hanabi_crossplay(
    agents: Mapping[str, Agent],
    players: int = 2,
    *,
    methods: Mapping[str, str] | None = None,
    episodes: int = EVAL_EPISODES,
    seed: int = EVAL_SEED,
    n_workers: int = 0,
    **params: Any,
) -> CrossPlayResult:
    """Every pairing of ``agents`` (self-play included) on :func:`hanabi_env`, seats both ways.

    ``players=2``: :func:`~rqe_wrappers.eval.crossplay.crossplay`. ``players > 2``: the pair
    alternates around the table (module docstring); the return columns hold every seat's return
    (the shared score). Agents trained with seat identity play each seat with its own index.
    """
    env_fn = partial(hanabi_env, players, **params)
    if players == 2:
        return crossplay(agents, env_fn, methods=methods, episodes=episodes, seed=seed, n_workers=n_workers)
    episodes = integer("episodes", episodes, low=1)
    seed = integer("seed", seed, low=0)
    n_workers = integer("n_workers", n_workers, low=0)
    if not agents:
        raise ConfigError("hanabi_crossplay needs at least one agent: agents={name: agent}")
    given = dict(methods or {})
    unknown = sorted(set(given) - set(agents))
    if unknown:
        raise ConfigError(f"methods names agents that are not in agents: {unknown}")
    method_of = {str(a): str(given.get(a, a)) for a in agents}
    env = env_fn()
    seats = list(env.possible_agents)
    table = {str(n): seat_policies(a, env, seats, f"agent {n!r}", learning=seats) for n, a in agents.items()}
    order = list(dict.fromkeys(method_of.values()))
    names = sorted(table, key=lambda n: order.index(method_of[n]))
    games = pair_games(names)  # every unordered pair both ways (who sits in player_0), a self-play pair once
    results = play_seatings(
        env_fn,
        table,
        {},
        [alternating_seatings(seats, a, b) for a, b in games],
        episodes,
        seed=seed,
        n_workers=n_workers,
    )
    pair = (seats[0], seats[1])
    rows = crossplay_rows(games, results, method_of, pair, seed)
    meta = {"layout": "alternating: row agent in even seats, partner in odd seats, and the other way round"}
    return CrossPlayResult(rows, tuple(names), {n: method_of[n] for n in names}, pair, episodes, seed, meta)


def random_score(players: int = 2, episodes: int = EVAL_EPISODES, seed: int = EVAL_SEED, **params: Any) -> float:
    """Mean score of uniformly random legal moves in every seat over the cross-play episodes."""
    episodes = integer("episodes", episodes, low=1)
    env = hanabi_env(players, **params)
    seats = list(env.possible_agents)
    policy = RandomPolicy(env.observation_space(seats[0]), env.action_space(seats[0]))
    rngs = {s: stream(seed, f"random/{s}") for s in seats}
    stats = play_episodes(lambda: env, dict.fromkeys(seats, policy), [seed + e for e in range(episodes)], rngs)
    return float(np.mean([st.returns[seats[0]] for st in stats]))
