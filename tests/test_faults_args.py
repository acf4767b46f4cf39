"""Argument types (issue 9): one set of validators (rqe_wrappers.core.checks) behind srpo_wrap, AHTConfig,
aht_wrap, Nature, the ``scenario`` reset option and AHTCallback's episode returns."""

import math

import numpy as np
import pytest

from rqe_wrappers import ConfigError, ConstantPolicy, NonFiniteError
from rqe_wrappers.aht.config import MAX_FP_CAPACITY, AHTConfig
from rqe_wrappers.aht.nature import Nature
from rqe_wrappers.aht.wrapper import aht_wrap
from rqe_wrappers.core.checks import integer, real
from rqe_wrappers.envs.matrix import coordination_game
from rqe_wrappers.srpo.shadow import srpo_wrap

pytestmark = pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning")


@pytest.mark.parametrize(
    ("tau", "words"),
    [
        ("2", ["tau", "'2'", "str", "[0, inf)"]),
        (True, ["tau", "True", "bool"]),
        (None, ["tau", "None"]),
        (math.nan, ["tau", "nan", "finite"]),
        (math.inf, ["tau", "inf", "finite"]),
        (-0.5, ["tau", "-0.5", "[0, inf)"]),
        (np.bool_(True), ["tau", "bool"]),
    ],
)
def test_srpo_wrap_refuses_a_tau_that_is_not_a_finite_number_at_least_0(tau, words):
    with pytest.raises(ConfigError) as err:
        srpo_wrap(coordination_game(), tau=tau)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("tau", [0, 2, 1.5, np.float32(0.5), np.int64(3)])
def test_srpo_wrap_takes_int_float_and_numpy_numbers(tau):
    assert srpo_wrap(coordination_game(), tau=tau).tau == float(tau)


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1.9, ["n_shadows", "1.9", "float", "integer"]),
        (1.0, ["n_shadows", "float", "integer"]),
        (True, ["n_shadows", "bool"]),
        ("1", ["n_shadows", "'1'", "str"]),
        (0, ["n_shadows", "[1, 1]", "got 0"]),
    ],
)
def test_n_shadows_is_an_integer_never_truncated(n, words):
    with pytest.raises(ConfigError) as err:
        srpo_wrap(coordination_game(), tau=1.0, n_shadows=n)
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"lr": True}, ["lr", "number", "True"]),
        ({"lr": "0.1"}, ["lr", "number"]),
        ({"lr": math.nan}, ["lr", "finite"]),
        ({"uniform_mix": math.nan}, ["uniform_mix", "finite", "[0, 1)"]),
        ({"uniform_mix": True}, ["uniform_mix", "bool"]),
        ({"fp_capacity": MAX_FP_CAPACITY + 1}, ["fp_capacity", str(MAX_FP_CAPACITY), "MAX_FP_CAPACITY"]),
        ({"fp_capacity": 10**9}, ["fp_capacity", str(MAX_FP_CAPACITY)]),
        ({"fp_capacity": 2.0}, ["fp_capacity", "float"]),
        ({"max_scenarios": 2.5}, ["max_scenarios", "2.5", "None"]),
        ({"max_scenarios": True}, ["max_scenarios", "bool"]),
    ],
)
def test_aht_config_refuses_wrong_types_and_unbounded_sizes(settings, words):
    with pytest.raises(ConfigError) as err:
        AHTConfig(**settings)
    for word in words:
        assert word in str(err.value)


def test_aht_wrap_refuses_a_huge_fp_capacity_before_building_anything():
    with pytest.raises(ConfigError, match="fp_capacity"):
        aht_wrap(coordination_game(), {}, "fictitious-play", fp_capacity=10**7)
    env = aht_wrap(coordination_game(), {}, "fictitious-play", fp_capacity=MAX_FP_CAPACITY)
    assert env.beta[0] == 1.0 and env.beta.sum() == 1.0  # only slot 0 filled, no n x n matrix


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"n_scenarios": 3.0}, ["n_scenarios", "float"]),
        ({"n_scenarios": True}, ["n_scenarios", "bool"]),
        ({"n_scenarios": 3, "lr": np.bool_(True)}, ["lr"]),
        ({"n_scenarios": 3, "uniform_mix": "0.1"}, ["uniform_mix"]),
    ],
)
def test_nature_refuses_wrong_types(kwargs, words):
    with pytest.raises(ConfigError) as err:
        Nature(**kwargs)
    for word in words:
        assert word in str(err.value)


def aht_env():
    g = coordination_game(cost=0.5)
    space = g.observation_space("player_0"), g.action_space("player_0")
    pop = {"free-rider": ConstantPolicy(*space, 0), "helper": ConstantPolicy(*space, 1)}
    return aht_wrap(g, pop, "maximin-utility")


@pytest.mark.parametrize(
    ("forced", "words"),
    [
        (-1, ["scenario", "-1", "[0, 2]"]),
        (3, ["scenario", "got 3", "[0, 2]"]),
        (1.0, ["scenario", "float"]),
        (True, ["scenario", "bool"]),
        ("c9", ["unknown scenario", "c9"]),
    ],
)
def test_a_forced_scenario_is_an_id_or_an_index_in_range(forced, words):
    env = aht_env()
    with pytest.raises(ConfigError) as err:
        env.reset(seed=0, options={"scenario": forced})
    for word in words:
        assert word in str(err.value)
    assert "c1:free-rider" in str(err.value)  # says what is accepted: ids or indices


@pytest.mark.parametrize("forced", [2, np.int64(2), "c2"])
def test_a_forced_scenario_plays_that_scenario(forced):
    env = aht_env()
    _, infos = env.reset(seed=0, options={"scenario": forced})
    assert infos["focal"]["scenario"] == "c2" and infos["focal"]["scenario_index"] == 2


def test_validators_name_the_argument_the_value_and_what_is_accepted():
    with pytest.raises(ConfigError, match=r"x should be in the interval \(0, 1\], got 0.0"):
        real("x", 0, low=0, high=1, low_open=True)
    with pytest.raises(ConfigError, match=r"k must be in \[2, 5\] \(why\), got 7"):
        integer("k", 7, low=2, high=5, hint="why")
    assert integer("k", np.int32(3), low=2) == 3 and real("x", np.float16(0.5)) == 0.5


# ---- AHTCallback: non-finite returns ---------------------------------------------------------------
def callback():
    from rqe_wrappers.sb3 import AHTCallback

    cb = AHTCallback()
    cb.scenarios = aht_env().scenarios
    return cb


def pending(cb) -> list[tuple[int, float]]:
    """The callback's finished episodes not yet counted, as ``(scenario index, focal return)`` pairs."""
    index, ret = cb._pending_arrays()
    assert index.dtype == np.int64 and ret.dtype == np.float64
    return list(zip(index.tolist(), ret.tolist(), strict=True))


@pytest.mark.parametrize(
    ("ret", "error"),
    [
        (math.nan, NonFiniteError),
        (math.inf, NonFiniteError),
        (-math.inf, NonFiniteError),
        ("1.0", ConfigError),
        (None, ConfigError),
    ],
)
def test_a_non_finite_focal_return_stops_training_naming_the_scenario(ret, error):
    cb = callback()
    cb.locals = {"infos": [{}, {"focal_return": ret, "scenario_index": 1}]}
    with pytest.raises(error) as err:
        cb._on_step()
    for word in ("slot 1", "'c1:helper'", "focal_return", "finite"):
        assert word in str(err.value)
    assert pending(cb) == []  # nothing half-counted


@pytest.mark.parametrize("index", [-1, 3, 1.0, "1", True])
def test_a_scenario_index_out_of_range_is_refused(index):
    cb = callback()
    cb.locals = {"infos": [{"focal_return": 1.0, "scenario_index": index}]}
    with pytest.raises(ConfigError, match="scenario_index"):
        cb._on_step()


def test_finite_returns_are_collected():
    cb = callback()
    cb.locals = {"infos": [{"focal_return": np.float64(0.5), "scenario_index": np.int64(2)}, {}]}
    cb._on_step()
    assert pending(cb) == [(2, 0.5)]


@pytest.mark.parametrize(
    ("bad", "value"), [("scenario_index", True), ("focal_return", True), ("focal_return", math.nan)]
)
def test_one_bad_episode_among_many_is_named_and_nothing_counted(bad, value):
    # thousands of episodes per step on the batched path are checked as arrays; a bool (which numpy would
    # silently read as 1) or a NaN among them still stops training, naming the slot
    cb = callback()
    infos = [{"focal_return": float(k), "scenario_index": k % 3} for k in range(64)]
    infos[41][bad] = value
    cb.locals = {"infos": infos, "dones": np.ones(64, bool)}
    with pytest.raises((ConfigError, NonFiniteError), match="slot 41"):
        cb._on_step()
    assert pending(cb) == []


def test_many_episodes_are_collected_as_one_by_one_and_only_from_finished_slots():
    cb = callback()
    infos = [{"focal_return": np.float32(k) / 4, "scenario_index": np.int32(k % 3)} for k in range(10)]
    infos[3] = {"focal_return": 7, "scenario_index": 1}  # a Python int return is a real number too
    dones = np.ones(10, bool)
    dones[[0, 9]] = False  # not finished: not an episode end, not counted
    cb.locals = {"infos": infos, "dones": dones}
    cb._on_step()
    expected = [cb._episode(k, infos[k]) for k in range(1, 9)]
    assert pending(cb) == expected and expected[2] == (1, 7.0)
