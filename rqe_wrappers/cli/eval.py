"""rqe eval: measure agents with partners they never met (docs/evaluation.md).

rqe eval crossplay --env ENV --agents AGENT...     every pairing, seats both ways: table, summary, heatmap
rqe eval population --agent AGENT --population ID  an agent against each member of a held-out population
rqe eval robustness --env ENV --agents AGENT...    each agent's return when its partner deviates within a
                                                   KL budget, as a curve over tau (exact: ipd, coordination)

An AGENT is a scripted policy name (tag/greedy-chaser), a zoo member (tag/runners:runner-0), a whole
population (tag/runners: every member, grouped as one method) or a saved SB3 model (model.zip),
optionally named: NAME=AGENT.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rqe_wrappers.errors import ConfigError, PopulationError


def _env_factory(name: str, rounds: int | None) -> Callable[[], Any]:
    """The env factory for ``--env`` (a picklable ``functools.partial``)."""
    if name == "tag":
        from rqe_wrappers.envs.tag import tag_env

        return tag_env
    if name in ("ipd", "coordination"):
        from rqe_wrappers.envs.ipd import DEFAULT_ROUNDS, ipd_env
        from rqe_wrappers.envs.matrix import coordination_game

        fn: Callable[..., Any] = ipd_env if name == "ipd" else coordination_game
        return functools.partial(fn, rounds=rounds or (DEFAULT_ROUNDS if name == "ipd" else 1))
    if name in ("tictactoe", "connect_four"):
        from pettingzoo.classic import connect_four_v3, tictactoe_v3

        return (tictactoe_v3 if name == "tictactoe" else connect_four_v3).env
    if name == "cooking":
        from rqe_wrappers.envs.cooking import cooking_env

        return functools.partial(cooking_env, "train")
    raise ConfigError(f"--env must be one of {ENVS}, got {name!r}")  # pragma: no cover (argparse checks)


def _batched_factory(name: str) -> Callable[[int], Any]:
    """The batched twin of ``--env`` (``--batched``): a function ``n -> batched env of n copies``."""
    if name == "cooking":
        from rqe_wrappers.envs.cooking import BatchedCooking

        return functools.partial(BatchedCooking, layout="train")
    if name == "tag":
        from rqe_wrappers.envs.tag_batched import BatchedTag

        return BatchedTag
    raise ConfigError(f"--batched: the trained audit has a batched twin for cooking and tag, not {name!r}")


ENVS = ("tag", "ipd", "coordination", "tictactoe", "connect_four", "cooking")


def _split_name(item: str) -> tuple[str | None, str]:
    name, sep, agent = item.partition("=")
    return (name, agent) if sep and name and "/" not in name else (None, item)


def _expand_agents(items: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """``--agents`` items as ``({name: agent}, {name: method})``; a population expands to its members."""
    from rqe_wrappers.core.registry import scripted_names

    agents: dict[str, Any] = {}
    methods: dict[str, str] = {}

    def add(name: str, agent: Any, method: str) -> None:
        if name in agents:
            raise ConfigError(f"--agents: the name {name!r} is given twice; name one of them NAME=AGENT")
        agents[name], methods[name] = agent, method

    for item in items:
        name, spec = _split_name(item)
        if spec in scripted_names():
            add(name or spec, spec, "scripted")
        elif spec.endswith(".zip"):
            add(name or Path(spec).stem, spec, "sb3")
        elif ":" in spec:
            add(name or spec.rpartition(":")[2], spec, spec.rpartition(":")[0])
        else:
            from rqe_wrappers.zoo import load_population

            try:
                population = load_population(spec)
            except PopulationError as e:
                raise ConfigError(
                    f"--agents: unknown agent {spec!r}: not a scripted policy ({', '.join(scripted_names())}), "
                    f"a zoo member 'POPULATION:MEMBER', a population ({e}) or an SB3 '*.zip'"
                ) from None
            for member in population:
                add(f"{name}/{member}" if name else member, population[member], name or str(population.ref))
    return agents, methods


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not (sep and key and value):
            raise ConfigError(f"{what} takes KEY=VALUE items, got {item!r}")
        out[key] = value
    return out


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _crossplay(args: argparse.Namespace) -> int:
    from rqe_wrappers.eval import crossplay, summarize_crossplay

    agents, methods = _expand_agents(args.agents)
    methods.update(_pairs(args.method, "--method"))
    result = crossplay(
        agents,
        _env_factory(args.env, args.rounds),
        methods=methods,
        seats=args.seats,
        background=_pairs(args.background, "--background"),
        episodes=args.episodes,
        seed=args.seed,
        n_workers=args.workers,
        cost_key=args.cost_key,
        progress=not args.quiet,
    )
    summary = summarize_crossplay(result, seed=args.seed)
    out = Path(args.out)
    result.to_csv(out / "crossplay.csv")
    result.to_json(out / "crossplay.json")
    _write_json(out / "summary.json", summary)
    if not args.no_plot:
        from rqe_wrappers.plots import plot_crossplay

        plot_crossplay(
            result.matrix(), result.agents, result.methods, out / "crossplay", title=f"cross-play: {args.env}"
        )
    sp, xp = summary["self_play"], summary["cross_play"]
    print(
        f"self-play mean {sp['mean']:.4g}, IQM {sp['iqm']:.4g} (95% CI {sp['iqm_ci'][0]:.4g} to {sp['iqm_ci'][1]:.4g})"
    )
    if xp:
        w = summary["worst_pairing"]
        print(
            f"cross-play mean {xp['mean']:.4g} (std over pairings {xp['std']:.4g}), IQM {xp['iqm']:.4g} "
            f"(95% CI {xp['iqm_ci'][0]:.4g} to {xp['iqm_ci'][1]:.4g}); worst pairing {w['agent']} with "
            f"{w['partner']}: {w['value']:.4g}"
        )
    print(f"wrote {out}/crossplay.csv, crossplay.json, summary.json" + ("" if args.no_plot else ", crossplay.png/svg"))
    return 0


def _population(args: argparse.Namespace) -> int:
    from rqe_wrappers.eval import evaluate_population

    name, spec = _split_name(args.agent)
    result = evaluate_population(
        spec,
        args.population,
        None if args.env is None else _env_factory(args.env, args.rounds),
        scenarios=args.scenarios,
        member_seats=args.member_seats,
        episodes=args.episodes,
        seed=args.seed,
        n_workers=args.workers,
        cost_key=args.cost_key,
        progress=not args.quiet,
        name=name or spec,
    )
    out = Path(args.out)
    result.to_json(out / "population.json")
    result.to_csv(out / "population.csv")
    if not args.no_plot:
        from rqe_wrappers.plots import plot_population

        rows = result.scenarios
        plot_population(
            {r["scenario"]: r["utility"] for r in rows},
            out / "population",
            errors={r["scenario"]: r["std"] for r in rows},
            best_responses={r["scenario"]: r["best_response"] for r in rows},
            title=f"{result.agent} against {result.population}",
        )
    s = result.summary
    print(
        f"{result.agent} against {result.population}: mean utility {s['mean']:.4g} (focal per-capita return), "
        f"worst case {s['worst_case']:.4g} ({s['worst_scenario']})"
        + ("" if s["worst_case_regret"] is None else f", worst-case regret {s['worst_case_regret']:.4g}")
    )
    print(f"wrote {out}/population.json, population.csv" + ("" if args.no_plot else ", population.png/svg"))
    return 0


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.split(","))
    except ValueError:
        raise ConfigError(f"--taus takes comma-separated numbers (inf allowed), got {text!r}") from None


def _robustness(args: argparse.Namespace) -> int:
    from rqe_wrappers.eval.robustness import DEFAULT_TAUS, TrainedBudget, robustness_audit

    agents, methods = _expand_agents(args.agents)
    methods.update(_pairs(args.method, "--method"))
    partner: Any = None
    if args.partner is not None:
        partners, _ = _expand_agents([args.partner])
        if len(partners) != 1:
            raise ConfigError(f"--partner names one agent, got {args.partner!r} ({len(partners)} members)")
        partner = next(iter(partners.values()))
    seats = args.seats or (None, None)
    report = robustness_audit(
        _env_factory(args.env, args.rounds),
        agents,
        partner,
        methods=methods,
        taus=DEFAULT_TAUS if args.taus is None else _floats(args.taus),
        seat=seats[0],
        partner_seat=seats[1],
        others=_pairs(args.background, "--background") or None,
        solver=args.solver,
        smoothing=args.smoothing,
        budget=TrainedBudget(
            timesteps=args.timesteps,
            seeds=tuple(args.seeds),
            eval_episodes=args.episodes,
            **{k: v for k in ("n_copies", "n_steps", "batch_size", "learning_rate") if (v := getattr(args, k))},
        ),
        batched=_batched_factory(args.env) if args.batched else None,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "robustness.json").write_text(report.to_json() + "\n", encoding="utf-8")
    rows = report.rows()
    if rows:
        import csv

        with open(out / "robustness.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if not args.no_plot:
        from rqe_wrappers.plots import plot_robustness

        plot_robustness(report.curves, out / "robustness", title=f"robustness audit: {args.env}")
    for curve in report.curves:
        print(
            f"{curve.agent}: return {curve.returns[0]:.4g} at tau {curve.taus[0]:g} .. {curve.returns[-1]:.4g} at "
            f"tau {curve.taus[-1]:g}; summary (mean over log tau) {curve.summary:.4g}"
        )
    print(f"wrote {out}/robustness.json, robustness.csv" + ("" if args.no_plot else ", robustness.png/svg"))
    return 0


_DESCRIBED: dict[str, Any] = {"description": __doc__, "formatter_class": argparse.RawDescriptionHelpFormatter}


def _common(p: argparse.ArgumentParser, *, env_required: bool) -> None:
    p.add_argument(
        "--env",
        choices=ENVS,
        required=env_required,
        help="the env" + ("" if env_required else " (default: the population's)"),
    )
    p.add_argument("--rounds", type=int, default=None, help="rounds of the IPD (default 3) or coordination game (1)")
    p.add_argument("--episodes", type=int, default=32, help="episodes per seating (default: 32)")
    p.add_argument("--seed", type=int, default=0, help="episode e is reset with seed + e (default: 0)")
    p.add_argument("--workers", type=int, default=0, help="worker processes (default: 0, play here)")
    p.add_argument("--cost-key", default="cost", help="infos key summed as a seat's private cost (default: cost)")
    p.add_argument("--out", default="eval-out", help="output directory (default: eval-out)")
    p.add_argument("--no-plot", action="store_true", help="write no figure")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_crossplay(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("crossplay", help="every pairing of agents, seats both ways", **_DESCRIBED)
    p.add_argument("--agents", nargs="+", required=True, metavar="AGENT", help="[NAME=]AGENT, see above")
    p.add_argument("--method", nargs="*", metavar="NAME=METHOD", help="group agents (default: by source)")
    p.add_argument("--seats", nargs=2, metavar=("AGENT_SEAT", "PARTNER_SEAT"), help="default: the env's first two")
    p.add_argument("--background", nargs="*", metavar="SEAT=AGENT", help="who plays every other seat")
    _common(p, env_required=True)
    p.set_defaults(func=_crossplay, _prog=p.prog)


def _add_population(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("population", help="an agent against a held-out population", **_DESCRIBED)
    p.add_argument("--agent", required=True, metavar="AGENT", help="[NAME=]AGENT, see above")
    p.add_argument("--population", required=True, metavar="ID[@VERSION]", help="e.g. ipd/test, tag/runners")
    p.add_argument("--scenarios", nargs="*", metavar="ID", help="scenario ids (default: each member alone)")
    p.add_argument("--member-seats", nargs="*", metavar="SEAT", help="default: the population's seats")
    _common(p, env_required=False)
    p.set_defaults(func=_population, _prog=p.prog)


def _add_robustness(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("robustness", help="return when the partner deviates within a KL budget", **_DESCRIBED)
    p.add_argument("--env", choices=ENVS, required=True, help="the env (ipd and coordination are solved exactly)")
    p.add_argument("--agents", nargs="+", required=True, metavar="AGENT", help="[NAME=]AGENT, see above")
    p.add_argument("--method", nargs="*", metavar="NAME=METHOD", help="group agents (default: by source)")
    p.add_argument("--partner", metavar="AGENT", help="the reference partner (default: each agent with itself)")
    p.add_argument("--seats", nargs=2, metavar=("AGENT_SEAT", "PARTNER_SEAT"), help="default: the env's first two")
    p.add_argument("--background", nargs="*", metavar="SEAT=AGENT", help="who plays every other seat")
    p.add_argument("--taus", help="comma-separated grid, e.g. 0,0.1,1,10,inf (default: 0 and 10^-2..10^2)")
    p.add_argument("--solver", choices=("auto", "exact", "trained"), default="auto", help="default: auto")
    p.add_argument("--smoothing", type=float, default=0.0, help="mix the reference with this much uniform")
    p.add_argument("--timesteps", type=int, default=20_000, help="trained adversary: PPO steps per tau and seed")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="trained adversary: seeds (default: 0)")
    p.add_argument("--episodes", type=int, default=200, help="trained adversary: evaluation episodes")
    p.add_argument("--batched", action="store_true", help="trained adversary on the env's batched twin (cooking, tag)")
    p.add_argument("--n-copies", type=int, help="trained adversary: env copies (default 8)")
    p.add_argument("--n-steps", type=int, help="trained adversary: PPO n_steps (default 32)")
    p.add_argument("--batch-size", type=int, help="trained adversary: PPO batch size (default 64)")
    p.add_argument("--learning-rate", type=float, help="trained adversary: PPO start learning rate (default 3e-3)")
    p.add_argument("--rounds", type=int, default=None, help="rounds of the IPD (default 3) or coordination game (1)")
    p.add_argument("--out", default="eval-out", help="output directory (default: eval-out)")
    p.add_argument("--no-plot", action="store_true", help="write no figure")
    p.set_defaults(func=_robustness, _prog=p.prog)


#: One function per ``rqe eval`` subcommand: adding a subcommand is adding its function here.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_crossplay, _add_population, _add_robustness]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``rqe eval`` and its subcommands."""
    parser = subparsers.add_parser(
        "eval",
        help="cross-play, held-out populations and the robustness audit of trained agents (docs/evaluation.md)",
        **_DESCRIBED,
    )
    sub = parser.add_subparsers(dest="eval_command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
