"""The minimax-Bayes AHT wrapper and its SB3 callback: API, seeding, rewards, seating, training, checkpoints."""

import csv
import itertools
import warnings

import gymnasium as gym
import numpy as np
import pytest
from mpe2 import simple_tag_v3
from pettingzoo.classic import tictactoe_v3
from pettingzoo.test import parallel_api_test
from pettingzoo.utils.conversions import parallel_to_aec

from rqe_wrappers import (
    ConfigError,
    ConstantPolicy,
    RandomPolicy,
    SpaceMismatchError,
    background_seats,
)
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.aht.wrapper import AHTWrapper, aht_wrap
from rqe_wrappers.core.snapshot import share
from rqe_wrappers.envs.matrix import coordination_game
from rqe_wrappers.errors import MissingCallbackWarning

pytestmark = [
    pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning"),
    pytest.mark.filterwarnings("ignore:The base environment .* does not have a `render_mode`"),
]
_names = itertools.count()


def unique(prefix="snap"):
    """A fresh snapshot name: shared snapshots are process-global."""
    return f"{prefix}-{next(_names)}"


def game(rounds=1, aec=False):
    g = coordination_game(cost=0.5, rounds=rounds)
    return parallel_to_aec(g) if aec else g


def spaces():
    g = game()
    return g.observation_space("player_0"), g.action_space("player_0")


def constant_pop():
    return {"free-rider": ConstantPolicy(*spaces(), 0), "helper": ConstantPolicy(*spaces(), 1)}


def random_pop():
    return {"r1": RandomPolicy(*spaces()), "r2": RandomPolicy(*spaces())}


def tag(n_adv=2):
    env = simple_tag_v3.parallel_env(num_good=1, num_adversaries=n_adv, num_obstacles=2, max_cycles=25)
    runner = RandomPolicy(env.observation_space("agent_0"), env.action_space("agent_0"))
    return background_seats(env, {"agent_0": runner})


def play(env, actions, seed=None, options=None):
    """One episode; returns (reset info, [(reward, info)])."""
    obs, infos = env.reset(seed=seed, options=options)
    out = []
    for a in actions:
        if not env.agents:
            break
        obs, rew, _, _, info = env.step({"focal": a})
        out.append((rew["focal"], info["focal"], obs["focal"]))
    return infos["focal"], out


# ---- API conformance ------------------------------------------------------------------------------
@pytest.mark.parametrize("aec", [False, True])
def test_parallel_api_on_the_matrix_game(aec):
    parallel_api_test(aht_wrap(game(rounds=3, aec=aec), random_pop(), snapshot_name=unique()), num_cycles=20)


def test_parallel_api_on_turn_based_and_composed_envs():
    t = tictactoe_v3.env()
    rand = RandomPolicy(t.observation_space("player_1"), t.action_space("player_1"))
    parallel_api_test(aht_wrap(t, {"random": rand}, snapshot_name=unique()), num_cycles=30)
    # background_seats after the per-episode reassignment refactor: still conformant on its own
    parallel_api_test(tag(), num_cycles=30)
    # Tag: runner fixed, the two chasers are the scenario seats
    chasers = tag()
    rand = RandomPolicy(chasers.observation_space("adversary_0"), chasers.action_space("adversary_0"))
    parallel_api_test(aht_wrap(chasers, {"random": rand}, snapshot_name=unique()), num_cycles=30)


# ---- seeding ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("aec", [False, True])
def test_same_seed_same_scenarios_and_trajectory(aec):
    snap = unique()  # never shared: the copies play uniformly at random, from the seeded stream

    def trace(seed):
        env = aht_wrap(game(rounds=3, aec=aec), random_pop(), "uniform", snapshot_name=snap)
        rng = np.random.default_rng(0)
        out = []
        for ep in range(12):
            info, steps = play(env, rng.integers(2, size=3), seed=seed if ep == 0 else None)
            out.append(
                (
                    info["scenario"],
                    info["seat"],
                    tuple(sorted(env.seating.items())),
                    [(r, sorted(i["raw_rewards"].items())) for r, i, _ in steps],
                )
            )
        return out

    a, b = trace(7), trace(7)
    assert a == b
    assert len({(s, seat) for s, seat, _, _ in a}) > 2  # scenarios and seats really vary
    assert trace(8) != a


# ---- rewards and infos ------------------------------------------------------------------------------
@pytest.mark.parametrize("aec", [False, True])
def test_reward_is_focal_per_capita(aec):
    snap = unique()
    share(snap, ConstantPolicy(*spaces(), 1))  # the learner's copies always collaborate
    env = aht_wrap(game(aec=aec), constant_pop(), snapshot_name=snap)
    # coordination game, cost 0.5: team reward 1 if anyone collaborates, collaborator pays 0.5
    expected = {
        ("c1:free-rider", 0): 0.0,  # nobody collaborates
        ("c1:free-rider", 1): 0.5,
        ("c1:helper", 0): 1.0,  # the partner's reward does not count: not a focal seat
        ("c1:helper", 1): 0.5,
        ("c2", 0): (1.0 + 0.5) / 2,  # learner free-rides, its copy collaborates
        ("c2", 1): (0.5 + 0.5) / 2,
    }
    for (scenario, action), want in expected.items():
        info, [(reward, step_info, _)] = play(env, [action], seed=0, options={"scenario": scenario})
        assert info["scenario"] == scenario
        assert reward == pytest.approx(want)
        assert step_info["focal_return"] == pytest.approx(want)


def test_infos_carry_scenario_and_focal_return():
    env = aht_wrap(game(rounds=3), random_pop(), snapshot_name=unique())
    for seed in range(4):
        info, steps = play(env, [1, 0, 1], seed=seed)
        assert info["scenario"] == env.scenarios.ids[info["scenario_index"]]
        assert info["seat"] in ("player_0", "player_1")
        assert len(steps) == 3
        for k, (_, i, _) in enumerate(steps):
            for key in ("scenario", "scenario_index", "seat"):
                assert i[key] == info[key]
            assert set(i["raw_rewards"]) == {"player_0", "player_1"}
            assert ("focal_return" in i) == (k == 2)
        assert steps[-1][1]["focal_return"] == pytest.approx(sum(r for r, _, _ in steps))


def test_self_play_puts_the_snapshot_in_the_other_seat():
    snap = unique()
    share(snap, ConstantPolicy(*spaces(), 1))
    env = aht_wrap(game(), {}, "self-play", snapshot_name=snap)
    assert env.scenarios.ids == ("c2",) and env.beta.tolist() == [1.0]
    seats = set()
    for seed in range(6):
        info, [(reward, step_info, _)] = play(env, [0], seed=seed)
        other = "player_1" if info["seat"] == "player_0" else "player_0"
        seats.add(info["seat"])
        assert env.seating == {info["seat"]: ("learner", "focal"), other: ("copy", snap)}
        assert step_info["raw_rewards"][other] == 0.5  # the snapshot collaborated (paid the cost)
        assert reward == pytest.approx(0.75)
    assert seats == {"player_0", "player_1"}


def test_background_seats_sharing_a_member_act_in_one_batch():
    env = tag(n_adv=3)
    calls = []

    class Counting(RandomPolicy):
        def act(self, obs, **kw):
            calls.append(len(obs))
            return super().act(obs, **kw)

    member = Counting(env.observation_space("adversary_0"), env.action_space("adversary_0"))
    scenarios = ScenarioSet.all(3, ["m"]).restrict(["c1:m+m"])
    env = aht_wrap(env, {"m": member}, "uniform", scenarios=scenarios, snapshot_name=unique())
    env.reset(seed=0)
    env.step({"focal": env.action_space("focal").sample()})
    assert calls == [2]


def test_set_prior_steers_sampling():
    env = aht_wrap(game(), constant_pop(), snapshot_name=unique())
    assert env.beta == pytest.approx(np.full(3, 1 / 3))
    env.set_prior([0, 2, 0])
    assert env.beta.tolist() == [0.0, 1.0, 0.0]
    env.reset(seed=0)
    assert {play(env, [0])[0]["scenario"] for _ in range(10)} == {"c1:helper"}
    for bad in ([1, 1], [0, 0, 0], [-1, 1, 1], [np.nan, 1, 1]):
        with pytest.raises(ConfigError, match="beta"):
            env.set_prior(bad)


def test_warns_once_when_trained_without_the_callback():
    env = aht_wrap(game(), constant_pop(), snapshot_name=unique())
    with pytest.warns(MissingCallbackWarning, match="AHTCallback"):
        play(env, [0], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        play(env, [0])
        play(aht_wrap(game(), constant_pop(), "uniform"), [0], seed=0)  # fixed priors need no callback


def test_accepts_a_population_object():
    checked = []

    class Pop:
        def check_env(self, env, seats):
            checked.append(list(seats))

        def policies(self):
            return constant_pop()

    env = aht_wrap(game(), Pop())
    assert env.scenarios.members == ("free-rider", "helper") and checked == [["player_0", "player_1"]]


# ---- bad input ----------------------------------------------------------------------------------------
def test_member_with_other_spaces_is_named_with_both_spaces():
    wrong = RandomPolicy(gym.spaces.Box(0.0, 1.0, (3,), np.float32), gym.spaces.Discrete(2))
    with pytest.raises(SpaceMismatchError) as e:
        aht_wrap(game(), {"helper": ConstantPolicy(*spaces(), 1), "odd-one": wrong})
    msg = str(e.value)
    assert "'odd-one'" in msg and "(1,)" in msg and "(3,)" in msg


def test_seats_with_different_spaces_are_refused():
    env = simple_tag_v3.parallel_env(num_good=1, num_adversaries=2, num_obstacles=2)
    with pytest.raises(SpaceMismatchError, match="background_seats"):
        aht_wrap(env, {}, "self-play")


def test_empty_population_needs_self_play():
    with pytest.raises(ConfigError, match="population is empty"):
        aht_wrap(game(), {})
    assert aht_wrap(game(), {}, "self-play").scenarios.ids == ("c2",)


def test_unknown_prior_lists_the_known_ones():
    with pytest.raises(ConfigError, match="maximin-utility, minimax-regret, uniform, self-play, fictitious-play"):
        aht_wrap(game(), constant_pop(), "maximin")


@pytest.mark.parametrize("lr", [0.0, -0.5])
def test_lr_must_be_positive(lr):
    with pytest.raises(ConfigError, match="lr"):
        aht_wrap(game(), constant_pop(), lr=lr)


@pytest.mark.parametrize("mix", [1.0, -0.1])
def test_uniform_mix_must_be_in_unit_interval(mix):
    with pytest.raises(ConfigError, match=r"uniform_mix should be in the interval \[0, 1\)"):
        aht_wrap(game(), constant_pop(), uniform_mix=mix)


def test_other_inconsistent_settings():
    with pytest.raises(ConfigError, match="past snapshots"):
        aht_wrap(game(), constant_pop(), "fictitious-play")
    with pytest.raises(ConfigError, match="best_responses"):
        aht_wrap(game(), constant_pop(), "minimax-regret", best_responses=[1.0, 2.0])
    with pytest.raises(ConfigError, match="missing"):
        aht_wrap(game(), constant_pop(), "minimax-regret", best_responses={"c2": 1.0})
    with pytest.raises(ConfigError, match="self-play scenario"):
        aht_wrap(game(), constant_pop(), "self-play", scenarios=ScenarioSet.all(2, ["helper"], focal_counts=[1]))
    with pytest.raises(ConfigError, match="does not have"):
        aht_wrap(game(), constant_pop(), scenarios=ScenarioSet.all(2, ["someone-else"]))
    br = {"c1:free-rider": 0.5, "c1:helper": 1.0, "c2": 1.0}
    env = aht_wrap(game(), constant_pop(), "minimax-regret", best_responses=br)
    assert env.aht_config["best_responses"] == [0.5, 1.0, 1.0]
    assert isinstance(env, AHTWrapper)


# ---- training with SB3 --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sb3():
    import torch

    torch.set_num_threads(1)
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure

    from rqe_wrappers.sb3 import make_vec_env
    from rqe_wrappers.sb3.aht_callback import AHTCallback

    def train(prior, steps, callback=None, model=None, log_dir=None, **cb_kwargs):
        pop = {} if prior == "fictitious-play" else constant_pop()
        if model is None:
            venv = make_vec_env(lambda: aht_wrap(game(), pop, prior, lr=0.5), n_copies=2, seed=0)
            model = PPO(
                "MlpPolicy",
                venv,
                n_steps=64,
                batch_size=64,
                n_epochs=2,
                seed=0,
                device="cpu",
                policy_kwargs={"net_arch": [8]},
            )
            if log_dir is not None:
                model.set_logger(configure(str(log_dir), ["csv"]))
        callback = callback or AHTCallback(**cb_kwargs)
        model.learn(steps, callback=callback, reset_num_timesteps=False)
        return model, callback

    return train, AHTCallback


def test_maximin_moves_beta_to_the_low_utility_scenario_and_resumes(sb3, tmp_path):
    train, AHTCallback = sb3
    model, cb = train("maximin-utility", 256, log_dir=tmp_path)  # SB3 writes tmp_path/progress.csv
    ids = cb.scenarios.ids
    assert ids == ("c1:free-rider", "c1:helper", "c2")
    # next to a free-rider the learner gets at most 0.5; with a helper at least 0.5
    assert cb.utilities[0] < cb.utilities[1]
    assert cb.beta[0] > 1 / 3 + 0.05 and cb.beta.argmax() == 0
    assert model.get_env().get_attr("beta")[0] == pytest.approx(cb.beta)
    assert all(model.get_env().get_attr("aht_callback_attached"))
    assert cb.counts.sum() == 256  # one-step episodes

    json_path, npz_path = cb.save(tmp_path / "model")
    assert json_path.name == "model.aht.json" and npz_path is None
    restored = AHTCallback.load(tmp_path / "model.zip")
    assert np.array_equal(restored.beta, cb.beta)
    assert np.array_equal(restored.nature.beta, cb.nature.beta)
    assert np.array_equal(restored.utilities, cb.utilities) and np.array_equal(restored.counts, cb.counts)
    train("maximin-utility", 128, callback=restored, model=model)  # resumes
    assert restored.counts.sum() == 256 + 128 and restored.nature.n_updates == cb.nature.n_updates + 1
    with open(tmp_path / "progress.csv", newline="") as f:  # the callback logs through SB3's logger
        rows = list(csv.DictReader(f))
    assert [int(r["time/total_timesteps"]) for r in rows] == [128, 256, 384]
    assert [float(rows[-1][f"aht/beta/{s}"]) for s in ids] == restored.beta.tolist()
    assert [float(rows[-1][f"aht/utility/{s}"]) for s in ids] == restored.utilities.tolist()

    pytest.importorskip("matplotlib")
    from rqe_wrappers.plots import plot_beta

    assert plot_beta(tmp_path / "progress.csv", tmp_path / "beta.png").stat().st_size > 0
    from rqe_wrappers.cli import main

    assert main(["beta-plot", str(tmp_path / "progress.csv"), "--out", str(tmp_path / "cli.png")]) == 0
    assert (tmp_path / "cli.png").stat().st_size > 0


def test_fictitious_play_keeps_snapshots_and_restores_them(sb3, tmp_path):
    train, AHTCallback = sb3
    model, cb = train("fictitious-play", 256)
    assert cb.fp_seen == 3  # the initial policy + two rollout ends
    assert cb.fp_filled[:3].all() and not cb.fp_filled[3:].any()
    assert cb.beta[:3] == pytest.approx(np.full(3, 1 / 3))
    cb.save(tmp_path / "fp")
    restored = AHTCallback.load(tmp_path / "fp")
    assert np.array_equal(restored.beta, cb.beta) and restored.fp_seen == 3
    train("fictitious-play", 128, callback=restored, model=model)
    assert restored.fp_seen == 4
    for slot in range(3):  # the old snapshots came back with the same weights
        old, new = cb._fp_policies[slot].get_weights(), restored._fp_policies[slot].get_weights()
        assert all(np.array_equal(old[k], new[k]) for k in old)


def test_callback_needs_an_aht_env(sb3):
    _, AHTCallback = sb3
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env as sb3_vec_env

    model = PPO("MlpPolicy", sb3_vec_env("CartPole-v1", n_envs=1), n_steps=16, batch_size=16, device="cpu")
    with pytest.raises(ConfigError, match="aht_wrap"):
        model.learn(16, callback=AHTCallback())
