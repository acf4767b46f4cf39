"""The minimax-Bayes paper's iterated prisoner's dilemma (section 8.1, Table 2) with stock SB3 PPO.

One PPO learner per (prior, seed) is trained through :func:`~rqe_wrappers.aht.wrapper.aht_wrap`
and :class:`~rqe_wrappers.sb3.AHTCallback` with one of the paper's five ways of choosing partners:

====  ===================  ===================================================================
MU    ``maximin-utility``  nature descends on utility over the 9 partners + self-play
MR    ``minimax-regret``   nature ascends on regret, with the *exact* best response per scenario
                           (:func:`~rqe_wrappers.partners.ipd.best_response_value`; ``4 * rounds``
                           for self-play, :func:`~rqe_wrappers.partners.ipd.self_play_best_value`)
PBR   ``uniform``          uniform over the same 10 scenarios (population best response)
SP    ``self-play``        only the self-play scenario
FP    ``fictitious-play``  uniform over a reservoir of the learner's past snapshots
====  ===================  ===================================================================

Evaluation is exact (no sampling): the trained policy is tabulated over the 21 histories of the
3-round game (its softmax probabilities, i.e. the *stochastic* policy the paper learns; the greedy
policy is reported too), then :func:`~rqe_wrappers.partners.ipd.expected_return` gives its utility
against every training partner and in self-play (the mean of both seats' returns, the
focal-per-capita utility) and against every partner of the eps-perturbed test sets
(:func:`test_partners`: 512 per width ``w``, built from :data:`TEST_SEED`). Regret = exact best
response value - utility. As in the paper's Table 2 every set of scenarios also holds the
self-play scenario: train = 9 partners + self-play (10 scenarios), test = 512 perturbed partners
+ self-play (513).

Command line: ``rqe ipd --priors MU MR PBR SP FP --seeds 0 1 2 --steps 200000 --workers 15
--out runs/ipd`` (see ``docs/ipd-reproduction.md``). SB3 and torch are imported only inside the
functions that train.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import multiprocessing as mp
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.envs.ipd import DEFAULT_ROUNDS, check_rounds, observation_space
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.settings import PPOSettings, _check_int
from rqe_wrappers.partners.ipd import (
    PERTURBATION_WIDTHS,
    PERTURBED_COUNT,
    IPDTablePolicy,
    best_response_value,
    expected_return,
    perturbed_partners,
    self_play_best_value,
    training_partners,
)
from rqe_wrappers.core.policy import FunctionPolicy, Policy
from rqe_wrappers.core.registry import make_scripted
from rqe_wrappers.core.seeding import stream

FORMAT = "rqe_wrappers.experiments.ipd/1"

#: Short names (the paper's) -> aht_wrap priors, in the paper's table order.
PRIORS = {
    "MU": "maximin-utility",
    "MR": "minimax-regret",
    "PBR": "uniform",
    "FP": "fictitious-play",
    "SP": "self-play",
}
_ABBREV = {v: k for k, v in PRIORS.items()}

#: The test sets are drawn from ``stream(TEST_SEED, f"ipd/test/w={w:g}")``: one fixed, documented
#: seed shared by every run, so all learners meet the same test partners.
TEST_SEED = 812_024
#: The width of the test set in the side-by-side table. The paper's text lost its value of eps;
#: its "Random" row (7.47 / 2.18 / 5.20 on the test set) fits w = 0.5 (see docs/ipd-reproduction.md).
TABLE_WIDTH = 0.5

METRICS = ("mean_utility", "worst_utility", "worst_regret")
#: The paper's Table 2: (train mean, worst-case utility, worst-case regret, test mean, worst, regret).
PAPER_TABLE2: dict[str, tuple[float, ...]] = {
    "MU": (7.69, 3.00, 9.00, 8.34, 3.00, 9.00),
    "MR": (8.23, 2.26, 3.79, 7.96, 2.78, 4.35),
    "PBR": (8.54, 2.00, 4.97, 8.07, 2.48, 5.63),
    "FP": (7.06, 0.14, 10.56, 6.33, 0.56, 9.96),
    "SP": (7.25, 0.47, 10.19, 6.49, 0.86, 9.65),
    "Random": (7.40, 1.50, 5.50, 7.47, 2.18, 5.20),
}


# ---- settings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IPDSettings(PPOSettings):
    """Everything that shapes one training run besides (prior, seed, steps).

    PPO: ``n_copies`` in-process env copies (one SB3 slot each), ``n_steps`` per copy per rollout,
    so one rollout (and one nature update) is ``n_copies * n_steps`` steps = ``n_copies * n_steps /
    rounds`` episodes. ``gamma = 1``: the utility is the undiscounted 3-round return.
    Nature: ``nature_lr`` in units of 1/return (the paper's IPD code: 0.01 on returns up to 15),
    projected step, ``nature_eps`` uniform mixing; ``utility_ema`` is the callback's per-episode
    weight of the utility estimates.
    """

    rounds: int = DEFAULT_ROUNDS
    n_copies: int = 16
    n_steps: int = 64
    batch_size: int = 256
    n_epochs: int = 4
    learning_rate: float = 3e-3
    ent_coef: float = 0.01
    gamma: float = 1.0
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    net_arch: tuple[int, ...] = (64, 64)
    nature_lr: float = 0.01
    nature_eps: float = 0.05
    nature_step: str = "projected"
    utility_ema: float = 0.1
    fp_capacity: int = 16

    def __post_init__(self):
        super().__post_init__()
        check_rounds(self.rounds)
        _check_int(self, "fp_capacity", 1)
        if not self.nature_lr > 0:
            raise ConfigError(f"IPDSettings.nature_lr must be > 0, got {self.nature_lr!r}")


def prior_name(prior: str) -> str:
    """``"MU"`` or ``"maximin-utility"`` -> ``"maximin-utility"`` (ConfigError otherwise)."""
    if prior in PRIORS:
        return PRIORS[prior]
    if prior in _ABBREV:
        return prior
    raise ConfigError(f"unknown prior {prior!r}; use one of {list(PRIORS)} or {list(PRIORS.values())}")


def prior_abbrev(prior: str) -> str:
    return _ABBREV[prior_name(prior)]


# ---- scenarios, best responses, test sets ---------------------------------------------------------
def train_scenarios(rounds: int = DEFAULT_ROUNDS) -> dict[str, Policy | None]:
    """The training scenarios in nature's order: ``{"c1:ipd/<partner>": partner, ..., "c2": None}``."""
    out: dict[str, Policy | None] = {f"c1:{name}": p for name, p in training_partners(rounds).items()}
    out["c2"] = None  # self-play
    return out


def train_best_responses(rounds: int = DEFAULT_ROUNDS) -> dict[str, float]:
    """Exact best-response utility of every training scenario (scenario id -> value)."""
    return {sid: (self_play_best_value(rounds) if p is None else best_response_value(p, rounds))
            for sid, p in train_scenarios(rounds).items()}


def test_partners(w: float, count: int = PERTURBED_COUNT, rounds: int = DEFAULT_ROUNDS,
                  seed: int = TEST_SEED) -> list[IPDTablePolicy]:
    """The eps-perturbed test partners of width ``w``, from ``stream(seed, f"ipd/test/w={w:g}")``.

    Draws are sequential, so the first ``k`` partners of ``count >= k`` are the ``count = k`` set
    (the zoo recipe ``zoo/ipd-test-partners`` publishes the first 64 of each width).
    """
    return perturbed_partners(training_partners(rounds), w, count, rounds, rng=stream(seed, f"ipd/test/w={w:g}"))


@functools.lru_cache(maxsize=64)
def _test_set(w: float, count: int, rounds: int, seed: int) -> tuple[list[IPDTablePolicy], np.ndarray]:
    partners = test_partners(w, count, rounds, seed)
    return partners, np.array([best_response_value(p, rounds) for p in partners])


# ---- exact evaluation -----------------------------------------------------------------------------
def as_table(policy: Any, rounds: int = DEFAULT_ROUNDS, *, greedy: bool = False) -> IPDTablePolicy:
    """Tabulate a learner: an SB3 model, an :class:`~rqe_wrappers.sb3.SB3Policy`, or any discrete
    IPD :class:`~rqe_wrappers.core.policy.Policy` with ``action_probs``.

    ``greedy=True`` takes the most likely action in every history (ties: cooperate).
    """
    if hasattr(policy, "policy") and hasattr(policy, "learn"):  # an SB3 model
        from rqe_wrappers.sb3.sb3_policy import SB3Policy

        policy = SB3Policy.from_model(policy)
    if not callable(getattr(policy, "action_probs", None)):
        raise ConfigError(f"cannot tabulate {type(policy).__name__}: it has no action_probs")
    # SB3Policy is not a DiscretePolicy; a FunctionPolicy over its action_probs is.
    fn = FunctionPolicy(observation_space(rounds), gym.spaces.Discrete(2), lambda obs: policy.action_probs(obs))
    table = IPDTablePolicy.from_policy(fn, rounds, name=f"table({getattr(policy, 'name', type(policy).__name__)})")
    if greedy:
        table = IPDTablePolicy((table.table > 0.5).astype(np.float64), rounds, name=table.name + "-greedy")
    return table


def _summary(utilities: np.ndarray, best: np.ndarray, ids: Sequence[str]) -> dict[str, Any]:
    regrets = best - utilities
    return {
        "mean_utility": float(utilities.mean()),
        "worst_utility": float(utilities.min()),
        "worst_regret": float(regrets.max()),
        "worst_utility_scenario": ids[int(utilities.argmin())],
        "worst_regret_scenario": ids[int(regrets.argmax())],
        "n_scenarios": int(len(utilities)),
    }


def evaluate_policy(
    policy: Any,
    rounds: int = DEFAULT_ROUNDS,
    *,
    widths: Sequence[float] = PERTURBATION_WIDTHS,
    test_count: int = PERTURBED_COUNT,
    test_seed: int = TEST_SEED,
) -> dict[str, Any]:
    """Exact Table-2 metrics of one learner (SB3 model or discrete IPD policy; tabulated first).

    Returns ``{"train": {...}, "test": {"<w>": {...}}, "utilities": {scenario id: u},
    "self_play": u}``. Each metric block has ``mean_utility``, ``worst_utility``, ``worst_regret``
    (over the scenarios: 9 partners + self-play for train; ``test_count`` perturbed partners +
    self-play for each test width), the scenarios where the worst cases occur, and ``n_scenarios``.
    """
    rounds = check_rounds(rounds)
    table = policy if isinstance(policy, IPDTablePolicy) else as_table(policy, rounds)
    scen = train_scenarios(rounds)
    best = train_best_responses(rounds)
    self_play = float(np.mean(expected_return(table, table, rounds)))
    u = {sid: (self_play if p is None else expected_return(table, p, rounds)[0]) for sid, p in scen.items()}
    ids = list(scen)
    out: dict[str, Any] = {
        "train": _summary(np.array([u[i] for i in ids]), np.array([best[i] for i in ids]), ids),
        "utilities": u,
        "self_play": self_play,
        "test": {},
    }
    for w in widths:
        partners, brs = _test_set(float(w), int(test_count), rounds, int(test_seed))
        tu = np.array([expected_return(table, p, rounds)[0] for p in partners] + [self_play])
        tb = np.append(brs, self_play_best_value(rounds))
        out["test"][f"{float(w):g}"] = _summary(tu, tb, [p.name for p in partners] + ["c2"])
    return out


# ---- training -------------------------------------------------------------------------------------
def make_env_fn(prior: str, settings: IPDSettings) -> Callable[[], Any]:
    """The env factory of one run: ``aht_wrap(ipd_env(rounds), partners, prior, ...)``."""
    from rqe_wrappers.envs.ipd import ipd_env
    from rqe_wrappers.aht.wrapper import aht_wrap

    prior = prior_name(prior)
    rounds = settings.rounds
    population = {} if prior in ("self-play", "fictitious-play") else training_partners(rounds)
    kwargs: dict[str, Any] = {"lr": settings.nature_lr, "eps": settings.nature_eps, "nature_step": settings.nature_step}
    if prior == "minimax-regret":
        kwargs["best_responses"] = train_best_responses(rounds)
    if prior == "fictitious-play":
        kwargs["fp_capacity"] = settings.fp_capacity
    return lambda: aht_wrap(ipd_env(rounds), population, prior, **kwargs)


def train_learner(prior: str, seed: int, steps: int, settings: IPDSettings = IPDSettings(), *,
                  csv_path: str | Path | None = None, verbose: int = 0):
    """Train one learner with stock SB3 PPO (CPU, one torch thread); returns ``(model, callback, info)``.

    Seeded end to end: ``PPO(seed=seed)``, env copy ``j`` reset with ``seed + j`` (scenario
    sampling), fictitious-play reservoir from the model's seed. ``info``: ``steps``, ``seconds``,
    ``steps_per_s``, ``final_beta`` (by scenario id).
    """
    import torch
    from stable_baselines3 import PPO

    from rqe_wrappers.sb3.aht_callback import AHTCallback
    from rqe_wrappers.sb3.vec_env import make_vec_env

    steps = int(steps)
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    torch.set_num_threads(1)
    venv = make_vec_env(make_env_fn(prior, settings), n_copies=settings.n_copies, seed=int(seed))
    try:
        model = PPO("MlpPolicy", venv, seed=int(seed), device="cpu", verbose=verbose, **settings.ppo_kwargs())
        callback = AHTCallback(utility_ema=settings.utility_ema, csv_path=csv_path)
        t0 = time.perf_counter()
        model.learn(steps, callback=callback)
        seconds = time.perf_counter() - t0
    finally:
        venv.close()
    info = {
        "steps": int(model.num_timesteps),
        "seconds": seconds,
        "steps_per_s": model.num_timesteps / seconds,
        "final_beta": dict(zip(callback.scenarios.ids, (float(b) for b in callback.beta))),
    }
    return model, callback, info


def run_one(prior: str, seed: int, steps: int, settings: IPDSettings = IPDSettings(), *,
            out: str | Path | None = None, widths: Sequence[float] = PERTURBATION_WIDTHS,
            test_count: int = PERTURBED_COUNT, test_seed: int = TEST_SEED,
            table_width: float = TABLE_WIDTH) -> dict[str, Any]:
    """Train and evaluate one (prior, seed); with ``out``, writes ``beta/<P>-seed<k>.csv`` and the model.

    The greedy (argmax) policy is evaluated on the training scenarios and the ``table_width`` test set.
    """
    abbrev = prior_abbrev(prior)
    csv_path = None
    if out is not None:
        out = Path(out)
        (out / "beta").mkdir(parents=True, exist_ok=True)
        csv_path = out / "beta" / f"{abbrev}-seed{seed}.csv"
        if csv_path.exists():
            csv_path.unlink()  # a rerun starts a fresh log
    model, _, info = train_learner(prior, seed, steps, settings, csv_path=csv_path)
    if out is not None:
        (out / "models").mkdir(parents=True, exist_ok=True)
        model.save(str(out / "models" / f"{abbrev}-seed{seed}.zip"))
    t0 = time.perf_counter()
    table = as_table(model, settings.rounds)
    result = {"prior": prior_name(prior), "abbrev": abbrev, "seed": int(seed), **info,
              "p_defect": [float(p) for p in table.table]}
    result.update(evaluate_policy(table, settings.rounds, widths=widths, test_count=test_count, test_seed=test_seed))
    greedy = evaluate_policy(as_table(model, settings.rounds, greedy=True), settings.rounds,
                             widths=[table_width],
                             test_count=test_count, test_seed=test_seed)
    result["greedy"] = {"train": greedy["train"], "test": greedy["test"]}
    result["eval_seconds"] = time.perf_counter() - t0
    return result


def _job(prior: str, seed: int, steps: int, settings: dict, out: str | None, widths: list[float],
         test_count: int, test_seed: int, table_width: float) -> dict[str, Any]:
    return run_one(prior, seed, steps, IPDSettings.from_json(settings), out=out, widths=widths,
                   test_count=test_count, test_seed=test_seed, table_width=table_width)


# ---- the experiment -------------------------------------------------------------------------------
def _mean_std(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": int(len(a))}


def summarize(runs: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """``{prior: {"train": {metric: {mean, std, n}}, "test": {w: {...}}}}`` over seeds (std: ddof = 1)."""
    out = {}
    for abbrev, by_seed in runs.items():
        results = list(by_seed.values())
        if not results:
            continue
        s: dict[str, Any] = {"train": {m: _mean_std([r["train"][m] for r in results]) for m in METRICS}, "test": {}}
        for w in results[0]["test"]:
            s["test"][w] = {m: _mean_std([r["test"][w][m] for r in results]) for m in METRICS}
        s["steps_per_s"] = _mean_std([r["steps_per_s"] for r in results])
        out[abbrev] = s
    return out


def reference_rows(rounds: int, widths: Sequence[float], test_count: int, test_seed: int) -> dict[str, Any]:
    """Scripted learners evaluated with the same code (no training): the paper's "Random" row."""
    rnd = make_scripted("ipd/random", rounds=rounds)
    return {"Random": evaluate_policy(rnd, rounds, widths=widths, test_count=test_count, test_seed=test_seed)}


def _fmt(stat: Mapping[str, float] | float) -> str:
    if isinstance(stat, Mapping):
        return f"{stat['mean']:.2f} ± {stat['std']:.2f}" if stat.get("n", 1) > 1 else f"{stat['mean']:.2f}"
    return f"{stat:.2f}"


def format_table(summary: Mapping[str, Any], reference: Mapping[str, Any], width: float = TABLE_WIDTH,
                 header: str = "", test_count: int = PERTURBED_COUNT) -> str:
    """Markdown: one row per prior, each cell "ours (paper)"; ours = mean ± std over seeds."""
    wkey = f"{float(width):g}"
    cols = [("train", m) for m in METRICS] + [("test", m) for m in METRICS]
    names = ["mean U", "worst U", "worst regret"]
    lines = [header] if header else []
    lines += [
        f"| prior | train: {' | train: '.join(names)} | test w={wkey}: {f' | test w={wkey}: '.join(names)} |",
        "|---|" + "---|" * len(cols),
    ]

    def row(label: str, get: Callable[[str, str], Any], paper: Sequence[float] | None):
        cells = []
        for k, (part, metric) in enumerate(cols):
            v = get(part, metric)
            ours = "n/a" if v is None else _fmt(v)
            cells.append(f"{ours} ({paper[k]:.2f})" if paper else ours)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    for abbrev in PRIORS:
        if abbrev not in summary:
            continue
        s = summary[abbrev]
        row(abbrev, lambda part, m, s=s: s["train"][m] if part == "train" else s["test"].get(wkey, {}).get(m),
            PAPER_TABLE2.get(abbrev))
    for label, r in reference.items():
        row(f"{label} (scripted)",
            lambda part, m, r=r: r["train"][m] if part == "train" else r["test"].get(wkey, {}).get(m),
            PAPER_TABLE2.get(label))
    lines.append("")
    lines.append("Cells: ours (paper). Ours: mean ± std over seeds, exact evaluation of the stochastic policy; "
                 f"train = 9 partners + self-play, test = {test_count} perturbed partners (w={wkey}) + self-play.")
    return "\n".join(lines)


def _average_csvs(paths: Sequence[Path], out_csv: Path) -> Path | None:
    """Average the beta CSVs of several seeds row by row (same settings -> same timesteps)."""
    tables = []
    for p in paths:
        with open(p, newline="", encoding="utf-8") as f:
            tables.append(list(csv.DictReader(f)))
    tables = [t for t in tables if t]
    if not tables:
        return None
    n = min(len(t) for t in tables)
    cols = [c for c in tables[0][0] if c == "timesteps" or c.startswith("aht/beta/")]
    with open(out_csv, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for i in range(n):
            w.writerow([tables[0][i]["timesteps"]] + [
                repr(float(np.mean([float(t[i][c]) for t in tables]))) for c in cols[1:]])
    return out_csv


def plot_betas(out: Path, runs: Mapping[str, Mapping[str, Any]]) -> list[Path]:
    """``beta-<P>.png`` per prior: nature's prior over training, averaged over seeds."""
    from rqe_wrappers.sb3.aht_callback import plot_beta

    written = []
    for abbrev, by_seed in runs.items():
        paths = [out / "beta" / f"{abbrev}-seed{s}.csv" for s in by_seed]
        paths = [p for p in paths if p.exists()]
        if not paths:
            continue
        avg = _average_csvs(paths, out / "beta" / f"{abbrev}-mean.csv")
        if avg is None:
            continue
        written.append(plot_beta(avg, out / f"beta-{abbrev}.png",
                                 title=f"IPD, {abbrev} ({prior_name(abbrev)}): beta, mean of {len(paths)} seed(s)"))
    return written


def plot_widths(out: Path, summary: Mapping[str, Any], reference: Mapping[str, Any]) -> Path | None:
    """``test-widths.png``: test-set metrics against the perturbation width (the paper's Figure 5)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    if not any(len(s["test"]) >= 2 for s in summary.values()):
        return None
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    for k, metric in enumerate(METRICS):
        ax = axes[k]
        for abbrev, s in summary.items():
            ws = sorted(s["test"], key=float)
            if len(ws) < 2:
                continue
            m = np.array([s["test"][w][metric]["mean"] for w in ws])
            sd = np.array([s["test"][w][metric]["std"] for w in ws])
            x = np.array([float(w) for w in ws])
            ax.plot(x, m, marker="o", label=abbrev)
            ax.fill_between(x, m - sd, m + sd, alpha=0.2)
        for label, r in reference.items():
            ws = sorted(r["test"], key=float)
            if len(ws) >= 2:
                ax.plot([float(w) for w in ws], [r["test"][w][metric] for w in ws], ls="--", color="grey", label=label)
        ax.set_xlabel("perturbation width w (L1)")
        ax.set_title(metric.replace("_", " "))
    axes[0].legend(fontsize="small")
    path = out / "test-widths.png"
    fig.savefig(path, dpi=110)
    return path


def _machine() -> dict[str, Any]:
    info = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform()}
    try:
        import stable_baselines3
        import torch

        info.update(torch=torch.__version__, stable_baselines3=stable_baselines3.__version__)
    except ImportError:  # pragma: no cover
        pass
    return info


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def _pool(workers: int) -> ProcessPoolExecutor:
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(method))


def run_experiment(
    priors: Sequence[str] = tuple(PRIORS),
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 200_000,
    out: str | Path = "runs/ipd",
    *,
    settings: IPDSettings = IPDSettings(),
    workers: int = 1,
    widths: Sequence[float] = PERTURBATION_WIDTHS,
    test_count: int = PERTURBED_COUNT,
    test_seed: int = TEST_SEED,
    table_width: float = TABLE_WIDTH,
    plots: bool = True,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train every (prior, seed), evaluate exactly, write ``results.json``, ``table.md`` and plots.

    ``workers`` processes run the (prior, seed) jobs (each single-threaded); ``workers = 1``
    runs them in this process. Progress and the table go to ``echo`` (default: print, flushed;
    pass ``lambda s: None`` for silence). Returns the results dict (the content of ``results.json``).
    """
    if echo is None:
        echo = functools.partial(print, flush=True)
    priors = [prior_abbrev(p) for p in priors]
    if len(set(priors)) != len(priors):
        raise ConfigError(f"priors listed twice: {priors}")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct and at least one, got {seeds}")
    widths = sorted({float(w) for w in widths} | {float(table_width)})
    if isinstance(workers, bool) or int(workers) < 1:
        raise ConfigError(f"workers must be >= 1, got {workers!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results: dict[str, Any] = {
        "format": FORMAT,
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else None,
        "priors": {p: PRIORS[p] for p in priors},
        "seeds": seeds,
        "steps": int(steps),
        "settings": settings.to_json(),
        "evaluation": {
            "policy": "stochastic (softmax probabilities tabulated over all histories); "
                      "'greedy' holds the argmax policy",
            "train_scenarios": list(train_scenarios(settings.rounds)),
            "train_best_responses": train_best_responses(settings.rounds),
            "test": {"seed": int(test_seed), "count": int(test_count), "widths": widths,
                     "table_width": float(table_width),
                     "stream": "rqe_wrappers.core.seeding.stream(seed, f'ipd/test/w={w:g}')",
                     "scenarios": "count perturbed partners + self-play (c2)"},
        },
        "paper_table2": {k: dict(zip([f"{part}/{m}" for part in ("train", "test") for m in METRICS], v))
                         for k, v in PAPER_TABLE2.items()},
        "machine": _machine(),
        "workers": int(workers),
        "runs": {p: {} for p in priors},
    }
    results["reference"] = reference_rows(settings.rounds, widths, test_count, test_seed)
    # Slowest first (self-play and fictitious play run an MLP snapshot per env step, ~1.5x slower),
    # so that with more jobs than workers the fast ones fill the gaps at the end.
    slow_first = sorted(priors, key=lambda p: (p not in ("SP", "FP"), list(PRIORS).index(p)))
    jobs = [(PRIORS[p], s) for p in slow_first for s in seeds]

    def done(r: dict) -> None:
        results["runs"][r["abbrev"]][str(r["seed"])] = r
        _write_json(out / "results.json", results)
        if echo:
            t = r["train"]
            echo(f"[{time.perf_counter() - t0:7.1f}s] {r['abbrev']:>3} seed {r['seed']}: {r['steps']} steps, "
                 f"{r['steps_per_s']:.0f} steps/s; train mean {t['mean_utility']:.2f} worst {t['worst_utility']:.2f} "
                 f"regret {t['worst_regret']:.2f}")

    args = [(prior, seed, int(steps), settings.to_json(), str(out), widths, int(test_count), int(test_seed),
             float(table_width))
            for prior, seed in jobs]
    if int(workers) <= 1 or len(args) <= 1:
        for a in args:
            done(_job(*a))
    else:
        with _pool(min(int(workers), len(args))) as pool:
            futures = [pool.submit(_job, *a) for a in args]
            for fut in as_completed(futures):
                done(fut.result())
    for p in priors:  # seeds in order, whatever order the jobs finished in
        results["runs"][p] = dict(sorted(results["runs"][p].items(), key=lambda kv: int(kv[0])))
    results["summary"] = summarize(results["runs"])
    results["wall_seconds"] = time.perf_counter() - t0
    rollout = settings.n_copies * settings.n_steps
    header = (f"IPD ({settings.rounds} rounds), stock SB3 PPO, {int(steps):,} steps per learner "
              f"({-(-int(steps) // rollout) * rollout:,} in whole rollouts of {rollout}), "
              f"seeds {seeds}, test seed {test_seed}, {test_count} test partners per width")
    table = format_table(results["summary"], results["reference"], table_width, header, test_count)
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    if plots:
        results["plots"] = [p.name for p in plot_betas(out, results["runs"])]
        wp = plot_widths(out, results["summary"], results["reference"])
        if wp is not None:
            results["plots"].append(wp.name)
    _write_json(out / "results.json", results)
    if echo:
        echo(table)
        echo(f"wrote {out / 'results.json'}, {out / 'table.md'} ({results['wall_seconds']:.0f} s)")
    return results


# ---- command line ---------------------------------------------------------------------------------
def _cli(a: argparse.Namespace) -> int:
    base = IPDSettings()
    changes = {k: v for k, v in {
        "rounds": a.rounds, "n_copies": a.n_copies, "n_steps": a.n_steps, "batch_size": a.batch_size,
        "n_epochs": a.n_epochs, "learning_rate": a.lr, "ent_coef": a.ent_coef, "nature_lr": a.nature_lr,
        "net_arch": tuple(a.net_arch) if a.net_arch else None}.items() if v is not None}
    run_experiment(a.priors, a.seeds, a.steps, a.out, settings=replace(base, **changes), workers=a.workers,
                   widths=a.widths, test_count=a.test_count, test_seed=a.test_seed, table_width=a.table_width,
                   plots=not a.no_plots)
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "ipd", help="the minimax-Bayes paper's IPD experiment (Table 2): MU/MR/PBR/SP/FP learners, exact evaluation",
        description="Train PPO learners with the paper's priors over seeds, evaluate them exactly on the training "
                    "partners and the eps-perturbed test sets, write results.json, table.md and beta plots "
                    "(docs/ipd-reproduction.md).")
    p.add_argument("--priors", nargs="+", default=list(PRIORS), help=f"of {list(PRIORS)} (or full prior names)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=200_000, help="env steps (learner moves) per learner")
    p.add_argument("--n-copies", type=int, default=None, help=f"env copies per learner (default {IPDSettings.n_copies})")
    p.add_argument("--workers", type=int, default=1, help="(prior, seed) jobs run at once, one process each")
    p.add_argument("--out", type=Path, default=Path("runs/ipd"))
    p.add_argument("--rounds", type=int, default=None, help=f"default {DEFAULT_ROUNDS}")
    p.add_argument("--n-steps", type=int, default=None,
                   help=f"PPO n_steps per env copy (default {IPDSettings.n_steps})")
    p.add_argument("--batch-size", type=int, default=None, help=f"default {IPDSettings.batch_size}")
    p.add_argument("--n-epochs", type=int, default=None, help=f"default {IPDSettings.n_epochs}")
    p.add_argument("--lr", type=float, default=None, help=f"PPO learning rate (default {IPDSettings.learning_rate})")
    p.add_argument("--ent-coef", type=float, default=None, help=f"default {IPDSettings.ent_coef}")
    p.add_argument("--net-arch", type=int, nargs="+", default=None, help="hidden layers (default 64 64)")
    p.add_argument("--nature-lr", type=float, default=None,
                   help=f"nature's step size (default {IPDSettings.nature_lr})")
    p.add_argument("--widths", type=float, nargs="+", default=list(PERTURBATION_WIDTHS),
                   help="test-set widths w evaluated (default 0.1 .. 1.0)")
    p.add_argument("--table-width", type=float, default=TABLE_WIDTH, help="the test width shown in table.md")
    p.add_argument("--test-count", type=int, default=PERTURBED_COUNT, help="test partners per width")
    p.add_argument("--test-seed", type=int, default=TEST_SEED)
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=_cli)
