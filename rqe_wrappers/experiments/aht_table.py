"""Minimax-Bayes AHT against any background population, reported as the minimax-Bayes paper's Table 3.

For each prior (``MU`` maximin-utility, ``MR`` minimax-regret, ``PBR`` uniform, ``SP`` self-play, ``FP``
fictitious play) and seed, stock SB3 PPO + ``AHTCallback`` trains on ``aht_wrap(env_fn(), train
population, prior)`` (SP and FP without the population, as the paper's baselines), then
:func:`~rqe_wrappers.eval.population.evaluate_population` scores the learner on the training population
and on a held-out one: mean utility, worst-case utility and worst-case regret over the scenarios (each
member alone with the learner in the other seats). Regret needs each scenario's best-response
utility: given, or estimated by training a PPO best response per member for ``best_response_steps``
(the paper: 1e7 steps), which MR's nature also uses. The IPD's exact version is
:mod:`rqe_wrappers.experiments.ipd`; this one is for envs without exact evaluation (Melting Pot's
collaborative cooking, issue 13). Docs: docs/aht.md, "Table 3 on any env".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.aht.wrapper import aht_wrap
from rqe_wrappers.core.checks import integer, real
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.eval.population import evaluate_population
from rqe_wrappers.experiments.common import deadline_callback
from rqe_wrappers.experiments.settings import PPOSettings

#: the paper's learners: abbreviation -> ``aht_wrap`` prior
PRIORS = {
    "MU": "maximin-utility",
    "MR": "minimax-regret",
    "PBR": "uniform",
    "SP": "self-play",
    "FP": "fictitious-play",
}


@dataclass(frozen=True)
class AHTTable:
    """What the table trains and measures (validated on construction)."""

    priors: tuple[str, ...] = tuple(PRIORS)
    seeds: tuple[int, ...] = (0,)
    steps: int = 100_000
    episodes: int = 32
    best_response_steps: int = 0
    nature_lr: float = 0.5
    ppo: PPOSettings = field(default_factory=PPOSettings)

    def __post_init__(self) -> None:
        unknown = [p for p in self.priors if p not in PRIORS]
        if not self.priors or unknown:
            raise ConfigError(f"priors must be among {list(PRIORS)}, got {list(self.priors)}")
        if not self.seeds:
            raise ConfigError("seeds must name at least one seed")
        for s in self.seeds:
            integer("seed", s, low=0)
        integer("steps", self.steps, low=1)
        integer("episodes", self.episodes, low=1)
        integer("best_response_steps", self.best_response_steps, low=0)
        real("nature_lr", self.nature_lr, low=0, low_open=True)
        if not isinstance(self.ppo, PPOSettings):
            raise ConfigError(f"ppo must be PPOSettings, got {type(self.ppo).__name__}")


def _ppo(
    env_fn: Callable[[], Any],
    steps: int,
    ppo: PPOSettings,
    seed: int,
    policy: str,
    device: str,
    policy_kwargs: Mapping[str, Any] | None = None,
    seconds: float | None = None,
) -> Any:
    """Stock PPO + ``AHTCallback`` trained ``steps`` agent-steps on copies of ``env_fn()`` (an ``aht_wrap`` env);
    ``policy_kwargs`` are added to the settings' (e.g. a CNN's ``features_extractor_kwargs``); ``seconds``
    stops training early once it has taken that long."""
    import time

    from stable_baselines3 import PPO

    from rqe_wrappers.sb3 import AHTCallback, PettingZooVecEnv

    venv = PettingZooVecEnv(env_fn, ppo.n_copies, n_workers=ppo.n_workers)
    venv.seed(seed)
    model = PPO(policy, venv, seed=seed, device=device, **ppo.ppo_kwargs(policy_kwargs))
    callbacks: list[Any] = [AHTCallback()]
    if seconds is not None:
        callbacks.append(deadline_callback(time.perf_counter() + seconds))
    model.learn(steps, callback=callbacks)
    venv.close()
    return model


def best_responses(
    env_fn: Callable[[], Any],
    population: Mapping[str, Any],
    settings: AHTTable,
    *,
    seed: int = 0,
    policy: str = "MlpPolicy",
    policy_kwargs: Mapping[str, Any] | None = None,
    device: str = "cpu",
) -> dict[str, float]:
    """Each member's best-response utility, estimated: a PPO learner trained ``best_response_steps``
    against that member alone (``c1:<member>``), scored over ``episodes`` episodes; ``{member: utility}``."""
    steps = settings.best_response_steps
    if steps < 1:
        raise ConfigError("best_responses needs best_response_steps >= 1")
    n_seats = len(env_fn().possible_agents)
    out = {}
    for name, member in population.items():
        one = {name: member}
        scenarios = ScenarioSet.all(n_seats, [name], focal_counts=[1])
        env = _Env(env_fn, one, "uniform", {"scenarios": scenarios})
        model = _ppo(env, steps, settings.ppo, seed, policy, device, policy_kwargs)
        result = evaluate_population(model, one, env_fn, episodes=settings.episodes, seed=seed, reps=100)
        out[name] = float(result.summary["mean"])
    return out


class _Env:
    """A picklable ``aht_wrap`` factory (subprocess workers build their own copies)."""

    def __init__(self, env_fn: Callable[[], Any], population: Mapping[str, Any], prior: str, kwargs: dict[str, Any]):
        self.env_fn, self.population, self.prior, self.kwargs = env_fn, dict(population), prior, kwargs

    def __call__(self) -> Any:
        return aht_wrap(self.env_fn(), self.population, self.prior, **self.kwargs)


def train_learner(
    env_fn: Callable[[], Any],
    population: Mapping[str, Any],
    prior: str,
    seed: int,
    settings: AHTTable,
    *,
    scenario_best_responses: Mapping[str, float] | None = None,
    policy: str = "MlpPolicy",
    policy_kwargs: Mapping[str, Any] | None = None,
    device: str = "cpu",
    seconds: float | None = None,
) -> Any:
    """One learner (``prior``: an abbreviation of :data:`PRIORS`) trained with stock PPO + ``AHTCallback``.

    MR's nature uses ``scenario_best_responses`` (``{scenario id: utility}`` over all of ``aht_wrap``'s
    training scenarios) where given, else the best utility seen so far per scenario (``aht_wrap``'s default).
    """
    kwargs: dict[str, Any] = {"lr": settings.nature_lr}
    members = {} if prior in ("SP", "FP") else dict(population)
    if prior == "MR" and scenario_best_responses is not None:
        kwargs["best_responses"] = dict(scenario_best_responses)
    env = _Env(env_fn, members, PRIORS[prior], kwargs)
    return _ppo(env, settings.steps, settings.ppo, seed, policy, device, policy_kwargs, seconds)


def run_table(
    env_fn: Callable[[], Any],
    train: Mapping[str, Any],
    test: Mapping[str, Any],
    settings: AHTTable = AHTTable(),
    *,
    member_best_responses: Mapping[str, Mapping[str, float]] | None = None,
    policy: str = "MlpPolicy",
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Train every prior x seed and score each learner on ``train`` and ``test`` (``{name: Policy}``).

    ``member_best_responses``: ``{"train": {member: utility}, "test": {...}}`` for the regret; missing
    ones are estimated with :func:`best_responses` when ``best_response_steps >= 1``, else regret is
    unknown (``None``). Returns one row per (prior, seed, population): ``mean``, ``worst_case``,
    ``worst_scenario``, ``worst_case_regret``.
    """
    given = dict(member_best_responses or {})
    pops = {"train": dict(train), "test": dict(test)}
    brs: dict[str, dict[str, float] | None] = {}
    for key, pop in pops.items():
        if key in given:
            brs[key] = dict(given[key])
        elif settings.best_response_steps >= 1:
            brs[key] = best_responses(env_fn, pop, settings, seed=settings.seeds[0], policy=policy, device=device)
            if progress is not None:
                progress(f"best responses ({key}): {brs[key]}")
        else:
            brs[key] = None
    rows = []
    for prior in settings.priors:
        for seed in settings.seeds:
            model = train_learner(env_fn, train, prior, seed, settings, policy=policy, device=device)
            for key, pop in pops.items():
                result = evaluate_population(
                    model, pop, env_fn, best_responses=brs[key], episodes=settings.episodes, seed=seed, reps=200
                )
                summary = result.summary
                rows.append(
                    {
                        "prior": prior,
                        "seed": seed,
                        "population": key,
                        "mean": summary["mean"],
                        "worst_case": summary["worst_case"],
                        "worst_scenario": summary["worst_scenario"],
                        "worst_case_regret": summary["worst_case_regret"],
                    }
                )
            if progress is not None:
                progress(f"{prior} seed {seed}: trained and scored")
    return rows


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The paper's Table 3 layout (markdown): per prior, mean ± std over seeds of each measure, training
    and held-out population side by side."""

    def stat(prior: str, pop: str, key: str) -> str:
        vals = [r[key] for r in rows if r["prior"] == prior and r["population"] == pop and r[key] is not None]
        if not vals:
            return "-"
        return f"{np.mean(vals):.2f} ± {np.std(vals):.2f}" if len(vals) > 1 else f"{vals[0]:.2f}"

    keys = (("mean", "mean utility"), ("worst_case", "worst-case utility"), ("worst_case_regret", "worst-case regret"))
    head = "| learner | " + " | ".join(f"{name} ({pop})" for pop in ("train", "test") for _, name in keys) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(keys))]
    for prior in dict.fromkeys(r["prior"] for r in rows):
        cells = [stat(prior, pop, key) for pop in ("train", "test") for key, _ in keys]
        lines.append(f"| {prior} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
