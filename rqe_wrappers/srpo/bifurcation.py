"""How the set of RQE changes with risk aversion tau (the SRPO paper's pitchfork, Fig. 1).

``rqe bifurcation`` computes all RQE of the coordination game over a tau grid, plots each player's
collaboration probability at each equilibrium, and estimates the threshold tau* above which only one
(symmetric) equilibrium is left, i.e. no free-riding.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from rqe_wrappers.errors import ConfigError

__all__ = ["add_parser", "free_riding_threshold", "pitchfork_tau", "sweep"]


def sweep(payoffs, taus, eps) -> list[tuple[float, list]]:
    """``[(tau, solve_rqe(payoffs, tau, eps)) for tau in taus]``."""
    from rqe_wrappers.srpo.rqe import solve_rqe

    return [(float(t), solve_rqe(payoffs, float(t), eps)) for t in taus]


def free_riding_threshold(payoffs, eps, taus, *, tol: float = 1e-6) -> float | None:
    """Largest tau with more than one RQE: the last grid tau with several, refined by bisection.

    Returns None if no tau in ``taus`` has several RQE, and ``inf`` if the last one still has.
    """
    from rqe_wrappers.srpo.rqe import solve_rqe

    taus = np.sort(np.asarray(taus, dtype=float))
    multi = [len(solve_rqe(payoffs, t, eps)) > 1 for t in taus]
    if not any(multi):
        return None
    i = max(k for k, m in enumerate(multi) if m)
    if i == len(taus) - 1:
        return float("inf")
    lo, hi = taus[i], taus[i + 1]
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if len(solve_rqe(payoffs, mid, eps)) > 1 else (lo, mid)
    return float(lo)


def _symmetric_slope(payoffs, tau: float, eps: float) -> float:
    """Slope minus 1 of x -> BR(BR(x)) at the symmetric RQE of a symmetric 2x2 game."""
    from scipy.optimize import brentq

    from rqe_wrappers.srpo.rqe import best_response

    br = lambda y: best_response(payoffs, 0, [1 - y, y], tau, eps)[1]  # noqa: E731
    x = brentq(lambda y: br(y) - y, 1e-12, 1 - 1e-12, xtol=1e-15)
    h = 1e-6 * min(x, 1 - x)
    return ((br(x + h) - br(x - h)) / (2 * h)) ** 2 - 1.0


def pitchfork_tau(payoffs, eps, taus) -> float | None:
    """Tau at which the symmetric RQE of a symmetric 2x2 game changes stability (slope 1).

    Free-riding RQE branch off the symmetric one there; if that branching is supercritical this
    equals :func:`free_riding_threshold`. Assumes the game has one symmetric RQE for each tau.
    Returns None if the slope does not cross 1 on ``taus``.
    """
    from scipy.optimize import brentq

    p = np.asarray(payoffs, dtype=float)
    if p.shape != (2, 2, 2) or not np.allclose(p[:, :, 0], p[:, :, 1].T):
        raise ConfigError("pitchfork_tau needs a symmetric 2x2 game (payoffs[a, b, 0] == payoffs[b, a, 1])")
    taus = np.sort(np.asarray(taus, dtype=float))
    prev = _symmetric_slope(p, taus[0], eps)
    for k in range(1, len(taus)):
        cur = _symmetric_slope(p, taus[k], eps)
        if prev > 0 >= cur:
            return float(brentq(lambda t: _symmetric_slope(p, t, eps), taus[k - 1], taus[k], xtol=1e-10))
        prev = cur
    return None


def _plot(rows, tau_star, out: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, axn) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    sym, hi, lo = ([], []), ([], []), ([], [])
    for tau, eqs in rows:
        for e in eqs:
            x, y = float(e.pi0[1]), float(e.pi1[1])
            if abs(x - y) < 1e-6:
                sym[0].append(tau), sym[1].append(x)
            else:
                hi[0].append(tau), hi[1].append(max(x, y))
                lo[0].append(tau), lo[1].append(min(x, y))
    ax.plot(*sym, "o", ms=3, color="black", label="symmetric RQE (both players)")
    ax.plot(*hi, "^", ms=3, color="tab:blue", label="free-riding RQE: the collaborating player")
    ax.plot(*lo, "v", ms=3, color="tab:red", label="free-riding RQE: the free-riding player")
    axn.step([r[0] for r in rows], [len(r[1]) for r in rows], where="post", color="black")
    for a in (ax, axn):
        if tau_star is not None and np.isfinite(tau_star):
            a.axvline(tau_star, ls="--", color="gray")
    if tau_star is not None and np.isfinite(tau_star):
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
    fig.savefig(out, dpi=120)
    plt.close(fig)


def _run(args: argparse.Namespace) -> int:
    from rqe_wrappers.envs.matrix import coordination_payoffs

    try:
        if args.points < 2 or not args.tau_max > 0:
            raise ConfigError(f"need --points >= 2 and --tau-max > 0, got {args.points}, {args.tau_max}")
        payoffs = coordination_payoffs(args.cost)
        taus = np.linspace(0.0, args.tau_max, args.points)
        rows = sweep(payoffs, taus, args.eps)
        tau_star = free_riding_threshold(payoffs, args.eps, taus)
        tau_pf = pitchfork_tau(payoffs, args.eps, taus)
    except ConfigError as e:
        print(f"rqe bifurcation: {e}", file=sys.stderr)
        return 2
    print(f"coordination game, cost={args.cost}, eps={args.eps}, tau in [0, {args.tau_max}] ({args.points} points)")
    print(f"{'tau':>7}  #RQE  P(collaborate) of (player 0, player 1) at each RQE")
    for k in np.unique(np.linspace(0, len(rows) - 1, min(len(rows), 9)).round().astype(int)):
        tau, eqs = rows[k]
        print(f"{tau:7.3f}  {len(eqs):4d}  " + "  ".join(f"({e.pi0[1]:.3f}, {e.pi1[1]:.3f})" for e in eqs))
    if tau_star is None:
        print("threshold: a single RQE at every tau on the grid (no free-riding RQE)")
    elif np.isinf(tau_star):
        print(f"threshold: free-riding RQE still exist at tau_max={args.tau_max}; raise --tau-max")
    else:
        print(f"threshold tau* = {tau_star:.6f}: above it the symmetric RQE is the only one")
    if tau_pf is not None:
        print(f"symmetric RQE changes stability at tau = {tau_pf:.6f}"
              + ("" if tau_star is None or abs(tau_pf - tau_star) < 1e-4 else
                 " (differs from tau*: subcritical pitchfork, free-riding RQE end in a fold)"))
    if tau_star is not None and np.isfinite(tau_star):  # resolve the branches closing in on tau*
        dt = taus[1] - taus[0]
        extra = np.append(tau_star - dt * 0.5 ** np.arange(1, 13), tau_star + 1e-6)
        rows = sorted(rows + sweep(payoffs, extra[extra > 0], args.eps), key=lambda r: r[0])
    title = f"RQE of the coordination game (cost={args.cost}, eps={args.eps})"
    _plot(rows, tau_star, args.out, title)
    print(f"wrote {args.out}")
    return 0


def add_parser(subparsers) -> None:
    """Register ``rqe bifurcation``."""
    p = subparsers.add_parser(
        "bifurcation",
        help="all RQE of the SRPO coordination game vs risk aversion tau (plot + threshold)",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--cost", type=float, default=0.5, help="private cost of collaborating, in (0, 1) (default 0.5)")
    p.add_argument("--eps", type=float, default=0.2, help="bounded rationality (entropy weight) of both players (default 0.2)")
    p.add_argument("--tau-max", type=float, default=2.0, help="largest tau on the grid (default 2.0)")
    p.add_argument("--points", type=int, default=81, help="number of tau grid points from 0 (default 81)")
    p.add_argument("--out", default="bifurcation.png", help="where to save the plot (default bifurcation.png)")
    p.set_defaults(func=_run)
