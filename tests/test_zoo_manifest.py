"""Zoo formats: spaces as JSON, manifest and index schema validation (no torch, no network)."""

from __future__ import annotations

import copy
import json

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rqe_wrappers.errors import ConfigError, PopulationError, UnsupportedSpaceError
from rqe_wrappers.zoo import Index, Manifest, parse_ref, space_from_json, space_to_json

# ---- spaces -------------------------------------------------------------------------------------
_bound = st.one_of(st.floats(-1e6, 1e6, allow_nan=False, width=32), st.just(np.inf))


@st.composite
def boxes(draw):
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=3)))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64, np.uint8]))
    if np.dtype(dtype).kind == "f":
        n = int(np.prod(shape))
        lo = np.array(draw(st.lists(_bound, min_size=n, max_size=n)), dtype=np.float64).reshape(shape)
        widths = draw(st.lists(st.floats(0, 10, width=32), min_size=n, max_size=n))
        width = np.array(widths, dtype=np.float64).reshape(shape)
        low = -lo if draw(st.booleans()) else np.where(np.isinf(lo), -np.inf, lo)
        high = np.where(np.isinf(low), np.inf, low + width)
        return gym.spaces.Box(low.astype(dtype), high.astype(dtype), shape=shape, dtype=dtype)
    lo = draw(st.integers(0, 5))
    return gym.spaces.Box(lo, lo + draw(st.integers(0, 200)), shape=shape, dtype=dtype)


leaf_spaces = st.one_of(
    boxes(),
    st.builds(gym.spaces.Discrete, st.integers(1, 10), start=st.integers(-3, 3)),
    st.builds(lambda n: gym.spaces.MultiDiscrete(n), st.lists(st.integers(1, 5), min_size=1, max_size=4)),
    st.builds(
        gym.spaces.MultiBinary, st.one_of(st.integers(1, 5), st.lists(st.integers(1, 3), min_size=1, max_size=2))
    ),
)
spaces = st.recursive(
    leaf_spaces,
    lambda inner: st.one_of(
        st.dictionaries(st.text("abcxyz_", min_size=1, max_size=5), inner, min_size=1, max_size=3).map(gym.spaces.Dict),
        st.lists(inner, min_size=1, max_size=3).map(gym.spaces.Tuple),
    ),
    max_leaves=4,
)


@settings(max_examples=60, deadline=None)
@given(spaces)
def test_space_json_round_trip(space):
    data = space_to_json(space)
    text = json.dumps(data, allow_nan=False)  # strict JSON: infinities are strings
    assert space_from_json(json.loads(text)) == space


def test_box_bounds_are_exact_float32_and_compact():
    space = gym.make("CartPole-v1").observation_space
    back = space_from_json(space_to_json(space))
    assert np.array_equal(back.low, space.low) and np.array_equal(back.high, space.high)
    assert space_to_json(gym.spaces.Box(0, 255, (4, 4, 3), np.uint8))["low"] == 0


def test_unsupported_and_malformed_spaces():
    with pytest.raises(UnsupportedSpaceError, match="Text"):
        space_to_json(gym.spaces.Text(5))
    with pytest.raises(ConfigError, match=r"obs\.spaces\.a\.type: unknown space type 'Foo'"):
        space_from_json({"type": "Dict", "spaces": {"a": {"type": "Foo"}}}, "obs")
    with pytest.raises(ConfigError, match=r"obs\.low: shape \(2,\) differs"):
        space_from_json({"type": "Box", "shape": [3], "dtype": "float32", "low": [0, 1], "high": 1}, "obs")
    with pytest.raises(ConfigError, match="dtype must be one of"):
        space_from_json({"type": "Box", "shape": [3], "dtype": "object", "low": 0, "high": 1})
    with pytest.raises(ConfigError, match="unknown field"):
        space_from_json({"type": "Discrete", "n": 3, "pickle": "x"})


# ---- manifest -----------------------------------------------------------------------------------
def valid_manifest() -> dict:
    return {
        "schema_version": 1,
        "id": "test/pop",
        "version": 1,
        "description": "a test",
        "env": {"id": "rqe_wrappers/matrix_game_v0", "version": None, "kwargs": {"rounds": 2}, "seats": ["player_1"]},
        "observation_space": {"type": "Box", "shape": [1], "dtype": "float32", "low": 0.0, "high": 1.0},
        "action_space": {"type": "Discrete", "n": 2},
        "members": [
            {
                "name": "tab",
                "kind": "scripted",
                "file": "tab.safetensors",
                "sha256": "0" * 64,
                "scripted": {"name": "zoo-test/anything", "kwargs": {"x": 1}},
                "seed": 3,
                "recipe": {"path": "zoo/test", "commit": "abc1234"},
                "metrics": {"return": 1.5},
            },
            {
                "name": "net",
                "kind": "sb3",
                "file": "net.safetensors",
                "sha256": "1" * 64,
                "sb3": {
                    "algo": "PPO",
                    "policy": "MlpPolicy",
                    "policy_kwargs": {"net_arch": {"pi": [8], "vf": [8]}, "activation_fn": "Tanh"},
                    "algo_kwargs": {"n_steps": 64, "learning_rate": 0.001},
                },
            },
        ],
        "best_responses": {"scenario-0": 2.5, "scenario-1": {"utility": 1.0}},
    }


def test_valid_manifest_parses_and_round_trips():
    m = Manifest.from_json(valid_manifest())
    assert m.ref == "test/pop@1" and [e.name for e in m.members] == ["tab", "net"]
    assert m.env.seats == ("player_1",) and m.action_space == gym.spaces.Discrete(2)
    again = Manifest.loads(m.dumps())
    assert again == m


def _set(data, path, value):
    *parents, last = path
    for p in parents:
        data = data[p]
    if value is _DELETE:
        del data[last]
    else:
        data[last] = value


_DELETE = object()
_M0 = ("members", 0)
_SB3 = ("members", 1, "sb3")


@pytest.mark.parametrize(
    "path, value, field",
    [
        (("members",), _DELETE, "'members': missing"),
        (("extra_field",), 1, "'extra_field': unknown field"),
        (("schema_version",), 99, "upgrade it"),
        (("version",), "one", "field 'version'"),
        (("id",), "Tag Runners", "field 'id'"),
        (("observation_space", "type"), "Foo", "observation_space.type"),
        (("action_space",), {"type": "Discrete"}, "action_space: Discrete needs field"),
        ((*_M0, "sha256"), "abc", "'members[0].sha256'"),
        ((*_M0, "file"), "../escape.safetensors", "'members[0].file'"),
        ((*_M0, "file"), "weights.pkl", "pickles are refused"),
        ((*_M0, "kind"), "pickle", "'members[0].kind'"),
        ((*_M0, "name"), "net", "duplicate member name"),
        ((*_M0, "scripted", "kwargs"), {"arrays": [1]}, "arrays come from the member's safetensors file"),
        ((*_M0, "metrics"), [1, 2], "'members[0].metrics'"),
        ((*_M0, "recipe", "commit"), "not-a-sha", "'members[0].recipe.commit'"),
        ((*_SB3, "algo"), "A2C", "'members[1].sb3.algo'"),
        ((*_SB3, "policy"), "stable_baselines3.common.policies:ActorCriticPolicy", "'members[1].sb3.policy'"),
        ((*_SB3, "policy"), "os.system", "one of ['MlpPolicy', 'CnnPolicy', 'MultiInputPolicy', 'RolePolicy']"),
        ((*_SB3, "policy_kwargs", "activation_fn"), "os:system", "'members[1].sb3.policy_kwargs.activation_fn'"),
        (
            (*_SB3, "policy_kwargs", "features_extractor_class"),
            "builtins.eval",
            "policy_kwargs.features_extractor_class",
        ),
        ((*_SB3, "policy_kwargs", "callback"), "x", "not an allowed key"),
        ((*_SB3, "algo_kwargs", "learning_rate"), "lambda p: p", "'members[1].sb3.algo_kwargs.learning_rate'"),
        (("members", 1, "file"), None, "'members[1].file': 'file' and 'sha256' go together"),
        (("best_responses",), [1], "'best_responses'"),
    ],
)
def test_bad_manifest_names_the_field(path, value, field):
    data = copy.deepcopy(valid_manifest())
    _set(data, path, value)
    with pytest.raises(PopulationError) as info:
        Manifest.from_json(data, "somewhere/manifest.json")
    assert field in str(info.value)
    assert str(info.value).startswith("somewhere/manifest.json")


def test_truncated_manifest_is_a_population_error():
    with pytest.raises(PopulationError, match="not valid JSON"):
        Manifest.loads(json.dumps(valid_manifest())[:50])


def test_parse_ref():
    assert parse_ref("tag/runners") == ("tag/runners", None)
    assert parse_ref("ipd/scripted@2") == ("ipd/scripted", 2)
    for bad in ("tag/runners@v2", "Tag/Runners", "tag/../x", "/abs", "tag/runners@0"):
        with pytest.raises(PopulationError):
            parse_ref(bad)


def test_index_schema():
    data = {
        "schema_version": 1,
        "populations": {
            "a/b": {
                "latest": 2,
                "versions": {
                    "1": {"manifest_sha256": "a" * 64, "env": "e", "members": 3},
                    "2": {"manifest_sha256": "b" * 64, "env": "e", "members": 4},
                },
            }
        },
        "renamed": {"a/old": "a/b"},
    }
    index = Index.from_json(data)
    assert index.versions("a/b") == [1, 2] and index.latest("a/b") == 2
    assert index.describe() == "a/b (versions 1, 2)"
    assert Index.from_json(json.loads(json.dumps(index.to_json()))) == index
    data["populations"]["a/b"]["versions"]["1"]["manifest_sha256"] = "zz"
    with pytest.raises(PopulationError, match=r"populations\.a/b\.versions\.1\.manifest_sha256"):
        Index.from_json(data)
