"""``rqe ipd``'s run: every (prior, seed) trained and evaluated, then results.json, table.md and figures."""

from __future__ import annotations

import functools
import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rqe_wrappers._compat import renamed_argument
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.common import check_count, check_seeds, machine_info, run_jobs, write_json
from rqe_wrappers.experiments.ipd.evaluation import reference_rows, train_best_responses, train_scenarios
from rqe_wrappers.experiments.ipd.report import format_table, plot_betas, plot_widths, summarize
from rqe_wrappers.experiments.ipd.settings import (
    DEFAULT_SETTINGS,
    FORMAT,
    METRICS,
    PAPER_TABLE2,
    PRIORS,
    TABLE_WIDTH,
    TEST_SEED,
    IPDSettings,
    prior_abbrev,
)
from rqe_wrappers.experiments.ipd.training import _job
from rqe_wrappers.partners.ipd import PERTURBATION_WIDTHS, PERTURBED_COUNT


def run_experiment(
    priors: Sequence[str] = tuple(PRIORS),
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 200_000,
    out: str | Path = "runs/ipd",
    *,
    settings: IPDSettings = DEFAULT_SETTINGS,
    jobs: int = 1,
    widths: Sequence[float] = PERTURBATION_WIDTHS,
    test_count: int = PERTURBED_COUNT,
    test_seed: int = TEST_SEED,
    table_width: float = TABLE_WIDTH,
    plots: bool = True,
    echo: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Train every (prior, seed), evaluate exactly, write ``results.json``, ``table.md`` and plots.

    ``jobs`` processes run the (prior, seed) runs (each single-threaded); ``jobs = 1`` runs them
    in this process. Progress and the table go to ``echo`` (default: print, flushed; pass
    ``lambda s: None`` for silence). Returns the results dict (the content of ``results.json``).
    ``workers`` is the deprecated name of ``jobs``.
    """
    jobs = renamed_argument("workers", workers, "jobs", jobs, default=1)
    if echo is None:
        echo = functools.partial(print, flush=True)
    priors = [prior_abbrev(p) for p in priors]
    if len(set(priors)) != len(priors):
        raise ConfigError(f"priors listed twice: {priors}")
    seeds = check_seeds(seeds)
    jobs = check_count(jobs, "jobs")
    steps = check_count(int(steps), "steps")
    widths = sorted({float(w) for w in widths} | {float(table_width)})
    if plots:
        if importlib.util.find_spec("matplotlib") is None:
            raise ConfigError(
                "the plots need matplotlib: pip install 'rqe-wrappers[plot]', "
                "or turn them off (plots=False, --no-plots)"
            )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results: dict[str, Any] = {
        "format": FORMAT,
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else None,
        "priors": {p: PRIORS[p] for p in priors},
        "seeds": seeds,
        "steps": steps,
        "settings": settings.to_json(),
        "evaluation": {
            "policy": "stochastic (softmax probabilities tabulated over all histories); "
            "'greedy' holds the argmax policy",
            "train_scenarios": list(train_scenarios(settings.rounds)),
            "train_best_responses": train_best_responses(settings.rounds),
            "test": {
                "seed": int(test_seed),
                "count": int(test_count),
                "widths": widths,
                "table_width": float(table_width),
                "stream": "rqe_wrappers.core.seeding.stream(seed, f'ipd/test/w={w:g}')",
                "scenarios": "count perturbed partners + self-play (c2)",
            },
        },
        "paper_table2": {
            k: dict(zip([f"{part}/{m}" for part in ("train", "test") for m in METRICS], v, strict=True))
            for k, v in PAPER_TABLE2.items()
        },
        "machine": machine_info(),
        "jobs": jobs,
        "runs": {p: {} for p in priors},
    }
    results["reference"] = reference_rows(settings.rounds, widths, test_count, test_seed)
    # Slowest first (self-play and fictitious play run an MLP snapshot per env step, ~1.5x slower),
    # so that with more runs than jobs the fast ones fill the gaps at the end.
    slow_first = sorted(priors, key=lambda p: (p not in ("SP", "FP"), list(PRIORS).index(p)))

    def done(r: dict) -> None:
        results["runs"][r["abbrev"]][str(r["seed"])] = r
        write_json(out / "results.json", results)
        t = r["train"]
        echo(
            f"[{time.perf_counter() - t0:7.1f}s] {r['abbrev']:>3} seed {r['seed']}: {r['steps']} steps, "
            f"{r['steps_per_s']:.0f} steps/s; train mean {t['mean_utility']:.2f} worst {t['worst_utility']:.2f} "
            f"regret {t['worst_regret']:.2f}"
        )

    args = [
        (PRIORS[p], s, steps, settings.to_json(), str(out), widths, int(test_count), int(test_seed), float(table_width))
        for p in slow_first
        for s in seeds
    ]
    run_jobs(_job, args, jobs, done)
    for p in priors:  # seeds in order, whatever order the runs finished in
        results["runs"][p] = dict(sorted(results["runs"][p].items(), key=lambda kv: int(kv[0])))
    results["summary"] = summarize(results["runs"])
    results["wall_seconds"] = time.perf_counter() - t0
    rollout = settings.n_copies * settings.n_steps
    header = (
        f"IPD ({settings.rounds} rounds), stock SB3 PPO, {steps:,} steps per learner "
        f"({-(-steps // rollout) * rollout:,} in whole rollouts of {rollout}), "
        f"seeds {seeds}, test seed {test_seed}, {test_count} test partners per width"
    )
    table = format_table(results["summary"], results["reference"], table_width, header, test_count)
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    if plots:
        results["plots"] = [p.name for p in plot_betas(out, results["runs"])]
        wp = plot_widths(out, results["summary"], results["reference"])
        if wp is not None:
            results["plots"].append(wp.name)
    write_json(out / "results.json", results)
    echo(table)
    echo(f"wrote {out / 'results.json'}, {out / 'table.md'} ({results['wall_seconds']:.0f} s)")
    return results
