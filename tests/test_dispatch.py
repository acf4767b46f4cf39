"""One AEC/parallel dispatcher (rqe_wrappers.core.dispatch) behind every two-kind wrapper."""

from __future__ import annotations

import pytest
from pettingzoo.classic import tictactoe_v3

from rqe_wrappers import ConstantPolicy, background_seats, srpo_wrap
from rqe_wrappers.core.dispatch import by_api, check_api
from rqe_wrappers.envs.matrix import coordination_game
from rqe_wrappers.envs.tag import scale_rewards


def test_picks_the_builder_of_the_envs_kind_and_returns_its_result():
    calls = []
    kinds = {"parallel": lambda e: calls.append(("p", e)) or "P", "aec": lambda e: calls.append(("a", e)) or "A"}
    par, aec = coordination_game(), tictactoe_v3.env()
    assert by_api(par, **kinds, what="t") == "P"
    assert by_api(aec, **kinds, what="t") == "A"
    assert calls == [("p", par), ("a", aec)]


@pytest.mark.parametrize("bad", [object(), "env", None])
def test_anything_else_is_a_type_error_naming_the_caller_and_both_types(bad):
    got = type(bad).__name__
    with pytest.raises(TypeError, match=rf"^my_wrap: expected a PettingZoo ParallelEnv or AECEnv, got {got}"):
        by_api(bad, parallel=lambda e: 1, aec=lambda e: 2, what="my_wrap")
    with pytest.raises(TypeError, match="ParallelEnv or AECEnv"):
        check_api(bad, "x")
    check_api(coordination_game(), "x")


def test_wrappers_keep_the_api_kind_and_name_themselves_in_the_error():
    env = tictactoe_v3.env()
    cross = ConstantPolicy(env.observation_space("player_1"), env.action_space("player_1"), 0)
    assert type(background_seats(tictactoe_v3.env(), {"player_1": cross})).__name__ == "BackgroundSeatsAEC"
    assert type(srpo_wrap(coordination_game(), tau=1.0)).__name__ == "ShadowAdversaryParallel"
    assert type(scale_rewards(tictactoe_v3.env(), 0.5)).__name__ == "ScaledRewardsAEC"
    for call, name in (
        (lambda: background_seats(42, {}), "background_seats"),
        (lambda: srpo_wrap(42, tau=1.0), "srpo_wrap"),
        (lambda: scale_rewards(42, 0.5), "scale_rewards"),
    ):
        with pytest.raises(TypeError, match=rf"^{name}: expected a PettingZoo ParallelEnv or AECEnv, got int"):
            call()
