"""Exact KL-regularised worst-case partners against a frozen agent: normal-form games and the IPD.

The partner deviates from its reference ``m`` to the ``p`` minimising ``E_p[return of the agent] +
(1/tau) KL(p || m)`` (the RQE's adversary, ../docs/evaluation.md "Robustness audit"). One step is
the closed form ``p ∝ m exp(-tau q)`` (``q``: the agent's expected value of each partner action);
over a history tree it is a soft-min backward recursion with the KL charged at every history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from rqe_wrappers.core.checks import is_real, real
from rqe_wrappers.core.checks import payoffs as check_payoffs
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.envs.ipd import (
    DEFAULT_ROUNDS,
    DEFECT,
    PAYOFFS,
    check_rounds,
    history_indices,
    history_observations,
    swap_perspective,
)
from rqe_wrappers.partners.ipd import IPDTablePolicy
from rqe_wrappers.srpo.rqe import check_player, check_strategy, utility_matrix

__all__ = ["Deviation", "ipd_deviation", "matrix_deviation", "softmin"]

_TIE = 1e-12  # relative tolerance for "equally bad" partner actions at tau = inf


@dataclass(frozen=True)
class Deviation:
    """The partner's KL-regularised worst case at one ``tau``.

    ``agent_return``: the agent's expected return under the deviation; ``kl``: the KL the partner
    spends (summed over the histories it meets, in expectation); ``value = agent_return + kl / tau``,
    the minimum the partner reaches (``agent_return`` at ``tau = 0`` and ``tau = inf``).
    """

    tau: float
    agent_return: float
    kl: float
    value: float


def softmin(q: np.ndarray, ref: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise ``argmin_p p.q + (1/tau) KL(p || ref)``: ``(p, value, kl)`` for ``q, ref`` of shape ``(n, k)``.

    ``p = ref * exp(-tau q) / Z``, ``value = -(1/tau) log Z``; ``tau = 0``: ``p = ref``; ``tau = inf``:
    ``ref`` restricted to its worst supported actions (the limit of the closed form). Stable for tiny
    and huge ``tau`` (log1p / log-sum-exp).
    """
    q = np.asarray(q, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    support = ref > 0
    if tau == 0.0:
        p = ref.copy()
        return p, (p * q).sum(axis=1), np.zeros(len(q))
    if math.isinf(tau):
        qs = np.where(support, q, np.inf)
        low = qs.min(axis=1, keepdims=True)
        worst = support & (qs <= low + _TIE * np.maximum(1.0, np.abs(low)))
        p = np.where(worst, ref, 0.0)
        p /= p.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore"):
            kl = np.where(worst, p * (np.log(np.where(worst, p, 1.0)) - np.log(np.where(support, ref, 1.0))), 0.0)
        return p, low[:, 0], kl.sum(axis=1)
    mean = (ref * q).sum(axis=1, keepdims=True)
    d = np.where(support, q - mean, 0.0)
    small = tau * np.ptp(np.where(support, q, mean), axis=1) < 1.0
    with np.errstate(divide="ignore", over="ignore"):
        logref = np.log(ref)
        log_z = np.where(  # log sum_b ref_b exp(-tau d_b)
            small,
            np.log1p(np.clip((ref * np.expm1(-tau * d)).sum(axis=1), -1.0 + 1e-300, None)),
            logsumexp(np.where(support, logref - tau * d, -np.inf), axis=1),
        )
    log_ratio = np.where(support, -tau * d - log_z[:, None], 0.0)  # log p - log ref
    p = np.where(support, ref * np.exp(log_ratio), 0.0)
    return p, mean[:, 0] - log_z / tau, (p * log_ratio).sum(axis=1)


def _tau(tau: float) -> float:
    if is_real(tau) and math.isinf(tau) and tau > 0:
        return math.inf
    return real("tau", tau, low=0, hint="the partner's KL budget: 0 = no deviation, inf = worst case in support")


def matrix_deviation(
    payoffs: np.ndarray, player: int, strategy: np.ndarray, reference: np.ndarray, tau: float
) -> tuple[Deviation, np.ndarray]:
    """The worst KL-regularised deviation of ``player``'s opponent in a bimatrix game, and its strategy.

    ``payoffs[a0, a1] = (u_0, u_1)``; ``strategy``: the frozen agent's mixed strategy (``player``'s);
    ``reference``: the opponent's strategy it deviates from. Closed form ``p ∝ reference
    exp(-tau U^T strategy)`` (the RQE's shadow, :mod:`rqe_wrappers.srpo.rqe`).
    """
    p = check_payoffs(payoffs)
    i = check_player(player)
    pi = check_strategy(strategy, p.shape[i], "strategy")
    m = check_strategy(reference, p.shape[1 - i], "reference")
    t = _tau(tau)
    q = utility_matrix(p, i).T @ pi
    dev, value, kl = softmin(q[None], m[None], t)
    ret = float(dev[0] @ q)
    return Deviation(t, ret, float(kl[0]), float(value[0])), dev[0]


def ipd_deviation(
    agent: Policy, reference: Policy, tau: float, rounds: int = DEFAULT_ROUNDS
) -> tuple[Deviation, IPDTablePolicy]:
    """The partner's worst KL-regularised deviation from ``reference`` against ``agent`` in the IPD.

    Backward over the history tree (``h`` a history, ``a`` the agent's move, ``b`` the partner's):
    ``Q(h, b) = sum_a agent(a|h) [u(a, b) + W(h + ab)]``, ``W(h) = -(1/tau) log sum_b ref(b|h)
    exp(-tau Q(h, b))`` (``W = 0`` after the last round), and the deviation ``p(b|h) ∝ ref(b|h)
    exp(-tau Q(h, b))`` minimises ``E_p[return] + (1/tau) E_p[sum_t KL(p(.|h_t) || ref(.|h_t))]``.
    Returns the :class:`Deviation` and the deviating partner as a table (from its own perspective),
    so ``expected_return(agent, table)[0] == deviation.agent_return``.
    """
    rounds = check_rounds(rounds)
    t_ = _tau(tau)
    own = IPDTablePolicy.from_policy(agent, rounds, name="agent")
    ref = IPDTablePolicy.from_policy(reference, rounds, name="reference")
    w = r = k = np.zeros(4**rounds)  # value, agent's return, KL to go, after each history
    dev_by_level = []
    for t in reversed(range(rounds)):
        obs = history_observations(rounds, t)
        pa = own.action_probs(obs)
        pb = ref.action_probs(swap_perspective(obs))
        now = PAYOFFS[None] + w.reshape(-1, 2, 2)  # [history, agent's move, partner's move]
        q = np.einsum("ha,hab->hb", pa, now)
        p, w, kl = softmin(q, pb, t_)
        r = np.einsum("hb,ha,hab->h", p, pa, PAYOFFS[None] + r.reshape(-1, 2, 2))
        k = kl + np.einsum("hb,ha,hab->h", p, pa, k.reshape(-1, 2, 2))
        dev_by_level.append((obs, p[:, DEFECT]))
    table = np.zeros(len(own.table))
    for obs, p_defect in dev_by_level:
        table[history_indices(swap_perspective(obs))] = p_defect
    kl0 = float(k[0])
    value = float(r[0]) if kl0 == 0.0 or math.isinf(t_) else float(w[0])
    return Deviation(t_, float(r[0]), kl0, value), IPDTablePolicy(
        np.clip(table, 0.0, 1.0), rounds, name=f"adversary(tau={t_:g})"
    )
