"""Background seats on whole batches: each fixed :class:`~rqe_wrappers.core.policy.Policy` acts once per step.

The batched counterpart of :mod:`rqe_wrappers.seats.background`: every seat a policy plays, in
every copy, goes into one ``act`` call (rows: copy-major, then the policy's seats in env order),
with one seeded stream for the whole batch. Recurrent policies need per-copy state resets and are
refused here (use the per-copy ``PettingZooVecEnv``). Docs: docs/batched.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np

from rqe_wrappers.core.policy import Policy, check_policy_spaces
from rqe_wrappers.core.seeding import categorical, stream
from rqe_wrappers.envs.batched import BatchedEnv
from rqe_wrappers.errors import ConfigError, SeatError
from rqe_wrappers.sb3.stacked import StackedNets, stack_key

STREAM = "background"


def check_background(env: BatchedEnv, policies: Mapping[str, Policy]) -> dict[str, Policy]:
    """``policies`` checked against ``env`` (seat names, Policy type, spaces, no recurrent state)."""
    if not isinstance(policies, Mapping):
        raise ConfigError(f"background must be a dict {{seat: Policy}}, got {type(policies).__name__}")
    unknown = [s for s in policies if s not in env.possible_agents]
    if unknown:
        raise SeatError(f"background seats {unknown} do not exist; the env's seats are {env.possible_agents}")
    for seat, pol in policies.items():
        if not isinstance(pol, Policy):
            raise ConfigError(f"background seat {seat!r}: expected a rqe_wrappers.Policy, got {type(pol).__name__}")
        check_policy_spaces(pol, env.observation_space(seat), env.action_space(seat), f"background seat {seat!r}")
        if pol.initial_state(1) is not None:
            raise ConfigError(
                f"background seat {seat!r}: {pol!r} is recurrent; the batched path plays stateless policies only "
                "(use rqe_wrappers.sb3.PettingZooVecEnv for recurrent partners)"
            )
    return dict(policies)


class BatchedBackground:
    """Plays the background seats of every copy: one ``act`` call per policy per step.

    Who plays which seat is :attr:`table`, ``(n_copies, n_seats)`` indices into :attr:`policies`
    (``-1``: a learning seat), the same row for every copy at the start; :meth:`assign` gives copies
    other partners (per-copy partners, e.g. a scenario drawn per episode) and :meth:`fill` follows it.

    Args:
        seats: the env's seats (``possible_agents`` order).
        policies: ``{seat: Policy}``, already checked (:func:`check_background`).
        n_copies: env copies.
        pool: more policies that :meth:`assign` may give copies (e.g. a population), after the seats' own.
    """

    def __init__(
        self, seats: Sequence[str], policies: Mapping[str, Policy], n_copies: int, pool: Sequence[Policy] = ()
    ):
        self.policies: list[Policy] = []
        #: groups of same-architecture networks evaluated together (built at the first fill; weights copied)
        self._stacks: list[tuple[list[int], StackedNets, bool]] | None = None
        self._found: list[Any] = []  # each policy's stackable(), with the stacks
        #: groups of lookup-table members sharing one index function (built with the stacks)
        self._tables: list[tuple[Any, list[int], np.ndarray]] = []
        row = np.full(len(seats), -1, np.int64)
        for col, seat in enumerate(seats):
            if seat in policies:
                row[col] = self.index(policies[seat])
        for policy in pool:
            self.index(policy)
        #: the background seats' columns (env order)
        self.columns = np.flatnonzero(row >= 0)
        self.table = np.tile(row, (int(n_copies), 1))
        self.rng = stream(None, STREAM)
        self._cells: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._order: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # all cells by policy, then bounds
        self._ready: tuple[np.ndarray, list[Any]] | None = None  # (obs, stacks launched on it) by prepare()

    def index(self, policy: Policy) -> int:
        """``policy``'s index in :attr:`policies` (added if it is not there yet; found by identity)."""
        known = [i for i, p in enumerate(self.policies) if p is policy]
        if known:
            return known[0]
        self.policies.append(policy)
        self._stacks = self._ready = None
        return len(self.policies) - 1

    def seed(self, seed: int | None) -> None:
        """Restart the stream the policies sample from (``None``: fresh entropy)."""
        self.rng = stream(seed, STREAM)

    def assign(self, copies: np.ndarray, rows: np.ndarray) -> None:
        """Give ``copies`` the policy indices ``rows`` ``(len(copies), n_seats)`` (``-1`` on the learning seats)."""
        rows = np.asarray(rows)
        template = self.table[0] >= 0
        if rows.shape != (len(copies), len(template)) or not np.issubdtype(rows.dtype, np.integer):
            raise ConfigError(f"rows must be integers of shape ({len(copies)}, {len(template)}), got {rows.shape}")
        if ((rows >= 0) != template).any() or (rows >= len(self.policies)).any():
            raise ConfigError(
                f"rows must keep -1 on the learning seats and index the {len(self.policies)} policies on the "
                f"background columns {self.columns.tolist()}, got {rows.tolist()}"
            )
        self.table[copies] = rows
        self._cells = self._ready = None

    def fill(self, actions: np.ndarray, obs: np.ndarray) -> None:
        """Write the background seats' actions into ``actions`` (copy, seat) from ``obs`` (copy, seat, ...).

        Each policy acts once on all the (copy, seat) cells it plays, copy-major. Members that are
        networks of one architecture (:meth:`Policy.stackable`) are evaluated in one forward pass
        (:class:`~rqe_wrappers.sb3.stacked.StackedNets`; one observation transform for the group where
        the members' transforms are equal), then sample in policy order as ``act`` would: consecutive
        sampling policies draw in one call, one uniform per row from the one stream. The stacks' passes
        are those :meth:`prepare` started on this very ``obs`` if no :meth:`assign` came in between.
        """
        ready, self._ready = self._ready, None
        launched = ready[1] if ready is not None and ready[0] is obs else self._launch(obs)
        cells = self._cells
        assert cells is not None  # indexed by _launch
        probs: dict[int, np.ndarray] = {}
        for index, members, tables in self._tables:
            probs |= self._looked_up(index, members, tables, obs)
        for members, counts, read in launched:
            flat, end = read(), 0
            for i, c in zip(members, counts, strict=True):
                probs[i], end = flat[end : end + c], end + c
        pending: list[int] = []  # sampling policies whose draws are made together, in policy order
        for i, (pol, (rows, cols)) in enumerate(zip(self.policies, cells, strict=True)):
            if not len(rows):
                continue
            if i in probs and self._found[i] is not None and self._found[i][2]:  # deterministic: no draw
                actions[rows, cols] = probs[i].argmax(axis=1)
            elif i in probs:
                pending.append(i)
            else:
                self._draw(pending, probs, actions)
                acts, _ = pol.act(self._batch(i, obs, transform=False), rng=self.rng)
                actions[rows, cols] = np.asarray(acts).reshape(len(rows))
        self._draw(pending, probs, actions)

    def prepare(self, obs: np.ndarray) -> None:
        """Start the stacked networks' forward passes for the next :meth:`fill` on ``obs`` (that very array):
        on CUDA they run while the learner picks its actions. Any :meth:`assign` in between discards them."""
        self._ready = (obs, self._launch(obs))

    def _launch(self, obs: np.ndarray) -> list[tuple[list[int], list[int], Any]]:
        """Every stack's forward pass started (none read yet): ``(members, counts, reader)`` each."""
        cells = self._cells if self._cells is not None else self._index_cells()
        if self._stacks is None:
            self._found = [p.stackable() for p in self.policies]
            self._stacks = _stacks(self._found, self.policies)
            self._tables = _tables(self.policies, self._found)
        launched = []  # every stack started before any is read: on CUDA they overlap and share one wait
        for members, stacked, shared in self._stacks:
            counts = [len(cells[i][0]) for i in members]
            if not sum(counts):
                continue
            if shared:  # one gather and one transform for the whole group
                x = self._found[members[0]][0](self._gathered(members, obs))
            else:
                x = np.concatenate([self._batch(i, obs) for i in members])
            launched.append((members, counts, stacked.launch(x, counts)))
        return launched

    def _index_cells(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each policy's ``(rows, cols)`` cells, copy-major, as slices of all cells sorted by policy (one sort)."""
        flat = self.table.reshape(-1)
        order = np.argsort(flat, kind="stable")  # stable: copy-major within each policy, as np.nonzero
        bounds = np.searchsorted(flat[order], np.arange(len(self.policies) + 1))
        rows, cols = np.divmod(order, self.table.shape[1])
        self._order = (rows, cols, bounds)
        self._cells = [(rows[a:b], cols[a:b]) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)]
        return self._cells

    def _span(self, members: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The cells of ``members`` in their order: one slice when they are consecutive policies."""
        assert self._cells is not None and self._order is not None
        if members == list(range(members[0], members[0] + len(members))):
            rows, cols, bounds = self._order
            cut = slice(bounds[members[0]], bounds[members[-1] + 1])
            return rows[cut], cols[cut]
        return np.concatenate([self._cells[i][0] for i in members]), np.concatenate(
            [self._cells[i][1] for i in members]
        )

    def _looked_up(self, index: Any, members: list[int], tables: np.ndarray, obs: np.ndarray) -> dict[int, np.ndarray]:
        """The probabilities of lookup-table ``members`` (one ``index`` call over all their rows)."""
        assert self._cells is not None
        counts = [len(self._cells[i][0]) for i in members]
        if not sum(counts):
            return {}
        x = self._gathered(members, obs)  # one index function: one observation space
        keys = np.asarray(index(x), np.int64)
        who = np.repeat(np.arange(len(members)), counts)
        flat = tables[who, np.maximum(keys, 0)]
        ends = np.cumsum(counts).tolist()
        out = {i: flat[b - c : b] for i, b, c in zip(members, ends, counts, strict=True)}
        if (keys < 0).any():  # rows the tables do not cover: the member's own action_probs
            for j, i in enumerate(members):
                miss = keys[who == j] < 0
                if miss.any():
                    own = cast(Any, self.policies[i]).action_probs(x[who == j][miss])
                    out[i][miss] = np.asarray(own, np.float64)
        return out

    def _draw(self, pending: list[int], probs: dict[int, np.ndarray], actions: np.ndarray) -> None:
        """Sample the ``pending`` policies' actions in one call (their rows in order), then clear it."""
        if not pending:
            return
        acts = categorical(np.concatenate([probs[i] for i in pending]), self.rng)
        rows, cols = self._span(pending)
        actions[rows, cols] = acts
        pending.clear()

    def _gathered(self, members: list[int], obs: np.ndarray) -> np.ndarray:
        """The rows of all ``members`` (policies with one observation space) in one gather, member by member."""
        rows, cols = self._span(members)
        return self._cut(members[0], obs[rows, cols])

    def _cut(self, i: int, batch: np.ndarray) -> np.ndarray:
        """``batch`` without the zero padding of a narrower seat than policy ``i``'s (e.g. Tag's runner)."""
        shape = getattr(self.policies[i].observation_space, "shape", None)
        if shape and len(shape) == 1 and batch.ndim == 2 and batch.shape[1] > shape[0]:
            return batch[:, : shape[0]]
        return batch

    def _batch(self, i: int, obs: np.ndarray, transform: bool = True) -> np.ndarray:
        """Policy ``i``'s rows of ``obs`` (a narrower seat's zero padding cut), through its stackable transform."""
        assert self._cells is not None
        rows, cols = self._cells[i]
        batch = self._cut(i, obs[rows, cols])
        return self._found[i][0](batch) if transform else batch


def _tables(policies: Sequence[Policy], found: Sequence[Any]) -> list[tuple[Any, list[int], np.ndarray]]:
    """``(index, members, tables)`` for the policies that are not stacked networks but lookup tables
    (:meth:`Policy.tabular`) sharing one index function and table shape; groups of one are left to ``act``."""
    groups: dict[tuple[int, tuple[int, ...]], tuple[Any, list[int], list[np.ndarray]]] = {}
    for i, pol in enumerate(policies):
        tab = pol.tabular() if found[i] is None else None
        if tab is not None:
            index, table = tab
            table = np.asarray(table, np.float64)
            entry = groups.setdefault((id(index), table.shape), (index, [], []))
            entry[1].append(i)
            entry[2].append(table)
    return [(index, members, np.stack(t)) for index, members, t in groups.values() if len(members) > 1]


def _stacks(found: Sequence[Any], policies: Sequence[Policy]) -> list[tuple[list[int], StackedNets, bool]]:
    """Groups (two or more) of policies whose ``stackable()`` (``found``) share one architecture: each
    group's members, their stack, and whether one transform serves them all (equal transforms and spaces)."""
    groups: dict[Any, list[int]] = {}
    for i, f in enumerate(found):
        if f is not None:
            groups.setdefault((stack_key(f[1]), f[2]), []).append(i)
    out = []
    for g in (g for g in groups.values() if len(g) > 1):
        first = g[0]
        shared = all(
            found[i][0] == found[first][0] and policies[i].observation_space == policies[first].observation_space
            for i in g
        )
        out.append((g, StackedNets([found[i][1] for i in g]), shared))
    return out
