"""The robustness audit's exact solvers against brute force, its limits, results and plot."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import softmax

from rqe_wrappers.envs.ipd import history_observations, ipd_env, swap_perspective
from rqe_wrappers.envs.matrix import coordination_game, coordination_payoffs
from rqe_wrappers.errors import ConfigError, SeatError
from rqe_wrappers.eval.exact import ipd_deviation, matrix_deviation, softmin
from rqe_wrappers.eval.robustness import (
    DEFAULT_TAUS,
    RobustnessReport,
    audit_agent,
    robust_return,
    robustness_audit,
)
from rqe_wrappers.partners.ipd import IPDTablePolicy, expected_return, make_partner
from rqe_wrappers.srpo.rqe import _shadow

TAUS = (0.05, 0.7, 3.0, 20.0)


def _kl(p, m):
    p, m = np.asarray(p), np.asarray(m)
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / m[nz])))


# ---------------------------------------------------------------- one step: the closed form


@pytest.mark.parametrize("n", [2, 3, 5])
def test_softmin_is_the_rqe_shadow_and_its_value(n):
    rng = np.random.default_rng(n)
    U, pi, m = rng.normal(size=(4, n)), rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(n))
    q = U.T @ pi
    for tau in (1e-9, 0.3, 4.0, 300.0):
        p, value, kl = softmin(q[None], m[None], tau)
        np.testing.assert_allclose(p[0], _shadow(U, pi, np.log(m), tau), atol=1e-12)
        mean = m @ q
        exact = mean - tau * (m @ (q - mean) ** 2) / 2 if tau < 1e-6 else -np.log(m @ np.exp(-tau * q)) / tau
        assert value[0] == pytest.approx(exact, rel=1e-9, abs=1e-12)
        assert kl[0] == pytest.approx(_kl(p[0], m), rel=1e-6, abs=1e-15)
        assert value[0] == pytest.approx(p[0] @ q + kl[0] / tau, rel=1e-9)


@pytest.mark.parametrize("shape", [(2, 2), (3, 3), (2, 3)])
@pytest.mark.parametrize("player", [0, 1])
def test_matrix_deviation_matches_a_brute_force_search(shape, player):
    rng = np.random.default_rng(10 * shape[0] + shape[1] + player)
    payoffs = rng.normal(size=(*shape, 2))
    pi = rng.dirichlet(np.ones(shape[player]))
    m = rng.dirichlet(np.ones(shape[1 - player]))
    U = payoffs[:, :, 0] if player == 0 else payoffs[:, :, 1].T
    q = U.T @ pi
    for tau in TAUS:
        dev, p = matrix_deviation(payoffs, player, pi, m, tau)

        def objective(z, tau=tau):
            pz = softmax(np.append(z, 0.0))
            return pz @ q + _kl(pz, m) / tau

        best = min(
            (
                minimize(objective, z0, method="BFGS", options={"gtol": 1e-10})
                for z0 in rng.normal(size=(4, len(m) - 1))
            ),
            key=lambda r: r.fun,
        )
        assert dev.value == pytest.approx(best.fun, abs=1e-8)
        np.testing.assert_allclose(p, softmax(np.append(best.x, 0.0)), atol=1e-4)
        assert dev.agent_return == pytest.approx(p @ q, abs=1e-12)


def test_matrix_limits_on_the_coordination_game():
    payoffs = coordination_payoffs(0.5)
    pi, m = np.array([0.3, 0.7]), np.array([0.4, 0.6])  # P(free-ride), P(collaborate)
    nominal = float(pi @ payoffs[:, :, 0] @ m)
    assert matrix_deviation(payoffs, 0, pi, m, 0.0)[0].agent_return == pytest.approx(nominal, abs=1e-15)
    assert matrix_deviation(payoffs, 0, pi, m, 1e-10)[0].agent_return == pytest.approx(nominal, abs=1e-9)
    worst, p = matrix_deviation(payoffs, 0, pi, m, math.inf)  # the partner free-rides for sure
    assert worst.agent_return == pytest.approx(0.7 * 0.5, abs=1e-15) and p.tolist() == [1.0, 0.0]
    assert worst.kl == pytest.approx(-math.log(0.4))
    assert matrix_deviation(payoffs, 0, pi, m, 1e4)[0].agent_return == pytest.approx(worst.agent_return, abs=1e-9)
    # a deterministic reference cannot deviate at all; its support is one action
    pinned = matrix_deviation(payoffs, 0, pi, [0.0, 1.0], math.inf)[0]
    assert pinned.agent_return == pytest.approx(0.3 + 0.7 * 0.5) and pinned.kl == 0.0


# ---------------------------------------------------------------- the IPD: soft-min backward recursion


def _table(rng, rounds, low=0.05, high=0.95):
    return IPDTablePolicy(rng.uniform(low, high, (4**rounds - 1) // 3), rounds)


def _brute_force_objective(agent, reference, deviation_p, rounds, tau):
    """``E[return] + (1/tau) E[sum_t KL]`` by enumerating every trajectory (independent of the recursion)."""
    a_tab, m_tab = agent.table, reference.table

    def index(history, perspective):  # history of (agent's, partner's) moves, index from one side
        i = 0
        for a, b in history:
            own, other = (a, b) if perspective == 0 else (b, a)
            i = 4 * i + 2 * own + other + 1
        return i

    total = 0.0
    for joint in itertools.product(range(4), repeat=rounds):
        moves = [(j // 2, j % 2) for j in joint]
        prob, ret, kl = 1.0, 0.0, 0.0
        for t, (a, b) in enumerate(moves):
            h = moves[:t]
            pa = a_tab[index(h, 0)]
            pd, md = deviation_p[index(h, 1)], m_tab[index(h, 1)]
            prob *= (pa if a else 1 - pa) * (pd if b else 1 - pd)
            ret += [[4, 0], [5, 1]][a][b]
            kl += _kl([1 - pd, pd], [1 - md, md])
        total += prob * (ret + kl / tau)
    return total


@pytest.mark.parametrize("rounds", [1, 2])
def test_ipd_deviation_matches_a_brute_force_search(rounds):
    rng = np.random.default_rng(rounds)
    agent, reference = _table(rng, rounds), _table(rng, rounds)
    n = len(reference.table)
    for tau in TAUS:
        dev, table = ipd_deviation(agent, reference, tau, rounds)
        if rounds == 1:  # a grid over the one defect probability (in logits), refined around its best point

            def on_grid(zs, tau=tau):
                return [_brute_force_objective(agent, reference, [1 / (1 + np.exp(-z))], 1, tau) for z in zs]

            coarse = np.linspace(-30, 30, 301)
            z0 = coarse[int(np.argmin(on_grid(coarse)))]
            best = min(on_grid(np.linspace(z0 - 0.2, z0 + 0.2, 1001)))
        else:  # scipy over the partner's deviation in all five histories (logits), several starts

            def objective(z, tau=tau):
                return _brute_force_objective(agent, reference, 1 / (1 + np.exp(-z)), rounds, tau)

            best = min(minimize(objective, z0, method="BFGS").fun for z0 in rng.normal(size=(2, n)))
        assert dev.value <= best + 1e-12  # no search beats the recursion, and it finds (nearly) the same
        assert dev.value == pytest.approx(best, abs=1e-7 if rounds == 1 else 2e-5)
        assert _brute_force_objective(agent, reference, table.table, rounds, tau) == pytest.approx(dev.value, abs=1e-10)
        assert expected_return(agent, table, rounds)[0] == pytest.approx(dev.agent_return, abs=1e-10)
        assert dev.value == pytest.approx(dev.agent_return + dev.kl / tau, rel=1e-10)


def test_ipd_limits_tau_zero_and_the_worst_deterministic_deviation_in_support():
    rounds = 2
    rng = np.random.default_rng(7)
    agent = _table(rng, rounds)
    m = rng.uniform(0.1, 0.9, 5)
    m[[1, 3]] = [0.0, 1.0]  # two histories where the reference is deterministic
    reference = IPDTablePolicy(m, rounds)
    zero = ipd_deviation(agent, reference, 0.0, rounds)[0]
    assert zero.agent_return == pytest.approx(expected_return(agent, reference, rounds)[0], abs=1e-12)
    assert zero.kl == 0.0
    # brute force over every deterministic deviation that stays in the reference's support
    options = [[0.0, 1.0] if 0 < p < 1 else [p] for p in m]
    worst = min(
        expected_return(agent, IPDTablePolicy(np.array(c), rounds), rounds)[0] for c in itertools.product(*options)
    )
    inf = ipd_deviation(agent, reference, math.inf, rounds)[0]
    assert inf.agent_return == pytest.approx(worst, abs=1e-12)
    assert ipd_deviation(agent, reference, 1e4, rounds)[0].agent_return == pytest.approx(worst, abs=1e-6)
    returns = [ipd_deviation(agent, reference, t, rounds)[0].agent_return for t in (0, 0.1, 1, 10, math.inf)]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(returns))  # more budget, lower return


def test_ipd_scripted_worst_cases():
    uniform = make_partner("ipd/random")
    # tit-for-tat loses round one at worst and then meets defection: 0 + 1 + 1
    inf = ipd_deviation(make_partner("ipd/tit-for-tat"), uniform, math.inf)[0]
    assert inf.agent_return == 2.0 and inf.kl == pytest.approx(3 * math.log(2))
    assert ipd_deviation(make_partner("ipd/always-cooperate"), uniform, math.inf)[0].agent_return == 0.0
    obs = history_observations(3)
    table = ipd_deviation(make_partner("ipd/always-cooperate"), uniform, 2.0)[1]
    assert np.all(table.action_probs(swap_perspective(obs))[:, 1] > 0.5)  # it leans to defection everywhere


# ---------------------------------------------------------------- the audit API and its results


def test_audit_ipd_report_rows_json_and_summary():
    report = robustness_audit(
        ipd_env,
        {"tft": "ipd/tit-for-tat", "allc": "ipd/always-cooperate"},
        "ipd/tit-for-tat",
        methods={"tft": "scripted", "allc": "scripted"},
        smoothing=0.1,
        taus=(*DEFAULT_TAUS, math.inf),
    )
    tft, allc = report.curves
    assert tft.solver == "exact" and tft.budget is None and tft.partner == "ipd/tit-for-tat"
    assert tft.returns[-1] == 2.0 and allc.returns[-1] == 0.0  # worst cases within the smoothed support
    assert tft.returns[0] == pytest.approx(
        expected_return(
            make_partner("ipd/tit-for-tat"),
            IPDTablePolicy(0.9 * IPDTablePolicy.from_policy(make_partner("ipd/tit-for-tat")).table + 0.05),
        )[0]
    )
    for c in report.curves:
        assert min(c.returns) <= c.summary <= c.nominal
    rows = report.rows()
    assert len(rows) == 2 * len((*DEFAULT_TAUS, math.inf)) and rows[0]["agent"] == "tft"
    data = json.loads(report.to_json())
    assert data["curves"][1]["taus"][-1] == "inf" and data["curves"][0]["summary"] == pytest.approx(tft.summary)
    assert report.summaries() == {"tft": tft.summary, "allc": allc.summary}


def test_deterministic_reference_is_flat_and_self_play_default():
    curve = audit_agent(ipd_env, "ipd/always-cooperate", "ipd/tit-for-tat", taus=(0.0, 1.0, math.inf))
    assert curve.returns == (12.0, 12.0, 12.0) and curve.kls == (0.0, 0.0, 0.0)
    selfplay = audit_agent(lambda: coordination_game(0.5), [0.5, 0.5], taus=(0.0, math.inf))
    assert selfplay.partner == "self" and selfplay.returns == (0.5, 0.25)


def test_robust_return_is_the_mean_over_log_tau():
    assert robust_return((0.0, 0.1, 1.0, 10.0), (9.0, 3.0, 1.0, 1.0)) == pytest.approx((2.0 + 1.0) / 2)
    assert robust_return((0.0, 2.0, math.inf), (5.0, 4.0, 0.0)) == 4.0
    with pytest.raises(ConfigError, match="at least one tau > 0"):
        robust_return((0.0,), (1.0,))


def test_bad_arguments_raise_typed_errors():
    env = lambda: coordination_game(0.5)  # noqa: E731
    with pytest.raises(ConfigError, match="solver must be"):
        audit_agent(env, [0.5, 0.5], solver="magic")
    with pytest.raises(ConfigError, match="smoothing"):
        audit_agent(env, [0.5, 0.5], smoothing=1.0)
    with pytest.raises(ConfigError, match="taus"):
        audit_agent(env, [0.5, 0.5], taus=(-1.0,))
    with pytest.raises(ConfigError, match="taus"):
        audit_agent(env, [0.5, 0.5], taus=(math.inf,), solver="trained")
    with pytest.raises(ConfigError, match="sum to 1"):
        audit_agent(env, [0.5, 0.6])
    with pytest.raises(SeatError, match="not a seat"):
        audit_agent(env, [0.5, 0.5], seat="player_7")
    with pytest.raises(ConfigError, match="function returning the env"):
        audit_agent(coordination_game(0.5), [0.5, 0.5], solver="trained")
    with pytest.raises(ConfigError, match="no reference for agent"):
        robustness_audit(env, {"a": [0.5, 0.5]}, {"b": [0.5, 0.5]})


def test_plot_robustness_draws_one_line_per_agent(tmp_path):
    from rqe_wrappers.plots import plot_robustness

    report = robustness_audit(
        lambda: coordination_game(0.5),
        {"nash": [0.5, 0.5], "collaborate": [0.1, 0.9], "free-ride": [0.9, 0.1]},
        [0.5, 0.5],
        methods={"nash": "nash", "collaborate": "fixed", "free-ride": "fixed"},
        taus=(*DEFAULT_TAUS, math.inf),
    )
    fig = plot_robustness(report.curves, tmp_path / "robustness")
    assert (tmp_path / "robustness.png").stat().st_size > 0 and (tmp_path / "robustness.svg").stat().st_size > 0
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 3
    assert len({line.get_color() for line in lines}) == 2  # coloured by method
    assert next(t.get_text() for t in ax.get_xticklabels()) == "0"
    assert fig.get_size_inches()[0] == pytest.approx(7.5)  # a few curves: the legend inside the axes
    with pytest.raises(ConfigError):
        plot_robustness([], tmp_path / "none")
    assert isinstance(report, RobustnessReport)
    many = robustness_audit(
        lambda: coordination_game(0.5), {f"p{k}": [k / 8, 1 - k / 8] for k in range(8)}, [0.5, 0.5], taus=(0.0, 1.0)
    )
    fig = plot_robustness(many.curves, tmp_path / "many")
    (ax,) = fig.axes
    fig.canvas.draw()
    legend, axes = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= axes.x1  # eight curves: the legend beside the axes, covering none of them
