"""A trained KL-regularised adversary: PPO plays the partner's seat against a frozen agent.

The smallest variant of SRPO's shadow that audits a *fixed* agent. SRPO's KL reference is the
learner's own network in the partner role (:mod:`rqe_wrappers.sb3.srpo_callback` evaluates the
model with the role flipped), so it cannot be a fixed partner policy. Here the frozen agent and
the other seats are background seats (:func:`~rqe_wrappers.seats.background.background_seats`);
the one learning seat is paid minus the agent's reward (as the shadow is) and sees the
reference's log-probabilities appended to its observation (:class:`AdversarySeat`);
:class:`ResidualPolicy` adds them to its logits, so it starts *at* the reference and learns the
deviation ``log p - log ref`` (the exact one is ``-tau Q``, a smooth function), and
:class:`ReferenceKLCallback` shapes every step with ``-(1/tau) [log p(a|o) - log ref(a|o)]``.
Docs: docs/evaluation.md, "Robustness audit".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch as th
from pettingzoo import ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy

from rqe_wrappers.core.policy import DiscretePolicy, Policy
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.eval.episodes import play_episodes
from rqe_wrappers.sb3.env_util import make_vec_env
from rqe_wrappers.sb3.sb3_policy import SB3Policy
from rqe_wrappers.seats.background import background_seats

__all__ = [
    "LOG_FLOOR",
    "AdversarySeat",
    "KLMeter",
    "ReferenceKLCallback",
    "ResidualAdversary",
    "ResidualPolicy",
    "evaluate_deviation",
    "train_adversary",
]

#: log-probabilities of the reference are clipped here (an action it never plays stays out of reach)
LOG_FLOOR = -30.0


def log_reference(reference: Policy, obs: np.ndarray) -> np.ndarray:
    """``log ref(.|obs)`` clipped at :data:`LOG_FLOOR`, float32, shape ``(batch, n_actions)``."""
    probs = np.asarray(cast(Any, reference).action_probs(obs), dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(probs), LOG_FLOOR).astype(np.float32)


def check_adversary_spaces(observation_space: gym.Space, action_space: gym.Space, seat: str) -> None:
    """:class:`ConfigError` unless the partner's seat has flat Box observations and Discrete actions."""
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
        raise ConfigError(
            f"the trained audit appends the reference's log-probabilities to {seat!r}'s observation, so it needs "
            f"a flat Box; got {observation_space}. Flatten it first (gymnasium.spaces.flatten_space)"
        )
    if not isinstance(action_space, gym.spaces.Discrete):
        raise ConfigError(f"the trained audit needs Discrete actions in {seat!r}, got {action_space}")


class AdversarySeat(BaseParallelWrapper):
    """The one non-background seat: paid minus ``agent_seat``'s reward, observation + ``log ref(.|o)``."""

    def __init__(self, env: ParallelEnv, agent_seat: str, reference: Policy):
        super().__init__(env)
        self.agent_seat, self.reference = agent_seat, reference
        (self.seat,) = env.possible_agents
        space = env.observation_space(self.seat)
        check_adversary_spaces(space, env.action_space(self.seat), self.seat)
        n = int(env.action_space(self.seat).n)
        self._space = gym.spaces.Box(
            np.concatenate([np.broadcast_to(space.low, space.shape), np.full(n, LOG_FLOOR)]).astype(np.float32),
            np.concatenate([np.broadcast_to(space.high, space.shape), np.zeros(n)]).astype(np.float32),
        )

    def observation_space(self, agent):
        return self._space

    def _augment(self, obs: dict) -> dict:
        return {
            a: np.concatenate([o, log_reference(self.reference, o[None])[0]]).astype(np.float32) for a, o in obs.items()
        }

    def reset(self, seed=None, options=None):
        obs, infos = self.env.reset(seed=seed, options=options)
        return self._augment(obs), infos

    def step(self, actions):
        obs, rew, term, trunc, infos = self.env.step(actions)
        paid = -float(cast(Any, self.env).background_rewards.get(self.agent_seat, 0.0))
        return self._augment(obs), {a: paid for a in rew}, term, trunc, infos


def _adversary_env(
    env_fn: Callable[[], Any], fixed: Mapping[str, Policy], agent_seat: str, reference: Policy
) -> AdversarySeat:
    return AdversarySeat(background_seats(env_fn(), fixed), agent_seat, reference)


class ResidualPolicy(ActorCriticPolicy):
    """SB3's actor-critic whose logits are ``log ref`` (the observation's last ``n`` entries) + the network's output.

    The output layer starts at zero, so the untrained policy *is* the reference.
    """

    def _build(self, lr_schedule: Any) -> None:
        super()._build(lr_schedule)
        action_net = cast(th.nn.Linear, self.action_net)
        th.nn.init.zeros_(action_net.weight)
        th.nn.init.zeros_(action_net.bias)

    def _latents(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        features = self.extract_features(obs)
        if self.share_features_extractor:
            return self.mlp_extractor(features)
        pi_features, vf_features = features
        return self.mlp_extractor.forward_actor(pi_features), self.mlp_extractor.forward_critic(vf_features)

    def _residual(self, obs: th.Tensor, latent_pi: th.Tensor) -> Distribution:
        n = int(cast(gym.spaces.Discrete, self.action_space).n)
        logits = self.action_net(latent_pi) + obs[..., -n:].float()
        return cast(Any, self.action_dist).proba_distribution(action_logits=logits)

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        latent_pi, latent_vf = self._latents(obs)
        dist = self._residual(obs, latent_pi)
        actions = dist.get_actions(deterministic=deterministic)
        return actions.reshape(-1), self.value_net(latent_vf), dist.log_prob(actions)  # Discrete: one per row

    def evaluate_actions(self, obs: Any, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        latent_pi, latent_vf = self._latents(obs)
        dist = self._residual(obs, latent_pi)
        return self.value_net(latent_vf), dist.log_prob(actions), dist.entropy()

    def get_distribution(self, obs: Any) -> Distribution:
        return self._residual(obs, self._latents(obs)[0])


class ReferenceKLCallback(BaseCallback):
    """Adds ``-(1/tau) [log p(a|o) - log ref(a|o)]`` to every row of PPO's rollout buffer, then recomputes returns.

    The sampled form of ``KL(p || ref)`` at every step, as :class:`~rqe_wrappers.sb3.SRPOCallback`
    shapes the shadow; ``log ref`` is read from the observation (:class:`AdversarySeat` put it there).
    """

    def __init__(self, tau: float):
        super().__init__(0)
        self.tau = float(tau)

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        model = cast(OnPolicyAlgorithm, self.model)
        buf = model.rollout_buffer
        n = int(cast(gym.spaces.Discrete, model.action_space).n)
        log_ref_all = np.asarray(buf.observations)[..., -n:].reshape(-1, n)
        actions = buf.actions.reshape(-1).astype(np.int64)
        log_ref = log_ref_all[np.arange(len(actions)), actions].astype(np.float64)
        kl = buf.log_probs.reshape(-1).astype(np.float64) - log_ref
        buf.rewards += (-kl / self.tau).reshape(buf.rewards.shape).astype(buf.rewards.dtype)
        values, dones = self.locals.get("values"), self.locals.get("dones")
        if values is None or dones is None:
            raise RuntimeError("ReferenceKLCallback expects SB3's rollout locals 'values' and 'dones' at rollout end")
        buf.compute_returns_and_advantage(last_values=values, dones=dones)
        self.logger.record("audit/kl", float(kl.mean()))


class ResidualAdversary(DiscretePolicy):
    """The trained adversary as a :class:`Policy` of the raw seat: feeds it ``obs + log ref(.|obs)``."""

    def __init__(self, trained: SB3Policy, reference: Policy):
        super().__init__(reference.observation_space, reference.action_space)
        self.trained, self.reference = trained, reference

    def action_probs(self, obs, *, state=None):
        obs = np.asarray(obs, dtype=np.float32)
        return self.trained.action_probs(np.concatenate([obs, log_reference(self.reference, obs)], axis=1))


def train_adversary(
    env_fn: Callable[[], Any],
    fixed: Mapping[str, Policy],
    agent_seat: str,
    reference: Policy,
    tau: float,
    *,
    timesteps: int,
    seed: int,
    n_copies: int = 1,
    ppo_kwargs: Mapping[str, Any],
) -> ResidualAdversary:
    """PPO trained ``timesteps`` steps as the KL-regularised adversary of ``agent_seat`` (stochastic).

    ``fixed`` plays every seat but the adversary's (the agent's seat included).
    """
    env_maker = functools.partial(_adversary_env, env_fn, dict(fixed), agent_seat, reference)
    venv = make_vec_env(env_maker, n_copies=n_copies, seed=seed)
    try:
        model = PPO(ResidualPolicy, venv, seed=seed, ent_coef=0.0, device="cpu", verbose=0, **dict(ppo_kwargs))
        model.learn(int(timesteps), callback=ReferenceKLCallback(tau))
    finally:
        venv.close()
    return ResidualAdversary(SB3Policy.from_model(model), reference)


class KLMeter(DiscretePolicy):
    """Plays ``policy`` and adds up ``KL(policy(.|o) || reference(.|o))`` over every observation it acts on.

    ``log reference`` is clipped at :data:`LOG_FLOOR`, as the adversary saw it.
    """

    def __init__(self, policy: Policy, reference: Policy):
        super().__init__(policy.observation_space, policy.action_space)
        self.policy, self.reference = policy, reference
        self.total = 0.0

    def action_probs(self, obs, *, state=None):
        p = np.asarray(cast(Any, self.policy).action_probs(obs), dtype=np.float64)
        m = np.asarray(cast(Any, self.reference).action_probs(obs), dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, p * (np.log(p) - np.maximum(np.log(m), LOG_FLOOR)), 0.0)
        self.total += float(terms.sum())
        return p


def evaluate_deviation(
    env_fn: Callable[[], Any],
    policies: Mapping[str, Policy],
    agent_seat: str,
    partner_seat: str,
    reference: Policy,
    *,
    episodes: int,
    seed: int,
) -> tuple[np.ndarray, float]:
    """``(agent's return per episode, mean KL per episode)`` with ``policies[partner_seat]`` the deviation.

    The KL is exact per visited observation (both policies' action probabilities), summed along each episode.
    """
    meter = KLMeter(policies[partner_seat], reference)
    seats = {**policies, partner_seat: meter}
    seeds = [int(s) for s in stream(seed, "audit-eval").integers(0, 2**31 - 1, size=episodes)]
    rngs = {s: stream(seed, f"audit-eval-{s}") for s in seats}
    stats = play_episodes(env_fn, seats, seeds, rngs)
    return np.array([st.returns[agent_seat] for st in stats]), meter.total / episodes
