"""The trained robustness audit (PPO adversary) against the exact one, its seeding, and a Tag smoke run."""

from __future__ import annotations

import functools

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from rqe_wrappers.envs.ipd import ipd_env
from rqe_wrappers.envs.matrix import coordination_game
from rqe_wrappers.envs.tag import tag_env
from rqe_wrappers.eval.robustness import TrainedBudget, audit_agent

COORDINATION = functools.partial(coordination_game, 0.5)
# 2048 PPO steps per tau; 4000 evaluation episodes put the return's standard error near 0.008
BUDGET = TrainedBudget(
    timesteps=2048, eval_episodes=4000, n_copies=16, n_steps=4, batch_size=64, n_epochs=5, learning_rate=0.01
)


def test_trained_audit_lands_near_the_exact_one_on_the_coordination_game():
    taus = (0.0, 2.0, 16.0)
    exact = audit_agent(COORDINATION, [0.5, 0.5], taus=taus, solver="exact")
    trained = audit_agent(COORDINATION, [0.5, 0.5], taus=taus, solver="trained", budget=BUDGET)
    assert trained.solver == "trained" and trained.budget is not None
    assert trained.budget["timesteps"] == 2048 and trained.budget["seeds"] == (0,)
    # tolerance: ~3 standard errors of the evaluation plus what 2048 PPO steps leave unoptimised
    np.testing.assert_allclose(trained.returns, exact.returns, atol=0.03)
    np.testing.assert_allclose(trained.kls, exact.kls, atol=0.03)
    assert trained.kls[0] == 0.0 and all(s > 0 for s in trained.stderr)


def test_trained_audit_follows_the_soft_min_recursion_on_a_two_round_ipd():
    """The sequential case: history-dependent deviations, the KL charged at every step."""
    env = functools.partial(ipd_env, rounds=2)
    budget = TrainedBudget(
        timesteps=2048, eval_episodes=4000, n_copies=16, n_steps=8, batch_size=128, n_epochs=5, learning_rate=0.01
    )
    kwargs = dict(taus=(1.0,), smoothing=0.0)
    exact = audit_agent(env, "ipd/tit-for-tat", "ipd/random", solver="exact", **kwargs)
    trained = audit_agent(env, "ipd/tit-for-tat", "ipd/random", solver="trained", budget=budget, **kwargs)
    assert exact.returns[0] == pytest.approx(1.2142, abs=1e-4)  # pure defection would give 1.0, no deviation 4.5
    assert trained.returns[0] == pytest.approx(exact.returns[0], abs=0.05)  # stderr 0.012
    assert trained.kls[0] == pytest.approx(exact.kls[0], abs=0.06)


def test_trained_audit_is_deterministic_given_the_seed():
    budget = TrainedBudget(timesteps=64, eval_episodes=50, n_copies=4, n_steps=8, batch_size=32)
    runs = [audit_agent(COORDINATION, [0.3, 0.7], taus=(1.0,), solver="trained", budget=budget) for _ in range(2)]
    assert runs[0].returns == runs[1].returns and runs[0].kls == runs[1].kls


def test_tag_smoke_with_scripted_chasers():
    budget = TrainedBudget(timesteps=128, eval_episodes=4, n_copies=2, n_steps=32, batch_size=64)
    kwargs = dict(
        seat="adversary_0",
        partner_seat="adversary_1",
        others={"agent_0": "tag/evasive-runner"},
        taus=(0.0, 1.0),
        budget=budget,
    )
    env = functools.partial(tag_env, max_cycles=8)
    curve = audit_agent(env, "tag/greedy-chaser", "tag/greedy-chaser", smoothing=0.2, **kwargs)
    assert curve.solver == "trained" and curve.taus == (0.0, 1.0) and curve.kls[0] == 0.0
    assert np.all(np.isfinite(curve.returns)) and curve.kls[1] > 0
    # the scripted chaser is deterministic: the adversary starts at it and has no support to move into
    pinned = audit_agent(env, "tag/greedy-chaser", "tag/greedy-chaser", **kwargs)
    assert pinned.kls[1] < 1e-6 and pinned.returns[1] == pytest.approx(pinned.returns[0], abs=0.5)
