"""The adversarial shadow (SRPO): per episode, one learning seat of each team plays against its partners.

The shadow's reward is the negated mean reward of its team's non-shadow learning seats
(:mod:`rqe_wrappers.srpo.teams` decides the teams). Every learning seat sees a role feature, and
optionally its seat identity (:mod:`rqe_wrappers.srpo.features`), so one shared network learns both
the partner policy and its shadow. The KL(shadow || partner) penalty that keeps the shadow close to
the real partner is added by :class:`rqe_wrappers.sb3.SRPOCallback` on the rollout buffer.
``tau = 0`` keeps the very same code path with no shadow (plain IPPO).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper, BaseWrapper

from rqe_wrappers.core.checks import real
from rqe_wrappers.core.dispatch import by_api, check_api
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.errors import MissingCallbackWarning, SeatError
from rqe_wrappers.srpo.features import PARTNER, SHADOW, ObsFeatures
from rqe_wrappers.srpo.roles import ROLES
from rqe_wrappers.srpo.teams import check_learning, group_learning, plan_teams


class _ShadowLogic:
    """Validation, seat choice and reward shaping shared by the parallel and AEC wrappers."""

    def _setup(
        self,
        env,
        tau: float,
        learning_seats: Sequence[str] | None,
        n_shadows: int,
        teams: Mapping[str, Sequence[str]] | None = None,
        seat_id: bool = False,
    ) -> None:
        tau = real("tau", tau, low=0, hint="risk aversion; 0 = plain IPPO")
        seats = list(env.possible_agents)
        if len(seats) < 2:
            raise SeatError(
                f"SRPO needs a partner: the env has {len(seats)} seat(s) ({seats}). "
                "Use a multi-agent env, or plain PPO for a one-agent env"
            )
        plan = group_learning(seats, learning_seats, teams)
        self.tau = tau
        self.srpo_tau = tau  # read by SRPOCallback through VecEnv.get_attr
        self.n_shadows = check_learning(plan, n_shadows, env)
        self.learning_seats = plan.learning
        #: team name -> its learning seats; shadows are drawn inside each team of two or more
        self.teams = plan.teams
        #: team name -> all its seats; seats srpo_wrap gave a RandomPolicy (both set by srpo_wrap)
        self.all_teams: dict[str, list[str]] = {t: list(m) for t, m in plan.teams.items()}
        self.default_fixed: dict[str, Policy] = {}
        self._team_of = {s: t for t, m in plan.teams.items() for s in m}
        self.seat_id = bool(seat_id)
        #: a learning seat's index in its seat one-hot (``seat_id=True``): its place in learning_seats
        self.seat_index = {s: i for i, s in enumerate(self.learning_seats)}
        self.shadows: set[str] = set()
        self.srpo_callback_attached = False  # set by SRPOCallback through VecEnv.set_attr
        self._warned = False
        n_seats = len(self.learning_seats) if self.seat_id else 0
        self._features = {s: ObsFeatures(env.observation_space(s), n_seats) for s in self.learning_seats}
        self._role_spaces = {s: f.space for s, f in self._features.items()}
        #: entries (Box) / channels (image) the wrapper adds at the end: the seat one-hot, then the role
        self.srpo_feature_width = n_seats + 2
        self._rng = stream(None, "shadow")

    def _choose_shadows(self, seed) -> None:
        if seed is not None or not hasattr(self, "_seeded"):
            self._rng = stream(seed, "shadow")
            self._seeded = True
        self.shadows = set()
        if self.tau > 0:
            for members in self.teams.values():
                if len(members) >= 2:
                    picked = self._rng.choice(len(members), self.n_shadows, replace=False)
                    self.shadows |= {members[i] for i in sorted(picked)}

    def role(self, seat: str) -> str:
        """``"shadow"`` or ``"partner"`` for a learning seat in the current episode."""
        return ROLES[SHADOW if seat in self.shadows else PARTNER]

    def _augment(self, seat, obs):
        features = self._features.get(seat)
        if features is None or obs is None:
            return obs
        return features.add(obs, SHADOW if seat in self.shadows else PARTNER, self.seat_index[seat])

    def _shape(self, raw: dict) -> dict:
        """Rewards after shaping: a shadow gets minus the mean of its team's non-shadow learning seats."""
        if not self.shadows:
            return dict(raw)
        adv = {}
        for t, members in self.teams.items():
            team = [raw[s] for s in members if s not in self.shadows and s in raw]
            adv[t] = -sum(team) / len(team) if team else 0.0
        return {a: (adv[self._team_of[a]] if a in self.shadows else r) for a, r in raw.items()}

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

    def __init__(
        self,
        env: ParallelEnv,
        tau: float,
        learning_seats: Sequence[str] | None = None,
        n_shadows: int = 1,
        *,
        teams: Mapping[str, Sequence[str]] | None = None,
        seat_id: bool = False,
    ):
        BaseParallelWrapper.__init__(self, env)
        self._setup(env, tau, learning_seats, n_shadows, teams, seat_id)
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

    def __init__(
        self,
        env: AECEnv,
        tau: float,
        learning_seats: Sequence[str] | None = None,
        n_shadows: int = 1,
        *,
        teams: Mapping[str, Sequence[str]] | None = None,
        seat_id: bool = False,
    ):
        BaseWrapper.__init__(self, env)
        self._setup(env, tau, learning_seats, n_shadows, teams, seat_id)
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

    def _sync_rewards(self, acting=None, dead=False):
        raw = {a: float(r) for a, r in self.env.rewards.items()}
        if not dead or any(raw.values()):  # infos keep the last step that paid anything
            self._raw = raw
        self.rewards = self._shape(raw)
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
        if dead:  # a dead step removes the agent; what it hands out (OpenSpiel's 4-player Hanabi) still counts
            self._sync_rewards(dead=True)
            return
        self._sync_rewards(acting)
        if all(self.env.terminations.get(a) or self.env.truncations.get(a) for a in self.env.agents):
            self._check_callback()


def shadow_adversary(
    env,
    tau: float,
    learning_seats: Sequence[str] | None = None,
    n_shadows: int = 1,
    *,
    teams: Mapping[str, Sequence[str]] | None = None,
    seat_id: bool = False,
):
    """Add the adversarial shadow to an AEC or parallel env; returns the same API kind.

    ``teams``: team name -> seats; the shadow is drawn among each team's learning seats
    (default: one team). ``seat_id``: add the seat one-hot (see :func:`srpo_wrap`).
    """
    return by_api(
        env,
        parallel=lambda e: ShadowAdversaryParallel(e, tau, learning_seats, n_shadows, teams=teams, seat_id=seat_id),
        aec=lambda e: ShadowAdversaryAEC(e, tau, learning_seats, n_shadows, teams=teams, seat_id=seat_id),
        what="shadow_adversary",
    )


def srpo_wrap(
    env,
    tau: float = 1.0,
    *,
    fixed: Mapping[str, Policy] | None = None,
    teams: Mapping[str, Sequence[str]] | None = None,
    learn: str | Sequence[str] | None = None,
    seat_id: bool = False,
    learning_seats: Sequence[str] | None = None,
    n_shadows: int = 1,
):
    """Make a PettingZoo env (AEC or parallel) train SRPO with stock SB3 PPO.

    Args:
        env: a PettingZoo ``AECEnv`` or ``ParallelEnv``.
        tau: risk aversion; ``0`` is plain IPPO (same code path, no shadow).
        fixed: ``{seat: Policy}`` seats played by fixed policies (e.g. Tag's trained runner).
        teams: ``{team: [seats]}``; the shadow is drawn among the learner's own team. Default:
            one team when the seats not in ``fixed`` share their spaces, else one team per name
            group (mpe2's ``adversary_*`` / ``agent_*``); see :mod:`rqe_wrappers.srpo.teams`.
        learn: the team(s) that learn (default: the only team, else the largest). Seats of the other
            teams not in ``fixed`` are played by a seeded uniform :class:`~rqe_wrappers.RandomPolicy`
            (listed in ``env.default_fixed``).
        seat_id: add a one-hot of the seat (its index in ``env.learning_seats``) before the role
            feature, like SuperSuit's ``agent_indicator_v0``: one shared network can then play the
            seats differently (e.g. IPPO's free-riding equilibria).
        learning_seats: the learning seats by name (older; no default policies for other seats).
        n_shadows: how many learning seats of each team are shadows each episode.

    Example:
        >>> from rqe_wrappers.envs.matrix import coordination_game
        >>> env = srpo_wrap(coordination_game(cost=0.5), tau=2.0)
        >>> obs, infos = env.reset(seed=0)
        >>> sorted(i["role"] for i in infos.values())
        ['partner', 'shadow']
    """
    from rqe_wrappers.seats.background import background_seats

    check_api(env, "srpo_wrap")
    real("tau", tau, low=0, hint="risk aversion; 0 = plain IPPO")  # before any wrapper is built
    fixed = dict(fixed or {})
    unknown = [s for s in fixed if s not in env.possible_agents]
    if unknown:
        raise SeatError(f"background seats {unknown} do not exist; the env's seats are {env.possible_agents}")
    if len(fixed) >= len(env.possible_agents):
        raise SeatError("every seat is a background seat: leave at least one seat to learn")
    plan = plan_teams(env, fixed=fixed, teams=teams, learn=learn, learning_seats=learning_seats)
    background = {**fixed, **plan.filled}
    inner = background_seats(env, background) if background else env
    wrapped = shadow_adversary(inner, tau, plan.learning, n_shadows, teams=plan.teams, seat_id=seat_id)
    wrapped.default_fixed = dict(plan.filled)
    wrapped.all_teams = plan.all_teams
    return wrapped
