"""Every figure the library draws: nature's prior over training, IPD test widths, the RQE bifurcation.

matplotlib's object API only (``matplotlib.figure.Figure``): no global backend or pyplot state is
touched. matplotlib is imported inside each function (``pip install 'rqe-wrappers[plot]'``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rqe_wrappers.errors import ConfigError

__all__ = ["BETA_PREFIX", "X_COLUMNS", "plot_beta", "plot_bifurcation", "plot_test_widths", "read_beta_log"]

#: Timestep columns a beta log may have: SB3's progress.csv, then the old AHTCallback(csv_path=) CSV.
X_COLUMNS = ("time/total_timesteps", "timesteps")
#: Column prefix of nature's prior in SB3's log: ``aht/beta/<scenario id>``.
BETA_PREFIX = "aht/beta/"


def _figure(what: str) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError(f"{what} needs matplotlib: pip install 'rqe-wrappers[plot]'") from None
    return Figure


def _save(fig: Any, out_png: str | os.PathLike, dpi: int) -> Path:
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    return out


def read_beta_log(path: str | os.PathLike) -> tuple[str, np.ndarray, list[str], np.ndarray]:
    """``(x column, timesteps, scenario ids, beta[scenario, row])`` from SB3's progress.csv.

    Scenario ids come sorted (SB3's column order depends on the hash seed). Rows without beta values
    (SB3 leaves cells empty for keys not logged in that dump) are dropped.
    The old ``AHTCallback(csv_path=...)`` CSV (a ``timesteps`` column) is read the same way.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    if not rows:
        raise ConfigError(f"{path} has no rows")
    columns = list(rows[0].keys())
    xcol = next((c for c in X_COLUMNS if c in columns), None)
    bcols = sorted(c for c in columns if c.startswith(BETA_PREFIX))  # SB3 orders columns by hash
    if xcol is None or not bcols:
        raise ConfigError(
            f"{path} has no {' / '.join(repr(c) for c in X_COLUMNS)} column or no '{BETA_PREFIX}...' columns; "
            "log AHTCallback through SB3's CSV logger: model.set_logger(configure(run_dir, ['csv']))"
        )
    rows = [r for r in rows if r.get(xcol) and all(r.get(c) for c in bcols)]
    if not rows:
        raise ConfigError(f"{path} has no row with beta values")
    x = np.array([float(r[xcol]) for r in rows])
    beta = np.array([[float(r[c]) for r in rows] for c in bcols])
    return xcol, x, [c[len(BETA_PREFIX) :] for c in bcols], beta


def plot_beta(progress_csv: str | os.PathLike, out_png: str | os.PathLike, *, title: str | None = None) -> Path:
    """Nature's prior over training, stacked by scenario, from SB3's ``progress.csv``; returns ``out_png``.

    Reads ``time/total_timesteps`` (or a legacy ``timesteps`` column) and ``aht/beta/<scenario id>``.
    """
    Figure = _figure("plot_beta")
    _, x, ids, beta = read_beta_log(progress_csv)
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.stackplot(x, beta, labels=ids)
    ax.set_xlabel("timesteps")
    ax.set_ylabel("beta (prior over scenarios)")
    ax.set_ylim(0, 1)
    ax.set_xlim(x.min(), x.max() if x.max() > x.min() else x.min() + 1)
    ax.set_title(title or "nature's prior over scenarios")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small", ncol=1 + len(ids) // 20)
    return _save(fig, out_png, 120)


def plot_test_widths(
    summary: Mapping[str, Any],
    reference: Mapping[str, Any],
    out_png: str | os.PathLike,
    metrics: Sequence[str] = ("mean_utility", "worst_utility", "worst_regret"),
) -> Path | None:
    """IPD test-set metrics against the perturbation width (the minimax-Bayes paper's Figure 5).

    ``summary``: ``{prior: {"test": {w: {metric: {"mean", "std"}}}}}`` (mean ± std over seeds);
    ``reference``: ``{label: {"test": {w: {metric: value}}}}`` drawn dashed. Returns None (and
    draws nothing) when no prior has two widths or more.
    """
    if not any(len(s["test"]) >= 2 for s in summary.values()):
        return None
    Figure = _figure("plot_test_widths")
    fig = Figure(figsize=(4 * len(metrics), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, metric in zip(axes, metrics, strict=True):
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
    return _save(fig, out_png, 110)


def plot_bifurcation(
    rows: Sequence[tuple[float, Sequence[Any]]], tau_star: float | None, out_png: str | os.PathLike, *, title: str
) -> Path:
    """Each player's P(collaborate) at every RQE against tau, and the number of RQE (``rqe bifurcation``).

    ``rows``: ``[(tau, [RQE with .pi0, .pi1]), ...]`` as from :func:`rqe_wrappers.srpo.bifurcation.sweep`;
    ``tau_star`` (the free-riding threshold) is marked when finite.
    """
    Figure = _figure("plot_bifurcation")
    fig = Figure(figsize=(7, 6))
    ax, axn = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    sym: tuple[list[float], list[float]] = ([], [])
    hi: tuple[list[float], list[float]] = ([], [])
    lo: tuple[list[float], list[float]] = ([], [])
    for tau, eqs in rows:
        for e in eqs:
            x, y = float(e.pi0[1]), float(e.pi1[1])
            branches = [(sym, x)] if abs(x - y) < 1e-6 else [(hi, max(x, y)), (lo, min(x, y))]
            for (taus, ps), p in branches:
                taus.append(tau)
                ps.append(p)
    ax.plot(*sym, "o", ms=3, color="black", label="symmetric RQE (both players)")
    ax.plot(*hi, "^", ms=3, color="tab:blue", label="free-riding RQE: the collaborating player")
    ax.plot(*lo, "v", ms=3, color="tab:red", label="free-riding RQE: the free-riding player")
    axn.step([r[0] for r in rows], [len(r[1]) for r in rows], where="post", color="black")
    marked = tau_star is not None and np.isfinite(tau_star)
    for a in (ax, axn):
        if marked:
            a.axvline(tau_star, ls="--", color="gray")
    if marked:
        ax.text(tau_star, 0.02, f" tau* = {tau_star:.3f}", color="gray", va="bottom")
    ax.set_ylim(0, 1)
    ax.set_ylabel("P(collaborate)")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    axn.set_ylabel("# RQE")
    axn.set_xlabel("risk aversion tau")
    axn.set_yticks(sorted({len(r[1]) for r in rows}))
    axn.grid(alpha=0.3)
    fig.text(0.01, 0.01, "each free-riding RQE comes with its mirror image (players swapped)", fontsize=7)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return _save(fig, out_png, 120)
