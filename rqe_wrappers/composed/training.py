"""Training the composition with stock SB3 PPO: a learner in AHT scenarios whose partners are SRPO shadows.

Two PPO models take turns, ``phases`` times: the **shadow** (``eval.adversary.ResidualPolicy`` in
:class:`~rqe_wrappers.composed.shadow.ShadowSeat`, KL-shaped by ``eval.adversary.ReferenceKLCallback``)
trains ``shadow_steps`` against the frozen learner, members drawn from nature's prior; then the
**learner** trains ``learner_steps`` in ``aht_wrap`` scenarios ``c1:<member>`` where the member's
seat is played by its shadow (:class:`~rqe_wrappers.composed.shadow.ShadowPartner`), paid the
shadow's KL (:class:`~rqe_wrappers.composed.shadow.ShadowBonus`), with
:class:`~rqe_wrappers.sb3.AHTCallback` moving nature's prior. ``tau = 0`` is plain minimax-Bayes
AHT on the same code path (no shadow). Docs: docs/composed.md.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch as th
from pettingzoo import AECEnv, ParallelEnv
from stable_baselines3 import PPO

from rqe_wrappers.aht.config import AHTConfig
from rqe_wrappers.aht.population import population_policies
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.aht.wrapper import aht_wrap
from rqe_wrappers.composed.batched import batched_learner_env, batched_shadow_env
from rqe_wrappers.composed.shadow import SHADOW_SNAPSHOT, ShadowBonus, ShadowPartner, ShadowSeat
from rqe_wrappers.core.checks import integer, real
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.errors import ConfigError, SeatError
from rqe_wrappers.eval.adversary import BatchedAdversaryVecEnv, ReferenceKLCallback, ResidualPolicy
from rqe_wrappers.sb3.aht_callback import AHTCallback
from rqe_wrappers.sb3.env_util import make_vec_env
from rqe_wrappers.sb3.learner_snapshot import share_policy
from rqe_wrappers.sb3.sb3_policy import SB3Policy

__all__ = ["LEARNER_PPO", "SHADOW_PPO", "ComposedResult", "train_composed"]

#: the learner's PPO settings unless given (the IPD experiment's, docs/ipd-reproduction.md)
LEARNER_PPO: dict[str, Any] = {"n_steps": 64, "batch_size": 256, "n_epochs": 4, "ent_coef": 0.01, "gamma": 1.0}
#: the shadow's (the trained audit's: no entropy bonus, the KL is its regulariser; unnormalised advantages)
SHADOW_PPO: dict[str, Any] = {
    "n_steps": 64,
    "batch_size": 256,
    "n_epochs": 4,
    "gamma": 1.0,
    "normalize_advantage": False,
    "learning_rate": 1e-3,
}
LEARNER = "learner"


@dataclass
class ComposedResult:
    """What :func:`train_composed` returns.

    ``learner``, ``shadow``: the two PPO models (``shadow`` is ``None`` at ``tau = 0``); ``scenario_ids``:
    nature's scenarios in order; ``beta``: nature's final prior; ``history``: one row per phase
    (``phase``, ``steps``, ``beta``, ``utilities``: nature's estimates of ``V_tau`` per scenario).
    """

    learner: Any
    shadow: Any | None
    tau: float
    scenario_ids: tuple[str, ...]
    beta: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _learner_env(
    env_fn: Callable[[], ParallelEnv | AECEnv],
    members: Mapping[str, Policy],
    scenarios: ScenarioSet,
    tau: float,
    aht_kwargs: dict[str, Any],
):
    population = {name: ShadowPartner(m) for name, m in members.items()} if tau > 0 else dict(members)
    wrapped = aht_wrap(env_fn(), population, scenarios=scenarios, snapshot_name=LEARNER, **aht_kwargs)
    return ShadowBonus(wrapped, tau) if tau > 0 else wrapped


def _shadow_env(env_fn: Callable[[], ParallelEnv | AECEnv], members: Mapping[str, Policy]) -> ShadowSeat:
    return ShadowSeat(env_fn(), members, learner=LEARNER)


def _aht_config(
    prior: str, best_responses: Sequence[float] | Mapping[str, float] | None, lr: float, uniform_mix: float
) -> AHTConfig:
    """The batched path's AHT settings (``aht_wrap``'s keywords on the per-copy path)."""
    brs: dict[str, float] | tuple[float, ...] | None = None
    if isinstance(best_responses, Mapping):
        brs = dict(best_responses)
    elif best_responses is not None:
        brs = tuple(best_responses)
    return AHTConfig(prior=prior, lr=lr, uniform_mix=uniform_mix, best_responses=brs)


def _push_prior(svenv: Any, beta: Any) -> None:
    """Nature's prior to the shadow's env: the batched wrapper's own method, else every copy's ``ShadowSeat``."""
    if isinstance(svenv, BatchedAdversaryVecEnv):
        svenv.set_prior(beta)
    else:
        svenv.env_method("set_prior", beta)


def train_composed(
    env_fn: Callable[[], ParallelEnv | AECEnv],
    population: Any,
    tau: float,
    *,
    prior: str = "maximin-utility",
    best_responses: Sequence[float] | Mapping[str, float] | None = None,
    phases: int = 10,
    learner_steps: int = 8192,
    shadow_steps: int = 8192,
    n_copies: int = 16,
    n_workers: int = 0,
    seed: int = 0,
    nature_lr: float = 0.01,
    uniform_mix: float = 0.05,
    utility_ema: float = 0.1,
    learner_kwargs: Mapping[str, Any] | None = None,
    shadow_kwargs: Mapping[str, Any] | None = None,
    device: str = "cpu",
    progress: Callable[[dict[str, Any]], None] | None = None,
    batched: Callable[[int], Any] | None = None,
) -> ComposedResult:
    """Train a risk-averse learner against nature's worst-case prior over ``population`` (docs/composed.md).

    Args:
        env_fn: builds a two-seat PettingZoo env (parallel or AEC; seats with one flat ``Box``
            observation space and one ``Discrete`` action space), e.g. ``functools.partial(cooking_env, "train")``.
        population: ``{name: Policy}`` or a zoo population (``load_population("cooking/...")``): the
            members, each the shadow's reference in its scenario ``c1:<name>``; each needs
            ``action_probs`` (scripted discrete policies, SB3 and zoo members have it).
        tau: the shadow's KL price ``1/tau``, as in ``srpo_wrap`` (``0``: no shadow, plain AHT).
        prior: nature's ``"maximin-utility"`` or ``"minimax-regret"`` (with ``best_responses``: ``V*_tau``
            per scenario), or a fixed ``"uniform"`` (the population best response).
        phases, learner_steps, shadow_steps: turns, and env steps per turn of each model.
        n_copies, n_workers: env copies and subprocess workers of each VecEnv (``make_vec_env``).
        seed: seeds both models and both VecEnvs; one seed gives one result.
        nature_lr, uniform_mix, utility_ema: nature's step size, uniform mixing, utility averaging.
        learner_kwargs, shadow_kwargs: PPO arguments over :data:`LEARNER_PPO` / :data:`SHADOW_PPO`
            (e.g. ``policy_kwargs``); the shadow's ``ent_coef`` is always 0.
        device: the models' torch device.
        progress: called with each phase's history row.
        batched: the env's batched twin, a function ``n -> batched env of n copies`` (e.g.
            ``functools.partial(BatchedCooking, layout="train")``): both models train on ``n_copies``
            copies stepped as arrays (:mod:`rqe_wrappers.composed.batched`; ``n_workers`` unused), the
            learner always in the first seat and the shadow in the second.
    """
    t = real("tau", tau, low=0, hint="the shadow's KL price 1/tau: 0 = no shadow (plain AHT)")
    integer("phases", phases, low=1)
    integer("learner_steps", learner_steps, low=1)
    integer("shadow_steps", shadow_steps, low=1)
    if prior not in ("maximin-utility", "minimax-regret", "uniform"):
        raise ConfigError(f"prior must be 'maximin-utility', 'minimax-regret' or 'uniform', got {prior!r}")
    probe = env_fn()
    found = population_policies(population, probe)
    if not found:
        raise ConfigError("train_composed needs a non-empty population (the shadows' references)")
    if len(probe.possible_agents) != 2:
        raise SeatError(f"train_composed is defined for two-seat games; the env has seats {probe.possible_agents}")
    scenarios = ScenarioSet.all(2, list(found)).restrict(lambda sc: sc.n_focal == 1)
    probe.close()
    members = {sc.background[0]: found[sc.background[0]] for sc in scenarios}  # nature's order, for both envs
    for name, m in members.items():
        if not callable(getattr(m, "action_probs", None)):
            raise ConfigError(f"member {name!r} has no action_probs, so it cannot be the shadow's KL reference")
    if shadow_kwargs and "ent_coef" in shadow_kwargs:
        raise ConfigError("the shadow's ent_coef is 0 (its KL to the member is its only regulariser); drop it")
    th.set_num_threads(1)
    aht_kwargs = {"prior": prior, "best_responses": best_responses, "lr": nature_lr, "uniform_mix": uniform_mix}
    venv: Any
    svenv: Any
    if batched is not None:
        config = _aht_config(prior, best_responses, nature_lr, uniform_mix)
        venv = batched_learner_env(batched, n_copies, members, scenarios, t, config, seed)
        svenv = batched_shadow_env(batched, n_copies, members, LEARNER, seed + 7919) if t > 0 else None
    else:
        venv = make_vec_env(
            functools.partial(_learner_env, env_fn, members, scenarios, t, aht_kwargs), n_copies, n_workers, seed=seed
        )
        svenv = (
            make_vec_env(functools.partial(_shadow_env, env_fn, members), n_copies, n_workers, seed=seed + 7919)
            if t > 0
            else None
        )
    t0 = time.perf_counter()
    try:
        learner = PPO(
            "MlpPolicy", venv, seed=seed, device=device, verbose=0, **{**LEARNER_PPO, **(learner_kwargs or {})}
        )
        shadow = None
        if svenv is not None:
            kwargs = {**SHADOW_PPO, **(shadow_kwargs or {})}
            shadow = PPO(ResidualPolicy, svenv, seed=seed, device=device, ent_coef=0.0, verbose=0, **kwargs)
        callback = AHTCallback(utility_ema=utility_ema)
        kl_callback = ReferenceKLCallback(t) if t > 0 else None
        history: list[dict[str, Any]] = []
        for phase in range(int(phases)):
            if shadow is not None and svenv is not None:
                share_policy(svenv, LEARNER, SB3Policy.from_model(learner))
                if callback.beta is not None:
                    _push_prior(svenv, callback.beta)
                shadow.learn(int(shadow_steps), callback=kl_callback, reset_num_timesteps=False)
                share_policy(venv, SHADOW_SNAPSHOT, SB3Policy.from_model(shadow))
            learner.learn(int(learner_steps), callback=callback, reset_num_timesteps=False)
            ids = callback.scenarios.ids if callback.scenarios is not None else ()
            row = {
                "phase": phase,
                "steps": int(learner.num_timesteps),
                "beta": dict(zip(ids, np.asarray(callback.beta, dtype=float).tolist(), strict=True)),
                "utilities": dict(zip(ids, np.asarray(callback.utilities, dtype=float).tolist(), strict=True)),
            }
            history.append(row)
            if progress is not None:
                progress(row)
    finally:
        venv.close()
        if svenv is not None:
            svenv.close()
    ids = tuple(callback.scenarios.ids) if callback.scenarios is not None else ()
    return ComposedResult(
        learner=learner,
        shadow=shadow,
        tau=t,
        scenario_ids=ids,
        beta=dict(zip(ids, np.asarray(callback.beta, dtype=float).tolist(), strict=True)),
        history=history,
        seconds=time.perf_counter() - t0,
    )
