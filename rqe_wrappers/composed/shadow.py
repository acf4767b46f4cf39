"""The trained composition's three pieces: a member's shadow, the shadow's training seat, the learner's KL bonus.

One adversary network serves every member: as the robustness audit's trained adversary
(:mod:`rqe_wrappers.eval.adversary`) it sees the reference's log-probabilities appended to its
observation and plays ``softmax(log sigma(.|o) + f(o, log sigma(.|o)))`` (``ResidualPolicy``), so
it starts at each member and learns the deviation, conditioned on the member through
``log sigma``. The learner's scenarios seat :class:`ShadowPartner` (that network, shared as a
snapshot, with one member as reference) where :func:`~rqe_wrappers.aht.wrapper.aht_wrap` would seat
the member; :class:`ShadowBonus` pays the learner the shadow's KL (docs/composed.md, "What the
learner is paid"); :class:`ShadowSeat` is the env the network trains in. Docs: docs/composed.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import gymnasium as gym
import numpy as np
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper

from rqe_wrappers.aht.nature import normalized_prior
from rqe_wrappers.aht.seating import make_seating
from rqe_wrappers.aht.wrapper import AHTWrapper
from rqe_wrappers.core.checks import real
from rqe_wrappers.core.dispatch import check_api
from rqe_wrappers.core.policy import DiscretePolicy, Policy, check_policy_spaces
from rqe_wrappers.core.seeding import categorical, stream
from rqe_wrappers.core.snapshot import shared
from rqe_wrappers.core.view import learner_snapshot
from rqe_wrappers.errors import ConfigError, SeatError
from rqe_wrappers.eval.adversary import adversary_space, check_adversary_spaces, log_reference

__all__ = ["SHADOW_SNAPSHOT", "ShadowBonus", "ShadowPartner", "ShadowSeat", "kl_to_reference"]

#: the snapshot name under which the shadow network is shared
SHADOW_SNAPSHOT = "composed/shadow"


def kl_to_reference(probs: np.ndarray, log_ref: np.ndarray) -> np.ndarray:
    """Row-wise ``KL(probs || ref)`` with ``log ref`` clipped at :data:`LOG_FLOOR`, as the shadow sees it."""
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * (np.log(p) - np.asarray(log_ref, dtype=np.float64)), 0.0).sum(axis=1)


class ShadowPartner(DiscretePolicy):
    """The shadow of ``reference``: the network shared as snapshot ``name`` fed ``obs + log reference(.|obs)``.

    Before the first share it plays the reference itself (the untrained residual network does too).
    ``last_kl``: ``KL(shadow || reference)`` of every row it last acted on (exact, per observation).
    """

    def __init__(self, reference: Policy, name: str = SHADOW_SNAPSHOT):
        if not callable(getattr(reference, "action_probs", None)):
            raise ConfigError(
                f"the shadow's reference must expose action_probs (a DiscretePolicy or an SB3Policy), "
                f"got {type(reference).__name__}"
            )
        super().__init__(reference.observation_space, reference.action_space)
        self.reference, self.name = reference, name
        self.last_kl = np.zeros(0)

    def action_probs(self, obs, *, state=None):
        obs = np.asarray(obs, dtype=np.float32)
        log_ref = log_reference(self.reference, obs)
        live = shared(self.name)
        if live is None:
            probs = np.asarray(cast(Any, self.reference).action_probs(obs), dtype=np.float64)
        else:
            probs = np.asarray(cast(Any, live).action_probs(np.concatenate([obs, log_ref], axis=1)), dtype=np.float64)
        self.last_kl = kl_to_reference(probs, log_ref)
        return probs

    def __repr__(self) -> str:
        return f"ShadowPartner({getattr(self.reference, 'name', type(self.reference).__name__)!r}, {self.name!r})"


class ShadowBonus(BaseParallelWrapper):
    """Over an :class:`~rqe_wrappers.aht.wrapper.AHTWrapper` whose members are :class:`ShadowPartner`:
    adds ``(1/tau) KL(shadow || member)`` of the partner's move to the learner's reward.

    The episode's ``focal_return`` (nature's utility sample) gets the same bonus, so nature estimates
    ``V_tau``; the step's KL is in ``infos["focal"]["shadow_kl"]``. Self-play scenarios (copies, no
    shadow) get none.
    """

    def __init__(self, env: AHTWrapper, tau: float):
        if not isinstance(env, AHTWrapper):
            raise TypeError(f"ShadowBonus wraps the env aht_wrap returns, got {type(env).__name__}")
        t = real("tau", tau, low=0, hint="the shadow's KL price 1/tau")
        if t == 0:
            raise ConfigError("tau = 0 means no shadow and no bonus: use the aht_wrap env as it is")
        super().__init__(env)
        self.aht, self.tau = env, float(t)
        self._bonus = 0.0

    def _shadows(self) -> list[ShadowPartner]:
        members = [name for kind, name in self.aht.seating.values() if kind == "background"]
        return [p for m in members if isinstance(p := self.aht.population[m], ShadowPartner)]

    def reset(self, seed=None, options=None):
        self._bonus = 0.0
        return self.env.reset(seed=seed, options=options)

    def step(self, actions):
        shadows = self._shadows()
        for p in shadows:
            p.last_kl = np.zeros(0)
        obs, rewards, term, trunc, infos = self.env.step(actions)
        kl = float(sum(p.last_kl.sum() for p in shadows))
        (a,) = rewards
        rewards = {a: rewards[a] + kl / self.tau}
        self._bonus += kl / self.tau
        info = {**infos[a], "shadow_kl": kl}
        if "focal_return" in info:
            info["focal_return"] = info["focal_return"] + self._bonus
        return obs, rewards, term, trunc, {a: info}


class ShadowSeat(BaseParallelWrapper):
    """The env the shadow network trains in: one seat, ``"shadow"``, in a two-seat game.

    At every ``reset`` a member ``s`` is drawn from the prior ``beta`` (:meth:`set_prior`, pushed from
    nature) and the seats are shuffled (seeded stream ``"composed-shadow"``); the learner's snapshot
    (``learner``, shared by the trainer) plays the other seat. The shadow observes its seat's
    observation with ``log sigma_s(.|o)`` appended and is paid minus the learner's reward; the KL
    shaping (``eval.adversary.ReferenceKLCallback``) does the rest. Infos carry ``scenario`` and
    ``scenario_index``.
    """

    def __init__(
        self,
        env: ParallelEnv | AECEnv,
        members: Mapping[str, Policy],
        learner: str = "learner",
        beta: np.ndarray | None = None,
    ):
        check_api(env, "ShadowSeat")
        seats = list(env.possible_agents)
        if len(seats) != 2:
            raise SeatError(f"the composed shadow is defined for two-seat games; the env has seats {seats}")
        obs_space, act_space = env.observation_space(seats[0]), env.action_space(seats[0])
        for seat in seats:
            check_adversary_spaces(env.observation_space(seat), env.action_space(seat), seat)
        if not isinstance(members, Mapping) or not members:
            raise ConfigError("ShadowSeat needs a non-empty {name: Policy} of members (the shadow's references)")
        for name, m in members.items():
            check_policy_spaces(m, obs_space, act_space, f"member {name!r}")
        super().__init__(cast(Any, env))
        self.members = dict(members)
        self.ids = [f"c1:{m}" for m in self.members]
        self.possible_agents = ["shadow"]
        self.agents: list[str] = []
        self._env_seats = seats
        self._learner = learner_snapshot(obs_space, act_space, learner)
        self._seating = make_seating(env)
        n = int(cast(gym.spaces.Discrete, act_space).n)
        self._space = adversary_space(obs_space, n)
        self._act_space = act_space
        self._beta = normalized_prior(np.ones(len(self.members)) if beta is None else beta, len(self.members))
        self._rng = stream(None, "composed-shadow")
        self._seeded = False
        self._index = -1
        self._learner_seat = ""

    def observation_space(self, agent):
        return self._space

    def action_space(self, agent):
        return self._act_space

    def set_prior(self, beta: Any) -> None:
        """Nature's prior over the members (one weight per member, normalised here), from the next ``reset``."""
        self._beta = normalized_prior(beta, len(self.members))

    def _augment(self, obs: np.ndarray) -> np.ndarray:
        ref = list(self.members.values())[self._index]
        o = np.asarray(obs, dtype=np.float32)
        return np.concatenate([o, log_reference(ref, o[None])[0]]).astype(np.float32)

    def _info(self, info: dict) -> dict:
        return {**info, "scenario": self.ids[self._index], "scenario_index": self._index}

    def reset(self, seed=None, options=None):
        if seed is not None or not self._seeded:
            self._rng = stream(seed, "composed-shadow")
            self._seeded = seed is not None
        self._index = int(categorical(self._beta, self._rng))
        shadow, self._learner_seat = (self._env_seats[i] for i in self._rng.permutation(2))
        obs, info = self._seating.reset(seed, options, shadow, {self._learner_seat: self._learner})
        self.agents = ["shadow"]
        return {"shadow": self._augment(obs)}, {"shadow": self._info(info)}

    def step(self, actions):
        if not self.agents:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        obs, rewards, term, trunc, info = self._seating.step(actions["shadow"])
        reward = -float(rewards.get(self._learner_seat, 0.0))
        info = {**self._info(info), "learner_reward": -reward}
        if term or trunc:
            self.agents = []
        out = self._augment(obs) if obs is not None else np.zeros(self._space.shape, np.float32)
        return {"shadow": out}, {"shadow": reward}, {"shadow": term}, {"shadow": trunc}, {"shadow": info}
