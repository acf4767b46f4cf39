"""The adversarial shadow (SRPO): per episode, one learning seat plays against its partners.

The shadow's reward is the negated mean reward of the non-shadow learning seats. Every learning
seat sees a role feature (:mod:`rqe_wrappers.srpo.roles`), so one shared network learns both the
partner policy and its shadow. The KL(shadow || partner) penalty that keeps the shadow close to
the real partner is added by :class:`rqe_wrappers.sb3.SRPOCallback` on the rollout buffer.
``tau = 0`` keeps the very same code path with no shadow (plain IPPO).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper, BaseWrapper

from rqe_wrappers.core.dispatch import by_api, check_api
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.errors import ConfigError, MissingCallbackWarning, SeatError
from rqe_wrappers.srpo.roles import PARTNER, ROLES, SHADOW, add_role, with_role_space


class _ShadowLogic:
    """Validation, seat choice and reward shaping shared by the parallel and AEC wrappers."""

    def _setup(self, env, tau: float, learning_seats: Sequence[str] | None, n_shadows: int) -> None:
        try:
            tau = float(tau)
        except (TypeError, ValueError):
            raise ConfigError(f"tau must be a number >= 0, got {tau!r}") from None
        if not math.isfinite(tau) or tau < 0:
            raise ConfigError(f"tau must be finite and >= 0 (0 = plain IPPO), got {tau}")
        seats = list(env.possible_agents)
        if len(seats) < 2:
            raise SeatError(
                f"SRPO needs a partner: the env has {len(seats)} seat(s) ({seats}). "
                "Use a multi-agent env, or plain PPO for a one-agent env"
            )
        learning = seats if learning_seats is None else list(learning_seats)
        unknown = [s for s in learning if s not in seats]
        if unknown:
            raise SeatError(f"learning seats {unknown} do not exist; the env's seats are {seats}")
        if len(learning) < 2:
            raise SeatError(
                f"SRPO needs at least two learning seats (a learner and the partner it shadows), got {learning}; "
                "fix other seats with background_seats() and leave two or more learning"
            )
        if not 1 <= int(n_shadows) <= len(learning) - 1:
            raise ConfigError(f"n_shadows must be in [1, {len(learning) - 1}], got {n_shadows}")
        self.tau = tau
        self.srpo_tau = tau  # read by SRPOCallback through VecEnv.get_attr
        self.learning_seats = learning
        self.n_shadows = int(n_shadows)
        self.shadows: set[str] = set()
        self.srpo_callback_attached = False  # set by SRPOCallback through VecEnv.set_attr
        self._warned = False
        self._role_spaces = {s: with_role_space(env.observation_space(s)) for s in learning}
        self._raw_spaces = {s: env.observation_space(s) for s in learning}
        self._rng = stream(None, "shadow")

    def _choose_shadows(self, seed) -> None:
        if seed is not None or not hasattr(self, "_seeded"):
            self._rng = stream(seed, "shadow")
            self._seeded = True
        if self.tau > 0:
            picked = self._rng.choice(len(self.learning_seats), self.n_shadows, replace=False)
            self.shadows = {self.learning_seats[i] for i in sorted(picked)}
        else:
            self.shadows = set()

    def role(self, seat: str) -> str:
        """``"shadow"`` or ``"partner"`` for a learning seat in the current episode."""
        return ROLES[SHADOW if seat in self.shadows else PARTNER]

    def _augment(self, seat, obs):
        if seat not in self._role_spaces or obs is None:
            return obs
        return add_role(obs, self._raw_spaces[seat], SHADOW if seat in self.shadows else PARTNER)

    def _shape(self, raw: dict) -> dict:
        """Rewards after shaping: shadows get minus the mean of the non-shadow learning seats."""
        if not self.shadows:
            return dict(raw)
        team = [raw[s] for s in self.learning_seats if s not in self.shadows and s in raw]
        adv = -sum(team) / len(team) if team else 0.0
        return {a: (adv if a in self.shadows else r) for a, r in raw.items()}

    def _check_callback(self) -> None:
        """Warn once if an episode with a shadow ended but no SRPOCallback shapes its rewards."""
        if self.tau > 0 and not self.srpo_callback_attached and not self._warned:
            self._warned = True
            warnings.warn(
                f"srpo_wrap(tau={self.tau}) ran an episode without SRPOCallback: the shadow is a pure adversary "
                "(no KL penalty). Train with model.learn(..., callback=SRPOCallback()), or set "
                "env.srpo_callback_attached = True if you shape the shadow's rewards yourself.",
                MissingCallbackWarning,
                stacklevel=3,
            )

    def _info(self, seat, info, raw):
        return {**info, "role": self.role(seat), "raw_rewards": raw} if seat in self._role_spaces else info


class ShadowAdversaryParallel(_ShadowLogic, BaseParallelWrapper):
    """:class:`~pettingzoo.ParallelEnv` with an adversarial shadow among its learning seats."""

    def __init__(self, env: ParallelEnv, tau: float, learning_seats=None, n_shadows: int = 1):
        BaseParallelWrapper.__init__(self, env)
        self._setup(env, tau, learning_seats, n_shadows)
        self.possible_agents = list(env.possible_agents)

    def observation_space(self, agent):
        return self._role_spaces.get(agent) or self.env.observation_space(agent)

    def reset(self, seed=None, options=None):
        obs, infos = self.env.reset(seed=seed, options=options)
        self._choose_shadows(seed)
        raw = {a: 0.0 for a in obs}
        return (
            {a: self._augment(a, o) for a, o in obs.items()},
            {a: self._info(a, infos.get(a, {}), raw) for a in infos},
        )

    def step(self, actions):
        obs, rew, term, trunc, infos = self.env.step(actions)
        raw = {a: float(r) for a, r in rew.items()}
        if not self.srpo_callback_attached and all(term.get(a) or trunc.get(a) for a in rew):
            self._check_callback()
        return (
            {a: self._augment(a, o) for a, o in obs.items()},
            self._shape(raw),
            term,
            trunc,
            {a: self._info(a, i, raw) for a, i in infos.items()},
        )


class ShadowAdversaryAEC(_ShadowLogic, BaseWrapper):
    """:class:`~pettingzoo.AECEnv` with an adversarial shadow among its learning seats."""

    def __init__(self, env: AECEnv, tau: float, learning_seats=None, n_shadows: int = 1):
        BaseWrapper.__init__(self, env)
        self._setup(env, tau, learning_seats, n_shadows)
        self.possible_agents = list(env.possible_agents)
        self.rewards: dict = {}
        self._raw: dict = {}
        self._cumulative_rewards: dict = {}

    def observation_space(self, agent):
        return self._role_spaces.get(agent) or self.env.observation_space(agent)

    def observe(self, agent):
        return self._augment(agent, self.env.observe(agent))

    @property
    def infos(self):
        return {a: self._info(a, i, self._raw) for a, i in self.env.infos.items()}

    def _sync_rewards(self, acting=None):
        # raw rewards of the last real step: a later dead step clears env.rewards, infos keep these
        self._raw = {a: float(r) for a, r in self.env.rewards.items()}
        self.rewards = self._shape(self._raw)
        cum = {a: v for a, v in self._cumulative_rewards.items() if a in self.env.agents}
        if acting is not None and acting in cum:
            cum[acting] = 0.0
        for a in self.env.agents:
            cum[a] = cum.get(a, 0.0) + self.rewards.get(a, 0.0)
        self._cumulative_rewards = cum

    def reset(self, seed=None, options=None):
        self.env.reset(seed=seed, options=options)
        self._choose_shadows(seed)
        self._cumulative_rewards = {}
        self._sync_rewards()

    def step(self, action):
        acting = self.env.agent_selection
        dead = self.env.terminations.get(acting, False) or self.env.truncations.get(acting, False)
        self.env.step(action)
        if dead:  # a dead step removes the agent and hands out no new rewards
            self._cumulative_rewards = {a: v for a, v in self._cumulative_rewards.items() if a in self.env.agents}
            self.rewards = self._shape({a: float(r) for a, r in self.env.rewards.items()})
            return
        self._sync_rewards(acting)
        if all(self.env.terminations.get(a) or self.env.truncations.get(a) for a in self.env.agents):
            self._check_callback()


def shadow_adversary(env, tau: float, learning_seats=None, n_shadows: int = 1):
    """Add the adversarial shadow to an AEC or parallel env; returns the same API kind."""
    return by_api(
        env,
        parallel=lambda e: ShadowAdversaryParallel(e, tau, learning_seats, n_shadows),
        aec=lambda e: ShadowAdversaryAEC(e, tau, learning_seats, n_shadows),
        what="shadow_adversary",
    )


def srpo_wrap(env, tau: float = 1.0, *, fixed=None, learning_seats=None, n_shadows: int = 1):
    """Make a PettingZoo env (AEC or parallel) train SRPO with stock SB3 PPO.

    Args:
        env: a PettingZoo ``AECEnv`` or ``ParallelEnv``.
        tau: risk aversion; ``0`` is plain IPPO (same code path, no shadow).
        fixed: ``{seat: Policy}`` seats played by fixed policies (e.g. Tag's trained runner).
        learning_seats: seats that learn (default: every seat not in ``fixed``).
        n_shadows: how many learning seats are shadows each episode.

    Example:
        >>> from rqe_wrappers.envs.matrix import coordination_game
        >>> env = srpo_wrap(coordination_game(cost=0.5), tau=2.0)
        >>> obs, infos = env.reset(seed=0)
        >>> sorted(i["role"] for i in infos.values())
        ['partner', 'shadow']
    """
    from rqe_wrappers.seats.background import background_seats

    check_api(env, "srpo_wrap")
    if fixed:
        env = background_seats(env, fixed)
    return shadow_adversary(env, tau, learning_seats, n_shadows)
