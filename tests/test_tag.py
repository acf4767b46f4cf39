"""The SRPO paper's Tag: env settings and API, scripted policies, and tiny training/evaluation runs."""

import numpy as np
import pytest
from mpe2 import simple_tag_v3
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

from rqe_wrappers import ConfigError, SpaceMismatchError, background_seats, make_scripted
from rqe_wrappers.core.policy import check_policy_spaces
from rqe_wrappers.core.registry import scripted_names
from rqe_wrappers.envs.tag import (
    CHASER_RUNNER_REL,
    CHASERS,
    RUNNER,
    RUNNER_CHASERS_REL,
    RUNNER_POS,
    seat_spaces,
    tag_env,
)

TAG_POLICIES = ["tag/greedy-chaser", "tag/evasive-runner", "tag/still"]


# ---- env ----------------------------------------------------------------------------------------
def test_parallel_api():
    parallel_api_test(tag_env(), num_cycles=120)


def test_aec_api():
    api_test(tag_env(parallel=False), num_cycles=120)


def test_seeding():
    parallel_seed_test(tag_env)
    seed_test(lambda: tag_env(parallel=False))


def test_paper_settings_and_spaces():
    env = tag_env()
    assert env.possible_agents == [*CHASERS, RUNNER]
    for seat in env.possible_agents:
        assert (env.observation_space(seat), env.action_space(seat)) == seat_spaces(seat)
    assert env.unwrapped.max_cycles == 100
    assert len(env.unwrapped.world.landmarks) == 2
    env.reset(seed=0)
    steps = 0
    while env.agents:
        *_, trunc, _ = env.step({a: 0 for a in env.agents})
        steps += 1
    assert steps == 100 and all(trunc.values())


def test_rewards_are_scaled_by_a_tenth():
    raw = simple_tag_v3.parallel_env(num_good=1, num_adversaries=2, num_obstacles=2, max_cycles=100)
    env = tag_env()
    rng = np.random.default_rng(0)
    raw.reset(seed=3)
    env.reset(seed=3)
    seen = 0.0
    for _ in range(100):
        acts = {a: int(rng.integers(5)) for a in env.agents}
        _, r_raw, *_ = raw.step(acts)
        _, r, *_ = env.step(acts)
        for a in r:
            assert r[a] == pytest.approx(0.1 * r_raw[a])
            seen += abs(r_raw[a])
    assert seen > 0  # the check saw non-zero rewards


def test_aec_rewards_are_scaled():
    raw = simple_tag_v3.env(num_good=1, num_adversaries=2, num_obstacles=2, max_cycles=100)
    env = tag_env(parallel=False)
    raw.reset(seed=5)
    env.reset(seed=5)
    for _ in range(60):
        a = 1  # everybody moves left: the runner leaves the square and is penalised
        raw.step(a)
        env.step(a)
        assert env.last()[1] == pytest.approx(0.1 * raw.last()[1])
        assert env.rewards == pytest.approx({k: 0.1 * v for k, v in raw.rewards.items()})


def test_bad_settings():
    with pytest.raises(ConfigError, match="max_cycles"):
        tag_env(max_cycles=0)
    with pytest.raises(ConfigError, match="num_adversaries"):
        tag_env(num_adversaries=3)
    with pytest.raises(ConfigError, match="reward scale"):
        tag_env(reward_scale="big")


def test_observation_layout_matches_mpe2():
    """The slices the scripted policies read are what mpe2 puts there (positions from the world)."""
    env = tag_env()
    obs, _ = env.reset(seed=11)
    world = env.unwrapped.world
    pos = {a.name: a.state.p_pos for a in world.agents}
    for c in CHASERS:
        np.testing.assert_allclose(obs[c][CHASER_RUNNER_REL], pos[RUNNER] - pos[c], rtol=1e-5)
    np.testing.assert_allclose(obs[RUNNER][RUNNER_POS], pos[RUNNER], rtol=1e-5)
    for c, sl in zip(CHASERS, RUNNER_CHASERS_REL, strict=True):
        np.testing.assert_allclose(obs[RUNNER][sl], pos[c] - pos[RUNNER], rtol=1e-5)


# ---- scripted policies --------------------------------------------------------------------------
def test_scripted_policies_registered_and_fit_the_env():
    assert set(TAG_POLICIES) <= set(scripted_names())
    env = tag_env()
    seats = {"tag/greedy-chaser": CHASERS, "tag/evasive-runner": [RUNNER], "tag/still": [RUNNER]}
    for name in TAG_POLICIES:
        for seat in seats[name]:
            check_policy_spaces(make_scripted(name), env.observation_space(seat), env.action_space(seat), name)
    still_chaser = make_scripted("tag/still", seat=CHASERS[0])
    check_policy_spaces(still_chaser, env.observation_space(CHASERS[0]), env.action_space(CHASERS[0]), "still")
    # spaces passed in (as the zoo does) are used
    obs_space, act_space = seat_spaces(CHASERS[1])
    passed = make_scripted("tag/greedy-chaser", observation_space=obs_space, action_space=act_space)
    assert passed.observation_space == obs_space
    with pytest.raises(SpaceMismatchError, match="shape"):
        make_scripted("tag/greedy-chaser", observation_space=seat_spaces(RUNNER)[0])


def test_scripted_policies_play_as_background_seats():
    chaser = make_scripted("tag/greedy-chaser")
    env = background_seats(tag_env(), {RUNNER: make_scripted("tag/evasive-runner"), CHASERS[1]: chaser})
    parallel_api_test(env, num_cycles=50)


def test_greedy_chaser_closes_in_on_a_still_runner():
    env = background_seats(tag_env(), {RUNNER: make_scripted("tag/still")})
    chaser = make_scripted("tag/greedy-chaser")
    rng = np.random.default_rng(0)
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        start = {c: np.linalg.norm(obs[c][CHASER_RUNNER_REL]) for c in CHASERS}
        for _ in range(20):
            acts, _ = chaser.act(np.stack([obs[c] for c in CHASERS]), rng=rng)
            obs, *_ = env.step(dict(zip(CHASERS, acts.tolist(), strict=True)))
        for c in CHASERS:
            end = np.linalg.norm(obs[c][CHASER_RUNNER_REL])
            assert end < max(0.6 * start[c], 0.2), (seed, c, start[c], end)


def test_greedy_chaser_directions():
    chaser = make_scripted("tag/greedy-chaser")
    obs = np.zeros((4, 14), np.float32)
    obs[:, CHASER_RUNNER_REL] = [[1.0, 0.2], [-1.0, 0.2], [0.1, -0.5], [0.1, 0.5]]
    probs = chaser.action_probs(obs)
    assert probs.argmax(axis=1).tolist() == [2, 1, 3, 4]  # +x, -x, -y, +y


def test_evasive_runner_moves_away_and_back_from_the_edge():
    runner = make_scripted("tag/evasive-runner")
    obs = np.zeros((2, 12), np.float32)
    obs[0, 8:10] = [0.3, 0.0]  # nearest chaser to the right: go left
    obs[0, 10:12] = [0.0, 1.0]
    obs[1, 2:4] = [0.95, 0.0]  # at the right edge, chaser far above: go back left
    obs[1, 8:10] = [0.0, 1.5]
    obs[1, 10:12] = [0.0, 1.6]
    assert runner.action_probs(obs).argmax(axis=1).tolist() == [1, 1]


def test_scripted_runners_rank_as_expected():
    """Against greedy chasers the evasive runner is caught far less than a still one."""
    from rqe_wrappers.experiments.tag import evaluate_runner

    still = evaluate_runner("tag/still", episodes=3, seed=0)
    evasive = evaluate_runner("tag/evasive-runner", episodes=3, seed=0)
    assert evasive["runner_return"] > still["runner_return"] + 10
    assert evasive["chaser_return"] < still["chaser_return"]


# ---- training and evaluation at a tiny budget ---------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    from rqe_wrappers.experiments.tag import CHASER_PPO, RUNNER_PPO, PPOSettings

    small = dict(n_steps=32, batch_size=64, n_epochs=1, net_arch=(8,))
    return {
        "runner": PPOSettings(**{**RUNNER_PPO.to_json(), **small, "n_copies": 4}),
        "chasers": PPOSettings(**{**CHASER_PPO.to_json(), **small, "n_copies": 2}),
    }


@pytest.fixture(scope="module")
def runner_run(tiny):
    from rqe_wrappers.experiments.tag import train_runner

    return train_runner(0, 256, settings=tiny["runner"], eval_episodes=2)


COMMON_KEYS = {
    "seed",
    "steps",
    "device",
    "seconds",
    "cpu_seconds",
    "agent_steps_per_s",
    "eval_episodes",
    "eval_seed",
    "settings",
}
RUNNER_KEYS = COMMON_KEYS | {"chasers", "runner_return", "runner_return_std", "chaser_return"}
CHASER_KEYS = COMMON_KEYS | {"tau", "chaser_return", "chaser_return_std"}
EVAL_KEYS = {"per_runner", "per_runner_std", "worst_case", "worst_runner", "mean", "episodes", "seed", "reward"}


def test_train_runner_tiny(runner_run):
    model, metrics = runner_run
    assert set(metrics) == RUNNER_KEYS
    assert metrics["steps"] >= 256 and metrics["chasers"] == "tag/greedy-chaser"
    assert model.observation_space == seat_spaces(RUNNER)[0]
    assert np.isfinite(metrics["runner_return"]) and metrics["chaser_return"] >= 0


@pytest.mark.parametrize("tau", [0.0, 1.0])
def test_train_chasers_tiny_and_seeded_evaluation(tiny, runner_run, tau):
    from rqe_wrappers.experiments.tag import evaluate_chasers, train_chasers

    runner_model, _ = runner_run
    model, metrics = train_chasers(tau, 256, runner_model, seed=1, settings=tiny["chasers"], eval_episodes=2)
    assert set(metrics) == CHASER_KEYS and metrics["tau"] == tau
    assert model.observation_space.shape == (18,)  # chaser observation + seat one-hot + role feature
    if tau == 0.0:
        return  # evaluation is the same code for both
    runners = {"trained": runner_model, "still": "tag/still", "evasive": "tag/evasive-runner"}
    a = evaluate_chasers(model, runners, episodes=2, seed=7)
    b = evaluate_chasers(model, runners, episodes=2, seed=7)
    assert set(a) == EVAL_KEYS and a == b
    assert a["worst_case"] == min(a["per_runner"].values()) == a["per_runner"][a["worst_runner"]]
    assert a["mean"] == pytest.approx(np.mean(list(a["per_runner"].values())))
    shifted = evaluate_chasers(model, {"still": "tag/still"}, episodes=1, seed=8, partner="tag/greedy-chaser")
    assert shifted["per_runner"]["still"] > 0  # the greedy partner catches a still runner (seed 8: no obstacle between)


def test_evaluation_rejects_wrong_agents(runner_run):
    from rqe_wrappers.experiments.tag import evaluate_chasers

    runner_model, _ = runner_run
    with pytest.raises(SpaceMismatchError, match="adversary_0"):
        evaluate_chasers(runner_model, {"still": "tag/still"}, episodes=1)  # a runner is no chaser
    with pytest.raises(ConfigError, match="at least one runner"):
        evaluate_chasers(runner_model, {}, episodes=1)


def test_cli_train_runners_and_srpo(tmp_path):
    """``rqe tag train-runners`` then ``rqe tag srpo`` at a tiny budget write what they promise."""
    import json

    from rqe_wrappers.cli import main

    small = ["--n-steps", "32", "--batch-size", "64", "--n-epochs", "1", "--net-arch", "8"]
    runners = tmp_path / "runners"
    assert (
        main(
            [
                "tag",
                "train-runners",
                "--seeds",
                "0",
                "1",
                "--steps",
                "64",
                "--n-copies",
                "2",
                "--eval-episodes",
                "1",
                "--out",
                str(runners),
                *small,
            ]
        )
        == 0
    )
    report = json.loads((runners / "metrics.json").read_text())
    assert [r["seed"] for r in report["runners"]] == [0, 1]
    assert {"tag/still", "tag/evasive-runner", "random"} <= set(report["baselines"])
    assert all((runners / r["file"]).is_file() for r in report["runners"])
    assert report["settings"]["n_copies"] == 2 and report["settings"]["net_arch"] == [8]
    assert report["settings"]["learning_rate"] == 3e-4  # the rest: RUNNER_PPO's
    out = tmp_path / "srpo"
    config = tmp_path / "srpo.toml"
    config.write_text("tau = [0, 2]\nsteps = 64\nn_copies = 3\neval_episodes = 1\n")
    assert (
        main(
            [
                "tag",
                "srpo",
                "--config",
                str(config),
                "--n-copies",
                "1",
                "--runners",
                str(runners),
                "--out",
                str(out),
                *small,
            ]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert [r["tau"] for r in results["rows"]] == [0.0, 2.0]  # from the config file
    assert results["settings"]["n_copies"] == 1  # the flag beats the config file
    assert set(results["rows"][0]["eval"]["per_runner"]) == {"seed0", "seed1", "tag/evasive-runner"}
    assert results["train_runner"] == "seed0"


def test_cli_srpo_errors_are_one_line(tmp_path, capsys):
    from rqe_wrappers.cli import main

    assert main(["tag", "srpo", "--steps", "64"]) == 2
    assert capsys.readouterr().err.strip() == (
        "rqe tag srpo: error: --runners is required (on the command line or as runners in --config)"
    )
    assert main(["tag", "srpo", "--runners", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rqe tag srpo: error: ") and "rqe tag train-runners --out" in err


def test_partner_role_moved_to_srpo_roles():
    from rqe_wrappers.experiments import tag as tag_exp
    from rqe_wrappers.srpo.roles import PartnerRole

    with pytest.warns(DeprecationWarning, match="from rqe_wrappers.srpo.roles import PartnerRole"):
        assert tag_exp.PartnerRole is PartnerRole
