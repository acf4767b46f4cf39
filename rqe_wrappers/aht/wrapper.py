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
rewards (the paper's utility, section 3.3). In AEC games a seat's reward is counted on its own
turn (``last()`` semantics) and handed to the learner's next step. If the learner's game ends
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

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.wrappers import BaseParallelWrapper

from rqe_wrappers.errors import ConfigError, MissingCallbackWarning, SeatError, SpaceMismatchError
from rqe_wrappers.aht.nature import PRIORS, STEPS, Nature
from rqe_wrappers.core.policy import Policy, check_policy_spaces
from rqe_wrappers.aht.scenarios import Scenario, ScenarioSet
from rqe_wrappers.core.seeding import categorical, stream
from rqe_wrappers.core.snapshot import SnapshotPolicy
from rqe_wrappers.seats.background import BackgroundSeatsParallel, play_turn

FICTITIOUS_PLAY = "fictitious-play"
SELF_PLAY = "self-play"
_ADAPTIVE = ("maximin-utility", "minimax-regret", FICTITIOUS_PLAY)


def population_policies(population: Any, env: Any = None) -> dict[str, Policy]:
    """``{name: Policy}`` from a mapping or from an object with ``.policies()`` (a zoo population).

    A zoo population is checked against every seat of ``env`` (``population.check_env``) from its
    manifest *before* its members' weights are loaded.
    """
    if population is None:
        return {}
    if callable(getattr(population, "policies", None)):
        if env is not None and callable(getattr(population, "check_env", None)):
            population.check_env(env, list(env.possible_agents))
        population = population.policies()
    if not isinstance(population, Mapping):
        raise TypeError(
            "population must be a {name: Policy} mapping or a zoo Population (with .policies()), "
            f"got {type(population).__name__}"
        )
    out = {}
    for name, policy in population.items():
        if not isinstance(policy, Policy):
            raise TypeError(f"population member {name!r}: expected a rqe_wrappers.Policy, got {type(policy).__name__}")
        out[str(name)] = policy
    return out


def nature_from_config(config: Mapping[str, Any]) -> Nature:
    """A fresh :class:`~rqe_wrappers.aht.nature.Nature` matching a wrapper's :attr:`AHTWrapper.aht_config`."""
    scenarios = ScenarioSet.from_dict(config["scenarios"])
    return Nature(
        len(scenarios),
        config["prior"],
        lr=config["lr"],
        eps=config["eps"],
        best_responses=config["best_responses"],
        self_play_scenario=scenarios.self_play_index if config["prior"] == SELF_PLAY else None,
        step=config["nature_step"],
    )


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    return float(value)


def _all_seats_alike(env, seats: Sequence[str]) -> None:
    first = seats[0]
    for kind, space_of in (("observation", env.observation_space), ("action", env.action_space)):
        want = space_of(first)
        for seat in seats[1:]:
            if space_of(seat) != want:
                raise SpaceMismatchError(
                    f"scenario seats must be interchangeable, but seat {seat!r} has {kind} space {space_of(seat)} "
                    f"and seat {first!r} has {want}. Fix the seats that never learn with background_seats(), "
                    f"or make the spaces equal (e.g. supersuit.pad_observations_v0 / pad_action_space_v0)."
                )


class _AsTrainerSees(Policy):
    """A learner snapshot fed the observation the trainer sees.

    The SB3 adapter (:class:`rqe_wrappers.sb3.PettingZooVecEnv`) strips ``obs["action_mask"]``
    from what the learner sees (the mask goes to ``mask=``) and unwraps a lone remaining
    ``"observation"`` key; a snapshot of the learner must get its input the same way.
    """

    def __init__(self, inner: Policy, observation_space: gym.spaces.Dict):
        super().__init__(observation_space, inner.action_space)
        self.inner = inner
        self.keys = [k for k in observation_space.spaces if k != "action_mask"]

    def initial_state(self, batch_size):
        return self.inner.initial_state(batch_size)

    def act(self, obs, *, rng, mask=None, state=None):
        seen = obs["observation"] if self.keys == ["observation"] else {k: obs[k] for k in self.keys}
        return self.inner.act(seen, rng=rng, mask=mask, state=state)

    def __repr__(self) -> str:
        return f"{self.inner!r} (as the trainer sees)"


def _learner_snapshot(observation_space, action_space, name: str) -> Policy:
    snap = SnapshotPolicy(observation_space, action_space, name)
    if isinstance(observation_space, gym.spaces.Dict) and "action_mask" in observation_space.spaces:
        return _AsTrainerSees(snap, observation_space)
    return snap


class _ParallelSeating:
    """Drives a parallel env: the learner's seat is visible, every other seat is a background seat."""

    def __init__(self, env: ParallelEnv):
        self.bg = BackgroundSeatsParallel(env, {})
        self.learner = ""

    def reset(self, seed, options, learner: str, policies: dict[str, Policy]):
        self.learner = learner
        self.bg.assign(policies)
        obs, infos = self.bg.reset(seed=seed, options=options)
        return obs[learner], dict(infos.get(learner, {}))

    def step(self, action):
        learner, bg = self.learner, self.bg
        obs, rew, term, trunc, infos = bg.step({learner: action})
        rewards = {learner: float(rew.get(learner, 0.0)), **bg.background_rewards}
        info = dict(infos.get(learner, {}))
        info.pop("background_rewards", None)
        done_term, done_trunc = bool(term.get(learner, False)), bool(trunc.get(learner, False))
        if learner not in bg.env.agents and not (done_term or done_trunc):
            done_term = True  # removed without a flag: treat as the end
        if done_term or done_trunc:
            while bg.env.agents:  # the others play on: their focal rewards still count
                bg.step({})
                for seat, r in bg.background_rewards.items():
                    rewards[seat] = rewards.get(seat, 0.0) + r
        return obs.get(learner), rewards, done_term, done_trunc, info


class _AECSeating:
    """Drives a turn-based env: partners move on their turns until it is the learner's turn again.

    Each seat's reward is read on its own turn (AEC ``last()``: what it accumulated since it last
    moved), so every reward is counted exactly once, including the final ones on the dead steps.
    """

    def __init__(self, env: AECEnv):
        self.env = env
        self.learner = ""
        self._rng = stream(None, "background")
        self._policies: dict[str, Policy] = {}
        self._states: dict = {}
        self._pending: dict[str, float] = {}
        self._over = False
        self._term = self._trunc = False
        self._last_obs = None
        self._last_info: dict = {}

    def reset(self, seed, options, learner: str, policies: dict[str, Policy]):
        if seed is not None:
            self._rng = stream(seed, "background")
        self.learner = learner
        self._policies = dict(policies)
        self._states = {s: p.initial_state(1) for s, p in self._policies.items()}
        self._pending = {}
        self._over = False
        self._term = self._trunc = False
        self.env.reset(seed=seed, options=options)
        self._advance()
        return self._last_obs, dict(self._last_info)

    def _credit(self, seat: str) -> None:
        r = float(self.env._cumulative_rewards.get(seat, 0.0))
        self._pending[seat] = self._pending.get(seat, 0.0) + r

    def _advance(self) -> None:
        """Play until the learner must move (or the game is over for everyone)."""
        env, learner = self.env, self.learner
        while env.agents:
            seat = env.agent_selection
            self._credit(seat)
            dead = env.terminations[seat] or env.truncations[seat]
            if seat == learner:
                self._last_obs = env.observe(learner)
                self._last_info = dict(env.infos.get(learner, {}))
                if not dead:
                    return
                self._over, self._term, self._trunc = True, bool(env.terminations[seat]), bool(env.truncations[seat])
            if dead:
                env.step(None)
                continue
            self._states[seat] = play_turn(env, seat, self._policies[seat], self._rng, self._states[seat])
        if not self._over:  # the learner left without a dead step of its own
            self._over = True
            self._trunc = bool(env.truncations.get(learner, False))
            self._term = not self._trunc

    def step(self, action):
        if not self._over:
            self.env.step(action)
            self._advance()
        rewards, self._pending = self._pending, {}
        return self._last_obs, rewards, self._term, self._trunc, dict(self._last_info)


class AHTWrapper(BaseParallelWrapper):
    """One learning seat in a per-episode scenario; see the module docstring and :func:`aht_wrap`.

    Args:
        env: a PettingZoo ``ParallelEnv`` or ``AECEnv`` whose seats all share one observation and
            one action space.
        population: ``{name: Policy}`` background partners (or a zoo population with ``.policies()``).
        scenarios: the scenarios to sample (default: :meth:`ScenarioSet.all` over every seat).
        prior: nature's prior, one of :data:`rqe_wrappers.aht.nature.PRIORS`.
        lr, eps, best_responses, nature_step: nature's settings (see :class:`~rqe_wrappers.aht.nature.Nature`);
            the wrapper validates them and hands them to the callback through :attr:`aht_config`.
            ``best_responses`` may be a sequence in scenario order or ``{scenario id: value}``.
        focal_name: the agent name the learning seat has in this env.
        snapshot_name: the shared snapshot that plays the other focal copies.
        fp_capacity: with ``prior="fictitious-play"``, how many past snapshots are kept (slots).
        max_scenarios: refuse to enumerate more scenarios than this (see :meth:`ScenarioSet.all`).
    """

    def __init__(
        self,
        env: ParallelEnv | AECEnv,
        population: Any = None,
        scenarios: ScenarioSet | None = None,
        *,
        prior: str = "maximin-utility",
        lr: float = 0.5,
        eps: float = 0.05,
        best_responses: Sequence[float] | Mapping[str, float] | None = None,
        nature_step: str = "projected",
        focal_name: str = "focal",
        snapshot_name: str = "learner",
        fp_capacity: int = 16,
        max_scenarios: int | None = None,
    ):
        # ---- validate everything before building state ----
        if not isinstance(env, (ParallelEnv, AECEnv)):
            raise TypeError(f"expected a PettingZoo AECEnv or ParallelEnv, got {type(env).__name__}")
        if prior not in PRIORS:
            raise ConfigError(f"unknown prior {prior!r}; known priors: {', '.join(PRIORS)}")
        lr = _check_number("lr", lr)
        if not math.isfinite(lr) or lr <= 0:
            raise ConfigError(f"lr (nature's step size) must be a finite number > 0, got {lr}")
        eps = _check_number("eps", eps)
        if not 0.0 <= eps < 1.0:
            raise ConfigError(
                f"eps should be in the interval [0, 1) (the probability of sampling a uniform scenario), got {eps}"
            )
        if nature_step not in STEPS:
            raise ConfigError(f"unknown nature_step {nature_step!r}; known: {', '.join(STEPS)}")
        seats = list(env.possible_agents)
        if len(seats) < 2:
            raise SeatError(f"ad hoc teamwork needs partners: the env has {len(seats)} seat(s) ({seats})")
        _all_seats_alike(env, seats)
        obs_space, act_space = env.observation_space(seats[0]), env.action_space(seats[0])
        members = population_policies(population, env)
        if prior == FICTITIOUS_PLAY:
            if members:
                raise ConfigError(
                    f"prior 'fictitious-play' trains against the learner's own past snapshots; "
                    f"pass an empty population (got {len(members)} members: {sorted(members)[:5]})"
                )
            if scenarios is not None:
                raise ConfigError("prior 'fictitious-play' builds its own scenarios (learner + one past snapshot)")
            if isinstance(fp_capacity, bool) or not isinstance(fp_capacity, int) or fp_capacity < 1:
                raise ConfigError(f"fp_capacity must be an integer >= 1, got {fp_capacity!r}")
        elif not members and prior != SELF_PLAY:
            raise ConfigError(
                f"the background population is empty, so prior {prior!r} has only the self-play scenario; "
                "pass a population ({name: Policy} or a zoo population), or use prior='self-play'"
            )
        for name, policy in members.items():
            check_policy_spaces(policy, obs_space, act_space, f"population member {name!r}")

        fp_members: dict[str, str] = {}
        if prior == FICTITIOUS_PLAY:
            fp_members = {f"fp/{k}": f"{snapshot_name}/fp/{k}" for k in range(fp_capacity)}
            members = {m: _learner_snapshot(obs_space, act_space, snap) for m, snap in fp_members.items()}
            scenarios = ScenarioSet(
                len(seats), tuple(fp_members), tuple(Scenario(1, (m,) * (len(seats) - 1)) for m in fp_members)
            )
        elif scenarios is None:
            scenarios = ScenarioSet.all(len(seats), list(members), max_scenarios)
        elif not isinstance(scenarios, ScenarioSet):
            raise TypeError(f"scenarios must be a ScenarioSet, got {type(scenarios).__name__}")
        if scenarios.n_seats != len(seats):
            raise ConfigError(f"the scenario set is for {scenarios.n_seats} seats but the env has {len(seats)}")
        missing = sorted(set(scenarios.members) - set(members))
        if missing:
            raise ConfigError(f"the scenario set names members {missing} that the population does not have")
        if prior == SELF_PLAY and scenarios.self_play_index is None:
            raise ConfigError(f"prior 'self-play' needs the self-play scenario 'c{len(seats)}' in the scenario set")
        if isinstance(best_responses, Mapping):
            unknown = sorted(set(best_responses) - set(scenarios.ids))
            lacking = [i for i in scenarios.ids if i not in best_responses]
            if unknown or lacking:
                raise ConfigError(
                    "best_responses by scenario id must cover exactly the scenarios: "
                    f"unknown {unknown}, missing {lacking}"
                )
            best_responses = [float(best_responses[i]) for i in scenarios.ids]
        nature = Nature(  # validates best_responses against the scenario count
            len(scenarios), prior, lr=lr, eps=eps, best_responses=best_responses,
            self_play_scenario=scenarios.self_play_index if prior == SELF_PLAY else None, step=nature_step,
        )

        # ---- state ----
        super().__init__(env)
        self.focal_name = str(focal_name)
        self.possible_agents = [self.focal_name]
        self.agents: list[str] = []
        self.scenarios = scenarios
        self.population = members
        self.snapshot_name = snapshot_name
        self._env_seats = seats
        self._obs_space, self._act_space = obs_space, act_space
        self._copy_policy = _learner_snapshot(obs_space, act_space, snapshot_name)  # one object: copies batch together
        self._config = {
            "prior": prior,
            "lr": lr,
            "eps": eps,
            "nature_step": nature_step,
            "best_responses": None if nature.best_responses is None else nature.best_responses.tolist(),
            "scenarios": scenarios.to_dict(),
            "snapshot_name": snapshot_name,
            "fp_members": fp_members,
            "focal_name": self.focal_name,
        }
        beta = nature.beta
        if prior == FICTITIOUS_PLAY:  # only slot 0 (the initial policy) is filled before training
            beta = np.eye(len(scenarios))[0]
        self._beta = np.asarray(beta, dtype=np.float64)
        self._seating = _ParallelSeating(env) if isinstance(env, ParallelEnv) else _AECSeating(env)
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
        """Plain-data settings the callback reads (``get_attr("aht_config")``) to build its nature."""
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self._config.items()}

    @property
    def beta(self) -> np.ndarray:
        """The prior over :attr:`scenarios` that the next ``reset`` samples from."""
        return self._beta.copy()

    @beta.setter
    def beta(self, value) -> None:
        self.set_prior(value)

    def set_prior(self, beta) -> None:
        """Set the prior (one weight per scenario, normalised here); used from the next ``reset`` on."""
        b = np.array(beta, dtype=np.float64)
        if b.shape != (len(self.scenarios),):
            raise ConfigError(f"beta must have one entry per scenario ({len(self.scenarios)}), got shape {b.shape}")
        if not np.all(np.isfinite(b)) or np.any(b < 0) or b.sum() <= 0:
            raise ConfigError(f"beta must be finite, >= 0 and not all zero, got {b.tolist()}")
        self._beta = b / b.sum()

    def make_nature(self) -> Nature:
        """A fresh :class:`~rqe_wrappers.aht.nature.Nature` with this wrapper's settings."""
        return nature_from_config(self._config)

    # ---- spaces --------------------------------------------------------------------------------
    def observation_space(self, agent):
        return self._obs_space

    def action_space(self, agent):
        return self._act_space

    # ---- the episode ---------------------------------------------------------------------------
    @property
    def scenario(self) -> Scenario | None:
        """The current episode's scenario (``None`` before the first reset)."""
        return self.scenarios[self._scenario_index] if self._scenario_index >= 0 else None

    @property
    def seating(self) -> dict[str, tuple[str, str]]:
        """``{env seat: (kind, name)}`` for this episode; kind is ``"learner"``, ``"copy"`` or ``"background"``."""
        return dict(self._assignment)

    def _pick(self, options) -> int:
        forced = (options or {}).get("scenario")
        if forced is not None:  # evaluation: play a given scenario (id or index)
            return self.scenarios.index(forced)
        return int(categorical(self._beta, self._rng))

    def _info(self, info: dict) -> dict:
        return {**info, "scenario": self.scenarios.ids[self._scenario_index],
                "scenario_index": self._scenario_index, "seat": self._seat}

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
        for seat in copies:
            self._assignment[seat] = ("copy", self.snapshot_name)
            policies[seat] = self._copy_policy
        for seat, member in zip(background, scenario.background):
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
        prior = self._config["prior"]
        if prior in _ADAPTIVE and not self.aht_callback_attached and not self._warned:
            self._warned = True
            warnings.warn(
                f"aht_wrap(prior={prior!r}) ran an episode without AHTCallback: the prior stays at its start "
                "and the learner's snapshot is never refreshed. Train with model.learn(..., callback=AHTCallback()), "
                "or set env.aht_callback_attached = True if you update the prior yourself.",
                MissingCallbackWarning,
                stacklevel=3,
            )

    def __str__(self) -> str:
        return f"aht<{self.env}, {len(self.scenarios)} scenarios, prior={self._config['prior']}>"


def aht_wrap(
    env: ParallelEnv | AECEnv,
    population: Any = None,
    prior: str = "maximin-utility",
    *,
    scenarios: ScenarioSet | None = None,
    lr: float = 0.5,
    eps: float = 0.05,
    best_responses: Sequence[float] | Mapping[str, float] | None = None,
    **kwargs: Any,
) -> AHTWrapper:
    """Make a PettingZoo env (AEC or parallel) train minimax-Bayes ad hoc teamwork with stock SB3 PPO.

    Returns a one-seat :class:`AHTWrapper` (agent ``"focal"``); train it with
    :class:`rqe_wrappers.sb3.AHTCallback`, which updates nature's prior and the learner snapshot.

    Args:
        env: a PettingZoo ``AECEnv`` or ``ParallelEnv`` (all seats with equal spaces).
        population: ``{name: Policy}`` or a zoo population; may be empty only for ``"self-play"``
            and ``"fictitious-play"``.
        prior: ``"maximin-utility"``, ``"minimax-regret"``, ``"uniform"``, ``"self-play"`` or
            ``"fictitious-play"``.
        scenarios: a :class:`~rqe_wrappers.aht.scenarios.ScenarioSet` (default: all of them).
        lr: nature's step size (> 0). eps: probability of a uniform scenario, in [0, 1).
        best_responses: best-response utility per scenario, for ``"minimax-regret"``.
        **kwargs: ``nature_step``, ``focal_name``, ``snapshot_name``, ``fp_capacity``,
            ``max_scenarios`` (see :class:`AHTWrapper`).

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
    return AHTWrapper(
        env, population, scenarios, prior=prior, lr=lr, eps=eps, best_responses=best_responses, **kwargs
    )
