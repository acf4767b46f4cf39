"""Nature's prior over scenarios: simplex invariants, update directions, uniform mixing, checkpoints, bad input."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rqe_wrappers import ConfigError
from rqe_wrappers.aht.nature import PRIORS, Nature, project_onto_simplex

LEARNED = ["maximin-utility", "minimax-regret"]
STEPS = ["projected", "exponentiated"]

finite = st.floats(allow_nan=False, allow_infinity=False)
moderate = st.floats(-1e3, 1e3, allow_nan=False)


def utility_runs(elements=finite, max_updates=8):
    """(n, [utilities per update])"""
    return st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(st.lists(elements, min_size=n, max_size=n), min_size=0, max_size=max_updates),
        )
    )


def assert_on_simplex(beta, n, floor=0.0):
    assert beta.shape == (n,)
    assert np.all(np.isfinite(beta))
    assert np.all(beta >= floor - 1e-12)
    assert beta.sum() == pytest.approx(1.0, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    run=utility_runs(),
    prior=st.sampled_from(PRIORS),
    step=st.sampled_from(STEPS),
    lr=st.floats(1e-3, 1e3),
    mix=st.floats(0.0, 0.99),
    with_br=st.booleans(),
)
def test_beta_stays_on_simplex_for_any_finite_utilities(run, prior, step, lr, mix, with_br):
    n, updates = run
    nature = Nature(
        n,
        prior,
        lr=lr,
        uniform_mix=mix,
        step=step,
        self_play_scenario=0 if prior == "self-play" else None,
        best_responses=np.full(n, 10.0) if with_br else None,
    )
    floor = mix / n if prior in LEARNED else 0.0
    assert_on_simplex(nature.beta, n, floor)
    for u in updates:
        before = nature.beta
        try:
            beta = nature.update(np.array(u))
        except ConfigError as err:  # only for utilities so large that lr * u overflows
            assert "overflow" in str(err)
            assert np.array_equal(nature.beta, before)  # a failed update changes nothing
            continue
        assert np.array_equal(beta, nature.beta)
        assert_on_simplex(beta, n, floor)
        assert_on_simplex(nature.raw_beta, n)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("prior", PRIORS)
def test_nan_and_inf_utilities_are_rejected_by_name(bad, prior):
    nature = Nature(4, prior, self_play_scenario=3)
    before = nature.state_dict()
    with pytest.raises(ConfigError, match=r"finite.*scenario 2"):
        nature.update(np.array([1.0, 2.0, bad, 3.0]))
    assert nature.state_dict() == before


@settings(max_examples=40, deadline=None)
@given(
    run=utility_runs(moderate),
    prior=st.sampled_from(LEARNED),
    step=st.sampled_from(STEPS),
    mix=st.floats(0.01, 0.99),
)
def test_uniform_mixing_keeps_every_scenario_at_least_mix_over_n(run, prior, step, mix):
    n, updates = run
    nature = Nature(n, prior, lr=100.0, uniform_mix=mix, step=step)  # big steps: raw beta reaches a vertex
    for u in updates:
        nature.update(np.array(u))
        assert nature.beta.min() >= mix / n - 1e-12
        assert np.allclose(nature.beta, (1 - mix) * nature.raw_beta + mix / n)


def test_uniform_mixing_reaches_the_floor():
    nature = Nature(4, "maximin-utility", lr=10.0, uniform_mix=0.2)
    nature.update(np.array([0.0, 5.0, 5.0, 5.0]))
    assert nature.raw_beta.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert nature.beta == pytest.approx([0.85, 0.05, 0.05, 0.05])


@settings(max_examples=40, deadline=None)
@given(
    u=st.lists(moderate, min_size=2, max_size=6).filter(lambda u: max(u) - min(u) > 1e-3),
    step=st.sampled_from(STEPS),
)
def test_maximin_utility_moves_mass_to_the_lowest_utility(u, step):
    u = np.array(u)
    nature = Nature(len(u), "maximin-utility", lr=0.01, uniform_mix=0.1, step=step)
    before = nature.beta
    after = nature.update(u)
    assert after[np.argmin(u)] > before[np.argmin(u)]
    assert after[np.argmax(u)] < before[np.argmax(u)]
    assert after[np.argmin(u)] >= after.max() - 1e-12


@settings(max_examples=40, deadline=None)
@given(
    br=st.lists(moderate, min_size=2, max_size=6),
    u=st.lists(moderate, min_size=6, max_size=6),
    step=st.sampled_from(STEPS),
)
def test_minimax_regret_moves_mass_to_the_highest_regret(br, u, step):
    br, u = np.array(br), np.array(u[: len(br)])
    regret = br - u
    if regret.max() - regret.min() <= 1e-3:
        return
    nature = Nature(len(br), "minimax-regret", lr=0.01, uniform_mix=0.1, best_responses=br, step=step)
    before = nature.beta
    after = nature.update(u)
    assert after[np.argmax(regret)] > before[np.argmax(regret)]
    assert after[np.argmin(regret)] < before[np.argmin(regret)]
    assert nature.regrets(u) == pytest.approx(regret)


def test_minimax_regret_without_best_responses_uses_best_utility_seen():
    nature = Nature(3, "minimax-regret", lr=0.1, uniform_mix=0.0)
    assert nature.update(np.array([5.0, 1.0, 2.0])) == pytest.approx([1 / 3] * 3)  # nothing seen: no regret
    assert nature.regrets(np.array([5.0, 0.0, 2.0])) == pytest.approx([0.0, 1.0, 0.0])
    after = nature.update(np.array([4.0, 0.0, 2.0]))  # regrets 1, 1, 0
    assert after[2] < after[0] == pytest.approx(after[1])
    state = nature.state_dict()
    assert state["best_seen"] == [5.0, 1.0, 2.0]


def test_maximin_utility_converges_to_the_worst_scenario():
    for step in STEPS:
        nature = Nature(3, "maximin-utility", lr=0.05, uniform_mix=0.0, step=step)
        for _ in range(500):
            nature.update(np.array([3.0, 1.0, 2.0]))
        assert nature.beta[1] > 0.99


def test_fixed_priors():
    uniform = Nature(4, "uniform", uniform_mix=0.3)
    fictitious = Nature(4, "fictitious-play")
    self_play = Nature(4, "self-play", self_play_scenario=2, uniform_mix=0.3)
    for nature in (uniform, fictitious, self_play):
        for _ in range(3):
            nature.update(np.array([0.0, 1.0, 2.0, 3.0]))
        assert nature.n_updates == 3
    assert uniform.beta.tolist() == fictitious.beta.tolist() == [0.25] * 4
    assert self_play.beta.tolist() == [0.0, 0.0, 1.0, 0.0]  # only copies of the learner, no uniform mixing
    assert {self_play.sample(np.random.default_rng(s)) for s in range(20)} == {2}


@pytest.mark.parametrize("prior", LEARNED)
@pytest.mark.parametrize("step", STEPS)
def test_state_dict_round_trip_gives_identical_updates(prior, step):
    rng = np.random.default_rng(0)
    nature = Nature(5, prior, lr=0.3, uniform_mix=0.1, step=step)
    for _ in range(4):
        nature.update(rng.normal(size=5) * 3)
    state = json.loads(json.dumps(nature.state_dict(), allow_nan=False))  # strict JSON
    restored = Nature.from_state_dict(state)
    other = Nature(5, prior)  # load into one built with default settings
    other.load_state_dict(state)
    for copy in (restored, other):
        assert np.array_equal(copy.beta, nature.beta) and copy.n_updates == nature.n_updates
    for _ in range(5):
        u = rng.normal(size=5) * 3
        expected = nature.update(u)
        for copy in (restored, other):
            assert np.array_equal(copy.update(u), expected)
    seeds = [nature.sample(np.random.default_rng(s)) for s in range(10)]
    assert seeds == [restored.sample(np.random.default_rng(s)) for s in range(10)]


def test_seeded_sampling_reproduces_and_follows_beta():
    nature = Nature(4, "maximin-utility", lr=0.1, uniform_mix=0.05)
    nature.update(np.array([1.0, 2.0, 3.0, 4.0]))
    a = [nature.sample(np.random.default_rng(3)) for _ in range(5)]
    assert len(set(a)) == 1
    rng1, rng2 = np.random.default_rng(11), np.random.default_rng(11)
    draws = [nature.sample(rng1) for _ in range(4000)]
    assert draws == [nature.sample(rng2) for _ in range(4000)]
    freq = np.bincount(draws, minlength=4) / len(draws)
    assert np.abs(freq - nature.beta).max() < 0.03
    with pytest.raises(ConfigError, match="Generator"):
        nature.sample(3)


def test_projection_onto_simplex():
    assert project_onto_simplex(np.array([0.5, 0.5])).tolist() == [0.5, 0.5]
    assert project_onto_simplex(np.array([2.0, 0.0, -1.0])).tolist() == [1.0, 0.0, 0.0]
    assert project_onto_simplex(np.array([1e20, 0.0])).tolist() == [1.0, 0.0]
    assert project_onto_simplex(np.array([0.6, 0.6])) == pytest.approx([0.5, 0.5])


# ---- one test per bad input ----------------------------------------------------------------------
def test_unknown_prior_lists_known_ones():
    with pytest.raises(ConfigError, match="maximin-utility, minimax-regret, uniform, self-play, fictitious-play"):
        Nature(3, "minimax-utility")


@pytest.mark.parametrize("lr", [0.0, -0.5, np.nan, np.inf, "0.1"])
def test_bad_lr(lr):
    with pytest.raises(ConfigError, match="lr must be a finite number > 0"):
        Nature(3, lr=lr)


@pytest.mark.parametrize("mix", [-0.1, 1.0, 1.5, np.nan])
def test_bad_uniform_mix(mix):
    with pytest.raises(ConfigError, match=r"uniform_mix should be in the interval \[0, 1\)"):
        Nature(3, uniform_mix=mix)
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="uniform_mix"):
        Nature(3, eps=mix)  # the old name is checked as the new one


@pytest.mark.parametrize("n", [0, -2, 2.5, True, None])
def test_bad_n_scenarios(n):
    with pytest.raises(ConfigError, match="n_scenarios"):
        Nature(n)


@pytest.mark.parametrize("br", [np.zeros(2), np.zeros((3, 1)), [1.0, np.nan, 2.0]])
def test_bad_best_responses(br):
    with pytest.raises(ConfigError, match="best_responses"):
        Nature(3, "minimax-regret", best_responses=br)


def test_self_play_needs_a_valid_scenario():
    with pytest.raises(ConfigError, match="self_play_scenario"):
        Nature(3, "self-play")
    with pytest.raises(ConfigError, match=r"self_play_scenario must be an int in \[0, 3\)"):
        Nature(3, "self-play", self_play_scenario=3)


def test_bad_step():
    with pytest.raises(ConfigError, match="projected, exponentiated"):
        Nature(3, step="mirror")


def test_utilities_of_wrong_shape():
    with pytest.raises(ConfigError, match=r"shape \(3,\)"):
        Nature(3).update(np.zeros(4))


def test_overflowing_step_is_rejected():
    nature = Nature(2, lr=1e300)
    with pytest.raises(ConfigError, match="overflow"):
        nature.update(np.array([1e300, 0.0]))


def test_load_state_dict_mismatch():
    state = Nature(3, "maximin-utility").state_dict()
    with pytest.raises(ConfigError, match="n_scenarios"):
        Nature(4).load_state_dict(state)
    with pytest.raises(ConfigError, match="prior"):
        Nature(3, "minimax-regret").load_state_dict(state)
    with pytest.raises(ConfigError, match="format"):
        Nature(3).load_state_dict({"beta": [1, 0, 0]})


# ---- the old name of uniform_mix -------------------------------------------------------------------
def test_eps_is_the_deprecated_name_of_uniform_mix():
    with pytest.warns(DeprecationWarning, match="uniform_mix"):
        old = Nature(4, "maximin-utility", lr=10.0, eps=0.2)
    new = Nature(4, "maximin-utility", lr=10.0, uniform_mix=0.2)
    u = np.array([0.0, 5.0, 5.0, 5.0])
    assert old.uniform_mix == 0.2 and np.array_equal(old.update(u), new.update(u))
    with pytest.warns(DeprecationWarning, match="Nature.uniform_mix"):
        assert old.eps == 0.2
    with pytest.raises(TypeError, match="only uniform_mix"):
        Nature(4, eps=0.2, uniform_mix=0.3)


def test_state_dict_of_format_1_still_loads():
    """Format /1 (0.1) called uniform_mix "eps"."""
    nature = Nature(3, "maximin-utility", lr=0.3, uniform_mix=0.1)
    nature.update(np.array([1.0, 2.0, 3.0]))
    state = nature.state_dict()
    assert state["format"] == "rqe_wrappers.aht.nature/2" and state["uniform_mix"] == 0.1 and "eps" not in state
    old = {k: v for k, v in state.items() if k != "uniform_mix"} | {"format": "rqe_wrappers.aht.nature/1", "eps": 0.1}
    for restored in (Nature.from_state_dict(old), Nature(3)):
        restored.load_state_dict(old)
        assert restored.uniform_mix == 0.1 and np.array_equal(restored.beta, nature.beta)
        assert restored.state_dict() == state
