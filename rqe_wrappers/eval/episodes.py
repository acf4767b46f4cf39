"""Seeded evaluation episodes of a PettingZoo env (parallel or AEC) with one fixed Policy per seat.

Parallel envs run a batch of episodes in lock-step, so a policy that plays several seats or
episodes acts once per step on all of them; AEC envs run turn by turn; a batched env
(``envs/batched.py``: the rules over N copies as arrays) plays the batch as one array step. Action masks
(``obs["action_mask"]`` or ``infos[seat]["action_mask"]``) go to ``Policy.act(mask=...)``;
recurrent state (``Policy.initial_state``) is carried through each episode. Private costs are the
sum over steps of the numeric ``infos[seat][cost_key]`` (NaN when the env never reports one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pettingzoo import AECEnv, ParallelEnv

from rqe_wrappers.core.checks import is_real
from rqe_wrappers.core.dispatch import check_api
from rqe_wrappers.core.policy import Policy, stack_obs
from rqe_wrappers.core.view import MASK_KEY, mask_width
from rqe_wrappers.errors import ConfigError

#: The ``infos`` key read as a seat's private cost (effort) of one step.
COST_KEY = "cost"

__all__ = ["COST_KEY", "EpisodeStats", "play_batched", "play_episodes"]


@dataclass
class EpisodeStats:
    """One episode: return and private cost per seat (cost NaN when unreported), length in env steps."""

    returns: dict[str, float]
    costs: dict[str, float]
    length: int


def _mask(obs: Any, info: Mapping | None) -> Any:
    if isinstance(obs, Mapping) and MASK_KEY in obs:
        return obs[MASK_KEY]
    return (info or {}).get(MASK_KEY)


def _add_cost(costs: dict[str, float], seat: str, info: Mapping | None, key: str) -> None:
    value = (info or {}).get(key)
    if is_real(value):
        costs[seat] = (0.0 if np.isnan(costs[seat]) else costs[seat]) + float(value)


def _act(policy: Policy, rows: list[tuple[Any, Any]], rng: np.random.Generator, states: list[Any]) -> list[Any]:
    """Actions for ``rows`` of ``(obs, mask)`` of one policy; ``states`` (one per row) updated in place."""
    stateless = all(s is None for s in states)
    if stateless:
        masks = [m for _, m in rows]
        mask = None
        if any(m is not None for m in masks):
            width = mask_width(policy.action_space) or 0
            mask = np.stack(
                [np.ones(width, dtype=np.bool_) if m is None else np.asarray(m, dtype=np.bool_) for m in masks]
            )
        acts, _ = policy.act(stack_obs([o for o, _ in rows]), rng=rng, mask=mask)
        return list(np.asarray(acts))
    out = []
    for k, (o, m) in enumerate(rows):  # recurrent: one row at a time, each with its own state
        a, states[k] = policy.act(
            stack_obs([o]), rng=rng, mask=None if m is None else np.asarray(m, bool)[None], state=states[k]
        )
        out.append(np.asarray(a)[0])
    return out


def play_episodes(
    env_fn: Callable[[], Any] | Sequence[Any],
    policies: Mapping[str, Policy],
    seeds: Sequence[int],
    rngs: Mapping[str, np.random.Generator],
    *,
    cost_key: str = COST_KEY,
) -> list[EpisodeStats]:
    """Play one episode per seed (``env.reset(seed=s)``), every seat by ``policies[seat]``.

    ``env_fn`` builds an env (or is a list of envs to reuse, at least ``len(seeds)`` of them for a
    parallel env). Seats that share one policy object draw from the ``rngs`` entry of the first
    such seat (in the env's seat order), so results depend only on the seeds and the rngs.
    """
    envs = list(env_fn) if isinstance(env_fn, Sequence) else [env_fn()]
    check_api(envs[0], "play_episodes")
    if isinstance(envs[0], ParallelEnv):
        if not isinstance(env_fn, Sequence):
            envs += [env_fn() for _ in range(len(seeds) - 1)]
        return _play_parallel(envs[: len(seeds)], policies, seeds, rngs, cost_key)
    assert isinstance(envs[0], AECEnv)
    return [_play_aec(envs[0], policies, s, rngs, cost_key) for s in seeds]


def _groups(seats: Sequence[str], policies: Mapping[str, Policy]) -> dict[int, list[str]]:
    groups: dict[int, list[str]] = {}
    for s in seats:
        groups.setdefault(id(policies[s]), []).append(s)
    return groups


def _play_parallel(
    envs: list[ParallelEnv],
    policies: Mapping[str, Policy],
    seeds: Sequence[int],
    rngs: Mapping[str, np.random.Generator],
    cost_key: str,
) -> list[EpisodeStats]:
    seats = list(envs[0].possible_agents)
    groups = _groups(seats, policies)
    stats = [EpisodeStats(dict.fromkeys(seats, 0.0), dict.fromkeys(seats, float("nan")), 0) for _ in seeds]
    obs, infos = {}, {}
    for k, (env, seed) in enumerate(zip(envs, seeds, strict=True)):
        obs[k], infos[k] = env.reset(seed=int(seed))
    states = {(k, s): policies[s].initial_state(1) for k in range(len(envs)) for s in seats}
    while True:
        live = [k for k, env in enumerate(envs) if env.agents]
        if not live:
            return stats
        actions: dict[int, dict[str, Any]] = {k: {} for k in live}
        for group_seats in groups.values():
            rows = [(k, s) for k in live for s in group_seats if s in envs[k].agents]
            if not rows:
                continue
            row_states = [states[r] for r in rows]
            acts = _act(
                policies[group_seats[0]],
                [(obs[k][s], _mask(obs[k][s], infos[k].get(s))) for k, s in rows],
                rngs[group_seats[0]],
                row_states,
            )
            for r, a, st in zip(rows, acts, row_states, strict=True):
                actions[r[0]][r[1]] = a
                states[r] = st
        for k in live:
            obs[k], rew, _, _, infos[k] = envs[k].step(actions[k])
            stats[k].length += 1
            for s, r in rew.items():
                stats[k].returns[s] += float(r)
            for s, info in infos[k].items():
                _add_cost(stats[k].costs, s, info, cost_key)


def _play_aec(
    env: AECEnv, policies: Mapping[str, Policy], seed: int, rngs: Mapping[str, np.random.Generator], cost_key: str
) -> EpisodeStats:
    seats = list(env.possible_agents)
    groups = _groups(seats, policies)
    rng_of = {s: rngs[ss[0]] for ss in groups.values() for s in ss}
    out = EpisodeStats(dict.fromkeys(seats, 0.0), dict.fromkeys(seats, float("nan")), 0)
    env.reset(seed=int(seed))
    states = {s: policies[s].initial_state(1) for s in seats}
    for seat in env.agent_iter():
        ob, rew, term, trunc, info = env.last()
        out.returns[seat] += float(rew)
        _add_cost(out.costs, seat, info, cost_key)
        if term or trunc:
            env.step(None)
            continue
        st = [states[seat]]
        (action,) = _act(policies[seat], [(ob, _mask(ob, info))], rng_of[seat], st)
        states[seat] = st[0]
        env.step(action)
        out.length += 1
    return out


def play_batched(
    env: Any,
    policies: Mapping[str, Policy],
    seeds: Sequence[int],
    rngs: Mapping[str, np.random.Generator],
    *,
    cost_key: str = COST_KEY,
) -> list[EpisodeStats]:
    """:func:`play_episodes` on a batched env of ``len(seeds)`` copies: copy ``k`` reset with ``seeds[k]``.

    Each policy acts once per step on the rows of its seats in the order the parallel path uses
    (copy, then seat), so on an env whose copy ``k`` plays as the PettingZoo env seeded ``seeds[k]``
    (cooking, the IPD, matrix games) the episodes are the same as :func:`play_episodes`'. A seat's
    observation is cut to its own space (``BatchedTag`` pads the runner's). Stateless policies only.
    Costs come from ``BatchStep.costs`` (``cost_key`` names the infos key of the PettingZoo twin).
    """
    del cost_key  # a batched env reports its costs in BatchStep.costs
    seats = list(env.possible_agents)
    n = len(seeds)
    if env.n_copies != n:
        raise ConfigError(f"play_batched: the batched env has {env.n_copies} copies for {n} seeds; build it with {n}")
    for s in seats:
        if policies[s].initial_state(1) is not None:
            raise ConfigError(
                f"batched evaluation takes stateless policies; the policy in seat {s!r} is recurrent "
                "(evaluate it without batched=)"
            )
    cuts = {s: (slice(None), *(slice(0, d) for d in env.observation_space(s).shape)) for s in seats}
    groups = _groups(seats, policies)
    obs = env.reset(seeds=[int(x) for x in seeds])
    returns = np.zeros((n, len(seats)))
    costs = np.full((n, len(seats)), np.nan)
    length = np.zeros(n, dtype=np.int64)
    live = np.ones(n, dtype=np.bool_)
    while live.any():
        idx = np.flatnonzero(live)
        actions = np.zeros((n, len(seats)), dtype=np.int64)
        for group_seats in groups.values():
            cols = [seats.index(s) for s in group_seats]
            rows = np.stack([obs[idx, c][cuts[s]] for s, c in zip(group_seats, cols, strict=True)], axis=1)
            acts, _ = policies[group_seats[0]].act(
                rows.reshape(len(idx) * len(cols), *rows.shape[2:]), rng=rngs[group_seats[0]]
            )
            actions[idx[:, None], cols] = np.asarray(acts).reshape(len(idx), len(cols))
        out = env.step(actions)
        obs = out.obs
        returns[idx] += out.rewards[idx]
        if out.costs is not None:
            costs[idx] = np.where(np.isnan(costs[idx]), 0.0, costs[idx]) + out.costs[idx]
        length[idx] += 1
        live &= ~(out.terminated | out.truncated)
    return [
        EpisodeStats(
            {s: float(returns[k, i]) for i, s in enumerate(seats)},
            {s: float(costs[k, i]) for i, s in enumerate(seats)},
            int(length[k]),
        )
        for k in range(n)
    ]
