"""Heterogeneous seats: teams, the shadow drawn inside the learner's team, default policies for the rest."""

import numpy as np
import pytest
from mpe2 import simple_adversary_v3, simple_push_v3, simple_speaker_listener_v4, simple_tag_v3, simple_world_comm_v3
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

from rqe_wrappers import ConfigError, ConstantPolicy, RandomPolicy, SeatError, srpo_wrap
from rqe_wrappers.envs.matrix import coordination_game
from rqe_wrappers.srpo.teams import infer_teams, name_group, plan_teams

pytestmark = pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning")

CHASERS = ["adversary_0", "adversary_1", "adversary_2"]


def headline(parallel=True, **kw):
    """The README's headline env: mpe2's simple_tag with its defaults (3 chasers, 1 runner)."""
    return (simple_tag_v3.parallel_env if parallel else simple_tag_v3.env)(**kw)


def test_headline_default_teams_chasers_learn_runner_random():
    env = srpo_wrap(headline())
    assert env.possible_agents == CHASERS
    assert env.teams == {"adversary": CHASERS}
    assert env.all_teams == {"adversary": CHASERS, "agent": ["agent_0"]}
    (runner,) = env.default_fixed.values()
    assert isinstance(runner, RandomPolicy) and list(env.default_fixed) == ["agent_0"]
    spaces = [env.observation_space(a) for a in env.possible_agents]
    assert all(s == spaces[0] for s in spaces)  # the learning seats share one space: one SB3 model fits


def test_shadow_is_never_the_runner_and_every_chaser_gets_it():
    env = srpo_wrap(headline(), tau=1.0)
    env.reset(seed=0)
    counts = dict.fromkeys(CHASERS, 0)
    for _ in range(200):
        _, infos = env.reset()
        assert len(env.shadows) == 1 and env.shadows <= set(CHASERS)
        (shadow,) = env.shadows
        counts[shadow] += 1
        assert infos[shadow]["role"] == "shadow"
    assert all(c > 40 for c in counts.values()), counts  # about 200/3 each


def test_the_random_runner_moves_and_is_seeded():
    def runner_trace(seed):
        env = srpo_wrap(headline(max_cycles=10), tau=1.0)
        env.reset(seed=seed)
        trace = []
        while env.agents:
            obs, *_ = env.step({a: 0 for a in env.agents})  # chasers stand still
            trace.append(np.round(obs["adversary_0"][-4:-2], 5).tolist())  # the runner's velocity, seen by a chaser
        return trace

    a, b, c = runner_trace(3), runner_trace(3), runner_trace(4)
    assert a == b and a != c
    assert any(v != [0.0, 0.0] for v in a)  # it is not standing still


@pytest.mark.filterwarnings("ignore:SRPO with normalize_advantage")
def test_headline_trains_with_stock_ppo_as_written():
    """`PettingZooVecEnv(lambda: srpo_wrap(simple_tag_v3.parallel_env()), n_copies=4)` + PPO + SRPOCallback."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    from rqe_wrappers.sb3 import PettingZooVecEnv, SRPOCallback

    class Roles(BaseCallback):
        seen: set = set()
        fractions: list = []

        def _on_step(self):
            for info in self.locals["infos"]:
                self.seen.add(info["role"])
            return True

        def _on_rollout_end(self):  # after SRPOCallback's
            self.fractions.append(self.logger.name_to_value["srpo/shadow_fraction"])

    venv = PettingZooVecEnv(lambda: srpo_wrap(simple_tag_v3.parallel_env()), n_copies=4)
    assert venv.num_envs == 12  # 3 chasers x 4 copies; the runner is no slot
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=96, n_epochs=2, policy_kwargs=dict(net_arch=[8]), seed=0)
    srpo = SRPOCallback()
    model.learn(384, callback=[srpo, Roles()])
    assert model.num_timesteps >= 384
    assert Roles.seen == {"partner", "shadow"}
    assert Roles.fractions == [pytest.approx(1 / 3)] * 2  # one shadow among the 3 chasers, never the runner
    venv.close()


@pytest.mark.parametrize("tau", [0.0, 1.5])
def test_api_tests_on_default_teams(tau):
    parallel_api_test(srpo_wrap(headline(max_cycles=25), tau=tau), num_cycles=30)
    api_test(srpo_wrap(headline(parallel=False, max_cycles=25), tau=tau), num_cycles=30)
    parallel_api_test(srpo_wrap(simple_adversary_v3.parallel_env(max_cycles=25), tau=tau), num_cycles=30)


def test_seed_tests_on_default_teams():
    parallel_seed_test(lambda: srpo_wrap(headline(max_cycles=25), tau=1.0))
    seed_test(lambda: srpo_wrap(headline(parallel=False, max_cycles=25), tau=1.0))


def test_swap_the_default_with_fixed():
    e = headline()
    still = ConstantPolicy(e.observation_space("agent_0"), e.action_space("agent_0"), 0)
    env = srpo_wrap(e, fixed={"agent_0": still})
    assert env.default_fixed == {} and env.possible_agents == CHASERS


def test_configured_teams_and_shadow_per_team():
    """Two learning teams of two: one shadow in each, paid minus its own team's mean reward."""
    e = simple_tag_v3.parallel_env(num_good=2, num_adversaries=2, max_cycles=10)
    teams = {"chasers": ["adversary_0", "adversary_1"], "runners": ["agent_0", "agent_1"]}
    env = srpo_wrap(e, tau=1.0, teams=teams, learn=["chasers", "runners"])
    assert env.default_fixed == {} and env.teams == teams
    env.reset(seed=0)
    for _ in range(20):
        env.reset()
        assert len(env.shadows & set(teams["chasers"])) == 1 and len(env.shadows & set(teams["runners"])) == 1
    _, rew, _, _, infos = env.step({a: 1 for a in env.agents})
    raw = infos["agent_0"]["raw_rewards"]
    for members in teams.values():
        (shadow,) = env.shadows & set(members)
        (partner,) = set(members) - {shadow}
        assert rew[shadow] == pytest.approx(-raw[partner]) and rew[partner] == raw[partner]


def test_learn_picks_the_team_and_the_rest_play_randomly():
    e = simple_adversary_v3.parallel_env()  # adversary_0 vs agent_0, agent_1 (the larger team learns)
    env = srpo_wrap(e)
    assert env.possible_agents == ["agent_0", "agent_1"] and list(env.default_fixed) == ["adversary_0"]
    teams = {"red": ["adversary_0", "adversary_1", "adversary_2"], "blue": ["agent_0"]}
    env = srpo_wrap(headline(), teams=teams, learn="red")
    assert env.possible_agents == CHASERS


def test_symmetric_envs_keep_one_team():
    assert infer_teams(coordination_game(), {}) == {"player": ["player_0", "player_1"]}
    env = srpo_wrap(coordination_game(), tau=1.0)
    assert env.teams == {"player": ["player_0", "player_1"]} and env.default_fixed == {}
    e = headline()
    runner = RandomPolicy(e.observation_space("agent_0"), e.action_space("agent_0"))
    assert plan_teams(e, fixed={"agent_0": runner}).teams == {"adversary": CHASERS}
    assert name_group("adversary_12") == "adversary" and name_group("alice") == "alice"


def test_lead_adversary_is_on_the_adversary_team():
    env = srpo_wrap(simple_world_comm_v3.parallel_env())
    assert env.all_teams["adversary"] == ["leadadversary_0", "adversary_0", "adversary_1", "adversary_2"]
    # the leader (Discrete(20)) cannot share the adversaries' network: it is played, not learned
    assert env.teams == {"adversary": ["adversary_0", "adversary_1", "adversary_2"]}
    assert list(env.default_fixed) == ["leadadversary_0", "agent_0", "agent_1"]


@pytest.mark.filterwarnings("ignore:SRPO with normalize_advantage")
def test_cooperative_heterogeneous_seats_padded_into_one_team():
    """speaker/listener: pad with SuperSuit, one team, seat identity; one SB3 model learns both seats."""
    ss = pytest.importorskip("supersuit")
    from stable_baselines3 import PPO

    from rqe_wrappers.sb3 import PettingZooVecEnv, SRPOCallback

    def make():
        e = ss.pad_action_space_v0(ss.pad_observations_v0(simple_speaker_listener_v4.parallel_env(max_cycles=25)))
        return srpo_wrap(e, tau=1.0, teams={"pair": ["speaker_0", "listener_0"]}, seat_id=True)

    env = make()
    obs, infos = env.reset(seed=0)
    assert obs["speaker_0"][-4:-2].tolist() == [1, 0] and obs["listener_0"][-4:-2].tolist() == [0, 1]
    assert {i["role"] for i in infos.values()} == {"partner", "shadow"}
    parallel_api_test(make(), num_cycles=10)
    venv = PettingZooVecEnv(make, n_copies=2)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, policy_kwargs=dict(net_arch=[8]), seed=0)
    model.learn(128, callback=SRPOCallback())
    venv.close()


# ---- bad input: one test each ------------------------------------------------------------------
def test_no_default_names_the_fix():
    with pytest.raises(SeatError, match=r"equally large.*teams=\{'adversary': \['adversary_0'\], 'agent'.*learn="):
        srpo_wrap(simple_push_v3.parallel_env())  # one adversary, one agent, different spaces


def test_heterogeneous_seats_without_team_names():
    with pytest.raises(SeatError, match=r"cannot tell the teams.*teams=\{'all': \['speaker_0', 'listener_0'\]\}.*pad"):
        srpo_wrap(simple_speaker_listener_v4.parallel_env())


def test_learning_team_of_one():
    with pytest.raises(SeatError, match="no team has two learning seats"):
        srpo_wrap(simple_push_v3.parallel_env(), learn=["adversary", "agent"])


def test_bad_teams():
    with pytest.raises(SeatError, match="do not exist"):
        srpo_wrap(headline(), teams={"a": ["adversary_0", "nobody"]})
    with pytest.raises(SeatError, match="two teams"):
        srpo_wrap(headline(), teams={"a": CHASERS, "b": ["adversary_0", "agent_0"]})
    with pytest.raises(SeatError, match=r"in no team.*fixed="):
        srpo_wrap(headline(), teams={"a": CHASERS})
    with pytest.raises(SeatError, match="no team"):
        srpo_wrap(headline(), learn="chasers")
    with pytest.raises(ConfigError, match="teams must be"):
        srpo_wrap(headline(), teams=["adversary_0"])


def test_n_shadows_bounded_by_the_smallest_learning_team():
    e = simple_tag_v3.parallel_env(num_good=2, num_adversaries=3)
    with pytest.raises(ConfigError, match=r"n_shadows must be in \[1, 1\]"):
        srpo_wrap(e, n_shadows=2, learn=["adversary", "agent"])
