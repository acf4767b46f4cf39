"""How the set of RQE changes with risk aversion tau (the SRPO paper's pitchfork, Fig. 1).

All RQE over a tau grid (:func:`sweep`), the threshold tau* above which only the symmetric RQE is
left, i.e. no free-riding (:func:`free_riding_threshold`), and where the symmetric RQE changes
stability (:func:`pitchfork_tau`). The command is ``rqe bifurcation`` (:mod:`rqe_wrappers.cli.srpo`),
the figure :func:`rqe_wrappers.plots.plot_bifurcation`; docs/rqe.md.
"""

from __future__ import annotations

import numpy as np

from rqe_wrappers._compat import moved_names
from rqe_wrappers.errors import ConfigError

__all__ = ["free_riding_threshold", "pitchfork_tau", "sweep"]


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

    def br(y: float) -> float:
        return best_response(payoffs, 0, [1 - y, y], tau, eps)[1]

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


__getattr__ = moved_names(__name__, {"add_parser": "rqe_wrappers.cli.srpo"})
