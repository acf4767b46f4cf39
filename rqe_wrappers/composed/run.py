"""Command line: train the composition for every (tau, seed), then score each learner on held-out partners.

    python -m rqe_wrappers.composed.run --env cooking --population <zoo ref> --heldout <zoo ref> \\
        --taus 0 1 10 --seeds 0 1 2 --phases 20 --learner-steps 50000 --shadow-steps 50000 --jobs 16 --out runs/composed

``--taus 0`` is minimax-Bayes alone (same code path, no shadow). Every job runs in its own process
(forkserver, else spawn; one torch thread) and writes ``<out>/jobs/<tag>.json`` (history, scores)
and ``<out>/models/<tag>-{learner,shadow}.zip``; ``<out>/results.json`` collects them. On the IPD
(``--env ipd``, default population: the nine partners smoothed 0.1, held out: ``ipd/test``) the
scores are exact: the composed objective at 0 and at the job's tau against its exact optimum
(:mod:`rqe_wrappers.composed.objective`), and the utility against every held-out partner. Elsewhere
the held-out score is :func:`rqe_wrappers.eval.population.evaluate_population`. Docs: docs/composed.md.
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


def _population(args: argparse.Namespace) -> Any:
    if args.population is None:
        if args.env != "ipd":
            raise ConfigError("--population <zoo reference> is required for --env cooking")
        return ipd_population(args.rounds, args.smoothing)
    from rqe_wrappers.zoo.client import load_population

    return load_population(args.population)


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
    population = population_policies(_population(args), env_fn())
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
        learner_kwargs={"gamma": args.gamma},
        shadow_kwargs={"gamma": args.gamma},
        device=args.device,
        progress=lambda row: print(f"[{tag}] phase {row['phase']} steps {row['steps']}", flush=True),
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
        from rqe_wrappers.eval.population import evaluate_population

        scored = evaluate_population(result.learner, args.heldout, env_fn=env_fn, episodes=args.episodes, seed=seed)
        row["scores"] = {"heldout": scored.summary}
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    (out / "jobs" / f"{tag}.json").write_text(json.dumps(row, indent=1, default=float))
    print(f"[{tag}] done in {row['seconds']:.0f} s", flush=True)
    return row


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rqe_wrappers.composed.run", description=__doc__.split("\n")[0])
    p.add_argument("--env", choices=("ipd", "cooking"), default="ipd")
    p.add_argument("--population", help="zoo reference of the training population (default on ipd: the nine)")
    p.add_argument("--heldout", help="zoo reference of the held-out population (default on ipd: ipd/test)")
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
    (out / "results.json").write_text(json.dumps(summary, indent=1, default=float))
    print(f"all done in {summary['seconds']:.0f} s: {out / 'results.json'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
