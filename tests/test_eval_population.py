"""Held-out populations (rqe_wrappers.eval.population) against the IPD's exact values, and Tag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rqe_wrappers.envs.ipd import ipd_env
from rqe_wrappers.envs.tag import CHASERS, RUNNER, tag_env
from rqe_wrappers.errors import ConfigError, SeatError, SpaceMismatchError
from rqe_wrappers.eval import evaluate_population
from rqe_wrappers.experiments.tag.evaluation import play_tag
from rqe_wrappers.partners.ipd import best_response_value, expected_return, make_partner
from rqe_wrappers.zoo import open_population

POPULATIONS = Path(__file__).resolve().parents[1] / "populations"


@pytest.fixture(scope="module")
def ipd_train():
    return open_population(POPULATIONS / "ipd" / "train" / "1")


def test_ipd_utilities_and_regrets_are_exact(ipd_train):
    result = evaluate_population("ipd/tit-for-tat", ipd_train, episodes=2)
    tft = make_partner("ipd/tit-for-tat")
    table = {row["scenario"]: row for row in result.scenarios}
    assert set(table) == {f"c1:{m}" for m in ipd_train}
    for member in ipd_train:
        if member == "random":
            continue
        partner = ipd_train[member].policy()
        row = table[f"c1:{member}"]
        assert row["utility"] == pytest.approx(expected_return(tft, partner)[0])
        assert row["regret"] == pytest.approx(best_response_value(partner) - row["utility"])
        assert row["episodes"] == 4  # the member in either seat
    s = result.summary
    worst = min(table.values(), key=lambda r: r["utility"])
    assert (s["worst_case"], s["worst_scenario"]) == (worst["utility"], worst["scenario"])
    assert s["worst_case_regret"] == pytest.approx(max(r["regret"] for r in table.values()))
    assert s["worst_case_regret"] == pytest.approx(10.0)  # tat-for-tit: BR 15, tit-for-tat gets 5
    assert s["regret_known_for"] == 9


def test_self_play_scenario_and_given_best_responses(ipd_train):
    result = evaluate_population(
        "ipd/tit-for-tat", ipd_train, scenarios=["c2", "c1:always-defect"], best_responses={"c2": 12.0}, episodes=1
    )
    assert result.utilities() == {"c2": 12.0, "c1:always-defect": 2.0}
    assert [r["regret"] for r in result.scenarios] == [0.0, None]


def test_tag_focal_per_capita_return_with_scripted_runners(tmp_path):
    population = {"evasive": "tag/evasive-runner", "still": "tag/still"}
    result = evaluate_population("tag/greedy-chaser", population, tag_env, member_seats=[RUNNER], episodes=2, seed=5)
    assert [r["scenario"] for r in result.scenarios] == ["c2:evasive", "c2:still"]
    rets = play_tag(
        {CHASERS[0]: "tag/greedy-chaser", CHASERS[1]: "tag/greedy-chaser", RUNNER: "tag/evasive-runner"}, 2, 5
    )
    per_capita = (rets[CHASERS[0]] + rets[CHASERS[1]]) / 2
    assert result.utilities()["c2:evasive"] == pytest.approx(per_capita.mean())
    assert all(r["focal_seats"] == "+".join(CHASERS) for r in result.rows)  # the agent only fits chaser seats
    data = json.loads(result.to_json(tmp_path / "p.json").read_text())
    assert data["summary"]["worst_case_regret"] is None and len(data["rows"]) == 4
    assert result.to_csv(tmp_path / "p.csv").read_text().count("\n") == 5


@pytest.mark.slow  # loads torch and SB3 (about 5 s of imports)
def test_an_sb3_zoo_member_as_the_agent():
    runners = open_population(POPULATIONS / "tag" / "runners" / "1")
    result = evaluate_population(
        runners["runner-0"],
        {"greedy": "tag/greedy-chaser"},
        tag_env,
        scenarios=["c1:greedy+greedy"],
        member_seats=list(CHASERS),
        episodes=1,
    )
    assert [r["scenario"] for r in result.scenarios] == ["c1:greedy+greedy"]
    assert result.rows[0]["focal_seats"] == RUNNER
    assert result.rows[0]["focal_per_capita_return"] == result.rows[0][f"return:{RUNNER}"] < 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"scenarios": ["c1:nobody"]}, ConfigError, r"members \['nobody'\] that are not in the population"),
        ({"scenarios": ["c3"]}, ConfigError, "fills 3 seats but the environment has 2"),
        ({"member_seats": ["x"]}, SeatError, "member_seats must be seats"),
        ({"episodes": 0}, ConfigError, "episodes"),
        ({"best_responses": {"nobody": 1.0}}, ConfigError, "neither a scenario id"),
    ],
)
def test_bad_input_raises_typed_errors(ipd_train, kwargs, error, match):
    with pytest.raises(error, match=match):
        evaluate_population("ipd/tit-for-tat", ipd_train, **kwargs)


def test_a_mapping_population_needs_an_env():
    with pytest.raises(ConfigError, match="pass env_fn"):
        evaluate_population("ipd/tit-for-tat", {"ad": "ipd/always-defect"})
    with pytest.raises(SpaceMismatchError, match="member 'g' in seat 'agent_0'"):
        evaluate_population("tag/greedy-chaser", {"g": "tag/greedy-chaser"}, tag_env, member_seats=[RUNNER])
    with pytest.raises(SeatError, match="no seating"):  # c2:g needs the runner in two seats
        evaluate_population("tag/evasive-runner", {"g": "tag/greedy-chaser"}, tag_env, member_seats=list(CHASERS))
    assert evaluate_population("ipd/tit-for-tat", {"ad": "ipd/always-defect"}, ipd_env, episodes=1).utilities() == {
        "c1:ad": 2.0
    }
