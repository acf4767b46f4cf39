"""Background populations by population play with preferences (rqe_wrappers.experiments.population_play)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from rqe_wrappers.aht.preferences import Preferences, sample_preferences, shaped_reward
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.envs.matrix import MatrixGameEnv
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments import population_play as pp
from rqe_wrappers.experiments.settings import PPOSettings

torch.set_num_threads(1)

#: payoffs[a0, a1] = (reward of player_0, reward of player_1), symmetric: gains and losses
PAYOFFS = np.array([[[2.0, 2.0], [-1.0, 3.0]], [[3.0, -1.0], [0.0, 0.0]]])


def game() -> MatrixGameEnv:
    return MatrixGameEnv(PAYOFFS, rounds=2, name="mixed_v0")


class Always(Policy):
    """Plays one action."""

    def __init__(self, action: int):
        env = game()
        super().__init__(env.observation_space("player_0"), env.action_space("player_0"))
        self.action = action

    def act(self, obs, *, rng, mask=None, state=None):
        return np.full(len(obs), self.action, np.int64), None


def test_a_member_is_paid_its_shaped_reward_against_a_partner_of_its_sub_population():
    prefs = Preferences(0.8, 1.7)
    env = pp.member_env(game, prefs, {"zero": Always(0), "one": Always(1)})
    met = set()
    for seed in range(12):
        _, infos = env.reset(seed=seed)
        partner = {"c1:zero": 0, "c1:one": 1}[infos["focal"]["scenario"]]
        met.add(partner)
        for mine in (1, 0):
            _, rew, _, _, _ = env.step({"focal": mine})
            own, other = PAYOFFS[mine, partner]  # symmetric game: either seat pays alike
            assert rew["focal"] == pytest.approx(shaped_reward(own, other, prefs, 2), abs=1e-12)
    assert met == {0, 1}  # both partners drawn across episodes


def small(**kw) -> pp.PopulationPlay:
    ppo = PPOSettings(n_copies=4, n_steps=16, batch_size=64, n_epochs=1, net_arch=(8,))
    return pp.PopulationPlay(**{"sizes": (2, 3), "rounds": 2, "steps_per_round": 64, "seed": 5, "ppo": ppo, **kw})


def test_population_play_trains_each_member_with_its_own_sub_population(monkeypatch):
    seen: list[tuple[Preferences, tuple[str, ...]]] = []
    real = pp.member_env

    def spy(env_fn, preferences, partners):
        seen.append((preferences, tuple(sorted(partners))))
        return real(env_fn, preferences, partners)

    monkeypatch.setattr(pp, "member_env", spy)
    lines: list[str] = []
    members = pp.train_population_play(game, small(), progress=lines.append)
    assert [m.name for m in members] == ["sp0-m0", "sp0-m1", "sp1-m0", "sp1-m1", "sp1-m2"]
    assert [m.sub_population for m in members] == [0, 0, 1, 1, 1]
    assert [m.preferences for m in members] == sample_preferences(5, 5)  # seeded from the settings' seed
    assert len(lines) == 2 * 5 and all(m.model.num_timesteps == 2 * 64 for m in members)
    by_prefs = {m.preferences: m for m in members}
    for prefs, partners in set(seen):  # every env a member trained in: partners from its own sub-population
        member = by_prefs[prefs]
        group = {m.name for m in members if m.sub_population == member.sub_population} - {member.name}
        assert set(partners) == group, (member.name, partners)
    assert members[0].metrics() == {
        "sub_population": 0,
        "preferences.prosociality": members[0].preferences.prosociality,
        "preferences.risk_aversion": members[0].preferences.risk_aversion,
    }


def test_one_seed_trains_one_population_and_it_publishes_with_its_preferences(tmp_path):
    from rqe_wrappers.zoo import load_population
    from rqe_wrappers.zoo.publish import member_from_sb3, write_population

    def weights(members):
        return [np.concatenate([p.detach().numpy().ravel() for p in m.model.policy.parameters()]) for m in members]

    settings = small(sizes=(2,), rounds=1)
    a, b = pp.train_population_play(game, settings), pp.train_population_play(game, settings)
    for x, y in zip(weights(a), weights(b), strict=True):
        np.testing.assert_array_equal(x, y)
    new = [member_from_sb3(m.model, m.name, metrics=m.metrics()) for m in a]
    write_population(tmp_path, id="test/pp", version=1, env="mixed_v0", members=new, description="population play")
    pop = load_population(tmp_path / "test" / "pp" / "1")
    assert pop["sp0-m1"].metrics["preferences.risk_aversion"] == a[1].preferences.risk_aversion
    assert pop["sp0-m1"].metrics["sub_population"] == 0


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="sizes"):
        pp.PopulationPlay(sizes=(1, 3))
    with pytest.raises(ConfigError, match="rounds"):
        pp.PopulationPlay(rounds=0)
    with pytest.raises(ConfigError, match="ppo"):
        pp.PopulationPlay(ppo={"n_steps": 8})


def test_rounds_are_synchronous_so_turns_in_processes_give_the_same_population(monkeypatch):
    # round r trains every member against its partners as they were after round r - 1: the files of
    # round r - 1 (round one: uniformly random partners), never a partner's turn of the same round
    loaded: list[tuple[str, str]] = []
    real = pp.load_partner

    def spy(file, observation_space):
        loaded.append((str(file).rsplit("/", 2)[-2], str(file).rsplit("/", 1)[-1]))
        return real(file, observation_space)

    monkeypatch.setattr(pp, "load_partner", spy)
    settings = small(sizes=(3,), rounds=2)
    one = pp.train_population_play(game, settings)
    assert sorted(loaded) == sorted(
        ("round0", f"sp0-m{j}.zip") for i in range(3) for j in range(3) if j != i
    )  # round two: each member loads its two partners' round-one files
    turns: list[dict] = []
    two = pp.train_populations({"population": (game, settings)}, jobs=2, on_turn=turns.append)["population"]
    pids = {t["pid"] for t in turns}  # turns in worker processes (two per round)
    assert len(turns) == 6 and 2 <= len(pids) <= 4 and os.getpid() not in pids
    for a, b in zip(one, two, strict=True):
        assert (a.name, a.preferences) == (b.name, b.preferences)
        for x, y in zip(a.model.policy.parameters(), b.model.policy.parameters(), strict=True):
            np.testing.assert_array_equal(x.detach().numpy(), y.detach().numpy())


def test_a_turn_stops_at_its_time_limit_and_reports_its_steps():
    lines: list[str] = []
    members = pp.train_populations(
        {"p": (game, small(sizes=(2,), rounds=1, steps_per_round=4096))}, turn_seconds=0.0, progress=lines.append
    )["p"]
    assert all(0 < m.model.num_timesteps < 4096 for m in members)
    assert all("cut at the time limit" in line for line in lines) and len(lines) == 2


def test_bad_population_plans_are_config_errors():
    with pytest.raises(ConfigError, match="jobs"):
        pp.train_populations({"p": (game, small())}, jobs=0)
    with pytest.raises(ConfigError, match="devices"):
        pp.train_populations({"p": (game, small())}, devices=())
    with pytest.raises(ConfigError, match="PopulationPlay"):
        pp.train_populations({"p": (game, {"sizes": (2,)})})


def test_rollouts_on_a_copy_give_the_same_population_and_every_turn_is_recorded():
    # RolloutDevice("cpu") on CPU turns: the rollouts are collected by a copy of each member's policy,
    # the update runs on the member's own; on one device that is the same run, weight for weight
    settings = small(sizes=(2,), rounds=2)
    records: list[dict] = []
    plain = pp.train_populations({"p": (game, settings)})["p"]
    copied = pp.train_populations({"p": (game, settings)}, rollout_device="cpu", on_turn=records.append)["p"]
    for a, b in zip(plain, copied, strict=True):
        for x, y in zip(a.model.policy.parameters(), b.model.policy.parameters(), strict=True):
            np.testing.assert_array_equal(x.detach().numpy(), y.detach().numpy())
    assert sorted((r["round"], r["name"]) for r in records) == [
        (1, "sp0-m0"),
        (1, "sp0-m1"),
        (2, "sp0-m0"),
        (2, "sp0-m1"),
    ]
    assert all(r["turn_steps"] == 64 and r["started"] <= r["ended"] and r["device"] == "cpu" for r in records)


def test_a_loaded_partner_acts_as_its_saved_model_with_channels_last_convolutions(tmp_path):
    import gymnasium as gym
    from stable_baselines3 import PPO

    class Images(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (40, 40, 3), np.uint8)
        action_space = gym.spaces.Discrete(4)

        def reset(self, seed=None, options=None):
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), 0.0, True, False, {}

    kwargs = {"features_extractor_kwargs": {"features_dim": 16}}
    model = PPO("CnnPolicy", Images(), n_steps=8, batch_size=8, seed=0, device="cpu", policy_kwargs=kwargs)
    model.save(tmp_path / "member.zip")
    partner = pp.load_partner(tmp_path / "member.zip", Images.observation_space)
    convs = [m for m in partner.policy.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    obs = np.random.default_rng(0).integers(0, 256, (5, 40, 40, 3), dtype=np.uint8)  # as the env gives them
    with torch.no_grad():
        want = model.policy.get_distribution(model.policy.obs_to_tensor(obs)[0]).distribution.probs.numpy()
    np.testing.assert_allclose(partner.action_probs(obs), want, rtol=1e-5, atol=1e-7)


def test_a_jobs_process_starts_with_torch_and_sb3_loaded():
    """Turns run in processes forked from a server that imported torch and SB3 once (a turn imported them
    anew before: ~2 s of each turn's set-up on a 2-core box)."""
    code = (
        "from rqe_wrappers.experiments.common import process_pool\n"
        "if __name__ == '__main__':\n"
        "    with process_pool(1) as pool:\n"
        "        ask = \"sorted(m for m in ('torch', 'stable_baselines3') if m in __import__('sys').modules)\"\n"
        "        print(pool.submit(eval, ask).result())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == "['stable_baselines3', 'torch']"
