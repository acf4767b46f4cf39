"""Minimax-Bayes ad hoc teamwork on RLlib: nature's prior and the learner snapshot as RLlib callbacks.

The env is ``aht_wrap(...)`` (one learning seat, ``"focal"``) as an RLlib env
(:class:`~rqe_wrappers.rllib.env.PettingZooMultiAgentEnv`). What ``rqe_wrappers.sb3.AHTCallback``
does at every SB3 rollout end, :class:`AHTCallbacks` does at every ``Algorithm.train()`` result:

1. on the env runners, ``on_episode_end`` keeps every finished episode's ``(scenario_index,
   focal_return)`` (from the focal seat's last info) in the runner process; ``on_train_result``
   collects them from every runner (``env_runner_group.foreach_env_runner``),
2. updates the per-scenario utility estimates (EMA with weight ``utility_ema`` per episode, or a
   running mean; unseen scenarios count as the mean of the seen) and calls
   :meth:`rqe_wrappers.aht.nature.Nature.update`,
3. pushes the new prior to every env copy of every runner (``set_prior`` on the ``aht_wrap`` env),
4. shares the learner's previous weights as the snapshot that plays the focal copies (an
   :class:`~rqe_wrappers.rllib.policy.RLModulePolicy` in each runner process under the wrapper's
   ``snapshot_name``): the copies lag the learner by one update, as on the SB3 path,
5. adds ``result["rqe_aht"]`` (beta and utilities by scenario id, episodes counted).

Fictitious play (``prior="fictitious-play"``) is not supported on this path (use the SB3 path).
Save and restore with :func:`rqe_wrappers.rllib.state.save_checkpoint` / ``restore_checkpoint``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.utils.numpy import convert_to_numpy

from rqe_wrappers.aht.config import FICTITIOUS_PLAY, parse_aht_config
from rqe_wrappers.aht.nature import Nature, filled_utilities, update_utilities
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.core.snapshot import share
from rqe_wrappers.errors import ConfigError, NonFiniteError
from rqe_wrappers.rllib.env import SHARED_MODULE, find_attr, register_env, shared_policy, sub_envs
from rqe_wrappers.rllib.policy import RLModulePolicy

#: finished episodes ``(scenario index, focal return)`` of this process's env runners, not yet collected
_PENDING: list[tuple[int, float]] = []


def _aht_env(env: Any) -> Any:
    try:
        return find_attr(env, "aht_config")
    except ConfigError:
        raise ConfigError("AHTCallbacks need envs made by aht_wrap(...) (no 'aht_config' on the env)") from None


# ---- run on the env runners (module-level functions: cloudpickled to remote runners) -------------
def _runner_config(env_runner: Any) -> dict[str, Any] | None:
    envs = sub_envs(env_runner)
    return _aht_env(envs[0]).aht_config if envs else None


def _drain(env_runner: Any) -> list[tuple[int, float]]:
    out = list(_PENDING)
    _PENDING.clear()
    return out


def push_prior(env_runner: Any, beta: np.ndarray) -> list[np.ndarray]:
    """Set ``beta`` on every ``aht_wrap`` env copy of ``env_runner``; returns each copy's prior as it now is."""
    out = []
    for sub in sub_envs(env_runner):
        env = find_attr(sub, "set_prior")
        env.set_prior(beta)
        out.append(env.beta)
    return out


def share_weights(env_runner: Any, name: str, module_id: str, weights: dict[str, Any]) -> bool:
    """Share ``weights`` (a module state dict) as the snapshot ``name`` in ``env_runner``'s process."""
    module = getattr(env_runner, "module", None)
    if module is None:
        return False
    policy = RLModulePolicy(module[module_id])
    policy.set_weights(weights)
    share(name, policy)
    return True


class AHTCallbacks(RLlibCallback):
    """RLlib callbacks for ``aht_wrap`` envs: nature's prior and the learner snapshot (module docstring).

    Settings are class attributes (RLlib builds callbacks without arguments): make a subclass with
    :func:`aht_callbacks`. ``utility_ema``: weight of each episode in the utility estimate, in (0, 1],
    or ``None`` for a running mean; ``module_id``: the module whose weights play the focal copies.
    """

    utility_ema: float | None = 0.1
    module_id: str = SHARED_MODULE

    def __init__(self) -> None:
        super().__init__()
        self.config: dict[str, Any] | None = None
        self.scenarios: ScenarioSet | None = None
        self.nature: Nature | None = None
        self.utilities: np.ndarray | None = None  # nan = not seen yet
        self.counts: np.ndarray | None = None
        self.beta: np.ndarray | None = None
        #: the weights the focal copies play now, and those they play after the next update
        self.snapshot_weights: dict[str, np.ndarray] | None = None
        self._next_weights: dict[str, np.ndarray] | None = None

    # ---- env runner side ---------------------------------------------------------------------------
    def on_environment_created(self, *, env_runner: Any, env: Any, **kwargs: Any) -> None:
        for sub in sub_envs(env_runner) or [getattr(env, "unwrapped", env)]:
            _aht_env(sub).aht_callback_attached = True

    def on_episode_end(self, *, episode: Any, **kwargs: Any) -> None:
        for info in episode.get_infos(-1).values():
            if isinstance(info, dict) and "focal_return" in info:
                ret = float(info["focal_return"])
                if not np.isfinite(ret):
                    raise NonFiniteError(
                        f"an episode of scenario {info.get('scenario')!r} ended with focal_return {ret}; "
                        "nature needs finite returns"
                    )
                _PENDING.append((int(info["scenario_index"]), ret))

    # ---- driver side -------------------------------------------------------------------------------
    def on_algorithm_init(self, *, algorithm: Any, **kwargs: Any) -> None:
        configs = [c for c in algorithm.env_runner_group.foreach_env_runner(_runner_config) if c is not None]
        if not configs:
            raise ConfigError("AHTCallbacks found no env copy on any env runner")
        config = configs[0]
        settings, scenarios, _ = parse_aht_config(config)
        if settings.prior == FICTITIOUS_PLAY:
            raise ConfigError("prior 'fictitious-play' is not supported on the RLlib path; train it on the SB3 path")
        if self.config is not None and self.config != config:
            raise ConfigError("these AHTCallbacks were used with a different aht_wrap configuration")
        self.config, self.scenarios = config, scenarios
        if self.nature is None:
            self.nature = settings.make_nature(scenarios)
            self.utilities = np.full(len(scenarios), np.nan)
            self.counts = np.zeros(len(scenarios), dtype=np.int64)
        weights = self.learner_weights(algorithm)
        self._next_weights = weights
        self.publish(algorithm, self.snapshot_weights or weights, np.asarray(self.nature.beta, np.float64))

    def on_train_result(self, *, algorithm: Any, result: dict, **kwargs: Any) -> None:
        nature, scenarios = self._started()
        batch = [e for got in algorithm.env_runner_group.foreach_env_runner(_drain) for e in got]
        self.update_utilities(batch)
        if batch:
            nature.update(self.filled_utilities())
        beta = np.asarray(nature.beta, np.float64)
        previous, self._next_weights = self._next_weights, self.learner_weights(algorithm)
        self.publish(algorithm, previous or self._next_weights, beta)
        assert self.utilities is not None
        result["rqe_aht"] = {
            "episodes": len(batch),
            "beta": {sid: float(b) for sid, b in zip(scenarios.ids, beta, strict=True)},
            "utility": {sid: float(u) for sid, u in zip(scenarios.ids, self.utilities, strict=True) if not np.isnan(u)},
        }

    def learner_weights(self, algorithm: Any) -> dict[str, np.ndarray]:
        """A numpy copy of the learner's current weights of :attr:`module_id`."""
        weights = algorithm.learner_group.get_weights(module_ids=[self.module_id])[self.module_id]
        return {k: np.array(convert_to_numpy(v)) for k, v in weights.items()}

    def publish(self, algorithm: Any, weights: dict[str, np.ndarray], beta: np.ndarray) -> None:
        """Share ``weights`` as the focal copies' snapshot and push ``beta`` to every env copy of every runner."""
        if self.config is None:
            raise ConfigError("AHTCallbacks are not set up yet (no on_algorithm_init)")
        self.snapshot_weights, self.beta = weights, np.array(beta, dtype=np.float64)
        group = algorithm.env_runner_group
        group.foreach_env_runner(
            functools.partial(
                share_weights, name=self.config["snapshot_name"], module_id=self.module_id, weights=weights
            )
        )
        group.foreach_env_runner(functools.partial(push_prior, beta=self.beta))

    def update_utilities(self, batch: list[tuple[int, float]]) -> None:
        """The per-scenario estimates after ``batch`` of ``(scenario index, focal return)`` episodes."""
        _, scenarios = self._started()
        assert self.utilities is not None and self.counts is not None
        idx = [i for i, _ in batch]
        if idx and (min(idx) < 0 or max(idx) >= len(scenarios)):
            raise ConfigError(f"an episode names scenario index {max(idx)}, not one of the {len(scenarios)}")
        update_utilities(self.utilities, self.counts, batch, self.utility_ema)

    def filled_utilities(self) -> np.ndarray:
        """Estimates with unseen scenarios set to the mean of the seen ones."""
        assert self.utilities is not None
        return filled_utilities(self.utilities)

    def _started(self) -> tuple[Nature, ScenarioSet]:
        if self.nature is None or self.scenarios is None:
            raise ConfigError("AHTCallbacks are not set up yet (no on_algorithm_init)")
        return self.nature, self.scenarios


def aht_callbacks(*, utility_ema: float | None = 0.1, module_id: str = SHARED_MODULE) -> type[AHTCallbacks]:
    """An :class:`AHTCallbacks` subclass with these settings, for ``config.callbacks(...)``."""
    if utility_ema is not None and (
        isinstance(utility_ema, bool) or not isinstance(utility_ema, (int, float)) or not 0 < utility_ema <= 1
    ):
        raise ConfigError(f"utility_ema must be in (0, 1] (or None for a running mean), got {utility_ema!r}")
    if not isinstance(module_id, str) or not module_id:
        raise ConfigError(f"module_id must be a module id (a non-empty str), got {module_id!r}")
    ema = None if utility_ema is None else float(utility_ema)
    return type("AHTCallbacks", (AHTCallbacks,), {"utility_ema": ema, "module_id": module_id})


def _attached_env(env_fn: Callable[[], Any]) -> Any:
    """``env_fn()`` marked as updated: the callbacks this config installs push nature's prior."""
    env = env_fn()
    _aht_env(env).aht_callback_attached = True
    return env


def aht_ppo(
    config: Any,
    env_fn: Callable[[], Any],
    *,
    env_name: str | None = None,
    utility_ema: float | None = 0.1,
) -> Any:
    """A copy of the RLlib ``PPOConfig`` set up for minimax-Bayes AHT on ``env_fn()`` (an ``aht_wrap`` env).

    Registers the env (``env_name``, default ``"rqe-aht"``), maps the focal seat to
    :data:`~rqe_wrappers.rllib.env.SHARED_MODULE`, installs :func:`aht_callbacks`, and turns RLlib's
    env checker off (it would step the focal copies before the learner's snapshot is shared).
    """
    probe = env_fn()
    _aht_env(probe)
    if hasattr(probe, "close"):
        probe.close()
    callbacks = aht_callbacks(utility_ema=utility_ema)
    name = register_env(env_name or "rqe-aht", functools.partial(_attached_env, env_fn))
    out = config.copy(copy_frozen=False)
    # RLlib's env checker steps the env before on_algorithm_init shares the learner: its focal copies
    # would play whatever this process shared under snapshot_name last (another run's policy)
    return (
        out.environment(name, disable_env_checking=True)
        .multi_agent(policies={SHARED_MODULE}, policy_mapping_fn=shared_policy)
        .callbacks(callbacks)
    )
