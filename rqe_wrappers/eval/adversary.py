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
from collections.abc import Callable, Mapping, Sequence
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
from stable_baselines3.common.vec_env import VecEnvWrapper

from rqe_wrappers.aht.nature import normalized_prior
from rqe_wrappers.batched.vec_env import BatchedVecEnv
from rqe_wrappers.core.policy import DiscretePolicy, Policy
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.errors import ConfigError, SeatError
from rqe_wrappers.eval.episodes import play_batched, play_episodes
from rqe_wrappers.sb3.env_util import make_vec_env
from rqe_wrappers.sb3.sb3_policy import SB3Policy
from rqe_wrappers.seats.background import background_seats

__all__ = [
    "LOG_FLOOR",
    "AdversarySeat",
    "BatchedAdversaryVecEnv",
    "KLMeter",
    "ReferenceKLCallback",
    "ResidualAdversary",
    "ResidualPolicy",
    "adversary_space",
    "batched_adversary_env",
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


def adversary_space(space: gym.spaces.Box, n_actions: int) -> gym.spaces.Box:
    """The adversary's observation space: the seat's flat ``Box`` followed by ``n_actions`` log-probabilities."""
    return gym.spaces.Box(
        np.concatenate([np.broadcast_to(space.low, space.shape), np.full(n_actions, LOG_FLOOR)]).astype(np.float32),
        np.concatenate([np.broadcast_to(space.high, space.shape), np.zeros(n_actions)]).astype(np.float32),
    )


class AdversarySeat(BaseParallelWrapper):
    """The one non-background seat: paid minus ``agent_seat``'s reward, observation + ``log ref(.|o)``."""

    def __init__(self, env: ParallelEnv, agent_seat: str, reference: Policy):
        super().__init__(env)
        self.agent_seat, self.reference = agent_seat, reference
        (self.seat,) = env.possible_agents
        space = env.observation_space(self.seat)
        check_adversary_spaces(space, env.action_space(self.seat), self.seat)
        self._space = adversary_space(space, int(env.action_space(self.seat).n))

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


class BatchedAdversaryVecEnv(VecEnvWrapper):
    """:class:`AdversarySeat` on the batched path: the adversary's one slot per copy, as an SB3 ``VecEnv``.

    Wraps a :class:`~rqe_wrappers.batched.vec_env.BatchedVecEnv` whose one learning seat is the
    adversary's and whose background plays ``agent_seat`` (and every other seat). Each copy's
    reference is one of ``references``, drawn from ``prior`` at every episode start (seeded by
    :meth:`seed`; one reference: always it); the observation is the seat's own (SRPO's role
    features dropped) followed by ``log ref(.|o)``, and the reward is minus ``agent_seat``'s.
    ``terminal_observation`` carries the finished episode's reference; infos carry ``scenario_index``.
    """

    def __init__(
        self,
        venv: BatchedVecEnv,
        agent_seat: str,
        references: Sequence[Policy],
        prior: Any = None,
    ):
        if not isinstance(venv, BatchedVecEnv) or len(venv.learning_seats) != 1:
            raise ConfigError("BatchedAdversaryVecEnv wraps a BatchedVecEnv with one learning seat (the adversary's)")
        if agent_seat not in venv.background_seats:
            raise SeatError(f"agent_seat {agent_seat!r} must be a background seat, one of {venv.background_seats}")
        if not references:
            raise ConfigError("BatchedAdversaryVecEnv needs at least one reference policy")
        (seat,) = venv.learning_seats
        space = venv.env.observation_space(seat)
        check_adversary_spaces(space, venv.action_space, seat)
        self.references = list(references)
        self.prior = normalized_prior(np.ones(len(self.references)) if prior is None else prior, len(self.references))
        self._col = venv.background_seats.index(agent_seat)
        self._width = int(venv.srpo_feature_width)
        self._n = int(cast(gym.spaces.Discrete, venv.action_space).n)
        super().__init__(venv, observation_space=adversary_space(cast(gym.spaces.Box, space), self._n))
        self.batched = venv
        self.choice = np.zeros(venv.n_copies, np.int64)
        self._rng = stream(None, "batched-adversary")

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        self._rng = stream(seed, "batched-adversary")
        return self.venv.seed(seed)

    def set_prior(self, beta: Any) -> None:
        """The draw's weights over :attr:`references` (normalised here), from the next episode start."""
        self.prior = normalized_prior(beta, len(self.references))

    def _draw(self, copies: np.ndarray) -> None:
        if len(self.references) > 1:
            self.choice[copies] = self._rng.choice(len(self.references), size=len(copies), p=self.prior)

    def _augment(self, obs: np.ndarray, choice: np.ndarray) -> np.ndarray:
        raw = np.asarray(obs[:, : obs.shape[1] - self._width], dtype=np.float32)
        out = np.empty((len(raw), raw.shape[1] + self._n), np.float32)
        out[:, : raw.shape[1]] = raw
        for k in np.unique(choice).tolist():
            rows = choice == k
            out[rows, raw.shape[1] :] = log_reference(self.references[k], raw[rows])
        return out

    def reset(self) -> np.ndarray:
        obs = np.asarray(self.venv.reset())
        self._draw(np.arange(len(self.choice)))
        return self._augment(obs, self.choice)

    def step_wait(self):
        obs, _, dones, infos = self.venv.step_wait()
        rewards = (-self.batched.last_background_rewards[:, self._col]).astype(np.float32)
        ended = np.flatnonzero(dones)
        for c in ended.tolist():
            terminal = infos[c]["terminal_observation"][None]
            infos[c]["terminal_observation"] = self._augment(terminal, self.choice[c : c + 1])[0]
        for c, k in enumerate(self.choice.tolist()):
            infos[c]["scenario_index"] = k
        self._draw(ended)
        return self._augment(np.asarray(obs), self.choice), rewards, dones, infos


def batched_adversary_env(
    batched: Callable[[int], Any],
    n_copies: int,
    fixed: Mapping[str, Policy],
    agent_seat: str,
    references: Sequence[Policy],
    seed: int | None = None,
) -> BatchedAdversaryVecEnv:
    """The adversary's seeded VecEnv on ``batched(n_copies)``: ``fixed`` plays every seat but one, the adversary's."""
    env = batched(int(n_copies))
    free = [s for s in env.possible_agents if s not in fixed]
    if len(free) != 1:
        raise SeatError(f"fixed must play every seat of {list(env.possible_agents)} but one; the free ones: {free}")
    venv = BatchedAdversaryVecEnv(
        BatchedVecEnv(env, background=dict(fixed), reward_infos=False), agent_seat, references
    )
    venv.seed(seed)
    return venv


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
    batched: Callable[[int], Any] | None = None,
) -> ResidualAdversary:
    """PPO trained ``timesteps`` steps as the KL-regularised adversary of ``agent_seat`` (stochastic).

    ``fixed`` plays every seat but the adversary's (the agent's seat included). ``batched``: a function
    ``n -> batched env of n copies`` (the env's batched twin); then the ``n_copies`` copies step as arrays
    (:class:`BatchedAdversaryVecEnv`) instead of one PettingZoo env each.
    """
    if batched is not None:
        venv: Any = batched_adversary_env(batched, n_copies, fixed, agent_seat, [reference], seed)
    else:
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
    batched: Callable[[int], Any] | None = None,
) -> tuple[np.ndarray, float]:
    """``(agent's return per episode, mean KL per episode)`` with ``policies[partner_seat]`` the deviation.

    The KL is exact per visited observation (both policies' action probabilities), summed along each episode.
    ``batched``: play the episodes as the copies of ``batched(episodes)`` (:func:`play_batched`).
    """
    meter = KLMeter(policies[partner_seat], reference)
    seats = {**policies, partner_seat: meter}
    seeds = [int(s) for s in stream(seed, "audit-eval").integers(0, 2**31 - 1, size=episodes)]
    rngs = {s: stream(seed, f"audit-eval-{s}") for s in seats}
    if batched is not None:
        stats = play_batched(batched(episodes), seats, seeds, rngs)
    else:
        stats = play_episodes(env_fn, seats, seeds, rngs)
    return np.array([st.returns[agent_seat] for st in stats]), meter.total / episodes
