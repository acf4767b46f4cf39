"""The composed objective, exact on the IPD: hand-computable cases, limits and independent solvers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import linprog

from rqe_wrappers.composed.objective import (
    _SequenceForm,
    composed_optimum,
    composed_value,
    risk_averse_best_response,
    scenario_values,
    smoothed_table,
)
from rqe_wrappers.envs.ipd import PAYOFFS, n_histories
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.eval.exact import ipd_deviation
from rqe_wrappers.partners.ipd import IPDTablePolicy, best_response_value, expected_return, training_partners

R = 2  # 5 decision histories: fast, and sequential


def population(rounds: int = R, s: float = 0.1, names=None) -> dict[str, IPDTablePolicy]:
    parts = training_partners(rounds)
    return {n.split("/")[1]: smoothed_table(p, s, rounds) for n, p in parts.items() if names is None or n in names}


def plan(table: np.ndarray, sf: _SequenceForm) -> np.ndarray:
    """The realisation plan of a behavioural table (P(defect) per history)."""
    x = np.zeros(2 * sf.n)
    for i, p in enumerate(table):
        reach = 1.0 if sf.parent[i] < 0 else x[sf.parent[i]]
        x[2 * i : 2 * i + 2] = reach * (1 - p), reach * p
    return x


def lp_optimum(members: dict[str, IPDTablePolicy], rounds: int, regret: bool) -> float:
    """tau = 0 by an LP in the sequence form, built from expected_return on pure strategies (independent)."""
    sf = _SequenceForm(rounds)
    n = 2 * sf.n
    # the return is linear in x: least squares over every pure strategy's plan recovers its coefficients
    rows, rhs = [], [[] for _ in members]
    for pure in itertools.product((0.0, 1.0), repeat=sf.n):
        rows.append(plan(np.array(pure), sf))
        for k, m in enumerate(members.values()):
            rhs[k].append(expected_return(IPDTablePolicy(np.array(pure), rounds), m, rounds)[0])
    a = np.array(rows)
    coef = np.stack([np.linalg.lstsq(a, np.array(r), rcond=None)[0] for r in rhs])
    br = np.array([best_response_value(m, rounds) for m in members.values()])
    # variables [x, t]; utility: max t s.t. t <= coef x; regret: min t s.t. t >= br - coef x
    sign = -1.0 if not regret else 1.0
    c = np.append(np.zeros(n), sign)
    if regret:
        a_ub, b_ub = np.hstack([-coef, -np.ones((len(br), 1))]), -br
    else:
        a_ub, b_ub = np.hstack([-coef, np.ones((len(br), 1))]), np.zeros(len(br))
    res = linprog(
        c,
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=np.hstack([sf.a_eq, np.zeros((sf.n, 1))]),
        b_eq=sf.b_eq,
        bounds=[(0, 1)] * n + [(None, None)],
    )
    assert res.success
    return float(res.x[-1])


def test_one_round_hand_formula():
    """One round: defecting dominates, so the optimum defects and V = -(1/tau) log(s_C e^{-5 tau} + s_D e^{-tau})."""
    members = population(1)
    for tau in (0.5, 2.0):
        sol = composed_optimum(members, tau, 1)
        hand = min(
            -math.log((1 - m.table[0]) * math.exp(-5 * tau) + m.table[0] * math.exp(-tau)) / tau
            for m in members.values()
        )
        assert sol.value == pytest.approx(hand, abs=1e-7)
        assert sol.policy.table[0] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("objective", ["utility", "regret"])
def test_tau_zero_is_minimax_bayes_lp(objective):
    members = population()
    sol = composed_optimum(members, 0.0, R, objective=objective)
    assert sol.value == pytest.approx(lp_optimum(members, R, objective == "regret"), abs=1e-6)
    # and it is what composed_value says of the policy it returns
    assert composed_value(sol.policy, members, 0.0, R, objective=objective) == pytest.approx(sol.value, abs=1e-7)


@pytest.mark.parametrize("tau", [0.0, 0.5, 3.0])
def test_one_member_is_srpo_best_response_and_the_audit_value(tau):
    member = population(names=["ipd/tit-for-tat-d"])
    ((name, m),) = member.items()
    sol = composed_optimum(member, tau, R)
    value, br = risk_averse_best_response(m, tau, R)
    assert sol.value == pytest.approx(value, abs=1e-6)
    assert ipd_deviation(br, m, tau, R)[0].value == pytest.approx(value, abs=1e-9)  # the audit's value
    assert sol.values[f"c1:{name}"] == pytest.approx(value, abs=1e-6)


def test_risk_averse_best_response_at_tau_zero_is_the_best_response():
    for m in population(3).values():
        assert risk_averse_best_response(m, 0.0, 3)[0] == pytest.approx(best_response_value(m, 3), abs=1e-9)


def test_risk_averse_best_response_beats_every_pure_strategy():
    m = population(names=["ipd/random"])["random"]
    value = risk_averse_best_response(m, 1.0, R)[0]
    pure = [
        ipd_deviation(IPDTablePolicy(np.array(p), R), m, 1.0, R)[0].value
        for p in itertools.product((0.0, 1.0), repeat=n_histories(R))
    ]
    assert value >= max(pure) - 1e-9


@pytest.mark.parametrize("objective", ["utility", "regret"])
def test_optimum_beats_the_restricted_classes(objective):
    """Enumeration: every pure strategy and 10 random behavioural ones do no better than the optimum."""
    names = ["ipd/always-defect", "ipd/tit-for-tat", "ipd/tat-for-tit-d", "ipd/random"]
    members, tau = population(names=names), 1.0
    sol = composed_optimum(members, tau, R, objective=objective)
    rng = np.random.default_rng(0)
    tables = [np.array(p) for p in itertools.product((0.0, 1.0), repeat=n_histories(R))]
    tables += [rng.random(n_histories(R)) for _ in range(10)]
    br = {f"c1:{n}": risk_averse_best_response(m, tau, R)[0] for n, m in members.items()}
    for t in tables:
        values = scenario_values(IPDTablePolicy(t, R), members, tau, R)
        if objective == "utility":
            assert sol.value >= min(d.value for d in values.values()) - 1e-7
        else:
            assert sol.value <= max(br[s] - d.value for s, d in values.items()) + 1e-7


def test_nature_prior_sits_on_the_worst_scenarios():
    sol = composed_optimum(population(), 1.0, R, objective="regret")
    prior = np.array(list(sol.prior.values()))
    assert prior.sum() == pytest.approx(1.0, abs=1e-6) and (prior >= 0).all()
    regret = {s: sol.best_responses[s] - v for s, v in sol.values.items()}
    for s, b in sol.prior.items():
        if b > 1e-4:  # complementary slackness: only scenarios at the worst regret carry mass
            assert regret[s] == pytest.approx(sol.value, abs=1e-5)


def test_supergradient_bounds_the_value():
    """Concavity in the sequence form: V(x') <= V(x) + g.(x' - x) at the deviation's supergradient."""
    sf, rng = _SequenceForm(R), np.random.default_rng(1)
    m = population()["tit-for-tat"]
    for tau in (0.0, 0.5, 3.0):
        t0 = rng.random(sf.n)
        v, g = sf.value_and_gradient(plan(t0, sf), m, tau)
        assert v == pytest.approx(ipd_deviation(IPDTablePolicy(t0, R), m, tau, R)[0].value, abs=1e-12)
        for _ in range(20):
            t1 = rng.random(sf.n)
            v1 = ipd_deviation(IPDTablePolicy(t1, R), m, tau, R)[0].value
            assert v1 <= v + g @ (plan(t1, sf) - plan(t0, sf)) + 1e-9


def test_composed_value_is_the_worst_scenario_and_falls_with_tau():
    members = population()
    agent = IPDTablePolicy(np.full(n_histories(R), 0.3), R)
    values = scenario_values(agent, members, 0.7, R, self_play=True)
    assert set(values) == {f"c1:{n}" for n in members} | {"c2"}
    assert values["c2"].value == ipd_deviation(agent, agent, 0.7, R)[0].value  # the learner is c2's reference
    assert composed_value(agent, members, 0.7, R) == min(d.value for k, d in values.items() if k != "c2")
    at0 = composed_value(agent, members, 0.0, R)
    assert at0 == pytest.approx(min(expected_return(agent, m, R)[0] for m in members.values()), abs=1e-12)
    curve = [composed_value(agent, members, t, R) for t in (0.0, 0.3, 1.0, 3.0, 10.0)]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(curve))


def test_smoothed_table_mixes_uniform():
    table = smoothed_table(training_partners(R)["ipd/always-defect"], 0.2, R).table
    assert np.allclose(table, 0.9)
    assert PAYOFFS.shape == (2, 2)


def test_bad_arguments_raise_config_errors():
    members = population()
    with pytest.raises(ConfigError, match="population"):
        composed_optimum({}, 1.0, R)
    with pytest.raises(ConfigError, match="objective"):
        composed_optimum(members, 1.0, R, objective="minimax")
    with pytest.raises(ConfigError, match="tau"):
        composed_optimum(members, -1.0, R)
    with pytest.raises(ConfigError, match="tau"):
        composed_optimum(members, math.inf, R)
    with pytest.raises(ConfigError, match="s"):
        smoothed_table(training_partners(R)["ipd/random"], 1.5, R)
