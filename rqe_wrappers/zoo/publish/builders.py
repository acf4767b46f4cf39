"""Builder functions named by recipes (see :mod:`rqe_wrappers.zoo.publish.recipes` for the registry).

A builder takes a :class:`~rqe_wrappers.zoo.publish.recipes.Recipe` and returns a
:class:`~rqe_wrappers.zoo.publish.recipes.BuildResult`. Keep heavy imports (SB3, env packages) inside the
function, so that listing builders stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rqe_wrappers.errors import ConfigError
from rqe_wrappers.zoo.publish.members import NewMember, member_from_sb3, member_from_scripted
from rqe_wrappers.zoo.publish.recipes import BuildResult, Recipe
from rqe_wrappers.zoo.spaces import space_from_json

if TYPE_CHECKING:
    from rqe_wrappers.experiments.settings import PPOSettings
    from rqe_wrappers.experiments.tag import ShiftSweep

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


def _sweep_params(
    recipe: Recipe, builder: str, allowed: set[str], settings: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """A sweep builder's ``(params, settings overrides, reuse_dir)``, checked.

    No key outside ``allowed``; ``params.settings`` only overrides fields of ``settings`` (the
    sweep's PPO settings as JSON); ``params.reuse_dir`` is null or an existing directory.
    """
    params = dict(recipe.params)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(f"{recipe.path}: unknown params {unknown}; {builder} takes {sorted(allowed)}")
    overrides = params.get("settings", {})
    if not isinstance(overrides, dict) or set(overrides) - set(settings):
        raise ConfigError(f"{recipe.path}: params.settings must be an object with keys among {sorted(settings)}")
    reuse = params.get("reuse_dir")
    if reuse is not None and not (isinstance(reuse, str) and reuse and Path(reuse).is_dir()):
        raise ConfigError(f"{recipe.path}: params.reuse_dir must be null or an existing directory, got {reuse!r}")
    return params, overrides, reuse


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

    params, overrides, reuse = _sweep_params(recipe, "cooking-agents", _COOKING_PARAMS, COOKING_PPO.to_json())
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


#: params a tag-chasers recipe may set
_TAG_CHASER_PARAMS = {"taus", "jobs", "train_runner", "settings", "reuse_dir", "eval_episodes", "mpe2_episodes"}


def tag_chasers(recipe: Recipe) -> BuildResult:
    """IPPO (tau = 0) and SRPO chasers of the SRPO paper's Tag, one per (tau, seed), trained as ``rqe tag shift`` does.

    Each is :func:`rqe_wrappers.experiments.tag.train_chasers_batched` (one policy for both chaser seats, seat
    identity on; SRPO with :class:`~rqe_wrappers.sb3.role_policy.RolePolicy`) against the ``tag/runners`` member
    ``params.train_runner``, run by ``rqe tag shift``'s own job in ``params.jobs`` processes. ``budget.steps``:
    agent-steps per model. ``params``: ``taus`` (default ``[0, 1]``), ``jobs``, ``train_runner`` (``"runner-0"``),
    ``settings`` (fields of :data:`~rqe_wrappers.experiments.tag.BATCHED_CHASER_PPO` to change),
    ``eval_episodes`` (100), ``mpe2_episodes`` (16, ``rqe tag shift --eval-episodes``) and ``reuse_dir``: the
    ``--out`` directory of an ``rqe tag shift`` run. A model there is adopted when that run's ``results.json``
    asked for the same steps, settings, training runner and mpe2 episodes and the model file's own
    hyper-parameters, seed, policy class and step count agree; the others are trained in a temporary
    directory (``reuse_dir`` is only read).

    Members are ``ippo-s<seed>`` and ``srpo<tau>-s<seed>``; their metrics: the training metrics (method, tau,
    seed, steps, device, seconds, cpu_seconds, agent_steps_per_s, policy, train_runner), ``mpe2_return`` /
    ``mpe2_return_std`` (the training's own score against the training runner over ``mpe2_episodes`` episodes
    of mpe2's env) and the chasers' return with the member in both chaser seats over ``eval_episodes`` seeded
    episodes on the batched twin (:func:`rqe_wrappers.eval.crossplay`, ``batch=eval_episodes``): against the
    training runner (``train_return``), each ``tag/runners-heldout`` member (``return_<member>``, mean
    ``heldout_return``) and ``tag/evasive-runner`` (``evasive_return``).
    """
    import dataclasses
    import tempfile

    from rqe_wrappers.envs.tag import CHASERS
    from rqe_wrappers.experiments.common import check_count, run_jobs
    from rqe_wrappers.experiments.settings import PPOSettings
    from rqe_wrappers.experiments.tag import BATCHED_CHASER_PPO, ShiftSweep
    from rqe_wrappers.experiments.tag.shift import TRAIN_RUNNERS, shift_job

    params, overrides, reuse = _sweep_params(recipe, "tag-chasers", _TAG_CHASER_PARAMS, BATCHED_CHASER_PPO.to_json())
    taus = params.get("taus", [0.0, 1.0])
    if not isinstance(taus, list) or any(isinstance(t, bool) or not isinstance(t, (int, float)) for t in taus):
        raise ConfigError(f"{recipe.path}: params.taus must be a list of numbers (0 = IPPO), got {taus!r}")
    if len(set(map(float, taus))) != len(taus):
        raise ConfigError(f"{recipe.path}: params.taus lists a tau twice: {taus}")
    try:  # the shift sweep's own checks: taus, seeds, steps, jobs, training runner, episodes
        sweep = ShiftSweep(
            tau=tuple(float(t) for t in taus),
            seeds=recipe.seeds,
            steps=recipe.budget.get("steps"),  # type: ignore[arg-type]  # checked by ShiftSweep
            train_runner=params.get("train_runner", "runner-0"),
            jobs=params.get("jobs", 1),
            eval_episodes=params.get("mpe2_episodes", 16),
        )
        episodes = check_count(params.get("eval_episodes", 100), "params.eval_episodes")
        settings = PPOSettings.from_json({**BATCHED_CHASER_PPO.to_json(), **overrides})
        if settings.n_workers:
            raise ConfigError("params.settings.n_workers must be 0: the batched path steps all copies in one process")
        runners = _tag_eval_runners(sweep.train_runner)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{recipe.path}: bad params.settings: {e}") from None
    except ConfigError as e:
        raise ConfigError(f"{recipe.path}: {e}") from None

    wanted = sorted((t, s) for t in sweep.tau for s in sweep.seeds)
    found = _adopt_shift_models(Path(reuse), wanted, sweep, settings) if reuse is not None else {}
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        ref = f"{TRAIN_RUNNERS}:{sweep.train_runner}"
        args = [
            (
                t,
                s,
                sweep.steps,
                "cpu",
                {sweep.train_runner: ref},
                sweep.train_runner,
                settings.to_json(),
                sweep.eval_episodes,
                tmp,
            )
            for t, s in wanted
            if (t, s) not in found
        ]
        run_jobs(shift_job, args, sweep.jobs, runs.append)
        found.update({(r["tau"], r["seed"]): (Path(tmp) / r["file"], r) for r in runs})
        members = [_tag_chaser_member(*found[k], ref, runners, episodes) for k in wanted]
    description = recipe.description
    reused = sum(bool(row.get("reused")) for _, row in found.values())
    if reused and reuse is not None:
        description += (
            f" {reused} of the {len(found)} chaser models were not trained by this build but taken from an earlier "
            "`rqe tag shift` run (params.reuse_dir: its results.json asked for the same steps, PPO settings, training "
            "runner and evaluation episodes, and each model file's hyper-parameters, seed, policy class and step "
            "count agree)"
            + _shift_note(Path(reuse))
            + "; `rqe zoo build zoo/tag-chasers` without reuse_dir trains them all again from scratch."
        )
    env = recipe.env if recipe.env.seats else dataclasses.replace(recipe.env, seats=CHASERS)
    return BuildResult(members=members, env=env, description=description)


def _tag_eval_runners(train_runner: str) -> dict[str, Any]:
    """``{metric name: runner Policy}``: the training runner, the held-out runners and ``tag/evasive-runner``."""
    from rqe_wrappers.envs.tag import RUNNER
    from rqe_wrappers.experiments.tag import as_tag_policy
    from rqe_wrappers.experiments.tag.shift import HELDOUT_RUNNERS, TRAIN_RUNNERS
    from rqe_wrappers.zoo.client import load_population

    train = load_population(TRAIN_RUNNERS)
    if train_runner not in train:
        raise ConfigError(f"params.train_runner must be a member of {TRAIN_RUNNERS}: one of {list(train)}")
    heldout = load_population(HELDOUT_RUNNERS)
    runners = {
        "train_return": train[train_runner],
        **{f"return_{name}": heldout[name] for name in heldout},
        "evasive_return": "tag/evasive-runner",
    }
    return {key: as_tag_policy(runner, RUNNER) for key, runner in runners.items()}  # built once, not per member


def _adopt_shift_models(
    directory: Path, wanted: Sequence[tuple[float, int]], sweep: ShiftSweep, settings: PPOSettings
) -> dict[tuple[float, int], tuple[Path, dict]]:
    """The models of the ``rqe tag shift`` run in ``directory`` that a build with these settings would train.

    The run's ``results.json`` must have asked for ``sweep``'s steps, training runner and mpe2 episodes and
    for ``settings``; each model's row must be there, and the model file's stored PPO hyper-parameters,
    seed, policy class (``RolePolicy`` for tau > 0) and step count must agree with them.
    """
    import json

    from stable_baselines3 import PPO

    from rqe_wrappers.experiments.tag import EVAL_SEED
    from rqe_wrappers.experiments.tag.shift import TRAIN_RUNNERS

    try:
        report = json.loads((directory / "results.json").read_text(encoding="utf-8"))
        same = [report[k] for k in ("steps", "settings", "train_runner", "eval_episodes", "eval_seed")]
        rows = {(float(r["tau"]), int(r["seed"])): r for r in report["rows"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    asked = [sweep.steps, settings.to_json(), f"{TRAIN_RUNNERS}:{sweep.train_runner}", sweep.eval_episodes, EVAL_SEED]
    if same != asked:
        return {}
    kwargs = settings.ppo_kwargs()
    out = {}
    for tau, seed in wanted:
        row = rows.get((tau, seed), {})
        name = row.get("file") if isinstance(row, dict) else None
        if not (isinstance(name, str) and Path(name).name == name and (directory / name).is_file()):
            continue
        model = PPO.load(str(directory / name), device="cpu")
        stored = {k: getattr(model, k) for k in ("n_steps", "batch_size", "n_epochs", "learning_rate", "gamma")}
        clip = model.clip_range  # a schedule once loaded
        stored.update(
            gae_lambda=model.gae_lambda,
            ent_coef=model.ent_coef,
            clip_range=clip(1.0) if callable(clip) else clip,
            policy_kwargs=model.policy_kwargs,
        )
        checks = (
            stored == {k: kwargs[k] for k in stored},
            model.n_envs == 2 * settings.n_copies and model.seed == seed and not model.normalize_advantage,
            type(model.policy).__name__ == ("RolePolicy" if tau > 0 else "ActorCriticPolicy"),
            model.num_timesteps == row["steps"] and row["steps"] >= sweep.steps,
        )
        if all(checks):
            out[tau, seed] = (directory / name, {**row, "reused": True})
    return out


def _shift_note(directory: Path) -> str:
    """The command and machine of the ``rqe tag shift`` run in ``directory`` (empty when unknown)."""
    import json

    from rqe_wrappers.experiments.tag import BATCHED_CHASER_PPO

    try:
        report = json.loads((directory / "results.json").read_text(encoding="utf-8"))
        machine, defaults = report["machine"], BATCHED_CHASER_PPO.to_json()
        flags = "".join(
            f" --{k.replace('_', '-')} " + (" ".join(map(str, v)) if isinstance(v, list) else f"{v:g}")
            for k, v in report["settings"].items()
            if v != defaults.get(k)
        )
        command = (
            f"rqe tag shift --tau {' '.join(f'{t:g}' for t in report['taus'])} "
            f"--seeds {' '.join(str(s) for s in report['seeds'])} --steps {report['steps']} "
            f"--train-runner {report['train_runner'].partition(':')[2]} --eval-episodes {report['eval_episodes']} "
            f"--crossplay-episodes {report['crossplay_episodes']}{flags}"
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""
    gpu = f" with an {machine['cuda_device']}" if machine.get("cuda_device") else ""
    return f" (`{command}`, on a {machine.get('cpu_count')}-core machine{gpu}, torch {machine.get('torch')})"


def _tag_chaser_member(path: Path, run: dict, train_runner: str, runners: dict[str, Any], episodes: int) -> NewMember:
    """A trained chaser model as a member: its training metrics plus its return against every runner."""
    import numpy as np
    from stable_baselines3 import PPO

    from rqe_wrappers.envs.tag import CHASERS, RUNNER, tag_env
    from rqe_wrappers.envs.tag_batched import BatchedTag
    from rqe_wrappers.eval import crossplay
    from rqe_wrappers.experiments.tag import EVAL_SEED
    from rqe_wrappers.experiments.tag.shift import agent_name
    from rqe_wrappers.sb3 import SB3Policy

    tau, seed = run["tau"], run["seed"]
    name = agent_name(tau, seed)
    model = PPO.load(str(path), device="cpu")
    keys = ("method", "tau", "seed", "steps", "device", "seconds", "cpu_seconds", "agent_steps_per_s")
    metrics: dict[str, Any] = {k: run[k] for k in keys}
    policy = type(model.policy).__name__
    metrics.update(
        policy="MlpPolicy" if policy == "ActorCriticPolicy" else policy,
        train_runner=train_runner,
        mpe2_return=run["chaser_return"],
        mpe2_return_std=run["chaser_return_std"],
        mpe2_episodes=run["eval_episodes"],
    )
    player = SB3Policy.from_model(model)  # one detached copy for every runner
    for key, runner in runners.items():
        result = crossplay(
            {name: player},
            tag_env,
            seats=CHASERS,
            background={RUNNER: runner},
            episodes=episodes,
            seed=EVAL_SEED,
            batch=episodes,
            n_workers=0,
            batched=BatchedTag,
        )
        metrics[key] = float(np.mean([r["agent_return"] for r in result.rows]))
    metrics["heldout_return"] = float(np.mean([v for k, v in metrics.items() if k.startswith("return_")]))
    metrics.update(eval_episodes=episodes, eval_seed=EVAL_SEED)
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


#: params a hanabi-agents recipe may set
_HANABI_PARAMS = {"taus", "jobs", "reuse_dir", "settings", "seat_id", "eval_episodes"}
#: the name of uniformly random legal play in a member's evaluation (its partner in ``random_partner_score``)
HANABI_RANDOM = "random"


def hanabi_agents(recipe: Recipe) -> BuildResult:
    """IPPO (tau = 0) and SRPO MaskablePPO agents of the SRPO paper's Hanabi (3 colours x 3 ranks), one per (tau, seed).

    Each is trained as ``rqe hanabi sweep`` trains it (the sweep's own job,
    :func:`~rqe_wrappers.experiments.hanabi.train_hanabi`: one network for every seat, seat identity on)
    in ``params.jobs`` processes. ``env.kwargs``: ``players`` (2 or 4) and optionally ``colors`` /
    ``ranks`` (3) and the other :func:`~rqe_wrappers.experiments.hanabi.hanabi_config` keys, which must
    be the sweep's game (the published kwargs are the whole config, so ``hanabi_env(**kwargs)`` rebuilds
    it). ``budget.steps``: learner moves per agent. ``params``: ``taus`` (default ``[0, 1]``), ``jobs``,
    ``seat_id`` (true), ``settings`` (fields of :data:`~rqe_wrappers.experiments.hanabi.HANABI_PPO` to
    change), ``eval_episodes`` (32) and ``reuse_dir``: the ``--out`` directory of an earlier
    ``rqe hanabi sweep``; its models are taken as they are when its ``results.json`` says they were
    trained with the same players, steps, seat identity and settings. The others are trained in a
    temporary directory.

    Members are ``ippo-s<seed>`` and ``srpo<tau>-s<seed>``; their metrics: the training metrics (method,
    players, tau, seed, steps, seconds, steps_per_s, train_return), ``self_play_score`` and
    ``random_partner_score`` (with uniformly random legal play as the partner), each the mean final
    score over ``eval_episodes`` seeded games per seating played by
    :func:`~rqe_wrappers.experiments.hanabi.hanabi_crossplay` (the sweep's cross-play).
    """
    import dataclasses
    import tempfile

    from rqe_wrappers.experiments.common import run_jobs
    from rqe_wrappers.experiments.hanabi import HANABI_PPO, HanabiSweep, hanabi_config, random_score
    from rqe_wrappers.experiments.hanabi.driver import train_job as sweep_job
    from rqe_wrappers.experiments.hanabi.evaluation import EVAL_EPISODES, EVAL_SEED
    from rqe_wrappers.experiments.settings import PPOSettings

    params, overrides, reuse = _sweep_params(recipe, "hanabi-agents", _HANABI_PARAMS, HANABI_PPO.to_json())
    taus = params.get("taus", [0, 1])
    if not isinstance(taus, list) or any(isinstance(t, bool) or not isinstance(t, (int, float)) for t in taus):
        raise ConfigError(f"{recipe.path}: params.taus must be a list of numbers, got {taus!r}")
    seat_id = params.get("seat_id", True)
    if not isinstance(seat_id, bool):
        raise ConfigError(f"{recipe.path}: params.seat_id must be true or false, got {seat_id!r}")
    kwargs = dict(recipe.env.kwargs)
    if "players" not in kwargs:
        raise ConfigError(f"{recipe.path}: env.kwargs must name players (2 or 4), got {kwargs}")
    try:  # the game's and the sweep's own checks: players, colours, ranks, taus, seeds, steps, jobs, episodes
        config = hanabi_config(**kwargs)
        if config != hanabi_config(config["players"]):
            raise ConfigError(
                f"env.kwargs {kwargs} is not the game rqe hanabi sweep trains on: {hanabi_config(config['players'])}"
            )
        sweep = HanabiSweep(
            players=config["players"],
            tau=tuple(float(t) for t in taus),
            seeds=recipe.seeds,
            steps=recipe.budget.get("steps"),  # type: ignore[arg-type]  # checked by HanabiSweep
            jobs=params.get("jobs", 1),
            seat_id=seat_id,
            episodes=params.get("eval_episodes", EVAL_EPISODES),
        )
        settings = PPOSettings.from_json({**HANABI_PPO.to_json(), **overrides}).to_json()
    except ConfigError as e:
        raise ConfigError(f"{recipe.path}: {e}") from None
    seats = tuple(f"player_{i}" for i in range(sweep.players))
    if recipe.env.seats and tuple(recipe.env.seats) != seats:
        raise ConfigError(f"{recipe.path}: env.seats must be {list(seats)} for {sweep.players} players")

    reusable = _hanabi_reusable(Path(reuse), sweep.players, sweep.steps, sweep.seat_id, settings) if reuse else {}
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        todo = []
        for t in sweep.tau:
            for s in sweep.seeds:
                if (t, s) in reusable:
                    runs.append({**reusable[t, s], "dir": reuse})
                else:
                    todo.append((sweep.players, t, s, sweep.steps, settings, sweep.seat_id, tmp))
        run_jobs(sweep_job, todo, sweep.jobs, lambda row: runs.append({**row, "dir": tmp}))
        runs.sort(key=lambda r: (r["tau"], r["seed"]))
        members = [_hanabi_member(Path(r["dir"]) / r["file"], r, sweep.players, sweep.episodes) for r in runs]
    baseline = random_score(sweep.players, sweep.episodes, EVAL_SEED)
    description = (
        f"{recipe.description} Uniformly random legal play scores {baseline:.2f} in self-play on the same "
        f"{sweep.episodes} deals."
    )
    reused = sum(r["dir"] == reuse for r in runs)
    if reused and reuse is not None:
        name = recipe.path.name
        description += (
            f" {reused} of the {len(runs)} agents were not trained by this build but taken from an earlier "
            f"`rqe hanabi sweep` run (params.reuse_dir, same players, steps, seat identity and settings)"
            + _hanabi_sweep_note(Path(reuse), HANABI_PPO.to_json())
            + f"; `rqe zoo build zoo/{name}` without reuse_dir trains them all again from scratch."
        )
    from importlib.metadata import version

    env = dataclasses.replace(
        recipe.env,
        kwargs=config,
        seats=seats,
        version=recipe.env.version or f"open_spiel {version('open_spiel')}, shimmy {version('shimmy')}",
    )
    return BuildResult(members=members, env=env, description=description)


def _hanabi_reusable(
    directory: Path, players: int, steps: int, seat_id: bool, settings: dict
) -> dict[tuple[float, int], dict]:
    """``{(tau, seed): run}`` of the models an ``rqe hanabi sweep`` saved in ``directory`` with these set-up values.

    Read from its ``results.json`` (written after every run): nothing when it is missing, unreadable or
    from another set-up; a run counts only if its model file is there.
    """
    import json

    try:
        report = json.loads((directory / "results.json").read_text(encoding="utf-8"))
        old = report["sweep"]
        same = (old["players"], old["steps"], old["seat_id"], report["settings"]) == (
            players,
            steps,
            seat_id,
            json.loads(json.dumps(settings)),
        )
        runs = {(float(r["tau"]), int(r["seed"])): r for r in report["runs"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not same:
        return {}
    return {k: r for k, r in runs.items() if isinstance(r.get("file"), str) and (directory / r["file"]).is_file()}


def _hanabi_sweep_note(directory: Path, defaults: dict) -> str:
    """The command and machine of the ``rqe hanabi sweep`` in ``directory``, from its ``results.json`` (or empty)."""
    import json

    try:
        report = json.loads((directory / "results.json").read_text(encoding="utf-8"))
        sweep, machine, settings = report["sweep"], report["machine"], report["settings"]
        flags = "".join(
            f" --{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in settings.items()
            if defaults.get(k) != v
        )
        command = (
            f"rqe hanabi sweep --players {sweep['players']} --tau {' '.join(f'{t:g}' for t in sweep['tau'])} "
            f"--seeds {' '.join(str(s) for s in sweep['seeds'])} --steps {sweep['steps']} --jobs {sweep['jobs']}"
            f"{'' if sweep['seat_id'] else ' --no-seat-id'}{flags} --out {sweep['out']}"
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ""
    gpu = f" with an {machine['cuda_device']} (trained on its CPUs)" if machine.get("cuda_device") else ""
    return (
        f" (`{command}`, on a {machine.get('cpu_count')}-core machine{gpu}, Python {machine.get('python')}, "
        f"torch {machine.get('torch')}, SB3 {machine.get('stable_baselines3')})"
    )


def _hanabi_member(path: Path, run: dict, players: int, episodes: int) -> NewMember:
    """A trained Hanabi agent as a member: its training metrics, its self-play and its score with random play."""
    from sb3_contrib import MaskablePPO

    from rqe_wrappers.core.policy import RandomPolicy
    from rqe_wrappers.experiments.hanabi import hanabi_crossplay, hanabi_env, method_name
    from rqe_wrappers.experiments.hanabi.evaluation import EVAL_SEED

    tau, seed = float(run["tau"]), int(run["seed"])
    name = f"ippo-s{seed}" if tau == 0 else f"srpo{tau:g}-s{seed}"
    model = MaskablePPO.load(str(path), device="cpu")
    env = hanabi_env(players)
    seat = env.possible_agents[0]
    random = RandomPolicy(env.observation_space(seat), env.action_space(seat))
    table = hanabi_crossplay({name: model, HANABI_RANDOM: random}, players, episodes=episodes, seed=EVAL_SEED)
    scores = table.matrix()
    me, other = table.agents.index(name), table.agents.index(HANABI_RANDOM)
    keys = ("players", "tau", "seed", "steps", "seconds", "steps_per_s", "train_return")
    metrics = {
        "method": method_name(tau),
        **{k: run[k] for k in keys},
        "self_play_score": float(scores[me, me]),
        "random_partner_score": float(scores[me, other]),
        "eval_episodes": episodes,
        "eval_seed": EVAL_SEED,
    }
    return member_from_sb3(model, name, seed=seed, metrics=metrics)


#: params a meltingpot-cooking recipe may set
_MP_PARAMS = {"layout", "sizes", "jobs", "devices", "eval_episodes", "turn_seconds", "reuse_dir"}


def meltingpot_cooking(recipe: Recipe) -> BuildResult:
    """A background population of Melting Pot's collaborative cooking, as the minimax-Bayes paper builds them.

    :func:`rqe_wrappers.experiments.meltingpot_cooking.train_cooking_populations` for one layout
    (``params.layout``) and one seed (``seeds: [s]``): sub-populations ``params.sizes`` trained by
    population play (``budget.rounds`` rounds of ``budget.steps_per_round`` agent-steps per member),
    each member with its own prosociality and risk aversion (recorded in its metrics), CNN policies
    on ``env.kwargs.frames`` stacked views; metrics: dishes per episode and returns with each partner
    of its sub-population. ``params.reuse_dir``: a directory of ``rqe meltingpot populations`` output
    (``results.json`` and ``<layout>-s<seed>/<member>.zip``); a population trained there with the same
    layout, seed, sizes, rounds and steps is published as it is (no Melting Pot needed), else it is trained.
    """
    import dataclasses
    import json
    import tempfile

    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import PPO

    from rqe_wrappers.experiments.meltingpot_cooking import LAYOUTS, MP_PLAY, train_cooking_populations

    params, _, reuse = _sweep_params(recipe, "meltingpot-cooking", _MP_PARAMS, {})
    layout, seeds = params.get("layout"), list(recipe.seeds)
    if layout not in LAYOUTS or len(seeds) != 1:
        raise ConfigError(
            f"{recipe.path}: needs params.layout in {sorted(LAYOUTS)} and one seed, got {layout!r}, {seeds}"
        )
    try:
        play = dataclasses.replace(
            MP_PLAY,
            sizes=tuple(params.get("sizes", MP_PLAY.sizes)),
            rounds=recipe.budget.get("rounds", MP_PLAY.rounds),
            steps_per_round=recipe.budget.get("steps_per_round", MP_PLAY.steps_per_round),
            seed=seeds[0],
        )
    except (ConfigError, TypeError) as e:
        raise ConfigError(f"{recipe.path}: {e}") from None
    key = f"{layout}-s{seeds[0]}"

    def adopt(directory: Path) -> tuple[dict, list[dict]] | None:
        try:
            report = json.loads((directory / "results.json").read_text(encoding="utf-8"))
            ran = report["play"]
            same = (ran["sizes"], ran["rounds"], ran["steps_per_round"]) == (
                list(play.sizes),
                play.rounds,
                play.steps_per_round,
            )
            return (report, report["populations"][key]) if same and layout in report["layouts"] else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    with tempfile.TemporaryDirectory() as tmp:
        found = adopt(Path(reuse)) if reuse is not None else None
        work = Path(reuse) if found is not None and reuse is not None else Path(tmp)
        if found is None:
            train_cooking_populations(
                work,
                [layout],
                seeds,
                play,
                eval_episodes=params.get("eval_episodes", 2),
                jobs=params.get("jobs", 1),
                devices=params.get("devices", ["cpu"]),
                turn_seconds=params.get("turn_seconds"),
            )
            found = adopt(work)
            assert found is not None
        report, rows = found
        members = []
        for row in rows:
            model = PPO.load(str(work / row["file"]), device="cpu")
            metrics = {k: v for k, v in row.items() if k not in ("name", "file")}
            metrics.update(eval_episodes=report["eval_episodes"], eval_seed=report["eval_seed"])
            members.append(member_from_sb3(model, row["name"], seed=seeds[0], metrics=metrics))
    machine, ran = report["machine"], report["play"]
    command = (
        f"rqe meltingpot populations --layouts {' '.join(report['layouts'])} "
        f"--seeds {' '.join(str(s) for s in report['seeds'])} --sizes {' '.join(str(s) for s in ran['sizes'])} "
        f"--rounds {ran['rounds']} --steps-per-round {ran['steps_per_round']} --turn-seconds {report['turn_seconds']} "
        f"--eval-episodes {report['eval_episodes']} --jobs {report['jobs']} --devices {' '.join(report['devices'])}"
    )
    gpu = f" and {machine['cuda_device']} GPUs" if machine.get("cuda_device") else ""
    note = f" Trained by `{command}` on a {machine.get('cpu_count')}-core machine{gpu}, torch {machine.get('torch')}."
    frames = int(recipe.env.kwargs.get("frames", 1))
    return BuildResult(
        members=members,
        observation_space=gym.spaces.Box(0, 255, (40, 40, 3 * frames), np.uint8),
        action_space=gym.spaces.Discrete(8),
        description=recipe.description + note,
    )
