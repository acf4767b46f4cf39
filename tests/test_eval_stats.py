"""Summaries with uncertainty (rqe_wrappers.eval.stats): IQM, stratified bootstrap, normalisation, free-riding."""

from __future__ import annotations

import numpy as np
import pytest

from rqe_wrappers.errors import ConfigError
from rqe_wrappers.eval import bootstrap_ci, crossplay, iqm, normalized, summarize_crossplay
from tests.test_eval_crossplay import COST, coordination_agents, coordination_with_costs


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.arange(1, 9)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert iqm([0, 0, 0, 100]) == pytest.approx(0.0)


def test_bootstrap_resamples_within_each_task():
    # one score per task: every stratified resample is the data itself, so the CI has no width
    assert bootstrap_ci([[1.0], [2.0], [6.0]], "mean", reps=200) == (3.0, 3.0)
    lo, hi = bootstrap_ci([np.arange(10.0), np.arange(10.0) + 5], "mean", reps=500, seed=1)
    assert lo < 7.0 < hi and hi - lo < 4.0
    assert bootstrap_ci([np.arange(10.0)], reps=300, seed=4) == bootstrap_ci([np.arange(10.0)], reps=300, seed=4)
    assert bootstrap_ci([np.arange(10.0)], reps=300, seed=4) != bootstrap_ci([np.arange(10.0)], reps=300, seed=5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"statistic": "median"}, "statistic must be one of"),
        ({"confidence": 1.0}, "confidence"),
        ({"reps": 0}, "reps"),
    ],
)
def test_bootstrap_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        bootstrap_ci([[1.0, 2.0]], **kwargs)
    with pytest.raises(ConfigError, match="at least one task"):
        bootstrap_ci([[]])


def test_normalized_scores():
    assert normalized(5.0, 10.0, 0.0) == pytest.approx(0.5)
    np.testing.assert_allclose(normalized([2.0, 3.0], [3.0, 3.0], 1.0), [0.5, 1.0])
    with pytest.raises(ConfigError, match="different from the baseline"):
        normalized(1.0, 2.0, 2.0)


def test_coordination_summary_is_exact():
    result = crossplay(coordination_agents(), coordination_with_costs, episodes=2, methods={"collab": "m"})
    s = summarize_crossplay(result, best_responses={"collab": 1.0, "free": 1 - COST}, reps=100)
    assert s["self_play"]["mean"] == pytest.approx(((1 - COST) + 0.0) / 2)
    assert s["cross_play"]["mean"] == pytest.approx(((1 - COST) + 1.0) / 2)
    assert s["cross_play"]["std"] == pytest.approx(COST / 2)  # two pairings, means 0.5 and 1
    assert s["worst_pairing"] == {"agent": "collab", "partner": "free", "value": pytest.approx(1 - COST)}
    assert s["per_agent"]["free"] == {"self_play": 0.0, "cross_play": 1.0, "worst": 0.0}
    # the free-rider pays nothing while its partner pays the cost: the checkerboard's signature
    assert s["free_riding"]["free"]["collab"] == pytest.approx(COST)
    assert s["free_riding"]["collab"]["free"] == pytest.approx(-COST)
    assert s["free_riding"]["collab"]["collab"] == pytest.approx(0.0)
    # normalised by the best response to each partner: collab with free 0.5/0.5, free with collab 1/1
    assert s["normalized"]["mean"] == pytest.approx(1.0)
    assert s["per_method"]["m"] == {"agents": ["collab"], "self_play": 1 - COST, "within": None, "across": 1 - COST}
    with pytest.raises(ConfigError, match=r"missing \['free'\]"):
        summarize_crossplay(result, best_responses={"collab": 1.0})
    with pytest.raises(ConfigError, match=r"missing \[\"baseline\['free'\]\"\]"):
        summarize_crossplay(result, best_responses={"collab": 1.0, "free": 1.0}, baseline={"collab": 0.0})
    with_random = summarize_crossplay(
        result, best_responses={"collab": 1.0, "free": 1.0}, baseline={"collab": 0.5, "free": 0.0}
    )
    # by partner: collab with free (0.5 - 0) / (1 - 0), free with collab (1 - 0.5) / (1 - 0.5)
    assert with_random["normalized"]["mean"] == pytest.approx((0.5 + 1.0) / 2)


def test_no_cost_no_free_riding_entry():
    from rqe_wrappers.envs.matrix import coordination_game

    result = crossplay(coordination_agents(), coordination_game, episodes=1)
    assert "free_riding" not in summarize_crossplay(result, reps=10)
