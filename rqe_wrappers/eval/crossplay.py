"""Cross-play: every pairing of agents (self-play included), seats both ways, seeded episodes, a tidy table.

Agents are grouped by method (``methods``); two seats of the env are filled by the pair, the other
seats by fixed ``background`` agents. Each unordered pair plays ``episodes`` episodes with the
first agent in the first seat and as many the other way round (a self-play pair plays once); every
episode gives one row per player. Episode ``e`` is reset with ``seed + e`` in every pairing (common
random numbers), and each game's policies sample from streams named after the game, so the table
is the same for any ``n_workers``. Docs: docs/evaluation.md.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rqe_wrappers.core.checks import integer
from rqe_wrappers.core.dispatch import check_api
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.errors import ConfigError, SeatError, SpaceMismatchError
from rqe_wrappers.eval.agents import Agent, as_policy
from rqe_wrappers.eval.episodes import COST_KEY
from rqe_wrappers.eval.runner import play_seatings

__all__ = ["CrossPlayResult", "crossplay", "read_crossplay"]

#: Columns of the tidy table, before one ``return:<seat>`` column per seat of the env.
COLUMNS = (
    "agent",
    "partner",
    "agent_method",
    "partner_method",
    "agent_seat",
    "partner_seat",
    "episode",
    "seed",
    "agent_return",
    "partner_return",
    "agent_cost",
    "partner_cost",
    "length",
)


@dataclass
class CrossPlayResult:
    """The tidy cross-play table (``rows``: one dict per episode and player) and what produced it.

    ``agents`` is ordered by method (the order of first appearance in ``methods``), then by name as
    given. ``agent_cost`` / ``partner_cost`` are NaN where the env reports no cost.
    """

    rows: list[dict[str, Any]]
    agents: tuple[str, ...]
    methods: dict[str, str]
    seats: tuple[str, str]
    episodes: int
    seed: int
    meta: dict[str, Any] = field(default_factory=dict)

    def values(self, agent: str, partner: str, value: str = "agent_return") -> np.ndarray:
        """Per-episode ``value`` of ``agent`` with ``partner`` (both seatings; ``2 * episodes`` entries)."""
        return np.array([r[value] for r in self.rows if r["agent"] == agent and r["partner"] == partner], float)

    def by_pairing(self, value: str = "agent_return") -> dict[tuple[str, str], np.ndarray]:
        """``{(agent, partner): per-episode value}`` for every ordered pairing, in one pass over the rows."""
        out: dict[tuple[str, str], list[float]] = {(a, b): [] for a in self.agents for b in self.agents}
        for r in self.rows:
            out[r["agent"], r["partner"]].append(float(r[value]))
        return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}

    def matrix(self, value: str = "agent_return") -> np.ndarray:
        """``M[i, j]``: mean ``value`` of ``agents[i]`` playing with ``agents[j]`` (over episodes and seatings)."""
        index = {a: i for i, a in enumerate(self.agents)}
        total = np.zeros((len(self.agents), len(self.agents)))
        count = np.zeros_like(total)
        for r in self.rows:
            i, j = index[r["agent"]], index[r["partner"]]
            total[i, j] += float(r[value])
            count[i, j] += 1
        with np.errstate(invalid="ignore"):
            return total / np.where(count > 0, count, np.nan)

    def subset(self, agents: Sequence[str]) -> CrossPlayResult:
        """The table of the games among ``agents`` only (their order as in this table)."""
        keep = set(agents)
        unknown = sorted(keep - set(self.agents))
        if unknown:
            raise ConfigError(f"subset: {unknown} are not agents of this table; its agents are {list(self.agents)}")
        return CrossPlayResult(
            [r for r in self.rows if r["agent"] in keep and r["partner"] in keep],
            tuple(a for a in self.agents if a in keep),
            {a: m for a, m in self.methods.items() if a in keep},
            self.seats,
            self.episodes,
            self.seed,
            dict(self.meta),
        )

    def columns(self) -> list[str]:
        return [*COLUMNS, *sorted({k for r in self.rows for k in r if k.startswith("return:")})]

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the table as CSV (one row per episode and player; NaN costs as empty cells)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns())
            writer.writeheader()
            for r in self.rows:
                writer.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})
        return out

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write ``{"agents", "methods", "seats", "episodes", "seed", "meta", "rows"}`` (NaN as null)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in self.rows]
        data = {
            "agents": list(self.agents),
            "methods": self.methods,
            "seats": list(self.seats),
            "episodes": self.episodes,
            "seed": self.seed,
            "meta": self.meta,
            "rows": rows,
        }
        out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        return out


def read_crossplay(path: str | os.PathLike) -> CrossPlayResult:
    """Read a table written by :meth:`CrossPlayResult.to_json`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        rows = [{k: (float("nan") if v is None else v) for k, v in r.items()} for r in data["rows"]]
        return CrossPlayResult(
            rows,
            tuple(data["agents"]),
            dict(data["methods"]),
            (data["seats"][0], data["seats"][1]),
            int(data["episodes"]),
            int(data["seed"]),
            dict(data.get("meta", {})),
        )
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise ConfigError(f"{path}: not a cross-play table written by CrossPlayResult.to_json ({e})") from None


def _check_seats(env: Any, seats: Sequence[str] | None) -> tuple[str, str]:
    possible = list(env.possible_agents)
    if seats is None:
        if len(possible) < 2:
            raise SeatError(f"cross-play needs two seats; the env has {possible}")
        return possible[0], possible[1]
    seats = list(seats) if not isinstance(seats, str) else [seats]
    if len(seats) != 2 or seats[0] == seats[1]:
        raise SeatError(f"seats must name two different seats of the env (agent seat, partner seat), got {seats}")
    unknown = [s for s in seats if s not in possible]
    if unknown:
        raise SeatError(f"seats {unknown} are not seats of the env; its seats are {possible}")
    return seats[0], seats[1]


def _check_batched(batched: Callable[[int], Any] | None, env: Any) -> None:
    """A batched twin must be a factory of batched envs with the env's seats and spaces."""
    if batched is None:
        return
    if not callable(batched):
        raise ConfigError(f"batched must build a batched env: batched(n_copies); got {type(batched).__name__}")
    twin = batched(1)
    if not (hasattr(twin, "n_copies") and callable(getattr(twin, "step", None))):
        raise ConfigError(f"batched(1) returned {type(twin).__name__}, not a batched env (envs/batched.py)")
    if list(twin.possible_agents) != list(env.possible_agents):
        raise SeatError(f"the batched twin's seats {list(twin.possible_agents)} are not {list(env.possible_agents)}")
    for s in env.possible_agents:
        for kind in ("observation_space", "action_space"):
            mine, theirs = getattr(twin, kind)(s), getattr(env, kind)(s)
            if mine != theirs:
                raise SpaceMismatchError(f"the batched twin's {kind} of seat {s!r} is {mine}; the env's is {theirs}")


def _scripted_kwargs(env: Any) -> dict[str, Any]:
    """Keyword arguments a scripted policy may need from the env (the IPD's and matrix games' ``rounds``)."""
    base = getattr(env, "unwrapped", env)
    return {"rounds": base.rounds} if isinstance(getattr(base, "rounds", None), int) else {}


def seat_policies(
    agent: Agent | Mapping[str, Agent], env: Any, seats: Sequence[str], who: str, learning: Sequence[str] = ()
) -> dict[str, Policy]:
    """``{seat: Policy}`` of one agent for each of ``seats`` (a mapping gives one agent per seat).

    ``learning``: the seats a seat index refers to (the seats the agent was trained on), for agents
    trained with SRPO's seat identity.
    """
    from rqe_wrappers.zoo.population import Population

    if isinstance(agent, Population):  # a Mapping of members, not of seats
        raise ConfigError(
            f"{who} is the population {agent.ref} ({len(agent)} members): pass its members as agents, "
            f"e.g. {{name: population[name] for name in population}} (rqe eval expands a population id itself)"
        )
    kwargs = _scripted_kwargs(env)
    out: dict[str, Policy] = {}
    built: dict[tuple, Policy] = {}
    order = list(learning) or list(seats)
    for seat in seats:
        if isinstance(agent, Mapping) and seat not in agent:
            raise SeatError(f"{who}: the mapping gives agents for seats {sorted(agent)}, not for seat {seat!r}")
        one = agent[seat] if isinstance(agent, Mapping) else agent
        try:
            policy = as_policy(
                one,
                env.observation_space(seat),
                env.action_space(seat),
                seat_index=order.index(seat) if seat in order else None,
                who=f"{who} in seat {seat!r}",
                scripted_kwargs=kwargs,
            )
        except SpaceMismatchError as e:
            if len(seats) < 2:
                raise
            hint = "cross-play seats both ways: pass {seat: agent} for an agent whose seats differ"
            raise SpaceMismatchError(f"{e} ({hint})") from None
        key = (one if isinstance(one, str) else id(one), repr(env.observation_space(seat)), repr(policy.action_space))
        if getattr(policy, "seat", None) is None:  # no seat identity: one object (one batched act) for both seats
            policy = built.setdefault(key, policy)
        out[seat] = policy
    return out


def pair_games(names: Sequence[str]) -> list[tuple[str, str]]:
    """``(first, second)`` games: every unordered pair of ``names`` both ways, a self-play pair once."""
    return [
        (first, second)
        for i, a in enumerate(names)
        for b in names[i:]
        for first, second in ([(a, b)] if a == b else [(a, b), (b, a)])
    ]


def crossplay_rows(
    games: Sequence[tuple[str, str]],
    results: Sequence[Sequence[Any]],
    methods: Mapping[str, str],
    pair: tuple[str, str],
    seed: int,
) -> list[dict[str, Any]]:
    """The tidy rows of played ``games``: per episode, one row for ``first`` in ``pair[0]`` and one for ``second``.

    ``results[g]``: the :class:`~rqe_wrappers.eval.episodes.EpisodeStats` of game ``g``'s episodes.
    """
    rows = []
    for (first, second), stats in zip(games, results, strict=True):
        for e, st in enumerate(stats):
            for me, other, my_seat, their_seat in ((first, second, *pair), (second, first, pair[1], pair[0])):
                row = {
                    "agent": me,
                    "partner": other,
                    "agent_method": methods[me],
                    "partner_method": methods[other],
                    "agent_seat": my_seat,
                    "partner_seat": their_seat,
                    "episode": e,
                    "seed": seed + e,
                    "agent_return": st.returns[my_seat],
                    "partner_return": st.returns[their_seat],
                    "agent_cost": st.costs[my_seat],
                    "partner_cost": st.costs[their_seat],
                    "length": st.length,
                }
                row.update({f"return:{s}": r for s, r in st.returns.items()})
                rows.append(row)
    return rows


def crossplay(
    agents: Mapping[str, Agent | Mapping[str, Agent]],
    env_fn: Callable[[], Any],
    *,
    methods: Mapping[str, str] | None = None,
    seats: Sequence[str] | None = None,
    background: Mapping[str, Agent] | None = None,
    episodes: int = 32,
    seed: int = 0,
    n_workers: int = 0,
    batch: int = 32,
    cost_key: str = COST_KEY,
    progress: bool = False,
    batched: Callable[[int], Any] | None = None,
) -> CrossPlayResult:
    """Play every pairing of ``agents`` (self-play included) in ``seats`` of ``env_fn()``, both ways.

    Args:
        agents: ``{name: agent}``; an agent is anything :func:`~rqe_wrappers.eval.agents.as_policy`
            takes, or ``{seat: agent}`` for one that plays the two seats with different objects.
        env_fn: builds the env (PettingZoo parallel or AEC); picklable (a top-level function or a
            ``functools.partial``; anything else is sent with cloudpickle) when ``n_workers > 0``.
        methods: ``{name: method}`` (default: each agent its own method); rows, the matrix and the
            plots group agents by method.
        seats: the two seats the pair fills (default: the env's first two).
        background: ``{seat: agent}`` for every other seat (e.g. Tag's runner).
        episodes: per seating; each ordered pairing gets ``2 * episodes`` rows.
        seed: episode ``e`` is reset with ``seed + e``; policies sample from streams of ``seed``.
        n_workers: worker processes (0: play here). The result does not depend on it.
        batch: episodes per job (a parallel env plays them in lock-step).
        cost_key: the ``infos[seat]`` key summed as a seat's private cost.
        progress: show a tqdm progress bar.
        batched: ``batched(n)`` builds a batched twin of the env with ``n`` copies (``envs/batched.py``,
            e.g. ``lambda n: BatchedCooking(n)``): each job of ``batch`` episodes is then one array
            step per env step, tens of times faster. Seats and spaces must be ``env_fn()``'s;
            policies must be stateless. Where copy ``k`` of the twin plays as the env seeded
            ``seed + k`` (cooking, IPD, matrix games) the table is the same as without it.
    """
    episodes = integer("episodes", episodes, low=1)
    seed = integer("seed", seed, low=0)
    n_workers = integer("n_workers", n_workers, low=0)
    batch = integer("batch", batch, low=1)
    if not agents:
        raise ConfigError("crossplay needs at least one agent: agents={name: agent}")
    if not callable(env_fn):
        raise ConfigError(f"env_fn must build the env (a callable), got {type(env_fn).__name__}")
    env = env_fn()
    check_api(env, "crossplay(env_fn=...)")
    pair = _check_seats(env, seats)
    given = dict(methods or {})
    unknown = sorted(set(given) - set(agents))
    methods = {str(a): str(given.get(a, a)) for a in agents}
    if unknown:
        raise ConfigError(f"methods names agents that are not in agents: {unknown}")
    others = [s for s in env.possible_agents if s not in pair]
    background = dict(background or {})
    missing, extra = [s for s in others if s not in background], [s for s in background if s not in others]
    if missing or extra:
        raise SeatError(
            f"background must give an agent for every seat but the pair's {list(pair)}: "
            + (f"missing {missing}" if missing else "")
            + (" " if missing and extra else "")
            + (f"not background seats: {extra}" if extra else "")
        )
    _check_batched(batched, env)
    bg = {s: seat_policies(a, env, [s], f"background {s!r}")[s] for s, a in background.items()}
    players = {str(n): seat_policies(a, env, pair, f"agent {n!r}") for n, a in agents.items()}
    if hasattr(env, "close"):
        env.close()
    method_order = list(dict.fromkeys(methods.values()))
    names = sorted(players, key=lambda n: method_order.index(methods[n]))  # stable: given order within a method
    games = pair_games(names)
    seatings = [{pair[0]: first, pair[1]: second} for first, second in games]
    results = play_seatings(
        env_fn,
        players,
        bg,
        seatings,
        episodes,
        seed=seed,
        batch=batch,
        n_workers=n_workers,
        progress=progress,
        cost_key=cost_key,
        batched=batched,
    )
    rows = crossplay_rows(games, results, methods, pair, seed)
    meta = {
        "cost_key": cost_key,
        "background": {s: repr(p) for s, p in bg.items()},
        "batch": batch,
        "batched": batched is not None,
    }
    return CrossPlayResult(rows, tuple(names), {n: methods[n] for n in names}, pair, episodes, seed, meta)
