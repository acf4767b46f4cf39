"""Nature's side of minimax-Bayes ad hoc teamwork for stock SB3 PPO: one update per rollout.

:class:`AHTCallback` goes with envs made by :func:`rqe_wrappers.aht.wrapper.aht_wrap`. During a
rollout it collects, from ``self.locals["infos"]``, every finished episode's ``focal_return`` and
``scenario_index``. At each rollout end it

1. updates the per-scenario utility estimates (see *Utility estimates* below),
2. calls ``nature.update(utilities)`` and pushes the new prior to every env copy with
   ``training_env.env_method("set_prior", beta)`` (a method, so it reaches the AHT wrapper through
   any PettingZoo wrappers stacked on top; ``set_attr`` would stop at the outermost one),
3. shares a fresh CPU copy of the learner (``SB3Policy.from_model``) as the snapshot that plays
   the focal copies (``training_env.share_snapshot`` when the VecEnv has it, so subprocess workers
   get it; else :func:`rqe_wrappers.core.snapshot.share` in this process). PPO trains right after
   the rollout end, so the copies lag the learner by one update (the paper's "delayed" copies);
   skipped where a batched VecEnv says no scenario seats the snapshot (``plays_learner_snapshot``),
4. logs ``aht/beta/<scenario id>``, ``aht/utility/<scenario id>``, ``aht/worst_utility`` and
   friends to SB3's logger (for a CSV to plot with :func:`rqe_wrappers.plots.plot_beta`, give the
   model a logger with the ``"csv"`` format: ``model.set_logger(configure(folder, ["csv"]))``).

Utility estimates: per scenario, an exponential moving average of focal-per-capita returns in
which each finished episode has weight ``utility_ema`` (a rollout with ``k`` episodes of scenario
``s`` and mean return ``m`` moves ``u_s`` by ``1 - (1 - utility_ema)**k`` of the way to ``m``; the
first episodes set it). The learner changes, so old returns should fade. ``utility_ema=None`` keeps
a plain running mean instead. Scenarios not seen yet are given the mean of the seen estimates
(neutral) when nature updates; nature's ``uniform_mix`` keeps every scenario sampled.

Fictitious play (``prior="fictitious-play"``): the partners are the learner's own past snapshots.
The wrapper has ``fp_capacity`` slots (scenarios ``c<n>@fp/<k>``: the learner plus one past snapshot
in every other seat, as focal players, so the learner is paid the per-capita return as in
self-play; ``c1:fp/<k>`` with ``fp_focal=False``: background partners). The initial policy
fills slot 0; each rollout end offers a new frozen snapshot, kept by reservoir sampling
(Algorithm R, seeded from the model's seed): while slots are free it takes the next one,
afterwards the ``t``-th snapshot replaces a random slot with probability ``capacity / t``. The
reservoir is thus always a uniform sample of the whole history, and the prior is uniform over the
filled slots (the paper: "partners sampled uniformly from the history").

Save and resume (the callback's files hold no pickle, see :mod:`rqe_wrappers.sb3.aht_state`; SB3's
``model.zip`` does, so ``PPO.load`` only files you wrote, never one from the network)::

    model.save("run/model")                       # SB3 writes run/model.zip
    callback.save("run/model")                    # run/model.aht.json (+ run/model.aht.npz)
    ...
    model = PPO.load("run/model.zip", env=venv)
    callback = AHTCallback.load("run/model")      # same keyword arguments as the constructor
    model.learn(more_steps, callback=callback, reset_num_timesteps=False)
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import CSVOutputFormat
from stable_baselines3.common.vec_env import VecEnvWrapper

from rqe_wrappers.aht.config import FICTITIOUS_PLAY, parse_aht_config
from rqe_wrappers.aht.nature import Nature, episode_arrays, filled_utilities, update_utilities_arrays
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.core.checks import is_integer, is_real
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.errors import ConfigError, NonFiniteError
from rqe_wrappers.sb3.aht_state import (
    STATE_FORMAT,
    STATE_VERSION,
    check_resumable,
    read_state,
    state_paths,
    write_state,
)
from rqe_wrappers.sb3.learner_snapshot import (
    NormalizedInput,
    check_snapshots_reach,
    learner_policy,
    share_learner,
    share_policy,
)
from rqe_wrappers.sb3.sb3_policy import SB3Policy

__all__ = ["STATE_FORMAT", "STATE_VERSION", "AHTCallback", "plot_beta", "state_paths"]

_T = TypeVar("_T")


def _started(value: _T | None, name: str) -> _T:
    """``value``, set at training start (or by ``load``); a clear error if it is still ``None``."""
    if value is None:
        raise RuntimeError(f"AHTCallback.{name} is not set yet: the callback is used before training started")
    return value


def _integer_type(t: type) -> bool:
    """Values of type ``t`` pass :func:`is_integer`."""
    return issubclass(t, (int, np.integer)) and not issubclass(t, (bool, np.bool_))


def _real_type(t: type) -> bool:
    """Values of type ``t`` pass :func:`is_real`."""
    return issubclass(t, (int, float, np.integer, np.floating)) and not issubclass(t, (bool, np.bool_))


class _ContinuedCSV(CSVOutputFormat):
    """SB3's CSV output, continuing a file it finds (a resumed run) instead of truncating it."""

    def __init__(self, filename: Path):
        if not filename.exists() or filename.stat().st_size == 0:
            super().__init__(str(filename))
            return
        self.file = open(filename, "r+")  # closed by close(), as in SB3
        header = self.file.readline().rstrip("\n")
        self.keys = header.split(",") if header else []
        self.file.seek(0, os.SEEK_END)
        self.separator, self.quotechar = ",", '"'


class AHTCallback(BaseCallback):
    """Updates nature's prior over scenarios and the learner snapshot (where one plays) at every rollout end.

    Args:
        utility_ema: weight of each new episode in the per-scenario utility estimate, in (0, 1];
            ``None`` for a plain running mean (see the module docstring).
        csv_path: deprecated: give the model an SB3 logger with the ``"csv"`` format instead. Adds
            an SB3 CSV output for this file to the model's logger while training (continuing the file).
        nature: a ready :class:`~rqe_wrappers.aht.nature.Nature` (default: built from the settings
            given to ``aht_wrap``, read from the env with ``get_attr("aht_config")``).
        verbose: SB3 verbosity (1 prints beta at every rollout end).

    Example:
        >>> from stable_baselines3 import PPO                          # doctest: +SKIP
        >>> model = PPO("MlpPolicy", venv)                            # doctest: +SKIP
        >>> model.set_logger(configure("runs/ipd", ["stdout", "csv"]))  # doctest: +SKIP
        >>> model.learn(100_000, callback=AHTCallback())                # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        utility_ema: float | None = 0.1,
        csv_path: str | os.PathLike | None = None,
        nature: Nature | None = None,
        verbose: int = 0,
    ):
        super().__init__(verbose)
        if utility_ema is not None:
            if isinstance(utility_ema, bool) or not isinstance(utility_ema, (int, float)) or not 0 < utility_ema <= 1:
                raise ConfigError(f"utility_ema must be in (0, 1] (or None for a running mean), got {utility_ema!r}")
            utility_ema = float(utility_ema)
        if nature is not None and not isinstance(nature, Nature):
            raise TypeError(f"nature must be a rqe_wrappers.aht.nature.Nature, got {type(nature).__name__}")
        if csv_path is not None:
            warnings.warn(
                "AHTCallback(csv_path=...) is deprecated: configure SB3's logger with the 'csv' format instead, "
                "e.g. model.set_logger(stable_baselines3.common.logger.configure(folder, ['stdout', 'csv'])); "
                "csv_path goes away in 0.3",
                DeprecationWarning,
                stacklevel=2,
            )
        self.utility_ema = utility_ema
        self.csv_path = None if csv_path is None else Path(csv_path)
        self._csv_format: CSVOutputFormat | None = None
        self.nature = nature
        self.config: dict[str, Any] | None = None
        self.scenarios: ScenarioSet | None = None
        self.utilities: np.ndarray | None = None  # nan = not seen yet
        self.counts: np.ndarray | None = None
        self.beta: np.ndarray | None = None
        #: this rollout's finished episodes, not yet counted: ``(scenario indices, focal returns)`` per step
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._finished: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._shares_learner = True
        # fictitious play
        self.fp_seen = 0
        self.fp_filled: np.ndarray | None = None
        self._fp_policies: dict[int, SB3Policy | NormalizedInput] = {}
        self._fp_rng: np.random.Generator | None = None
        self._restored: dict[str, Any] | None = None
        self._restored_weights: dict[int, dict[str, np.ndarray]] = {}

    # ---- setup ---------------------------------------------------------------------------------
    @property
    def fictitious_play(self) -> bool:
        return self.config is not None and self.config["prior"] == FICTITIOUS_PLAY

    def _read_config(self) -> dict[str, Any]:
        env = self.training_env
        try:
            configs = env.get_attr("aht_config")
        except AttributeError:
            raise ConfigError(
                "AHTCallback needs envs made by aht_wrap(...) (no 'aht_config' on the training env); "
                "wrap each env copy with rqe_wrappers.aht.wrapper.aht_wrap before vectorising"
            ) from None
        distinct = list({id(c): c for c in configs}.values())  # a batched env hands every slot one dict
        first = json.dumps(distinct[0], sort_keys=True)
        if any(json.dumps(c, sort_keys=True) != first for c in distinct[1:]):
            raise ConfigError("all env copies must share one aht_wrap configuration (scenarios, prior, lr, ...)")
        return configs[0]

    def _on_training_start(self) -> None:
        env = self.training_env
        check_snapshots_reach(env, "AHTCallback")
        config = self._read_config()
        settings, scenarios, _ = parse_aht_config(config)
        if self._restored is not None:
            check_resumable(self._restored, config, scenarios)
        elif self.config is not None and self.config != config:
            raise ConfigError("this AHTCallback was used with a different aht_wrap configuration; make a new one")
        self.config, self.scenarios = config, scenarios
        n = len(scenarios)
        if self.nature is None:
            self.nature = settings.make_nature(scenarios)
        elif self.nature.n_scenarios != n:
            raise ConfigError(f"the given nature has {self.nature.n_scenarios} scenarios, the env has {n}")
        if self.utilities is None:
            self.utilities = np.full(n, np.nan)
            self.counts = np.zeros(n, dtype=np.int64)
        if self.fictitious_play:
            if self._fp_rng is None:
                self._fp_rng = stream(self.model.seed, "fictitious-play")
            if self.fp_filled is None:
                self.fp_filled = np.zeros(n, dtype=bool)
            for slot, weights in sorted(self._restored_weights.items()):
                policy = learner_policy(self.training_env, self.model)
                policy.set_weights(weights)
                self._fp_policies[slot] = policy
            self._restored_weights = {}
            if self.fp_seen == 0:
                self._offer_snapshot()  # the initial policy is the first of the history
            for slot, policy in self._fp_policies.items():
                self._share(self._fp_snapshot_name(slot), policy)
        self._restored = None
        env.set_attr("aht_callback_attached", True)
        inner = env
        while isinstance(inner, VecEnvWrapper):
            inner = inner.venv
        self._finished = getattr(inner, "finished_episodes", None)  # a batched VecEnv's, as arrays
        # a batched VecEnv says whether the learner's snapshot plays there (c<n> scenarios); others always get it
        self._shares_learner = bool(getattr(inner, "plays_learner_snapshot", True))
        if self._shares_learner:
            share_learner(env, config["snapshot_name"], self.model)
        self._push_prior(self._current_beta())
        if self.csv_path is not None:
            self._attach_csv(self.csv_path)

    def _attach_csv(self, path: Path) -> None:
        """``csv_path``: one more SB3 CSV output on this run's logger (SB3 makes a new logger per ``learn``)."""
        formats = self.logger.output_formats
        if self._csv_format is not None:
            if self._csv_format in formats:
                return
            self._csv_format.close()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._csv_format = _ContinuedCSV(path)
        formats.append(self._csv_format)

    def _on_training_end(self) -> None:
        fmt, self._csv_format = self._csv_format, None
        if fmt is not None:
            if fmt in self.logger.output_formats:
                self.logger.output_formats.remove(fmt)
            fmt.close()

    # ---- rollout -------------------------------------------------------------------------------
    def _on_step(self) -> bool:
        infos = self.locals.get("infos")
        if infos is None:
            raise ConfigError("AHTCallback reads 'infos' from the algorithm's locals; use an SB3 on-policy algorithm")
        dones = self.locals.get("dones")  # an episode's focal return comes on its slot's last step
        if dones is not None and self._finished is not None and self._take_finished(dones, infos):
            return True
        slots = range(len(infos)) if dones is None else np.flatnonzero(dones).tolist()
        found = [(slot, infos[slot]) for slot in slots if "focal_return" in infos[slot]]
        if found:
            self._pending.append(self._episodes(found))
        return True

    def _take_finished(self, dones: np.ndarray, infos: list[dict[str, Any]]) -> bool:
        """The step's episodes as arrays from a batched VecEnv (``finished_episodes()``), checked against
        ``dones`` and the first finished slot's info; ``False`` (read the infos) where anything differs."""
        assert self._finished is not None
        slots, index, ret = self._finished()
        if not np.array_equal(slots, np.flatnonzero(dones)):
            return False
        if not len(slots):
            return True
        first = infos[int(slots[0])]
        if first.get("scenario_index") != index[0] or first.get("focal_return") != ret[0]:
            return False
        if not self._plausible(index, ret):
            return False  # the infos path names the bad episode
        self._pending.append((index.astype(np.int64), ret.astype(np.float64)))
        return True

    def _plausible(self, index: np.ndarray, ret: np.ndarray) -> bool:
        """Every scenario index names a scenario and every focal return is finite."""
        n = len(_started(self.scenarios, "scenarios"))
        return bool(index.min() >= 0 and index.max() < n and np.isfinite(ret).all())

    def _episodes(self, found: list[tuple[int, dict[str, Any]]]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_episode` of each ``(slot, info)`` as ``(scenario indices, focal returns)``: checked as arrays
        (thousands per step on the batched path); where any fails, one by one, so the error names the first bad
        episode as before."""
        index = [info.get("scenario_index") for _, info in found]
        ret = [info["focal_return"] for _, info in found]
        if all(_integer_type(t) for t in set(map(type, index))) and all(_real_type(t) for t in set(map(type, ret))):
            idx, val = np.asarray(index, np.int64), np.asarray(ret, np.float64)
            if self._plausible(idx, val):
                return idx, val
        return episode_arrays([self._episode(slot, info) for slot, info in found])

    def _episode(self, slot: int, info: dict[str, Any]) -> tuple[int, float]:
        """``(scenario index, focal return)`` of a finished episode; a non-finite return is refused.

        A NaN or inf return would make the scenario's utility NaN, which nature then treats as
        "not seen yet": the worst scenario would silently drop out of the minimax. So it stops
        training, naming the scenario, instead.
        """
        if "scenario_index" not in info:
            raise ConfigError("an episode ended with 'focal_return' but no 'scenario_index' in its info")
        scenarios = _started(self.scenarios, "scenarios")
        index, ret = info["scenario_index"], info["focal_return"]
        if not is_integer(index) or not 0 <= index < len(scenarios):
            raise ConfigError(
                f"slot {slot}: an episode ended with scenario_index {index!r}, not an index in [0, {len(scenarios)}); "
                "the env is not the aht_wrap env this callback was started with"
            )
        sid = scenarios.ids[int(index)]
        if not is_real(ret) or not math.isfinite(ret):
            error = NonFiniteError if is_real(ret) else ConfigError
            raise error(
                f"slot {slot}: an episode of scenario {sid!r} (index {int(index)}) ended with focal_return {ret!r}; "
                "AHTCallback needs finite returns (a NaN would read as an unseen scenario). Find the step whose "
                "reward was not finite (the VecEnv's finite-value check names it) and fix the env or its partners"
            )
        return int(index), float(ret)

    def _on_rollout_end(self) -> None:
        index, ret = self._pending_arrays()
        self._pending = []
        update_utilities_arrays(
            _started(self.utilities, "utilities"), _started(self.counts, "counts"), index, ret, self.utility_ema
        )
        if self.fictitious_play:
            self._offer_snapshot()
        elif len(index):
            _started(self.nature, "nature").update(self._filled_utilities())
        beta = self._current_beta()
        self._push_prior(beta)
        if self._shares_learner:  # a fresh copy of the learner for the seats its snapshot plays
            share_learner(self.training_env, _started(self.config, "config")["snapshot_name"], self.model)
        self._log(beta, len(index))

    def _pending_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """This rollout's finished episodes so far as one ``(scenario indices, focal returns)``."""
        if not self._pending:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        return np.concatenate([i for i, _ in self._pending]), np.concatenate([r for _, r in self._pending])

    def _filled_utilities(self) -> np.ndarray:
        """Estimates with unseen scenarios set to the mean of the seen ones."""
        return filled_utilities(_started(self.utilities, "utilities"))

    def _current_beta(self) -> np.ndarray:
        if self.fictitious_play:
            filled = _started(self.fp_filled, "fp_filled")
            return filled / filled.sum()
        return np.asarray(_started(self.nature, "nature").beta, dtype=np.float64)

    def _push_prior(self, beta: np.ndarray) -> None:
        self.beta = np.array(beta, dtype=np.float64)
        self.training_env.env_method("set_prior", self.beta)

    def _share(self, name: str, policy: Policy) -> None:
        share_policy(self.training_env, name, policy)

    # ---- fictitious play -------------------------------------------------------------------------
    def _fp_snapshot_name(self, slot: int) -> str:
        config, scenarios = _started(self.config, "config"), _started(self.scenarios, "scenarios")
        return config["fp_members"][scenarios.members[slot]]

    def _offer_snapshot(self) -> None:
        """Reservoir sampling (Algorithm R) of the learner's snapshot history into the slots."""
        capacity, t = len(_started(self.scenarios, "scenarios")), self.fp_seen
        slot = t if t < capacity else int(_started(self._fp_rng, "_fp_rng").integers(t + 1))
        self.fp_seen = t + 1
        if slot < capacity:
            policy = learner_policy(self.training_env, self.model)  # behind VecNormalize: its inputs too
            self._fp_policies[slot] = policy
            _started(self.fp_filled, "fp_filled")[slot] = True
            self._share(self._fp_snapshot_name(slot), policy)

    # ---- logging -------------------------------------------------------------------------------
    def _log(self, beta: np.ndarray, episodes: int) -> None:
        ids = _started(self.scenarios, "scenarios").ids
        utilities = _started(self.utilities, "utilities")
        for i, sid in enumerate(ids):
            self.logger.record(f"aht/beta/{sid}", float(beta[i]))
            if not np.isnan(utilities[i]):
                self.logger.record(f"aht/utility/{sid}", float(utilities[i]))
        seen = ~np.isnan(utilities)
        if seen.any():
            self.logger.record("aht/worst_utility", float(utilities[seen].min()))
            self.logger.record("aht/expected_utility", float(beta @ self._filled_utilities()))
        self.logger.record("aht/rollout_episodes", episodes)
        self.logger.record("aht/scenarios_seen", int(seen.sum()))
        if self.fictitious_play:
            self.logger.record("aht/fp_snapshots_seen", self.fp_seen)
        if self.verbose:
            print("AHTCallback beta:", {sid: round(float(b), 3) for sid, b in zip(ids, beta, strict=True)})

    # ---- save / load ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything but the fictitious-play weights, as plain JSON types."""
        if self.nature is None or self.scenarios is None:
            raise ConfigError("nothing to save yet: the callback has not been used for training")
        config = _started(self.config, "config")
        fp = None
        if self.fictitious_play:
            fp = {
                "seen": self.fp_seen,
                "filled": [bool(f) for f in _started(self.fp_filled, "fp_filled")],
                "rng": _started(self._fp_rng, "_fp_rng").bit_generator.state,
            }
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "prior": config["prior"],
            "config": config,
            "utility_ema": self.utility_ema,
            "num_timesteps": int(self.num_timesteps),
            "nature": self.nature.state_dict(),
            "beta": None if self.beta is None else self.beta.tolist(),
            "utilities": [None if np.isnan(u) else float(u) for u in _started(self.utilities, "utilities")],
            "counts": [int(c) for c in _started(self.counts, "counts")],
            "pending_episodes": [[i, r] for i, r in zip(*(a.tolist() for a in self._pending_arrays()), strict=True)],
            "fictitious_play": fp,
        }

    def save(self, path: str | os.PathLike) -> tuple[Path, Path | None]:
        """Write the state next to the SB3 save ``path``; returns the ``(json, npz)`` paths written."""
        weights = {slot: p.get_weights() for slot, p in self._fp_policies.items()}
        return write_state(path, self.state_dict(), weights)

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs: Any) -> AHTCallback:
        """A callback that resumes from :meth:`save`'s files (``kwargs`` as for the constructor).

        Nature, beta, utilities and counts are restored at once; fictitious-play snapshots are
        rebuilt on the model's policy architecture when training starts. The saved
        ``utility_ema`` is used unless given. States saved by 0.1 (version 1) load too.
        """
        state, weights = read_state(path)
        kwargs.setdefault("utility_ema", state["utility_ema"])
        cb = cls(**kwargs)
        cb.nature = Nature.from_state_dict(state["nature"])
        cb.config = state["config"]
        cb.scenarios = ScenarioSet.from_dict(state["config"]["scenarios"])
        cb.utilities = np.array([math.nan if u is None else u for u in state["utilities"]], dtype=np.float64)
        cb.counts = np.array(state["counts"], dtype=np.int64)
        cb.beta = None if state["beta"] is None else np.array(state["beta"], dtype=np.float64)
        pending = state.get("pending_episodes", [])  # counted at the next rollout end
        if pending:
            cb._pending = [episode_arrays(pending)]
        fp = state["fictitious_play"]
        if fp is not None:
            cb.fp_seen = int(fp["seen"])
            cb.fp_filled = np.array(fp["filled"], dtype=bool)
            rng = np.random.default_rng()
            rng.bit_generator.state = fp["rng"]
            cb._fp_rng = rng
            cb._restored_weights = weights
        cb._restored = state
        return cb


def plot_beta(csv_path: str | os.PathLike, out_png: str | os.PathLike, *, title: str | None = None) -> Path:
    """Deprecated: :func:`rqe_wrappers.plots.plot_beta`."""
    warnings.warn(
        "rqe_wrappers.sb3.aht_callback.plot_beta moved to rqe_wrappers.plots.plot_beta; the old name goes away in 0.3",
        DeprecationWarning,
        stacklevel=2,
    )
    from rqe_wrappers.plots import plot_beta as plot

    return plot(csv_path, out_png, title=title)
