"""Fictitious play as the paper defines it: past snapshots in focal seats, the learner paid per capita."""

import json

import gymnasium as gym
import numpy as np
import pytest
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from rqe_wrappers import ConfigError, ConstantPolicy
from rqe_wrappers.aht.scenarios import Scenario, ScenarioSet
from rqe_wrappers.aht.wrapper import aht_wrap, fictitious_play_scenarios
from rqe_wrappers.core.snapshot import share
from rqe_wrappers.envs.ipd import ipd_env
from rqe_wrappers.envs.matrix import coordination_game

pytestmark = pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning")


class SeatGame(ParallelEnv):
    """One step, three interchangeable seats; seat ``i`` taking action ``a`` gets ``a + 10 * i``."""

    metadata = {"name": "seat_game_v0"}

    def __init__(self):
        self.possible_agents = ["p0", "p1", "p2"]
        self.agents = []

    def observation_space(self, agent):
        return gym.spaces.Box(0.0, 1.0, (1,), np.float32)

    def action_space(self, agent):
        return gym.spaces.Discrete(3)

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        return {a: np.zeros(1, np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        rewards = {a: float(actions[a]) + 10.0 * i for i, a in enumerate(self.possible_agents)}
        done = {a: True for a in self.agents}
        obs = {a: np.zeros(1, np.float32) for a in self.agents}
        self.agents = []
        return obs, rewards, done, {a: False for a in done}, {a: {} for a in done}


def constant(env, action):
    seat = env.possible_agents[0]
    return ConstantPolicy(env.observation_space(seat), env.action_space(seat), action)


def play(env, action, scenario, seed):
    """One episode with the learner always taking ``action``; ``(seating, rewards, last info)``."""
    env.reset(seed=seed, options={"scenario": scenario})
    seating, rewards = env.seating, []
    while env.agents:
        _, r, _, _, info = env.step({"focal": action})
        rewards.append(r["focal"])
    return seating, rewards, info["focal"]


# ---- the scenarios ------------------------------------------------------------------------------------
def test_the_scenarios_put_one_past_snapshot_in_every_other_seat_as_a_focal_player():
    env = aht_wrap(SeatGame(), {}, "fictitious-play", fp_capacity=3)
    assert env.scenarios.ids == ("c3@fp/0", "c3@fp/1", "c3@fp/2")
    assert [s.n_focal for s in env.scenarios] == [3, 3, 3]
    assert [s.focal_snapshot for s in env.scenarios] == ["fp/0", "fp/1", "fp/2"]
    assert env.scenarios.self_play_index is None and not any(s.is_self_play for s in env.scenarios)
    old = aht_wrap(SeatGame(), {}, "fictitious-play", fp_capacity=3, fp_focal=False)
    assert old.scenarios.ids == ("c1:fp/0+fp/0", "c1:fp/1+fp/1", "c1:fp/2+fp/2")
    assert fictitious_play_scenarios(2, ["a"]).ids == ("c2@a",)


def test_a_scenario_with_a_focal_snapshot_round_trips_and_is_checked():
    s = Scenario(2, ("always-d",), "fp/1")
    assert s.id == "c2@fp/1:always-d" and Scenario.from_id(s.id) == s and s.members == ("always-d", "fp/1")
    assert Scenario.from_id("c2") == Scenario(2) and Scenario.from_id("c2").focal_snapshot is None
    fp = ScenarioSet(3, ("always-d", "fp/1"), (s, Scenario(3, (), "fp/1"), Scenario(3)))
    data = fp.to_dict()
    assert data["version"] == 2 and ScenarioSet.from_dict(data) == fp
    assert ScenarioSet.all(2, ["a"]).to_dict()["version"] == 1  # what 0.2 reads
    assert "copies played by fp/1" in fp.describe()
    with pytest.raises(ConfigError, match="n_focal=1"):
        Scenario(1, ("a",), "fp/0")
    with pytest.raises(ConfigError, match="must not contain"):
        Scenario(2, (), "fp:0")
    with pytest.raises(ConfigError, match="bad scenario id"):
        Scenario.from_id("c2@")
    with pytest.raises(ConfigError, match=r"members \['fp/9'\]"):
        ScenarioSet(2, ("fp/0",), (Scenario(2, (), "fp/9"),))


# ---- who sits where -------------------------------------------------------------------------------
def test_the_past_snapshot_plays_every_other_seat_as_a_focal_copy():
    env = aht_wrap(SeatGame(), {}, "fictitious-play", fp_capacity=3, snapshot_name="fp-seats")
    share("fp-seats/fp/1", constant(env, 2))  # what AHTCallback shares for slot 1
    share("fp-seats", constant(env, 0))  # the current learner: must not play in an FP scenario
    for seed in range(6):
        seating, _, info = play(env, 1, "c3@fp/1", seed)
        learner = info["seat"]
        assert seating[learner] == ("learner", "focal")
        assert {seat: kind for seat, kind in seating.items() if seat != learner} == {
            seat: ("copy", "fp-seats/fp/1") for seat in ("p0", "p1", "p2") if seat != learner
        }
        played = {seat: r - 10 * int(seat[1]) for seat, r in info["raw_rewards"].items()}
        assert played == {seat: (1.0 if seat == learner else 2.0) for seat in ("p0", "p1", "p2")}
    env.set_prior([0, 0, 1])
    assert {play(env, 1, None, seed)[2]["scenario"] for seed in range(5)} == {"c3@fp/2"}


# ---- what the learner is paid ---------------------------------------------------------------------------
def test_the_learner_is_paid_the_mean_over_all_seats_exactly():
    env = aht_wrap(SeatGame(), {}, "fictitious-play", fp_capacity=2, snapshot_name="fp-pay")
    share("fp-pay/fp/0", constant(env, 2))
    for seed in range(6):
        _, rewards, info = play(env, 1, "c3@fp/0", seed)
        # seats p0, p1, p2 get 10 * i + action; the learner plays 1, the two snapshots 2
        assert rewards == [pytest.approx((0 + 10 + 20 + 1 + 2 + 2) / 3)] == [pytest.approx(35 / 3)]
        assert info["focal_return"] == pytest.approx(35 / 3)
    old = aht_wrap(SeatGame(), {}, "fictitious-play", fp_capacity=2, snapshot_name="fp-pay", fp_focal=False)
    for seed in range(6):  # background partners: the learner's own reward, which depends on its seat
        _, rewards, info = play(old, 1, "c1:fp/0+fp/0", seed)
        assert rewards == [1.0 + 10 * int(info["seat"][1])]


@pytest.mark.parametrize("aec", [False, True])
def test_on_the_ipd_fp_pays_per_capita_exactly_like_self_play(aec):
    def make(prior, **kw):
        game = parallel_to_aec(ipd_env(3)) if aec else ipd_env(3)
        return aht_wrap(game, {}, prior, snapshot_name=f"ipd-{aec}", **kw)

    fp, sp, old = make("fictitious-play", fp_capacity=2), make("self-play"), make("fictitious-play", fp_focal=False)
    cooperator = constant(ipd_env(3), 0)
    share(f"ipd-{aec}/fp/0", cooperator)
    share(f"ipd-{aec}", cooperator)
    defect, cooperate = 1, 0
    for seed in range(4):  # AEC counts a seat's reward on its own turn: compare whole episodes there
        for action, per_round in ((defect, 2.5), (cooperate, 4.0)):  # (5 + 0) / 2 and (4 + 4) / 2 per round
            fp_rewards, sp_rewards = play(fp, action, "c2@fp/0", seed)[1], play(sp, action, "c2", seed)[1]
            assert sum(fp_rewards) == sum(sp_rewards) == 3 * per_round
            assert aec or fp_rewards == sp_rewards == [per_round] * 3
        assert sum(play(old, defect, "c1:fp/0", seed)[1]) == 15.0  # the own return: defection pays more
    assert play(fp, defect, "c2@fp/0", 0)[2]["focal_return"] == 7.5


# ---- training with SB3 --------------------------------------------------------------------------------
def make_model(**settings):
    import torch
    from stable_baselines3 import PPO

    from rqe_wrappers.sb3 import make_vec_env

    torch.set_num_threads(1)
    venv = make_vec_env(
        lambda: aht_wrap(coordination_game(cost=0.5), {}, "fictitious-play", **settings), n_copies=2, seed=0
    )
    return PPO(
        "MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu", policy_kwargs={"net_arch": [8]}
    )


def test_the_callback_shares_past_snapshots_that_play_the_focal_seats(tmp_path):
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList

    class Paid(BaseCallback):
        """(scenario, reward PPO got, every seat's reward) per env step."""

        def __init__(self):
            super().__init__()
            self.pairs = []

        def _on_step(self):
            for reward, info in zip(self.locals["rewards"], self.locals["infos"], strict=True):
                self.pairs.append((info["scenario"], float(reward), list(info["raw_rewards"].values())))
            return True

    from rqe_wrappers.core.snapshot import shared
    from rqe_wrappers.sb3 import AHTCallback

    model, cb = make_model(fp_capacity=4, snapshot_name="fp-train"), AHTCallback()
    model.learn(256, callback=cb)
    assert cb.scenarios.ids == ("c2@fp/0", "c2@fp/1", "c2@fp/2", "c2@fp/3")
    assert cb.fp_seen == 3 and cb.beta.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0])
    for slot in range(3):  # slot k's shared snapshot is the callback's k-th kept policy, not the learner
        assert shared(f"fp-train/fp/{slot}") is cb._fp_policies[slot]
    assert shared("fp-train") not in cb._fp_policies.values()
    seen = cb.utilities[~np.isnan(cb.utilities)]
    assert len(seen) == 2  # slot 2 was filled at the last rollout end
    cb.save(tmp_path / "fp")
    restored = AHTCallback.load(tmp_path / "fp")
    model.learn(128, callback=CallbackList([restored, paid := Paid()]), reset_num_timesteps=False)
    assert restored.fp_seen == 4 and restored.fp_filled.all()
    # what PPO was paid, each one-step episode: the mean of both seats' rewards, never the own one
    assert len(paid.pairs) == 128 and {sid for sid, _, _ in paid.pairs} <= set(cb.scenarios.ids[:3])
    assert all(reward == pytest.approx(np.mean(raw)) for _, reward, raw in paid.pairs)
    assert any(max(raw) != min(raw) for _, _, raw in paid.pairs)  # some episodes had one free-rider


def test_a_state_saved_before_fp_was_focal_still_loads_and_resumes_only_as_it_was_trained(tmp_path):
    pytest.importorskip("stable_baselines3")
    from rqe_wrappers.sb3 import AHTCallback
    from rqe_wrappers.sb3.aht_state import read_state, state_paths

    model, cb = make_model(fp_capacity=4, fp_focal=False), AHTCallback()
    model.learn(128, callback=cb)
    json_path, _ = cb.save(tmp_path / "old")
    state = json.loads(json_path.read_text())
    assert state["version"] == 3 and state["config"]["fp_focal"] is False
    # what 0.2 wrote: version 2, no fp_focal, background scenarios c1:fp/<k>
    v2 = state | {"version": 2, "config": {k: v for k, v in state["config"].items() if k != "fp_focal"}}
    json_path.write_text(json.dumps(v2))
    upgraded, weights = read_state(tmp_path / "old")
    assert upgraded["config"]["fp_focal"] is False and sorted(weights) == [0, 1]
    assert state_paths(tmp_path / "old.zip")[0] == json_path
    with pytest.raises(ConfigError, match=r"background partners.*focal players.*fp_focal=False"):
        make_model(fp_capacity=4).learn(64, callback=AHTCallback.load(tmp_path / "old"))
    restored = AHTCallback.load(tmp_path / "old")
    model.learn(128, callback=restored, reset_num_timesteps=False)
    assert restored.fp_seen == 3 and restored.scenarios.ids[0] == "c1:fp/0"


@pytest.mark.slow
def test_on_the_ipd_fp_learns_to_cooperate_where_background_fp_defects():
    pytest.importorskip("stable_baselines3")
    import dataclasses

    from rqe_wrappers.experiments.ipd.evaluation import as_table
    from rqe_wrappers.experiments.ipd.settings import DEFAULT_SETTINGS
    from rqe_wrappers.experiments.ipd.training import train_learner

    p_defect = {}
    for focal in (True, False):
        settings = dataclasses.replace(DEFAULT_SETTINGS, fp_focal=focal)
        model, _, _ = train_learner("FP", 0, 4096, settings)
        p_defect[focal] = as_table(model, 3).table.mean()
    # measured: 0.02 (focal, paid per capita) vs 0.74 (background, own return) after 4 rollouts
    assert p_defect[True] < 0.2 and p_defect[False] > 0.5
