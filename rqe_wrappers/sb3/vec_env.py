"""PettingZoo -> Stable-Baselines3 ``VecEnv``: one vector slot per learning seat.

:class:`PettingZooVecEnv` runs ``n_copies`` copies of a PettingZoo env (in this process or split
over subprocess workers) and shows SB3 one *slot* per learning seat of every copy, in the order
``copy 0: seat 0, seat 1, ..., copy 1: seat 0, ...``. ``num_envs`` is the number of slots.

- **Parallel envs**: every seat in ``possible_agents`` is a slot (seats taken out with
  :func:`~rqe_wrappers.seats.background.background_seats` are already invisible).
- **AEC (turn-based) envs**: SB3 steps every slot in lockstep and a slot cannot wait for its
  turn, so each copy has *one* learning seat: copy ``i`` learns ``possible_agents[i % k]``; the
  other seats are played by the learner's lagged snapshot
  (:class:`~rqe_wrappers.core.snapshot.SnapshotPolicy`, refreshed with :meth:`share_snapshot`)
  through :func:`~rqe_wrappers.seats.single_seat.single_seat`. Use ``n_copies`` a multiple of
  ``k`` so every seat learns equally often.
- **Truncation is not termination**: when a slot's episode ends its info carries
  ``terminal_observation`` and ``TimeLimit.truncated`` (SB3's ``DummyVecEnv`` convention), so
  PPO bootstraps the value at time limits; the copy is reset automatically.
- **Action masks**: ``obs["action_mask"]`` (stripped from what SB3 sees; a lone remaining
  ``"observation"`` key is unwrapped) or ``info["action_mask"]`` feed :meth:`action_masks`, which
  sb3-contrib's ``MaskablePPO`` reads.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
from pettingzoo import AECEnv, ParallelEnv
from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper, VecEnv, VecEnvIndices

from rqe_wrappers._compat import renamed_argument
from rqe_wrappers.errors import ConfigError, SeatError, SpaceMismatchError, UnsupportedSpaceError
from rqe_wrappers.core.policy import Policy, check_policy_spaces
from rqe_wrappers.core.snapshot import SnapshotPolicy, share, shared
from rqe_wrappers.seats.single_seat import single_seat

EnvFn = Callable[[], "ParallelEnv | AECEnv"]
MASK_KEY = "action_mask"
INACTIVE_KEY = "inactive"


# ---- observation view: what SB3 sees -------------------------------------------------------------
def _zeros(space: gym.Space):
    if isinstance(space, gym.spaces.Dict):
        return {k: _zeros(s) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Box):
        return np.zeros(space.shape, space.dtype)
    if isinstance(space, gym.spaces.Discrete):
        return np.asarray(space.start, space.dtype)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return np.asarray(getattr(space, "start", np.zeros(space.nvec.shape)), space.dtype)
    if isinstance(space, gym.spaces.MultiBinary):
        return np.zeros(space.shape, space.dtype)
    raise UnsupportedSpaceError(
        f"PettingZooVecEnv supports Box, Discrete, MultiDiscrete, MultiBinary and Dict observations "
        f"(what SB3 supports), got {type(space).__name__}; flatten it first (e.g. supersuit.flatten_v0)"
    )


def _mask_width(action_space: gym.Space) -> int | None:
    if isinstance(action_space, gym.spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, gym.spaces.MultiDiscrete):
        return int(np.sum(action_space.nvec))
    return None


class _View:
    """Turns one env observation into what SB3 sees and finds its action mask."""

    def __init__(self, raw_space: gym.Space, action_space: gym.Space):
        self.raw_space = raw_space
        self.keys: list[str] | None = None  # Dict keys kept; None = observation passed through
        self.unwrap = False  # {"observation": x, "action_mask": m} -> x
        self.mask_in_obs = False
        space = raw_space
        if isinstance(raw_space, gym.spaces.Dict) and MASK_KEY in raw_space.spaces:
            self.mask_in_obs = True
            rest = {k: s for k, s in raw_space.spaces.items() if k != MASK_KEY}
            if not rest:
                raise UnsupportedSpaceError("the observation Dict holds only an action mask; nothing to learn from")
            if list(rest) == ["observation"]:
                self.unwrap, space = True, rest["observation"]
            else:
                self.keys, space = list(rest), gym.spaces.Dict(rest)
        self.space = space
        self.identity = not self.unwrap and self.keys is None
        self.zero = _zeros(space)
        self.mask_width = _mask_width(action_space)

    def __call__(self, obs):
        """Works on one observation and on a batch alike (it only selects keys)."""
        if self.unwrap:
            return obs["observation"]
        if self.keys is not None:
            return {k: obs[k] for k in self.keys}
        return obs


class _ViewedPolicy(Policy):
    """Shows the learner's snapshot exactly what the learner sees through the adapter.

    Before a newly shared snapshot plays, its spaces are checked against what the learner
    sees: a stale snapshot left under the same name by another run in this process fails loudly
    instead of playing (or crashing) with the wrong observations.
    """

    def __init__(self, inner: SnapshotPolicy, view: _View):
        super().__init__(view.raw_space, inner.action_space)
        self.inner, self.view = inner, view
        self._checked: Policy | None = None

    def initial_state(self, batch_size):
        return self.inner.initial_state(batch_size)

    def act(self, obs, *, rng, mask=None, state=None):
        live = shared(self.inner.name)
        if live is not None and live is not self._checked:
            check_policy_spaces(
                live, self.view.space, self.action_space,
                f"the snapshot shared as {self.inner.name!r} (it plays the other seats of AEC copies)",
            )
            self._checked = live
        return self.inner.act(self.view(obs), rng=rng, mask=mask, state=state)

    def __repr__(self) -> str:
        return repr(self.inner)


def _stack(items: list, space: gym.Space):
    if isinstance(space, gym.spaces.Dict):
        return {k: np.stack([o[k] for o in items]) for k in space.spaces}
    return np.stack(items)


def _concat(parts: list, space: gym.Space):
    if len(parts) == 1:
        return parts[0]
    if isinstance(space, gym.spaces.Dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in space.spaces}
    return np.concatenate(parts)


def _short(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Box):
        return f"Box(shape={space.shape}, {space.dtype})"
    if isinstance(space, gym.spaces.Dict):
        return "Dict(" + ", ".join(f"{k}: {_short(v)}" for k, v in space.spaces.items()) + ")"
    return str(space)


def _space_problem(seats: Sequence[str], obs_spaces: Sequence[gym.Space], act_spaces: Sequence[gym.Space]) -> str | None:
    def pair(x, y):  # compact, unless only the bounds differ
        return (_short(x), _short(y)) if _short(x) != _short(y) or x == y else (str(x), str(y))

    for s, o, a in zip(seats, obs_spaces, act_spaces):
        if o != obs_spaces[0] or a != act_spaces[0]:
            (o0, o), (a0, a) = pair(obs_spaces[0], o), pair(act_spaces[0], a)
            return (
                "PettingZooVecEnv trains one policy on every learning seat, so all seats need one observation "
                f"space and one action space, but seat {seats[0]!r} has observation {o0} / action {a0} "
                f"while seat {s!r} has observation {o} / action {a}. "
                "Pad them to a common space "
                "(supersuit.pad_observations_v0 / pad_action_space_v0), or take the other team out of training "
                "with background_seats(env, {seat: policy}) (srpo_wrap(..., fixed=...))"
            )
    return None


def _find(target, name: str):
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


def _set(target, name: str, value) -> None:
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


# ---- a group of env copies living in one process -------------------------------------------------
class _CopyGroup:
    """Env copies ``copy_ids`` in one process: steps them, resets finished ones, stacks the slots."""

    def __init__(self, env_fn: EnvFn, copy_ids: Sequence[int], snapshot_name: str, reseed_episodes: bool):
        self.copy_ids = list(copy_ids)
        self.reseed_episodes = reseed_episodes
        self.targets: list[Any] = []  # what env_fn returned: get_attr / env_method reach these
        self.envs: list[ParallelEnv] = []
        self.seats: list[list[str]] = []
        self.offsets: list[int] = []
        view = None
        slot_seats, obs_spaces, act_spaces = [], [], []
        n = 0
        for cid in self.copy_ids:
            target = env_fn()
            if any(target is t for t in self.targets):
                raise ConfigError(
                    "env_fn returned the same env object twice; it must build a new env on every call "
                    "(e.g. lambda: simple_tag_v3.parallel_env(), not lambda: env)"
                )
            if isinstance(target, ParallelEnv):
                env, seats = target, list(target.possible_agents)
                if not seats:
                    raise SeatError(f"{target} has no learning seats (possible_agents is empty)")
                for s in seats:
                    obs_spaces.append(env.observation_space(s))
                    act_spaces.append(env.action_space(s))
            elif isinstance(target, AECEnv):
                every = list(target.possible_agents)
                if not every:
                    raise SeatError(f"{target} has no learning seats (possible_agents is empty)")
                problem = _space_problem(every, [target.observation_space(s) for s in every],
                                         [target.action_space(s) for s in every])
                if problem:  # the snapshot of the one learner plays every other seat
                    raise SpaceMismatchError(problem)
                seat = every[cid % len(every)]
                if view is None:
                    view = _View(target.observation_space(seat), target.action_space(seat))
                others = None
                if len(every) > 1:
                    snap = SnapshotPolicy(view.space, target.action_space(seat), name=snapshot_name)
                    others = _ViewedPolicy(snap, view)
                env, seats = single_seat(target, seat, others), [seat]
                obs_spaces.append(target.observation_space(seat))
                act_spaces.append(target.action_space(seat))
            else:
                raise TypeError(f"env_fn must return a PettingZoo ParallelEnv or AECEnv, got {type(target).__name__}")
            self.targets.append(target)
            self.envs.append(env)
            self.seats.append(seats)
            self.offsets.append(n)
            slot_seats.extend(seats)
            n += len(seats)
        problem = _space_problem(slot_seats, obs_spaces, act_spaces)
        if problem:
            raise SpaceMismatchError(problem)
        self.n_slots = n
        self.slot_seats = slot_seats
        self.view = view or _View(obs_spaces[0], act_spaces[0])
        self.observation_space = self.view.space
        self.action_space = act_spaces[0]
        self.discrete = isinstance(self.action_space, gym.spaces.Discrete)
        self.act_shape = self.action_space.shape
        self.live: list[list[bool]] = [[False] * len(s) for s in self.seats]
        self.ep_rngs: list[np.random.Generator | None] = [None] * len(self.envs)

    def describe(self) -> dict:
        return {
            "n_slots": self.n_slots,
            "copy_slots": [len(s) for s in self.seats],
            "slot_seats": self.slot_seats,
            "observation_space": self.observation_space,
            "action_space": self.action_space,
        }

    # -- helpers --
    def _new_masks(self):
        w = self.view.mask_width
        return None if w is None else np.ones((self.n_slots, w), dtype=bool)

    def _mask_of(self, raw_obs, info):
        if self.view.mask_in_obs:
            return raw_obs[MASK_KEY]
        return info.get(MASK_KEY) if info else None

    def _reset_copy(self, c: int, seed, options, obs_out, masks, reset_infos) -> None:
        env, seats, off = self.envs[c], self.seats[c], self.offsets[c]
        if seed is None and self.reseed_episodes and self.ep_rngs[c] is not None:
            seed = int(self.ep_rngs[c].integers(2**31))
        obs, infos = env.reset(seed=seed, options=options or None)
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
                    m = self._mask_of(o, info)
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
        for c, (seed, opt) in enumerate(zip(seeds, options)):
            if seed is not None:
                self.ep_rngs[c] = np.random.default_rng(int(seed))
            self._reset_copy(c, seed, opt, obs_out, masks, reset_infos)
        return _stack(obs_out, self.observation_space), masks, reset_infos

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
        for c, env in enumerate(self.envs):
            seats, off, live = self.seats[c], self.offsets[c], self.live[c]
            obs, rew, term, trunc, info = env.step({s: acts[off + i] for i, s in enumerate(seats) if live[i]})
            agents = env.agents
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
                        inf["terminal_observation"] = _zeros(self.observation_space) if o is None else view(o)
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
                        m = self._mask_of(o, inf)
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
        return _stack(obs_out, self.observation_space), rews, dones, infos, masks, resets

    def get_attr(self, name: str, copies: Sequence[int]) -> list:
        return [_find(self.targets[c], name) for c in copies]

    def set_attr(self, name: str, value, copies: Sequence[int]) -> None:
        for c in copies:
            _set(self.targets[c], name, value)

    def env_method(self, name: str, args, kwargs, copies: Sequence[int]) -> list:
        return [_find(self.targets[c], name)(*args, **kwargs) for c in copies]

    def close(self) -> None:
        for env in self.envs:
            env.close()


class _DictSink:
    """``list``-like ``__setitem__`` that records into a dict (reset infos of autoreset slots)."""

    def __init__(self, d: dict):
        self.d = d

    def __setitem__(self, key, value):
        self.d[key] = value


# ---- subprocess workers -------------------------------------------------------------------------
def _worker(remote, parent_remote, payload: CloudpickleWrapper) -> None:
    parent_remote.close()
    try:
        import torch

        torch.set_num_threads(1)  # each worker is one env-stepping thread; also safe after fork
    except ImportError:  # pragma: no cover
        pass
    try:
        group = _CopyGroup(*payload.var)
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which raises it
        _send_error(remote, e)
        remote.close()
        return
    remote.send(("ok", group.describe()))
    while True:
        try:
            cmd, data = remote.recv()
        except (EOFError, KeyboardInterrupt):
            break
        try:
            if cmd == "step":
                out = group.step(data)
            elif cmd == "reset":
                out = group.reset(*data)
            elif cmd == "get_attr":
                out = group.get_attr(*data)
            elif cmd == "set_attr":
                out = group.set_attr(*data)
            elif cmd == "env_method":
                out = group.env_method(*data)
            elif cmd == "share":
                name, policy = cloudpickle.loads(data)
                out = share(name, policy)
            elif cmd == "close":
                group.close()
                remote.send(("ok", None))
                break
            else:
                raise NotImplementedError(f"unknown worker command {cmd!r}")
        except BaseException as e:  # noqa: BLE001
            _send_error(remote, e)
            continue
        remote.send(("ok", out))
    remote.close()


def _send_error(remote, e: BaseException) -> None:
    tb = traceback.format_exc()
    try:
        remote.send(("error", e, tb))
    except Exception:  # noqa: BLE001 - the exception itself does not pickle
        remote.send(("error", RuntimeError(f"{type(e).__name__}: {e}"), tb))


def _recv(remote):
    return _recv_all([remote])[0]


def _recv_all(remotes) -> list:
    """One reply from each worker (all of them, so none is left unread), then the first error raised."""
    replies = [r.recv() for r in remotes]
    for status, *payload in replies:
        if status == "error":
            exc, tb = payload
            exc.add_note(f"raised in a PettingZooVecEnv worker:\n{tb}")
            raise exc
    return [payload[0] for _, *payload in replies]


def default_start_method() -> str:
    """``forkserver`` where available, else ``spawn`` (both safe with torch threads in the parent)."""
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def _context(method: str):
    """The multiprocessing context; a forkserver preloads this module (torch, SB3) once.

    Its workers are then forked from a process that has already imported them: starting a worker
    takes well under a second instead of a fresh torch import each (seconds). The preload only
    applies if this process has not started its forkserver yet.
    """
    ctx = mp.get_context(method)
    if method == "forkserver":
        from multiprocessing import forkserver

        current = list(getattr(forkserver._forkserver, "_preload_modules", None) or ["__main__"])
        if __name__ not in current:
            ctx.set_forkserver_preload([*current, __name__])
    return ctx


# ---- the VecEnv ---------------------------------------------------------------------------------
class PettingZooVecEnv(VecEnv):
    """A PettingZoo env (parallel or AEC) as an SB3 ``VecEnv`` with one slot per learning seat.

    Args:
        env_fn: builds one env copy (a new object per call); may return a ``ParallelEnv`` or an
            ``AECEnv``, already wrapped (``srpo_wrap``, ``background_seats``, SuperSuit, ...).
        n_copies: number of env copies. Parallel env: ``n_copies * len(possible_agents)`` slots. AEC
            env: ``n_copies`` slots, copy ``i`` learning seat ``possible_agents[i % k]``.
        n_workers: ``0`` steps every copy in this process; ``> 0`` splits the copies over that many
            subprocesses (at most ``n_copies``), talking over pipes like SB3's ``SubprocVecEnv``.
        start_method: multiprocessing start method for the workers (default
            :func:`default_start_method`). With ``spawn``/``forkserver`` a script must create the
            env under ``if __name__ == "__main__":``.
        snapshot_name: the :func:`~rqe_wrappers.core.snapshot.share` name whose policy plays the other
            seats of AEC copies.
        reseed_episodes: ``False`` (default) follows SB3's ``DummyVecEnv``: only the first reset
            after :meth:`seed` gets a seed, later automatic resets get ``seed=None`` and the env
            keeps its own random stream (gymnasium's convention, which this library's wrappers
            follow). ``True``: every later reset of copy ``j`` gets a seed drawn from a generator
            seeded with ``seed + j``, so runs reproduce even with envs that draw fresh entropy on
            ``reset(seed=None)``; it costs a seeded reset per episode (about 0.2 ms on Tag, far
            more on envs that rebuild themselves when seeded).

    Episode ends. When a seat's episode ends (terminated, truncated, or removed from ``agents``)
    its slot reports ``done`` once, with ``infos[i]["terminal_observation"]`` and
    ``infos[i]["TimeLimit.truncated"] = truncated and not terminated``; the copy resets when all
    its agents are gone and the slot then shows the new episode's first observation (its
    ``reset_infos[i]`` is updated). A seat that finishes *before* the rest of its copy idles until
    the copy resets: zero observation, zero reward, ``done=False``, ``infos[i]["inactive"] = True``
    and an all-true action mask. The idle stretch never reports a second ``done`` (so episode
    counts and ``VecMonitor`` returns stay right); its rows carry zero reward and do not bootstrap
    into the finished episode (the ``done`` cut it), only into the next one. Callbacks that want to
    skip those rows read the ``inactive`` flag. Recurrent policies see the idle zeros run into the
    next episode without an episode-start flag.

    Attributes, methods, seeds. ``get_attr``/``set_attr``/``env_method`` reach the env ``env_fn``
    returned for each slot's copy (falling back along the wrapped ``.env`` chain); slots of one
    copy share it, and ``env_method`` calls a method once per copy and gives its result to each of
    that copy's slots. ``env_method("action_masks")`` returns per-slot masks (for ``MaskablePPO``).
    :meth:`seed` makes copy ``j``'s next reset use ``seed + j``.

    Example:
        >>> from rqe_wrappers.envs.matrix import coordination_game
        >>> from rqe_wrappers import srpo_wrap
        >>> venv = PettingZooVecEnv(lambda: srpo_wrap(coordination_game(), tau=1.0), n_copies=2)
        >>> venv.num_envs, venv.observation_space.shape
        (4, (3,))
        >>> _ = venv.seed(0); obs = venv.reset()
        >>> obs.shape
        (4, 3)
        >>> venv.close()
    """

    def __init__(
        self,
        env_fn: EnvFn,
        n_copies: int = 1,
        *,
        n_workers: int = 0,
        start_method: str | None = None,
        snapshot_name: str = "learner",
        reseed_episodes: bool = False,
        n_envs: int | None = None,
    ):
        n_copies = renamed_argument("n_envs", n_envs, "n_copies", n_copies, default=1)
        if not callable(env_fn):
            raise ConfigError(
                f"env_fn must be a function that builds a new env, got {type(env_fn).__name__}; "
                "write PettingZooVecEnv(lambda: my_env(), n_copies)"
            )
        if isinstance(n_copies, bool) or not isinstance(n_copies, (int, np.integer)) or n_copies < 1:
            raise ConfigError(f"n_copies must be an integer >= 1, got {n_copies!r}")
        if isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer)) or n_workers < 0:
            raise ConfigError(f"n_workers must be an integer >= 0 (0 = in this process), got {n_workers!r}")
        if start_method is not None and start_method not in mp.get_all_start_methods():
            raise ConfigError(f"start_method must be one of {mp.get_all_start_methods()}, got {start_method!r}")
        self.n_copies = int(n_copies)
        self.n_workers = min(int(n_workers), self.n_copies)
        self.closed = False
        self.waiting = False
        self._local: _CopyGroup | None = None
        self.remotes: list = []
        self.processes: list = []
        self.start_method: str | None = None  # of the workers, if any
        args = (snapshot_name, bool(reseed_episodes))
        if self.n_workers == 0:
            self._local = _CopyGroup(env_fn, range(self.n_copies), *args)
            self._groups = [list(range(self.n_copies))]
            descriptions = [self._local.describe()]
        else:
            self._groups = [[int(c) for c in a] for a in np.array_split(np.arange(self.n_copies), self.n_workers)]
            self.start_method = start_method or default_start_method()
            ctx = _context(self.start_method)
            for copies in self._groups:
                remote, work_remote = ctx.Pipe()
                payload = CloudpickleWrapper((env_fn, copies, *args))
                proc = ctx.Process(target=_worker, args=(work_remote, remote, payload), daemon=True)
                proc.start()
                work_remote.close()
                self.remotes.append(remote)
                self.processes.append(proc)
            try:
                descriptions = _recv_all(self.remotes)
            except BaseException:
                self._shutdown()
                raise
        first = descriptions[0]
        for d in descriptions[1:]:
            if d["observation_space"] != first["observation_space"] or d["action_space"] != first["action_space"]:
                self._shutdown()
                raise SpaceMismatchError(
                    _space_problem([first["slot_seats"][0], d["slot_seats"][0]],
                                   [first["observation_space"], d["observation_space"]],
                                   [first["action_space"], d["action_space"]])
                )
        # slot bookkeeping
        self.slot_seats: list[str] = []
        self._slot_copy: list[int] = []
        self._group_slots: list[tuple[int, int]] = []
        self._copy_group: dict[int, int] = {}
        start = 0
        for g, (copies, d) in enumerate(zip(self._groups, descriptions)):
            self._group_slots.append((start, start + d["n_slots"]))
            start += d["n_slots"]
            self.slot_seats.extend(d["slot_seats"])
            for c in copies:
                self._copy_group[c] = g
        for copies, d in zip(self._groups, descriptions):
            for c, k in zip(copies, d["copy_slots"]):
                self._slot_copy.extend([c] * k)
        self._copy_seeds: list[int | None] = [None] * self.n_copies
        self._masks: np.ndarray | None = None
        super().__init__(start, first["observation_space"], first["action_space"])
        self._mask_width = _mask_width(self.action_space)

    # ---- SB3 VecEnv API ----
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Copy ``j``'s next reset uses ``seed + j``; returns the seed of each slot's copy."""
        if seed is None:
            seed = int(np.random.randint(0, np.iinfo(np.uint32).max, dtype=np.uint32))
        self._copy_seeds = [int(seed) + j for j in range(self.n_copies)]
        self._seeds = [self._copy_seeds[c] for c in self._slot_copy]
        return list(self._seeds)

    def _copy_options(self) -> list:
        opts: list = [None] * self.n_copies
        for slot, c in enumerate(self._slot_copy):
            if opts[c] is None and self._options[slot]:
                opts[c] = self._options[slot]
        return opts

    def reset(self):
        seeds, opts = self._copy_seeds, self._copy_options()
        if self._local is not None:
            obs, masks, infos = self._local.reset(seeds, opts)
            parts = [(obs, masks, infos)]
        else:
            for r, copies in zip(self.remotes, self._groups):
                r.send(("reset", ([seeds[c] for c in copies], [opts[c] for c in copies])))
            parts = _recv_all(self.remotes)
        self.reset_infos = [i for p in parts for i in p[2]]
        self._masks = self._join_masks([p[1] for p in parts])
        self._copy_seeds = [None] * self.n_copies
        self._reset_seeds()
        self._reset_options()
        return _concat([p[0] for p in parts], self.observation_space)

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions)
        if self._local is not None:
            self._actions = actions
        else:
            for r, (a, b) in zip(self.remotes, self._group_slots):
                r.send(("step", actions[a:b]))
            self.waiting = True

    def step_wait(self):
        if self._local is not None:
            obs, rews, dones, infos, masks, resets = self._local.step(self._actions)
            for slot, info in resets.items():
                self.reset_infos[slot] = info
            self._masks = masks
            return obs, rews, dones, infos
        self.waiting = False
        parts = _recv_all(self.remotes)
        infos: list = []
        for (a, _), p in zip(self._group_slots, parts):
            infos.extend(p[3])
            for slot, info in p[5].items():
                self.reset_infos[a + slot] = info
        self._masks = self._join_masks([p[4] for p in parts])
        return (
            _concat([p[0] for p in parts], self.observation_space),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
            infos,
        )

    @staticmethod
    def _join_masks(parts):
        return None if parts[0] is None else np.concatenate(parts)

    def action_masks(self) -> np.ndarray:
        """Legal actions of every slot's current observation, bool ``(num_envs, n_actions)``.

        From ``obs["action_mask"]`` or ``info["action_mask"]``; all true where the env gives none
        (and for idle slots). Discrete and MultiDiscrete action spaces only.
        """
        if self._mask_width is None:
            raise UnsupportedSpaceError(f"action masks need a Discrete or MultiDiscrete action space, got {self.action_space}")
        if self._masks is None:
            return np.ones((self.num_envs, self._mask_width), dtype=bool)
        return self._masks

    def share_snapshot(self, name: str, policy: Policy) -> None:
        """``rqe_wrappers.core.snapshot.share(name, policy)`` here and in every worker.

        The policy is sent with cloudpickle: pass a trusted local object (e.g.
        ``SB3Policy.from_model(model)``) that sees the observations SB3 sees.
        """
        share(name, policy)
        if self.remotes:
            blob = cloudpickle.dumps((name, policy))
            for r in self.remotes:
                r.send(("share", blob))
            _recv_all(self.remotes)

    # ---- attributes and methods of the wrapped envs ----

    def publish_snapshot(self, name: str, policy: Policy) -> None:
        """Deprecated name of :meth:`share_snapshot`."""
        warnings.warn("publish_snapshot is renamed share_snapshot; the old name goes away in 0.3", DeprecationWarning, stacklevel=2)
        self.share_snapshot(name, policy)
    def _by_group(self, indices: VecEnvIndices):
        """Slots -> their copies, grouped by the process that holds them (each copy once)."""
        slots = list(self._get_indices(indices))
        copies = list(dict.fromkeys(self._slot_copy[i] for i in slots))
        per_group: dict[int, list[int]] = {}
        for c in copies:
            per_group.setdefault(self._copy_group[c], []).append(c)
        return slots, per_group

    def _call(self, cmd: str, per_group: dict[int, list[int]], make_args) -> dict[int, Any]:
        """Run a group command for each copy; returns ``{copy: result}``."""
        out: dict[int, Any] = {}
        if self._local is not None:
            for copies in per_group.values():
                local = [self._groups[0].index(c) for c in copies]
                res = getattr(self._local, cmd)(*make_args(local))
                out.update(zip(copies, res or [None] * len(copies)))
            return out
        for g, copies in per_group.items():
            local = [self._groups[g].index(c) for c in copies]
            self.remotes[g].send((cmd, make_args(local)))
        replies = _recv_all([self.remotes[g] for g in per_group])
        for copies, res in zip(per_group.values(), replies):
            out.update(zip(copies, res or [None] * len(copies)))
        return out

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """``attr_name`` of each slot's copy (slots of one copy get the same value)."""
        slots, per_group = self._by_group(indices)
        vals = self._call("get_attr", per_group, lambda local: (attr_name, local))
        return [vals[self._slot_copy[i]] for i in slots]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set ``attr_name`` on each targeted slot's copy (once per copy), where it lives in the wrapper chain."""
        _, per_group = self._by_group(indices)
        self._call("set_attr", per_group, lambda local: (attr_name, value, local))

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        """Call ``method_name`` once per targeted copy; each slot gets its copy's result."""
        if method_name == "action_masks":
            return list(self.action_masks()[list(self._get_indices(indices))])
        slots, per_group = self._by_group(indices)
        vals = self._call("env_method", per_group, lambda local: (method_name, method_args, method_kwargs, local))
        return [vals[self._slot_copy[i]] for i in slots]

    def has_attr(self, attr_name: str) -> bool:
        if attr_name == "action_masks":
            return self._mask_width is not None
        return super().has_attr(attr_name)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """Always ``False``: the copies are PettingZoo envs, not gymnasium envs."""
        return [False] * len(list(self._get_indices(indices)))

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs

    def render(self, mode: str | None = None) -> None:
        """Not supported (returns ``None``); render a separate env copy instead."""
        return None

    def close(self) -> None:
        if self.closed:
            return
        if self._local is not None:
            self._local.close()
        self._shutdown()
        self.closed = True

    def _shutdown(self) -> None:
        if self.waiting:
            for r in self.remotes:
                try:
                    r.recv()
                except (EOFError, OSError):
                    pass
            self.waiting = False
        for r in self.remotes:
            try:
                r.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + 10
        for r, p in zip(self.remotes, self.processes):
            try:
                if r.poll(max(0.0, deadline - time.monotonic())):
                    r.recv()
            except (EOFError, OSError):
                pass
            p.join(timeout=max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join()
            r.close()
        self.remotes, self.processes = [], []


def make_vec_env(
    env_fn: EnvFn,
    n_copies: int = 1,
    n_workers: int = 0,
    seed: int | None = None,
    n_envs: int | None = None,
    **kwargs: Any,
) -> PettingZooVecEnv:
    """:class:`PettingZooVecEnv` seeded with ``seed`` (copy ``j``'s first reset uses ``seed + j``).

    Example:
        >>> from mpe2 import simple_tag_v3
        >>> from rqe_wrappers import srpo_wrap, RandomPolicy
        >>> def tag():
        ...     env = simple_tag_v3.parallel_env(num_good=1, num_adversaries=2, num_obstacles=2, max_cycles=25)
        ...     runner = RandomPolicy(env.observation_space("agent_0"), env.action_space("agent_0"))
        ...     return srpo_wrap(env, tau=1.0, fixed={"agent_0": runner})
        >>> venv = make_vec_env(tag, n_copies=2, seed=0)
        >>> venv.num_envs, venv.slot_seats
        (4, ['adversary_0', 'adversary_1', 'adversary_0', 'adversary_1'])
        >>> venv.close()
    """
    n_copies = renamed_argument("n_envs", n_envs, "n_copies", n_copies, default=1)
    venv = PettingZooVecEnv(env_fn, n_copies, n_workers=n_workers, **kwargs)
    if seed is not None:
        venv.seed(seed)
    return venv
