"""Scenario sets: enumeration counts, ids, restriction, JSON round trip and bad input."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rqe_wrappers import ConfigError
from rqe_wrappers.aht.scenarios import Scenario, ScenarioSet, count_scenarios


@pytest.mark.parametrize(
    "n_seats, n_members, expected",
    [
        (2, 3, 3 + 1),  # c1 with each member, and self-play
        (3, 2, 3 + 2 + 1),  # c1: {a,a},{a,b},{b,b}; c2: a, b; c3
        (4, 3, 10 + 6 + 3 + 1),  # multisets of size 3, 2, 1, 0 from 3 members
        (2, 0, 1),  # no population: only self-play
        (1, 5, 1),
    ],
)
def test_enumeration_counts(n_seats, n_members, expected):
    members = [f"m{i}" for i in range(n_members)]
    s = ScenarioSet.all(n_seats, members)
    assert len(s) == expected == count_scenarios(n_seats, n_members)
    assert s.self_play_index == len(s) - 1 and s[s.self_play_index].is_self_play
    assert all(sc.n_seats == n_seats for sc in s)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 5), m=st.integers(0, 5))
def test_all_scenarios_are_distinct_multisets(n, m):
    s = ScenarioSet.all(n, [f"p{i}" for i in range(m)])
    assert len(set(s.ids)) == len(s) == count_scenarios(n, m)
    expected = 1 + sum(math.comb(m + k - 1, k) for k in range(1, n) if m)
    assert len(s) == expected
    assert [ScenarioSet.all(n, [f"p{i}" for i in range(m)]).index(i) for i in s.ids] == list(range(len(s)))


def test_ids_are_readable_and_stable():
    s = ScenarioSet.all(3, ["tit-for-tat", "always-d"])
    assert s.ids == (
        "c1:tit-for-tat+tit-for-tat",
        "c1:always-d+tit-for-tat",
        "c1:always-d+always-d",
        "c2:tit-for-tat",
        "c2:always-d",
        "c3",
    )
    # a scenario's id does not depend on member order; it parses back to the same scenario
    assert Scenario(1, ("tit-for-tat", "always-d")) == Scenario(1, ("always-d", "tit-for-tat"))
    for sc in s:
        assert Scenario.from_id(sc.id) == sc
    assert ScenarioSet.all(2, ["a", "b", "c"]).ids == ("c1:a", "c1:b", "c1:c", "c2")
    text = s.describe()
    assert all(i in text for i in s.ids) and "(self-play)" in text


def test_focal_counts_and_max_scenarios():
    s = ScenarioSet.all(3, ["a", "b"], focal_counts=[1])
    assert s.ids == ("c1:a+a", "c1:a+b", "c1:b+b") and s.self_play_index is None
    with pytest.raises(ConfigError, match="max_scenarios=5"):
        ScenarioSet.all(3, ["a", "b"], max_scenarios=5)
    assert len(ScenarioSet.all(3, ["a", "b"], max_scenarios=6)) == 6
    with pytest.raises(ConfigError, match="focal_counts"):
        ScenarioSet.all(3, ["a"], focal_counts=[0])


def test_restrict_by_predicate_ids_and_indices():
    s = ScenarioSet.all(3, ["a", "b"])
    only_c1 = s.restrict(lambda sc: sc.n_focal == 1)
    assert only_c1.ids == ("c1:a+a", "c1:a+b", "c1:b+b") and only_c1.self_play_index is None
    assert only_c1.members == s.members
    picked = s.restrict(["c3", "c1:a+b"])
    assert picked.ids == ("c1:a+b", "c3")  # original order kept
    assert picked.self_play_index == 1
    assert s.restrict([0, -1]).ids == ("c1:a+a", "c3")
    with pytest.raises(ConfigError, match="unknown scenario 'c9'"):
        s.restrict(["c9"])
    with pytest.raises(ConfigError, match="kept no scenario"):
        s.restrict(lambda sc: False)


def test_json_round_trip(tmp_path):
    s = ScenarioSet.all(3, ["tit-for-tat", "always-d", "ipd/random"]).restrict(lambda sc: sc.n_focal < 3)
    path = tmp_path / "scenarios.json"
    s.save(path)
    loaded = ScenarioSet.load(path)
    assert loaded == s and loaded.ids == s.ids and loaded.members == s.members
    data = json.loads(path.read_text())
    assert data["scenarios"][0]["id"] == s.ids[0]
    data["version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="version 99"):
        ScenarioSet.load(path)
    with pytest.raises(ConfigError, match="not a scenario set"):
        ScenarioSet.from_dict({"n_seats": 2})


def test_bad_sets_are_refused():
    with pytest.raises(ConfigError, match="duplicate"):
        ScenarioSet.all(2, ["a", "a"])
    with pytest.raises(ConfigError, match="contains '\\+'"):
        ScenarioSet.all(2, ["a+b"])
    with pytest.raises(ConfigError, match="fills 3 seats"):
        ScenarioSet(2, ("a",), (Scenario(1, ("a", "a")),))
    with pytest.raises(ConfigError, match="not in the population"):
        ScenarioSet(2, ("a",), (Scenario(1, ("b",)),))
    with pytest.raises(ConfigError, match="listed twice"):
        ScenarioSet(2, ("a",), (Scenario(2), Scenario(2)))
    with pytest.raises(ConfigError, match="at least one"):
        ScenarioSet(2, ("a",), ())
    with pytest.raises(ConfigError, match="n_focal >= 1"):
        Scenario(0, ("a", "b"))
    with pytest.raises(ConfigError, match="bad scenario id"):
        Scenario.from_id("x1:a")
