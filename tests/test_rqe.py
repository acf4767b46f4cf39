"""Exact RQE solver: best responses, the 2x2 scan, multistart for larger games, the pitchfork."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy.optimize import fsolve
from scipy.special import expit, logsumexp

from rqe_wrappers.envs.matrix import coordination_payoffs
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.srpo.rqe import best_response, fixed_point_residual, solve_rqe

COORD = coordination_payoffs(0.5)
EPS = 0.2  # supercritical pitchfork at tau* ~ 0.7876 (docs/rqe.md)


def _kkt_residual(payoffs, pi0, pi1, tau, eps) -> float:
    """Stationarity written out independently: pi_i = softmax(U_i q_i / eps_i), q_i the KL shadow."""
    taus = tau if isinstance(tau, tuple) else (tau, tau)
    epss = eps if isinstance(eps, tuple) else (eps, eps)
    worst = 0.0
    for i, (me, opp) in enumerate([(pi0, pi1), (pi1, pi0)]):
        U = payoffs[:, :, 0] if i == 0 else payoffs[:, :, 1].T
        logits = np.log(opp) - taus[i] * (U.T @ me)
        q = np.exp(logits - logsumexp(logits))
        t = U @ q / epss[i]
        worst = max(worst, np.max(np.abs(np.exp(t - logsumexp(t)) - me)))
    return worst


def _is_symmetric(e) -> bool:
    return abs(e.pi0[1] - e.pi1[1]) < 1e-9


def test_coordination_three_rqe_below_threshold_one_above():
    below = solve_rqe(COORD, 0.3, EPS)
    assert len(below) == 3
    assert sum(_is_symmetric(e) for e in below) == 1
    free_riders = [e for e in below if not _is_symmetric(e)]
    for e in free_riders:  # one collaborates, the other mostly free-rides
        assert max(e.pi0[1], e.pi1[1]) > 0.75 and min(e.pi0[1], e.pi1[1]) < 0.25
    a, b = free_riders  # a mirror pair
    np.testing.assert_allclose(a.pi0, b.pi1, atol=1e-10)
    above = solve_rqe(COORD, 1.5, EPS)
    assert len(above) == 1 and _is_symmetric(above[0])


def test_symmetric_collaboration_increases_with_tau():
    probs = []
    for tau in [0.0, 0.4, 0.8, 1.5, 3.0, 6.0]:
        sym = [e for e in solve_rqe(COORD, tau, EPS) if _is_symmetric(e)]
        assert len(sym) == 1
        probs.append(sym[0].pi0[1])
    assert probs[0] == pytest.approx(0.5, abs=1e-12)  # tau = 0: the symmetric QRE is 1/2 exactly
    assert np.all(np.diff(probs) > 0)


@pytest.mark.parametrize(
    "payoffs, tau, eps",
    [
        (COORD, 0.0, EPS),
        (COORD, 0.5, EPS),
        (COORD, 3.0, 0.1),  # five RQE (subcritical regime)
        (COORD, 8.0, 0.05),  # near-pure free-riding RQE (probabilities ~1e-5)
        (np.random.default_rng(3).normal(size=(2, 2, 2)), (0.3, 4.0), (0.5, 0.07)),
    ],
)
def test_every_returned_rqe_is_a_fixed_point(payoffs, tau, eps):
    eqs = solve_rqe(payoffs, tau, eps)
    assert eqs
    for e in eqs:
        assert e.residual <= 1e-9
        assert fixed_point_residual(payoffs, e.pi0, e.pi1, tau, eps) <= 1e-9
        assert _kkt_residual(payoffs, e.pi0, e.pi1, tau, eps) <= 1e-9


def test_five_rqe_in_the_subcritical_regime_match_multistart():
    scan = solve_rqe(COORD, 3.0, 0.1)
    multi = solve_rqe(COORD, 3.0, 0.1, method="multistart", starts=64)
    assert len(scan) == len(multi) == 5
    for a, b in zip(scan, multi, strict=True):
        np.testing.assert_allclose(a.pi0, b.pi0, atol=1e-9)
        np.testing.assert_allclose(a.pi1, b.pi1, atol=1e-9)


@pytest.mark.parametrize("eps", [(0.2, 0.2), (0.15, 0.3)])
def test_tau_zero_is_the_logit_qre(eps):
    d0 = COORD[1, :, 0] - COORD[0, :, 0]  # player 0's gain from collaborating vs each a1
    d1 = COORD[:, 1, 1] - COORD[:, 0, 1]

    def qre(v):
        x, y = v
        return [x - expit(((1 - y) * d0[0] + y * d0[1]) / eps[0]), y - expit(((1 - x) * d1[0] + x * d1[1]) / eps[1])]

    expected = set()
    for start in [(0.9, 0.1), (0.5, 0.5), (0.1, 0.9), (0.7, 0.7), (0.3, 0.2)]:
        sol, _, ok, _ = fsolve(qre, start, full_output=True, xtol=1e-14)
        if ok == 1 and max(abs(np.array(qre(sol)))) < 1e-12:
            expected.add((round(sol[0], 8), round(sol[1], 8)))
    got = {(round(e.pi0[1], 8), round(e.pi1[1], 8)) for e in solve_rqe(COORD, 0.0, eps)}
    assert got == expected and len(got) >= 1


def _objective_grid(U, m, tau, eps, ps):
    """Player's RQE objective for P(action 1) = ps, written out independently of the module."""
    v = (1 - ps)[:, None] * U[0][None, :] + ps[:, None] * U[1][None, :]  # u(pi, b)
    if tau == 0:
        risk = v @ m
    else:
        risk = -logsumexp(-tau * v, b=m[None, :], axis=1) / tau
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.nan_to_num(ps * np.log(ps)) - np.nan_to_num((1 - ps) * np.log(1 - ps))
    return risk + eps * ent


@pytest.mark.parametrize("tau", [0.0, 0.7, 6.0])
@pytest.mark.parametrize("eps", [0.05, 0.5])
def test_best_response_matches_brute_force(tau, eps):
    rng = np.random.default_rng(int(10 * tau + 100 * eps))
    payoffs = rng.normal(size=(2, 3, 2))  # player 0 has 2 actions, the opponent 3
    m = rng.dirichlet(np.ones(3))
    br = best_response(payoffs, 0, m, tau, eps)
    ps = np.linspace(0.0, 1.0, 200_001)
    vals = _objective_grid(payoffs[:, :, 0], m, tau, eps, ps)
    assert abs(br[1] - ps[np.argmax(vals)]) <= 2e-5
    best = _objective_grid(payoffs[:, :, 0], m, tau, eps, np.array([br[1]]))[0]
    assert best >= vals.max() - 1e-12


def test_best_response_of_player_one_uses_its_own_payoffs():
    # player 1 collaborates more against a free-riding partner
    lazy = best_response(COORD, 1, [0.9, 0.1], 0.5, EPS)
    busy = best_response(COORD, 1, [0.1, 0.9], 0.5, EPS)
    assert lazy[1] > 0.5 > busy[1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tau": -0.1},
        {"tau": math.nan},
        {"eps": 0.0},
        {"eps": -1.0},
        {"payoffs": np.zeros((2, 2))},
        {"payoffs": np.zeros((2, 2, 3))},
    ],
    ids=["tau<0", "tau-nan", "eps=0", "eps<0", "payoffs-2d", "payoffs-last-dim-3"],
)
def test_bad_inputs_raise_config_error(kwargs):
    args = {"payoffs": COORD, "tau": 0.5, "eps": 0.2, **kwargs}
    with pytest.raises(ConfigError):
        solve_rqe(args["payoffs"], args["tau"], args["eps"])


def test_bad_strategy_raises_config_error():
    with pytest.raises(ConfigError):
        best_response(COORD, 0, [0.5, 0.6], 0.5, 0.2)
    with pytest.raises(ConfigError):
        best_response(COORD, 2, [0.5, 0.5], 0.5, 0.2)


def test_three_by_three_returns_verified_fixed_points():
    # three effort levels (0, 1, 2); team reward 1 if total effort >= 2; private cost 0.3 per level
    payoffs = np.zeros((3, 3, 2))
    for a in range(3):
        for b in range(3):
            team = 1.0 if a + b >= 2 else 0.0
            payoffs[a, b] = (team - 0.3 * a, team - 0.3 * b)
    for tau in (0.0, 2.0):
        eqs = solve_rqe(payoffs, tau, 0.1, starts=24)
        assert eqs
        for e in eqs:
            assert e.pi0.shape == e.pi1.shape == (3,)
            assert e.residual <= 1e-9
            assert _kkt_residual(payoffs, e.pi0, e.pi1, tau, 0.1) <= 1e-9
    # large eps: the logit QRE is unique
    assert len(solve_rqe(payoffs, 0.0, 5.0, starts=12)) == 1


def test_cli_threshold_is_the_pitchfork_and_plot_is_written(tmp_path, capsys):
    from rqe_wrappers.cli import main

    out = tmp_path / "b.png"
    assert main(["bifurcation", "--eps", "0.2", "--points", "3", "--tau-max", "1.0", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    text = capsys.readouterr().out
    t_star = float(re.search(r"tau\* = ([0-9.]+)", text).group(1))  # bisection on the RQE count
    t_pitch = float(re.search(r"stability at tau = ([0-9.]+)", text).group(1))  # slope of BR(BR(x)) = 1
    assert 0.78 < t_star < 0.80
    assert t_star == pytest.approx(t_pitch, abs=2e-6)  # supercritical: the free-riding RQE merge there
