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
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
from rqe_wrappers.experiments.common import deadline_callback, one_thread_in_workers, run_jobs
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
    policy_kwargs: Mapping[str, Any] | None = None,
    device: str = "cpu",
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> list[PopulationMember]:
    """Train the population of ``settings`` on ``env_fn()`` (a PettingZoo parallel env, seats with equal
    spaces) by population play; see the module docstring and :func:`train_populations`."""
    plans = {"population": (env_fn, settings)}
    return train_populations(
        plans, policy=policy, policy_kwargs=policy_kwargs, devices=(device,), jobs=jobs, progress=progress
    )["population"]


def train_populations(
    plans: Mapping[str, tuple[Callable[[], Any], PopulationPlay]],
    *,
    policy: str = "MlpPolicy",
    policy_kwargs: Mapping[str, Any] | None = None,
    devices: Sequence[str] = ("cpu",),
    jobs: int = 1,
    workdir: str | os.PathLike[str] | None = None,
    turn_seconds: float | None = None,
    partners_on_device: bool = False,
    rollout_device: str | None = None,
    progress: Callable[[str], None] | None = None,
    on_turn: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, list[PopulationMember]]:
    """Train several populations (``{key: (env_fn, settings)}``) by population play, side by side.

    Rounds are synchronous: in round ``r`` every member trains ``steps_per_round`` agent-steps against
    the other members of its sub-population as they were at the end of round ``r - 1`` (uniformly
    random partners in round one), so a member's turn never depends on another's in the same round
    and the turns of all populations run in ``jobs`` processes at once (turn ``k`` on
    ``devices[k % len(devices)]``) with the same result as one by one. Models pass between rounds as
    SB3 files in ``workdir`` (a temporary directory by default; these are this run's own files).
    ``policy_kwargs`` are added to the settings' (e.g. ``{"features_extractor_kwargs": ...}``).
    ``turn_seconds``: a turn stops early once its training has taken that long (a guard for fixed
    machine time; the steps each member got are in its model's ``num_timesteps``). Partners act on
    the CPU, or with ``partners_on_device`` on the turn's device; either way a partner's forward pass
    covers every env copy of the turn's process that plays it (``PettingZooVecEnv`` batches background
    seats). ``rollout_device``: collect each turn's rollouts with a copy of its policy there
    (:class:`~rqe_wrappers.sb3.RolloutDevice`; ``"cpu"`` spares many turns on one GPU the per-step round
    trips), the update staying on the turn's device. Returns ``{key: members}``, each member's model
    loaded on the CPU; ``progress`` gets a line per turn, ``on_turn`` its record (population, name,
    round, steps, turn_steps, seconds of training, started and ended as ``time.time()``, device, the
    process's pid). With ``jobs > 1`` each round's turns run in a pool of fresh processes (warm workers
    kept from round to round trained round two at 0.6-0.7 of the rate on the GPU box: docs/meltingpot.md).
    """
    from stable_baselines3 import PPO

    integer("jobs", jobs, low=1)
    if not devices or not all(isinstance(d, str) for d in devices):
        raise ConfigError(f"devices must be device names such as 'cpu' or 'cuda:0', got {devices!r}")
    roster: dict[str, tuple[list[str], list[int], list[Preferences]]] = {}
    for key, (_, settings) in plans.items():
        if not isinstance(settings, PopulationPlay):
            raise ConfigError(f"population {key!r}: settings must be PopulationPlay, got {type(settings).__name__}")
        prefs = sample_preferences(
            sum(settings.sizes), settings.seed, prosociality=settings.prosociality, risk_aversion=settings.risk_aversion
        )
        names = [f"sp{k}-m{j}" for k, s in enumerate(settings.sizes) for j in range(s)]
        groups = [k for k, s in enumerate(settings.sizes) for _ in range(s)]
        roster[key] = (names, groups, prefs)

    def finished(result: dict) -> None:
        if on_turn is not None:
            on_turn(result)
        if progress is not None:
            cut = ", cut at the time limit" if result["cut"] else ""
            progress(
                f"{result['population']} round {result['round']}: {result['name']} trained "
                f"({result['steps']} steps, {result['seconds']:.0f} s{cut})"
            )

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir) if workdir is not None else Path(tmp)
        files: dict[tuple[str, str], Path] = {}  # (population, member) -> its model file after the last round
        for r in range(max(s.rounds for _, s in plans.values())):
            args: list[tuple] = []
            made: dict[tuple[str, str], Path] = {}
            for key, (env_fn, settings) in plans.items():
                if r >= settings.rounds:
                    continue
                names, groups, prefs = roster[key]
                for i, name in enumerate(names):
                    partners = {
                        names[j]: files.get((key, names[j]))
                        for j in range(len(names))
                        if j != i and groups[j] == groups[i]
                    }
                    made[(key, name)] = model_file = work / _safe(key) / f"round{r}" / f"{name}.zip"
                    seeds = (settings.seed * 1_009 + i, settings.seed * 1_000_003 + r * 1_009 + i)
                    device = devices[len(args) % len(devices)]
                    own = files.get((key, name))
                    ppo, steps = settings.ppo.to_json(), settings.steps_per_round
                    kwargs = dict(policy_kwargs or {})
                    turn = (env_fn, prefs[i], partners, own, model_file, policy, kwargs, ppo, seeds, steps, device)
                    args.append((*turn, key, name, r, turn_seconds, partners_on_device, rollout_device))
            run_jobs(_member_turn, args, jobs, finished)
            files.update(made)  # only now: no turn of this round saw another's new model
        out: dict[str, list[PopulationMember]] = {}
        for key in plans:
            names, groups, prefs = roster[key]
            out[key] = [
                PopulationMember(name, groups[i], prefs[i], PPO.load(files[(key, name)], device="cpu"))
                for i, name in enumerate(names)
            ]
    return out


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key) or "population"


def _member_turn(
    env_fn: Callable[[], Any],
    preferences: Preferences,
    partner_files: Mapping[str, Path | None],
    own_file: Path | None,
    out_file: Path,
    policy: str,
    policy_kwargs: dict[str, Any],
    ppo_json: dict[str, Any],
    seeds: tuple[int, int],
    steps: int,
    device: str,
    population: str,
    name: str,
    round_: int,
    seconds: float | None = None,
    partners_on_device: bool = False,
    rollout_device: str | None = None,
) -> dict[str, Any]:
    """One member's turn of one round (runs in a worker process): train, save, report."""
    import time

    started = time.time()

    from stable_baselines3 import PPO

    from rqe_wrappers.core.policy import RandomPolicy
    from rqe_wrappers.sb3 import PettingZooVecEnv, RolloutDevice

    one_thread_in_workers()  # one of many turns running side by side
    ppo = PPOSettings.from_json(ppo_json)
    obs_space, act_space = seat_spaces(env_fn)
    partners = {  # a partner that has not trained yet (round one) acts uniformly at random
        n: RandomPolicy(obs_space, act_space) if f is None else load_partner(f, obs_space)
        for n, f in partner_files.items()
    }
    if partners_on_device:
        partners = {n: p.to(device) for n, p in partners.items()}
    venv = PettingZooVecEnv(_MemberEnv(env_fn, preferences, partners), ppo.n_copies, n_workers=ppo.n_workers)
    venv.seed(seeds[1])
    if own_file is None:
        model = PPO(policy, venv, seed=seeds[0], device=device, **ppo.ppo_kwargs(policy_kwargs))
    else:
        model = PPO.load(own_file, env=venv, device=device)
        model.set_random_seed(seeds[1])
    start = time.perf_counter()
    before = model.num_timesteps
    callbacks: list[Any] = [] if rollout_device is None else [RolloutDevice(rollout_device)]
    if seconds is not None:
        callbacks.append(deadline_callback(start + seconds))
    model.learn(steps, reset_num_timesteps=False, callback=callbacks or None)
    took = time.perf_counter() - start
    out_file.parent.mkdir(parents=True, exist_ok=True)
    model.save(out_file)
    venv.close()
    return {
        "population": population,
        "name": name,
        "round": round_ + 1,
        "file": str(out_file),
        "steps": int(model.num_timesteps),
        "turn_steps": int(model.num_timesteps - before),
        "cut": bool(model.num_timesteps - before < steps),
        "seconds": took,
        "started": started,
        "ended": time.time(),
        "device": device,
        "pid": os.getpid(),
    }


class _MemberEnv:
    """A picklable :func:`member_env` factory (subprocess workers build their own copy)."""

    def __init__(self, env_fn: Callable[[], Any], preferences: Preferences, partners: dict[str, Any]):
        self.env_fn, self.preferences, self.partners = env_fn, preferences, partners

    def __call__(self) -> Any:
        return member_env(self.env_fn, self.preferences, self.partners)


def seat_spaces(env_fn: Callable[[], Any]) -> tuple[Any, Any]:
    """The observation and action space of ``env_fn()``'s seats (all equal here), from one env."""
    env = env_fn()
    seat = env.possible_agents[0]
    return env.observation_space(seat), env.action_space(seat)


def load_partner(file: str | os.PathLike[str], observation_space: Any) -> Any:
    """A saved member (an SB3 PPO file this run wrote) as a CPU Policy on ``observation_space``, the env's
    (images as the env gives them, though SB3 transposed them for the network); its convolutions' weights
    channels-last, as the images reach them."""
    import torch as th
    from stable_baselines3 import PPO

    from rqe_wrappers.sb3 import SB3Policy

    partner = SB3Policy.from_model(PPO.load(str(file), device="cpu"), observation_space=observation_space)
    policy: Any = partner.policy  # (torch's stubs leave memory_format out of Module.to)
    policy.to(memory_format=th.channels_last)  # CPU convolutions on the channels-last images SB3 hands over
    return partner
