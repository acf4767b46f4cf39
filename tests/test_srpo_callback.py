"""SRPOCallback: the shaping formula on the buffer, misuse errors, and the learning path to the exact RQE."""

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from rqe_wrappers import srpo_wrap
from rqe_wrappers.envs.matrix import coordination_game
from rqe_wrappers.errors import MissingCallbackError
from rqe_wrappers.experiments.coordination import CoordinationRun, train_coordination
from rqe_wrappers.sb3 import PettingZooVecEnv, SRPOCallback
from rqe_wrappers.srpo.roles import PARTNER, set_role

torch.set_num_threads(1)


class Capture(BaseCallback):
    """Copies the rollout buffer before and after SRPOCallback touches it."""

    def __init__(self, when):
        super().__init__()
        self.when, self.rewards, self.log_partner = when, None, None

    def _on_step(self):
        return True

    def _on_rollout_end(self):
        buf = self.model.rollout_buffer
        self.rewards = buf.rewards.copy()
        self.returns = buf.returns.copy()
        if self.when == "before":
            dev = self.model.device
            obs = torch.as_tensor(set_role(buf.observations, PARTNER).reshape(-1, 3), device=dev)
            acts = torch.as_tensor(buf.actions.reshape(-1), device=dev).long()
            with torch.no_grad():
                _, lp, _ = self.model.policy.evaluate_actions(obs, acts)
            self.log_partner = lp.cpu().numpy().reshape(buf.rewards.shape)
            self.log_shadow = buf.log_probs.copy()
            self.shadow = buf.observations[..., -1] > 0.5


def make_model(tau, ent_coef=0.05, n_steps=8, device="auto"):
    venv = PettingZooVecEnv(lambda: srpo_wrap(coordination_game(0.5), tau=tau), n_copies=4)
    return PPO(
        "MlpPolicy",
        venv,
        n_steps=n_steps,
        batch_size=n_steps * 8,
        n_epochs=1,
        ent_coef=ent_coef,
        normalize_advantage=False,
        policy_kwargs=dict(net_arch=[8]),
        seed=0,
        device=device,
    )


def test_shaping_formula_on_shadow_rows_only():
    tau, ent = 2.0, 0.05
    model = make_model(tau, ent)
    before, after = Capture("before"), Capture("after")
    model.learn(64, callback=CallbackList([before, SRPOCallback(), after]))
    sh = before.shadow
    assert sh.any() and (~sh).any()
    expected = before.rewards.copy()
    expected[sh] += -(before.log_shadow[sh] - before.log_partner[sh]) / tau + ent * before.log_shadow[sh]
    np.testing.assert_allclose(after.rewards, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(after.rewards[~sh], before.rewards[~sh])
    # returns were recomputed from the shaped rewards (one-step episodes: return == reward)
    np.testing.assert_allclose(after.returns, after.rewards, atol=1e-6)


def _coordination():
    return make_model(2.0)


def _tictactoe():
    from pettingzoo.classic import tictactoe_v3
    from sb3_contrib import MaskablePPO

    venv = PettingZooVecEnv(lambda: srpo_wrap(tictactoe_v3.env(), tau=1.0), n_copies=2)
    kw = dict(n_steps=16, batch_size=32, n_epochs=1, normalize_advantage=False, policy_kwargs={"net_arch": [8]})
    return MaskablePPO("MultiInputPolicy", venv, seed=0, **kw)  # Dict observations, action masks


def _pistonball():
    pistonball_v6 = pytest.importorskip("pettingzoo.butterfly.pistonball_v6")
    ss = pytest.importorskip("supersuit")
    env = ss.resize_v1(pistonball_v6.parallel_env(n_pistons=4, max_cycles=25), 36, 36)
    venv = PettingZooVecEnv(lambda: srpo_wrap(env, tau=1.0), n_copies=1)
    kw = dict(n_steps=8, batch_size=32, n_epochs=1, normalize_advantage=False, policy_kwargs=dict(net_arch=[8]))
    return PPO("CnnPolicy", venv, seed=0, **kw)  # uint8 images, channel-first inside SB3


def _reused_array(make):
    """``make`` with a VecEnv that returns the same observation arrays every step, written in place."""
    from stable_baselines3.common.vec_env import VecEnvWrapper

    class Reused(VecEnvWrapper):
        def __init__(self, venv):
            super().__init__(venv)
            self.out = None

        def _into(self, obs):
            if self.out is None:
                self.out = {k: v.copy() for k, v in obs.items()}
            for k, v in obs.items():
                self.out[k][...] = v
            return self.out

        def reset(self):
            return self._into(self.venv.reset())

        def step_wait(self):
            obs, rewards, dones, infos = self.venv.step_wait()
            return self._into(obs), rewards, dones, infos

    def wrapped():
        model = make()
        model.set_env(Reused(model.get_env()))
        return model

    return wrapped


@pytest.mark.parametrize("make", [_coordination, _tictactoe, _pistonball], ids=["box", "dict-masks", "image"])
def test_shadow_rows_kept_step_by_step_give_the_shaping_read_from_the_buffer(make, monkeypatch):
    """In SB3's rollout loop the callback keeps a copy of each step's tensor PPO acted on (on its device)
    and never reads the buffer's observations; over ``max_kept_bytes`` the rollout end reads them from the
    buffer instead. Both give the same partner log-probs and shaped rewards, also where the VecEnv hands
    out one observation array and overwrites it every step (on the CPU PPO's tensor is that array: the
    callback must keep copies)."""
    import rqe_wrappers.sb3.srpo_callback as module

    read = []
    mask_of = module.shadow_mask

    def spy(obs):
        mask = mask_of(obs)
        read.append(mask.shape)
        return mask

    monkeypatch.setattr(module, "shadow_mask", spy)
    if make is _tictactoe:
        make = _reused_array(make)
    runs = {}
    for cap in (SRPOCallback.max_kept_bytes, 0):
        model, srpo = make(), SRPOCallback()
        srpo.max_kept_bytes = cap
        after = Capture("after")
        read.clear()
        model.learn(model.n_steps * model.n_envs, callback=[srpo, after])  # one rollout
        after.log_partner = srpo.log_partner
        runs[cap] = (after, list(read))
    (kept, kept_reads), (buffer, buffer_reads) = runs[SRPOCallback.max_kept_bytes], runs[0]
    shape = kept.rewards.shape
    assert kept_reads == [shape[1:]] * shape[0]  # one step's slots per read, never the whole buffer
    assert shape in buffer_reads
    assert len(kept.log_partner) == len(buffer.log_partner) > shape[1]
    np.testing.assert_allclose(kept.log_partner, buffer.log_partner, rtol=0, atol=1e-5)
    np.testing.assert_allclose(kept.rewards, buffer.rewards, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))],
)
def test_rows_kept_by_a_cpu_rollout_copy_are_shaped_on_the_models_device(device):
    """With ``RolloutDevice("cpu")`` the steps' tensors are on the CPU copy's device and the model may be on
    CUDA: the rollout end selects the rows where they are and evaluates them where the model is."""
    from rqe_wrappers.sb3 import RolloutDevice

    runs = {}
    for cap in (SRPOCallback.max_kept_bytes, 0):
        model, srpo, after = make_model(2.0, device=device), SRPOCallback(), Capture("after")
        srpo.max_kept_bytes = cap
        model.learn(model.n_steps * model.n_envs, callback=[RolloutDevice("cpu"), srpo, after])  # one rollout
        runs[cap] = (after.rewards, srpo.log_partner)
    (kept, kept_lp), (buffer, buffer_lp) = runs[SRPOCallback.max_kept_bytes], runs[0]
    assert kept_lp is not None and len(kept_lp) > 0
    np.testing.assert_allclose(kept_lp, buffer_lp, rtol=0, atol=1e-5)
    np.testing.assert_allclose(kept, buffer, rtol=0, atol=1e-5)


def test_a_rollout_stopped_early_leaves_no_kept_observations():
    class Stop(BaseCallback):
        def _on_step(self):
            return self.n_calls < 3

    model, srpo = make_model(2.0), SRPOCallback()
    kept = []
    model.learn(1_000, callback=[srpo, Stop(), _Spy(srpo, kept)])
    assert kept and max(kept) > 0  # observations were kept during the rollout
    assert srpo._steps == []  # and let go when training stopped


class _Spy(BaseCallback):
    """Records how many steps SRPOCallback keeps, after each step."""

    def __init__(self, srpo, counts):
        super().__init__()
        self.srpo, self.counts = srpo, counts

    def _on_step(self):
        self.counts.append(len(self.srpo._steps))
        return True


def test_tau_zero_leaves_buffer_alone():
    model = make_model(0.0)
    before, after = Capture("before"), Capture("after")
    model.learn(64, callback=CallbackList([before, SRPOCallback(), after]))
    np.testing.assert_array_equal(before.rewards, after.rewards)


def test_callback_on_env_without_shadow_fails_clearly():
    venv = PettingZooVecEnv(lambda: coordination_game(0.5), n_copies=2)
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=32, policy_kwargs=dict(net_arch=[8]))
    with pytest.raises(MissingCallbackError, match="srpo_wrap"):
        model.learn(32, callback=SRPOCallback())


def test_normalized_advantages_warn():
    venv = PettingZooVecEnv(lambda: srpo_wrap(coordination_game(0.5), tau=1.0), n_copies=2)
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=32, policy_kwargs=dict(net_arch=[8]))
    with pytest.warns(UserWarning, match="normalize_advantage"):
        model.learn(32, callback=SRPOCallback())


def test_callback_marks_envs_so_no_missing_callback_warning():
    model = make_model(1.0)
    import warnings

    from rqe_wrappers.errors import MissingCallbackWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingCallbackWarning)
        model.learn(64, callback=SRPOCallback())
    assert all(model.get_env().get_attr("srpo_callback_attached"))


@pytest.mark.slow
@pytest.mark.parametrize("tau", [0.0, 3.0])
def test_learning_reaches_exact_rqe(tau):
    """SRPO with stock PPO ends within 0.05 of the exact symmetric RQE (tau=0: the logit QRE)."""
    _, learned, exact = train_coordination(CoordinationRun(tau=tau, eps=0.2, steps=120_000, seed=0))
    assert abs(learned - exact) < 0.05, (learned, exact)
    if tau > 0:
        assert exact > 0.6  # risk aversion raised collaboration above the tau=0 QRE (0.5)
