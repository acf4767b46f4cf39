"""The adapter's engine: a group of env copies stepped in one process, one slot per learning seat.

:class:`CopyGroup` is what :class:`~rqe_wrappers.sb3.vec_env.PettingZooVecEnv` runs in this process
(``n_workers=0``) or in each subprocess worker; :func:`find_attr` / :func:`put_attr` reach the
envs it wraps. The slot conventions are in docs/adapter.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import AECEnv, ParallelEnv

from rqe_wrappers.core.dispatch import by_api
from rqe_wrappers.core.spaces import describe_pair, first_mismatch
from rqe_wrappers.core.view import MASK_KEY, TrainerView, learner_snapshot, zero_observation
from rqe_wrappers.errors import ConfigError, NonFiniteError, SeatError, SpaceMismatchError
from rqe_wrappers.seats.background import BackgroundSeatsParallel, batch_background
from rqe_wrappers.seats.single_seat import single_seat

EnvFn = Callable[[], "ParallelEnv | AECEnv"]
INACTIVE_KEY = "inactive"


def space_problem(seats: Sequence[str], obs_spaces: Sequence[gym.Space], act_spaces: Sequence[gym.Space]) -> str | None:
    """Why one policy cannot learn on all ``seats`` (the first seat that differs), or ``None``."""
    m = first_mismatch(zip(seats, obs_spaces, act_spaces, strict=True))
    if m is None:
        return None
    (o0, o), (a0, a) = describe_pair(*m.observation), describe_pair(*m.action)
    return (
        "PettingZooVecEnv trains one policy on every learning seat, so all seats need one observation "
        f"space and one action space, but seat {m.reference!r} has observation {o0} / action {a0} "
        f"while seat {m.name!r} has observation {o} / action {a}. "
        "Pad them to a common space "
        "(supersuit.pad_observations_v0 / pad_action_space_v0), or take the other team out of training "
        "with background_seats(env, {seat: policy}) (srpo_wrap(..., fixed=...))"
    )


def find_attr(target, name: str):
    """``name`` on ``target`` or, failing that, on the envs it wraps (``.env`` / ``.aec_env`` chain)."""
    node, seen = target, set()
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        try:
            return getattr(node, name)
        except AttributeError:
            pass
        inner = getattr(node, "__dict__", {})
        node = inner.get("env", inner.get("aec_env"))
    if name == "render_mode":
        return None
    raise AttributeError(f"{type(target).__name__} (and the envs it wraps) has no attribute {name!r}")


def put_attr(target, name: str, value) -> None:
    """Set ``name`` where it lives in the wrapper chain (the outermost env if nowhere)."""
    node, seen = target, set()
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if name in getattr(node, "__dict__", {}) or hasattr(type(node), name):
            setattr(node, name, value)
            return
        inner = getattr(node, "__dict__", {})
        node = inner.get("env", inner.get("aec_env"))
    setattr(target, name, value)


def stack(items: list, space: gym.Space):
    """One batch from per-slot observations (arrays or dicts of arrays)."""
    if isinstance(space, gym.spaces.Dict):
        return {k: np.stack([o[k] for o in items]) for k in space.spaces}
    return np.stack(items)


def _no_duplicates(env, seats: list[str]) -> None:
    dup = sorted({str(s) for s in seats if seats.count(s) > 1})
    if dup:
        raise SeatError(
            f"{env} lists seats {dup} more than once in possible_agents {seats}; each learning seat needs its "
            "own slot, so make the names unique"
        )


def _background_layer(target) -> BackgroundSeatsParallel | None:
    try:
        layer = find_attr(target, "background_layer")
    except AttributeError:
        return None
    return layer if isinstance(layer, BackgroundSeatsParallel) else None


class _DictSink:
    """``list``-like ``__setitem__`` that records into a dict (reset infos of autoreset slots)."""

    def __init__(self, d: dict):
        self.d = d

    def __setitem__(self, key, value):
        self.d[key] = value


class CopyGroup:
    """Env copies ``copy_ids`` in one process: steps them, resets finished ones, stacks the slots."""

    def __init__(
        self,
        env_fn: EnvFn,
        copy_ids: Sequence[int],
        snapshot_name: str,
        reseed_episodes: bool,
        check_finite: bool = True,
    ):
        self.copy_ids = list(copy_ids)
        self.check_finite = check_finite
        self.reseed_episodes = reseed_episodes
        self.snapshot_name = snapshot_name
        self.targets: list[Any] = []  # what env_fn returned: get_attr / env_method reach these
        self.envs: list[ParallelEnv] = []
        self.seats: list[list[str]] = []
        self.offsets: list[int] = []
        self._aec_view: TrainerView | None = None
        self.uses_snapshot = False  # does the learner's snapshot play any seat here?
        slot_seats, obs_spaces, act_spaces = [], [], []
        n = 0
        for cid in self.copy_ids:
            target = env_fn()
            if any(target is t for t in self.targets):
                raise ConfigError(
                    "env_fn returned the same env object twice; it must build a new env on every call "
                    "(e.g. lambda: simple_tag_v3.parallel_env(), not lambda: env)"
                )
            env, seats = by_api(
                target, parallel=self._parallel_copy, aec=functools.partial(self._aec_copy, cid=cid), what="env_fn()"
            )
            for s in seats:
                obs_spaces.append(target.observation_space(s))
                act_spaces.append(target.action_space(s))
            self.targets.append(target)
            self.envs.append(env)
            self.seats.append(seats)
            self.offsets.append(n)
            slot_seats.extend(seats)
            n += len(seats)
        problem = space_problem(slot_seats, obs_spaces, act_spaces)
        if problem:
            raise SpaceMismatchError(problem)
        self.n_slots = n
        self.slot_seats = slot_seats
        self.view = self._aec_view or TrainerView(obs_spaces[0], act_spaces[0])
        self.observation_space = self.view.space
        self.action_space = act_spaces[0]
        self.discrete = isinstance(self.action_space, gym.spaces.Discrete)
        self.act_shape = self.action_space.shape
        self.live: list[list[bool]] = [[False] * len(s) for s in self.seats]
        self.seat_sets = [frozenset(s) for s in self.seats]
        self.slot_copy = [c for c, s in enumerate(self.seats) for _ in s]
        self.ep_steps = [0] * len(self.envs)  # steps of each copy's current episode
        self.ep_rngs: list[np.random.Generator | None] = [None] * len(self.envs)
        layers = [_background_layer(t) for t in self.targets]
        self.bg_layers = [x for x in layers if x is not None]  # background seats: one forward pass per step

    @staticmethod
    def _parallel_copy(env: ParallelEnv) -> tuple[ParallelEnv, list[str]]:
        seats = list(env.possible_agents)
        if not seats:
            raise SeatError(f"{env} has no learning seats (possible_agents is empty)")
        _no_duplicates(env, seats)
        return env, seats

    def _aec_copy(self, env: AECEnv, cid: int) -> tuple[ParallelEnv, list[str]]:
        """Copy ``cid`` learns one seat; the learner's snapshot plays the others."""
        every = list(env.possible_agents)
        if not every:
            raise SeatError(f"{env} has no learning seats (possible_agents is empty)")
        _no_duplicates(env, every)
        problem = space_problem(every, [env.observation_space(s) for s in every], [env.action_space(s) for s in every])
        if problem:  # the snapshot of the one learner plays every other seat
            raise SpaceMismatchError(problem)
        seat = every[cid % len(every)]
        if self._aec_view is None:
            self._aec_view = TrainerView(env.observation_space(seat), env.action_space(seat))
        others = None
        if len(every) > 1:
            self.uses_snapshot = True
            others = learner_snapshot(
                env.observation_space(seat),
                env.action_space(seat),
                self.snapshot_name,
                view=self._aec_view,
                who=f"the snapshot shared as {self.snapshot_name!r} (it plays the other seats of AEC copies)",
            )
        return single_seat(env, seat, others), [seat]

    def describe(self) -> dict:
        return {
            "n_slots": self.n_slots,
            "uses_snapshot": self.uses_snapshot,
            "copy_slots": [len(s) for s in self.seats],
            "slot_seats": self.slot_seats,
            "observation_space": self.observation_space,
            "action_space": self.action_space,
        }

    # -- helpers --
    def _new_masks(self):
        w = self.view.mask_width
        return None if w is None else np.ones((self.n_slots, w), dtype=bool)

    def _reset_copy(self, c: int, seed, options, obs_out, masks, reset_infos) -> None:
        env, seats, off = self.envs[c], self.seats[c], self.offsets[c]
        ep_rng = self.ep_rngs[c]
        if seed is None and self.reseed_episodes and ep_rng is not None:
            seed = int(ep_rng.integers(2**31))
        obs, infos = env.reset(seed=seed, options=options or None)
        self.ep_steps[c] = 0
        agents = env.agents
        unknown = [a for a in agents if a not in seats]
        if unknown:
            raise SeatError(
                f"copy {self.copy_ids[c]} reset with seats {unknown} that were not in possible_agents {seats} when "
                "PettingZooVecEnv was built; the set of learning seats must stay fixed"
            )
        view = self.view
        for i, s in enumerate(seats):
            slot = off + i
            info = infos.get(s) or {}
            reset_infos[slot] = info
            if s in agents and s in obs:
                o = obs[s]
                obs_out[slot] = view(o)
                if masks is not None:
                    m = view.mask_of(o, info)
                    if m is not None:
                        masks[slot] = m
            else:
                obs_out[slot] = view.zero
        self.live[c] = [s in agents and s in obs for s in seats]

    # -- commands --
    def reset(self, seeds: Sequence[int | None], options: Sequence[dict | None]):
        obs_out: list = [None] * self.n_slots
        masks = self._new_masks()
        reset_infos: list = [{}] * self.n_slots
        for c, (seed, opt) in enumerate(zip(seeds, options, strict=True)):
            if seed is not None:
                self.ep_rngs[c] = np.random.default_rng(int(seed))
            self._reset_copy(c, seed, opt, obs_out, masks, reset_infos)
        batch = stack(obs_out, self.observation_space)
        if self.check_finite:
            self._check_obs(batch, None, range(self.n_slots))
        return batch, masks, reset_infos

    def step(self, actions: np.ndarray):
        n = self.n_slots
        acts = actions.reshape(n).tolist() if self.discrete else actions.reshape((n, *self.act_shape))
        view, zero, identity = self.view, self.view.zero, self.view.identity
        mask_in_obs = view.mask_in_obs
        obs_out: list = [zero] * n
        rews = np.zeros(n, dtype=np.float32)
        dones = np.zeros(n, dtype=bool)
        infos: list = [None] * n
        masks = self._new_masks()
        check_masks = masks is not None
        resets: dict[int, dict] = {}
        stepped = [k + 1 for k in self.ep_steps]  # each copy's step number, kept for copies that reset
        if len(self.bg_layers) > 1:
            batch_background(self.bg_layers)
        for c, env in enumerate(self.envs):
            seats, off, live = self.seats[c], self.offsets[c], self.live[c]
            obs, rew, term, trunc, info = env.step({s: acts[off + i] for i, s in enumerate(seats) if live[i]})
            self.ep_steps[c] += 1
            agents = env.agents
            seat_set = self.seat_sets[c]
            if not (seat_set.issuperset(agents) and seat_set.issuperset(obs)):
                self._unknown_agents(c, [*agents, *obs])
            new_live = []
            for i, s in enumerate(seats):
                slot = off + i
                if live[i]:
                    inf = dict(info.get(s) or ())
                    rews[slot] = rew.get(s, 0.0)
                    t, tr = bool(term.get(s, False)), bool(trunc.get(s, False))
                    o = obs.get(s)
                    if t or tr or s not in agents:
                        # the seat's episode ends here: SB3 sees done once; the slot idles until the copy resets
                        dones[slot] = True
                        inf["terminal_observation"] = zero_observation(self.observation_space) if o is None else view(o)
                        inf["TimeLimit.truncated"] = tr and not t
                        new_live.append(False)
                    else:
                        obs_out[slot] = o if identity else view(o)
                        if check_masks:
                            m = o[MASK_KEY] if mask_in_obs else inf.get(MASK_KEY)
                            if m is not None:
                                masks[slot] = m
                        new_live.append(True)
                    infos[slot] = inf
                elif s in agents and s in obs:  # a seat that joins mid-episode
                    o, inf = obs[s], dict(info.get(s) or {})
                    obs_out[slot] = view(o)
                    if check_masks:
                        m = self.view.mask_of(o, inf)
                        if m is not None:
                            masks[slot] = m
                    infos[slot] = inf
                    new_live.append(True)
                else:  # finished early (or not yet in): zero observation, zero reward, never done
                    infos[slot] = {INACTIVE_KEY: True}
                    new_live.append(False)
            self.live[c] = new_live
            if not agents:
                reset_infos: dict[int, dict] = {}
                self._reset_copy(c, None, None, obs_out, masks, _DictSink(reset_infos))
                resets.update(reset_infos)
        batch = stack(obs_out, self.observation_space)
        if self.check_finite:
            self._check_step(batch, rews, dones, infos, stepped, resets)
        return batch, rews, dones, infos, masks, resets

    # -- faults --
    def _unknown_agents(self, c: int, names: list) -> None:
        unknown = sorted({str(a) for a in names if a not in self.seat_sets[c]})
        raise SeatError(
            f"copy {self.copy_ids[c]} at step {self.ep_steps[c]} of its episode has agents {unknown} that are not "
            f"among its learning seats {self.seats[c]} (possible_agents when PettingZooVecEnv was built). Agents "
            "may leave and rejoin, but every one must be in possible_agents from the start: list it there "
            "(SB3 needs a fixed number of slots)"
        )

    def _where(self, slot: int, stepped: Sequence[int] | None, reset_slots) -> str:
        c = self.slot_copy[slot]
        seat = self.slot_seats[slot]
        if stepped is None:
            when = "at reset"
        elif slot in reset_slots:
            when = f"at the reset after step {stepped[c]} of its episode"
        else:
            when = f"at step {stepped[c]} of its episode"
        return f"copy {self.copy_ids[c]}, seat {seat!r}, {when}"

    def _non_finite(self, what: str, where: str) -> NonFiniteError:
        return NonFiniteError(
            f"{what} is not finite ({where}). PPO would train on it and fail on NaN logits rollouts later. "
            "Fix the env (or the wrapper computing it) so it emits finite values, e.g. guard a division or "
            "clip; or pass PettingZooVecEnv(..., check_finite=False) to let such values through"
        )

    def _check_obs(self, batch, stepped, reset_slots) -> None:
        for key, x in batch.items() if isinstance(batch, dict) else [(None, batch)]:
            if x.dtype.kind not in "fc" or np.isfinite(x).all():
                continue
            rows = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
            slot = int(np.flatnonzero(rows)[0])
            bad = x[slot].reshape(-1)[~np.isfinite(x[slot].reshape(-1))][:3].tolist()
            part = "the observation" if key is None else f"observation[{key!r}]"
            raise self._non_finite(f"{part} (values {bad})", self._where(slot, stepped, reset_slots))

    def _check_step(self, batch, rews: np.ndarray, dones: np.ndarray, infos: list, stepped, resets) -> None:
        if not np.isfinite(rews).all():
            slot = int(np.flatnonzero(~np.isfinite(rews))[0])
            raise self._non_finite(f"the reward {rews[slot]}", self._where(slot, stepped, ()))
        self._check_obs(batch, stepped, resets)
        for done in np.flatnonzero(dones).tolist():
            term = infos[done].get("terminal_observation")
            if term is None:
                continue
            for key, x in term.items() if isinstance(term, dict) else [(None, term)]:
                x = np.asarray(x)
                if x.dtype.kind in "fc" and not np.isfinite(x).all():
                    part = "the terminal observation" if key is None else f"terminal observation[{key!r}]"
                    raise self._non_finite(part, self._where(done, stepped, ()))

    def get_attr(self, name: str, copies: Sequence[int]) -> list:
        return [find_attr(self.targets[c], name) for c in copies]

    def set_attr(self, name: str, value, copies: Sequence[int]) -> None:
        for c in copies:
            put_attr(self.targets[c], name, value)

    def env_method(self, name: str, args, kwargs, copies: Sequence[int]) -> list:
        return [find_attr(self.targets[c], name)(*args, **kwargs) for c in copies]

    def close(self) -> None:
        for env in self.envs:
            env.close()
