"""The PettingZoo -> SB3 VecEnv adapter: slots, seeds, truncation, masks, workers, AEC seats."""

from __future__ import annotations

import functools
import os

import gymnasium as gym
import numpy as np
import pytest
import torch
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.classic import tictactoe_v3
from pettingzoo.test import parallel_api_test
from pettingzoo.utils.env_logger import EnvLogger

from rqe_wrappers import ConfigError, RandomPolicy, SpaceMismatchError, srpo_wrap
from rqe_wrappers.core.policy import ConstantPolicy, Policy
from rqe_wrappers.envs.matrix import MatrixGameEnv
from rqe_wrappers.sb3 import PettingZooVecEnv, make_vec_env
from rqe_wrappers.seats.single_seat import single_seat

mpe2 = pytest.importorskip("mpe2")
from mpe2 import simple_tag_v3  # noqa: E402

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning")


def tag_env():
    env = simple_tag_v3.parallel_env(num_good=1, num_adversaries=2, num_obstacles=2, max_cycles=25)
    runner = RandomPolicy(env.observation_space("agent_0"), env.action_space("agent_0"))
    return srpo_wrap(env, tau=1.0, fixed={"agent_0": runner})


def matrix_env():
    return MatrixGameEnv(np.ones((2, 2, 2)), rounds=3)  # every step pays 1; truncated after 3 rounds


class Staggered(ParallelEnv):
    """Seat ``a`` terminates after one step, seat ``b`` is truncated after three; obs = ``[t, id]``."""

    metadata = {"name": "staggered_v0"}
    possible_agents = ["a", "b"]

    def __init__(self):
        self.agents, self.t, self.render_mode = [], 0, None

    @functools.cache
    def observation_space(self, agent):
        return gym.spaces.Box(0.0, 10.0, (2,), np.float32)

    @functools.cache
    def action_space(self, agent):
        return gym.spaces.Discrete(2)

    def _obs(self):
        seats = enumerate(self.possible_agents)
        return {s: np.array([self.t, 5 + i], np.float32) for i, s in seats if s in self.agents}

    def reset(self, seed=None, options=None):
        self.agents, self.t = list(self.possible_agents), 0
        return self._obs(), {s: {} for s in self.agents}

    def step(self, actions):
        assert set(actions) == set(self.agents), "actions only for live agents"
        self.t += 1
        obs = self._obs()
        rew = {s: 1.0 for s in self.agents}
        term = {s: s == "a" for s in self.agents}
        trunc = {s: s == "b" and self.t >= 3 for s in self.agents}
        self.agents = [s for s in self.agents if not (term[s] or trunc[s])]
        return obs, rew, term, trunc, {s: {} for s in obs}


class TurnGame(AECEnv):
    """Seats p0, p1 alternate; a move pays the mover 1 and the other seat 10; terminates after 4 moves."""

    metadata = {"name": "turn_game_v0", "is_parallelizable": False}
    possible_agents = ["p0", "p1"]

    @functools.cache
    def observation_space(self, agent):
        return gym.spaces.Box(0.0, 10.0, (1,), np.float32)

    @functools.cache
    def action_space(self, agent):
        return gym.spaces.Discrete(2)

    def observe(self, agent):
        return np.array([self.moves], np.float32)

    def reset(self, seed=None, options=None):
        self.agents, self.moves = list(self.possible_agents), 0
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.infos = {a: {} for a in self.agents}
        self.agent_selection = "p0"

    def step(self, action):
        me = self.agent_selection
        if self.terminations[me] or self.truncations[me]:
            return self._was_dead_step(action)
        self._cumulative_rewards[me] = 0.0
        self.moves += 1
        self.rewards = {a: 1.0 if a == me else 10.0 for a in self.agents}
        if self.moves >= 4:
            self.terminations = {a: True for a in self.agents}
        self._accumulate_rewards()
        self.agent_selection = "p1" if me == "p0" else "p0"


def rollout(venv, steps, seed=0, action_seed=1):
    venv.seed(seed)
    obs = [venv.reset()]
    rews, dones = [], []
    rng = np.random.default_rng(action_seed)
    for _ in range(steps):
        o, r, d, _ = venv.step(rng.integers(venv.action_space.n, size=venv.num_envs))
        obs.append(o)
        rews.append(r)
        dones.append(d)
    return np.array(obs), np.array(rews), np.array(dones)


# ---- slots, spaces, errors ------------------------------------------------------------------------
def test_parallel_slots_and_spaces():
    venv = PettingZooVecEnv(tag_env, n_copies=2)
    assert venv.num_envs == 4 and venv.slot_seats == ["adversary_0", "adversary_1"] * 2
    assert venv.observation_space.shape == (16,)  # 14 + role one-hot
    venv.seed(0)
    obs = venv.reset()
    assert obs.shape == (4, 16) and obs.dtype == np.float32
    obs, rew, done, infos = venv.step(np.zeros(4, dtype=np.int64))
    assert rew.dtype == np.float32 and done.dtype == bool and len(infos) == 4
    assert {i["role"] for i in infos[:2]} == {"partner", "shadow"}
    assert venv.action_masks().shape == (4, 5) and venv.action_masks().all()  # no masks: all legal
    venv.close()


def test_mismatched_seat_spaces_raise():
    with pytest.raises(SpaceMismatchError, match=r"agent_0.*background_seats|adversary_0.*agent_0"):
        PettingZooVecEnv(lambda: simple_tag_v3.parallel_env(num_good=1, num_adversaries=2, num_obstacles=2))


def test_mismatch_raised_from_worker():
    with pytest.raises(SpaceMismatchError, match="pad_observations"):
        PettingZooVecEnv(lambda: simple_tag_v3.parallel_env(), n_copies=1, n_workers=1)


def _first_built_or_other(flag: str):
    """The first call in any process builds 2-action copies, every later one 3-action copies."""
    try:
        os.close(os.open(flag, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return MatrixGameEnv(np.ones((3, 3, 2)), rounds=3)
    return matrix_env()


def test_mismatch_between_workers_names_both_spaces(tmp_path):
    env_fn = functools.partial(_first_built_or_other, str(tmp_path / "first"))
    with pytest.raises(
        SpaceMismatchError,
        match=r"seat 'player_0' has .*action Discrete\([23]\) while seat "
        r"'player_0' has .*action Discrete\([23]\)",
    ):
        PettingZooVecEnv(env_fn, n_copies=2, n_workers=2)


def test_same_env_object_twice_raises():
    env = matrix_env()
    with pytest.raises(ConfigError, match="new env"):
        PettingZooVecEnv(lambda: env, n_copies=2)


def test_env_fn_must_build_a_pettingzoo_env():
    with pytest.raises(TypeError, match=r"^env_fn\(\): expected a PettingZoo ParallelEnv or AECEnv, got int"):
        PettingZooVecEnv(lambda: 3)


def test_module_layout_keeps_the_old_import_paths():
    import rqe_wrappers
    from rqe_wrappers.sb3 import env_util, vec_env
    from rqe_wrappers.sb3.vec_env import pettingzoo_vec_env, worker

    assert vec_env.PettingZooVecEnv is pettingzoo_vec_env.PettingZooVecEnv is PettingZooVecEnv
    with pytest.warns(DeprecationWarning, match="from rqe_wrappers.sb3.env_util import make_vec_env"):
        assert vec_env.make_vec_env is env_util.make_vec_env is make_vec_env is rqe_wrappers.make_vec_env
    assert vec_env.default_start_method is worker.default_start_method
    assert vec_env.default_start_method() in ("forkserver", "spawn")
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        vec_env.nothing  # noqa: B018


# ---- seeds ----------------------------------------------------------------------------------------
def test_seed_determinism_in_process_and_workers():
    a = rollout(PettingZooVecEnv(tag_env, n_copies=2), 60)  # crosses two episode ends (max_cycles=25)
    b = rollout(PettingZooVecEnv(tag_env, n_copies=2), 60)
    c = rollout(PettingZooVecEnv(tag_env, n_copies=2, n_workers=2), 60)
    d = rollout(PettingZooVecEnv(tag_env, n_copies=2), 60, seed=1)
    assert a[2][24].all() and a[2][49].all() and a[2].sum() == 8  # both episode ends, done once per slot
    for x in (b, c):
        np.testing.assert_array_equal(a[0], x[0])
        np.testing.assert_array_equal(a[1], x[1])
    assert not np.array_equal(a[0], d[0])
    # copies get different seeds (seed + j): their first observations differ
    assert not np.array_equal(a[0][0, :2], a[0][0, 2:])


class ForgetfulSeeds(ParallelEnv):
    """Draws fresh entropy on ``reset(seed=None)`` (against gymnasium's convention); obs = a random draw."""

    metadata = {"name": "forgetful_v0"}
    possible_agents = ["a"]

    def __init__(self):
        self.agents, self.render_mode, self.rng = [], None, np.random.default_rng()

    @functools.cache
    def observation_space(self, agent):
        return gym.spaces.Box(0.0, 1.0, (1,), np.float32)

    @functools.cache
    def action_space(self, agent):
        return gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        self.rng = np.random.default_rng(seed)
        self.agents = ["a"]
        return {"a": self.rng.random(1).astype(np.float32)}, {"a": {}}

    def step(self, actions):
        self.agents = []  # one-step episodes
        return {"a": self.rng.random(1).astype(np.float32)}, {"a": 0.0}, {"a": True}, {"a": False}, {"a": {}}


@pytest.mark.parametrize("reseed", [False, True])
def test_reseed_episodes(reseed):
    runs = [rollout(PettingZooVecEnv(ForgetfulSeeds, n_copies=2, reseed_episodes=reseed), 5)[0] for _ in range(2)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])  # the first reset is always seeded
    assert np.array_equal(runs[0], runs[1]) == reseed  # later episodes reproduce only when reseeded


def test_seed_returns_per_slot_seeds():
    venv = make_vec_env(tag_env, n_copies=2, seed=7)
    assert venv.seed(7) == [7, 7, 8, 8]
    venv.close()


# ---- attributes and methods -----------------------------------------------------------------------
@pytest.mark.parametrize("n_workers", [0, 2])
def test_get_set_attr_env_method(n_workers):
    venv = PettingZooVecEnv(tag_env, n_copies=2, n_workers=n_workers)
    venv.seed(0)
    venv.reset()
    assert venv.get_attr("srpo_tau") == [1.0] * 4
    venv.set_attr("srpo_tau", 0.5, indices=[2])  # slot 2 lives in copy 1, with slot 3
    assert venv.get_attr("srpo_tau") == [1.0, 1.0, 0.5, 0.5]
    assert venv.get_attr("srpo_tau", indices=[3]) == [0.5]
    roles = venv.env_method("role", "adversary_0")
    assert len(roles) == 4 and roles[0] == roles[1] and set(roles) <= {"partner", "shadow"}
    assert venv.get_attr("max_cycles") == [25] * 4  # reached through the wrapper chain
    assert venv.has_attr("action_masks") and not venv.has_attr("no_such_attribute")
    with pytest.raises(AttributeError):
        venv.get_attr("no_such_attribute")
    assert venv.get_attr("srpo_tau", indices=[0]) == [1.0]  # an error leaves the workers in step
    assert venv.env_is_wrapped(gym.Wrapper) == [False] * 4
    venv.close()


# ---- episode ends ---------------------------------------------------------------------------------
def test_truncation_sets_time_limit_info():
    venv = PettingZooVecEnv(matrix_env, n_copies=2)
    venv.seed(0)
    venv.reset()
    for t in range(1, 4):
        obs, rew, done, infos = venv.step(np.zeros(4, dtype=np.int64))
        assert (rew == 1.0).all()
        assert done.all() == (t == 3)
    for info in infos:
        assert info["TimeLimit.truncated"] is True
        np.testing.assert_allclose(info["terminal_observation"], [1.0])
    np.testing.assert_allclose(obs, 0.0)  # first observation of the next episode
    venv.close()


def test_termination_is_not_truncation_aec():
    venv = PettingZooVecEnv(tictactoe_v3.env, n_copies=2)  # copy 0 learns player_1, copy 1 player_2
    assert venv.slot_seats == ["player_1", "player_2"]
    assert venv.observation_space == gym.spaces.Box(0, 1, (3, 3, 2), np.int8)  # mask stripped, unwrapped
    venv.seed(0)
    obs = venv.reset()
    assert obs[0].sum() == 0 and obs[1].sum() == 1  # player_2's opponent has already moved
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(40):
        masks = venv.action_masks()
        acts = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        obs, rew, done, infos = venv.step(acts)
        for i in np.flatnonzero(done):
            ends += 1
            assert infos[i]["TimeLimit.truncated"] is False
            assert infos[i]["terminal_observation"].shape == (3, 3, 2)
            assert rew[i] in (-1.0, 0.0, 1.0)
        assert (rew[~done] == 0).all()  # tictactoe pays only at the end
    assert ends >= 4
    venv.close()


def test_seat_finishing_early_reports_done_once():
    venv = PettingZooVecEnv(Staggered, n_copies=1)
    venv.seed(0)
    obs = venv.reset()
    np.testing.assert_array_equal(obs, [[0, 5], [0, 6]])
    # step 1: seat a terminates
    obs, rew, done, infos = venv.step(np.zeros(2, dtype=np.int64))
    assert done.tolist() == [True, False] and rew.tolist() == [1.0, 1.0]
    assert infos[0]["TimeLimit.truncated"] is False
    np.testing.assert_array_equal(infos[0]["terminal_observation"], [1, 5])
    np.testing.assert_array_equal(obs[0], [0, 0])
    # step 2: seat a idles (zero obs, zero reward, no second done)
    obs, rew, done, infos = venv.step(np.zeros(2, dtype=np.int64))
    assert done.tolist() == [False, False] and rew.tolist() == [0.0, 1.0] and infos[0]["inactive"]
    # step 3: seat b is truncated, the copy resets, seat a starts its next episode without a done
    obs, rew, done, infos = venv.step(np.zeros(2, dtype=np.int64))
    assert done.tolist() == [False, True] and rew.tolist() == [0.0, 1.0]
    assert infos[1]["TimeLimit.truncated"] is True
    np.testing.assert_array_equal(infos[1]["terminal_observation"], [3, 6])
    np.testing.assert_array_equal(obs, [[0, 5], [0, 6]])
    obs, rew, done, infos = venv.step(np.zeros(2, dtype=np.int64))
    assert done.tolist() == [True, False]
    venv.close()


# ---- SB3 end to end --------------------------------------------------------------------------------
@pytest.mark.parametrize("n_workers", [0, 2])
def test_ppo_learns_on_tag(n_workers):
    from stable_baselines3 import PPO

    venv = PettingZooVecEnv(tag_env, n_copies=2, n_workers=n_workers)  # 4 slots
    model = PPO("MlpPolicy", venv, seed=0, n_steps=32, batch_size=32, policy_kwargs=dict(net_arch=[8]), device="cpu")
    model.learn(64)
    assert model.num_timesteps == 128  # one rollout of 32 steps x 4 slots
    venv.close()


def _collect(venv_cls):
    from stable_baselines3 import PPO

    venv = venv_cls(matrix_env, n_copies=1)
    model = PPO(
        "MlpPolicy", venv, seed=0, n_steps=6, batch_size=6, gamma=0.9, policy_kwargs=dict(net_arch=[8]), device="cpu"
    )
    _, callback = model._setup_learn(6)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=6)
    with torch.no_grad():
        v_end = model.policy.predict_values(torch.ones(1, 1)).item()  # V(terminal obs [1.0])
    venv.close()
    return model.rollout_buffer.rewards.copy(), model.gamma * v_end


class NoTimeLimitInfo(PettingZooVecEnv):
    """What an adapter that merges truncation into done (e.g. SuperSuit's) shows SB3."""

    def step_wait(self):
        obs, rew, done, infos = super().step_wait()
        for info in infos:
            info.pop("TimeLimit.truncated", None)
        return obs, rew, done, infos


def test_ppo_bootstraps_at_truncation():
    rewards, bootstrap = _collect(PettingZooVecEnv)
    assert abs(bootstrap) > 1e-3  # otherwise the check below could not tell the difference
    # steps 3 and 6 end an episode by truncation: SB3 adds gamma * V(terminal_observation)
    np.testing.assert_allclose(rewards[[2, 5]], 1.0 + bootstrap, rtol=1e-5)
    np.testing.assert_allclose(rewards[[0, 1, 3, 4]], 1.0)
    # without the info the value target is cut at the time limit: the same check fails
    rewards_missing, _ = _collect(NoTimeLimitInfo)
    np.testing.assert_allclose(rewards_missing, 1.0)
    assert not np.allclose(rewards_missing[[2, 5]], 1.0 + bootstrap)


def test_maskable_ppo_on_aec_tictactoe_never_plays_illegal():
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback

    class CheckLegal(BaseCallback):
        steps = 0

        def _on_step(self):
            masks, actions = self.locals["action_masks"], self.locals["actions"]
            assert masks[np.arange(len(actions)), actions.reshape(-1)].all()
            CheckLegal.steps += 1
            return True

    venv = PettingZooVecEnv(lambda: srpo_wrap(tictactoe_v3.env(), tau=1.0), n_copies=2)
    assert isinstance(venv.observation_space, gym.spaces.Dict)
    assert set(venv.observation_space.spaces) == {"observation", "role"}
    EnvLogger.flush()
    model = MaskablePPO(
        "MultiInputPolicy", venv, seed=0, n_steps=32, batch_size=32, policy_kwargs=dict(net_arch=[8]), device="cpu"
    )
    model.learn(64, callback=CheckLegal())
    assert CheckLegal.steps == 32
    assert not [m for m in EnvLogger.mqueue if "Illegal" in str(m)]  # nobody (learner or snapshot) cheated
    venv.close()


# ---- AEC seats and snapshots ----------------------------------------------------------------------
@pytest.mark.parametrize("seat", ["player_1", "player_2"])
@pytest.mark.parametrize("srpo", [False, True])
def test_single_seat_passes_parallel_api_test(seat, srpo):
    aec = srpo_wrap(tictactoe_v3.env(), tau=1.0) if srpo else tictactoe_v3.env()
    others = RandomPolicy(aec.observation_space("player_1"), aec.action_space("player_1"))
    parallel_api_test(single_seat(aec, seat, others), num_cycles=50)


def test_single_seat_rewards_follow_last_semantics():
    game = TurnGame()
    others = RandomPolicy(game.observation_space("p0"), game.action_space("p0"))
    for seat, first_obs, want in (("p0", 0, [11.0, 11.0]), ("p1", 1, [21.0, 1.0])):
        env = single_seat(TurnGame(), seat, others)
        obs, _ = env.reset(seed=0)
        assert obs[seat][0] == first_obs
        got, ended = [], []
        while env.agents:
            _, rew, term, _, _ = env.step({seat: 0})
            got.append(rew[seat])
            ended.append(term[seat])
        # own move +1, each reply +10; p1's 10 from before its first move comes with its first step,
        # and its last move ends the game; both seats' step rewards sum to the episode return 22
        assert got == want and ended == [False, True]
    parallel_api_test(single_seat(TurnGame(), "p1", others), num_cycles=20)


def test_aec_in_process_and_workers_identical():
    a = rollout(PettingZooVecEnv(tictactoe_v3.env, n_copies=4), 30)
    b = rollout(PettingZooVecEnv(tictactoe_v3.env, n_copies=4, n_workers=2), 30)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


class Recorder(Policy):
    """Plays the first legal action and records what it was shown."""

    def __init__(self, observation_space, action_space):
        super().__init__(observation_space, action_space)
        self.seen = []

    def act(self, obs, *, rng, mask=None, state=None):
        self.seen.append((obs, mask))
        return np.asarray(mask, dtype=bool).argmax(axis=1), state


def test_snapshot_sees_what_the_learner_sees():
    venv = PettingZooVecEnv(tictactoe_v3.env, n_copies=2, snapshot_name="test-recorder")
    rec = Recorder(venv.observation_space, venv.action_space)
    try:
        venv.share_snapshot("test-recorder", rec)
        venv.seed(0)
        obs = venv.reset()
        assert obs[1][0, 0, 1] == 1  # player_1 (the snapshot) took the first legal cell
        seen, mask = rec.seen[0]
        assert seen.shape == (1, 3, 3, 2) and mask.shape == (1, 9)
    finally:
        venv.close()


def test_stale_snapshot_with_other_spaces_fails_loudly():
    venv = PettingZooVecEnv(tictactoe_v3.env, n_copies=2)
    box1 = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    venv.share_snapshot("learner", ConstantPolicy(box1, gym.spaces.Discrete(2), action=1))  # e.g. an IPD run's
    venv.seed(0)
    with pytest.raises(SpaceMismatchError, match="snapshot shared as 'learner'"):
        venv.reset()
    venv.close()


def test_share_snapshot_reaches_workers():
    venv = PettingZooVecEnv(tictactoe_v3.env, n_copies=2, n_workers=1, snapshot_name="test-center")
    try:
        venv.share_snapshot("test-center", ConstantPolicy(venv.observation_space, venv.action_space, action=4))
        for seed in (0, 1):
            venv.seed(seed)
            obs = venv.reset()
            assert obs[1][1, 1, 1] == 1 and obs[1].sum() == 1  # the worker's snapshot opened in the centre
    finally:
        venv.close()
