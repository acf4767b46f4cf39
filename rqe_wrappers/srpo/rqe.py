"""Exact risk-averse quantal response equilibria (RQE) of 2-player normal-form games.

RQE (Mazumdar et al. 2024, Definition 5): player ``i`` maximises over its mixed strategy ``pi_i``

    V_i(pi_i; pi_-i) = -(1/tau_i) log E_{b ~ pi_-i} exp(-tau_i u_i(pi_i, b)) + eps_i H(pi_i)
                     = min_q  E_q[u_i(pi_i, .)] + (1/tau_i) KL(q || pi_-i)  + eps_i H(pi_i),

with ``u_i(pi_i, b) = sum_a pi_i(a) u_i(a, b)``; ``tau_i = 0`` is the limit (expected utility,
i.e. a logit QRE with temperature ``eps_i``). ``V_i`` is strictly concave, so the best response is
unique; it is characterised by the stationarity condition

    pi_i = softmax(U_i q_i / eps_i),   q_i = softmax(log pi_-i - tau_i U_i^T pi_i)   (the "shadow"),

which this module solves by Newton's method in logit coordinates with a backtracking line search
on ``V_i`` (log-sum-exp throughout, so probabilities of 1e-300 are fine). An RQE is a joint fixed
point; :func:`solve_rqe` finds all of them for 2x2 games (see its docstring for the method).

``payoffs`` has shape ``(n0, n1, 2)``: ``payoffs[a0, a1] = (u_0, u_1)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize_scalar, root
from scipy.special import entr, expit, log_softmax, logsumexp

from rqe_wrappers.core.checks import payoffs as check_payoffs
from rqe_wrappers.errors import ConfigError

__all__ = ["RQE", "best_response", "fixed_point_residual", "rqe_objective", "solve_rqe"]

VERIFY_TOL = 1e-9  # max |BR_i(pi_-i) - pi_i| for a candidate to count as an equilibrium


@dataclass(frozen=True, eq=False)
class RQE:
    """One equilibrium: the players' mixed strategies and the fixed-point residual.

    ``residual = max_i max_a |BR_i(pi_-i)(a) - pi_i(a)|`` (computed by :func:`best_response`).
    """

    pi0: np.ndarray
    pi1: np.ndarray
    residual: float

    @property
    def strategies(self) -> tuple[np.ndarray, np.ndarray]:
        return self.pi0, self.pi1


# ---------------------------------------------------------------- validation


def _pair(value, name: str, *, positive: bool) -> tuple[float, float]:
    vals = [value, value] if np.ndim(value) == 0 else list(np.ravel(np.asarray(value, dtype=object)))
    if len(vals) != 2:
        raise ConfigError(f"{name} must be a number or a pair (one per player), got {value!r}")
    out = []
    for v in vals:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, got {v!r}") from None
        if math.isnan(f) or math.isinf(f):
            raise ConfigError(f"{name} must be finite, got {f}")
        if positive and f <= 0:
            raise ConfigError(f"{name} must be > 0 (the entropy weight of bounded rationality), got {f}")
        if not positive and f < 0:
            raise ConfigError(f"{name} must be >= 0 (0 = risk neutral), got {f}")
        out.append(f)
    return out[0], out[1]


def utility_matrix(p: np.ndarray, player: int) -> np.ndarray:
    """``U[a, b]`` = payoff of ``player`` playing ``a`` against the opponent's ``b``."""
    return p[:, :, 0] if player == 0 else p[:, :, 1].T


def check_strategy(s, n: int, name: str) -> np.ndarray:
    """``s`` as a probability vector over ``n`` actions (normalised), or :class:`ConfigError` naming ``name``."""
    try:
        s = np.asarray(s, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a probability vector") from None
    if s.shape != (n,):
        raise ConfigError(f"{name} must have shape ({n},), got {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0) or abs(s.sum() - 1.0) > 1e-8:
        raise ConfigError(f"{name} must be non-negative and sum to 1, got {s}")
    return s / s.sum()


def check_player(player) -> int:
    """``0`` or ``1``, or :class:`ConfigError`."""
    if player not in (0, 1):
        raise ConfigError(f"player must be 0 or 1, got {player!r}")
    return int(player)


# ---------------------------------------------------------------- one player's problem


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log(m: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(m)


def _shadow(U: np.ndarray, pi: np.ndarray, logm: np.ndarray, tau: float) -> np.ndarray:
    """The worst-case opponent distribution ``q`` (argmin of the KL-penalised expectation)."""
    if tau == 0.0:
        return np.exp(logm)
    return _softmax(logm - tau * (U.T @ pi))


def _value(U: np.ndarray, pi: np.ndarray, m: np.ndarray, logm: np.ndarray, tau: float, eps: float) -> float:
    v = U.T @ pi
    if tau * (np.ptp(v) + 1e-300) < 1e-6:  # second-order expansion: no cancellation for tiny tau
        mean = float(m @ v)
        risk = mean - 0.5 * tau * float(m @ (v - mean) ** 2)
    else:
        risk = -float(logsumexp(logm - tau * v)) / tau
    return risk + eps * float(entr(pi).sum())


def _br_logits(U: np.ndarray, m: np.ndarray, tau: float, eps: float, max_iter: int = 200) -> np.ndarray:
    """Log-probabilities of the unique best response to ``m`` (Newton in logit space)."""
    logm = _log(m)
    z = U @ m / eps  # exact for tau = 0, a good start otherwise
    if tau == 0.0:
        return log_softmax(z)
    n = len(z)
    fprev = np.inf
    for _ in range(max_iter):
        z = z - z.max()
        pi = _softmax(z)
        q = _shadow(U, pi, logm, tau)
        t = U @ q / eps
        F = z - t
        F -= F.mean()
        err = float(np.max(np.abs(F)))
        scale = max(1.0, float(np.max(np.abs(z))), float(np.max(np.abs(t))))
        if err <= 1e-13 * scale or (err <= 1e-7 * scale and err > 0.5 * fprev):
            return log_softmax(z)  # converged, or stalled at round-off
        fprev = err
        C = np.diag(q) - np.outer(q, q)
        B = np.diag(pi) - np.outer(pi, pi)
        J = np.eye(n) + (tau / eps) * (U @ C @ U.T) @ B  # I + (PSD)(PSD): eigenvalues >= 1
        d = np.linalg.solve(J, -F)
        slope = -eps * float(F @ (B @ d))  # directional derivative of V along d (>= 0)
        f0 = _value(U, pi, m, logm, tau, eps)
        step = 1.0
        while step > 1e-12:
            if _value(U, _softmax(z + step * d), m, logm, tau, eps) >= f0 + 1e-4 * step * slope - 1e-14 * (1 + abs(f0)):
                break
            step *= 0.5
        z = z + step * d
    raise RuntimeError("best response did not converge; please report the game and parameters")


def _br(p: np.ndarray, player: int, m: np.ndarray, tau: float, eps: float) -> np.ndarray:
    return np.exp(_br_logits(utility_matrix(p, player), m, tau, eps))


def best_response(payoffs, player: int, opponent_strategy, tau: float, eps: float) -> np.ndarray:
    """The unique maximiser of ``player``'s RQE objective against ``opponent_strategy``."""
    p = check_payoffs(payoffs)
    player = check_player(player)
    tau_ = _pair(tau, "tau", positive=False)[player]  # a pair: this player's entry
    eps_ = _pair(eps, "eps", positive=True)[player]
    m = check_strategy(opponent_strategy, p.shape[1 - player], "opponent_strategy")
    return _br(p, player, m, tau_, eps_)


def rqe_objective(payoffs, player: int, strategy, opponent_strategy, tau: float, eps: float) -> float:
    """``V_i(strategy; opponent_strategy)``, the objective that :func:`best_response` maximises."""
    p = check_payoffs(payoffs)
    player = check_player(player)
    tau_ = _pair(tau, "tau", positive=False)[player]  # a pair: this player's entry
    eps_ = _pair(eps, "eps", positive=True)[player]
    pi = check_strategy(strategy, p.shape[player], "strategy")
    m = check_strategy(opponent_strategy, p.shape[1 - player], "opponent_strategy")
    return _value(utility_matrix(p, player), pi, m, _log(m), tau_, eps_)


def _residual(p, pi0, pi1, taus, epss) -> float:
    r0 = np.max(np.abs(_br(p, 0, pi1, taus[0], epss[0]) - pi0))
    r1 = np.max(np.abs(_br(p, 1, pi0, taus[1], epss[1]) - pi1))
    return float(max(r0, r1))


def fixed_point_residual(payoffs, pi0, pi1, tau, eps) -> float:
    """``max_i max_a |BR_i(pi_-i)(a) - pi_i(a)|``: 0 exactly at an RQE."""
    p = check_payoffs(payoffs)
    taus, epss = _pair(tau, "tau", positive=False), _pair(eps, "eps", positive=True)
    pi0 = check_strategy(pi0, p.shape[0], "pi0")
    pi1 = check_strategy(pi1, p.shape[1], "pi1")
    return _residual(p, pi0, pi1, taus, epss)


# ---------------------------------------------------------------- 2x2: one-dimensional reduction


def _binary_br_logit(U: np.ndarray, m: np.ndarray, tau: float, eps: float) -> np.ndarray:
    """Vectorised best response of a 2-action player: logit of P(action 1) for each row of ``m``.

    Stationarity is ``F(z) = z - q(z).d / eps = 0`` with ``d = U[1] - U[0]``; ``F' >= 1``, and the
    root lies in ``[-max|d|/eps, max|d|/eps]``: safeguarded Newton on that bracket.
    """
    d = U[1] - U[0]
    logm = _log(m)
    if tau == 0.0:
        return (m @ d) / eps
    bound = np.max(np.abs(d)) / eps + 1.0
    z = (m @ d) / eps
    lo, hi = np.full(len(m), -bound), np.full(len(m), bound)
    fprev = np.full(len(m), np.inf)
    act = np.arange(len(m))  # rows still iterating; each row's result is independent of the batch
    for _ in range(300):
        za, la = z[act], logm[act]
        p, p1 = expit(za), expit(-za)
        q = _softmax(la - tau * (U[0][None, :] + p[:, None] * d[None, :]), axis=1)
        qd = q @ d
        F = za - qd / eps
        lo[act] = np.where(F < 0, za, lo[act])
        hi[act] = np.where(F > 0, za, hi[act])
        step = F / (1.0 + (tau / eps) * (q @ d**2 - qd**2) * p * p1)
        zn = za - step
        # Newton, or bisection where Newton leaves the bracket or |F| fell by less than half
        bisect = (zn <= lo[act]) | (zn >= hi[act]) | ~np.isfinite(zn) | (np.abs(F) > 0.5 * fprev[act])
        fprev[act] = np.abs(F)
        scale = np.maximum(1.0, np.abs(za))
        done = (F == 0) | ((np.abs(step) <= 1e-14 * scale) & ~bisect) | (hi[act] - lo[act] <= 1e-15 * scale)
        z[act] = np.where(done, za, np.where(bisect, 0.5 * (lo[act] + hi[act]), zn))
        act = act[~done]
        if len(act) == 0:
            return z
    raise RuntimeError("best response of a 2-action player did not converge; please report the game")


def _two(z: np.ndarray) -> np.ndarray:
    """Logit of P(action 1) -> (P(action 0), P(action 1)), accurate in both tails."""
    z = np.atleast_1d(z)
    return np.stack([expit(-z), expit(z)], axis=-1)


def _bracketed_root(f, a: float, b: float) -> float:
    fa, fb = f(a), f(b)
    if fa == 0.0 or fb == 0.0:
        return a if fa == 0.0 else b
    return brentq(f, a, b, xtol=1e-15, rtol=1e-15, maxiter=200)


def _solve_2x2(p: np.ndarray, taus, epss, grid: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Candidate RQE from the roots of g(z0) = BR0(BR1(z0)) - z0 (z0 = logit P(player 0 plays 1))."""
    U0, U1 = utility_matrix(p, 0), utility_matrix(p, 1)

    def g(z0):
        z1 = _binary_br_logit(U1, _two(z0), taus[1], epss[1])
        return _binary_br_logit(U0, _two(z1), taus[0], epss[0]) - z0

    def g1(z0: float) -> float:
        return float(g(np.array([z0]))[0])

    bound = np.max(np.abs(U0[1] - U0[0])) / epss[0] + 1.0
    xs = np.linspace(0.0, 1.0, grid + 2)[1:-1]
    zs = np.unique(np.concatenate([np.linspace(-bound, bound, grid), np.log(xs) - np.log1p(-xs)]))
    zs = zs[(zs >= -bound) & (zs <= bound)]
    gs = g(zs)
    roots = list(zs[gs == 0.0])
    sg = np.sign(gs)
    for i in np.nonzero(sg[:-1] * sg[1:] < 0)[0]:
        # an odd number of roots in this cell: look for 3, 5, ... on a sub-grid before brentq
        sub = np.linspace(zs[i], zs[i + 1], 65)
        gsub = np.concatenate([[gs[i]], g(sub[1:-1]), [gs[i + 1]]])
        roots += list(sub[gsub == 0.0])
        for j in np.nonzero(np.sign(gsub[:-1]) * np.sign(gsub[1:]) < 0)[0]:
            roots.append(_bracketed_root(g1, sub[j], sub[j + 1]))
    # tangencies / pairs of close roots inside one cell: local minima of |g| without a sign change
    a = np.abs(gs)
    same = (sg[:-2] == sg[1:-1]) & (sg[2:] == sg[1:-1]) & (sg[1:-1] != 0)
    for i in 1 + np.nonzero(same & (a[1:-1] <= a[:-2]) & (a[1:-1] <= a[2:]))[0]:
        s = sg[i]
        res = minimize_scalar(
            lambda z, s=s: s * g1(z), bounds=(zs[i - 1], zs[i + 1]), method="bounded", options={"xatol": 1e-14}
        )
        zm, gm = float(res.x), g1(float(res.x))
        if np.sign(gm) != s and gm != 0.0:  # the minimum crosses zero: two roots
            roots.append(_bracketed_root(g1, zs[i - 1], zm))
            roots.append(_bracketed_root(g1, zm, zs[i + 1]))
        elif abs(gm) < 1e-9:
            roots.append(zm)
    out = []
    for z0 in sorted(roots):
        z1 = _binary_br_logit(U1, _two(z0), taus[1], epss[1])[0]
        out.append((_two(z0)[0], _two(z1)[0]))
    return out


# ---------------------------------------------------------------- general games: multistart Newton


def _solve_general(p: np.ndarray, taus, epss, starts: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    n0, n1 = p.shape[:2]
    U = (utility_matrix(p, 0), utility_matrix(p, 1))

    def split(y):
        return np.append(y[: n0 - 1], 0.0), np.append(y[n0 - 1 :], 0.0)

    def G(y):  # stationarity of both players, in logits relative to the last action
        z = split(y)
        pis = (_softmax(z[0]), _softmax(z[1]))
        out = []
        for i in (0, 1):
            t = U[i] @ _shadow(U[i], pis[i], log_softmax(z[1 - i]), taus[i]) / epss[i]
            out.append(((z[i] - z[i][-1]) - (t - t[-1]))[:-1])
        return np.concatenate(out)

    # |logit differences| at any equilibrium are at most the payoff range over eps
    big = [max(float(np.ptp(U[i])) / epss[i], 3.0) for i in (0, 1)]
    rng = np.random.default_rng(seed)
    inits = [(np.zeros(n0), np.zeros(n1))]
    for scale in (3.0, None):  # near each pure profile: moderately, then as far as equilibria reach
        for a0 in range(n0):
            for a1 in range(n1):
                inits.append(((scale or big[0]) * np.eye(n0)[a0], (scale or big[1]) * np.eye(n1)[a1]))
    while len(inits) < starts:  # random mixed profiles
        inits.append((np.log(rng.dirichlet(np.ones(n0))), np.log(rng.dirichlet(np.ones(n1)))))
    out = []
    for z0, z1 in inits[:starts]:
        y0 = np.concatenate([(z0 - z0[-1])[:-1], (z1 - z1[-1])[:-1]])
        sol = root(G, y0, method="hybr", options={"xtol": 1e-14})
        if np.all(np.isfinite(sol.x)) and np.max(np.abs(G(sol.x))) < 1e-8:
            z0, z1 = split(sol.x)
            out.append((_softmax(z0), _softmax(z1)))
    return out


# ---------------------------------------------------------------- public solver


def solve_rqe(
    payoffs,
    tau,
    eps,
    *,
    method: str = "auto",
    grid: int = 2001,
    starts: int = 64,
    seed: int = 0,
    tol: float = VERIFY_TOL,
) -> list[RQE]:
    """All RQE of a 2-player normal-form game, sorted lexicographically by ``(pi0, pi1)``.

    ``tau`` (>= 0) and ``eps`` (> 0) are numbers or per-player pairs. ``method``: ``"scan"``
    (2x2 games only), ``"multistart"`` (any game), or ``"auto"`` (scan for 2x2, else multistart).

    Method, 2x2 games (complete): with ``z`` = logit of P(player 0 plays action 1), RQE are the roots
    of ``g(z) = BR0(BR1(z)) - z`` (best responses in logit form, solved exactly by a safeguarded
    Newton iteration). Every root lies in ``|z| <= max|u0(1,.) - u0(0,.)| / eps0``; ``g`` is scanned
    on ``grid`` points uniform in ``z`` plus ``grid`` points uniform in probability; each cell with a
    sign change is rescanned on 64 sub-points (to separate the 3 close roots near a pitchfork) and
    every sign change is refined with ``brentq``; each local minimum of ``|g|`` without a sign change
    is minimised to catch tangencies and pairs of roots inside one cell. Only roots closer together
    than the (sub-)grid spacing that leave no local minimum of ``|g|`` can be missed.

    Method, larger games (completeness NOT guaranteed): Powell's hybrid Newton method (``scipy``
    ``root``) on the joint stationarity equations from the uniform profile, from near every pure
    profile (moderate and extreme logits) and from random Dirichlet profiles (``starts`` in all,
    seeded by ``seed``). Newton also finds unstable equilibria, but more starts may find more.

    Every candidate is verified with :func:`best_response` (independent Newton solve): it is kept
    only if ``max |BR_i(pi_-i) - pi_i| <= tol``. Candidates closer than 1e-7 are merged.
    """
    p = check_payoffs(payoffs)
    taus = _pair(tau, "tau", positive=False)
    epss = _pair(eps, "eps", positive=True)
    if int(grid) < 10 or int(starts) < 1:
        raise ConfigError(f"grid must be >= 10 and starts >= 1, got grid={grid}, starts={starts}")
    if method not in ("auto", "scan", "multistart"):
        raise ConfigError(f"method must be 'auto', 'scan' or 'multistart', got {method!r}")
    if method == "scan" and p.shape[:2] != (2, 2):
        raise ConfigError(f"method='scan' needs a 2x2 game, got {p.shape[0]}x{p.shape[1]}; use 'multistart'")
    if method == "scan" or (method == "auto" and p.shape[:2] == (2, 2)):
        cands = _solve_2x2(p, taus, epss, int(grid))
    else:
        cands = _solve_general(p, taus, epss, int(starts), int(seed))
    found: list[RQE] = []
    for pi0, pi1 in cands:
        pi0, pi1 = pi0 / pi0.sum(), pi1 / pi1.sum()
        if any(max(np.max(np.abs(pi0 - e.pi0)), np.max(np.abs(pi1 - e.pi1))) < 1e-7 for e in found):
            continue
        r = _residual(p, pi0, pi1, taus, epss)
        if r <= tol:
            pi0.setflags(write=False)
            pi1.setflags(write=False)
            found.append(RQE(pi0, pi1, r))
    found.sort(key=lambda e: tuple(np.concatenate([e.pi0, e.pi1])))
    return found
