"""One space-mismatch check (rqe_wrappers.core.spaces) for seats, policies and population members."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rqe_wrappers import ConstantPolicy, SpaceMismatchError
from rqe_wrappers.core.policy import check_policy_spaces
from rqe_wrappers.core.spaces import check_spaces_alike, describe_pair, first_mismatch, short

BOX3 = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
BOX4 = gym.spaces.Box(0.0, 1.0, (4,), np.float32)
D2, D5 = gym.spaces.Discrete(2), gym.spaces.Discrete(5)


def test_all_alike_is_no_mismatch():
    assert first_mismatch([("a", BOX3, D2), ("b", BOX3, D2), ("c", BOX3, D2)]) is None
    assert first_mismatch([]) is None


def test_names_the_first_entry_that_differs_against_the_first():
    m = first_mismatch([("a", BOX3, D2), ("b", BOX3, D2), ("c", BOX3, D5), ("d", BOX4, D2)])
    assert (m.reference, m.name, m.kind, m.expected, m.got) == ("a", "c", "action", D2, D5)
    assert m.observation == (BOX3, BOX3) and m.action == (D2, D5)


def test_observation_is_reported_before_action_of_the_same_entry():
    m = first_mismatch([("a", BOX3, D2), ("b", BOX4, D5)])
    assert (m.kind, m.expected, m.got) == ("observation", BOX3, BOX4)
    assert m.action == (D2, D5)  # both kinds are there for messages that show all four


def test_by_kind_scans_every_observation_first():
    entries = [("a", BOX3, D2), ("b", BOX3, D5), ("c", BOX4, D2)]
    assert first_mismatch(entries).name == "b"
    m = first_mismatch(entries, by_kind=True)
    assert (m.name, m.kind) == ("c", "observation")


def test_explicit_reference():
    m = first_mismatch([("policy", BOX4, D2)], reference=("the environment", BOX3, D2))
    assert (m.reference, m.name, m.expected, m.got) == ("the environment", "policy", BOX3, BOX4)


def test_check_spaces_alike_raises_the_callers_message():
    with pytest.raises(SpaceMismatchError, match=r"^seat 'b' differs in action: Discrete\(5\)$"):
        check_spaces_alike(
            [("a", BOX3, D2), ("b", BOX3, D5)], lambda m: f"seat {m.name!r} differs in {m.kind}: {m.got}"
        )
    check_spaces_alike([("a", BOX3, D2)], lambda m: "never")


def test_short_descriptions_show_bounds_only_when_they_are_the_difference():
    assert short(BOX3) == "Box(shape=(3,), float32)"
    both = gym.spaces.Dict({"x": BOX3, "n": D2})  # gymnasium sorts the keys
    assert short(both) == "Dict(n: Discrete(2), x: Box(shape=(3,), float32))"
    assert describe_pair(BOX3, BOX4) == ("Box(shape=(3,), float32)", "Box(shape=(4,), float32)")
    wide = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    full = describe_pair(BOX3, wide)
    assert full == (str(BOX3), str(wide)) and full[0] != full[1]


def test_check_policy_spaces_keeps_its_message():
    check_policy_spaces(ConstantPolicy(BOX3, D2, 0), BOX3, D2, "fits")
    with pytest.raises(
        SpaceMismatchError,
        match=r"^bg: observation space mismatch: the environment has Box.*\(4,\).*"
        r"the policy expects Box.*\(3,\).*Use a policy trained on this environment",
    ):
        check_policy_spaces(ConstantPolicy(BOX3, D2, 0), BOX4, D2, "bg")
    with pytest.raises(
        SpaceMismatchError,
        match=r"bg: action space mismatch: the environment has Discrete\(5\), "
        r"the policy expects Discrete\(2\)",
    ):
        check_policy_spaces(ConstantPolicy(BOX3, D2, 0), BOX3, D5, "bg")
