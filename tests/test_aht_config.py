"""AHTConfig: validation, plain-data round trips, the nature it builds; aht_wrap's explicit arguments and old names."""

import dataclasses
import json
import warnings

import numpy as np
import pytest
from pettingzoo.utils.conversions import parallel_to_aec

from rqe_wrappers import ConfigError, ConstantPolicy, RandomPolicy
from rqe_wrappers.aht.config import AHTConfig, aht_config_dict, parse_aht_config
from rqe_wrappers.aht.nature import Nature
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.aht.wrapper import AHTWrapper, aht_wrap
from rqe_wrappers.envs.matrix import coordination_game

pytestmark = [
    pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning"),
    pytest.mark.filterwarnings("ignore:The base environment .* does not have a `render_mode`"),
]


def spaces():
    g = coordination_game()
    return g.observation_space("player_0"), g.action_space("player_0")


def pop():
    return {"free-rider": ConstantPolicy(*spaces(), 0), "helper": RandomPolicy(*spaces())}


BR = {"c1:free-rider": 0.5, "c1:helper": 1.0, "c2": 1.0}


# ---- the config on its own ----------------------------------------------------------------------------
def test_defaults_and_frozen():
    config = AHTConfig()
    assert (config.prior, config.lr, config.uniform_mix) == ("maximin-utility", 0.5, 0.05)
    assert config.nature_step == "projected"
    assert (config.focal_name, config.snapshot_name, config.fp_capacity, config.max_scenarios) == (
        "focal",
        "learner",
        16,
        None,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 1.0
    with pytest.raises(TypeError):
        AHTConfig("uniform")  # keyword-only: no silent positional mix-ups


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"prior": "maximin"}, "maximin-utility, minimax-regret, uniform, self-play, fictitious-play"),
        ({"lr": 0.0}, r"lr \(nature's step size\) must be a finite number > 0"),
        ({"lr": float("inf")}, "lr"),
        ({"lr": "0.1"}, "lr must be a number"),
        ({"uniform_mix": 1.0}, r"uniform_mix should be in the interval \[0, 1\)"),
        ({"uniform_mix": -0.1}, r"\[0, 1\)"),
        ({"nature_step": "mirror"}, "projected, exponentiated"),
        ({"fp_capacity": 0}, "fp_capacity must be an integer >= 1"),
        ({"fp_capacity": True}, "fp_capacity"),
        ({"max_scenarios": 0}, "max_scenarios"),
        ({"focal_name": ""}, "focal_name"),
        ({"snapshot_name": 3}, "snapshot_name"),
        ({"best_responses": [1.0, float("nan")]}, "best_responses must be finite"),
        ({"best_responses": "high"}, "best_responses"),
        ({"best_responses": np.zeros((3, 1))}, "flat sequence"),
        ({"best_responses": {"c2": "x"}}, "best_responses"),
    ],
)
def test_bad_settings_are_refused_with_the_fix(settings, match):
    with pytest.raises(ConfigError, match=match):
        AHTConfig(**settings)


@pytest.mark.parametrize("br", [None, (0.5, 1.0, 1.0), BR])
def test_to_dict_is_plain_json_and_round_trips_exactly(br):
    config = AHTConfig(
        prior="minimax-regret",
        lr=0.1 + 0.2,
        uniform_mix=1 / 3,
        best_responses=br,
        nature_step="exponentiated",
        focal_name="me",
        snapshot_name="me-snap",
        fp_capacity=3,
        max_scenarios=99,
    )
    data = config.to_dict()
    text = json.dumps(data, allow_nan=False)
    again = AHTConfig.from_dict(json.loads(text))
    assert again == config and again.to_dict() == data and hash(again) == hash(config)
    assert again.lr == 0.1 + 0.2 and again.uniform_mix == 1 / 3  # floats exact through JSON
    assert AHTConfig.from_dict(AHTConfig().to_dict()) == AHTConfig()


def test_from_dict_reads_the_old_name_and_refuses_unknown_keys():
    assert AHTConfig.from_dict({"prior": "uniform", "eps": 0.2}) == AHTConfig(prior="uniform", uniform_mix=0.2)
    with pytest.raises(ConfigError, match="both 'eps'"):
        AHTConfig.from_dict({"eps": 0.2, "uniform_mix": 0.2})
    with pytest.raises(ConfigError, match="unknown AHTConfig keys"):
        AHTConfig.from_dict({"lrr": 0.1})
    with pytest.raises(ConfigError, match="mapping"):
        AHTConfig.from_dict([("lr", 0.1)])


def test_make_nature_matches_a_hand_built_nature():
    scenarios = ScenarioSet.all(2, ["free-rider", "helper"])
    config = AHTConfig(prior="minimax-regret", lr=0.3, uniform_mix=0.1, best_responses=BR, nature_step="exponentiated")
    hand = Nature(3, "minimax-regret", lr=0.3, uniform_mix=0.1, best_responses=[0.5, 1.0, 1.0], step="exponentiated")
    built = config.make_nature(scenarios)
    u = np.array([0.2, 0.9, 0.6])
    assert np.array_equal(built.update(u), hand.update(u))
    assert config.resolved(scenarios).best_responses == (0.5, 1.0, 1.0)
    # a scenario count is enough unless a setting needs the ids
    assert np.array_equal(AHTConfig(lr=0.3).make_nature(3).update(u), Nature(3, lr=0.3).update(u))
    with pytest.raises(ConfigError, match="needs the ScenarioSet"):
        config.make_nature(3)
    with pytest.raises(ConfigError, match="self-play"):
        AHTConfig(prior="self-play").make_nature(3)
    self_play = AHTConfig(prior="self-play").make_nature(scenarios)
    assert self_play.beta.tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(ConfigError, match="missing"):
        AHTConfig(best_responses={"c2": 1.0}).make_nature(scenarios)
    with pytest.raises(ConfigError, match="best_responses"):
        AHTConfig(best_responses=[1.0, 2.0]).make_nature(scenarios)
    with pytest.raises(ConfigError, match="'c2'"):
        AHTConfig(prior="self-play").make_nature(scenarios.restrict(lambda s: s.n_focal == 1))


# ---- aht_wrap with a config -----------------------------------------------------------------------
def trace(env, episodes=8):
    out = []
    for ep in range(episodes):
        _, infos = env.reset(seed=5 if ep == 0 else None)
        out.append((infos["focal"]["scenario"], infos["focal"]["seat"]))
    return out


@pytest.mark.parametrize("aec", [False, True])
def test_config_and_loose_settings_give_the_same_env(aec):
    def game():
        g = coordination_game(cost=0.5)
        return parallel_to_aec(g) if aec else g

    loose = aht_wrap(game(), pop(), "minimax-regret", lr=0.2, uniform_mix=0.3, best_responses=BR, snapshot_name="s1")
    config = AHTConfig(prior="minimax-regret", lr=0.2, uniform_mix=0.3, best_responses=BR, snapshot_name="s1")
    given = aht_wrap(game(), pop(), config=config)
    assert loose.config == given.config == config.resolved(given.scenarios)
    assert loose.aht_config == given.aht_config
    assert trace(loose) == trace(given)
    assert isinstance(AHTWrapper(game(), pop(), config=config), AHTWrapper)


def test_config_and_settings_together_are_refused():
    config = AHTConfig(lr=0.2)
    with pytest.raises(ConfigError, match=r"config= and the settings \['lr'\]"):
        aht_wrap(coordination_game(), pop(), config=config, lr=0.3)
    with pytest.raises(ConfigError, match="prior"):
        aht_wrap(coordination_game(), pop(), "uniform", config=config)
    with pytest.raises(TypeError, match="AHTConfig"):
        aht_wrap(coordination_game(), pop(), config={"lr": 0.2})
    with pytest.raises(TypeError):
        aht_wrap(coordination_game(), pop(), "uniform", None, 0.2)  # settings are keyword-only


def test_aht_config_is_plain_data_that_parses_back():
    env = aht_wrap(coordination_game(), pop(), "minimax-regret", best_responses=BR, fp_capacity=4)
    data = env.aht_config
    assert json.loads(json.dumps(data)) == data
    assert data["uniform_mix"] == 0.05 and "eps" not in data and data["best_responses"] == [0.5, 1.0, 1.0]
    config, scenarios, fp_members = parse_aht_config(data)
    assert config == env.config and scenarios.ids == env.scenarios.ids and fp_members == {}
    assert aht_config_dict(config, scenarios, fp_members) == data
    fp = aht_wrap(coordination_game(), {}, "fictitious-play", fp_capacity=2, snapshot_name="me")
    assert parse_aht_config(fp.aht_config)[2] == {"fp/0": "me/fp/0", "fp/1": "me/fp/1"}
    with pytest.raises(ConfigError, match="aht_config"):
        parse_aht_config({"prior": "uniform"})


# ---- old names -----------------------------------------------------------------------------------------
def test_eps_still_works_with_a_deprecation_warning():
    new = aht_wrap(coordination_game(), pop(), uniform_mix=0.3, snapshot_name="s")
    with pytest.warns(DeprecationWarning, match="uniform_mix"):
        old = aht_wrap(coordination_game(), pop(), eps=0.3, snapshot_name="s")
    with pytest.warns(DeprecationWarning, match="uniform_mix"):
        direct = AHTWrapper(coordination_game(), pop(), eps=0.3, snapshot_name="s")
    assert old.config == direct.config == new.config and old.config.uniform_mix == 0.3
    assert trace(old) == trace(new)
    with pytest.raises(TypeError, match="only uniform_mix"):
        aht_wrap(coordination_game(), pop(), eps=0.3, uniform_mix=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aht_wrap(coordination_game(), pop(), uniform_mix=0.3)  # the new name does not warn


def test_nature_from_config_is_a_deprecated_alias():
    from rqe_wrappers.aht.wrapper import nature_from_config

    env = aht_wrap(coordination_game(), pop(), "minimax-regret", lr=0.2, best_responses=BR)
    with pytest.warns(DeprecationWarning, match="make_nature"):
        old = nature_from_config(env.aht_config)
    u = np.array([0.1, 0.8, 0.5])
    assert np.array_equal(old.update(u), env.make_nature().update(u))
    old_style = {k: v for k, v in env.aht_config.items() if k != "uniform_mix"} | {"eps": 0.05}  # 0.1's keys
    with pytest.warns(DeprecationWarning):
        assert nature_from_config(old_style).uniform_mix == 0.05
