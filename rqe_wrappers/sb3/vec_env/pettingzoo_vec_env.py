""":class:`PettingZooVecEnv`: a PettingZoo env (parallel or AEC) as an SB3 ``VecEnv``, one slot per learning seat.

Slots, AEC seats, episode ends, action masks, seeds and workers: docs/adapter.md.
"""

from __future__ import annotations

import multiprocessing as mp
import warnings
from collections.abc import Sequence
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper, VecEnv, VecEnvIndices

from rqe_wrappers._compat import renamed_argument
from rqe_wrappers.core.checks import is_integer
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.core.snapshot import share, shared
from rqe_wrappers.core.view import mask_width
from rqe_wrappers.errors import (
    ActionError,
    ConfigError,
    MissingCallbackWarning,
    SpaceMismatchError,
    UnsupportedSpaceError,
    VecEnvStateError,
    WorkerError,
)
from rqe_wrappers.sb3.vec_env import worker
from rqe_wrappers.sb3.vec_env.copies import CopyGroup, EnvFn, space_problem
from rqe_wrappers.sb3.vec_env.worker import default_start_method


def _concat(parts: list, space: gym.Space):
    if len(parts) == 1:
        return parts[0]
    if isinstance(space, gym.spaces.Dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in space.spaces}
    return np.concatenate(parts)


def _check_fault_options(check_finite, step_timeout) -> None:
    if not isinstance(check_finite, (bool, np.bool_)):
        raise ConfigError(f"check_finite must be True or False, got {check_finite!r}")
    if step_timeout is not None and (
        isinstance(step_timeout, bool)
        or not isinstance(step_timeout, (int, float, np.integer, np.floating))
        or not 0 < step_timeout < float("inf")
    ):
        raise ConfigError(f"step_timeout must be a number of seconds > 0 (or None: wait forever), got {step_timeout!r}")


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
            seats of AEC copies; :class:`~rqe_wrappers.sb3.SRPOCallback` and
            :class:`~rqe_wrappers.sb3.AHTCallback` share the learner under it every rollout.
        reseed_episodes: ``False`` (default) follows SB3's ``DummyVecEnv``: only the first reset
            after :meth:`seed` gets a seed, later automatic resets get ``seed=None`` and the env
            keeps its own random stream (gymnasium's convention, which this library's wrappers
            follow). ``True``: every later reset of copy ``j`` gets a seed drawn from a generator
            seeded with ``seed + j``, so runs reproduce even with envs that draw fresh entropy on
            ``reset(seed=None)``; it costs a seeded reset per episode (about 0.2 ms on Tag, far
            more on envs that rebuild themselves when seeded).
        check_finite: ``True`` (default) raises :class:`~rqe_wrappers.errors.NonFiniteError`, naming
            copy, seat and step, when a reward or a float observation is NaN or inf (instead of PPO
            failing on NaN logits rollouts later); ``False`` skips the check (cost: docs/security.md).
        step_timeout: seconds a subprocess worker may take to answer any command (step, reset,
            ``get_attr``, ``env_method``, ``share_snapshot``; start-up at least 120 s); past it,
            :class:`~rqe_wrappers.errors.WorkerTimeoutError` names the hung worker. ``None`` (default)
            waits forever. A worker that dies raises :class:`~rqe_wrappers.errors.WorkerError`
            (index, pid, exit code); after either, the workers are stopped and the VecEnv is closed.

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
        check_finite: bool = True,
        step_timeout: float | None = None,
        n_envs: int | None = None,
    ):
        n_copies = renamed_argument("n_envs", n_envs, "n_copies", n_copies, default=1)
        if not callable(env_fn):
            raise ConfigError(
                f"env_fn must be a function that builds a new env, got {type(env_fn).__name__}; "
                "write PettingZooVecEnv(lambda: my_env(), n_copies)"
            )
        if not is_integer(n_copies) or n_copies < 1:
            raise ConfigError(f"n_copies must be an integer >= 1, got {n_copies!r}")
        if not is_integer(n_workers) or n_workers < 0:
            raise ConfigError(f"n_workers must be an integer >= 0 (0 = in this process), got {n_workers!r}")
        if start_method is not None and start_method not in mp.get_all_start_methods():
            raise ConfigError(f"start_method must be one of {mp.get_all_start_methods()}, got {start_method!r}")
        _check_fault_options(check_finite, step_timeout)
        self.n_copies = int(n_copies)
        self.n_workers = min(int(n_workers), self.n_copies)
        self.closed = False
        self.waiting = False
        self._local: CopyGroup | None = None
        self._workers: worker.Workers | None = None
        self._needs_reset = True  # a step before the first reset() is refused
        self.step_timeout = None if step_timeout is None else float(step_timeout)
        self.start_method: str | None = None  # of the workers, if any
        args = (snapshot_name, bool(reseed_episodes), bool(check_finite))
        if self.n_workers == 0:
            self._local = CopyGroup(env_fn, range(self.n_copies), *args)
            self._groups = [list(range(self.n_copies))]
            descriptions = [self._local.describe()]
        else:
            self._groups = [[int(c) for c in a] for a in np.array_split(np.arange(self.n_copies), self.n_workers)]
            self.start_method = start_method or default_start_method()
            remotes, processes = worker.start(
                self.start_method, [CloudpickleWrapper((env_fn, copies, *args)) for copies in self._groups]
            )
            self._workers = worker.Workers(remotes, processes, self._groups, self.step_timeout)
            try:
                descriptions = self._workers.recv(range(self.n_workers), "start")
            except WorkerError:  # dead or hung: stop the rest at once
                self._workers.stop_now()
                self._workers = None
                raise
            except BaseException:
                self._shutdown()
                raise
        first = descriptions[0]
        self.snapshot_name = snapshot_name
        #: whether the learner's snapshot plays seats (AEC copies): callbacks then share it every rollout
        self.uses_snapshot = any(d["uses_snapshot"] for d in descriptions)
        self._snapshot_shared = False
        self._check_snapshot = True  # once, at the first step
        problem = space_problem(  # between workers (each group checked its own slots)
            [d["slot_seats"][0] for d in descriptions],
            [d["observation_space"] for d in descriptions],
            [d["action_space"] for d in descriptions],
        )
        if problem:
            self._shutdown()
            raise SpaceMismatchError(problem)
        # slot bookkeeping
        self.slot_seats: list[str] = []
        self._slot_copy: list[int] = []
        self._group_slots: list[tuple[int, int]] = []
        self._copy_group: dict[int, int] = {}
        start = 0
        for g, (copies, d) in enumerate(zip(self._groups, descriptions, strict=True)):
            self._group_slots.append((start, start + d["n_slots"]))
            start += d["n_slots"]
            self.slot_seats.extend(d["slot_seats"])
            for c in copies:
                self._copy_group[c] = g
        for copies, d in zip(self._groups, descriptions, strict=True):
            for c, k in zip(copies, d["copy_slots"], strict=True):
                self._slot_copy.extend([c] * k)
        self._copy_seeds: list[int | None] = [None] * self.n_copies
        self._masks: np.ndarray | None = None
        super().__init__(start, first["observation_space"], first["action_space"])
        self._mask_width = mask_width(self.action_space)
        self._action_size = self.num_envs * int(np.prod(self.action_space.shape or (), dtype=np.int64))
        space = self.action_space
        self._action_range: tuple[Any, Any] | None = None  # [low, high) of Discrete / MultiDiscrete actions
        if isinstance(space, gym.spaces.Discrete):
            self._action_range = (int(space.start), int(space.start) + int(space.n))
        elif isinstance(space, gym.spaces.MultiDiscrete):
            self._action_range = (space.start, space.start + space.nvec)

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

    @property
    def remotes(self) -> list:
        """The pipes to the subprocess workers (empty with ``n_workers=0`` or once closed)."""
        return [] if self._workers is None else self._workers.remotes

    @property
    def processes(self) -> list:
        """The subprocess workers (empty with ``n_workers=0`` or once closed)."""
        return [] if self._workers is None else self._workers.processes

    def _ask(self, which: Sequence[int], messages: Sequence[Any], what: str) -> list:
        """Send to workers ``which`` and read their replies; a dead or hung worker closes this VecEnv."""
        if self._workers is None:
            raise self._closed_error(what)
        try:
            return self._workers.ask(which, messages, what)
        except WorkerError:
            self._workers.stop_now()
            self._workers = None
            self.waiting = False
            self.closed = True
            raise

    def _closed_error(self, what: str) -> VecEnvStateError:
        return VecEnvStateError(f"{what}() on a closed PettingZooVecEnv; build a new one")

    def reset(self):
        if self.closed:
            raise self._closed_error("reset")
        seeds, opts = self._copy_seeds, self._copy_options()
        if self._local is not None:
            obs, masks, infos = self._local.reset(seeds, opts)
            parts = [(obs, masks, infos)]
        else:
            msgs = [("reset", ([seeds[c] for c in copies], [opts[c] for c in copies])) for copies in self._groups]
            parts = self._ask(range(len(self._groups)), msgs, "reset")
        self._needs_reset = False
        self.reset_infos = [i for p in parts for i in p[2]]
        self._masks = self._join_masks([p[1] for p in parts])
        self._copy_seeds = [None] * self.n_copies
        self._reset_seeds()
        self._reset_options()
        return _concat([p[0] for p in parts], self.observation_space)

    def step_async(self, actions: np.ndarray) -> None:
        if self._check_snapshot:
            self._check_snapshot = False
            if self.uses_snapshot and not self._snapshot_shared and shared(self.snapshot_name) is None:
                warnings.warn(
                    f"the other seats of the turn-based copies are played by the learner's snapshot "
                    f"{self.snapshot_name!r}, which nobody has shared: they play uniformly at random. Train with "
                    "SRPOCallback or AHTCallback (they share it every rollout), or call venv.share_snapshot(...)",
                    MissingCallbackWarning,
                    stacklevel=2,
                )
        if self.closed:
            raise self._closed_error("step")
        if self._needs_reset:
            raise VecEnvStateError(
                "step() before reset(): call venv.reset() first (SB3's model.learn() does it for you)"
            )
        actions = self._check_actions(actions)
        if self._local is not None:
            self._actions = actions
        else:
            if self._workers is None:  # pragma: no cover - closed is checked above
                raise self._closed_error("step")
            self.waiting = True
            try:
                self._workers.send(
                    range(len(self._groups)), [("step", actions[a:b]) for a, b in self._group_slots], "step"
                )
            except WorkerError:
                self._workers.stop_now()
                self._workers, self.waiting, self.closed = None, False, True
                raise

    def _check_actions(self, actions) -> np.ndarray:
        """``actions`` as an array of ``num_envs`` actions, each in the action space's range."""
        try:
            a = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
        except (TypeError, ValueError) as e:
            raise ActionError(
                f"actions must be an array of {self.num_envs} actions, got {type(actions).__name__}"
            ) from e
        space, shape = self.action_space, self.action_space.shape or ()
        if a.size != self._action_size or (a.ndim and a.shape[0] != self.num_envs):
            raise ActionError(
                f"step() got actions of shape {a.shape}, but this PettingZooVecEnv has {self.num_envs} slots "
                f"(one per learning seat of each copy) of action space {space}: pass one action per slot, "
                f"shape ({self.num_envs}, *{shape})"
            )
        if self._action_range is None:  # Box and others: SB3 clips, the env decides
            return a
        low, high = self._action_range
        if a.dtype.kind not in "iub":
            whole = a.dtype.kind == "f" and bool(np.all(np.isfinite(a) & (a == np.round(a))))
            if not whole:
                raise ActionError(
                    f"step() got actions {a.reshape(-1)[:8].tolist()} of dtype {a.dtype}; {space} needs whole numbers"
                )
            a = a.astype(np.int64)  # whole floats (1.0) reach the env as the integers they stand for
        flat = a.reshape(self.num_envs, *shape)
        if (flat < low).any() or (flat >= high).any():
            slot = int(np.argwhere((flat < low) | (flat >= high))[0][0])
            raise ActionError(
                f"action {flat[slot].tolist()} of slot {slot} (copy {self._slot_copy[slot]}, seat "
                f"{self.slot_seats[slot]!r}) is outside {space} (valid: {np.asarray(low).tolist()} to "
                f"{(np.asarray(high) - 1).tolist()}); pass actions the model's action space allows"
            )
        return a

    def step_wait(self):
        if self._local is not None:
            obs, rews, dones, infos, masks, resets = self._local.step(self._actions)
            for slot, info in resets.items():
                self.reset_infos[slot] = info
            self._masks = masks
            return obs, rews, dones, infos
        if self._workers is None:
            raise self._closed_error("step")
        try:
            parts = self._workers.recv(range(len(self._groups)), "step")
        except WorkerError:
            self._workers.stop_now()
            self._workers, self.closed = None, True
            raise
        finally:
            self.waiting = False
        all_infos: list = []
        for (a, _), p in zip(self._group_slots, parts, strict=True):
            all_infos.extend(p[3])
            for slot, info in p[5].items():
                self.reset_infos[a + slot] = info
        self._masks = self._join_masks([p[4] for p in parts])
        return (
            _concat([p[0] for p in parts], self.observation_space),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
            all_infos,
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
            raise UnsupportedSpaceError(
                f"action masks need a Discrete or MultiDiscrete action space, got {self.action_space}"
            )
        if self._masks is None:
            return np.ones((self.num_envs, self._mask_width), dtype=bool)
        return self._masks

    def share_snapshot(self, name: str, policy: Policy) -> None:
        """``rqe_wrappers.core.snapshot.share(name, policy)`` here and in every worker.

        The policy is sent with cloudpickle: pass a trusted local object (e.g.
        ``SB3Policy.from_model(model)``) that sees the observations SB3 sees.
        """
        share(name, policy)
        self._snapshot_shared = True
        if self._workers is not None:
            blob = cloudpickle.dumps((name, policy))
            self._ask(range(len(self._groups)), [("share", blob)] * len(self._groups), "share")

    def publish_snapshot(self, name: str, policy: Policy) -> None:
        """Deprecated name of :meth:`share_snapshot`."""
        warnings.warn(
            "publish_snapshot is renamed share_snapshot; the old name goes away in 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        self.share_snapshot(name, policy)

    # ---- attributes and methods of the wrapped envs ----
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
                out.update(zip(copies, res or [None] * len(copies), strict=True))
            return out
        msgs = [(cmd, make_args([self._groups[g].index(c) for c in copies])) for g, copies in per_group.items()]
        replies = self._ask(list(per_group), msgs, cmd)
        for copies, res in zip(per_group.values(), replies, strict=True):
            out.update(zip(copies, res or [None] * len(copies), strict=True))
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
        if self._workers is not None:
            self._workers.shutdown(self.waiting)
        self._workers = None
        self.waiting = False
