"""SRPO on RLlib PPO: the KL(shadow || partner) shaping as a Learner connector placed before GAE.

What :class:`rqe_wrappers.sb3.SRPOCallback` does to SB3's rollout buffer, done on RLlib's train
batch: every *shadow* row (role feature = shadow, a real time step: RLlib's loss mask) gets

    -(1/tau) * [log shadow(a|o) - log partner(a|o')]   (+ entropy_coeff * log shadow(a|o))

where ``log shadow(a|o)`` is the sampling-time log-probability (``Columns.ACTION_LOGP``, SB3's
``buffer.log_probs``), ``o'`` is ``o`` with the role set to partner, evaluated by the module the
learner holds before this update (SB3: ``policy.evaluate_actions`` before ``train()``), and the
last term cancels PPO's entropy bonus on shadow rows in expectation (``cancel_entropy``). Partner
rows are untouched. GAE then runs on the shaped rewards.

RLlib's own GAE piece standardises advantages (SB3's ``normalize_advantage=True``), which
rescales the shaping per batch and breaks ``entropy_coeff == eps``; :func:`srpo_ppo` swaps it for
:class:`RawGAE` (same value targets, advantages not standardised) unless ``normalize_advantage=True``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.connectors.common.numpy_to_tensor import NumpyToTensor
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.connectors.learner import GeneralAdvantageEstimation
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.numpy import convert_to_numpy
from ray.rllib.utils.postprocessing.value_predictions import compute_value_targets
from ray.rllib.utils.postprocessing.zero_padding import unpad_data_if_necessary

from rqe_wrappers.core.checks import real
from rqe_wrappers.errors import ConfigError, MissingCallbackError
from rqe_wrappers.rllib.env import SHARED_MODULE, find_attr, register_env, shared_policy, sub_envs
from rqe_wrappers.srpo.features import PARTNER, SHADOW, role_features, set_role

#: the ``learner_config_dict`` key holding SRPO's settings (read by :class:`SRPOPPOTorchLearner`)
SRPO_KEY = "rqe_srpo"


def _numpy(x: Any) -> Any:
    """RLlib's ``convert_to_numpy`` (tensors, nested dicts), typed loosely: its stub's union has no ``astype``."""
    out: Any = convert_to_numpy(x)
    return out


def _rows(x: Any, mask: Any) -> Any:
    return {k: _rows(v, mask) for k, v in x.items()} if isinstance(x, dict) else x[mask]


def _like(x: Any, ref: Any) -> Any:
    """numpy ``x`` as a tensor on ``ref``'s device (nested dicts alike)."""
    if isinstance(x, dict):
        return {k: _like(v, ref[k]) for k, v in x.items()}
    return torch.as_tensor(np.asarray(x), device=ref.device, dtype=ref.dtype)


class SRPOShaping(ConnectorV2):
    """Learner connector: SRPO's KL(shadow || partner) shaping of the shadow rows' rewards (module docstring).

    Args:
        tau: risk aversion (> 0 shapes; 0 leaves the batch alone, plain IPPO).
        entropy_coeff: PPO's entropy coefficient (cancelled on shadow rows when ``cancel_entropy``).
        cancel_entropy: add ``entropy_coeff * log shadow(a|o)`` to shadow rows (SB3 callback's default).
        module_ids: modules to shape (default: every module in the batch).

    After a call, :attr:`last` holds ``{module_id: {"mask", "log_shadow", "log_partner", "shaping"}}``
    (numpy, the batch's row order) for inspection and tests.
    """

    def __init__(
        self,
        input_observation_space: Any = None,
        input_action_space: Any = None,
        *,
        tau: float,
        entropy_coeff: float = 0.0,
        cancel_entropy: bool = True,
        module_ids: tuple[str, ...] | None = None,
        **kwargs: Any,
    ):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.tau = real("tau", tau, low=0, hint="risk aversion; 0 = plain IPPO")
        self.entropy_coeff = real("entropy_coeff", entropy_coeff, low=0)
        self.cancel_entropy = bool(cancel_entropy)
        self.module_ids = module_ids
        self.last: dict[str, dict[str, np.ndarray]] = {}

    def __call__(self, *, rl_module: Any, batch: dict[str, Any], episodes: Any, metrics: Any = None, **kwargs: Any):
        self.last = {}
        if self.tau == 0.0:
            return batch
        for mid, mb in batch.items():
            if self.module_ids is not None and mid not in self.module_ids:
                continue
            self.last[mid] = self._shape(rl_module[mid].unwrapped(), mb)  # DDP wraps it with >1 learner
            if metrics is not None and self.last[mid]["mask"].any():
                kl = self.last[mid]["log_shadow"] - self.last[mid]["log_partner"]
                metrics.log_value((mid, "srpo_kl"), float(kl.mean()), window=1)
                metrics.log_value((mid, "srpo_shaping"), float(self.last[mid]["shaping"].mean()), window=1)
        return batch

    def _shape(self, module: Any, mb: dict[str, Any]) -> dict[str, np.ndarray]:
        obs = _numpy(mb[Columns.OBS])
        mask = np.asarray(role_features(obs))[..., SHADOW] > 0.5
        if Columns.LOSS_MASK in mb:  # RLlib's artificial bootstrap step at each episode chunk's end
            mask &= _numpy(mb[Columns.LOSS_MASK]).astype(bool)
        empty = np.zeros(0)
        if not mask.any():
            return {"mask": mask, "log_shadow": empty, "log_partner": empty, "shaping": empty}
        partner_obs = _like(set_role(_rows(obs, mask), PARTNER), _rows(mb[Columns.OBS], torch.as_tensor(mask)))
        actions = mb[Columns.ACTIONS][torch.as_tensor(mask, device=mb[Columns.ACTIONS].device)]
        with torch.no_grad():
            out = module.forward_train({Columns.OBS: partner_obs})
            dist = module.get_train_action_dist_cls().from_logits(out[Columns.ACTION_DIST_INPUTS])
            log_partner = _numpy(dist.logp(actions)).astype(np.float64)
        log_shadow = _numpy(mb[Columns.ACTION_LOGP]).astype(np.float64)[mask]
        shaping = -(log_shadow - log_partner) / self.tau
        if self.cancel_entropy and self.entropy_coeff:
            shaping = shaping + self.entropy_coeff * log_shadow
        rewards = mb[Columns.REWARDS]
        add = torch.zeros_like(rewards)
        add[torch.as_tensor(mask, device=rewards.device)] = torch.as_tensor(
            shaping, dtype=rewards.dtype, device=rewards.device
        )
        mb[Columns.REWARDS] = rewards + add
        return {"mask": mask, "log_shadow": log_shadow, "log_partner": log_partner, "shaping": shaping}


class RawGAE(ConnectorV2):
    """RLlib's :class:`GeneralAdvantageEstimation` without standardising the advantages (SB3's
    ``normalize_advantage=False``): same value targets, advantages = targets - values. Stateless modules only."""

    def __init__(
        self, input_observation_space: Any = None, input_action_space: Any = None, *, gamma: float, lambda_: float
    ):
        super().__init__(input_observation_space, input_action_space)
        self.gamma, self.lambda_ = float(gamma), float(lambda_)
        self._to_tensor: NumpyToTensor | None = None

    def __call__(self, *, rl_module: Any, batch: dict[str, Any], episodes: Any, **kwargs: Any):
        sa_episodes = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        device = None
        done: dict[str, dict[str, np.ndarray]] = {}
        for mid, mb in batch.items():
            module: Any = rl_module[mid].unwrapped()  # with several learners, DDP wraps the module
            if not isinstance(module, ValueFunctionAPI):
                continue
            if module.is_stateful():
                raise ConfigError(
                    "RawGAE (normalize_advantage=False) supports stateless modules; use normalize_advantage=True"
                )
            values_t = module.compute_values(mb)
            device = values_t.device
            lens = [len(e) for e in sa_episodes if e.module_id in (None, mid)]
            values = unpad_data_if_necessary(lens, _numpy(values_t))
            targets = compute_value_targets(
                values=values,
                rewards=unpad_data_if_necessary(lens, _numpy(mb[Columns.REWARDS])),
                terminateds=unpad_data_if_necessary(lens, _numpy(mb[Columns.TERMINATEDS])),
                truncateds=unpad_data_if_necessary(lens, _numpy(mb[Columns.TRUNCATEDS])),
                gamma=self.gamma,
                lambda_=self.lambda_,
            )
            done[mid] = {Postprocessing.ADVANTAGES: targets - values, Postprocessing.VALUE_TARGETS: targets}
        if not done:
            return batch
        if self._to_tensor is None:
            self._to_tensor = NumpyToTensor(as_learner_connector=True, device=device)
        tensors = self._to_tensor(rl_module=rl_module, batch=done, episodes=episodes)
        for mid, cols in tensors.items():
            batch[mid].update(cols)
        return batch


class SRPOPPOTorchLearner(PPOTorchLearner):
    """RLlib's torch PPO learner with :class:`SRPOShaping` before GAE (and :class:`RawGAE` instead of GAE
    unless ``normalize_advantage``), set from ``config.learner_config_dict["rqe_srpo"]`` (:func:`srpo_ppo`)."""

    def build(self) -> None:
        super().build()
        settings = self.config.learner_config_dict.get(SRPO_KEY)
        pipeline = self._learner_connector
        if settings is None or pipeline is None:
            return
        gae = next((c for c in pipeline.connectors if isinstance(c, GeneralAdvantageEstimation)), None)
        if gae is None:
            raise ConfigError(
                "SRPO needs RLlib's default learner connectors (add_default_connectors_to_learner_pipeline)"
            )
        entropy = getattr(self.config, "entropy_coeff", 0.0)
        if not isinstance(entropy, (int, float)) or isinstance(entropy, bool):
            raise ConfigError(f"SRPO cancels a constant entropy_coeff on shadow rows; got a schedule {entropy!r}")
        pipeline.insert_before(
            GeneralAdvantageEstimation,
            SRPOShaping(tau=settings["tau"], entropy_coeff=float(entropy), cancel_entropy=settings["cancel_entropy"]),
        )
        if not settings["normalize_advantage"]:
            pipeline.insert_after(GeneralAdvantageEstimation, RawGAE(gamma=gae.gamma, lambda_=gae.lambda_))
            pipeline.remove(GeneralAdvantageEstimation)

    @property
    def srpo_shaping(self) -> SRPOShaping | None:
        """The shaping piece of this learner's pipeline (``None`` without SRPO)."""
        pipeline = self._learner_connector
        return next((c for c in pipeline.connectors if isinstance(c, SRPOShaping)), None) if pipeline else None


class SRPOCallbacks(RLlibCallback):
    """Env-runner side of SRPO: checks each env copy is ``srpo_wrap``-ped with the learner's tau and marks
    it as shaped (no ``MissingCallbackWarning``)."""

    def on_environment_created(self, *, env_runner: Any, env: Any, **kwargs: Any) -> None:
        settings = env_runner.config.learner_config_dict.get(SRPO_KEY)
        for sub in sub_envs(env_runner) or [getattr(env, "unwrapped", env)]:
            shadow = _shadow_env(sub)
            if settings is not None and float(shadow.srpo_tau) != float(settings["tau"]):
                raise ConfigError(f"the env has srpo tau {shadow.srpo_tau}, the learner shapes with {settings['tau']}")
            shadow.srpo_callback_attached = True


def _shadow_env(env: Any) -> Any:
    try:
        return find_attr(env, "srpo_tau")
    except ConfigError:
        raise MissingCallbackError(
            "SRPO on RLlib needs an env wrapped with srpo_wrap(...); this env has no shadow (no 'srpo_tau')"
        ) from None


def _shaped_env(env_fn: Callable[[], Any]) -> Any:
    """``env_fn()`` marked as shaped: the learner this config installs pays the shadow its KL penalty."""
    env = env_fn()
    _shadow_env(env).srpo_callback_attached = True
    return env


def srpo_ppo(
    config: Any,
    env_fn: Callable[[], Any],
    *,
    env_name: str | None = None,
    cancel_entropy: bool = True,
    normalize_advantage: bool = False,
) -> Any:
    """A copy of the RLlib ``PPOConfig`` set up for SRPO on ``env_fn()`` (an ``srpo_wrap``-ped parallel env).

    Registers the env (``env_name``, default ``"rqe-srpo"``), maps every seat to :data:`SHARED_MODULE`,
    installs :class:`SRPOPPOTorchLearner` (tau read from the env) and :class:`SRPOCallbacks`. Set
    ``entropy_coeff`` (the RQE's eps), ``use_kl_loss=False`` and the rest on ``config`` as usual.
    """
    probe = env_fn()
    tau = float(_shadow_env(probe).srpo_tau)
    if hasattr(probe, "close"):
        probe.close()
    name = register_env(env_name or "rqe-srpo", functools.partial(_shaped_env, env_fn))
    out = config.copy(copy_frozen=False)
    return (
        out.environment(name)
        .multi_agent(policies={SHARED_MODULE}, policy_mapping_fn=shared_policy)
        .learners(
            learner_class=SRPOPPOTorchLearner,
            learner_config_dict={
                SRPO_KEY: {
                    "tau": tau,
                    "cancel_entropy": bool(cancel_entropy),
                    "normalize_advantage": bool(normalize_advantage),
                }
            },
        )
        .callbacks(SRPOCallbacks)
    )
