"""SB3's own tools on this library's envs give right answers (issue 8): VecNormalize, evaluate_policy /
EvalCallback, CheckpointCallback, progress_bar=True and a monitored make_vec_env, each run for real."""

from __future__ import annotations

import csv
import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from pettingzoo import ParallelEnv
from pettingzoo.classic import tictactoe_v3
from pettingzoo.utils.wrappers import BaseParallelWrapper
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

from rqe_wrappers import ConstantPolicy, srpo_wrap
from rqe_wrappers.aht.nature import Nature
from rqe_wrappers.aht.wrapper import aht_wrap
from rqe_wrappers.core.snapshot import shared
from rqe_wrappers.envs.matrix import coordination_game
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.sb3 import (
    AHTCallback,
    PettingZooVecEnv,
    RoleVecMonitor,
    RoleVecNormalize,
    SRPOCallback,
    StatefulCheckpointCallback,
    evaluate_partner,
    latest_checkpoint,
    make_vec_env,
    partner_eval_env,
)
from rqe_wrappers.sb3.learner_snapshot import NormalizedInput, learner_policy
from rqe_wrappers.sb3.monitor import SHADOW_EPISODE
from rqe_wrappers.srpo.roles import PARTNER, SHADOW, set_role

th.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning")

COLLABORATE, FREE_RIDE = 1, 0


def coord(tau: float = 2.0):
    """The SRPO paper's coordination game (cost 0.5): both get 1 if one collaborates, a collaborator pays 0.5."""
    return srpo_wrap(coordination_game(0.5), tau=tau)


class DictObs(BaseParallelWrapper):
    """The coordination game with Dict observations ``{"t": Box}``."""

    def observation_space(self, agent):
        return gym.spaces.Dict({"t": self.env.observation_space(agent)})

    def reset(self, seed=None, options=None):
        obs, infos = self.env.reset(seed=seed, options=options)
        return {a: {"t": o} for a, o in obs.items()}, infos

    def step(self, actions):
        obs, *rest = self.env.step(actions)
        return ({a: {"t": o} for a, o in obs.items()}, *rest)


def ppo(venv, policy="MlpPolicy", n_steps=8, **kwargs):
    kwargs.setdefault("policy_kwargs", {"net_arch": [8]})
    return PPO(
        policy,
        venv,
        n_steps=n_steps,
        batch_size=n_steps * venv.num_envs,
        n_epochs=1,
        normalize_advantage=False,
        seed=0,
        device="cpu",
        **kwargs,
    )


def scripted(venv, partner: int, shadow: int):
    """A real PPO whose deterministic action is ``partner`` in the partner role and ``shadow`` as shadow.

    No hidden layer: the logits are ``W @ [t, partner, shadow] + b``; learning_rate 0 keeps them.
    """
    model = ppo(venv, learning_rate=0.0, policy_kwargs={"net_arch": {"pi": [], "vf": []}})
    w = np.zeros((2, 3), np.float32)
    w[partner, 1] = 40.0  # the partner role's one-hot votes for `partner` (sampled too: odds of e**40 to 1)
    w[shadow, 2] = 40.0
    with th.no_grad():
        model.policy.action_net.weight.copy_(th.as_tensor(w))
        model.policy.action_net.bias.zero_()
    return model


# ---- 1. VecNormalize --------------------------------------------------------------------------------
def test_plain_vecnormalize_rescales_the_role_and_srpo_refuses_it():
    venv = VecNormalize(PettingZooVecEnv(coord, n_copies=4), norm_reward=False)
    venv.seed(0)
    role = venv.reset()[:, -2:]
    assert not np.isin(role, [0.0, 1.0]).all()  # the bug: the role one-hot is no longer one-hot
    with pytest.raises(ConfigError, match=r"RoleVecNormalize\(venv"):
        ppo(venv).learn(16, callback=SRPOCallback())


def test_dict_vecnormalize_must_leave_the_role_key_out():
    def env():
        return srpo_wrap(DictObs(coordination_game(0.5)), tau=2.0)

    with pytest.raises(ConfigError, match=r"norm_obs_keys=\['t'\]"):
        ppo(VecNormalize(PettingZooVecEnv(env, n_copies=2)), "MultiInputPolicy").learn(16, callback=SRPOCallback())
    for venv in (
        VecNormalize(PettingZooVecEnv(env, n_copies=2), norm_reward=False, norm_obs_keys=["t"]),
        RoleVecNormalize(PettingZooVecEnv(env, n_copies=2), norm_reward=False),
    ):
        assert venv.norm_obs_keys == ["t"]
        cb = SRPOCallback()
        ppo(venv, "MultiInputPolicy").learn(32, callback=cb)
        assert cb.log_partner is not None
    with pytest.raises(ConfigError, match="must not name srpo_wrap's keys"):
        RoleVecNormalize(PettingZooVecEnv(env), norm_obs_keys=["t", "role"])


class SeenByPPO(BaseCallback):
    """Records the observations PPO acted on at each step; at rollout end (right after SRPOCallback, before
    PPO's update) the policy's log-prob of the shadow rows' actions on their partner-role version."""

    def __init__(self):
        super().__init__()
        self.steps: list[np.ndarray] = []

    def _on_rollout_start(self):
        self.steps = []

    def _on_step(self):
        self.steps.append(self.locals["obs_tensor"].cpu().numpy().copy())
        return True

    def _on_rollout_end(self):
        buf = self.model.rollout_buffer
        self.seen = np.stack(self.steps)  # (n_steps, slots, 3)
        self.buffer_obs = buf.observations.copy()
        self.shadow = self.seen[..., -2 + SHADOW] == 1
        view = set_role(self.seen[self.shadow], PARTNER)
        acts = th.as_tensor(buf.actions[self.shadow].reshape(-1)).long()
        with th.no_grad():
            _, lp, _ = self.model.policy.evaluate_actions(th.as_tensor(view), acts)
        self.expected = lp.numpy().astype(np.float64)


def test_role_vecnormalize_partner_log_prob_is_the_policys_on_what_ppo_saw():
    raw_env = PettingZooVecEnv(lambda: srpo_wrap(coordination_game(0.5, rounds=3), tau=2.0), n_copies=4)
    venv = RoleVecNormalize(raw_env, norm_reward=False)
    cb, seen = SRPOCallback(), SeenByPPO()
    ppo(venv).learn(64, callback=[cb, seen])
    obs = seen.seen
    np.testing.assert_array_equal(obs, seen.buffer_obs)  # the buffer holds what PPO saw
    assert np.isin(obs[..., -2:], [0.0, 1.0]).all() and (obs[..., -2:].sum(-1) == 1).all()  # the role, as is
    assert not np.isin(obs[..., 0], [0.0, 1 / 3, 2 / 3]).all()  # the env's own feature was normalised
    assert seen.shadow.any() and (~seen.shadow).any()
    np.testing.assert_allclose(cb.log_partner, seen.expected, rtol=0, atol=1e-6)


def test_the_turn_based_snapshot_plays_on_normalised_inputs():
    venv = RoleVecNormalize(PettingZooVecEnv(coord, n_copies=2), norm_reward=False)
    venv.seed(0)
    venv.reset()
    venv.step(np.ones(4, dtype=np.int64))
    model = ppo(venv)
    policy = learner_policy(venv, model)
    assert isinstance(policy, NormalizedInput) and policy.observation_space == venv.venv.observation_space
    raw = venv.get_original_obs()
    np.testing.assert_array_equal(policy.normalize(raw), venv.normalize_obs(raw))
    venv.obs_rms.mean[:] += 5.0  # later statistics do not reach the frozen snapshot
    assert not np.allclose(policy.normalize(raw), venv.normalize_obs(raw))


def test_role_vecnormalize_goes_with_the_checkpoint_and_loads_back(tmp_path):
    venv = RoleVecNormalize(make_vec_env(coord, n_copies=2, seed=0), norm_reward=False)
    ppo(venv).learn(32, callback=[SRPOCallback(), StatefulCheckpointCallback(4, tmp_path)])
    loaded = RoleVecNormalize.load(str(tmp_path / "rl_model_vecnormalize_32_steps.pkl"), make_vec_env(coord, 2))
    assert type(loaded) is RoleVecNormalize and loaded.keep_role
    np.testing.assert_array_equal(loaded.obs_rms.mean, venv.obs_rms.mean)
    loaded.seed(0)
    role = loaded.reset()[:, -2:]
    assert np.isin(role, [0.0, 1.0]).all() and (role.sum(1) == 1).all()
    with pytest.raises(ConfigError, match="no srpo_wrap role feature"):
        RoleVecNormalize(PettingZooVecEnv(lambda: coordination_game(0.5)))


def test_turn_based_srpo_behind_role_vecnormalize_shares_a_normalising_snapshot():
    from sb3_contrib import MaskablePPO

    venv = RoleVecNormalize(make_vec_env(lambda: srpo_wrap(tictactoe_v3.env(), tau=1.0), n_copies=2, seed=0))
    assert venv.norm_obs_keys == ["observation"]  # the board; the role key is left as is
    model = MaskablePPO(
        "MultiInputPolicy", venv, n_steps=8, batch_size=16, normalize_advantage=False, seed=0, device="cpu"
    )
    with pytest.warns(UserWarning, match="norm_reward=True"):
        model.learn(16, callback=SRPOCallback())
    live = shared("learner")
    assert isinstance(live, NormalizedInput) and live.observation_space == venv.venv.observation_space
    board = {k: v.copy() for k, v in venv.get_original_obs().items()}
    np.testing.assert_array_equal(live.normalize(board)["observation"], venv.normalize_obs(board)["observation"])


# ---- 2. evaluate_policy / EvalCallback ------------------------------------------------------------
@pytest.mark.parametrize(
    ("partner", "shadow", "with_partners", "against_shadow"),
    [
        (COLLABORATE, COLLABORATE, 0.5, 0.5),  # each pays 0.5 and gets 1
        (FREE_RIDE, COLLABORATE, 0.0, 1.0),  # partners alone: nobody collaborates; a shadow carries the partner
    ],
)
def test_evaluate_policy_reports_the_partner_return(partner, shadow, with_partners, against_shadow):
    model = scripted(PettingZooVecEnv(coord, n_copies=2), partner, shadow)
    eval_env = partner_eval_env(coord, n_copies=2, seed=0)
    assert evaluate_policy(model, eval_env, n_eval_episodes=8) == (with_partners, 0.0)
    assert evaluate_partner(model, coord, n_episodes=8) == (with_partners, 0.0)
    # naive routes on the training env: partner and shadow returns cancel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "not wrapped with a Monitor"
        assert evaluate_policy(model, PettingZooVecEnv(coord, n_copies=2), n_eval_episodes=8)[0] == 0.0
    assert evaluate_policy(model, VecMonitor(PettingZooVecEnv(coord, n_copies=2)), n_eval_episodes=8)[0] == 0.0
    # the monitored training env counts partner-role episodes: the partner's return against its shadow
    assert evaluate_policy(model, make_vec_env(coord, n_copies=2, seed=0), n_eval_episodes=8) == (against_shadow, 0.0)


def test_eval_callback_on_the_partner_eval_env():
    model = scripted(make_vec_env(coord, n_copies=2, seed=0), COLLABORATE, FREE_RIDE)
    with_partners = EvalCallback(partner_eval_env(coord, n_copies=2, seed=1), n_eval_episodes=4, eval_freq=4)
    naive = EvalCallback(VecMonitor(PettingZooVecEnv(coord, n_copies=2)), n_eval_episodes=4, eval_freq=4)
    model.learn(32, callback=[SRPOCallback(), with_partners, naive])
    assert with_partners.last_mean_reward == 0.5 and naive.last_mean_reward == 0.0


def test_partner_eval_env_needs_an_srpo_env():
    with pytest.raises(ConfigError, match="srpo_wrap"):
        partner_eval_env(lambda: coordination_game(0.5))


def test_evaluate_partner_on_a_turn_based_game_plays_the_model_in_the_other_seats():
    from sb3_contrib import MaskablePPO

    def ttt():
        return srpo_wrap(tictactoe_v3.env(), tau=1.0)

    model = MaskablePPO("MultiInputPolicy", PettingZooVecEnv(ttt, n_copies=2), seed=0, device="cpu")
    mean, _ = evaluate_partner(model, ttt, n_episodes=2, n_copies=2)
    live = shared("rqe-eval-learner")
    assert live is not None and np.isfinite(mean)
    weights = live.get_weights()
    for k, v in model.policy.state_dict().items():
        np.testing.assert_array_equal(weights[k], v.cpu().numpy())


# ---- 3. CheckpointCallback ----------------------------------------------------------------------------
def aht_model(prior="maximin-utility", **settings):
    g = coordination_game(cost=0.5)
    space = g.observation_space("player_0"), g.action_space("player_0")
    pop = (
        {}
        if prior == "fictitious-play"
        else {"free-rider": ConstantPolicy(*space, 0), "helper": ConstantPolicy(*space, 1)}
    )
    venv = make_vec_env(
        lambda: aht_wrap(coordination_game(cost=0.5), pop, prior, lr=0.5, uniform_mix=0.1, **settings),
        n_copies=2,
        seed=0,
    )
    return ppo(venv, n_steps=32), venv


class Episodes(BaseCallback):
    """Focal episodes (scenario, return) and the AHT state at given calls."""

    def __init__(self, aht, at=()):
        super().__init__()
        self.aht, self.at, self.batch, self.states, self.calls = aht, set(at), [], {}, []

    def _on_step(self):
        ended = [(i["scenario_index"], i["focal_return"]) for i in self.locals["infos"] if "focal_return" in i]
        self.batch += ended
        self.calls += [self.n_calls] * len(ended)
        if self.n_calls in self.at:
            self.states[self.n_calls] = json.loads(json.dumps(self.aht.state_dict()))
        return True


def test_checkpoint_saves_ahts_state_and_a_resume_continues_it_exactly(tmp_path):
    model, venv = aht_model()
    aht = AHTCallback()
    ckpt = StatefulCheckpointCallback(save_freq=48, save_path=tmp_path, state_of=[aht, SRPOCallback()])
    spy = Episodes(aht, at=[48])
    model.learn(3 * 32 * venv.num_envs, callback=[aht, ckpt, spy])
    path = tmp_path / f"rl_model_{48 * venv.num_envs}_steps.zip"  # mid-way through the second rollout
    assert ckpt.saved == [path, tmp_path / f"rl_model_{96 * venv.num_envs}_steps.zip"]
    assert latest_checkpoint(tmp_path) == ckpt.saved[-1]
    saved = json.loads(path.with_name(path.stem + ".aht.json").read_text())
    assert saved == spy.states[48] and saved["nature"]["n_updates"] == 1  # the state of that step

    # plain SB3: the model only
    model2, venv2 = aht_model()
    plain = CheckpointCallback(save_freq=48, save_path=str(tmp_path / "sb3"))
    model2.learn(64 * venv2.num_envs, callback=[AHTCallback(), plain])
    assert not list((tmp_path / "sb3").glob("*.aht.json"))

    # resume: the model, then the callback from the same path
    _, venv3 = aht_model()
    resumed = PPO.load(path, env=venv3, device="cpu")
    aht3 = AHTCallback.load(path)
    spy3 = Episodes(aht3)
    resumed.learn(32 * venv3.num_envs, callback=[aht3, spy3], reset_num_timesteps=False)
    assert resumed.num_timesteps == (48 + 32) * venv.num_envs
    # the episodes that finished before the checkpoint in its rollout were saved, not dropped ...
    in_rollout = [list(e) for e, c in zip(spy.batch, spy.calls, strict=True) if 32 < c <= 48]
    assert saved["pending_episodes"] == in_rollout and len(in_rollout) > 0
    # ... utilities and counts continue from the checkpoint with them and the new rollout's episodes ...
    u, n = np.array(saved["utilities"], dtype=float), np.array(saved["counts"])
    pending = [(int(i), float(r)) for i, r in saved["pending_episodes"]]
    batch = pending + spy3.batch
    idx, ret = np.array([s for s, _ in batch]), np.array([r for _, r in batch])
    for s in range(len(u)):
        got = ret[idx == s]
        if len(got):
            u[s] = got.mean() if n[s] == 0 else u[s] + (1 - 0.9 ** len(got)) * (got.mean() - u[s])
            n[s] += len(got)
    np.testing.assert_allclose(aht3.utilities, u, rtol=0, atol=1e-12)
    assert aht3.counts.tolist() == n.tolist()
    # ... and nature takes one step from the saved prior
    nature = Nature.from_state_dict(saved["nature"])
    nature.update(np.where(np.isnan(u), np.nanmean(u), u))
    np.testing.assert_allclose(aht3.beta, nature.beta, rtol=0, atol=1e-12)
    assert aht3.nature.n_updates == 2
    np.testing.assert_allclose(venv3.get_attr("beta")[0], aht3.beta / aht3.beta.sum(), atol=1e-12)


def test_checkpoint_keeps_the_fictitious_play_reservoir(tmp_path):
    model, venv = aht_model("fictitious-play", fp_capacity=4)
    aht = AHTCallback()
    ckpt = StatefulCheckpointCallback(save_freq=64, save_path=tmp_path, state_of=[aht])
    model.learn(3 * 32 * venv.num_envs, callback=[aht, ckpt])
    path = latest_checkpoint(tmp_path)
    assert path is not None and path.with_name(path.stem + ".aht.npz").exists()
    saved = json.loads(path.with_name(path.stem + ".aht.json").read_text())
    _, venv2 = aht_model("fictitious-play", fp_capacity=4)
    resumed, aht2 = PPO.load(path, env=venv2, device="cpu"), AHTCallback.load(path)
    resumed.learn(32 * venv2.num_envs, callback=aht2, reset_num_timesteps=False)
    assert aht2.fp_seen == saved["fictitious_play"]["seen"] + 1
    assert aht2.fp_filled.sum() == min(4, aht2.fp_seen)


def test_checkpoint_refuses_a_callback_without_state():
    with pytest.raises(ConfigError, match="save"):
        StatefulCheckpointCallback(10, "unused", state_of=[EvalCallback(PettingZooVecEnv(coord))])


# ---- 4. progress_bar ----------------------------------------------------------------------------------
def test_progress_bar_runs_with_the_vec_env():
    model = ppo(make_vec_env(coord, n_copies=2, seed=0))
    model.learn(32, progress_bar=True, callback=SRPOCallback())
    assert model.num_timesteps >= 32


# ---- 5. a monitored make_vec_env ----------------------------------------------------------------------
def read_progress(folder):
    with open(folder / "progress.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(("monitor", "expected"), [("ours", 0.5), ("sb3", 0.0), ("none", None)])
def test_make_vec_env_is_monitored_so_ppo_logs_the_partner_return(tmp_path, monitor, expected):
    if monitor == "sb3":  # SB3's VecMonitor averages in the shadows' -0.5
        venv = VecMonitor(make_vec_env(coord, n_copies=2, seed=0, monitor=False))
    else:
        venv = make_vec_env(coord, n_copies=2, seed=0, monitor=monitor == "ours")
        assert isinstance(venv, RoleVecMonitor) == (monitor == "ours")
    assert venv.slot_seats == ["player_0", "player_1"] * 2 and callable(venv.share_snapshot)
    model = scripted(venv, COLLABORATE, FREE_RIDE)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(32, callback=SRPOCallback())
    rows = read_progress(tmp_path)
    if expected is None:
        assert "rollout/ep_rew_mean" not in rows[-1]
    else:  # ours: partner-role episodes only
        assert float(rows[-1]["rollout/ep_rew_mean"]) == expected and float(rows[-1]["rollout/ep_len_mean"]) == 1


def test_callbacks_find_the_snapshot_through_the_monitor():
    venv = make_vec_env(lambda: srpo_wrap(tictactoe_v3.env(), tau=1.0), n_copies=2, seed=0)
    assert isinstance(venv, RoleVecMonitor) and venv.uses_snapshot
    from sb3_contrib import MaskablePPO

    model = MaskablePPO(
        "MultiInputPolicy", venv, n_steps=8, batch_size=16, normalize_advantage=False, seed=0, device="cpu"
    )
    model.learn(16, callback=SRPOCallback())
    assert shared("learner") is not None


def test_the_monitor_splits_episodes_by_role():
    venv = RoleVecMonitor(PettingZooVecEnv(lambda: srpo_wrap(coordination_game(0.5, rounds=2), tau=2.0), 1))
    venv.seed(0)
    venv.reset()
    episodes = []
    for _ in range(4):
        _, _, dones, infos = venv.step(np.ones(2, dtype=np.int64))
        episodes += [(i.get("episode"), i.get(SHADOW_EPISODE)) for i, d in zip(infos, dones, strict=True) if d]
    assert len(episodes) == 4
    for partner_ep, shadow_ep in episodes:  # exactly one of the two, by role
        assert (partner_ep is None) != (shadow_ep is None)
        ep = partner_ep or shadow_ep
        assert ep["l"] == 2 and ep["r"] == (1.0 if partner_ep else -1.0)


def test_the_monitor_writes_what_sb3s_monitor_writes_where_there_are_no_roles(tmp_path):
    # tau = 0 (every slot a partner): RoleVecMonitor must be SB3's VecMonitor, episode dicts and CSV rows alike
    def run(cls, name):
        venv = cls(
            PettingZooVecEnv(lambda: srpo_wrap(coordination_game(0.5, rounds=3), tau=0.0), 3),
            filename=str(tmp_path / name),
            info_keywords=("role",),
        )
        venv.seed(1)
        venv.reset()
        rng = np.random.default_rng(0)
        episodes = []
        for _ in range(7):
            _, _, dones, infos = venv.step(rng.integers(0, 2, 6))
            episodes += [(i, {k: v for k, v in infos[i]["episode"].items() if k != "t"}) for i in np.flatnonzero(dones)]
            assert all(("episode" in info) == bool(d) for info, d in zip(infos, dones, strict=True))
        venv.close()
        with open(tmp_path / f"{name}.monitor.csv") as f:
            rows = [{k: v for k, v in r.items() if k != "t"} for r in csv.DictReader(f.readlines()[1:])]
        return episodes, rows, venv.episode_count

    ours, sb3 = run(RoleVecMonitor, "ours"), run(VecMonitor, "sb3")
    assert ours == sb3
    assert len(ours[0]) == 12 and ours[2] == 12 and {r["role"] for r in ours[1]} == {"partner"}


class EarlyExit(ParallelEnv):
    """player_0 leaves after one step, player_1 after three; reward 1 per step each."""

    metadata = {"name": "early_exit_v0"}
    possible_agents = ["player_0", "player_1"]

    def observation_space(self, agent):
        return gym.spaces.Box(0.0, 1.0, (1,), np.float32)

    def action_space(self, agent):
        return gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        self.agents, self.t = list(self.possible_agents), 0
        return {a: np.zeros(1, np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        ends = {"player_0": self.t >= 1, "player_1": self.t >= 3}
        live = list(self.agents)
        self.agents = [a for a in live if not ends[a]]
        return (
            {a: np.zeros(1, np.float32) for a in live},
            {a: 1.0 for a in live},
            {a: ends[a] for a in live},
            {a: False for a in live},
            {a: {} for a in live},
        )


def test_idle_rows_do_not_lengthen_the_next_episode():
    sb3 = VecMonitor(PettingZooVecEnv(EarlyExit, 1))
    ours = RoleVecMonitor(PettingZooVecEnv(EarlyExit, 1))
    lengths = {}
    for name, venv in (("sb3", sb3), ("ours", ours)):
        venv.reset()
        got = []
        for _ in range(6):
            _, _, dones, infos = venv.step(np.zeros(2, dtype=np.int64))
            got += [(i, infos[i]["episode"]["l"], infos[i]["episode"]["r"]) for i in range(2) if dones[i]]
        lengths[name] = got
    # player_0's second episode: SB3's VecMonitor adds the two idle rows it waited through
    assert lengths["ours"] == [(0, 1, 1.0), (1, 3, 3.0), (0, 1, 1.0), (1, 3, 3.0)]
    assert lengths["sb3"][2] == (0, 3, 1.0)


def test_the_monitor_skips_idle_row_checks_where_slots_never_idle():
    from rqe_wrappers.batched import batched_vec_env
    from rqe_wrappers.envs.ipd import BatchedIPD

    assert RoleVecMonitor(PettingZooVecEnv(EarlyExit, 1)).idle_rows  # turn-based and early exits: may idle
    venv = batched_vec_env(BatchedIPD(64, rounds=2), 1.0, seed=0)
    assert isinstance(venv, RoleVecMonitor) and not venv.idle_rows
    venv.reset()
    for _ in range(2):
        _, _, dones, infos = venv.step(np.zeros(128, dtype=np.int64))
    assert dones.all()
    roles = [info["role"] for info in infos]
    # every finished slot still reports its episode, a shadow's under "shadow_episode" only
    assert all(
        ("episode" in i) == (r == "partner") and ("shadow_episode" in i) == (r == "shadow")
        for i, r in zip(infos, roles, strict=True)
    )
    assert {i["episode"]["l"] for i in infos if "episode" in i} == {2} and "shadow" in roles


def test_the_monitor_writes_into_fresh_infos_the_episodes_a_copy_would_get():
    from rqe_wrappers.batched import batched_vec_env
    from rqe_wrappers.envs.ipd import BatchedIPD

    def episodes(fresh: bool):
        venv = batched_vec_env(BatchedIPD(32, rounds=3), 1.0, seed=4, step_infos=False)
        assert venv.fresh_infos  # the batched VecEnv builds a finished slot's info new each step
        venv.fresh_infos = fresh
        seen, held = [], []
        inner = venv.venv

        def step_wait():  # keep the env's own info objects, to see whether the monitor wrote into them
            out = type(inner).step_wait(inner)
            held.append(out[3])
            return out

        inner.step_wait = step_wait
        venv.reset()
        actions = np.random.default_rng(1).integers(2, size=(9, 64))
        for t in range(9):
            _, _, dones, infos = venv.step(actions[t])
            for k in np.flatnonzero(dones):
                ep = infos[k].get("episode", infos[k].get("shadow_episode"))
                seen.append((t, int(k), float(ep["r"]), int(ep["l"])))
                assert (infos[k] is held[-1][k]) == fresh
        return seen

    written, copied = episodes(True), episodes(False)
    assert written == copied and len(written) == 3 * 64


# ---- the code of docs/adapter.md, "SB3's own tools", as written (budgets cut) -------------------------
def test_the_documented_code_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    import stable_baselines3

    class ShortPPO(stable_baselines3.PPO):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("n_steps", 16)
            kwargs.setdefault("batch_size", 64)
            kwargs.setdefault("policy_kwargs", {"net_arch": [8]})
            super().__init__(*args, **kwargs)

    text = (Path(__file__).resolve().parents[1] / "docs" / "adapter.md").read_text()
    section = text.split("## SB3's own tools", 1)[1].split("\n## ", 1)[0]
    code = "\n".join(re.findall(r"```python\n(.*?)```", section, re.S))
    code = re.sub(r"\.learn\(\d[\d_]*", ".learn(256", code)
    code = re.sub(r"(save|eval)_freq=[\d_]+", r"\1_freq=4", code)
    code = code.replace("n_episodes=20", "n_episodes=4").replace("n_eval_episodes=20", "n_eval_episodes=4")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stable_baselines3, "PPO", ShortPPO)
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        exec(compile(code, "docs/adapter.md SB3's own tools", "exec"), namespace)
    assert namespace["model"].num_timesteps > 256 and namespace["aht"].nature.n_updates > 0
    assert isinstance(namespace["venv"], PettingZooVecEnv) and np.isfinite(namespace["mean"])
    assert namespace["trainer"].num_timesteps >= 256  # 6.: trained with RolloutDevice


def test_role_vec_normalize_keeps_the_seat_identity_too():
    """With seat_id=True srpo_wrap appends the seat one-hot before the role: neither is rescaled."""
    from rqe_wrappers import PettingZooVecEnv, srpo_wrap
    from rqe_wrappers.envs.matrix import coordination_game
    from rqe_wrappers.sb3 import RoleVecNormalize

    venv = RoleVecNormalize(PettingZooVecEnv(lambda: srpo_wrap(coordination_game(0.5), tau=1.0, seat_id=True), 2))
    width = venv.get_attr("srpo_feature_width", indices=0)[0]
    assert width == 4  # two seats + two roles
    raw = venv.reset()
    for _ in range(5):
        obs, *_ = venv.step(np.zeros(venv.num_envs, dtype=np.int64))
        tail = obs[:, -width:]
        assert set(np.unique(tail)) <= {0.0, 1.0}
        assert (tail[:, :2].sum(axis=1) == 1).all() and (tail[:, 2:].sum(axis=1) == 1).all()
    assert raw.shape[1] > width
