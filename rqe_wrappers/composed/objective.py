"""The composed objective, exact on the IPD: a risk-averse learner against nature's worst-case prior.

In scenario ``s`` the partner seat's reference is ``sigma_s`` (a population member; in the
self-play scenario ``c2`` the learner itself), and a shadow deviates from it at KL price ``1/tau``:

    V_tau(pi; sigma) = min_rho E_{pi,rho}[ G + (1/tau) sum_t KL(rho(.|h_t) || sigma(.|h_t)) ]

(:func:`rqe_wrappers.eval.exact.ipd_deviation`'s ``value``: ``tau = 0`` no deviation, ``tau -> inf``
the worst case in support). The learner maximises ``min_beta sum_s beta_s V_tau(pi; sigma_s) =
min_s V_tau(pi; sigma_s)``; the regret variant minimises ``max_s V*_tau(sigma_s) - V_tau(pi; sigma_s)``
with ``V*_tau(sigma) = max_pi V_tau(pi; sigma)`` (SRPO's risk-averse best response,
:func:`risk_averse_best_response`). Docs: docs/composed.md.

In the learner's sequence form (``x(h, a)``: the probability that its own moves lead to ``h`` and
``a``) ``V_tau`` is a minimum of functions linear in ``x``, hence concave, so the optimum over all
behavioural strategies is a convex programme (:func:`composed_optimum`), solved with SLSQP and
the supergradient ``dL/dx`` at the exact deviation (Danskin); nature's worst-case prior is the
programme's multipliers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from rqe_wrappers.core.checks import real
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.envs.ipd import (
    DEFAULT_ROUNDS,
    PAYOFFS,
    check_rounds,
    history_indices,
    history_observations,
    level_offset,
    n_histories,
    swap_perspective,
)
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.eval.exact import Deviation, ipd_deviation, softmin
from rqe_wrappers.partners.ipd import IPDTablePolicy

__all__ = [
    "OBJECTIVES",
    "ComposedSolution",
    "composed_optimum",
    "composed_value",
    "risk_averse_best_response",
    "scenario_values",
    "smoothed_table",
]

#: ``"utility"``: maximise the worst scenario's value; ``"regret"``: minimise the worst regret.
OBJECTIVES = ("utility", "regret")
SELF_PLAY = "c2"


def _finite_tau(tau: float) -> float:
    return real("tau", tau, low=0, hint="the shadow's KL price 1/tau: 0 = no deviation (finite here)")


def _members(population: Mapping[str, Policy]) -> dict[str, Policy]:
    if not isinstance(population, Mapping) or not population:
        raise ConfigError(f"population must be a non-empty {{name: Policy}} mapping, got {population!r}")
    return dict(population)


def smoothed_table(policy: Policy, s: float, rounds: int = DEFAULT_ROUNDS) -> IPDTablePolicy:
    """``(1 - s) * policy + s * uniform`` as a table: a deterministic member gets room to be deviated from."""
    s = real("s", s, low=0, high=1, hint="weight of the uniform policy")
    base = IPDTablePolicy.from_policy(policy, rounds)
    return IPDTablePolicy(
        (1.0 - s) * base.table + s / 2, rounds, name=f"smoothed({getattr(policy, 'name', '?')}, {s:g})"
    )


def scenario_values(
    agent: Policy,
    population: Mapping[str, Policy],
    tau: float,
    rounds: int = DEFAULT_ROUNDS,
    *,
    self_play: bool = False,
) -> dict[str, Deviation]:
    """The shadow's exact deviation in every scenario: ``{"c1:<member>": Deviation, ["c2": ...]}``.

    ``c1:<member>``: the member is the reference; ``c2`` (``self_play=True``): the agent itself is,
    as in plain SRPO (the agent's return, not the per-capita one: the shadow is no focal player).
    ``Deviation.value`` is ``V_tau(agent; reference)``.
    """
    out = {f"c1:{name}": ipd_deviation(agent, m, tau, rounds)[0] for name, m in _members(population).items()}
    if self_play:
        out[SELF_PLAY] = ipd_deviation(agent, agent, tau, rounds)[0]
    return out


def composed_value(
    agent: Policy,
    population: Mapping[str, Policy],
    tau: float,
    rounds: int = DEFAULT_ROUNDS,
    *,
    objective: str = "utility",
    self_play: bool = False,
) -> float:
    """The composed objective of ``agent``: ``min_s V_tau`` (utility) or ``max_s V*_tau - V_tau`` (regret).

    Nature's worst-case prior is a point mass on the worst scenario for a *given* agent (the
    objective is linear in beta). Regret in ``c2`` is measured against ``V*_tau`` of the agent itself
    as the reference (the risk-averse best response to it).
    """
    _check_objective(objective)
    values = scenario_values(agent, population, tau, rounds, self_play=self_play)
    if objective == "utility":
        return min(d.value for d in values.values())
    refs = {f"c1:{n}": m for n, m in _members(population).items()} | ({SELF_PLAY: agent} if self_play else {})
    return max(risk_averse_best_response(refs[s], tau, rounds)[0] - d.value for s, d in values.items())


def _check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


# ---- the learner's risk-averse best response to one reference (backward induction) ----------------
def _learner_view(table: IPDTablePolicy, rounds: int) -> np.ndarray:
    """P(defect) of a partner table in every history as the *learner* indexes it."""
    return table.table[history_indices(swap_perspective(history_observations(rounds)))]


def _stage_max(qc: np.ndarray, qd: np.ndarray, ref: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise ``max_p softmin_b((1 - p) qc_b + p qd_b; ref, tau)`` over ``p = P(defect)``: ``(p, value)``.

    The soft-min of an affine function of ``p`` is concave in ``p``; its slope is ``E_w[qd - qc]``
    under the deviation ``w``, decreasing in ``p``: bisection (ties go to cooperation).
    """
    diff = qd - qc

    def slope(p: np.ndarray) -> np.ndarray:
        w = softmin(qc + p[:, None] * diff, ref, tau)[0]
        return (w * diff).sum(axis=1)

    lo, hi = np.zeros(len(qc)), np.ones(len(qc))
    at0, at1 = slope(lo), slope(hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        up = slope(mid) > 0
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    p = np.where(at0 <= 1e-12, 0.0, np.where(at1 >= 0, 1.0, (lo + hi) / 2))
    return p, softmin(qc + p[:, None] * diff, ref, tau)[1]


def risk_averse_best_response(
    reference: Policy, tau: float, rounds: int = DEFAULT_ROUNDS
) -> tuple[float, IPDTablePolicy]:
    """``(V*_tau(reference), the learner's table)``: SRPO's best response to a fixed partner, exactly.

    Both players see the whole history, so the game after ``h`` does not depend on how ``h`` was
    reached: backward induction, at every history the concave stage problem ``max_p min_q`` of
    ``sum_ab p_a q_b [u(a, b) + W(h + ab)] + (1/tau) KL(q || reference(.|h))``.
    """
    rounds = check_rounds(rounds)
    t_ = _finite_tau(tau)
    ref_d = _learner_view(IPDTablePolicy.from_policy(reference, rounds), rounds)
    w = np.zeros(4**rounds)
    table = np.zeros(n_histories(rounds))
    for t in reversed(range(rounds)):
        sl = slice(level_offset(t), level_offset(t + 1))
        ref = np.stack([1.0 - ref_d[sl], ref_d[sl]], axis=1)
        q = PAYOFFS[None] + w.reshape(-1, 2, 2)  # [history, own move, partner's move]
        table[sl], w = _stage_max(q[:, 0], q[:, 1], ref, t_)
    return float(w[0]), IPDTablePolicy(table, rounds, name=f"risk-averse-br(tau={t_:g})")


# ---- the composed optimum (sequence form, SLSQP) -----------------------------------------------------
@dataclass(frozen=True)
class ComposedSolution:
    """The composed optimum at one ``tau``.

    ``value``: ``max_pi min_s V_tau`` (utility) or ``min_pi max_s regret``; ``policy``: an optimal
    behavioural strategy; ``values``: ``V_tau(policy; sigma_s)`` per scenario; ``prior``: nature's
    worst-case prior (the programme's multipliers, summing to 1); ``best_responses``: ``V*_tau`` per
    scenario (regret only).
    """

    tau: float
    objective: str
    value: float
    policy: IPDTablePolicy
    values: dict[str, float]
    prior: dict[str, float]
    best_responses: dict[str, float] | None


class _SequenceForm:
    """The learner's realisation plans ``x`` of a ``rounds``-round IPD: ``x[2 i + a]``, history ``i``, move ``a``."""

    def __init__(self, rounds: int):
        self.rounds = rounds
        n = n_histories(rounds)
        self.n = n
        self.a_eq = np.zeros((n, 2 * n))
        self.b_eq = np.zeros(n)
        self.b_eq[0] = 1.0
        self.parent = np.full(n, -1)  # x-index whose probability reaches history i
        for t in range(rounds):
            for j in range(4**t):
                i = level_offset(t) + j
                self.a_eq[i, 2 * i : 2 * i + 2] = 1.0
                if t:
                    self.parent[i] = 2 * (level_offset(t - 1) + j // 4) + (j % 4) // 2
                    self.a_eq[i, self.parent[i]] = -1.0
        self.perm = history_indices(swap_perspective(history_observations(rounds)))

    def reach(self, x: np.ndarray) -> np.ndarray:
        return np.where(self.parent < 0, 1.0, x[np.maximum(self.parent, 0)])

    def policy(self, x: np.ndarray) -> IPDTablePolicy:
        x = np.clip(x, 0.0, None).reshape(-1, 2)
        total = x.sum(axis=1)
        p = np.where(total > 1e-12, x[:, 1] / np.maximum(total, 1e-300), 0.5)
        return IPDTablePolicy(np.clip(p, 0.0, 1.0), self.rounds, name="composed")

    def uniform(self) -> np.ndarray:
        reach = np.concatenate([np.full(4**t, 0.5**t) for t in range(self.rounds)])
        return np.repeat(reach / 2, 2)

    def value_and_gradient(self, x: np.ndarray, member: Policy, tau: float) -> tuple[float, np.ndarray]:
        """``V_tau(x; member)`` (from :func:`ipd_deviation`) and ``dL/dx`` at the deviation it returns."""
        r = self.rounds
        dev, adversary = ipd_deviation(self.policy(x), member, tau, r)
        rho_d = adversary.table[self.perm]
        sig_d = IPDTablePolicy.from_policy(member, r).table[self.perm]
        rho = np.stack([1.0 - rho_d, rho_d], axis=1)
        sig = np.stack([1.0 - sig_d, sig_d], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(rho > 0, rho * (np.log(rho) - np.log(sig)), 0.0).sum(axis=1)
        bonus = kl / tau if tau > 0 else np.zeros_like(kl)
        y = np.ones(self.n)  # the partner's reach under the deviation
        grad = np.zeros((self.n, 2))
        for t in range(r):
            sl = slice(level_offset(t), level_offset(t + 1))
            grad[sl] = y[sl, None] * (rho[sl] @ PAYOFFS.T)  # sum_b rho(b|h) u(a, b), per own move a
            if t + 1 < r:
                nxt = slice(level_offset(t + 1), level_offset(t + 2))
                y[nxt] = (y[sl, None, None] * np.ones((1, 2, 1)) * rho[sl][:, None, :]).reshape(-1)
                grad[sl] += (y[nxt] * bonus[nxt]).reshape(-1, 2, 2).sum(axis=2)
        return dev.value, grad.reshape(-1)


def composed_optimum(
    population: Mapping[str, Policy],
    tau: float,
    rounds: int = DEFAULT_ROUNDS,
    *,
    objective: str = "utility",
    tol: float = 1e-10,
    max_iter: int = 500,
) -> ComposedSolution:
    """The learner's optimal behavioural strategy for the composed objective over ``c1:<member>`` scenarios.

    ``max_pi min_s V_tau(pi; sigma_s)`` (``objective="utility"``; ``tau = 0`` is minimax-Bayes'
    maximin utility) or ``min_pi max_s V*_tau(sigma_s) - V_tau(pi; sigma_s)`` (``"regret"``), ``tau``
    finite. The self-play scenario is left out: its reference is the learner itself, which makes the
    optimum a fixed point rather than a maximum (docs/composed.md).
    """
    _check_objective(objective)
    members = _members(population)
    rounds = check_rounds(rounds)
    t_ = _finite_tau(tau)
    ids = [f"c1:{n}" for n in members]
    refs = list(members.values())
    br = np.array([risk_averse_best_response(m, t_, rounds)[0] for m in refs]) if objective == "regret" else None
    sf = _SequenceForm(rounds)
    cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def evaluate(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = z.tobytes()
        if key not in cache:
            cache.clear()
            pairs = [sf.value_and_gradient(z[:-1], m, t_) for m in refs]
            cache[key] = (np.array([v for v, _ in pairs]), np.stack([g for _, g in pairs]))
        return cache[key]

    sign = 1.0 if br is None else -1.0  # utility: t <= V_s; regret: t >= br_s - V_s, i.e. V_s + t - br_s >= 0
    offset = np.zeros(len(refs)) if br is None else br

    def constraint(z: np.ndarray) -> np.ndarray:
        return evaluate(z)[0] - offset - sign * z[-1]

    def constraint_jac(z: np.ndarray) -> np.ndarray:
        return np.hstack([evaluate(z)[1], np.full((len(refs), 1), -sign)])

    z0 = np.append(sf.uniform(), 0.0)
    v0 = evaluate(z0)[0]
    z0[-1] = v0.min() if br is None else (br - v0).max()
    res = minimize(
        lambda z: -sign * z[-1],
        z0,
        jac=lambda z: np.append(np.zeros(len(z) - 1), -sign),
        method="SLSQP",
        bounds=[(0.0, 1.0)] * (len(z0) - 1) + [(None, None)],
        constraints=[
            {"type": "ineq", "fun": constraint, "jac": constraint_jac},
            {
                "type": "eq",
                "fun": lambda z: sf.a_eq @ z[:-1] - sf.b_eq,
                "jac": lambda z: np.hstack([sf.a_eq, np.zeros((sf.n, 1))]),
            },
        ],
        options={"ftol": tol, "maxiter": max_iter},
    )
    if not res.success:
        raise RuntimeError(f"composed_optimum: SLSQP did not converge at tau={t_:g}: {res.message}")
    policy = sf.policy(res.x[:-1])
    values = np.array([ipd_deviation(policy, m, t_, rounds)[0].value for m in refs])
    lam = np.clip(np.asarray(res.multipliers, dtype=np.float64)[sf.n : sf.n + len(refs)], 0.0, None)  # eq first
    prior = lam / lam.sum() if lam.sum() > 0 else np.full(len(refs), math.nan)
    value = float(values.min()) if br is None else float((br - values).max())
    return ComposedSolution(
        tau=t_,
        objective=objective,
        value=value,
        policy=policy,
        values=dict(zip(ids, values.tolist(), strict=True)),
        prior=dict(zip(ids, prior.tolist(), strict=True)),
        best_responses=None if br is None else dict(zip(ids, br.tolist(), strict=True)),
    )
