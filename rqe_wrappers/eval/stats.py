"""Summaries with uncertainty: interquartile mean, stratified bootstrap CIs, normalised scores, free-riding.

The interquartile mean and the stratified percentile bootstrap follow rliable (Agarwal et al. 2021,
"Deep RL at the Edge of the Statistical Precipice"): each task (here: each pairing or scenario)
keeps its own episodes, which are resampled with replacement within the task, the statistic is
recomputed on the pooled resample, and the CI is the percentile interval over ``reps`` resamples.
Implemented with numpy/scipy and seeded. Docs: docs/evaluation.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

from rqe_wrappers.core.checks import integer, real
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.eval.crossplay import CrossPlayResult

__all__ = ["bootstrap_ci", "iqm", "normalized", "summarize_crossplay"]

Statistic = Callable[..., Any]


def iqm(scores: Any, axis: int | None = None) -> Any:
    """Interquartile mean: the mean of the middle 50% of ``scores`` (scipy's ``trim_mean(.., 0.25)``).

    Example:
        >>> float(iqm([1, 2, 3, 4, 5, 6, 7, 100]))
        4.5
    """
    return sps.trim_mean(np.asarray(scores, dtype=np.float64), 0.25, axis=axis)


def _mean(x: np.ndarray, axis: int | None = None) -> Any:
    return np.mean(x, axis=axis)


STATISTICS: dict[str, Statistic] = {"iqm": iqm, "mean": _mean}


def bootstrap_ci(
    tasks: Sequence[Any],
    statistic: str | Statistic = "iqm",
    *,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Stratified percentile bootstrap CI of ``statistic`` over the pooled scores of ``tasks``.

    ``tasks``: one array of scores (episodes or runs) per task. Each resample draws, for every task
    independently, as many scores as it has with replacement (rliable's ``StratifiedBootstrap``);
    ``statistic`` (``"iqm"``, ``"mean"`` or ``f(x, axis)``) is applied to the pooled resample.
    """
    reps = integer("reps", reps, low=1)
    confidence = real("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)
    fn = STATISTICS.get(statistic, None) if isinstance(statistic, str) else statistic
    if fn is None:
        raise ConfigError(f"statistic must be one of {sorted(STATISTICS)} or a function f(x, axis), got {statistic!r}")
    arrays = [np.asarray(t, dtype=np.float64).reshape(-1) for t in tasks]
    if not arrays or any(a.size == 0 for a in arrays):
        raise ConfigError("bootstrap_ci needs at least one task, each with at least one score")
    rng = stream(seed, "eval/bootstrap")
    pooled = np.concatenate([a[rng.integers(0, a.size, (reps, a.size))] for a in arrays], axis=1)
    values = np.asarray(fn(pooled, axis=1), dtype=np.float64)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def normalized(score: Any, best: Any, baseline: Any = 0.0) -> Any:
    """``(score - baseline) / (best - baseline)``: 0 at the baseline (e.g. a random agent), 1 at the best response."""
    best, baseline = np.asarray(best, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if np.any(best == baseline):
        raise ConfigError("normalisation needs best-response values different from the baseline")
    return (np.asarray(score, dtype=np.float64) - baseline) / (best - baseline)


def _summary(tasks: list[np.ndarray], reps: int, confidence: float, seed: int) -> dict[str, Any]:
    if not tasks:
        return {}
    means = np.array([t.mean() for t in tasks])
    pooled = np.concatenate(tasks)
    return {
        "mean": float(pooled.mean()),
        "std": float(means.std()),
        "iqm": float(iqm(pooled)),
        "iqm_ci": list(bootstrap_ci(tasks, "iqm", reps=reps, confidence=confidence, seed=seed)),
        "mean_ci": list(bootstrap_ci(tasks, "mean", reps=reps, confidence=confidence, seed=seed)),
        "pairings": len(tasks),
    }


def summarize_crossplay(
    result: CrossPlayResult,
    *,
    value: str = "agent_return",
    best_responses: Mapping[str, float] | None = None,
    baseline: float | Mapping[str, float] = 0.0,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Self-play and cross-play summaries of a cross-play table, with bootstrap CIs.

    Keys: ``self_play`` and ``cross_play`` (``mean``, ``std`` over pairings, ``iqm``, ``iqm_ci``,
    ``mean_ci``; tasks are the pairings, samples their episodes), ``worst_pairing``
    (``agent``, ``partner``, ``value``: the lowest mean of a cross-play pairing), ``per_agent``
    (``self_play``, ``cross_play`` mean over other partners, ``worst``), ``per_method``
    (``self_play``, ``within``: other agents of the method, ``across``: agents of other methods),
    ``free_riding`` (``{agent: {partner: mean partner cost - mean agent cost}}``, positive where the
    agent pays less than its partner; only when the env reports costs) and, given
    ``best_responses`` (``{partner: best-response value}``) and ``baseline`` (a number or
    ``{partner: value}``, e.g. a random agent's), ``normalized`` (the cross-play summary of
    normalised scores).
    """
    agents = list(result.agents)
    vals = result.by_pairing(value)
    m = result.matrix(value)
    self_tasks = [vals[a, a] for a in agents]
    cross_keys = [(a, b) for a in agents for b in agents if a != b]
    out: dict[str, Any] = {
        "value": value,
        "episodes_per_pairing": 2 * result.episodes,
        "self_play": _summary(self_tasks, reps, confidence, seed),
        "cross_play": _summary([vals[k] for k in cross_keys], reps, confidence, seed),
    }
    if cross_keys:
        worst = min(cross_keys, key=lambda k: float(vals[k].mean()))
        out["worst_pairing"] = {"agent": worst[0], "partner": worst[1], "value": float(vals[worst].mean())}
    out["per_agent"] = {
        a: {
            "self_play": float(m[i, i]),
            "cross_play": float(np.mean([m[i, j] for j in range(len(agents)) if j != i])) if len(agents) > 1 else None,
            "worst": float(np.min(m[i])),
        }
        for i, a in enumerate(agents)
    }
    per_method: dict[str, Any] = {}
    for method in dict.fromkeys(result.methods.values()):
        mine = [i for i, a in enumerate(agents) if result.methods[a] == method]
        within = [m[i, j] for i in mine for j in mine if i != j]
        across = [m[i, j] for i in mine for j in range(len(agents)) if j not in mine]
        per_method[method] = {
            "agents": [agents[i] for i in mine],
            "self_play": float(np.mean([m[i, i] for i in mine])),
            "within": float(np.mean(within)) if within else None,
            "across": float(np.mean(across)) if across else None,
        }
    out["per_method"] = per_method
    costs = result.matrix("agent_cost")
    if not np.all(np.isnan(costs)):
        partner_costs = result.matrix("partner_cost")
        out["free_riding"] = {
            a: {b: float(partner_costs[i, j] - costs[i, j]) for j, b in enumerate(agents)} for i, a in enumerate(agents)
        }
    if best_responses is not None:
        missing = [b for b in agents if b not in best_responses]
        if isinstance(baseline, Mapping):
            missing += [f"baseline[{b!r}]" for b in agents if b not in baseline]
        if missing:
            raise ConfigError(f"best_responses and baseline must give a value for every partner; missing {missing}")

        def base(b: str) -> float:
            return float(baseline[b]) if isinstance(baseline, Mapping) else float(baseline)

        norm = [normalized(vals[a, b], best_responses[b], base(b)) for a, b in cross_keys]
        out["normalized"] = _summary(norm, reps, confidence, seed)
    return out
