"""The RLlib path (rqe_wrappers.rllib): SRPO's shaping connector against SRPOCallback, SRPO reaching the
exact RQE with RLlib PPO, nature's prior on the env runners, checkpoints, and eval on RLlib modules.

Skipped as a whole where ray[rllib] is not installed (docs/rllib.md has the install line).
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("ray.rllib")

import ray
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

from rqe_wrappers import ConstantPolicy, aht_wrap, srpo_wrap
from rqe_wrappers.core.seeding import categorical, stream
from rqe_wrappers.envs.matrix import coordination_game, coordination_payoffs
from rqe_wrappers.errors import ConfigError, MissingCallbackError
from rqe_wrappers.rllib import (
    SHARED_MODULE,
    PettingZooMultiAgentEnv,
    RLModulePolicy,
    SRPOShaping,
    aht_ppo,
    restore_checkpoint,
    save_checkpoint,
    srpo_ppo,
)
from rqe_wrappers.rllib.aht import push_prior
from rqe_wrappers.rllib.env import sub_envs
from rqe_wrappers.srpo.roles import PartnerRole
from rqe_wrappers.srpo.rqe import solve_rqe

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(scope="module", autouse=True)
def small_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def ppo(*, batch: int = 256, epochs: int = 1, lr: float = 3e-3, ent: float = 0.2, hidden: int = 16, envs: int = 8):
    """RLlib PPO as the SB3 path's coordination_ppo: no KL loss, separate value net, SB3's clipping."""
    return (
        PPOConfig()
        .env_runners(num_env_runners=0, num_envs_per_env_runner=envs)
        .training(
            train_batch_size_per_learner=batch,
            minibatch_size=batch,
            num_epochs=epochs,
            lr=lr,
            entropy_coeff=ent,
            use_kl_loss=False,
            gamma=0.99,
            lambda_=1.0,
            grad_clip=0.5,
            grad_clip_by="global_norm",
            vf_loss_coeff=0.5,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[hidden], vf_share_layers=False))
        .debugging(seed=0)
    )


# ---- (b) the shaping connector pays the shadow what SRPOCallback pays it ------------------------------
def test_shaping_connector_matches_srpo_callback_on_the_same_batch():
    """A hand-made batch through SRPOShaping, and the same rows through SB3's SRPOCallback (its rollout
    buffer filled with them, its policy's log-probs being the RLlib module's): the same shaped rewards."""
    from gymnasium import spaces
    from stable_baselines3.common.buffers import RolloutBuffer
    from stable_baselines3.common.callbacks import BaseCallback  # noqa: F401  (SB3 is installed beside)

    from rqe_wrappers.sb3 import SRPOCallback

    tau, ent = 2.0, 0.05
    algo = srpo_ppo(
        ppo(ent=ent), lambda: srpo_wrap(coordination_game(0.5), tau=tau), env_name="rqe-test-b"
    ).build_algo()
    try:
        module = algo.learner_group._learner.module[SHARED_MODULE]
        rng = np.random.default_rng(0)
        n = 12
        role = rng.integers(2, size=n)
        obs = np.zeros((n, 3), np.float32)
        obs[:, 0] = rng.random(n)
        obs[np.arange(n), 1 + role] = 1.0  # [t, partner, shadow]
        actions = rng.integers(2, size=n)
        log_shadow = np.log(rng.uniform(0.2, 0.8, n))
        rewards = rng.normal(size=n)
        loss_mask = np.ones(n, bool)
        loss_mask[-1] = False  # RLlib's artificial bootstrap step: never shaped
        batch = {
            SHARED_MODULE: {
                Columns.OBS: torch.as_tensor(obs),
                Columns.ACTIONS: torch.as_tensor(actions),
                Columns.ACTION_LOGP: torch.as_tensor(log_shadow, dtype=torch.float32),
                Columns.REWARDS: torch.as_tensor(rewards, dtype=torch.float32),
                Columns.LOSS_MASK: torch.as_tensor(loss_mask),
            }
        }
        connector = SRPOShaping(tau=tau, entropy_coeff=ent)
        out = connector(rl_module=algo.learner_group._learner.module, batch=batch, episodes=[])
        shaped = out[SHARED_MODULE][Columns.REWARDS].numpy().astype(np.float64)

        # the same rows in SB3's rollout buffer, shaped by SRPOCallback._on_rollout_end
        class ModulePolicy:  # SB3's policy.get_distribution(obs).log_prob, answered by the RLlib module
            def get_distribution(self, o):
                with torch.no_grad():
                    logits = module.forward_train({Columns.OBS: o.float()})[Columns.ACTION_DIST_INPUTS]
                dist = module.get_train_action_dist_cls().from_logits(logits)
                return SimpleNamespace(log_prob=dist.logp)

        m = n - 1  # SB3 has no artificial step
        buf = RolloutBuffer(m, spaces.Box(0, 1, (3,), np.float32), spaces.Discrete(2), device="cpu", n_envs=1)
        buf.observations[:, 0] = obs[:m]
        buf.actions[:, 0, 0] = actions[:m]
        buf.log_probs[:, 0] = log_shadow[:m]
        buf.rewards[:, 0] = rewards[:m].astype(np.float32)
        buf.values[:] = 0.0
        buf.episode_starts[:] = 1.0

        class Model:
            rollout_buffer, device, action_space, ent_coef, policy = (
                buf,
                torch.device("cpu"),
                spaces.Discrete(2),
                ent,
                ModulePolicy(),
            )

        class Logger:
            def record(self, *a, **k):
                pass

        Model.logger = Logger()  # type: ignore[attr-defined]
        cb = SRPOCallback()
        cb.tau, cb.model, cb.locals = tau, Model(), {"values": torch.zeros(1), "dones": np.ones(1)}
        cb._on_rollout_end()
        np.testing.assert_allclose(shaped[:m], buf.rewards[:, 0], rtol=1e-5, atol=1e-5)
        shadow = role[:m] == 1
        assert shadow.any() and (~shadow).any()
        assert not np.allclose(shaped[:m][shadow], rewards[:m][shadow])  # shadows were paid something
        np.testing.assert_array_equal(shaped[:m][~shadow], rewards[:m][~shadow].astype(np.float32))  # partners not
        assert shaped[-1] == np.float32(rewards[-1])  # the bootstrap step is left alone
    finally:
        algo.stop()


def test_connectors_unwrap_a_ddp_wrapped_module():
    """With several learners RLlib wraps each module in ``TorchDDPRLModule``, which is not a
    ``ValueFunctionAPI``: RawGAE must look through ``unwrapped()`` (else it skips the module and PPO's loss
    finds no advantages), and SRPOShaping must evaluate the partner log-probs on the real module."""
    from gymnasium import spaces
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.evaluation.postprocessing import Postprocessing

    from rqe_wrappers.rllib import RawGAE

    torch.manual_seed(0)
    spec = RLModuleSpec(
        module_class=DefaultPPOTorchRLModule,
        observation_space=spaces.Box(0, 1, (3,), np.float32),
        action_space=spaces.Discrete(2),
        model_config=DefaultModelConfig(fcnet_hiddens=[8], vf_share_layers=False),
    )
    plain = MultiRLModuleSpec(rl_module_specs={SHARED_MODULE: spec}).build()
    wrapped = MultiRLModuleSpec(rl_module_specs={SHARED_MODULE: spec}).build()

    class DDPLike:  # what TorchDDPRLModule looks like to an isinstance check: no ValueFunctionAPI
        def __init__(self, module):
            self.module = module

        def unwrapped(self):
            return self.module

    wrapped._rl_modules[SHARED_MODULE] = DDPLike(plain[SHARED_MODULE])  # as Learner.add_module(override=True)

    rng = np.random.default_rng(1)
    n = 10
    obs = np.zeros((n, 3), np.float32)
    obs[:, 0] = rng.random(n)
    obs[np.arange(n), 1 + rng.integers(2, size=n)] = 1.0  # [t, partner, shadow]
    done = np.zeros(n, bool)
    done[[4, n - 1]] = True
    actions, rewards = rng.integers(2, size=n), rng.normal(size=n)

    def batch():
        return {
            SHARED_MODULE: {
                Columns.OBS: torch.as_tensor(obs),
                Columns.ACTIONS: torch.as_tensor(actions),
                Columns.ACTION_LOGP: torch.as_tensor(np.log(np.full(n, 0.4)), dtype=torch.float32),
                Columns.REWARDS: torch.as_tensor(rewards, dtype=torch.float32),
                Columns.TERMINATEDS: torch.as_tensor(done),
                Columns.TRUNCATEDS: torch.as_tensor(np.zeros(n, bool)),
            }
        }

    out = {}
    for name, rl_module in (("plain", plain), ("wrapped", wrapped)):
        b = SRPOShaping(tau=2.0, entropy_coeff=0.05)(rl_module=rl_module, batch=batch(), episodes=[])
        out[name] = RawGAE(gamma=0.99, lambda_=0.95)(rl_module=rl_module, batch=b, episodes=[])[SHARED_MODULE]
    for col in (Columns.REWARDS, Postprocessing.ADVANTAGES, Postprocessing.VALUE_TARGETS):
        assert col in out["wrapped"], col
        np.testing.assert_allclose(out["wrapped"][col].numpy(), out["plain"][col].numpy(), rtol=1e-6, atol=1e-6)
    assert not np.allclose(out["wrapped"][Columns.REWARDS].numpy(), rewards)  # the shadow rows were shaped


def test_srpo_ppo_refuses_an_env_without_shadow():
    with pytest.raises(MissingCallbackError, match="srpo_wrap"):
        srpo_ppo(ppo(), lambda: coordination_game(0.5))


def test_aec_envs_are_refused_with_the_conversion_named():
    from pettingzoo.utils.conversions import parallel_to_aec

    with pytest.raises(ConfigError, match="aec_to_parallel"):
        PettingZooMultiAgentEnv(parallel_to_aec(coordination_game(0.5)))


# ---- (a) SRPO with RLlib PPO reaches the exact RQE ----------------------------------------------------
def test_srpo_on_rllib_reaches_the_exact_rqe():
    """The coordination game, tau = 3, eps = 0.2 (PPO's entropy coefficient), seat identity, and the SB3
    test's PPO recipe (``rqe coordination``'s: 117 updates of 1024 agent-steps, 10 epochs on the whole
    batch, lr 3e-3 decaying linearly to 0, no advantage standardisation): the partner role's
    P(collaborate), seat mean, ends within the SB3 test's 0.05 of the exact symmetric RQE (0.643, above
    the tau = 0 QRE's 0.5). One difference: each episode plays the stage game ``ROUNDS`` times (the
    stages are independent, so each has the same RQE), because RLlib's per-episode bookkeeping (about
    2 ms on this CPU) would otherwise dominate; with one round the same budget would take about 3 minutes
    (estimated from the measured sampling cost, not run)."""
    tau, eps, iters, batch = 3.0, 0.2, ITERS, BATCH
    config = ppo(batch=batch, epochs=EPOCHS, lr=[[0, LR], [iters * batch, 0.0]], ent=eps, envs=32)
    env_fn = lambda: srpo_wrap(coordination_game(0.5, rounds=ROUNDS), tau=tau, seat_id=True)  # noqa: E731
    algo = srpo_ppo(config, env_fn, env_name="rqe-test-a").build_algo()
    try:
        for _ in range(iters):
            algo.train()
        policy = RLModulePolicy.from_algorithm(algo, SHARED_MODULE)
    finally:
        algo.stop()
    raw = coordination_game(0.5).observation_space("player_0")
    zero = np.zeros((1, 1), np.float32)
    learned = float(np.mean([PartnerRole(policy, raw, seat=k).action_probs(zero)[0, 1] for k in (0, 1)]))
    exact = [e for e in solve_rqe(coordination_payoffs(0.5), tau, eps) if abs(e.pi0[1] - e.pi1[1]) < 1e-6]
    assert exact[0].pi0[1] > 0.6
    assert abs(learned - exact[0].pi0[1]) < 0.05, (learned, exact[0].pi0[1])


#: the SB3 test's recipe: 117 rollouts of 512 env steps (1024 agent steps), 10 epochs, lr 3e-3 decaying
ITERS, BATCH, EPOCHS, LR, ROUNDS = 117, 512, 10, 3e-3, 8


# ---- (c) minimax-Bayes: nature moves towards the worst scenario, on the env runners ---------------------
def _aht_env():
    game = coordination_game(0.5)
    obs, act = game.observation_space("player_0"), game.action_space("player_0")
    population = {"free-rider": ConstantPolicy(obs, act, 0), "helper": ConstantPolicy(obs, act, 1)}
    return aht_wrap(game, population, prior="maximin-utility", lr=2.0, uniform_mix=0.0)


def _aht_algo(name: str, ema=0.5):
    return aht_ppo(ppo(batch=128, envs=8), _aht_env, env_name=name, utility_ema=ema).build_algo()


def _scenario_draws(env_runner, n=400):
    """Scenario indices the runner's first env copy draws from its current prior (a seeded side copy)."""
    env = sub_envs(env_runner)[0].par_env
    rng = stream(123, "test-draws")
    return np.bincount([int(categorical(env.beta, rng)) for _ in range(n)], minlength=len(env.scenarios))


def test_nature_moves_to_the_worst_scenario_and_reaches_the_env_runners():
    algo = _aht_algo("rqe-test-c")
    try:
        cb = algo.callbacks if not isinstance(algo.callbacks, list) else algo.callbacks[0]
        ids = cb.scenarios.ids  # ('c1:free-rider', 'c1:helper', 'c2')
        start = algo.env_runner_group.foreach_env_runner(lambda er: sub_envs(er)[0].par_env.beta)[0]
        np.testing.assert_allclose(start, np.full(3, 1 / 3))
        for _ in range(3):
            result = algo.train()
        assert result["rqe_aht"]["episodes"] > 0
        u = cb.filled_utilities()
        worst = int(np.argmin(u))
        assert ids[worst] == "c1:free-rider"  # a free-rider never collaborates: the focal seat earns least
        beta = algo.env_runner_group.foreach_env_runner(lambda er: sub_envs(er)[0].par_env.beta)[0]
        np.testing.assert_allclose(beta, cb.nature.beta)  # the runner's env holds nature's prior
        assert beta[worst] > 0.9  # lr = 2 on utilities 0.5 apart: projected onto the worst vertex
        # the env copy actually samples with it: resets draw the worst scenario
        scen = algo.env_runner_group.foreach_env_runner(
            lambda er: [sub_envs(er)[0].par_env.reset(seed=s)[1]["focal"]["scenario_index"] for s in range(50)]
        )[0]
        assert np.mean(np.array(scen) == worst) > 0.85
        # and a forced prior is what the next episodes play
        algo.env_runner_group.foreach_env_runner(lambda er: push_prior(er, np.array([0.0, 1.0, 0.0])))
        after = algo.env_runner_group.foreach_env_runner(_scenario_draws)[0]
        assert after[1] == after.sum()
    finally:
        algo.stop()


# ---- (d) checkpoints round-trip nature's prior and the snapshot ---------------------------------------
def test_checkpoint_round_trips_nature_and_snapshot(tmp_path):
    algo = _aht_algo("rqe-test-d")
    try:
        algo.train()
        algo.train()
        cb = algo.callbacks if not isinstance(algo.callbacks, list) else algo.callbacks[0]
        saved_beta, saved_u = cb.nature.beta.copy(), cb.utilities.copy()
        saved_snapshot = {k: v.copy() for k, v in cb.snapshot_weights.items()}
        folder = save_checkpoint(algo, tmp_path / "ckpt")
    finally:
        algo.stop()
    fresh = _aht_algo("rqe-test-d2")
    try:
        cb2 = fresh.callbacks if not isinstance(fresh.callbacks, list) else fresh.callbacks[0]
        assert not np.allclose(cb2.nature.beta, saved_beta)  # a fresh run starts uniform
        restore_checkpoint(fresh, folder)
        np.testing.assert_allclose(cb2.nature.beta, saved_beta)
        np.testing.assert_allclose(cb2.utilities, saved_u)
        assert cb2.nature.n_updates == 2
        for k, v in saved_snapshot.items():
            np.testing.assert_array_equal(cb2.snapshot_weights[k], v)
        on_runner = fresh.env_runner_group.foreach_env_runner(lambda er: sub_envs(er)[0].par_env.beta)[0]
        np.testing.assert_allclose(on_runner, saved_beta)  # pushed to the env copies on restore
        # the snapshot the focal copies play is the restored one
        from rqe_wrappers.core.snapshot import shared

        live = shared(cb2.config["snapshot_name"])
        assert isinstance(live, RLModulePolicy)
        got = live.get_weights()
        for k in got:
            np.testing.assert_array_equal(got[k], saved_snapshot[k])
    finally:
        fresh.stop()


def test_restore_refuses_a_folder_without_state(tmp_path):
    with pytest.raises(ConfigError, match="not a checkpoint folder"):
        algo = _aht_algo("rqe-test-d3")
        try:
            restore_checkpoint(algo, tmp_path / "missing")
        finally:
            algo.stop()


# ---- (e) the project's eval tools read RLlib modules ---------------------------------------------------
def test_crossplay_of_an_rllib_module_matches_stepping_by_hand():
    from rqe_wrappers.eval.crossplay import crossplay

    tau = 2.0
    algo = srpo_ppo(
        ppo(batch=256), lambda: srpo_wrap(coordination_game(0.5), tau=tau, seat_id=True), env_name="rqe-test-e"
    ).build_algo()
    try:
        algo.train()
        policy = RLModulePolicy.from_algorithm(algo, SHARED_MODULE)
        module = algo.learner_group._learner.module[SHARED_MODULE]
    finally:
        algo.stop()
    episodes = 16
    result = crossplay({"rllib": policy}, lambda: coordination_game(0.5), episodes=episodes, seed=0, batch=episodes)
    # by hand: the module's logits on [t, seat one-hot, partner role], softmax, the runner's seeded streams
    payoffs = coordination_payoffs(0.5)
    seats = ("player_0", "player_1")
    name = "eval/" + "/".join(f"{s}=rllib" for s in seats) + "/0"
    acts = {}
    for k, seat in enumerate(seats):
        obs = np.zeros((episodes, 5), np.float32)
        obs[:, 1 + k] = 1.0
        obs[:, 3] = 1.0
        with torch.no_grad():
            logits = module.forward_inference({Columns.OBS: torch.as_tensor(obs)})[Columns.ACTION_DIST_INPUTS]
        probs = torch.softmax(logits.double(), -1).numpy()
        acts[seat] = categorical(probs, stream(0, f"{name}/{seat}"))
    by_hand = payoffs[acts["player_0"], acts["player_1"], 0]
    rows = sorted((r for r in result.rows if r["agent_seat"] == "player_0"), key=lambda r: r["episode"])
    assert [r["episode"] for r in rows] == list(range(episodes))
    got = np.array([r["return:player_0"] for r in rows])
    np.testing.assert_allclose(got, by_hand)
    assert len(set(by_hand.tolist())) > 1  # the episodes differ: the sampling was exercised
