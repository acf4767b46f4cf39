"""Held-out populations: an agent against every member (and scenario) of a population it never met.

A scenario (:mod:`rqe_wrappers.aht.scenarios`) puts ``n_focal`` copies of the agent with its
background members around the table; default: each member alone with the agent in every other
seat. Every placement of the members on the seats they may take (the population's seats) is played
for ``episodes`` seeded episodes. A scenario's *utility* is the focal per-capita return (Melting
Pot: the mean over focal players of their episode return), averaged over placements and episodes;
*regret* is the best-response utility minus it, where that is known. Docs: docs/evaluation.md.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rqe_wrappers.aht.scenarios import Scenario, ScenarioSet
from rqe_wrappers.core.checks import integer, is_real
from rqe_wrappers.core.dispatch import check_api
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.errors import ConfigError, SeatError, SpaceMismatchError
from rqe_wrappers.eval.agents import Agent
from rqe_wrappers.eval.crossplay import seat_policies
from rqe_wrappers.eval.episodes import COST_KEY
from rqe_wrappers.eval.runner import play_seatings
from rqe_wrappers.eval.stats import bootstrap_ci, iqm

__all__ = ["PopulationResult", "evaluate_population", "population_env"]

FOCAL = " agent"  # the focal player's key among the players: no member name has outer spaces


@dataclass
class PopulationResult:
    """Per-scenario utilities (``scenarios``: one dict per scenario), the summary and the episode rows."""

    agent: str
    population: str
    scenarios: list[dict[str, Any]]
    summary: dict[str, Any]
    rows: list[dict[str, Any]] = field(repr=False, default_factory=list)

    def utilities(self) -> dict[str, float]:
        """``{scenario id: utility}``."""
        return {s["scenario"]: s["utility"] for s in self.scenarios}

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write ``{"agent", "population", "summary", "scenarios", "rows"}`` (NaN as null)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        data = {k: getattr(self, k) for k in ("agent", "population", "summary", "scenarios", "rows")}
        out.write_text(json.dumps(_nulls(data), indent=1) + "\n", encoding="utf-8")
        return out

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the per-episode rows as CSV."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        columns = list(dict.fromkeys(k for r in self.rows for k in r))
        with open(out, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)
        return out


def _nulls(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _nulls(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nulls(v) for v in x]
    return x


def population_env(population: Any) -> Callable[[], Any]:
    """The env factory a zoo population was trained on, for the envs this library ships (the IPD, Tag)."""
    env = population.env
    if env.id == "rqe_wrappers/ipd_v0":
        from rqe_wrappers.envs.ipd import ipd_env

        return functools.partial(ipd_env, **{k: v for k, v in env.kwargs.items() if k == "rounds"})
    if env.id == "mpe2/simple_tag_v3":
        from rqe_wrappers.envs.tag import tag_env

        return functools.partial(
            tag_env, **{k: v for k, v in env.kwargs.items() if k in ("max_cycles", "reward_scale")}
        )
    raise ConfigError(f"population {population.ref} was trained on {env.id!r}: pass env_fn=<a function building it>")


def _members(population: Any) -> tuple[str, dict[str, Any], tuple[str, ...], Any]:
    """``(name, {member: agent}, member seats, the zoo population or None)``."""
    if isinstance(population, str):
        from rqe_wrappers.zoo import load_population

        population = load_population(population)
    if callable(getattr(population, "policies", None)) and hasattr(population, "manifest"):
        return str(population.ref), dict(population.items()), tuple(population.env.seats), population
    if isinstance(population, Mapping):
        if not population:
            raise ConfigError("the population is empty: pass {name: agent} with at least one member")
        return "population", {str(k): v for k, v in population.items()}, (), None
    raise ConfigError(
        f"population must be a zoo population, its reference (e.g. 'tag/runners') or {{name: agent}}, "
        f"got {type(population).__name__}"
    )


def _best_responses(given: Mapping[str, float] | None, zoo: Any, scenarios: ScenarioSet) -> dict[str, float]:
    """Best-response utility per scenario id: ``given`` (by scenario id or member name), else the zoo's."""
    out: dict[str, float] = {}
    if given is None and zoo is not None:
        for sid, v in (zoo.best_responses or {}).items():
            v = v.get("value") if isinstance(v, Mapping) else v
            if is_real(v):
                out[str(sid)] = float(v)
        for s in scenarios:
            if len(s.background) == 1 and s.id not in out:
                v = zoo[s.background[0]].metrics.get("best_response_value")
                if is_real(v):
                    out[s.id] = float(v)
        return out
    for key, v in (given or {}).items():
        if not is_real(v) or not np.isfinite(v):
            raise ConfigError(f"best_responses[{key!r}] must be a finite number, got {v!r}")
        if key in scenarios:
            out[str(key)] = float(v)
            continue
        alone = [s for s in scenarios if s.background == (key,)]
        if not alone:
            raise ConfigError(f"best_responses names {key!r}, neither a scenario id nor a member alone in a scenario")
        out[alone[0].id] = float(v)
    return out


def _placements(scenario: Scenario, seats: Sequence[str], member_seats: Sequence[str]) -> list[dict[str, str]]:
    """Every distinct ``{seat: player}`` with the background members on member seats, the agent elsewhere."""
    out, seen = [], set()
    for chosen in itertools.permutations(member_seats, len(scenario.background)):
        seating = dict.fromkeys(seats, FOCAL)
        seating.update(zip(chosen, scenario.background, strict=True))
        key = tuple(sorted(seating.items()))
        if key not in seen and sum(p == FOCAL for p in seating.values()) == scenario.n_focal:
            seen.add(key)
            out.append(seating)
    return out


def _fitting(agent: Any, env: Any, seats: Sequence[str], who: str, learning: Sequence[str]) -> dict[str, Policy]:
    """The agent's policy for each of ``seats`` it fits (by spaces)."""
    out = {}
    first: Exception | None = None
    for seat in seats:
        try:
            out.update(seat_policies(agent, env, [seat], who, learning))
        except SpaceMismatchError as e:
            first = first or e
    if not out and first is not None:
        raise first
    return out


def _scenario_set(
    scenarios: ScenarioSet | Sequence[str | Scenario] | None, n: int, members: Mapping[str, Any]
) -> ScenarioSet:
    """The scenarios to play (default: each member alone with ``n - 1`` focal players), checked."""
    if scenarios is None:
        scenarios = ScenarioSet.all(n, list(members), focal_counts=[n - 1])
    elif not isinstance(scenarios, ScenarioSet):
        chosen = [s if isinstance(s, Scenario) else Scenario.from_id(str(s)) for s in scenarios]
        if not chosen:
            raise ConfigError("scenarios is empty: pass scenario ids such as 'c1:<member>', or None for the default")
        scenarios = ScenarioSet(n, tuple(members), tuple(chosen))
    if scenarios.n_seats != n:
        raise ConfigError(f"the scenarios are for {scenarios.n_seats} seats, the env has {n}")
    if any(s.focal_snapshot is not None for s in scenarios):
        raise ConfigError("scenarios with a focal snapshot are a training device; evaluate without them")
    missing = sorted({m for s in scenarios for m in s.background} - set(members))
    if missing:  # a ScenarioSet built elsewhere, over other members
        raise ConfigError(f"the scenarios name members the population does not have: {missing}")
    return scenarios


def evaluate_population(
    agent: Agent,
    population: Any,
    env_fn: Callable[[], Any] | None = None,
    *,
    scenarios: ScenarioSet | Sequence[str | Scenario] | None = None,
    member_seats: Sequence[str] | None = None,
    best_responses: Mapping[str, float] | None = None,
    episodes: int = 32,
    seed: int = 0,
    n_workers: int = 0,
    batch: int = 32,
    reps: int = 2000,
    confidence: float = 0.95,
    cost_key: str = COST_KEY,
    progress: bool = False,
    name: str = "agent",
) -> PopulationResult:
    """Utility of ``agent`` in every scenario of a held-out ``population``, with mean, worst case and regret.

    Args:
        agent: anything :func:`~rqe_wrappers.eval.agents.as_policy` takes.
        population: a zoo population, its reference (``"ipd/test"``) or ``{name: agent}``.
        env_fn: builds the env; default: the population's own (:func:`population_env`).
        scenarios: a ScenarioSet or scenario ids over the members (default: each member alone with
            the agent in every other seat, ``c<n-1>:<member>``).
        member_seats: seats members may take (default: the population's seats, else every seat).
        best_responses: best-response utility by scenario id or by member name (for the scenario
            where it plays alone); default: the zoo's ``best_responses``, else each member's
            ``best_response_value`` metric.
        episodes, seed, n_workers, batch, cost_key, progress: as in :func:`~rqe_wrappers.eval.crossplay.crossplay`.
        reps, confidence: the bootstrap CI of the IQM over scenarios (:func:`~rqe_wrappers.eval.stats.bootstrap_ci`).
        name: the agent's name in the result.
    """
    episodes = integer("episodes", episodes, low=1)
    seed = integer("seed", seed, low=0)
    n_workers = integer("n_workers", n_workers, low=0)
    batch = integer("batch", batch, low=1)
    ref, members, zoo_seats, zoo = _members(population)
    if env_fn is None:
        if zoo is None:
            raise ConfigError("pass env_fn=<a function building the env> for a population given as a mapping")
        env_fn = population_env(zoo)
    env = env_fn()
    check_api(env, "evaluate_population(env_fn=...)")
    seats = list(env.possible_agents)
    m_seats = list(member_seats) if member_seats is not None else [s for s in zoo_seats if s in seats] or seats
    unknown = [s for s in m_seats if s not in seats]
    if unknown or not m_seats:
        raise SeatError(f"member_seats must be seats of the env {seats}; got {list(m_seats)}")
    scenarios = _scenario_set(scenarios, len(seats), members)
    learning = [s for s in seats if s not in m_seats] or seats
    players = {FOCAL: _fitting(agent, env, seats, f"agent {name!r}", learning)}
    for m in sorted({m for s in scenarios for m in s.background}):
        players[m] = _fitting(members[m], env, m_seats, f"member {m!r}", ())
    if hasattr(env, "close"):
        env.close()
    seatings, owner = [], []
    for k, sc in enumerate(scenarios):
        ok = [p for p in _placements(sc, seats, m_seats) if all(s in players[who] for s, who in p.items())]
        if not ok:
            raise SeatError(
                f"scenario {sc.id}: no seating puts the members on seats they fit ({m_seats}) and the agent on "
                f"seats it fits ({sorted(players[FOCAL])})"
            )
        seatings += ok
        owner += [k] * len(ok)
    stats = play_seatings(
        env_fn,
        players,
        {},
        seatings,
        episodes,
        seed=seed,
        batch=batch,
        n_workers=n_workers,
        progress=progress,
        cost_key=cost_key,
    )
    rows = []
    per: list[list[float]] = [[] for _ in scenarios]
    for seating, k, eps in zip(seatings, owner, stats, strict=True):
        focal = [s for s in seats if seating[s] == FOCAL]
        for e, st in enumerate(eps):
            value = float(np.mean([st.returns[s] for s in focal]))
            per[k].append(value)
            rows.append(
                {
                    "scenario": scenarios.scenarios[k].id,
                    "focal_seats": "+".join(focal),
                    "episode": e,
                    "seed": seed + e,
                    "focal_per_capita_return": value,
                    "length": st.length,
                    **{f"return:{s}": st.returns[s] for s in seats},
                }
            )
    brs = _best_responses(best_responses, zoo, scenarios)
    table: list[dict[str, Any]] = []
    for k, sc in enumerate(scenarios):
        x = np.asarray(per[k])
        br = brs.get(sc.id)
        table.append(
            {
                "scenario": sc.id,
                "members": list(sc.background),
                "utility": float(x.mean()),
                "std": float(x.std()),
                "episodes": int(x.size),
                "best_response": br,
                "regret": None if br is None else br - float(x.mean()),
            }
        )
    utilities = np.array([t["utility"] for t in table])
    worst = int(np.argmin(utilities))
    regrets = [t["regret"] for t in table if t["regret"] is not None]
    summary = {
        "mean": float(utilities.mean()),
        "focal_per_capita_return": float(utilities.mean()),
        "iqm": float(iqm(np.concatenate(per))),
        "iqm_ci": list(bootstrap_ci([np.asarray(p) for p in per], "iqm", reps=reps, confidence=confidence, seed=seed)),
        "worst_case": float(utilities[worst]),
        "worst_scenario": table[worst]["scenario"],
        "mean_regret": float(np.mean(regrets)) if regrets else None,
        "worst_case_regret": float(np.max(regrets)) if regrets else None,
        "regret_known_for": len(regrets),
        "scenarios": len(table),
        "episodes_per_seating": episodes,
        "seed": seed,
    }
    return PopulationResult(name, ref, table, summary, rows)
