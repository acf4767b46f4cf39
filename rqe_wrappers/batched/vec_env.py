""":class:`BatchedVecEnv`: a batched env (all copies as arrays) as a stock SB3 ``VecEnv``, SRPO on whole batches.

Slots, episode ends, infos and seeds are those of :class:`~rqe_wrappers.sb3.PettingZooVecEnv`
over ``srpo_wrap(env)``; :func:`batched_vec_env` adds the monitor. Docs: docs/batched.md.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, cast

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from rqe_wrappers.aht.config import FICTITIOUS_PLAY, AHTConfig
from rqe_wrappers.aht.population import population_policies
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.batched.background import BatchedBackground, check_background
from rqe_wrappers.batched.scenarios import BatchedScenarios, check_aht, fictitious_play
from rqe_wrappers.batched.shadows import BatchedShadows
from rqe_wrappers.core.checks import all_finite, integer, is_integer, real
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.core.snapshot import SnapshotPolicy
from rqe_wrappers.envs.batched import BatchedEnv
from rqe_wrappers.errors import (
    ActionError,
    ConfigError,
    MissingCallbackWarning,
    NonFiniteError,
    SpaceMismatchError,
    UnsupportedSpaceError,
    VecEnvStateError,
)
from rqe_wrappers.sb3.monitor import RoleVecMonitor
from rqe_wrappers.sb3.vec_env.copies import space_problem
from rqe_wrappers.srpo.teams import check_learning, plan_teams

#: the info of a slot whose episode goes on, without ``step_infos``: one shared, read-only, empty mapping
NO_INFO: Mapping[str, Any] = MappingProxyType({})
_NONE_FINISHED = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))


def _dicts(keys: list[str], rows: list[list[float]]) -> list[dict[str, float]]:
    """One ``{key: value}`` dict per row (the common two-key case written out: it is on the step path)."""
    if len(keys) == 2:
        k0, k1 = keys
        return [{k0: a, k1: b} for a, b in rows]
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _repeat(items: list[Any], times: int) -> list[Any]:
    """Each item ``times`` times in a row (one per slot of its copy)."""
    out: list[Any] = [None] * (len(items) * times)
    for i in range(times):
        out[i::times] = items
    return out


def _device(device: Any) -> Any:
    """``device`` as a torch device, or a :class:`ConfigError` naming the choices."""
    import torch

    try:
        out = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}") from None
    if out.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r}: this torch has no CUDA device; use 'cpu' (or the learner's model.device)"
        )
    return out


def _aht_learner(env: BatchedEnv, tau: float, background: Any, teams: Any, learn: Any, seat_id: bool) -> str:
    """The learner's seat of a batched AHT env (``learn``, default the first seat); SRPO options refused."""
    if tau != 0 or background or teams is not None or seat_id:
        raise ConfigError(
            "with a population (AHT) the batched path takes no tau, background, teams or seat_id: the scenarios "
            "fill every other seat and observations are the env's own (as aht_wrap's); leave them at their defaults"
        )
    seats = list(env.possible_agents)
    learner = seats[0] if learn is None else learn
    if learner not in seats:
        raise ConfigError(f"with a population (AHT), learn must be one seat of {seats}, got {learn!r}")
    return str(learner)


def _check_env(env: Any) -> BatchedEnv:
    needed = ("n_copies", "possible_agents", "observation_space", "action_space", "reset", "step")
    missing = [a for a in needed if not hasattr(env, a)]
    if missing:
        raise ConfigError(
            f"env must be a batched env (rqe_wrappers.envs.batched.BatchedEnv: all copies stepped as arrays), "
            f"got {type(env).__name__} without {missing}; for a PettingZoo env use rqe_wrappers.make_vec_env"
        )
    return env


class BatchedVecEnv(VecEnv):
    """A :class:`~rqe_wrappers.envs.batched.BatchedEnv` of N copies as an SB3 ``VecEnv``, one slot per learning seat.

    Behaves as ``PettingZooVecEnv(lambda: srpo_wrap(<the env as PettingZoo>, tau, fixed=background,
    ...), n_copies)``: slot ``copy * n_learning + i`` is learning seat ``i`` of ``copy``; observations
    carry the seat one-hot (``seat_id``) and the role feature as :mod:`rqe_wrappers.srpo.features` lays
    them out; a shadow's reward is minus the mean of its team's other learning seats; a finished copy
    reports ``done`` on its slots with ``terminal_observation`` and ``TimeLimit.truncated`` and resets
    at once; infos carry ``role``, ``raw_rewards``, ``cost`` (envs with private costs) and
    ``background_rewards`` (with background seats). Every step is numpy over all copies; only the
    per-slot info dicts SB3 needs are built in Python.

    Args:
        env: the batched env; its ``n_copies`` are the copies.
        tau: risk aversion; ``0`` is plain IPPO (no shadow, the features say *partner*), and then one
            learning seat is allowed too: a best response to the background (the trained audit's adversary).
        background: ``{seat: Policy}`` played by fixed stateless policies, one ``act`` per policy per step.
        teams, learn, seat_id, n_shadows: as in :func:`~rqe_wrappers.srpo.shadow.srpo_wrap`.
        check_finite: raise :class:`~rqe_wrappers.errors.NonFiniteError` on a NaN/inf reward or observation.
        reward_infos: put ``raw_rewards`` / ``background_rewards`` dicts in every slot's info, as
            ``srpo_wrap`` does (default). ``False`` leaves them out (the same numbers are in
            :attr:`last_raw_rewards` / :attr:`last_background_rewards`): about twice as fast a step at
            thousands of slots, because dicts of plain numbers escape Python's garbage collector.
        step_infos: build every slot's info every step (default). ``False``: only a finished slot gets
            its info dict (what that step's would hold, with ``terminal_observation`` etc.); the others
            share :data:`NO_INFO`, a read-only empty mapping, and the per-step costs and roles are in
            :attr:`last_costs` and :meth:`roles`. Saves the one per-slot Python loop left on the step
            (about 3 ms per step at 8,192 slots); ``SRPOCallback``, ``AHTCallback`` and the monitor
            read only finished slots.
        population, aht, scenarios: minimax-Bayes AHT (``aht_wrap``'s ``population``, ``config`` and
            ``scenarios``; either of the first two turns it on): one learner slot per copy in seat
            ``learn`` (default: the first seat), a scenario per copy and episode (``c1``; self-play
            ``c<n>`` and fictitious play seat the learner's snapshots: :mod:`rqe_wrappers.batched.scenarios`);
            then ``tau``, ``background`` and ``teams`` stay unset.
        device: move the background and population policies that have networks to this torch device
            (in place; :meth:`Policy.to <rqe_wrappers.core.policy.Policy.to>`), e.g. the learner's
            ``"cuda"``: each still acts once per step, on all its rows, there. ``None``: where they are.

    Seeds: :meth:`seed` makes copy ``k``'s next reset use ``seed + k`` (env, shadow draws); the
    background policies sample from one stream seeded with ``seed``. The shadow draws are counter
    based (copy ``k``'s depend only on its seed and episode number), not the per-copy wrapper's
    numpy stream: same distribution, different draws.
    """

    #: every slot acts every step (no idle rows): RoleVecMonitor skips looking for ``info["inactive"]``
    idle_rows = False
    #: a finished slot's info is a new dict of that step, held by nothing else: RoleVecMonitor writes
    #: its episode into it instead of into a copy (thousands of copies when all copies end together)
    fresh_infos = True

    def __init__(
        self,
        env: BatchedEnv,
        tau: float = 0.0,
        *,
        background: Mapping[str, Policy] | None = None,
        teams: Mapping[str, Sequence[str]] | None = None,
        learn: str | Sequence[str] | None = None,
        seat_id: bool = False,
        n_shadows: int = 1,
        check_finite: bool = True,
        reward_infos: bool = True,
        step_infos: bool = True,
        population: Any = None,
        aht: AHTConfig | None = None,
        scenarios: ScenarioSet | None = None,
        device: Any = None,
    ):
        env = _check_env(env)
        self.tau = real("tau", tau, low=0, hint="risk aversion; 0 = plain IPPO")
        flags = {
            "check_finite": check_finite,
            "seat_id": seat_id,
            "reward_infos": reward_infos,
            "step_infos": step_infos,
        }
        bad = {k: v for k, v in flags.items() if not isinstance(v, (bool, np.bool_))}
        if bad:
            raise ConfigError(f"{', '.join(bad)} must be True or False, got {bad}")
        seats = list(env.possible_agents)
        self.aht: BatchedScenarios | None = None
        self._finished: tuple[np.ndarray, np.ndarray, np.ndarray] = _NONE_FINISHED
        members: dict[str, Policy] = {}
        chosen: ScenarioSet | None = None
        snapshot: Policy | None = None
        fp_members: dict[str, str] = {}
        use_aht = population is not None or aht is not None
        if not use_aht:
            fixed = check_background(env, background or {})
            plan = plan_teams(env, fixed=fixed, teams=teams, learn=learn)
            if self.tau == 0 and len(plan.learning) == 1:  # a best response to the background: no shadow to draw
                self.n_shadows = integer("n_shadows", n_shadows, low=1, high=1, hint="one learning seat, tau = 0")
            else:
                self.n_shadows = check_learning(plan, n_shadows, env)
        else:  # AHT: one learning seat; the scenario's members play the others
            learner = _aht_learner(env, self.tau, background, teams, learn, seat_id)
            members = population_policies(population, env)
            config = AHTConfig() if aht is None else aht
            if isinstance(config, AHTConfig) and config.prior == FICTITIOUS_PLAY:  # past snapshots as members
                scenarios, members, fp_members = fictitious_play(env, learner, members, config, scenarios)
            chosen = check_aht(env, learner, members, config, scenarios)
            if any(s.n_focal > 1 and s.focal_snapshot is None for s in chosen):  # the current snapshot plays
                snapshot = SnapshotPolicy(
                    env.observation_space(learner), env.action_space(learner), config.snapshot_name
                )
            named = [m for s in chosen for m in (*s.background, s.focal_snapshot) if m is not None]
            first = members[named[0]] if named else snapshot
            assert first is not None  # no member in any scenario: only c<n> ones, so a snapshot
            fixed = {s: first for s in seats if s != learner}
            plan = plan_teams(env, fixed=fixed)
            self.n_shadows = 1
        self.env = env
        self.n_copies = int(env.n_copies)
        #: read by SRPOCallback through ``get_attr`` (as on ``srpo_wrap``'s env)
        self.srpo_tau = self.tau
        self.srpo_callback_attached = False
        self.learning_seats = list(plan.learning)
        self.teams = plan.teams
        self.all_teams = plan.all_teams
        self.default_fixed = dict(plan.filled)
        self.seat_id = bool(seat_id)
        self.seat_index = {s: i for i, s in enumerate(self.learning_seats)}
        self.srpo_feature_width = 0 if use_aht else (len(self.learning_seats) if self.seat_id else 0) + 2
        self.background = {**fixed, **plan.filled}
        self.check_finite = bool(check_finite)
        self.reward_infos = bool(reward_infos)
        self.step_infos = bool(step_infos)
        obs_spaces = [env.observation_space(s) for s in self.learning_seats]
        act_spaces = [env.action_space(s) for s in self.learning_seats]
        problem = space_problem(self.learning_seats, obs_spaces, act_spaces)
        if problem:
            raise SpaceMismatchError(problem)
        if not isinstance(act_spaces[0], gym.spaces.Discrete):
            raise UnsupportedSpaceError(f"the batched path needs Discrete actions, got {act_spaces[0]}")
        self._cols = np.asarray([seats.index(s) for s in self.learning_seats], np.int64)
        #: the learning seats' observations for SRPO's features (which copy them): a view where they are all seats
        self._obs_cols: Any = slice(None) if self._cols.tolist() == list(range(len(seats))) else self._cols
        team_cols = [[self.seat_index[s] for s in m] for m in plan.teams.values()]
        self.shadow_logic = BatchedShadows(obs_spaces, team_cols, self.tau, self.n_shadows, self.n_copies, self.seat_id)
        pool = list(members.values()) + ([] if snapshot is None else [snapshot])
        self._background = BatchedBackground(seats, self.background, self.n_copies, pool=pool)
        if chosen is not None:
            rows = np.full((len(chosen), len(seats)), -1, np.int64)
            focal = np.zeros((len(chosen), len(seats)), bool)
            focal[:, seats.index(self.learning_seats[0])] = True
            for i, scenario in enumerate(chosen):  # snapshots first, then the members, in env order
                copy = cast(Policy, snapshot) if scenario.focal_snapshot is None else members[scenario.focal_snapshot]
                players = [copy] * (scenario.n_focal - 1) + [members[m] for m in scenario.background]
                rows[i, self._background.columns] = [self._background.index(p) for p in players]
                focal[i, self._background.columns[: scenario.n_focal - 1]] = True
            self.aht = BatchedScenarios(chosen, config, rows, self.n_copies, members, focal, fp_members)
        if device is not None:
            where = _device(device)
            for policy in self._background.policies:
                policy.to(where)
        #: does the learner's current snapshot play any seat here (``c<n>`` scenarios)? ``AHTCallback`` shares
        #: a copy of the learner every rollout only where it does
        self.plays_learner_snapshot = snapshot is not None
        self._bg_seats = [seats[c] for c in self._background.columns.tolist()]
        self._n_seats = len(seats)
        self._n_learn = len(self.learning_seats)
        self.slot_seats = self.learning_seats * self.n_copies
        self._copy_seeds: list[int | None] = [None] * self.n_copies
        self._raw_obs: np.ndarray | None = None
        #: the last step's unshaped rewards of the learning seats ``(n_copies, n_learning)`` and of the
        #: background seats ``(n_copies, n_background)`` (``background_seats`` order), also without ``reward_infos``
        self.last_raw_rewards = np.zeros((self.n_copies, self._n_learn))
        self.last_background_rewards = np.zeros((self.n_copies, len(self._bg_seats)))
        #: the last step's private costs of the slots ``(num_envs,)``; ``None`` for an env without costs
        self.last_costs: np.ndarray | None = None
        #: the background seats, in the column order of :attr:`last_background_rewards`
        self.background_seats = list(self._bg_seats)
        self._actions: np.ndarray | None = None
        self._warned = False
        self.closed = False
        space = obs_spaces[0] if self.aht is not None else self.shadow_logic.space
        super().__init__(self.n_copies * self._n_learn, space, act_spaces[0])
        self._n_actions = int(act_spaces[0].n)
        self._start = int(act_spaces[0].start)

    # ---- SB3 VecEnv API ----
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Copy ``k``'s next reset uses ``seed + k``; returns each slot's copy seed."""
        if seed is None:
            seed = int(np.random.randint(0, np.iinfo(np.uint32).max, dtype=np.uint32))
        if not is_integer(seed) or int(seed) < 0:
            raise ConfigError(f"seed must be a whole number >= 0 or None, got {seed!r}")
        self._copy_seeds = [int(seed) + k for k in range(self.n_copies)]
        self._background.seed(int(seed))
        return [s for s in self._copy_seeds for _ in range(self._n_learn)]

    def reset(self) -> np.ndarray:
        if self.closed:
            raise VecEnvStateError("reset() on a closed BatchedVecEnv; build a new one")
        seeds = self._copy_seeds
        raw = self.env.reset(seeds=seeds)
        self.shadow_logic.draw(np.arange(self.n_copies), seeds)
        if self.aht is not None:
            every = np.arange(self.n_copies)
            self._background.assign(every, self.aht.draw(every, seeds))
        self._copy_seeds = [None] * self.n_copies
        self._raw_obs = raw
        obs = self._observe(raw)
        self.reset_infos = self._reset_infos(range(self.n_copies))
        self._reset_options()
        if self.check_finite:
            self._check_obs(obs, "at reset")
        self._background.prepare(raw)
        return obs.reshape(self.num_envs, *obs.shape[2:])

    def step_async(self, actions: np.ndarray) -> None:
        if self.closed:
            raise VecEnvStateError("step() on a closed BatchedVecEnv; build a new one")
        if self._raw_obs is None:
            raise VecEnvStateError("step() before reset(): call venv.reset() first (SB3's model.learn() does it)")
        self._actions = self._check_actions(actions)

    def step_wait(self):
        assert self._actions is not None and self._raw_obs is not None  # set by step_async
        n, learn = self.n_copies, self._n_learn
        full = np.empty((n, self._n_seats), np.int64)
        full[:, self._cols] = self._actions.reshape(n, learn)
        self._background.fill(full, self._raw_obs)
        self._finished = _NONE_FINISHED
        out = self.env.step(full)
        raw_rew = np.asarray(out.rewards, np.float64)[:, self._cols]
        if self.aht is None:
            rews = self.shadow_logic.shape(raw_rew).reshape(-1).astype(np.float32)
        else:  # the focal per-capita reward (c1: the learner's own)
            focal = self.aht.focal_rewards(np.asarray(out.rewards, np.float64))
            self.aht.returns += focal
            rews = focal.astype(np.float32)
        done = np.asarray(out.terminated) | np.asarray(out.truncated)
        obs = self._observe(out.obs)
        self.last_raw_rewards = raw_rew
        self.last_background_rewards = np.asarray(out.rewards, np.float64)[:, self._background.columns]
        if out.costs is not None:
            self.last_costs = np.asarray(out.costs, np.float64)[:, self._cols].reshape(-1)
        infos: list[Any] = self._step_infos(out, raw_rew) if self.step_infos else [NO_INFO] * self.num_envs
        self._raw_obs = out.obs
        if self.check_finite:  # before the resets: the terminal observations are checked too
            self._check_step(obs, rews)
        if done.any():
            idx = np.flatnonzero(done)
            slots = self._slots(idx)
            # the finished slots' infos (without step_infos: built now, as every step would have them)
            ended = [infos[s] for s in slots] if self.step_infos else self._step_infos(out, raw_rew, idx)
            trunc = np.repeat((np.asarray(out.truncated) & ~np.asarray(out.terminated))[idx], learn).tolist()
            last = obs[idx].reshape(len(slots), *obs.shape[2:])  # iterated: one row view per slot
            if self.aht is None:
                for slot, info, o, tr in zip(slots, ended, last, trunc, strict=True):
                    info["terminal_observation"] = o
                    info["TimeLimit.truncated"] = tr
                    infos[slot] = info
            else:  # one slot per copy; the learner's info at the episode end, as aht_wrap gives it
                aht = self.aht
                self._finished = (idx, aht.index[idx], aht.returns[idx])  # gathers copy
                index, returns = self._finished[1].tolist(), self._finished[2].tolist()
                ends = zip(slots, ended, last, trunc, aht.ids(idx), index, returns, strict=True)
                for slot, info, o, tr, sid, i, ret in ends:
                    info["terminal_observation"] = o
                    info["TimeLimit.truncated"] = tr
                    info["scenario"], info["scenario_index"], info["focal_return"] = sid, i, ret
                    infos[slot] = info
            self._episodes_end()
            raw = self.env.reset(copies=idx)
            self.shadow_logic.draw(idx, [None] * len(idx))
            if self.aht is not None:
                self._background.assign(idx, self.aht.draw(idx, [None] * len(idx)))
            self._raw_obs = raw
            obs[idx] = self._observe(raw[idx], idx)  # the terminal observations are a copy (last)
            for slot, info in zip(slots, self._reset_infos(idx.tolist()), strict=True):
                self.reset_infos[slot] = info
            if self.check_finite:
                self._check_obs(obs, "at the reset after its episode ended")
        self._background.prepare(self._raw_obs)  # the next step's stacked partners start now (CUDA: async)
        return obs.reshape(self.num_envs, *obs.shape[2:]), rews, np.repeat(done, learn), infos

    def _observe(self, obs: np.ndarray, copies: np.ndarray | None = None) -> np.ndarray:
        """The learning seats' observations (of all seats' ``obs``) with SRPO's features (AHT: raw, as ``aht_wrap``
        gives them); always a new array."""
        if self.aht is not None:
            return obs[:, self._cols]  # a copy
        return self.shadow_logic.observe(obs[:, self._obs_cols], copies)  # the features are a new array

    # ---- infos ----
    def _slots(self, copies: np.ndarray) -> list[int]:
        return (copies[:, None] * self._n_learn + np.arange(self._n_learn)).reshape(-1).tolist()

    def _reset_infos(self, copies: Sequence[int]) -> list[dict]:
        roles = self.shadow_logic.roles_flat(np.asarray(copies, np.int64))
        if self.aht is not None and not self.reward_infos:  # one slot per copy, one dict display each
            index = self.aht.index[np.asarray(copies, np.int64)].tolist()
            ids = self.aht.ids(copies)
            return [{"role": r, "scenario": s, "scenario_index": i} for r, s, i in zip(roles, ids, index, strict=True)]
        if not self.reward_infos:
            out: list[dict] = [{"role": r} for r in roles]
        else:
            zero = dict.fromkeys(self.learning_seats, 0.0)
            out = [{"role": r, "raw_rewards": zero} for r in roles]
        if self.aht is not None:
            index = self.aht.index[np.asarray(copies, np.int64)].tolist()
            for info, sid, i in zip(out, self.aht.ids(copies), index, strict=True):
                info["scenario"], info["scenario_index"] = sid, i
        return out

    def _slot_costs(self, rows: Any) -> list[float]:
        """:attr:`last_costs` of the slots of copies ``rows``, as a list."""
        assert self.last_costs is not None  # set by the step before its infos
        costs: list[float] = self.last_costs.reshape(self.n_copies, self._n_learn)[rows].reshape(-1).tolist()
        return costs

    def roles(self) -> list[str]:
        """Each slot's role now (``"partner"`` / ``"shadow"``), slot order; the ``role`` key of its info."""
        return self.shadow_logic.roles_flat()

    def _step_infos(self, out: Any, raw_rew: np.ndarray, copies: np.ndarray | None = None) -> list[dict]:
        """Per-slot infos of ``copies``' slots (all) as ``srpo_wrap`` gives them (``cost``, ``role``, ...).

        Built as flat lists and one dict display per slot: this is the only per-slot Python on the step path.
        Without ``reward_infos`` the dicts hold only numbers and strings, which Python's garbage collector
        does not track: at thousands of slots that halves the step's cost.
        """
        seats, learn = self.learning_seats, self._n_learn
        rows: Any = slice(None) if copies is None else copies
        roles = self.shadow_logic.roles_flat(copies)
        costs = None if out.costs is None else self._slot_costs(rows)
        raw_rew = raw_rew[rows]
        if not self.reward_infos:
            if costs is None:
                return [{"role": r} for r in roles]
            return [{"cost": x, "role": r} for x, r in zip(costs, roles, strict=True)]
        raws = _repeat(_dicts(seats, raw_rew.tolist()), learn)
        keys: list[str] = []
        columns: list[list[Any]] = []
        if costs is not None:
            keys.append("cost")
            columns.append(costs)
        if self._bg_seats:
            bg_rows = self.last_background_rewards[rows].tolist()
            keys.append("background_rewards")
            columns.append(_repeat(_dicts(self._bg_seats, bg_rows), learn))
        if not keys:
            return [{"role": r, "raw_rewards": w} for r, w in zip(roles, raws, strict=True)]
        if len(keys) == 1:
            k = keys[0]
            return [{k: x, "role": r, "raw_rewards": w} for x, r, w in zip(columns[0], roles, raws, strict=True)]
        return [
            {"cost": x, "background_rewards": b, "role": r, "raw_rewards": w}
            for x, b, r, w in zip(columns[0], columns[1], roles, raws, strict=True)
        ]

    def finished_episodes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """AHT: the slots whose episodes ended at the last step, their scenario indices and focal returns (what
        their infos' ``scenario_index`` / ``focal_return`` say), as arrays: ``AHTCallback`` reads these."""
        return self._finished

    def _episodes_end(self) -> None:
        if self.aht is not None:
            self.aht.episodes_end()
        if self.tau > 0 and not self.srpo_callback_attached and not self._warned:
            self._warned = True
            warnings.warn(
                f"BatchedVecEnv(tau={self.tau}) ran an episode without SRPOCallback: the shadow is a pure adversary "
                "(no KL penalty). Train with model.learn(..., callback=SRPOCallback()).",
                MissingCallbackWarning,
                stacklevel=3,
            )

    # ---- checks ----
    def _check_actions(self, actions: Any) -> np.ndarray:
        try:
            a = np.asarray(actions)
        except (TypeError, ValueError) as e:
            raise ActionError(f"actions must be an array of {self.num_envs} actions") from e
        if a.size != self.num_envs or (a.ndim and a.shape[0] != self.num_envs):
            raise ActionError(
                f"step() got actions of shape {a.shape}, but this BatchedVecEnv has {self.num_envs} slots "
                f"(one per learning seat of each copy): pass one action per slot, shape ({self.num_envs},)"
            )
        if a.dtype.kind not in "iu":
            if not (a.dtype.kind == "f" and np.all(np.isfinite(a) & (a == np.round(a)))):
                raise ActionError(f"step() got actions of dtype {a.dtype}; {self.action_space} needs whole numbers")
        a = a.reshape(self.num_envs).astype(np.int64) - self._start
        if a.size and (a.min() < 0 or a.max() >= self._n_actions):  # two reductions, no temporaries
            slot = int(np.flatnonzero((a < 0) | (a >= self._n_actions))[0])
            raise ActionError(
                f"action {int(a[slot]) + self._start} of slot {slot} (copy {slot // self._n_learn}, seat "
                f"{self.slot_seats[slot]!r}) is outside {self.action_space}; pass actions its action space allows"
            )
        return a

    def _non_finite(self, what: str, slot: int, when: str) -> NonFiniteError:
        return NonFiniteError(
            f"{what} is not finite (copy {slot // self._n_learn}, seat {self.slot_seats[slot]!r}, {when}). Fix the "
            "batched env so it emits finite values, or pass check_finite=False to let such values through"
        )

    def _check_obs(self, obs: np.ndarray, when: str) -> None:
        if obs.dtype.kind == "f" and not all_finite(obs):  # exact: then some row has a non-finite entry
            rows = ~np.isfinite(obs.reshape(self.num_envs, -1)).all(axis=1)
            raise self._non_finite("the observation", int(np.flatnonzero(rows)[0]), when)

    def _check_step(self, obs: np.ndarray, rews: np.ndarray) -> None:
        if not all_finite(rews):
            slot = int(np.flatnonzero(~np.isfinite(rews))[0])
            raise self._non_finite(f"the reward {rews[slot]}", slot, "at a step")
        self._check_obs(obs, "at a step")

    # ---- attributes and methods ----
    def _target(self, name: str) -> Any:
        if hasattr(self, name):
            return self
        return self.aht if self.aht is not None and hasattr(self.aht, name) else self.env

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """``attr_name`` of this VecEnv (else of the batched env), once per slot; ``"shadows"``: each slot's copy's."""
        slots = list(self._get_indices(indices))
        if attr_name == "render_mode":
            return [None] * len(slots)
        if attr_name == "shadows":
            sets = [
                {s for s, m in zip(self.learning_seats, row, strict=True) if m}
                for row in self.shadow_logic.mask.tolist()
            ]
            return [sets[i // self._n_learn] for i in slots]
        value = getattr(self._target(attr_name), attr_name)
        return [value] * len(slots)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set ``attr_name`` on this VecEnv (shared by every slot)."""
        setattr(self._target(attr_name), attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        """Call ``method_name`` once on the AHT sampler (``set_prior``) if it has it, else on the batched env."""
        owner = self.aht if self.aht is not None and hasattr(self.aht, method_name) else self.env
        result = getattr(owner, method_name)(*method_args, **method_kwargs)
        return [result] * len(list(self._get_indices(indices)))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """Always ``False``: the copies are no gymnasium envs."""
        return [False] * len(list(self._get_indices(indices)))

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs

    def render(self, mode: str | None = None) -> None:
        """Not supported (returns ``None``); render the batched env's copies with its own ``render``."""
        return None

    def close(self) -> None:
        self.closed = True


def batched_vec_env(
    env: BatchedEnv,
    tau: float = 0.0,
    *,
    seed: int | None = None,
    background: Mapping[str, Policy] | None = None,
    seat_id: bool = False,
    teams: Mapping[str, Sequence[str]] | None = None,
    learn: str | Sequence[str] | None = None,
    n_shadows: int = 1,
    monitor: bool = True,
    monitor_kwargs: dict[str, Any] | None = None,
    check_finite: bool = True,
    reward_infos: bool = True,
    step_infos: bool = True,
    population: Any = None,
    aht: AHTConfig | None = None,
    scenarios: ScenarioSet | None = None,
    device: Any = None,
) -> BatchedVecEnv | RoleVecMonitor:
    """A seeded, monitored :class:`BatchedVecEnv` (the batched twin of ``make_vec_env(lambda: srpo_wrap(...))``).

    ``seed``: copy ``k``'s first reset uses ``seed + k``. ``monitor``: wrap in
    :class:`~rqe_wrappers.sb3.monitor.RoleVecMonitor` (``monitor_kwargs`` go to it) so PPO logs
    ``rollout/ep_rew_mean`` (partner-role episodes). The other arguments: :class:`BatchedVecEnv`;
    ``population`` (and ``aht=AHTConfig(...)``, ``scenarios``) trains minimax-Bayes AHT with ``AHTCallback``.

    Example:
        >>> from rqe_wrappers.envs.cooking import BatchedCooking
        >>> venv = batched_vec_env(BatchedCooking(n_copies=256), tau=1.0, seed=0)
        >>> venv.num_envs, venv.observation_space.shape
        (512, (56,))
        >>> venv.close()
    """
    venv = BatchedVecEnv(
        env,
        tau,
        background=background,
        teams=teams,
        learn=learn,
        seat_id=seat_id,
        n_shadows=n_shadows,
        check_finite=check_finite,
        reward_infos=reward_infos,
        step_infos=step_infos,
        population=population,
        aht=aht,
        scenarios=scenarios,
        device=device,
    )
    if seed is not None:
        venv.seed(seed)
    if not isinstance(monitor, (bool, np.bool_)):
        raise ConfigError(f"monitor must be True or False, got {monitor!r}")
    return RoleVecMonitor(venv, **(monitor_kwargs or {})) if monitor else venv
