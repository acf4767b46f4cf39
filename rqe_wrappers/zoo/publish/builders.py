"""Builder functions named by recipes (see :mod:`rqe_wrappers.zoo.publish.recipes` for the registry).

A builder takes a :class:`~rqe_wrappers.zoo.publish.recipes.Recipe` and returns a
:class:`~rqe_wrappers.zoo.publish.recipes.BuildResult`. Keep heavy imports (SB3, env packages) inside the
function, so that listing builders stays cheap.
"""

from __future__ import annotations

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
