"""Minimax-Bayes ad hoc teamwork: every episode, the learner is dropped into a sampled scenario.

:class:`AHTWrapper` turns an ``n``-seat PettingZoo env (AEC or parallel) into a parallel env with
**one** learning seat (``"focal"``), so a vectorised trainer gets one slot per env copy. At each
``reset`` it

1. samples a scenario from the prior ``beta`` (:mod:`rqe_wrappers.aht.scenarios`; nature's current
   prior, pushed by :class:`rqe_wrappers.sb3.AHTCallback` through ``env_method("set_prior", beta)``),
2. shuffles the seats (seeded stream ``"scenario"``): the learner takes one of the scenario's
   ``c`` focal seats, the other ``c - 1`` are played by the learner's lagged snapshot
   (:class:`~rqe_wrappers.core.snapshot.SnapshotPolicy`), the rest by the scenario's population members,
3. plays the partners' moves inside the env (parallel: through
   :class:`~rqe_wrappers.seats.background.BackgroundSeatsParallel`, batching seats that share a
   policy into one ``act`` call; AEC: each partner on its own turn).

The reward is the **focal-per-capita** step reward: the mean over the ``c`` focal seats of their
rewards (the paper's utility, section 3.3). Fictitious play (``prior="fictitious-play"``) is
self-play against the past: scenario ``c<n>@fp/<k>`` puts the learner's ``k``-th kept past snapshot
in every other seat as a focal player, so the learner is paid the per-capita return exactly as in
the self-play scenario ``c<n>`` (``fp_focal=False``: background partners, own return).
In AEC games a seat's reward is counted on its own turn (``last()`` semantics) and handed to the
learner's next step. If the learner's game ends
before the others', the wrapper plays the episode out and adds the focal seats' remaining rewards
to the last step, so the per-step rewards always sum to the episode's focal-per-capita return.

Infos (the learner's, every step): ``scenario`` (id), ``scenario_index``, ``seat`` (the env seat
the learner took), ``raw_rewards`` (every seat's reward counted at this step), and at the last step
``focal_return`` (the focal-per-capita return of the episode).

All seats must share one observation and one action space: the learner may sit anywhere. For
asymmetric games, add the seat's identity to the observations first (e.g.
``supersuit.agent_indicator_v0``) and fix seats that never learn with
:func:`~rqe_wrappers.seats.background.background_seats` before wrapping.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper

from rqe_wrappers._compat import renamed_argument
from rqe_wrappers.aht.config import (
    ADAPTIVE,
    FICTITIOUS_PLAY,
    SELF_PLAY,
    AHTConfig,
    aht_config_dict,
    parse_aht_config,
)
from rqe_wrappers.aht.nature import Nature, normalized_prior
from rqe_wrappers.aht.population import population_policies
from rqe_wrappers.aht.scenarios import Scenario, ScenarioSet
from rqe_wrappers.aht.seating import make_seating
from rqe_wrappers.core.checks import integer
from rqe_wrappers.core.dispatch import check_api
from rqe_wrappers.core.policy import Policy, check_policy_spaces
from rqe_wrappers.core.seeding import categorical, stream
from rqe_wrappers.core.spaces import check_spaces_alike
from rqe_wrappers.core.view import learner_snapshot
from rqe_wrappers.errors import ConfigError, MissingCallbackWarning, SeatError


def nature_from_config(config: Mapping[str, Any]) -> Nature:
    """Deprecated: ``AHTConfig.from_dict(...).make_nature(scenarios)`` (or :meth:`AHTWrapper.make_nature`)."""
    warnings.warn(
        "nature_from_config is replaced by AHTConfig.make_nature (e.g. env.config.make_nature(env.scenarios)); "
        "the old name goes away in 0.3",
        DeprecationWarning,
        stacklevel=2,
    )
    settings, scenarios, _ = parse_aht_config(config)
    return settings.make_nature(scenarios)


def _all_seats_alike(env: Any, seats: Sequence[str]) -> None:
    check_spaces_alike(
        [(s, env.observation_space(s), env.action_space(s)) for s in seats],
        lambda m: (
            f"scenario seats must be interchangeable, but seat {m.name!r} has {m.kind} space {m.got} "
            f"and seat {m.reference!r} has {m.expected}. Fix the seats that never learn with background_seats(), "
            f"or make the spaces equal (e.g. supersuit.pad_observations_v0 / pad_action_space_v0)."
        ),
        by_kind=True,
    )


_Spaces = tuple[gym.Space, gym.Space]  # (observation, action) of every seat


def _check_env(env: Any) -> list[str]:
    """The env's seats, after checking it is a PettingZoo env whose seats are interchangeable."""
    check_api(env, "aht_wrap")
    seats = list(env.possible_agents)
    if len(seats) < 2:
        raise SeatError(f"ad hoc teamwork needs partners: the env has {len(seats)} seat(s) ({seats})")
    _all_seats_alike(env, seats)
    return seats


def _check_population(config: AHTConfig, members: Mapping[str, Policy], scenarios: Any, spaces: _Spaces) -> None:
    if config.prior == FICTITIOUS_PLAY:
        if members:
            raise ConfigError(
                f"prior 'fictitious-play' trains against the learner's own past snapshots; "
                f"pass an empty population (got {len(members)} members: {sorted(members)[:5]})"
            )
        if scenarios is not None:
            raise ConfigError("prior 'fictitious-play' builds its own scenarios (the learner + one past snapshot)")
    elif not members and config.prior != SELF_PLAY:
        raise ConfigError(
            f"the background population is empty, so prior {config.prior!r} has only the self-play scenario; "
            "pass a population ({name: Policy} or a zoo population), or use prior='self-play'"
        )
    for name, policy in members.items():
        check_policy_spaces(policy, *spaces, f"population member {name!r}")


def fictitious_play_scenarios(n_seats: int, members: Sequence[str], focal: bool = True) -> ScenarioSet:
    """One scenario per past-snapshot slot: the slot's snapshot in every seat but the learner's.

    ``focal``: the snapshot sits in focal seats (``c<n>@<slot>``, paid per capita as in self-play,
    the paper's FP); else as a background partner (``c1:<slot>+...``, the learner paid its own return).

    Example:
        >>> fictitious_play_scenarios(2, ["fp/0", "fp/1"]).ids
        ('c2@fp/0', 'c2@fp/1')
        >>> fictitious_play_scenarios(2, ["fp/0", "fp/1"], focal=False).ids
        ('c1:fp/0', 'c1:fp/1')
    """
    if focal:
        chosen = tuple(Scenario(n_seats, (), m) for m in members)
    else:
        chosen = tuple(Scenario(1, (m,) * (n_seats - 1)) for m in members)
    return ScenarioSet(n_seats, tuple(members), chosen)


def fictitious_play_setup(config: AHTConfig, n_seats: int, spaces: _Spaces):
    """``(scenarios, members, fp_members)`` of ``prior="fictitious-play"``: one slot per past snapshot,
    in every seat but the learner's; ``members[slot]`` plays the snapshot shared as ``fp_members[slot]``
    (``AHTCallback`` fills the slots). Used by ``aht_wrap`` and the batched path."""
    fp_members = {f"fp/{k}": f"{config.snapshot_name}/fp/{k}" for k in range(config.fp_capacity)}
    members = {m: learner_snapshot(*spaces, snap) for m, snap in fp_members.items()}
    return fictitious_play_scenarios(n_seats, list(fp_members), config.fp_focal), members, fp_members


def _check_scenarios(scenarios: Any, members: Mapping[str, Policy], n_seats: int) -> ScenarioSet:
    if not isinstance(scenarios, ScenarioSet):
        raise TypeError(f"scenarios must be a ScenarioSet, got {type(scenarios).__name__}")
    if scenarios.n_seats != n_seats:
        raise ConfigError(f"the scenario set is for {scenarios.n_seats} seats but the env has {n_seats}")
    missing = sorted(set(scenarios.members) - set(members))
    if missing:
        raise ConfigError(f"the scenario set names members {missing} that the population does not have")
    return scenarios


class AHTWrapper(BaseParallelWrapper):
    """One learning seat in a per-episode scenario; see the module docstring and :func:`aht_wrap`.

    Args:
        env: a PettingZoo ``ParallelEnv`` or ``AECEnv`` whose seats all share one observation and
            one action space.
        population: ``{name: Policy}`` background partners (or a zoo population with ``.policies()``).
        scenarios: the scenarios to sample (default: :meth:`ScenarioSet.all` over every seat).
        config: an :class:`~rqe_wrappers.aht.config.AHTConfig`, or none and the settings below.
        prior, lr, uniform_mix, best_responses, nature_step, focal_name, snapshot_name, fp_capacity,
            fp_focal, max_scenarios: the fields of :class:`~rqe_wrappers.aht.config.AHTConfig` (``None``: its
            default). ``eps`` is the deprecated name of ``uniform_mix``.

    The settings, resolved against the scenarios, are :attr:`config`; the callback reads them (with
    the scenarios) as plain data from :attr:`aht_config`.
    """

    def __init__(
        self,
        env: ParallelEnv | AECEnv,
        population: Any = None,
        scenarios: ScenarioSet | None = None,
        *,
        config: AHTConfig | None = None,
        prior: str | None = None,
        lr: float | None = None,
        uniform_mix: float | None = None,
        best_responses: Sequence[float] | Mapping[str, float] | None = None,
        nature_step: str | None = None,
        focal_name: str | None = None,
        snapshot_name: str | None = None,
        fp_capacity: int | None = None,
        fp_focal: bool | None = None,
        max_scenarios: int | None = None,
        eps: float | None = None,
    ):
        uniform_mix = renamed_argument("eps", eps, "uniform_mix", uniform_mix, default=None)
        config = AHTConfig.from_arguments(
            config,
            prior=prior,
            lr=lr,
            uniform_mix=uniform_mix,
            best_responses=best_responses,
            nature_step=nature_step,
            focal_name=focal_name,
            snapshot_name=snapshot_name,
            fp_capacity=fp_capacity,
            fp_focal=fp_focal,
            max_scenarios=max_scenarios,
        )
        seats = _check_env(env)
        spaces: _Spaces = (env.observation_space(seats[0]), env.action_space(seats[0]))
        members = population_policies(population, env)
        _check_population(config, members, scenarios, spaces)
        fp_members: dict[str, str] = {}
        if config.prior == FICTITIOUS_PLAY:
            scenarios, members, fp_members = fictitious_play_setup(config, len(seats), spaces)
        elif scenarios is None:
            scenarios = ScenarioSet.all(len(seats), list(members), config.max_scenarios)
        scenarios = _check_scenarios(scenarios, members, len(seats))
        nature = config.make_nature(scenarios)  # checks best_responses and self-play against the scenarios
        self._init_state(env, config.resolved(scenarios), scenarios, members, fp_members, seats, spaces, nature)

    def _init_state(
        self,
        env: ParallelEnv | AECEnv,
        config: AHTConfig,
        scenarios: ScenarioSet,
        members: dict[str, Policy],
        fp_members: dict[str, str],
        seats: list[str],
        spaces: _Spaces,
        nature: Nature,
    ) -> None:
        super().__init__(env)
        self.config = config
        self.focal_name = config.focal_name
        self.possible_agents = [self.focal_name]
        self.agents: list[str] = []
        self.scenarios = scenarios
        self.population = members
        self.snapshot_name = config.snapshot_name
        self._fp_members = fp_members
        self._env_seats = seats
        self._obs_space, self._act_space = spaces
        self._copy_policy: Policy = learner_snapshot(*spaces, self.snapshot_name)  # one object: copies batch together
        beta = nature.beta
        if config.prior == FICTITIOUS_PLAY:  # only slot 0 (the initial policy) is filled before training
            beta = np.zeros(len(scenarios))
            beta[0] = 1.0
        self._beta = np.asarray(beta, dtype=np.float64)
        self._seating = make_seating(env)
        self._rng = stream(None, "scenario")
        self._seeded = False
        self.aht_callback_attached = False  # set by AHTCallback through VecEnv.set_attr
        self._warned = False
        self._scenario_index = -1
        self._seat = ""
        self._assignment: dict[str, tuple[str, str]] = {}
        self._focal_seats: list[str] = []
        self._return = 0.0

    # ---- the prior -----------------------------------------------------------------------------
    @property
    def aht_config(self) -> dict[str, Any]:
        """Plain data the callback reads (``get_attr("aht_config")``): :attr:`config`, scenarios, FP slots."""
        return aht_config_dict(self.config, self.scenarios, self._fp_members)

    @property
    def beta(self) -> np.ndarray:
        """The prior over :attr:`scenarios` that the next ``reset`` samples from."""
        return self._beta.copy()

    @beta.setter
    def beta(self, value) -> None:
        self.set_prior(value)

    def set_prior(self, beta) -> None:
        """Set the prior (one weight per scenario, normalised here); used from the next ``reset`` on."""
        self._beta = normalized_prior(beta, len(self.scenarios))

    def make_nature(self) -> Nature:
        """A fresh :class:`~rqe_wrappers.aht.nature.Nature` with this wrapper's settings."""
        return self.config.make_nature(self.scenarios)

    # ---- spaces --------------------------------------------------------------------------------
    def observation_space(self, agent):
        return self._obs_space

    def action_space(self, agent):
        return self._act_space

    # ---- the episode ---------------------------------------------------------------------------
    @property
    def background_layer(self) -> Any:
        """The layer that plays the seats around the learner (parallel envs only), which the adapter's
        env copies share forward passes through (:func:`~rqe_wrappers.seats.background.batch_background`)."""
        bg = getattr(self._seating, "bg", None)
        if bg is None:
            raise AttributeError("a turn-based env's seating has no background layer")
        return bg

    @property
    def scenario(self) -> Scenario | None:
        """The current episode's scenario (``None`` before the first reset)."""
        return self.scenarios[self._scenario_index] if self._scenario_index >= 0 else None

    @property
    def seating(self) -> dict[str, tuple[str, str]]:
        """``{env seat: (kind, name)}`` for this episode.

        Kinds: ``"learner"``; ``"copy"`` (a focal seat, named by the shared snapshot that plays it:
        ``"learner"``, or ``"learner/fp/<k>"`` for a past snapshot in fictitious play); ``"background"``
        (named by the population member).
        """
        return dict(self._assignment)

    def _pick(self, options) -> int:
        forced = (options or {}).get("scenario")
        if forced is not None:  # evaluation: play a given scenario (id or index)
            if isinstance(forced, (str, Scenario)):
                return self.scenarios.index(forced)
            # no negative indices: -1 would silently play the last scenario
            return integer(
                "reset option 'scenario'",
                forced,
                low=0,
                high=len(self.scenarios) - 1,
                hint=f"a scenario index, or an id such as {self.scenarios.ids[0]!r}",
            )
        return int(categorical(self._beta, self._rng))

    def _info(self, info: dict) -> dict:
        return {
            **info,
            "scenario": self.scenarios.ids[self._scenario_index],
            "scenario_index": self._scenario_index,
            "seat": self._seat,
        }

    def reset(self, seed=None, options=None):
        if seed is not None or not self._seeded:
            self._rng = stream(seed, "scenario")
            self._seeded = seed is not None
        self._scenario_index = self._pick(options)
        scenario = self.scenarios[self._scenario_index]
        order = [self._env_seats[i] for i in self._rng.permutation(len(self._env_seats))]
        c = scenario.n_focal
        self._seat, copies, background = order[0], order[1:c], order[c:]
        self._focal_seats = order[:c]
        self._assignment = {self._seat: ("learner", self.focal_name)}
        policies: dict[str, Policy] = {}
        copy_name, copy_policy = self.snapshot_name, self._copy_policy
        if scenario.focal_snapshot is not None:
            copy_policy = self.population[scenario.focal_snapshot]
            copy_name = self._fp_members.get(scenario.focal_snapshot, scenario.focal_snapshot)
        for seat in copies:
            self._assignment[seat] = ("copy", copy_name)
            policies[seat] = copy_policy
        for seat, member in zip(background, scenario.background, strict=True):
            self._assignment[seat] = ("background", member)
            policies[seat] = self.population[member]
        env_options = {k: v for k, v in (options or {}).items() if k != "scenario"} or None
        obs, info = self._seating.reset(seed, env_options, self._seat, policies)
        self._return = 0.0
        self.agents = [self.focal_name]
        return {self.focal_name: obs}, {self.focal_name: self._info(info)}

    def step(self, actions):
        if not self.agents:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        obs, rewards, term, trunc, info = self._seating.step(actions[self.focal_name])
        reward = sum(rewards.get(s, 0.0) for s in self._focal_seats) / len(self._focal_seats)
        self._return += reward
        info = {**self._info(info), "raw_rewards": rewards}
        if term or trunc:
            info["focal_return"] = self._return
            self.agents = []
            self._check_callback()
        a = self.focal_name
        return {a: obs}, {a: reward}, {a: term}, {a: trunc}, {a: info}

    def _check_callback(self) -> None:
        """Warn once if an adaptive prior ran an episode without AHTCallback updating it."""
        prior = self.config.prior
        if prior in ADAPTIVE and not self.aht_callback_attached and not self._warned:
            self._warned = True
            warnings.warn(
                f"aht_wrap(prior={prior!r}) ran an episode without AHTCallback: the prior stays at its start "
                "and the learner's snapshot is never refreshed. Train with model.learn(..., callback=AHTCallback()), "
                "or set env.aht_callback_attached = True if you update the prior yourself.",
                MissingCallbackWarning,
                stacklevel=3,
            )

    def __str__(self) -> str:
        return f"aht<{self.env}, {len(self.scenarios)} scenarios, prior={self.config.prior}>"


def aht_wrap(
    env: ParallelEnv | AECEnv,
    population: Any = None,
    prior: str | None = None,
    *,
    scenarios: ScenarioSet | None = None,
    config: AHTConfig | None = None,
    lr: float | None = None,
    uniform_mix: float | None = None,
    best_responses: Sequence[float] | Mapping[str, float] | None = None,
    nature_step: str | None = None,
    focal_name: str | None = None,
    snapshot_name: str | None = None,
    fp_capacity: int | None = None,
    fp_focal: bool | None = None,
    max_scenarios: int | None = None,
    eps: float | None = None,
) -> AHTWrapper:
    """Make a PettingZoo env (AEC or parallel) train minimax-Bayes ad hoc teamwork with stock SB3 PPO.

    Returns a one-seat :class:`AHTWrapper` (agent ``"focal"``); train it with
    :class:`rqe_wrappers.sb3.AHTCallback`, which updates nature's prior and the learner snapshot.
    The settings are those of :class:`~rqe_wrappers.aht.config.AHTConfig`: give them one by one
    (``None`` keeps the default) or as ``config=AHTConfig(...)``, not both.

    Args:
        env: a PettingZoo ``AECEnv`` or ``ParallelEnv`` (all seats with equal spaces).
        population: ``{name: Policy}`` or a zoo population; may be empty only for ``"self-play"``
            and ``"fictitious-play"``.
        prior: ``"maximin-utility"`` (default), ``"minimax-regret"``, ``"uniform"``, ``"self-play"``
            or ``"fictitious-play"``.
        scenarios: a :class:`~rqe_wrappers.aht.scenarios.ScenarioSet` (default: all of them).
        config: every setting below in one :class:`~rqe_wrappers.aht.config.AHTConfig`.
        lr: nature's step size, > 0, in units of 1/return (default 0.5).
        uniform_mix: probability of sampling a uniform scenario, in [0, 1) (default 0.05).
        best_responses: best-response utility per scenario, for ``"minimax-regret"``: a sequence in
            scenario order or ``{scenario id: value}``.
        nature_step: ``"projected"`` (default) or ``"exponentiated"``.
        focal_name: the learning seat's agent name (default ``"focal"``).
        snapshot_name: the shared snapshot that plays the focal copies (default ``"learner"``).
        fp_capacity: past snapshots kept by ``"fictitious-play"`` (default 16).
        fp_focal: ``"fictitious-play"`` seats the past snapshot as a focal player and pays the
            per-capita return, as the paper (default ``True``); ``False``: as a background partner.
        max_scenarios: refuse to enumerate more scenarios than this (default: no limit).
        eps: deprecated name of ``uniform_mix``.

    Example:
        >>> from rqe_wrappers import ConstantPolicy
        >>> from rqe_wrappers.envs.matrix import coordination_game
        >>> game = coordination_game(cost=0.5)
        >>> space = lambda: (game.observation_space("player_0"), game.action_space("player_0"))
        >>> env = aht_wrap(game, {"free-rider": ConstantPolicy(*space(), 0), "helper": ConstantPolicy(*space(), 1)})
        >>> env.scenarios.ids
        ('c1:free-rider', 'c1:helper', 'c2')
        >>> obs, infos = env.reset(seed=0)
        >>> infos["focal"]["scenario"] in env.scenarios.ids
        True
    """
    uniform_mix = renamed_argument("eps", eps, "uniform_mix", uniform_mix, default=None)
    return AHTWrapper(
        env,
        population,
        scenarios,
        config=config,
        prior=prior,
        lr=lr,
        uniform_mix=uniform_mix,
        best_responses=best_responses,
        nature_step=nature_step,
        focal_name=focal_name,
        snapshot_name=snapshot_name,
        fp_capacity=fp_capacity,
        fp_focal=fp_focal,
        max_scenarios=max_scenarios,
    )
