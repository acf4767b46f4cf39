"""The minimax-Bayes paper's deep-RL experiment on Melting Pot's collaborative cooking (section 5.2, Table 3).

Two steps, each one ``rqe meltingpot`` command meant for the GPU box:

* :func:`train_cooking_populations`: background populations by population play with preferences
  (:mod:`rqe_wrappers.experiments.population_play`, sub-populations 2, 3 and 5), one population per
  (layout, seed), all of them trained side by side in ``jobs`` processes over the box's GPUs; CNN
  policies (SB3 ``CnnPolicy``) on ``frames`` stacked views; the paper's training reward: 20 to both
  players per delivered dish (Melting Pot's own) plus 1 to the player who puts a tomato in the pot
  (``cooking_pot_pseudoreward``). Every member is then scored with each partner of its
  sub-population: dishes per episode and per-capita return in the canonical substrate (no pot reward),
  and its return in the training env. ``results.json`` + one model file per member, which the
  ``meltingpot-cooking`` zoo builder publishes.
* :func:`run_cooking_table`: MU, MR, PBR, SP and FP learners (stock PPO + ``AHTCallback``) trained on
  each layout's training population and scored on it and on the held-out one, all in parallel;
  utilities are returns in the training env (dishes and tomatoes in the pot), regret is taken against
  the best learner of the run in each scenario (an empirical best response: the paper trains one
  PPO best response per scenario, which the budget here does not allow). Docs: docs/meltingpot.md.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.common import machine_info, one_thread_in_workers, run_jobs, write_json
from rqe_wrappers.experiments.population_play import PopulationPlay, train_populations
from rqe_wrappers.experiments.settings import PPOSettings

#: layout name -> Melting Pot substrate
LAYOUTS = {"circuit": "collaborative_cooking__circuit", "cramped": "collaborative_cooking__cramped"}
#: views stacked per observation (the paper's policies are recurrent; these see motion this way)
FRAMES = 4
#: what a delivered dish pays each player in the canonical substrate
DISH_REWARD = 20.0
#: the paper's pot pseudo-reward for training (1 to the player who puts a tomato in the pot)
POT_REWARD = 1.0
#: PPO of members and learners: 16 copies in one process, 2,048 agent-steps a rollout
MP_PPO = PPOSettings(n_copies=16, n_steps=128, batch_size=512, n_epochs=4, ent_coef=0.01, net_arch=(64,))
#: SB3 ``CnnPolicy`` extras (NatureCNN with 128 features: ~120k weights, 0.5 MB a member)
CNN_KWARGS: dict[str, Any] = {"features_extractor_kwargs": {"features_dim": 128}}
#: population play of the published populations: the paper's sub-populations (2, 3, 5), small budget
MP_PLAY = PopulationPlay(sizes=(2, 3, 5), rounds=2, steps_per_round=100_000, ppo=MP_PPO)
#: seeds of the evaluation episodes
EVAL_SEED = 50_000


def cooking_env_fn(layout: str, *, pot_reward: float = POT_REWARD, frames: int = FRAMES) -> Callable[[], Any]:
    """A picklable factory of ``layout``'s env (``pot_reward=0``: the canonical substrate)."""
    from rqe_wrappers.envs.meltingpot import meltingpot_env

    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
    settings = {"cooking_pot_pseudoreward": float(pot_reward)} if pot_reward else None
    return functools.partial(meltingpot_env, LAYOUTS[layout], settings=settings, frames=frames)


def _check_layouts(layouts: Sequence[str]) -> list[str]:
    bad = [x for x in layouts if x not in LAYOUTS]
    if not layouts or bad:
        raise ConfigError(f"layouts must be among {sorted(LAYOUTS)}, got {list(layouts)}")
    return list(layouts)


def train_cooking_populations(
    out: str | Path,
    layouts: Sequence[str] = tuple(LAYOUTS),
    seeds: Sequence[int] = (0, 1),
    play: PopulationPlay = MP_PLAY,
    *,
    eval_episodes: int = 2,
    jobs: int = 1,
    devices: Sequence[str] = ("cpu",),
    turn_seconds: float | None = None,
    rollout_device: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train one population per (layout, seed) in ``out/<layout>-s<seed>/`` and score its members.

    ``play`` gives the sub-population sizes, rounds, steps and PPO (its ``seed`` is replaced by each
    seed). Writes ``out/results.json`` (settings, machine, every member's file, preferences and
    metrics) and returns it.
    """
    layouts = _check_layouts(layouts)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct population seeds, got {list(seeds)}")
    out = Path(out)
    plans = {f"{lay}-s{s}": (cooking_env_fn(lay), dataclasses.replace(play, seed=s)) for lay in layouts for s in seeds}
    start = time.perf_counter()
    pops = train_populations(
        plans,
        policy="CnnPolicy",
        policy_kwargs=CNN_KWARGS,
        devices=devices,
        jobs=jobs,
        workdir=out / "rounds",
        turn_seconds=turn_seconds,
        rollout_device=rollout_device,
        progress=progress,
    )
    train_seconds = time.perf_counter() - start
    report: dict[str, Any] = {
        "command": "train_cooking_populations",
        "layouts": layouts,
        "seeds": list(seeds),
        "play": play.to_json(),
        "policy": "CnnPolicy",
        "policy_kwargs": CNN_KWARGS,
        "frames": FRAMES,
        "pot_reward": POT_REWARD,
        "eval_episodes": eval_episodes,
        "eval_seed": EVAL_SEED,
        "jobs": jobs,
        "devices": list(devices),
        "turn_seconds": turn_seconds,
        "rollout_device": rollout_device,
        "train_seconds": train_seconds,
        "machine": machine_info(),
        "populations": {},
    }
    evals = []
    for key, members in pops.items():
        layout = key.rsplit("-s", 1)[0]
        (out / key).mkdir(parents=True, exist_ok=True)
        files = {}
        for m in members:
            files[m.name] = out / key / f"{m.name}.zip"
            _drop_optimizer_state(m.model)
            m.model.save(files[m.name])
        for m in members:
            partners = {
                o.name: str(files[o.name]) for o in members if o.sub_population == m.sub_population and o is not m
            }
            evals.append((key, m.name, str(files[m.name]), partners, layout, eval_episodes))
        report["populations"][key] = [
            {"name": m.name, "file": f"{key}/{m.name}.zip", "steps": int(m.model.num_timesteps), **m.metrics()}
            for m in members
        ]
    scores: dict[tuple[str, str], dict[str, float]] = {}
    run_jobs(_score_member, evals, jobs, lambda r: scores.__setitem__((r["population"], r["name"]), r["metrics"]))
    for key, rows in report["populations"].items():
        for row in rows:
            row.update(scores[(key, row["name"])])
    report["seconds"] = time.perf_counter() - start
    write_json(out / "results.json", report)
    return report


def _drop_optimizer_state(model: Any) -> None:
    """A fresh optimizer in place of the trained one: the saved member keeps its weights, not Adam's
    moments (two more copies of every weight), which publishing does not need."""
    policy = model.policy
    policy.optimizer = policy.optimizer_class(policy.parameters(), lr=model.lr_schedule(1), **policy.optimizer_kwargs)


def _score_member(
    population: str, name: str, file: str, partner_files: Mapping[str, str], layout: str, episodes: int
) -> dict[str, Any]:
    """A member with each partner of its sub-population: canonical dishes and return, training-env return."""
    from rqe_wrappers.eval.population import evaluate_population
    from rqe_wrappers.experiments.population_play import load_partner, seat_spaces

    one_thread_in_workers()
    space, _ = seat_spaces(cooking_env_fn(layout))
    model = load_partner(file, space)
    partners = {n: load_partner(f, space) for n, f in partner_files.items()}
    metrics: dict[str, float] = {}
    for key, pot in (("canonical", 0.0), ("training", POT_REWARD)):
        result = evaluate_population(
            model, partners, cooking_env_fn(layout, pot_reward=pot), episodes=episodes, seed=EVAL_SEED, reps=100
        )
        metrics[f"{key}_return"] = float(result.summary["mean"])
        if key == "canonical":  # a dish pays both players alike: per-capita return = the member's own
            metrics["dishes_per_episode"] = float(result.summary["mean"]) / DISH_REWARD
            metrics["worst_partner_dishes"] = float(result.summary["worst_case"]) / DISH_REWARD
    return {"population": population, "name": name, "metrics": metrics}


def run_cooking_table(
    out: str | Path,
    populations: Mapping[str, tuple[str, str]],
    settings: Any = None,
    *,
    jobs: int = 1,
    devices: Sequence[str] = ("cpu",),
    learner_seconds: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Table 3: every prior x seed on every layout of ``populations`` (``{layout: (training population,
    held-out population)}``, zoo references such as ``"meltingpot/circuit-train"``), trained and scored in
    parallel (``learner_seconds`` cuts a learner's training at that time; its steps are recorded).
    Writes ``out/table.json`` (rows, per-scenario utilities, settings, machine) and ``out/table.md``;
    returns the JSON."""
    from rqe_wrappers.experiments.aht_table import AHTTable, format_table

    settings = AHTTable(ppo=MP_PPO) if settings is None else settings
    if not isinstance(settings, AHTTable):
        raise ConfigError(f"settings must be AHTTable, got {type(settings).__name__}")
    from rqe_wrappers.zoo import load_population

    _check_layouts(list(populations))
    for refs in populations.values():  # fetched and verified once here, before the workers read the cache
        for ref in refs:
            load_population(ref)
    out = Path(out)
    runs = [
        (layout, prior, seed, train, test, settings)
        for layout, (train, test) in populations.items()
        for prior in settings.priors
        for seed in settings.seeds
    ]
    args = [(*a, devices[k % len(devices)], learner_seconds) for k, a in enumerate(runs)]
    start = time.perf_counter()
    results: list[dict[str, Any]] = []

    def done(r: dict[str, Any]) -> None:
        results.append(r)
        if progress is not None:
            progress(f"{r['layout']} {r['prior']} seed {r['seed']}: trained and scored ({r['seconds']:.0f} s)")

    run_jobs(_learner_job, args, jobs, done)
    results.sort(key=lambda r: (r["layout"], list(settings.priors).index(r["prior"]), r["seed"]))
    rows = []
    for layout in populations:
        mine = [r for r in results if r["layout"] == layout]
        for pop in ("train", "test"):
            best = {s: max(r["utilities"][pop][s] for r in mine) for s in mine[0]["utilities"][pop]}
            for r in mine:
                u = r["utilities"][pop]
                worst = min(u, key=u.__getitem__)
                rows.append(
                    {
                        "layout": layout,
                        "prior": r["prior"],
                        "seed": r["seed"],
                        "population": pop,
                        "mean": float(np.mean(list(u.values()))),
                        "worst_case": u[worst],
                        "worst_scenario": worst,
                        "worst_case_regret": max(best[s] - u[s] for s in u),
                    }
                )
    report = {
        "command": "run_cooking_table",
        "populations": {k: list(v) for k, v in populations.items()},
        "settings": {**dataclasses.asdict(settings), "ppo": settings.ppo.to_json()},
        "policy": "CnnPolicy",
        "policy_kwargs": CNN_KWARGS,
        "regret": "against the best learner of this run in each scenario (empirical best response)",
        "jobs": jobs,
        "devices": list(devices),
        "learner_seconds": learner_seconds,
        "seconds": time.perf_counter() - start,
        "machine": machine_info(),
        "rows": rows,
        "learners": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "table.json", report)
    text = [f"## {layout}\n\n" + format_table([r for r in rows if r["layout"] == layout]) for layout in populations]
    (out / "table.md").write_text("\n\n".join(text) + "\n", encoding="utf-8")
    return report


def _learner_job(
    layout: str, prior: str, seed: int, train: str, test: str, settings: Any, device: str, seconds: float | None
) -> dict[str, Any]:
    """One learner of the table (runs in a worker process): trained on ``train``, scored on both."""
    from rqe_wrappers.eval.population import evaluate_population
    from rqe_wrappers.experiments.aht_table import train_learner
    from rqe_wrappers.zoo import load_population

    one_thread_in_workers()
    start = time.perf_counter()
    env_fn = cooking_env_fn(layout)
    pops = {"train": load_population(train), "test": load_population(test)}
    members = {key: pop.policies() for key, pop in pops.items()}
    model = train_learner(
        env_fn,
        members["train"],
        prior,
        seed,
        settings,
        policy="CnnPolicy",
        policy_kwargs=CNN_KWARGS,
        device=device,
        seconds=seconds,
    )
    trained = time.perf_counter() - start
    utilities = {}
    for key, pop in members.items():
        result = evaluate_population(model, pop, env_fn, episodes=settings.episodes, seed=EVAL_SEED + seed, reps=100)
        utilities[key] = {name.split(":", 1)[-1]: float(u) for name, u in result.utilities().items()}
    return {
        "layout": layout,
        "prior": prior,
        "seed": seed,
        "steps": int(model.num_timesteps),
        "train_seconds": trained,
        "seconds": time.perf_counter() - start,
        "utilities": utilities,
    }
