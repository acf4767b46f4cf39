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


def _save_png_svg(fig: Any, out: str | os.PathLike, dpi: int) -> Path:
    """Save ``fig`` as ``<out>.png`` and ``<out>.svg`` (any suffix of ``out`` is replaced); returns the PNG."""
    png = _save(fig, Path(out).with_suffix(".png"), dpi)
    fig.savefig(png.with_suffix(".svg"))
    return png


def plot_crossplay(
    matrix: Any,
    agents: Sequence[str],
    methods: Mapping[str, str],
    out: str | os.PathLike,
    *,
    title: str = "cross-play",
    label: str = "mean return of the row agent",
    annotate: bool | None = None,
) -> Any:
    """Cross-play heatmap, rows and columns grouped by method: ``matrix[i, j]`` is row agent ``i`` with partner ``j``.

    ``agents`` in matrix order (grouped by method, as :class:`~rqe_wrappers.eval.CrossPlayResult` keeps
    them); method blocks are separated by lines and labelled, so a checkerboard (agents that only
    work with their own kind) shows as bright diagonal blocks. Cells are annotated when there are at
    most 12 agents (``annotate`` overrides). Writes ``<out>.png`` and ``<out>.svg``; returns the Figure.
    """
    m = np.asarray(matrix, dtype=np.float64)
    n = len(agents)
    if m.shape != (n, n):
        raise ConfigError(f"plot_crossplay: the matrix is {m.shape}, expected ({n}, {n}) for {n} agents")
    Figure = _figure("plot_crossplay")
    side = max(4.0, 0.45 * n + 2.5)
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(m, cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax, label=label, shrink=0.8)
    ax.set_xticks(range(n), list(agents), rotation=90, fontsize="small")
    ax.set_yticks(range(n), list(agents), fontsize="small")
    ax.set_xlabel("partner")
    ax.set_ylabel("agent")
    groups = [methods.get(a, a) for a in agents]
    grouped = 1 < len(set(groups)) < n  # else one method, or every agent its own: nothing to separate
    bounds = [i for i in range(1, n) if groups[i] != groups[i - 1]] if grouped else []
    for b in bounds:
        ax.axhline(b - 0.5, color="white", lw=2)
        ax.axvline(b - 0.5, color="white", lw=2)
    starts = [0, *bounds]
    ends = [*bounds, n]
    if grouped:
        for s, e in zip(starts, ends, strict=True):
            ax.text((s + e - 1) / 2, -0.7, groups[s], ha="center", va="bottom", fontsize="small", weight="bold")
            ax.text(
                n - 0.3,
                (s + e - 1) / 2,
                groups[s],
                ha="left",
                va="center",
                fontsize="small",
                weight="bold",
                rotation=-90,
            )
    if annotate if annotate is not None else n <= 12:
        finite = m[np.isfinite(m)]
        mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for i in range(n):
            for j in range(n):
                if np.isfinite(m[i, j]):
                    ax.text(
                        j,
                        i,
                        f"{m[i, j]:.3g}",
                        ha="center",
                        va="center",
                        fontsize="x-small",
                        color="black" if m[i, j] > mid else "white",
                    )
    fig.suptitle(title)
    _save_png_svg(fig, out, 120)
    return fig


def plot_population(
    utilities: Mapping[str, float],
    out: str | os.PathLike,
    *,
    errors: Mapping[str, float] | None = None,
    best_responses: Mapping[str, float | None] | None = None,
    title: str = "held-out population",
    label: str = "utility (focal per-capita return)",
) -> Any:
    """One bar per member (or scenario) with the worst case marked; best responses as ticks where known.

    ``errors``: half-widths of error bars (e.g. a std). Writes ``<out>.png`` and ``<out>.svg``;
    returns the Figure.
    """
    if not utilities:
        raise ConfigError("plot_population needs at least one member's utility")
    names = list(utilities)
    values = np.array([float(utilities[k]) for k in names])
    worst = int(np.argmin(values))
    Figure = _figure("plot_population")
    fig = Figure(figsize=(min(16.0, max(4.0, 0.4 * len(names) + 2.0)), 3.8), layout="constrained")
    ax = fig.subplots()
    colors = ["tab:red" if i == worst else "tab:blue" for i in range(len(names))]
    yerr = None if errors is None else [float(errors.get(k, 0.0)) for k in names]
    ax.bar(range(len(names)), values, color=colors, yerr=yerr, capsize=2)
    br = best_responses or {}
    marks = [(i, float(v)) for i, k in enumerate(names) if (v := br.get(k)) is not None]
    if marks:
        ax.plot(*zip(*marks, strict=True), "_", color="black", ms=14, mew=2, label="best response")
    ax.axhline(values.mean(), ls="--", color="gray", label=f"mean {values.mean():.3g}")
    ax.annotate(
        f"worst {values[worst]:.3g}",
        (worst, values[worst]),
        textcoords="offset points",
        xytext=(0, 4),
        ha="center",
        fontsize="small",
        color="tab:red",
    )
    if len(names) <= 40:
        ax.set_xticks(range(len(names)), names, rotation=90 if len(names) > 6 else 0, fontsize="small")
    else:  # too many to read: the worst one is named in its annotation
        ax.set_xticks([])
        ax.set_xlabel(f"{len(names)} members; worst: {names[worst]}")
    ax.set_ylabel(label)
    ax.set_title(title)
    ax.legend(fontsize="small")
    _save_png_svg(fig, out, 120)
    return fig


def _tau_x(taus: Sequence[float]) -> Any:
    """x position of a tau on a log axis: ``0`` one decade left of the grid, ``inf`` one decade right."""
    positive = [t for t in taus if 0 < t < np.inf]
    lo, hi = (np.log10(min(positive)), np.log10(max(positive))) if positive else (0.0, 0.0)
    return lambda t: lo - 1.0 if t == 0 else hi + 1.0 if np.isinf(t) else float(np.log10(t))


def _tau_ticks(ax: Any, taus: Sequence[float]) -> None:
    """Decade ticks of :func:`_tau_x`'s axis, with shaded columns for ``tau = 0`` and ``inf``."""
    positive = [t for t in taus if 0 < t < np.inf]
    lo, hi = (np.log10(min(positive)), np.log10(max(positive))) if positive else (0.0, 0.0)
    ticks = [float(k) for k in range(int(np.floor(lo)), int(np.ceil(hi)) + 1)]
    labels = [f"$10^{{{int(k)}}}$" for k in ticks]
    if any(t == 0 for t in taus):
        ax.axvspan(lo - 1.4, lo - 0.6, color="0.92")
        ticks, labels = [lo - 1.0, *ticks], ["0", *labels]
    if any(np.isinf(t) for t in taus):
        ax.axvspan(hi + 0.6, hi + 1.4, color="0.92")
        ticks, labels = [*ticks, hi + 1.0], [*labels, "inf"]
    ax.set_xticks(ticks, labels)


def plot_tau_sweep(rows: Sequence[Mapping[str, Any]], out: str | os.PathLike, *, title: str = "tau sweep") -> Any:
    """Self-play and cross-play return (top) and the degree of free-riding (bottom) against tau.

    ``rows``: one per (layout, tau) with ``layout``, ``tau``, ``self_play``, ``cross_play``,
    ``free_riding`` and optional ``self_play_std``, ``cross_play_std``, ``free_riding_std`` (error
    bars: the spread over agents or pairings). tau on a log axis, ``0`` (IPPO) one decade left on a
    shaded column. Writes ``<out>.png`` and ``<out>.svg``; returns the Figure.
    """
    if not rows:
        raise ConfigError("plot_tau_sweep needs at least one row")
    taus = [float(r["tau"]) for r in rows]
    x_of = _tau_x(taus)
    Figure = _figure("plot_tau_sweep")
    fig = Figure(figsize=(7.5, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    for i, layout in enumerate(dict.fromkeys(str(r["layout"]) for r in rows)):
        mine = sorted((r for r in rows if str(r["layout"]) == layout), key=lambda r: float(r["tau"]))
        xs = [x_of(float(r["tau"])) for r in mine]
        for key, style, ax in (("self_play", "-", top), ("cross_play", "--", top), ("free_riding", "-", bottom)):
            ys = [float(r[key]) for r in mine]
            err = [float(r.get(f"{key}_std", 0.0) or 0.0) for r in mine]
            label = f"{layout}: {key.replace('_', '-')}"
            ax.errorbar(xs, ys, yerr=err, fmt=style, marker="o", ms=3, capsize=3, color=f"C{i}", label=label)
    _tau_ticks(bottom, taus)
    top.set_ylabel("mean return per seat")
    bottom.set_ylabel("free-riding degree |cost0 - cost1|")
    bottom.set_xlabel("tau (risk aversion; 0 = IPPO; log scale)")
    top.set_title(title)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    _save_png_svg(fig, out, 120)
    return fig


def plot_robustness(curves: Sequence[Any], out: str | os.PathLike, *, title: str = "robustness audit") -> Any:
    """Return-vs-tau curves, one line per agent, coloured by method (the robustness audit).

    ``curves``: objects with ``agent``, ``method``, ``taus``, ``returns`` and ``summary`` (as
    :class:`~rqe_wrappers.eval.robustness.RobustnessCurve`). tau is on a log axis; ``tau = 0`` (the
    reference partner itself) and ``tau = inf`` (the worst case in its support) sit one decade
    beyond the grid, on shaded columns. Writes ``<out>.png`` and ``<out>.svg``; returns the Figure.
    """
    if not curves:
        raise ConfigError("plot_robustness needs at least one curve")
    x_of = _tau_x([float(t) for c in curves for t in c.taus])
    Figure = _figure("plot_robustness")
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.subplots()
    methods = list(dict.fromkeys(str(c.method) for c in curves))
    palette = [f"C{i % 10}" for i in range(len(methods))]
    styles = ["-", "--", ":", "-."]
    seen: dict[str, int] = {}
    for c in curves:
        k = seen[str(c.method)] = seen.get(str(c.method), -1) + 1
        label = f"{c.agent}" + (f" ({c.method})" if c.method else "") + f": {c.summary:.3g}"
        xs = [x_of(float(t)) for t in c.taus]
        color = palette[methods.index(str(c.method))]
        ax.plot(xs, list(c.returns), styles[k % len(styles)], marker="o", ms=3, color=color, label=label)
    _tau_ticks(ax, [float(t) for c in curves for t in c.taus])
    ax.set_xlabel("tau (the partner's KL budget; log scale)")
    ax.set_ylabel("agent's return under the deviation")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    many = len(curves) > 6  # beside the axes, so the legend hides no curve
    where = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if many else {}
    ax.legend(fontsize="small", title="agent: summary", title_fontsize="small", **where)
    if many:
        fig.set_size_inches(9.5, 4.5)
    _save_png_svg(fig, out, 120)
    return fig
