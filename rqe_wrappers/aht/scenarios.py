"""Scenarios for minimax-Bayes ad hoc teamwork: who sits in the seats around the learner.

For an ``n``-seat game and a background population of named members, a *scenario* is a number
of focal copies ``c`` (``1..n``: the learner and ``c - 1`` lagged copies of it) plus a multiset of
``n - c`` population members for the other seats (the paper's definition (1)). ``c = n`` is the
self-play ("universalisation") scenario. Which physical seat each player takes is drawn per
episode by the wrapper, so a scenario says *who* plays, not *where*.

Each scenario has a stable, readable id: ``"c1:tit-for-tat"``, ``"c1:always-c+random"`` (members
sorted by name, repeats listed), ``"c2"``. Ids are what logs, saved callback state and evaluation
tables refer to. A scenario may name a ``focal_snapshot``: a population member (a past snapshot of
the learner, in fictitious play) that plays the other focal seats instead of the learner's lagged
copy; its id says so, ``"c2@fp/3"``, and the learner is still paid the mean over all focal seats.

Example:
    >>> s = ScenarioSet.all(2, ["always-c", "always-d", "tit-for-tat"])
    >>> s.ids
    ('c1:always-c', 'c1:always-d', 'c1:tit-for-tat', 'c2')
    >>> s.self_play_index
    3
    >>> len(s.restrict(lambda sc: sc.n_focal == 1))
    3
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rqe_wrappers.errors import ConfigError

FORMAT = "rqe-wrappers/scenario-set"
#: 2 when some scenario has a ``focal_snapshot`` (a set without one is written as 1, which 0.2 reads)
FORMAT_VERSION = 2
_READABLE = (1, 2)
_SEP = "+"
_AT = "@"


def _check_member_name(name: Any) -> str:
    if not isinstance(name, str) or not name or name != name.strip():
        raise ConfigError(f"population member names must be non-empty strings without outer spaces, got {name!r}")
    if _SEP in name:
        raise ConfigError(
            f"population member name {name!r} contains {_SEP!r}, which separates members in scenario ids; rename it"
        )
    return name


@dataclass(frozen=True)
class Scenario:
    """``n_focal`` focal players (the learner and ``n_focal - 1`` copies) plus the ``background`` members.

    ``background`` is a multiset, kept sorted. The copies are the learner's lagged snapshot, or,
    with ``focal_snapshot``, that population member (fictitious play: a past snapshot of the learner
    in focal seats, scored per capita with the learner).
    """

    n_focal: int
    background: tuple[str, ...] = ()
    focal_snapshot: str | None = None

    def __post_init__(self):
        if isinstance(self.n_focal, bool) or not isinstance(self.n_focal, int) or self.n_focal < 1:
            raise ConfigError(f"a scenario needs n_focal >= 1 (the learner itself), got {self.n_focal!r}")
        if isinstance(self.background, str):
            raise ConfigError(f"background must be a sequence of member names, got the string {self.background!r}")
        object.__setattr__(self, "background", tuple(sorted(_check_member_name(m) for m in self.background)))
        snap = self.focal_snapshot
        if snap is not None:
            if ":" in _check_member_name(snap) or _AT in snap:
                raise ConfigError(f"focal_snapshot {snap!r} must not contain ':' or '@' (they delimit scenario ids)")
            if self.n_focal < 2:
                raise ConfigError(
                    f"focal_snapshot {snap!r} plays the other focal seats, but the scenario has n_focal=1 (none)"
                )

    @property
    def n_seats(self) -> int:
        return self.n_focal + len(self.background)

    @property
    def members(self) -> tuple[str, ...]:
        """The population members this scenario uses: the background and the focal snapshot."""
        return self.background if self.focal_snapshot is None else (*self.background, self.focal_snapshot)

    @property
    def is_self_play(self) -> bool:
        """Only copies of the current learner (the paper's universalisation scenario)."""
        return not self.background and self.focal_snapshot is None

    @property
    def id(self) -> str:
        """Stable readable id, e.g. ``"c1:tit-for-tat"``, ``"c2"`` or ``"c2@fp/3"``."""
        head = f"c{self.n_focal}" + ("" if self.focal_snapshot is None else f"{_AT}{self.focal_snapshot}")
        return f"{head}:{_SEP.join(self.background)}" if self.background else head

    @classmethod
    def from_id(cls, scenario_id: str) -> Scenario:
        """Parse an id made by :attr:`id`."""
        head, _, tail = str(scenario_id).partition(":")
        head, at, snap = head.partition(_AT)
        if not (head.startswith("c") and head[1:].isdigit()) or (at and not snap):
            raise ConfigError(
                f"bad scenario id {scenario_id!r}: expected 'c<focal players>[@<focal snapshot>][:member+member...]'"
            )
        return cls(int(head[1:]), tuple(tail.split(_SEP)) if tail else (), snap or None)

    def __str__(self) -> str:
        return self.id


def count_scenarios(n_seats: int, n_members: int, focal_counts: Iterable[int] | None = None) -> int:
    """How many scenarios :meth:`ScenarioSet.all` makes, without building them."""
    total = 0
    for c in range(1, n_seats + 1) if focal_counts is None else focal_counts:
        k = n_seats - c
        if k == 0:
            total += 1
        elif n_members > 0:
            total += math.comb(n_members + k - 1, k)  # multisets of size k from n_members
    return total


@dataclass(frozen=True)
class ScenarioSet:
    """An ordered, validated set of scenarios over one population and one seat count.

    The order fixes the index of each scenario (nature's ``beta`` is indexed the same way).
    Build with :meth:`all`, narrow with :meth:`restrict`, persist with :meth:`save` / :meth:`load`.
    """

    n_seats: int
    members: tuple[str, ...]
    scenarios: tuple[Scenario, ...]
    _index: dict = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        if isinstance(self.n_seats, bool) or not isinstance(self.n_seats, int) or self.n_seats < 1:
            raise ConfigError(f"n_seats must be an integer >= 1, got {self.n_seats!r}")
        members = tuple(_check_member_name(m) for m in self.members)
        if len(set(members)) != len(members):
            dup = sorted({m for m in members if members.count(m) > 1})
            raise ConfigError(f"duplicate population member names: {dup}")
        scenarios = tuple(s if isinstance(s, Scenario) else Scenario.from_id(s) for s in self.scenarios)
        if not scenarios:
            raise ConfigError("a scenario set needs at least one scenario")
        known = set(members)
        index: dict[str, int] = {}
        for i, s in enumerate(scenarios):
            if s.n_seats != self.n_seats:
                raise ConfigError(f"scenario {s.id!r} fills {s.n_seats} seats but the environment has {self.n_seats}")
            unknown = sorted(set(s.members) - known)
            if unknown:
                raise ConfigError(
                    f"scenario {s.id!r} uses members {unknown} that are not in the population {list(members)}"
                )
            if s.id in index:
                raise ConfigError(f"scenario {s.id!r} is listed twice")
            index[s.id] = i
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "scenarios", scenarios)
        object.__setattr__(self, "_index", index)

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def all(
        cls,
        n_seats: int,
        member_names: Sequence[str],
        max_scenarios: int | None = None,
        *,
        focal_counts: Iterable[int] | None = None,
    ) -> ScenarioSet:
        """Every scenario: ``c = 1..n_seats`` focal copies, every multiset of members for the rest.

        Ordered by ``c`` (so self-play comes last), then by member order. ``focal_counts`` keeps only
        some ``c`` (e.g. ``[1]``: the learner alone among partners). ``max_scenarios`` refuses
        to build more than that many (the count grows as ``C(m + n - c - 1, n - c)``).
        """
        if isinstance(n_seats, bool) or not isinstance(n_seats, int) or n_seats < 1:
            raise ConfigError(f"n_seats must be an integer >= 1, got {n_seats!r}")
        members = tuple(member_names)
        counts = list(range(1, n_seats + 1)) if focal_counts is None else sorted(set(focal_counts))
        bad = [c for c in counts if not isinstance(c, int) or not 1 <= c <= n_seats]
        if bad:
            raise ConfigError(f"focal_counts must be integers in [1, {n_seats}], got {bad}")
        if not members:
            counts = [c for c in counts if c == n_seats]
        total = count_scenarios(n_seats, len(members), counts)
        if max_scenarios is not None and total > max_scenarios:
            raise ConfigError(
                f"{n_seats} seats and {len(members)} members make {total} scenarios, more than "
                f"max_scenarios={max_scenarios}; pass focal_counts=..., a smaller population, or an explicit "
                "ScenarioSet(n_seats, members, scenarios)"
            )
        scenarios = [
            Scenario(c, bg) for c in counts for bg in itertools.combinations_with_replacement(members, n_seats - c)
        ]
        return cls(n_seats, members, tuple(scenarios))

    @classmethod
    def self_play(cls, n_seats: int) -> ScenarioSet:
        """Only the all-focal scenario (no population needed)."""
        return cls(n_seats, (), (Scenario(n_seats),))

    def restrict(self, keep: Callable[[Scenario], bool] | Iterable[str | int]) -> ScenarioSet:
        """A new set with only the scenarios ``keep`` selects (a predicate, or ids / indices).

        The population (``members``) is kept whole so ids and saved state stay comparable.
        """
        if callable(keep):
            chosen = [s for s in self.scenarios if keep(s)]
        else:
            wanted = [self.index(k) for k in keep]
            chosen = [self.scenarios[i] for i in sorted(set(wanted))]
        if not chosen:
            raise ConfigError("restrict() kept no scenario; at least one is needed")
        return ScenarioSet(self.n_seats, self.members, tuple(chosen))

    # ---- lookup --------------------------------------------------------------------------------
    @functools.cached_property
    def ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.scenarios)

    @property
    def self_play_index(self) -> int | None:
        """Index of the all-focal scenario, or ``None`` if the set has none."""
        return self._index.get(f"c{self.n_seats}")

    def index(self, key: str | int | Scenario) -> int:
        """Index of a scenario given its id, an index, or the :class:`Scenario` itself."""
        if isinstance(key, Scenario):
            key = key.id
        if isinstance(key, str):
            if key not in self._index:
                raise ConfigError(f"unknown scenario {key!r}; known: {list(self.ids)}")
            return self._index[key]
        if isinstance(key, (int,)) and not isinstance(key, bool) and -len(self) <= key < len(self):
            return key % len(self)
        raise ConfigError(f"scenario index {key!r} is out of range for {len(self)} scenarios")

    def __getitem__(self, key: str | int) -> Scenario:
        return self.scenarios[self.index(key)]

    def __len__(self) -> int:
        return len(self.scenarios)

    def __iter__(self) -> Iterator[Scenario]:
        return iter(self.scenarios)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, Scenario):
            key = key.id
        return key in self._index

    def describe(self) -> str:
        """A readable table: index, id, focal copies, background members."""
        lines = [f"{len(self)} scenarios, {self.n_seats} seats, population {list(self.members)}"]
        width = max(len(i) for i in self.ids)
        for i, s in enumerate(self.scenarios):
            bg = ", ".join(s.background) if s.background else "(self-play)"
            if s.focal_snapshot is not None:
                bg = f"copies played by {s.focal_snapshot}" + (f"; {bg}" if s.background else "")
            lines.append(f"  {i:>3}  {s.id:<{width}}  focal x{s.n_focal}  {bg}")
        return "\n".join(lines)

    # ---- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        entries: list[dict[str, Any]] = []
        for s in self:
            entry: dict[str, Any] = {"id": s.id, "n_focal": s.n_focal, "background": list(s.background)}
            if s.focal_snapshot is not None:
                entry["focal_snapshot"] = s.focal_snapshot
            entries.append(entry)
        return {
            "format": FORMAT,
            "version": 2 if any(s.focal_snapshot is not None for s in self) else 1,
            "n_seats": self.n_seats,
            "members": list(self.members),
            "scenarios": entries,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScenarioSet:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"not a scenario set (expected format {FORMAT!r})")
        if data.get("version") not in _READABLE:
            raise ConfigError(
                f"scenario set version {data.get('version')!r} is not supported (this library reads {list(_READABLE)})"
            )
        scenarios = []
        for entry in data["scenarios"]:
            s = Scenario(int(entry["n_focal"]), tuple(entry["background"]), entry.get("focal_snapshot"))
            if "id" in entry and entry["id"] != s.id:
                raise ConfigError(f"scenario entry {entry!r} has id {entry['id']!r}, expected {s.id!r}")
            scenarios.append(s)
        return cls(int(data["n_seats"]), tuple(data["members"]), tuple(scenarios))

    def save(self, path: str | os.PathLike) -> None:
        """Write the set as JSON."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=1)
            f.write("\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> ScenarioSet:
        """Read a set written by :meth:`save`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))
