"""Command line: train the composition for every (tau, seed), then score each learner on held-out partners.

    python -m rqe_wrappers.composed.run --env cooking --population cooking/agents --members ippo-s0 srpo0.1-s0 \\
        --heldout cooking/agents --heldout-members ippo-s4 srpo0.1-s4 --baselines ippo-s0 srpo0.1-s0 --batched \\
        --taus 0 1 --seeds 0 1 2 --phases 16 --learner-steps 131072 --shadow-steps 131072 --jobs 6 --out runs/composed

``--taus 0`` is minimax-Bayes alone (same code path, no shadow). Every job runs in its own process
(forkserver, else spawn; one torch thread) and writes ``<out>/jobs/<tag>.json`` (history, scores)
and ``<out>/models/<tag>-{learner,shadow}.zip``; ``<out>/results.json`` collects them. On the IPD
(``--env ipd``, default population: the nine partners smoothed 0.1, held out: ``ipd/test``) the
scores are exact: the composed objective at 0 and at the job's tau against its exact optimum
(:mod:`rqe_wrappers.composed.objective`), and the utility against every held-out partner. Elsewhere
the held-out score is :func:`rqe_wrappers.eval.population.evaluate_population` over ``--heldout-members``
(with ``--batched`` the learner trained in the first seat and is scored there), and ``--baselines``
(members of ``--population``, e.g. IPPO and SRPO agents trained alone) are scored the same way, so the
methods compare on one table. Docs: docs/composed.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.aht.population import population_policies
from rqe_wrappers.composed.objective import composed_optimum, composed_value, risk_averse_best_response, smoothed_table
from rqe_wrappers.composed.training import train_composed
from rqe_wrappers.core.policy import FunctionPolicy, Policy
from rqe_wrappers.envs.cooking import cooking_env
from rqe_wrappers.envs.ipd import ipd_env, observation_space
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.partners.ipd import IPDTablePolicy, best_response_value, expected_return, training_partners

OBJECTIVE = {"maximin-utility": "utility", "minimax-regret": "regret", "uniform": "utility"}


def env_factory(args: argparse.Namespace) -> Callable[[], Any]:
    """The env of ``--env``: ``ipd_env(rounds)`` or ``cooking_env(layout, max_steps)``."""
    if args.env == "ipd":
        return functools.partial(ipd_env, args.rounds)
    return functools.partial(cooking_env, args.layout, args.max_steps)


def ipd_population(rounds: int, smoothing: float) -> dict[str, IPDTablePolicy]:
    """The minimax-Bayes paper's nine IPD partners, smoothed (deterministic ones leave a shadow no room)."""
    return {n.split("/")[1]: smoothed_table(p, smoothing, rounds) for n, p in training_partners(rounds).items()}


def _members(reference: str, names: Sequence[str] | None, env: Any, seat: str) -> dict[str, Policy]:
    """Members ``names`` (default: all) of the zoo population ``reference`` as policies of ``seat``.

    Through :func:`~rqe_wrappers.eval.agents.as_policy`, so members trained with seat identity get it.
    """
    from rqe_wrappers.eval.agents import as_policy
    from rqe_wrappers.zoo.client import load_population

    index = list(env.possible_agents).index(seat)
    obs, act = env.observation_space(seat), env.action_space(seat)
    chosen = _named(load_population(reference), names, reference)
    return {n: as_policy(m, obs, act, seat_index=index, who=n) for n, m in chosen.items()}


def _named(population: Any, names: Sequence[str] | None, reference: str) -> dict[str, Any]:
    """The members ``names`` (default: all) of ``population``; every unknown name in one :class:`ConfigError`."""
    unknown = sorted(set(names or ()) - set(population))
    if unknown:
        raise ConfigError(f"{reference} has no members {unknown}; its members are {sorted(population)}")
    return {n: population[n] for n in names or list(population)}


def _population(args: argparse.Namespace, env: Any) -> Any:
    if args.population is None:
        if args.env != "ipd":
            raise ConfigError("--population <zoo reference> is required for --env cooking")
        return ipd_population(args.rounds, args.smoothing)
    return _members(args.population, args.members, env, env.possible_agents[1])


def batched_factory(args: argparse.Namespace) -> Callable[[int], Any] | None:
    """``--batched``: the batched twin of ``--env`` (cooking only), else ``None``."""
    if not args.batched:
        return None
    if args.env != "cooking":
        raise ConfigError("--batched trains on cooking's batched twin; the IPD runs exactly as it is")
    from rqe_wrappers.envs.cooking import BatchedCooking

    return functools.partial(BatchedCooking, layout=args.layout, max_steps=args.max_steps)


def heldout_scores(agent: Any, args: argparse.Namespace, env_fn: Callable[[], Any], seed: int) -> dict[str, Any]:
    """``agent`` against ``--heldout-members`` of ``--heldout`` (:func:`evaluate_population`): its summary."""
    from rqe_wrappers.eval.population import evaluate_population
    from rqe_wrappers.zoo.client import load_population

    env = env_fn()
    population = load_population(args.heldout)
    names = args.heldout_members or list(population)
    seats = [env.possible_agents[1]] if args.batched else None
    scored = evaluate_population(
        agent, {n: population[n] for n in names}, env_fn=env_fn, member_seats=seats, episodes=args.episodes, seed=seed
    )
    return {"summary": scored.summary, "scenarios": scored.scenarios}


def _table(model: Any, rounds: int) -> IPDTablePolicy:
    from rqe_wrappers.sb3.sb3_policy import SB3Policy

    policy = SB3Policy.from_model(model)
    fn = FunctionPolicy(observation_space(rounds), gym.spaces.Discrete(2), lambda obs: policy.action_probs(obs))
    return IPDTablePolicy.from_policy(fn, rounds, name="learner")


def _ipd_scores(table: IPDTablePolicy, members: dict[str, Policy], args: argparse.Namespace, tau: float) -> dict:
    """Exact: the objective at 0 and tau against its optimum, and the utility against each held-out partner."""
    objective, r = OBJECTIVE[args.prior], args.rounds
    out: dict[str, Any] = {"table": table.table.tolist()}
    for t in sorted({0.0, tau}):
        out[f"objective@{t:g}"] = composed_value(table, members, t, r, objective=objective)
        out[f"optimum@{t:g}"] = composed_optimum(members, t, r, objective=objective).value
    from rqe_wrappers.zoo.client import load_population

    held = load_population(args.heldout or "ipd/test").policies()
    utils = np.array([expected_return(table, m, r)[0] for m in held.values()])
    regrets = np.array([best_response_value(m, r) for m in held.values()]) - utils
    out["heldout"] = {
        "mean": float(utils.mean()),
        "worst_case": float(utils.min()),
        "mean_regret": float(regrets.mean()),
        "worst_case_regret": float(regrets.max()),
    }
    return out


def run_job(args: argparse.Namespace, tau: float, seed: int) -> dict[str, Any]:
    """Train one learner (top level, so spawn/forkserver workers can run it) and score it."""
    tag = f"tau{tau:g}-seed{seed}"
    out = Path(args.out)
    env_fn = env_factory(args)
    population = population_policies(_population(args, env_fn()), env_fn())
    best = None
    if args.prior == "minimax-regret":
        if args.env != "ipd":
            raise ConfigError("--prior minimax-regret needs best responses; they are exact on --env ipd only")
        best = [risk_averse_best_response(m, tau, args.rounds)[0] for m in population.values()]
    t0 = time.perf_counter()
    result = train_composed(
        env_fn,
        population,
        tau,
        prior=args.prior,
        best_responses=best,
        phases=args.phases,
        learner_steps=args.learner_steps,
        shadow_steps=args.shadow_steps,
        n_copies=args.n_copies,
        seed=seed,
        nature_lr=args.nature_lr,
        learner_kwargs={"gamma": args.gamma, **_ppo(args)},
        shadow_kwargs={"gamma": args.gamma, **_ppo(args)},
        device=args.device,
        progress=lambda row: print(f"[{tag}] phase {row['phase']} steps {row['steps']}", flush=True),
        batched=batched_factory(args),
    )
    (out / "models").mkdir(parents=True, exist_ok=True)
    result.learner.save(str(out / "models" / f"{tag}-learner.zip"))
    if result.shadow is not None:
        result.shadow.save(str(out / "models" / f"{tag}-shadow.zip"))
    row: dict[str, Any] = {"tau": tau, "seed": seed, "seconds": time.perf_counter() - t0, "beta": result.beta}
    row["history"] = result.history
    if args.env == "ipd":
        row["scores"] = _ipd_scores(_table(result.learner, args.rounds), population, args, tau)
    elif args.heldout is not None:
        row["scores"] = {"heldout": heldout_scores(result.learner, args, env_fn, seed)}
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    (out / "jobs" / f"{tag}.json").write_text(json.dumps(row, indent=1, default=float))
    print(f"[{tag}] done in {row['seconds']:.0f} s", flush=True)
    return row


def _ppo(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k in ("n_steps", "batch_size") if (v := getattr(args, k)) is not None}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rqe_wrappers.composed.run", description=__doc__.split("\n")[0])
    p.add_argument("--env", choices=("ipd", "cooking"), default="ipd")
    p.add_argument("--population", help="zoo reference of the training population (default on ipd: the nine)")
    p.add_argument("--heldout", help="zoo reference of the held-out population (default on ipd: ipd/test)")
    p.add_argument("--members", nargs="+", help="train against these members of --population (default: all)")
    p.add_argument("--heldout-members", nargs="+", help="score against these members of --heldout (default: all)")
    p.add_argument("--baselines", nargs="+", default=[], help="members of --population scored on --heldout too")
    p.add_argument("--batched", action="store_true", help="cooking: train on the batched twin (learner in seat 0)")
    p.add_argument("--n-steps", type=int, help="both models' PPO n_steps (default 64)")
    p.add_argument("--batch-size", type=int, help="both models' PPO batch size (default 256)")
    p.add_argument("--taus", type=float, nargs="+", default=[0.0, 1.0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--prior", choices=tuple(OBJECTIVE), default="maximin-utility")
    p.add_argument("--phases", type=int, default=10)
    p.add_argument("--learner-steps", type=int, default=8192)
    p.add_argument("--shadow-steps", type=int, default=8192)
    p.add_argument("--n-copies", type=int, default=16)
    p.add_argument("--nature-lr", type=float, default=0.05)
    p.add_argument("--gamma", type=float, default=1.0, help="both models' discount (the objective is undiscounted)")
    p.add_argument("--rounds", type=int, default=3, help="IPD rounds")
    p.add_argument("--smoothing", type=float, default=0.1, help="IPD: weight of uniform in the nine partners")
    p.add_argument("--layout", default="train", help="cooking layout")
    p.add_argument("--max-steps", type=int, default=100, help="cooking episode length")
    p.add_argument("--episodes", type=int, default=32, help="held-out episodes per scenario (not ipd)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, one process each")
    p.add_argument("--out", required=True)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(tau, seed) for tau in args.taus for seed in args.seeds]
    print(f"{len(jobs)} jobs on {args.jobs} processes -> {out}", flush=True)
    t0 = time.perf_counter()
    if args.jobs > 1:
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context(method)) as pool:
            rows = list(pool.map(run_job, [args] * len(jobs), *zip(*jobs, strict=True)))
    else:
        rows = [run_job(args, tau, seed) for tau, seed in jobs]
    summary = {"args": vars(args), "seconds": time.perf_counter() - t0, "jobs": rows}
    if args.baselines and args.heldout is not None and args.env != "ipd":
        from rqe_wrappers.zoo.client import load_population

        baselines = _named(load_population(args.population), args.baselines, args.population)
        env_fn = env_factory(args)
        summary["baselines"] = {n: heldout_scores(m, args, env_fn, 0) for n, m in baselines.items()}
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))
    print(f"all done in {summary['seconds']:.0f} s: {out / 'results.json'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
