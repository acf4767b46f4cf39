"""Background populations by population play with preferences (minimax-Bayes paper, section 4.1).

Members are organised in sub-populations (the paper: sizes 2, 3 and 5); each member has its own
:class:`~rqe_wrappers.aht.preferences.Preferences` (prosociality, risk aversion), drawn seeded from
the paper's ranges. Training goes in rounds: in each round every member in turn trains with stock
SB3 PPO for ``steps_per_round`` agent-steps against the other members of its sub-population as
they are now, one drawn per episode (``aht_wrap`` with the ``c1`` scenarios and a uniform prior),
paid its own shaped reward (``preference_wrap`` on every seat with its preferences). Members of
different sub-populations never meet, so each sub-population settles on its own conventions.
Publish the members with ``rqe_wrappers.zoo.publish.member_from_sb3(m.model, m.name, metrics=m.metrics())``
(each member's sub-population and preferences). Docs: docs/aht.md, "Background populations by population play".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rqe_wrappers.aht.config import AHTConfig
from rqe_wrappers.aht.preferences import (
    PROSOCIALITY_RANGE,
    RISK_AVERSION_RANGE,
    Preferences,
    preference_wrap,
    sample_preferences,
)
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.aht.wrapper import aht_wrap
from rqe_wrappers.core.checks import integer
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.settings import PPOSettings


@dataclass(frozen=True)
class PopulationPlay:
    """How a population is trained (validated on construction)."""

    sizes: tuple[int, ...] = (2, 3, 5)
    rounds: int = 4
    steps_per_round: int = 20_000
    seed: int = 0
    prosociality: tuple[float, float] = PROSOCIALITY_RANGE
    risk_aversion: tuple[float, float] = RISK_AVERSION_RANGE
    ppo: PPOSettings = field(default_factory=PPOSettings)

    def __post_init__(self) -> None:
        sizes = tuple(self.sizes)
        if not sizes or any(not isinstance(s, int) or isinstance(s, bool) or s < 2 for s in sizes):
            raise ConfigError(f"sizes must be sub-population sizes >= 2 (a member needs partners), got {self.sizes!r}")
        object.__setattr__(self, "sizes", sizes)
        integer("rounds", self.rounds, low=1)
        integer("steps_per_round", self.steps_per_round, low=1)
        integer("seed", self.seed, low=0)
        if not isinstance(self.ppo, PPOSettings):
            raise ConfigError(f"ppo must be PPOSettings, got {type(self.ppo).__name__}")

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ppo": self.ppo.to_json()}


@dataclass
class PopulationMember:
    """One trained member: its name, sub-population, preferences and SB3 model."""

    name: str
    sub_population: int
    preferences: Preferences
    model: Any

    def metrics(self) -> dict[str, Any]:
        """What a published member records: its sub-population and preferences."""
        prefs = {f"preferences.{k}": v for k, v in self.preferences.to_dict().items()}
        return {"sub_population": self.sub_population, **prefs}


def member_env(env_fn: Callable[[], Any], preferences: Preferences, partners: dict[str, Any]) -> Any:
    """The env one member trains in: ``env_fn()`` paying every seat ``preferences``' shaped reward, one
    seat learning, the others played by one of ``partners`` (``{name: Policy}``) drawn per episode."""
    env = env_fn()
    shaped = preference_wrap(env, dict.fromkeys(env.possible_agents, preferences))
    scenarios = ScenarioSet.all(len(env.possible_agents), list(partners), focal_counts=[1])
    return aht_wrap(shaped, partners, scenarios=scenarios, config=AHTConfig(prior="uniform", uniform_mix=0.0))


def train_population_play(
    env_fn: Callable[[], Any],
    settings: PopulationPlay = PopulationPlay(),
    *,
    policy: str = "MlpPolicy",
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> list[PopulationMember]:
    """Train the population of ``settings`` on ``env_fn()`` (a PettingZoo parallel env, seats with equal
    spaces) by population play; see the module docstring. ``progress`` gets one line per member turn."""
    from stable_baselines3 import PPO

    from rqe_wrappers.sb3 import PettingZooVecEnv, SB3Policy

    prefs = sample_preferences(
        sum(settings.sizes), settings.seed, prosociality=settings.prosociality, risk_aversion=settings.risk_aversion
    )
    groups: list[list[int]] = []
    for s in settings.sizes:
        start = sum(len(g) for g in groups)
        groups.append(list(range(start, start + s)))
    names = [f"sp{k}-m{j}" for k, g in enumerate(groups) for j in range(len(g))]
    members: list[PopulationMember | None] = [None] * len(names)
    ppo = settings.ppo
    for r in range(settings.rounds):
        for k, group in enumerate(groups):
            for i in group:
                partners = {}
                for j in group:
                    if j != i:  # a partner that has not trained yet (round one) acts uniformly at random
                        other = members[j]
                        partners[names[j]] = _uniform(env_fn) if other is None else SB3Policy.from_model(other.model)
                venv = PettingZooVecEnv(_MemberEnv(env_fn, prefs[i], partners), ppo.n_copies, n_workers=ppo.n_workers)
                venv.seed(settings.seed * 1_000_003 + r * 1_009 + i)
                current = members[i]
                if current is None:
                    model = PPO(policy, venv, seed=settings.seed * 1_009 + i, device=device, **ppo.ppo_kwargs())
                    current = members[i] = PopulationMember(names[i], k, prefs[i], model)
                else:
                    current.model.set_env(venv)
                current.model.learn(settings.steps_per_round, reset_num_timesteps=False)
                venv.close()
                if progress is not None:
                    progress(f"round {r + 1}/{settings.rounds}: {names[i]} (sub-population {k}) trained")
    return [m for m in members if m is not None]


class _MemberEnv:
    """A picklable :func:`member_env` factory (subprocess workers build their own copy)."""

    def __init__(self, env_fn: Callable[[], Any], preferences: Preferences, partners: dict[str, Any]):
        self.env_fn, self.preferences, self.partners = env_fn, preferences, partners

    def __call__(self) -> Any:
        return member_env(self.env_fn, self.preferences, self.partners)


def _uniform(env_fn: Callable[[], Any]) -> Any:
    """A uniformly random partner for ``env_fn()``'s seats (round one, before a partner has trained)."""
    from rqe_wrappers.core.policy import RandomPolicy

    env = env_fn()
    seat = env.possible_agents[0]
    return RandomPolicy(env.observation_space(seat), env.action_space(seat))
