"""Builder functions named by recipes (see :mod:`rqe_wrappers.zoo.publish.recipes` for the registry).

A builder takes a :class:`~rqe_wrappers.zoo.publish.recipes.Recipe` and returns a
:class:`~rqe_wrappers.zoo.publish.recipes.BuildResult`. Keep heavy imports (SB3, env packages) inside the
function, so that listing builders stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rqe_wrappers.errors import ConfigError
from rqe_wrappers.zoo.publish.members import NewMember, member_from_sb3, member_from_scripted
from rqe_wrappers.zoo.publish.recipes import BuildResult, Recipe
from rqe_wrappers.zoo.spaces import space_from_json

_SCRIPTED_FIELDS = {"name", "scripted", "kwargs", "metrics"}


def scripted_population(recipe: Recipe) -> BuildResult:
    """A population of registered scripted policies, listed in ``params.members``.

    ``params``::

        {"members": [{"name": "tft", "scripted": "ipd/tit-for-tat", "kwargs": {}, "metrics": {}}, ...],
         "observation_space": {...}, "action_space": {...}}   # spaces optional (JSON, see spaces.py)

    Spaces are needed when the scripted factories take them as arguments; otherwise they come from
    the built policies. Nothing is trained, so metrics are only what the recipe states.
    """
    params = recipe.params
    entries = params.get("members")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{recipe.path}: params.members must be a non-empty list of scripted members")
    members = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not {"name", "scripted"} <= set(e) or set(e) - _SCRIPTED_FIELDS:
            raise ConfigError(
                f"{recipe.path}: params.members[{i}] must be {{'name', 'scripted', optional 'kwargs', 'metrics'}}, "
                f"got {e!r}"
            )
        members.append(
            member_from_scripted(e["name"], e["scripted"], metrics=e.get("metrics", {}), **e.get("kwargs", {}))
        )
    obs, act = (
        space_from_json(params[key], f"params.{key}") if key in params else None
        for key in ("observation_space", "action_space")
    )
    return BuildResult(members=members, observation_space=obs, action_space=act)


def ipd_partners(recipe: Recipe) -> BuildResult:
    """The minimax-Bayes paper's IPD training partners (section 8.1) as a scripted population.

    ``env.kwargs.rounds`` sets the game length; ``params.partners`` (optional) lists registry names
    (default: all nine, :data:`rqe_wrappers.partners.ipd.PARTNER_NAMES`). Member names drop the
    ``ipd/`` prefix (``"tit-for-tat"``), so scenario ids read ``"c1:tit-for-tat"``.

    Metrics are exact (no sampling): ``best_response_value`` (the best expected return against the
    partner), ``self_play_return`` (the partner against itself). ``best_responses`` holds the best
    utility of every 2-player scenario: ``"c1:<member>"`` and the self-play scenario ``"c2"``.
    """

    from rqe_wrappers.core.registry import make_scripted
    from rqe_wrappers.envs.ipd import DEFAULT_ROUNDS, check_rounds
    from rqe_wrappers.partners import ipd

    rounds = check_rounds(recipe.env.kwargs.get("rounds", DEFAULT_ROUNDS))
    names = recipe.params.get("partners", list(ipd.PARTNER_NAMES))
    unknown = [n for n in names if n not in ipd.PARTNER_NAMES]
    if unknown:
        raise ConfigError(
            f"{recipe.path}: params.partners {unknown} are not IPD partners; known: {list(ipd.PARTNER_NAMES)}"
        )
    members, best = [], {}
    for registry_name in names:
        partner = make_scripted(registry_name, rounds=rounds)
        name = registry_name.split("/", 1)[1]
        value = ipd.best_response_value(partner, rounds)
        metrics = {"best_response_value": value, "self_play_return": ipd.expected_return(partner, partner, rounds)[0]}
        members.append(member_from_scripted(name, registry_name, metrics=metrics, rounds=rounds))
        best[f"c1:{name}"] = value
    return _ipd_result(members, best, rounds)


def tag_runners(recipe: Recipe) -> BuildResult:
    """PPO runners for the SRPO paper's Tag, trained against scripted greedy chasers, one per seed.

    ``budget.steps``: agent-steps per runner; ``params``: ``jobs`` (parallel processes),
    ``chasers`` (scripted chaser name), ``eval_episodes``. Each member's metrics are those measured
    by :func:`rqe_wrappers.experiments.tag.train_runners` at build time (return against the chasers
    over seeded evaluation episodes, steps/s, wall time).
    """
    import tempfile

    from stable_baselines3 import PPO

    from rqe_wrappers.envs.tag import RUNNER
    from rqe_wrappers.experiments import tag

    if not recipe.seeds:
        raise ConfigError(f"{recipe.path}: a tag-runners recipe needs seeds")
    steps = int(recipe.budget.get("steps", 0))
    params = recipe.params
    with tempfile.TemporaryDirectory() as tmp:
        report = tag.train_runners(
            recipe.seeds,
            steps,
            tmp,
            chasers=params.get("chasers", tag.DEFAULT_CHASERS),
            eval_episodes=int(params.get("eval_episodes", tag.EVAL_EPISODES)),
            jobs=int(params.get("jobs", 1)),
        )
        members = []
        for entry in report["runners"]:
            model = PPO.load(str(Path(tmp) / entry["file"]), device="cpu")
            metrics = {k: v for k, v in entry.items() if k not in ("file", "settings")}
            members.append(member_from_sb3(model, f"runner-{entry['seed']}", seed=entry["seed"], metrics=metrics))
    baselines = report.get("baselines", {})
    description = f"{recipe.description} Baselines against the same chasers: " + ", ".join(
        f"{n} runner_return {b.get('runner_return', float('nan')):.2f}" for n, b in baselines.items()
    )
    env = recipe.env
    if not env.seats:
        from dataclasses import replace

        env = replace(env, seats=(RUNNER,))
    return BuildResult(members=members, env=env, description=description)


#: params a cooking-agents recipe may set
_COOKING_PARAMS = {"taus", "jobs", "policy", "reuse_dir", "settings", "eval_episodes", "eval_layouts"}
#: the seed of the first evaluation episode (as in ``rqe cooking sweep``'s cross-play). The actions are sampled
#: from streams keyed by the agents' names: ``crossplay`` with the member under its own name replays its metrics
COOKING_EVAL_SEED = 10_000


def cooking_agents(recipe: Recipe) -> BuildResult:
    """IPPO (tau = 0) and SRPO agents of the SRPO paper's cooking gridworld, one per (tau, seed).

    Each is :func:`rqe_wrappers.experiments.cooking.train_cooking` (one policy for both seats, seat
    identity on) on ``env.kwargs.layout``, run by :func:`~rqe_wrappers.experiments.cooking.train_job`
    in ``params.jobs`` processes. ``budget.steps``: agent-steps per agent. ``params``: ``taus``
    (default ``[0, 0.1]``), ``jobs``, ``policy`` (``"role"``: SRPO with
    :class:`~rqe_wrappers.sb3.role_policy.RolePolicy`; ``"shared"``), ``settings`` (fields of
    :data:`~rqe_wrappers.experiments.cooking.COOKING_PPO` to change, e.g. ``{"n_copies": 4}``),
    ``eval_episodes`` (100), ``eval_layouts`` (``["train", "test"]``) and ``reuse_dir``: a directory
    of ``rqe cooking sweep`` models (``cooking-tau<T>-seed<S>.zip`` + ``.json``); those trained there
    with the same steps, settings, layout and policy are taken as they are, the others are trained
    and saved there too. Without it everything is trained in a temporary directory.

    Members are ``ippo-s<seed>`` and ``srpo<tau>-s<seed>``; their metrics: the training metrics
    (method, tau, seed, steps, seconds, agent_steps_per_s, device, policy) and, per evaluation layout,
    the self-play return, each seat's private cost and the free-riding degree (their difference),
    over ``eval_episodes`` seeded 100-step episodes per seating (both seatings), played on the
    batched twin with :func:`rqe_wrappers.eval.crossplay`.
    """
    import dataclasses
    import tempfile

    from rqe_wrappers.envs.cooking import AGENTS
    from rqe_wrappers.experiments.common import run_jobs
    from rqe_wrappers.experiments.cooking import COOKING_PPO, CookingSweep, train_job
    from rqe_wrappers.experiments.settings import PPOSettings

    params = dict(recipe.params)
    unknown = sorted(set(params) - _COOKING_PARAMS)
    if unknown:
        raise ConfigError(f"{recipe.path}: unknown params {unknown}; cooking-agents takes {sorted(_COOKING_PARAMS)}")
    overrides = params.get("settings", {})
    fields = set(COOKING_PPO.to_json())
    if not isinstance(overrides, dict) or set(overrides) - fields:
        raise ConfigError(f"{recipe.path}: params.settings must be an object with keys among {sorted(fields)}")
    reuse = params.get("reuse_dir")
    if reuse is not None and not (isinstance(reuse, str) and Path(reuse).is_dir()):
        raise ConfigError(f"{recipe.path}: params.reuse_dir must be null or an existing directory, got {reuse!r}")
    lists = {k: params.get(k, d) for k, d in (("taus", [0.0, 0.1]), ("eval_layouts", ["train", "test"]))}
    if not all(isinstance(v, list) for v in lists.values()):
        raise ConfigError(f"{recipe.path}: params.taus and params.eval_layouts must be lists, got {lists}")
    try:  # the sweep's own checks: taus, seeds, steps, jobs, layouts, policy, episodes
        sweep = CookingSweep(
            tau=tuple(lists["taus"]),
            seeds=recipe.seeds,
            steps=recipe.budget.get("steps"),  # type: ignore[arg-type]  # checked by CookingSweep
            jobs=params.get("jobs", 1),
            train_layout=recipe.env.kwargs.get("layout", "train"),
            policy=params.get("policy", "role"),
            layouts=tuple(lists["eval_layouts"]),
            episodes=params.get("eval_episodes", 100),
            figures=False,
        )
        settings = PPOSettings.from_json({**COOKING_PPO.to_json(), **overrides}).to_json()
    except ConfigError as e:
        raise ConfigError(f"{recipe.path}: {e}") from None

    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(reuse) if reuse is not None else Path(tmp)
        args = [
            (t, s, sweep.steps, "cpu", settings, sweep.train_layout, sweep.policy, str(work))
            for t in sweep.tau
            for s in sweep.seeds
        ]
        run_jobs(train_job, args, sweep.jobs, runs.append)
        runs.sort(key=lambda r: (r["tau"], r["seed"]))
        members = [_cooking_member(work / r["file"], r, sweep.layouts, sweep.episodes) for r in runs]
    description = recipe.description
    reused = sum(bool(r.get("reused")) for r in runs)
    if reused:
        description += (
            f" {reused} of the {len(runs)} agents were not trained by this build but taken from an earlier "
            f"`rqe cooking sweep` run (params.reuse_dir, same steps, settings, layout and policy)"
            + _sweep_note(work)
            + "; `rqe zoo build zoo/cooking-agents` without reuse_dir trains them all again from scratch."
        )
    env = recipe.env if recipe.env.seats else dataclasses.replace(recipe.env, seats=AGENTS)
    return BuildResult(members=members, env=env, description=description)


def _sweep_note(directory: Path) -> str:
    """The command and machine of the sweep in ``directory``, from its ``results.json`` (empty when unknown)."""
    import json

    try:
        report = json.loads((directory / "results.json").read_text(encoding="utf-8"))
        sweep, machine = report["sweep"], report["machine"]
        command = (
            f"rqe cooking sweep --tau {' '.join(f'{t:g}' for t in sweep['tau'])} "
            f"--seeds {' '.join(str(s) for s in sweep['seeds'])} --steps {sweep['steps']} --jobs {sweep['jobs']}"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    gpu = f" with an {machine['cuda_device']} (trained on its CPUs)" if machine.get("cuda_device") else ""
    return f" (`{command}`, on a {machine.get('cpu_count')}-core machine{gpu}, torch {machine.get('torch')})"


def _cooking_member(path: Path, run: dict, layouts: Sequence[str], episodes: int) -> NewMember:
    """A trained cooking agent as a member: its training metrics plus self-play on every layout."""
    import functools

    import numpy as np
    from stable_baselines3 import PPO

    from rqe_wrappers.envs.cooking import BatchedCooking, cooking_env
    from rqe_wrappers.eval import crossplay
    from rqe_wrappers.experiments.cooking import free_riding_degree

    tau, seed = run["tau"], run["seed"]
    name = f"ippo-s{seed}" if tau == 0 else f"srpo{tau:g}-s{seed}"
    model = PPO.load(str(path), device="cpu")
    keys = ("method", "tau", "seed", "steps", "device", "seconds", "agent_steps_per_s", "policy")
    metrics = {k: run[k] for k in keys}
    for layout in layouts:
        result = crossplay(
            {name: model},
            functools.partial(cooking_env, layout),
            episodes=episodes,
            seed=COOKING_EVAL_SEED,
            batch=episodes,
            n_workers=0,
            batched=functools.partial(BatchedCooking, layout=layout),
        )
        metrics[f"{layout}_return"] = float(np.mean([r["agent_return"] for r in result.rows]))
        for seat in result.seats:
            metrics[f"{layout}_cost_{seat}"] = float(
                np.mean([r["agent_cost"] for r in result.rows if r["agent_seat"] == seat])
            )
        metrics[f"{layout}_free_riding"] = free_riding_degree(result)[name, name]
    metrics.update(eval_episodes=episodes, eval_seed=COOKING_EVAL_SEED)
    return member_from_sb3(model, name, seed=seed, metrics=metrics)


def ipd_test_partners(recipe: Recipe) -> BuildResult:
    """The minimax-Bayes paper's eps-perturbed IPD test partners (section 8.1) as ``ipd/table`` members.

    ``params``: ``widths`` (L1 widths w, e.g. ``[0.5, 1.0]``), ``count`` (partners per width);
    ``seeds``: exactly one, the test seed. The partners are
    :func:`rqe_wrappers.experiments.ipd.test_partners` ``(w, count, rounds, seed)``: the first
    ``count`` of the experiment's test set of that width (draws are sequential), so a population
    with ``count = 64`` holds the first 64 of the experiment's 512. Members are named
    ``w<w>-<k>`` (``"w0.5-007"``) and store ``p_defect`` (one defect probability per history).

    Metrics are exact: ``w``, ``index``, ``base`` (the training partner it perturbs),
    ``best_response_value``; ``best_responses`` holds ``"c1:<member>"`` for every member and the
    self-play scenario ``"c2"``.
    """
    import re

    from rqe_wrappers.envs.ipd import DEFAULT_ROUNDS, check_rounds
    from rqe_wrappers.experiments.ipd import test_partners
    from rqe_wrappers.partners import ipd

    rounds = check_rounds(recipe.env.kwargs.get("rounds", DEFAULT_ROUNDS))
    params = dict(recipe.params)
    unknown = sorted(set(params) - {"widths", "count"})
    if unknown:
        raise ConfigError(f"{recipe.path}: unknown params {unknown}; ipd-test-partners takes 'widths' and 'count'")
    widths = params.get("widths")
    if (
        not isinstance(widths, list)
        or not widths
        or any(isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 2 for w in widths)
    ):
        raise ConfigError(
            f"{recipe.path}: params.widths must be a non-empty list of L1 widths in (0, 2], got {widths!r}"
        )
    if len({f"{float(w):g}" for w in widths}) != len(widths):
        raise ConfigError(f"{recipe.path}: params.widths lists a width twice: {widths}")
    count = params.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 999:
        raise ConfigError(f"{recipe.path}: params.count must be an integer in 1..999, got {count!r}")
    if len(recipe.seeds) != 1:
        raise ConfigError(f"{recipe.path}: seeds must hold exactly one seed (the test seed), got {list(recipe.seeds)}")
    seed = recipe.seeds[0]
    base_re = re.compile(r"perturbed\((.+), w=[^)]*\)#\d+$")
    members, best = [], {}
    for w in widths:
        for k, partner in enumerate(test_partners(float(w), count, rounds, seed)):
            name = f"w{float(w):g}-{k:03d}"
            value = ipd.best_response_value(partner, rounds)
            m = base_re.match(partner.name)
            metrics = {"w": float(w), "index": k, "base": m.group(1) if m else None, "best_response_value": value}
            members.append(
                member_from_scripted(
                    name, "ipd/table", arrays={"p_defect": partner.table}, seed=seed, metrics=metrics, rounds=rounds
                )
            )
            best[f"c1:{name}"] = value
    return _ipd_result(members, best, rounds)


def _ipd_result(members: list[NewMember], best: dict[str, float], rounds: int) -> BuildResult:
    """An IPD population: the members, the IPD's spaces, and best responses incl. self-play (``c2``)."""
    import gymnasium as gym

    from rqe_wrappers.envs.ipd import observation_space
    from rqe_wrappers.partners import ipd

    return BuildResult(
        members=members,
        observation_space=observation_space(rounds),
        action_space=gym.spaces.Discrete(2),
        best_responses={**best, "c2": ipd.self_play_best_value(rounds)},
    )
