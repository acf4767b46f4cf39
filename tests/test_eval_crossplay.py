"""Cross-play (rqe_wrappers.eval.crossplay) against exact values: matrix games, the IPD, Tag, an AEC game."""

from __future__ import annotations

import csv
import json

import gymnasium as gym
import numpy as np
import pytest
from pettingzoo.classic import tictactoe_v3
from pettingzoo.utils.wrappers import BaseParallelWrapper

from rqe_wrappers.core.policy import ConstantPolicy, DiscretePolicy, Policy
from rqe_wrappers.envs.ipd import ipd_env
from rqe_wrappers.envs.matrix import coordination_game
from rqe_wrappers.envs.tag import CHASERS, RUNNER, tag_env
from rqe_wrappers.errors import ConfigError, SeatError, SpaceMismatchError
from rqe_wrappers.eval import as_policy, crossplay, read_crossplay
from rqe_wrappers.experiments.tag.evaluation import play_tag
from rqe_wrappers.partners.ipd import expected_return, make_partner
from rqe_wrappers.srpo.roles import with_role_space

COST = 0.5
OBS = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
TWO = gym.spaces.Discrete(2)


class CostInfo(BaseParallelWrapper):
    """The coordination game with each player's private cost (``COST`` per collaboration) in ``infos``."""

    def step(self, actions):
        obs, rew, term, trunc, _ = super().step(actions)
        return obs, rew, term, trunc, {a: {"cost": COST * int(actions[a])} for a in actions}


def coordination_with_costs():
    return CostInfo(coordination_game(COST))


def coordination_agents():
    return {"collab": ConstantPolicy(OBS, TWO, 1), "free": ConstantPolicy(OBS, TWO, 0)}


def test_coordination_matrix_costs_and_rows_are_exact():
    result = crossplay(coordination_agents(), coordination_with_costs, episodes=3)
    assert result.agents == ("collab", "free")
    # row agent's payoff: 1 if anyone collaborates, minus its own cost
    np.testing.assert_allclose(result.matrix(), [[1 - COST, 1 - COST], [1.0, 0.0]])
    np.testing.assert_allclose(result.matrix("agent_cost"), [[COST, COST], [0.0, 0.0]])
    np.testing.assert_allclose(result.matrix("partner_cost"), [[COST, 0.0], [COST, 0.0]])
    assert len(result.rows) == 4 * 2 * 3  # every ordered pairing: episodes with each seating
    seats = {(r["agent"], r["partner"], r["agent_seat"]) for r in result.rows}
    assert ("collab", "free", "player_0") in seats and ("collab", "free", "player_1") in seats
    assert sorted({r["seed"] for r in result.rows}) == [0, 1, 2]


def test_ipd_crossplay_equals_the_exact_expected_returns():
    names = ["ipd/tit-for-tat", "ipd/always-defect", "ipd/tat-for-tit", "ipd/cooperate-until-defected"]
    result = crossplay({n: n for n in names}, ipd_env, episodes=2, methods={names[0]: "nice", names[3]: "nice"})
    assert result.agents == (names[0], names[3], names[1], names[2])  # grouped by method
    m = result.matrix()
    for i, a in enumerate(result.agents):
        for j, b in enumerate(result.agents):
            assert m[i, j] == pytest.approx(expected_return(make_partner(a), make_partner(b))[0])


def test_a_stochastic_ipd_agent_matches_its_expectation():
    result = crossplay({"r": "ipd/random", "tft": "ipd/tit-for-tat"}, ipd_env, episodes=200, seed=3)
    exact = expected_return(make_partner("ipd/random"), make_partner("ipd/tit-for-tat"))[0]
    values = result.values("r", "tft")
    assert abs(values.mean() - exact) < 4 * values.std() / np.sqrt(values.size)


class Alternate(Policy):
    """Recurrent: C, D, C, ... counting its own moves in its state."""

    def initial_state(self, batch_size):
        return np.zeros(batch_size, np.int64)

    def act(self, obs, *, rng, mask=None, state=None):
        return state % 2, state + 1


def test_recurrent_state_is_carried_through_each_episode():
    env = ipd_env()
    agent = Alternate(env.observation_space("player_0"), TWO)
    result = crossplay({"alt": agent, "ac": "ipd/always-cooperate"}, ipd_env, episodes=2)
    assert result.values("alt", "ac").tolist() == [4 + 5 + 4] * 4  # C, D, C against C, C, C


class PartnerOnly(DiscretePolicy):
    """An SRPO-trained stand-in: cooperates in the partner role, defects in the shadow role."""

    def action_probs(self, obs, *, state=None):
        partner = np.asarray(obs)[:, -2]
        return np.stack([partner, 1 - partner], axis=1)


def test_an_srpo_agent_plays_in_the_partner_role():
    space = ipd_env().observation_space("player_0")
    agent = PartnerOnly(with_role_space(space), TWO)
    result = crossplay({"srpo": agent, "ad": "ipd/always-defect"}, ipd_env, episodes=1)
    assert result.values("srpo", "ad").tolist() == [0.0, 0.0]  # always cooperates: the sucker's payoff
    with pytest.raises(SpaceMismatchError, match="agent 'x' in seat"):
        crossplay({"x": ConstantPolicy(gym.spaces.Box(0, 1, (3,)), TWO, 0)}, ipd_env)


def test_tag_with_scripted_partners_matches_play_tag():
    agents = {"greedy": "tag/greedy-chaser", "still": "tag/still"}
    result = crossplay(
        agents, tag_env, seats=list(CHASERS), background={RUNNER: "tag/evasive-runner"}, episodes=2, seed=7
    )
    # scripted Tag policies are deterministic: the same reset seeds give play_tag's episodes exactly
    rets = play_tag({CHASERS[0]: "tag/greedy-chaser", CHASERS[1]: "tag/still", RUNNER: "tag/evasive-runner"}, 2, 7)
    rows = [r for r in result.rows if r["agent"] == "greedy" and r["partner"] == "still"]
    first_seat = [r for r in rows if r["agent_seat"] == CHASERS[0]]
    assert [r["agent_return"] for r in first_seat] == pytest.approx(rets[CHASERS[0]].tolist())
    assert [r[f"return:{RUNNER}"] for r in first_seat] == pytest.approx(rets[RUNNER].tolist())
    assert all(r["length"] == 100 for r in result.rows)


class FirstLegal(Policy):
    """The lowest legal action."""

    def act(self, obs, *, rng, mask=None, state=None):
        return np.argmax(np.asarray(mask, bool), axis=1), state


def test_aec_game_with_action_masks():
    env = tictactoe_v3.env()
    first = FirstLegal(env.observation_space("player_1"), env.action_space("player_1"))
    result = crossplay({"first": first}, tictactoe_v3.env, episodes=2)
    # squares 0..6 in turn: player_1 holds 0, 2, 4, 6 and wins on the 2-4-6 diagonal at move 7
    for r in result.rows:
        assert r["length"] == 7
        assert r["agent_return"] == (1.0 if r["agent_seat"] == "player_1" else -1.0)


def _random_tictactoe():
    from rqe_wrappers.core.policy import RandomPolicy

    env = tictactoe_v3.env()
    spaces = env.observation_space("player_1"), env.action_space("player_1")
    return {"a": RandomPolicy(*spaces), "b": RandomPolicy(*spaces), "first": FirstLegal(*spaces)}


def test_results_do_not_depend_on_workers_and_masks_are_honoured():
    kwargs = dict(episodes=6, seed=11, batch=4)
    here = crossplay(_random_tictactoe(), tictactoe_v3.env, **kwargs)
    spread = crossplay(_random_tictactoe(), tictactoe_v3.env, n_workers=2, **kwargs)
    assert json.dumps(here.rows) == json.dumps(spread.rows)
    assert all(r["length"] >= 5 and r["agent_return"] in (-1.0, 0.0, 1.0) for r in here.rows)  # no illegal move
    again = crossplay(_random_tictactoe(), tictactoe_v3.env, **kwargs)
    assert json.dumps(again.rows) == json.dumps(here.rows)
    other = crossplay(_random_tictactoe(), tictactoe_v3.env, **{**kwargs, "seed": 12})
    assert json.dumps(other.rows) != json.dumps(here.rows)


def test_tables_round_trip(tmp_path):
    result = crossplay(coordination_agents(), coordination_game, episodes=2, methods={"free": "lazy"})
    result.to_csv(tmp_path / "t.csv")
    with open(tmp_path / "t.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(result.rows) == 16
    assert rows[0]["agent_cost"] == ""  # the env reports no cost
    assert {"agent", "partner", "agent_seat", "episode", "return:player_0", "agent_method"} <= set(rows[0])
    back = read_crossplay(result.to_json(tmp_path / "t.json"))
    np.testing.assert_array_equal(back.matrix(), result.matrix())
    assert back.methods == {"collab": "collab", "free": "lazy"}
    with pytest.raises(ConfigError, match="not a cross-play table"):
        read_crossplay(tmp_path / "t.csv")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"agents": {"x": "no/such-policy"}}, ConfigError, "unknown agent 'no/such-policy'"),
        ({"agents": {"x": 3}}, ConfigError, "expected a rqe_wrappers Policy"),
        ({"seats": ["player_0", "nobody"]}, SeatError, r"\['nobody'\] are not seats"),
        ({"seats": ["player_0", "player_0"]}, SeatError, "two different seats"),
        ({"episodes": 0}, ConfigError, "episodes must be in"),
        ({"n_workers": -1}, ConfigError, "n_workers"),
        ({"methods": {"ghost": "m"}}, ConfigError, r"not in agents: \['ghost'\]"),
        ({"background": {"player_1": "ipd/random"}}, SeatError, "not background seats"),
        ({"agents": {}}, ConfigError, "at least one agent"),
        ({"agents": {"x": {"player_0": "ipd/random"}}}, SeatError, "not for seat 'player_1'"),
    ],
)
def test_bad_input_raises_typed_errors(kwargs, error, match):
    args = {"agents": {"tft": "ipd/tit-for-tat"}, "env_fn": ipd_env, **kwargs}
    with pytest.raises(error, match=match):
        crossplay(**args)


def test_tag_needs_its_background_seat():
    with pytest.raises(SeatError, match=r"missing \['agent_0'\]"):
        crossplay({"g": "tag/greedy-chaser"}, tag_env, seats=list(CHASERS))


def test_as_policy_builds_scripted_policies_with_the_seat_spaces_and_env_kwargs():
    env = ipd_env(rounds=2)
    pol = as_policy("ipd/tit-for-tat", env.observation_space("player_0"), TWO, scripted_kwargs={"rounds": 2})
    assert pol.rounds == 2
    with pytest.raises(SpaceMismatchError, match="acts in"):
        as_policy(ConstantPolicy(OBS, gym.spaces.Discrete(3), 0), OBS, TWO)


def test_a_learner_snapshot_plays_as_the_policy_shared_now():
    from rqe_wrappers.core.snapshot import SnapshotPolicy, share

    snapshot = SnapshotPolicy(OBS, TWO, "eval-learner")
    with pytest.raises(ConfigError, match="nothing is shared as the learner snapshot 'eval-learner'"):
        crossplay({"learner": snapshot}, coordination_game)
    share("eval-learner", ConstantPolicy(OBS, TWO, 1))
    result = crossplay({"learner": snapshot, "free": ConstantPolicy(OBS, TWO, 0)}, coordination_game, episodes=1)
    assert result.matrix().tolist() == [[1 - COST, 1 - COST], [1.0, 0.0]]


def test_heterogeneous_seats_take_one_agent_per_seat():
    teams = {
        "hunter": {CHASERS[0]: "tag/greedy-chaser", RUNNER: "tag/evasive-runner"},
        "statue": {CHASERS[0]: "tag/still", RUNNER: "tag/still"},
    }
    seats = [CHASERS[0], RUNNER]
    result = crossplay(teams, tag_env, seats=seats, background={CHASERS[1]: "tag/still"}, episodes=1, seed=2)
    row = next(r for r in result.rows if (r["agent"], r["partner"], r["agent_seat"]) == ("hunter", "statue", RUNNER))
    rets = play_tag({CHASERS[0]: "tag/still", CHASERS[1]: "tag/still", RUNNER: "tag/evasive-runner"}, 1, 2)
    assert row["agent_return"] == pytest.approx(rets[RUNNER][0])  # the hunter team's runner against still chasers
    with pytest.raises(SpaceMismatchError, match=r"pass \{seat: agent\}"):
        crossplay({"g": "tag/greedy-chaser"}, tag_env, seats=seats, background={CHASERS[1]: "tag/still"})


def test_a_whole_population_as_one_agent_is_refused_naming_the_fix():
    from rqe_wrappers.zoo import load_population

    population = load_population("ipd/train")
    with pytest.raises(ConfigError, match=r"is the population ipd/train@1 \(9 members\): pass its members"):
        crossplay({"pop": population}, ipd_env)
