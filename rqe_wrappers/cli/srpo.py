"""``rqe bifurcation``: all RQE of the SRPO coordination game against tau, the threshold, the plot."""

from __future__ import annotations

import argparse

import numpy as np

from rqe_wrappers.errors import ConfigError


def _run(args: argparse.Namespace) -> int:
    from rqe_wrappers.envs.matrix import coordination_payoffs
    from rqe_wrappers.plots import plot_bifurcation
    from rqe_wrappers.srpo.bifurcation import free_riding_threshold, pitchfork_tau, sweep

    if args.points < 2 or not args.tau_max > 0:
        raise ConfigError(f"need --points >= 2 and --tau-max > 0, got {args.points}, {args.tau_max}")
    payoffs = coordination_payoffs(args.cost)
    taus = np.linspace(0.0, args.tau_max, args.points)
    rows = sweep(payoffs, taus, args.eps)
    tau_star = free_riding_threshold(payoffs, args.eps, taus)
    tau_pf = pitchfork_tau(payoffs, args.eps, taus)
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
        print(
            f"symmetric RQE changes stability at tau = {tau_pf:.6f}"
            + (
                ""
                if tau_star is None or abs(tau_pf - tau_star) < 1e-4
                else " (differs from tau*: subcritical pitchfork, free-riding RQE end in a fold)"
            )
        )
    if tau_star is not None and np.isfinite(tau_star):  # resolve the branches closing in on tau*
        dt = taus[1] - taus[0]
        extra = np.append(tau_star - dt * 0.5 ** np.arange(1, 13), tau_star + 1e-6)
        rows = sorted(rows + sweep(payoffs, extra[extra > 0], args.eps), key=lambda r: r[0])
    title = f"RQE of the coordination game (cost={args.cost}, eps={args.eps})"
    print(f"wrote {plot_bifurcation(rows, tau_star, args.out, title=title)}")
    return 0


def add_parser(subparsers) -> None:
    """Register ``rqe bifurcation``."""
    p = subparsers.add_parser(
        "bifurcation",
        help="all RQE of the SRPO coordination game vs risk aversion tau (plot + threshold)",
        description="How the set of RQE of the coordination game changes with risk aversion tau "
        "(the SRPO paper's pitchfork): a table, the threshold tau*, and a plot (docs/rqe.md).",
    )
    p.add_argument("--cost", type=float, default=0.5, help="private cost of collaborating, in (0, 1) (default: 0.5)")
    p.add_argument(
        "--eps", type=float, default=0.2, help="bounded rationality (entropy weight) of both players (default: 0.2)"
    )
    p.add_argument("--tau-max", type=float, default=2.0, help="largest tau on the grid (default: 2.0)")
    p.add_argument("--points", type=int, default=81, help="number of tau grid points from 0 (default: 81)")
    p.add_argument("--out", default="bifurcation.png", help="where to save the plot (default: bifurcation.png)")
    p.set_defaults(func=_run, _prog=p.prog)
