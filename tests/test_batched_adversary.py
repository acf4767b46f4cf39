"""The trained adversary and the composition on the batched path: who plays, what the adversary and the
learner are paid, what they observe, and the audit against the exact one."""

from __future__ import annotations

import functools
import itertools

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from rqe_wrappers.aht.config import AHTConfig
from rqe_wrappers.aht.scenarios import ScenarioSet
from rqe_wrappers.batched.vec_env import BatchedVecEnv
from rqe_wrappers.composed.batched import BatchedShadowBonus, batched_learner_env
from rqe_wrappers.composed.objective import smoothed_table
from rqe_wrappers.composed.shadow import kl_to_reference
from rqe_wrappers.composed.training import train_composed
from rqe_wrappers.core.policy import FunctionPolicy
from rqe_wrappers.core.snapshot import share
from rqe_wrappers.envs.ipd import COOPERATE, PAYOFFS, BatchedIPD, ipd_env, observation_space
from rqe_wrappers.errors import ConfigError, SeatError
from rqe_wrappers.eval.adversary import BatchedAdversaryVecEnv, batched_adversary_env, log_reference
from rqe_wrappers.eval.robustness import TrainedBudget, audit_agent
from rqe_wrappers.partners.ipd import IPDTablePolicy, training_partners

R = 2
PARTNERS = training_partners(R)
_names = itertools.count()


def table(name: str, smoothing: float = 0.2) -> IPDTablePolicy:
    return smoothed_table(PARTNERS[name], smoothing, R)


def test_one_learning_seat_is_allowed_at_tau_zero_only():
    agent = table("ipd/tit-for-tat")
    venv = BatchedVecEnv(BatchedIPD(4, R), background={"player_0": agent})
    assert venv.num_envs == 4 and venv.learning_seats == ["player_1"]
    venv.seed(0)
    obs = venv.reset()
    assert obs.shape == (4, observation_space(R).shape[0] + 2)  # the role feature, all partner
    with pytest.raises(SeatError, match="at least two learning seats"):
        BatchedVecEnv(BatchedIPD(4, R), 1.0, background={"player_0": agent})


def test_the_adversary_is_paid_minus_the_agent_and_sees_the_references_log_probabilities():
    always_c = table("ipd/always-cooperate", smoothing=0.0)  # the agent: cooperates whatever happens
    ref = table("ipd/tit-for-tat")
    venv = batched_adversary_env(
        functools.partial(BatchedIPD, rounds=R), 6, {"player_0": always_c}, "player_0", [ref], 3
    )
    width = observation_space(R).shape[0]
    obs = venv.reset()
    assert obs.shape == (6, width + 2) and venv.observation_space.shape == (width + 2,)
    np.testing.assert_allclose(obs[:, width:], log_reference(ref, obs[:, :width]))
    for t in range(R):
        actions = np.arange(6) % 2
        obs, rewards, dones, infos = venv.step(actions)
        # the agent cooperates: its payoff is PAYOFFS[C, adversary's action]; the adversary gets minus that
        np.testing.assert_allclose(rewards, -PAYOFFS[COOPERATE, actions])
        assert dones.all() == (t == R - 1)
    for info in infos:  # the finished episode's last observation, with the reference's log-probabilities
        terminal = info["terminal_observation"]
        assert terminal.shape == (width + 2,) and info["scenario_index"] == 0
        np.testing.assert_allclose(terminal[width:], log_reference(ref, terminal[None, :width])[0])
    np.testing.assert_allclose(obs[:, width:], log_reference(ref, obs[:, :width]))  # the new episodes'


def test_each_copy_draws_its_reference_from_the_prior_seeded():
    refs = [table("ipd/tit-for-tat"), table("ipd/always-defect")]
    make = functools.partial(batched_adversary_env, functools.partial(BatchedIPD, rounds=R), 64)
    fixed = {"player_0": table("ipd/tit-for-tat")}
    one = make(fixed, "player_0", refs, 5)
    one.set_prior([0.0, 1.0])
    obs = one.reset()
    width = observation_space(R).shape[0]
    assert (one.choice == 1).all()
    np.testing.assert_allclose(obs[:, width:], log_reference(refs[1], obs[:, :width]))
    draws = []
    for _ in range(2):
        venv = make(fixed, "player_0", refs, 5)
        venv.reset()
        seen = [venv.choice.copy()]
        for _ in range(R):
            venv.step(np.zeros(64, np.int64))
        seen.append(venv.choice.copy())
        draws.append(np.concatenate(seen))
    assert np.array_equal(draws[0], draws[1]) and 0.3 < draws[0].mean() < 0.7  # uniform prior, one seed
    with pytest.raises(SeatError, match="every seat"):
        make({}, "player_0", refs, 0)
    with pytest.raises(SeatError, match="background seat"):
        BatchedAdversaryVecEnv(BatchedVecEnv(BatchedIPD(2, R), background=fixed), "player_1", refs)


def test_the_batched_audit_plays_the_same_episodes_and_reaches_the_exact_deviation():
    env = functools.partial(ipd_env, rounds=R)
    twin = functools.partial(BatchedIPD, rounds=R)
    kwargs = dict(taus=(0.0,), solver="trained", budget=TrainedBudget(timesteps=64, eval_episodes=300))
    per_copy = audit_agent(env, "ipd/tit-for-tat", "ipd/random", **kwargs)
    batched = audit_agent(env, "ipd/tit-for-tat", "ipd/random", batched=twin, **kwargs)
    assert batched.returns == per_copy.returns  # tau = 0: the same seeded episodes, row for row
    budget = TrainedBudget(
        timesteps=4096, eval_episodes=4000, n_copies=64, n_steps=8, batch_size=128, n_epochs=5, learning_rate=0.01
    )
    exact = audit_agent(env, "ipd/tit-for-tat", "ipd/random", taus=(1.0,), solver="exact")
    trained = audit_agent(
        env, "ipd/tit-for-tat", "ipd/random", taus=(1.0,), solver="trained", budget=budget, batched=twin
    )
    assert exact.returns[0] == pytest.approx(1.2142, abs=1e-4)  # no deviation: 4.5; pure defection: 1.0
    assert trained.returns[0] == pytest.approx(exact.returns[0], abs=0.05)  # stderr ~0.012
    assert trained.kls[0] == pytest.approx(exact.kls[0], abs=0.06)


def test_batched_audit_argument_errors():
    env = functools.partial(ipd_env, rounds=R)
    with pytest.raises(ConfigError, match="trained solver"):
        audit_agent(env, "ipd/tit-for-tat", taus=(1.0,), batched=BatchedIPD)
    with pytest.raises(ConfigError, match="batched must be a function"):
        audit_agent(env, "ipd/tit-for-tat", taus=(1.0,), solver="trained", batched=3)
    with pytest.raises(ConfigError, match="batched env"):
        audit_agent(env, "ipd/tit-for-tat", taus=(1.0,), solver="trained", batched=lambda n: ipd_env(R))


def defector(p: float) -> FunctionPolicy:
    """A stand-in shadow network: defects with probability ``p`` whatever it sees (obs + log ref)."""
    wide = gym.spaces.Box(-np.inf, np.inf, (observation_space(R).shape[0] + 2,), np.float32)
    return FunctionPolicy(wide, gym.spaces.Discrete(2), lambda obs: np.tile([1 - p, p], (len(obs), 1)))


def test_the_learner_is_paid_its_reward_plus_the_shadows_kl_per_copy():
    from rqe_wrappers.composed.shadow import SHADOW_SNAPSHOT

    members = {"tft": table("ipd/tit-for-tat"), "alld": table("ipd/always-defect")}
    scenarios = ScenarioSet.all(2, list(members)).restrict(lambda sc: sc.n_focal == 1)
    members = {sc.background[0]: members[sc.background[0]] for sc in scenarios}
    tau, n = 2.0, 32
    share(SHADOW_SNAPSHOT, defector(0.9))
    try:
        venv = batched_learner_env(
            functools.partial(BatchedIPD, rounds=R), n, members, scenarios, tau, AHTConfig(prior="uniform"), 0
        )
        assert isinstance(venv, BatchedShadowBonus)
        venv.reset()
        index = venv.batched.aht.index.copy()
        assert set(index.tolist()) == {0, 1}  # both scenarios drawn among 32 copies
        totals = np.zeros(n)
        for _ in range(R):
            refs = list(members.values())
            partner_obs = venv.batched._raw_obs[:, 1]  # what the member's seat sees (its own side of the history)
            log_ref = np.stack([log_reference(refs[k], o[None])[0] for k, o in zip(index, partner_obs, strict=True)])
            want_kl = kl_to_reference(np.tile([0.1, 0.9], (n, 1)), log_ref)
            _, rewards, dones, infos = venv.step(np.zeros(n, np.int64))
            raw = venv.batched.last_raw_rewards[:, 0]
            kl = np.array([i["shadow_kl"] for i in infos])
            np.testing.assert_allclose(kl, want_kl, rtol=1e-6)
            np.testing.assert_allclose(rewards, raw + kl / tau, rtol=1e-5)
            totals += rewards
        assert dones.all()
        np.testing.assert_allclose([i["focal_return"] for i in infos], totals, rtol=1e-5)
    finally:
        share(SHADOW_SNAPSHOT, None)


def test_train_composed_on_the_batched_twin_runs_and_reproduces():
    def run(tau: float, seed: int = 0):
        return train_composed(
            functools.partial(ipd_env, R),
            {"tft": table("ipd/tit-for-tat"), "alld": table("ipd/always-defect")},
            tau,
            phases=2,
            learner_steps=256,
            shadow_steps=256,
            n_copies=32,
            seed=seed,
            batched=functools.partial(BatchedIPD, rounds=R),
            learner_kwargs={"n_steps": 4, "batch_size": 64},
            shadow_kwargs={"n_steps": 4, "batch_size": 64},
        )

    first, second = run(1.0), run(1.0)
    assert sorted(first.scenario_ids) == ["c1:alld", "c1:tft"] and first.shadow is not None
    assert first.learner.num_timesteps == 512 and first.shadow.num_timesteps == 512
    for a, b in ((first.learner, second.learner), (first.shadow, second.shadow)):
        for pa, pb in zip(a.policy.parameters(), b.policy.parameters(), strict=True):
            assert np.array_equal(pa.detach().numpy(), pb.detach().numpy())
    assert first.beta == second.beta
    plain = run(0.0)
    assert plain.shadow is None and plain.learner.num_timesteps == 512


def test_the_command_on_cooking_batched_scores_learners_and_baselines(tmp_path):
    from rqe_wrappers.composed import run

    args = ["--env", "cooking", "--population", "cooking/agents", "--members", "ippo-s0", "srpo0.1-s0"]
    args += ["--heldout", "cooking/agents", "--heldout-members", "ippo-s4", "--baselines", "ippo-s1", "--batched"]
    args += ["--taus", "0.1", "--phases", "1", "--learner-steps", "256", "--shadow-steps", "256"]
    args += ["--n-copies", "8", "--n-steps", "32", "--batch-size", "128", "--episodes", "2", "--out", str(tmp_path)]
    assert run.main(args) == 0
    import json

    report = json.loads((tmp_path / "results.json").read_text())
    (job,) = report["jobs"]
    assert sorted(job["beta"]) == ["c1:ippo-s0", "c1:srpo0.1-s0"]
    assert [s["scenario"] for s in job["scores"]["heldout"]["scenarios"]] == ["c1:ippo-s4"]
    assert set(report["baselines"]) == {"ippo-s1"}
    assert report["baselines"]["ippo-s1"]["summary"]["mean"] > 50  # a trained agent with a trained partner cooks
    with pytest.raises(ConfigError, match="no members"):
        run.main([*args[:5], "nobody", *args[6:]])
    with pytest.raises(ConfigError, match="batched"):
        run.main(["--batched", "--out", str(tmp_path)])


def test_rqe_eval_robustness_batched_on_cooking(tmp_path, capsys):
    import json

    from rqe_wrappers.cli import main

    args = ["eval", "robustness", "--env", "cooking", "--agents", "cooking/agents:ippo-s0", "--taus", "0,1"]
    args += ["--timesteps", "256", "--batched", "--n-copies", "8", "--n-steps", "32", "--batch-size", "128"]
    args += ["--episodes", "4", "--no-plot", "--out", str(tmp_path)]
    assert main(args) == 0
    (curve,) = json.loads((tmp_path / "robustness.json").read_text())["curves"]
    assert curve["taus"] == [0.0, 1.0] and curve["solver"] == "trained"
    assert curve["budget"]["n_copies"] == 8 and curve["budget"]["batch_size"] == 128
    assert curve["returns"][0] > 50  # a published agent with itself cooks
    assert curve["kls"][0] == 0.0 and curve["budget"]["timesteps"] == 256  # 256 steps: no real adversary yet
    capsys.readouterr()
    assert (
        main(["eval", "robustness", "--env", "ipd", "--agents", "ipd/tit-for-tat", "--solver", "trained", "--batched"])
        == 2
    )
    assert "batched twin for cooking and tag, not 'ipd'" in capsys.readouterr().err
