"""Teams: which seats learn together, where the shadow is drawn, and who plays the other seats.

The shadow stands in for a *teammate* of the learner, so it is drawn only among the learning seats
of one team. Teams are given (``teams={"chasers": [...], "runner": [...]}``) or inferred:

1. the seats not in ``fixed`` share one observation and one action space, or one name once the
   trailing ``_<n>`` is removed: one team (every symmetric env, every env whose other seats are fixed);
2. otherwise mpe2's naming: seats named ``adversary_<n>`` (or ``leadadversary_<n>``) form the
   team ``"adversary"``, the others (``agent_<n>``) the second team;
3. otherwise there is no default: ``SeatError`` names the fix (``teams=``, ``fixed=``, padding).

The learning team(s): ``learn=`` (names), else the only team, else the largest team (a tie is an
error naming the fix). In a default team only the seats with the team's most common spaces learn
(mpe2's world_comm: the three adversaries; their leader, with 20 actions, does not). Every seat
that does not learn and is not in ``fixed`` is played by a
:class:`~rqe_wrappers.core.policy.RandomPolicy`; pass ``fixed={seat: policy}`` to swap it.
Docs: docs/srpo.md ("Teams").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rqe_wrappers.core.checks import integer
from rqe_wrappers.core.policy import Policy, RandomPolicy
from rqe_wrappers.errors import ConfigError, SeatError

_SUFFIX = re.compile(r"_\d+$")
ADVERSARY = "adversary"  # mpe2's name for the opposing team


def name_group(seat: str) -> str:
    """A seat's name without its trailing ``_<n>``: ``"adversary_1"`` -> ``"adversary"``."""
    return _SUFFIX.sub("", seat)


@dataclass(frozen=True)
class TeamPlan:
    """What :func:`plan_teams` decided.

    Attributes:
        teams: team name -> its learning seats (env order); the shadow is drawn inside each.
        learning: every learning seat, env order.
        filled: seats given a default :class:`RandomPolicy` (neither learning nor in ``fixed``).
        all_teams: team name -> all its seats (env order), learning or not.
    """

    teams: dict[str, list[str]]
    learning: list[str]
    filled: dict[str, Policy] = field(default_factory=dict)
    all_teams: dict[str, list[str]] = field(default_factory=dict)


def _fix_hint(env) -> str:
    groups: dict[str, list[str]] = {}
    for s in env.possible_agents:
        groups.setdefault(name_group(s), []).append(s)
    example = ", ".join(f"{g!r}: {v}" for g, v in groups.items())
    return (
        f"pass teams={{{example}}} and learn=<the team that learns> for opposing teams, or "
        f"teams={{'all': {list(env.possible_agents)}}} for one cooperative team (one SB3 model needs one observation "
        "and one action space: pad them with supersuit.pad_observations_v0 / pad_action_space_v0 and add "
        "seat_id=True); fixed={seat: policy} plays a seat with a fixed policy"
    )


def infer_teams(env, fixed: Mapping[str, Policy]) -> dict[str, list[str]]:
    """Teams of the seats not in ``fixed`` (module docstring: rules 1 and 2); ``SeatError`` when none applies."""
    free = [s for s in env.possible_agents if s not in fixed]
    spaces = {(repr(env.observation_space(s)), repr(env.action_space(s))) for s in free}
    groups: dict[str, list[str]] = {}
    for s in free:
        groups.setdefault(name_group(s), []).append(s)
    if len(spaces) <= 1 or len(groups) == 1:
        name = next(iter(groups)) if len(groups) == 1 else "all"
        return {name: free}
    adversaries = [s for s in free if ADVERSARY in name_group(s)]
    if adversaries and len(adversaries) < len(free):  # mpe2: adversary_* (and leadadversary_*) vs the rest
        rest = [s for s in free if s not in adversaries]
        rest_groups = {name_group(s) for s in rest}
        return {ADVERSARY: adversaries, rest_groups.pop() if len(rest_groups) == 1 else "others": rest}
    raise SeatError(
        f"srpo_wrap cannot tell the teams: seats {free} differ in their spaces and their names do not say who "
        f"plays against whom; {_fix_hint(env)}"
    )


def _check_teams(env, teams: Mapping[str, Sequence[str]], fixed: Mapping[str, Policy]) -> dict[str, list[str]]:
    if not isinstance(teams, Mapping) or not teams:
        raise ConfigError(f"teams must be a non-empty dict {{team name: [seats]}}, got {teams!r}")
    seats = list(env.possible_agents)
    out: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for name, members in teams.items():
        members = [members] if isinstance(members, str) else list(members)
        unknown = [s for s in members if s not in seats]
        if unknown:
            raise SeatError(f"team {name!r}: seats {unknown} do not exist; the env's seats are {seats}")
        for s in members:
            if s in seen:
                raise SeatError(f"seat {s!r} is in two teams ({seen[s]!r} and {name!r}); put each seat in one team")
            seen[s] = str(name)
        out[str(name)] = [s for s in seats if s in members]  # env order
    missing = [s for s in seats if s not in seen and s not in fixed]
    if missing:
        raise SeatError(
            f"seats {missing} are in no team and not fixed; add them to a team or to fixed={{seat: policy}}"
        )
    return out


def plan_teams(
    env,
    *,
    fixed: Mapping[str, Policy] | None = None,
    teams: Mapping[str, Sequence[str]] | None = None,
    learn: str | Sequence[str] | None = None,
    learning_seats: Sequence[str] | None = None,
) -> TeamPlan:
    """Decide the teams, the learning seats and the default policies of the other seats.

    ``learning_seats`` (the older argument) names the learning seats directly: teams are then
    only used to group them, and no seat gets a default policy.
    """
    fixed = dict(fixed or {})
    seats = list(env.possible_agents)
    all_teams = _check_teams(env, teams, fixed) if teams is not None else infer_teams(env, fixed)
    if learning_seats is not None:
        return group_learning(seats, learning_seats, all_teams)
    if learn is None:
        if len(all_teams) == 1:
            names = list(all_teams)
        else:
            size = {t: len([s for s in m if s not in fixed]) for t, m in all_teams.items()}
            top = max(size.values())
            names = [t for t, n in size.items() if n == top]
            if len(names) != 1:
                raise SeatError(
                    f"srpo_wrap cannot tell which team learns: teams {names} are equally large "
                    f"(teams: {all_teams}); {_fix_hint(env)}"
                )
    else:
        names = [learn] if isinstance(learn, str) else list(learn)
        unknown = [t for t in names if t not in all_teams]
        if unknown:
            raise SeatError(f"learn={learn!r}: no team {unknown}; the teams are {all_teams}")
    team_of = {s: t for t, m in all_teams.items() for s in m}
    learning = [s for s in seats if team_of.get(s) in names and s not in fixed]
    if teams is None and learn is None:
        learning = _one_space(env, learning)
    filled: dict[str, Policy] = {}
    shared: dict[tuple[str, str], Policy] = {}  # one RandomPolicy per pair of spaces: acts in one batch
    for s in seats:
        if s in fixed or s in learning:
            continue
        key = (repr(env.observation_space(s)), repr(env.action_space(s)))
        if key not in shared:
            shared[key] = RandomPolicy(env.observation_space(s), env.action_space(s))
        filled[s] = shared[key]
    learn_teams = {t: [s for s in all_teams[t] if s in learning] for t in names}
    return TeamPlan({t: m for t, m in learn_teams.items() if m}, learning, filled, all_teams)


def _one_space(env, seats: list[str]) -> list[str]:
    """The seats whose spaces are the team's most common pair (one SB3 policy learns them all).

    A default team may hold a seat of its own kind (mpe2's ``leadadversary_0`` among the
    adversaries, with a larger action space): it is played like the other teams' seats.
    """
    key = {s: (repr(env.observation_space(s)), repr(env.action_space(s))) for s in seats}
    counts: dict[tuple[str, str], int] = {}
    for s in seats:
        counts[key[s]] = counts.get(key[s], 0) + 1
    best = max(counts, key=lambda k: counts[k])  # ties: the first seat's spaces (dicts keep order)
    return [s for s in seats if key[s] == best]


def group_learning(
    seats: Sequence[str], learning_seats: Sequence[str] | None, teams: Mapping[str, Sequence[str]] | None
) -> TeamPlan:
    """The learning seats (default: all ``seats``) grouped by ``teams`` (default: one team).

    Learning seats in no team form one more team, ``"learning"``; nothing gets a default policy.
    """
    learning = list(seats) if learning_seats is None else list(learning_seats)
    unknown = [s for s in learning if s not in seats]
    if unknown:
        raise SeatError(f"learning seats {unknown} do not exist; the env's seats are {list(seats)}")
    if teams is None:
        return TeamPlan({"all": learning} if learning else {}, learning, {}, {"all": list(seats)})
    by_team = {str(t): [s for s in m if s in learning] for t, m in teams.items()}
    loose = [s for s in learning if not any(s in m for m in by_team.values())]
    if loose:
        by_team["learning"] = loose
    return TeamPlan({t: m for t, m in by_team.items() if m}, learning, {}, {str(t): list(m) for t, m in teams.items()})


def check_learning(plan: TeamPlan, n_shadows: int, env) -> int:
    """Validate the learning seats and ``n_shadows`` against the teams; returns ``n_shadows``."""
    if len(plan.learning) < 2:
        raise SeatError(
            f"SRPO needs at least two learning seats (a learner and the partner it shadows), got {plan.learning}; "
            "fix other seats with background_seats() and leave two or more learning"
        )
    sizes = {t: len(m) for t, m in plan.teams.items() if len(m) >= 2}
    if not sizes:
        raise SeatError(
            f"SRPO draws the shadow among a learner's teammates, but no team has two learning seats "
            f"(teams: {plan.teams}); {_fix_hint(env)}"
        )
    top = min(sizes.values()) - 1
    return integer("n_shadows", n_shadows, low=1, high=top, hint=f"per team of learning seats {sizes}")
