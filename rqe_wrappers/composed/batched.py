"""The composition on the batched path: the learner's and the shadow's VecEnvs over a batched twin.

The learner trains in ``batched_vec_env(..., population=...)``'s ``c1`` scenarios (seat 0, the
members in seat 1) where each member is its :class:`~rqe_wrappers.composed.shadow.ShadowPartner`;
:class:`BatchedShadowBonus` pays the learner the shadow's KL as :class:`~rqe_wrappers.composed.shadow.ShadowBonus`
does per copy. The shadow trains in :func:`~rqe_wrappers.eval.adversary.batched_adversary_env` (seat 1,
the learner's snapshot in seat 0), each copy's reference drawn from nature's prior. Docs: docs/composed.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnvWrapper

from rqe_wrappers.aht.config import AHTConfig
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.batched.vec_env import BatchedVecEnv
from rqe_wrappers.composed.shadow import ShadowPartner
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.core.view import learner_snapshot
from rqe_wrappers.errors import ConfigError, SeatError
from rqe_wrappers.eval.adversary import BatchedAdversaryVecEnv, batched_adversary_env

__all__ = ["BatchedShadowBonus", "batched_learner_env", "batched_shadow_env"]


class BatchedShadowBonus(VecEnvWrapper):
    """Adds ``(1/tau) KL(shadow || member)`` of each copy's partner move to the learner's reward.

    Wraps an AHT :class:`~rqe_wrappers.batched.vec_env.BatchedVecEnv` whose scenario ``i`` seats
    ``partners[i]`` (a :class:`ShadowPartner`). The episode's ``focal_return`` gets the episode's
    bonus too, so nature estimates ``V_tau``; ``shadow_kl`` is in every info.
    """

    def __init__(self, venv: BatchedVecEnv, partners: Sequence[ShadowPartner], tau: float):
        if not isinstance(venv, BatchedVecEnv) or venv.aht is None:
            raise ConfigError("BatchedShadowBonus wraps a BatchedVecEnv built with a population (AHT)")
        if len(partners) != len(venv.aht.scenarios) or not all(isinstance(p, ShadowPartner) for p in partners):
            raise ConfigError(f"BatchedShadowBonus needs one ShadowPartner per scenario ({len(venv.aht.scenarios)})")
        if not tau > 0:
            raise ConfigError("tau = 0 means no shadow and no bonus: use the AHT VecEnv as it is")
        super().__init__(venv)
        self.batched, self.partners, self.tau = venv, list(partners), float(tau)
        self._acc = np.zeros(venv.n_copies)
        self._index = np.zeros(venv.n_copies, np.int64)

    def reset(self) -> np.ndarray:
        self._acc[:] = 0.0
        return np.asarray(self.venv.reset())

    def step_async(self, actions: np.ndarray) -> None:
        assert self.batched.aht is not None
        self._index = self.batched.aht.index.copy()  # this step's scenarios (the ended copies draw new ones)
        for p in self.partners:
            p.last_kl = np.zeros(0)
        self.venv.step_async(actions)

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        kl = np.zeros(len(self._index))
        for i, p in enumerate(self.partners):
            copies = np.flatnonzero(self._index == i)  # the rows it acted on, copy-major (BatchedBackground.fill)
            if len(copies) and len(p.last_kl) == len(copies):
                kl[copies] = p.last_kl
            elif len(copies):
                raise RuntimeError(f"shadow {i} acted on {len(p.last_kl)} rows for {len(copies)} copies")
        bonus = kl / self.tau
        self._acc += bonus
        for c, info in enumerate(infos):
            info["shadow_kl"] = float(kl[c])
            if "focal_return" in info:
                info["focal_return"] += float(self._acc[c])
        self._acc[np.asarray(dones, bool)] = 0.0
        return obs, (np.asarray(rewards) + bonus).astype(np.float32), dones, infos


def batched_learner_env(
    batched: Callable[[int], Any],
    n_copies: int,
    members: Mapping[str, Policy],
    scenarios: ScenarioSet,
    tau: float,
    config: AHTConfig,
    seed: int,
) -> BatchedVecEnv | BatchedShadowBonus:
    """The learner's VecEnv: ``c1`` scenarios over ``members`` (their shadows at ``tau > 0``), learner in seat 0."""
    env = batched(int(n_copies))
    seats = list(env.possible_agents)
    if len(seats) != 2:
        raise SeatError(f"the composition is defined for two-seat games; the batched env has seats {seats}")
    partners = [ShadowPartner(m) for m in members.values()] if tau > 0 else list(members.values())
    population = dict(zip(members, partners, strict=True))
    venv = BatchedVecEnv(env, population=population, aht=config, scenarios=scenarios, learn=seats[0])
    venv.seed(seed)
    return BatchedShadowBonus(venv, partners, tau) if tau > 0 else venv  # type: ignore[arg-type]


def batched_shadow_env(
    batched: Callable[[int], Any], n_copies: int, members: Mapping[str, Policy], learner: str, seed: int
) -> BatchedAdversaryVecEnv:
    """The shadow's VecEnv: seat 1 against the learner's snapshot ``learner`` in seat 0, references ``members``."""
    probe = batched(1)
    seats = list(probe.possible_agents)
    snapshot = learner_snapshot(probe.observation_space(seats[0]), probe.action_space(seats[0]), learner)
    return batched_adversary_env(batched, n_copies, {seats[0]: snapshot}, seats[0], list(members.values()), seed)
