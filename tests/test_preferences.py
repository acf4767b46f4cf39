"""Prosocial, risk-averse reward shaping of background players (rqe_wrappers.aht.preferences)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from rqe_wrappers.aht.preferences import (
    PROSOCIALITY_RANGE,
    RISK_AVERSION_RANGE,
    Preferences,
    preference_wrap,
    sample_preferences,
    shaped_reward,
)
from rqe_wrappers.envs.matrix import MatrixGameEnv
from rqe_wrappers.errors import ConfigError, SeatError

#: payoffs[a0, a1] = (reward of player_0, reward of player_1): gains and losses, so risk aversion shows
PAYOFFS = np.array([[[3.0, -1.0], [-2.0, 4.0]], [[0.5, 0.5], [-1.5, -3.0]]])


def game(rounds: int = 3) -> MatrixGameEnv:
    return MatrixGameEnv(PAYOFFS, rounds=rounds, name="mixed_v0")


@pytest.mark.parametrize(
    ("w", "n", "want"),
    [
        (0.0, 2, (1.0, 0.0)),  # selfish
        (1.0, 2, (0.0, 1.0)),  # only the others count
        (0.5, 2, (0.5, 0.5)),  # the mean over both players
        (0.5, 4, (0.25, 0.75)),  # the mean over all four: own 1/4, the others' mean 3/4
        (0.25, 3, (0.75 ** math.log2(3), 0.25 ** math.log2(1.5))),  # normalised below
        (-0.2, 2, (1.2 / 1.4, -0.2 / 1.4)),  # spiteful: the others' reward counts against
        (1.2, 2, (-0.2 / 1.4, 1.2 / 1.4)),  # selfless beyond indifference: its own reward counts against
    ],
)
def test_weights_follow_the_papers_exponents(w, n, want):
    want = np.array(want) / np.abs(want).sum()
    np.testing.assert_allclose(Preferences(w, 1.0).weights(n), want, rtol=1e-12)


def test_risk_aversion_scales_losses_only():
    averse, seeking = Preferences(0.0, 2.0), Preferences(0.0, 0.5)
    assert shaped_reward(3.0, -7.0, averse, 2) == 3.0 and shaped_reward(3.0, -7.0, seeking, 2) == 3.0
    assert shaped_reward(-3.0, 7.0, averse, 2) == -6.0 and shaped_reward(-3.0, 7.0, seeking, 2) == -1.5
    # prosocial and averse: (0.5 * -3 + 0.5 * 1) = -1, doubled
    assert shaped_reward(-3.0, 1.0, Preferences(0.5, 2.0), 2) == -2.0


def test_the_wrapper_pays_each_shaped_seat_its_own_utility_and_keeps_the_raw_reward():
    prefs = Preferences(0.25, 1.5)
    env = preference_wrap(game(), {"player_1": prefs})
    env.reset(seed=0)
    for a0, a1 in [(0, 0), (0, 1), (1, 1)]:
        _, rew, _, _, infos = env.step({"player_0": a0, "player_1": a1})
        r0, r1 = PAYOFFS[a0, a1]
        a, b = prefs.weights(2)
        mixed = a * r1 + b * r0
        assert rew["player_1"] == pytest.approx(max(mixed, 0) + 1.5 * min(mixed, 0), abs=1e-12)
        assert infos["player_1"]["raw_reward"] == r1
        assert rew["player_0"] == r0 and "raw_reward" not in infos["player_0"]  # unshaped seat: as the env pays it


def test_the_wrapped_env_passes_pettingzoos_parallel_api_test():
    parallel_api_test(preference_wrap(game(), {"player_0": Preferences(1.1, 0.3)}), num_cycles=20)


def test_sampled_preferences_are_seeded_and_within_the_papers_ranges():
    a, b, c = sample_preferences(50, 3), sample_preferences(50, 3), sample_preferences(50, 4)
    assert a == b and a != c
    w = np.array([p.prosociality for p in a])
    rho = np.array([p.risk_aversion for p in a])
    assert PROSOCIALITY_RANGE[0] <= w.min() and w.max() <= PROSOCIALITY_RANGE[1]
    assert RISK_AVERSION_RANGE[0] <= rho.min() and rho.max() <= RISK_AVERSION_RANGE[1]
    assert w.std() > 0.2 and rho.std() > 0.2  # spread over the ranges, not one value
    assert sample_preferences(2, 0, prosociality=(0.3, 0.3))[0].prosociality == 0.3
    assert Preferences(0.3, 1.2).to_dict() == {"prosociality": 0.3, "risk_aversion": 1.2}


def test_bad_input_is_a_typed_error():
    with pytest.raises(ConfigError, match="risk_aversion"):
        Preferences(0.0, -1.0)
    with pytest.raises(ConfigError, match="prosociality"):
        Preferences(float("nan"), 1.0)
    with pytest.raises(SeatError, match="player_7"):
        preference_wrap(game(), {"player_7": Preferences()})
    with pytest.raises(ConfigError, match="Preferences"):
        preference_wrap(game(), {"player_0": (0.5, 1.0)})
    with pytest.raises(ConfigError, match="range"):
        sample_preferences(3, 0, prosociality=(1.0, 0.0))
    with pytest.raises(ConfigError, match="n_players"):
        Preferences().weights(1)
