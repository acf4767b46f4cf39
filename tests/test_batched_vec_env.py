"""The batched VecEnv behaves as PettingZooVecEnv over srpo_wrap(<the PettingZoo twin>), step for step.

The shadow draws are counter based on the batched path and a numpy stream per copy on the per-copy
path: they cannot share draws, so the traces are compared with the per-copy reference taking the
batched path's shadows (everything else: env randomness, seeds, obs, rewards, dones, infos must
agree exactly), and the draws are tested on their own (distribution, per-copy independence, seeds).
"""

from __future__ import annotations

import warnings
from collections import deque

import gymnasium as gym
import numpy as np
import pytest
import torch
from pettingzoo import ParallelEnv
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from rqe_wrappers.batched import BatchedVecEnv, batched_vec_env
from rqe_wrappers.batched.shadows import BatchedShadows
from rqe_wrappers.batched.vec_env import NO_INFO
from rqe_wrappers.core.checks import all_finite
from rqe_wrappers.core.policy import FunctionPolicy, RandomPolicy
from rqe_wrappers.envs.batched import BatchedBase, BatchStep, batch_actions
from rqe_wrappers.envs.cooking import BatchedCooking, CookingEnv
from rqe_wrappers.envs.ipd import BatchedIPD, IPDEnv
from rqe_wrappers.envs.matrix import BatchedMatrixGame, MatrixGameEnv, coordination_game, coordination_payoffs
from rqe_wrappers.errors import (
    ActionError,
    ConfigError,
    MissingCallbackWarning,
    NonFiniteError,
    SeatError,
    VecEnvStateError,
)
from rqe_wrappers.sb3 import PettingZooVecEnv, SRPOCallback
from rqe_wrappers.sb3.monitor import RoleVecMonitor
from rqe_wrappers.srpo.shadow import srpo_wrap

torch.set_num_threads(1)


class ThreeSeats(BatchedBase):
    """Three seats, actions 0/1, ``rounds`` steps then truncation; a step where all play 1 terminates the
    episode (so copies end at different times). Reward: 1 if anyone plays 1, minus 0.4 for playing it;
    observation: ``[t / rounds, mean of the others' last actions]``."""

    possible_agents = ["p_0", "p_1", "p_2"]

    def __init__(self, n_copies: int = 1, rounds: int = 4):
        box = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
        super().__init__(n_copies, {a: (box, gym.spaces.Discrete(2)) for a in self.possible_agents})
        self.rounds = rounds
        self.t = np.zeros(self.n_copies, np.int64)
        self.last = np.zeros((self.n_copies, 3))

    def reset(self, seeds=None, copies=None):
        idx, _ = self._reset_copies(seeds, copies)
        self.t[idx] = 0
        self.last[idx] = 0
        return self.observe()

    def observe(self):
        out = np.empty((self.n_copies, 3, 2), np.float32)
        out[:, :, 0] = (self.t / self.rounds)[:, None]
        out[:, :, 1] = (self.last.sum(axis=1, keepdims=True) - self.last) / 2
        return out

    def step(self, actions):
        acts = batch_actions(actions, self.n_copies, (2, 2, 2))
        self.t += 1
        self.last = acts.astype(np.float64)
        team = (acts.max(axis=1) > 0).astype(np.float64)
        return BatchStep(
            obs=self.observe(),
            rewards=team[:, None] - 0.4 * acts,
            terminated=acts.min(axis=1) > 0,
            truncated=self.t >= self.rounds,
            costs=None,
        )


class OneCopy(ParallelEnv):
    """A batched env with one copy as a PettingZoo parallel env (as ``CookingEnv`` is ``BatchedCooking``)."""

    metadata = {"name": "one_copy_v0", "render_modes": []}

    def __init__(self, core):
        self.core = core
        self.possible_agents = list(core.possible_agents)
        self.agents: list[str] = []

    def observation_space(self, agent):
        return self.core.observation_space(agent)

    def action_space(self, agent):
        return self.core.action_space(agent)

    def reset(self, seed=None, options=None):
        obs = self.core.reset(seeds=[seed])
        self.agents = list(self.possible_agents)
        return {a: obs[0, i] for i, a in enumerate(self.agents)}, {a: {} for a in self.agents}

    def step(self, actions):
        out = self.core.step(np.array([[int(actions[a]) for a in self.possible_agents]]))
        agents = self.agents
        done = bool(out.terminated[0] or out.truncated[0])
        res = (
            {a: out.obs[0, i] for i, a in enumerate(agents)},
            {a: float(out.rewards[0, i]) for i, a in enumerate(agents)},
            {a: bool(out.terminated[0]) for a in agents},
            {a: bool(out.truncated[0]) for a in agents},
            {a: {} for a in agents},
        )
        if done:
            self.agents = []
        return res


class FollowedReference:
    """``PettingZooVecEnv`` over ``srpo_wrap(make_env(), ...)`` whose copy ``k`` takes, at each reset, the
    shadows the batched VecEnv drew for its copy ``k`` (queued by :meth:`follow`)."""

    def __init__(self, make_env, n_copies: int, seed: int, **srpo):
        self.queues: list[deque] = [deque() for _ in range(n_copies)]
        built = iter(range(n_copies))

        def env_fn():
            env = srpo_wrap(make_env(), **srpo)
            queue = self.queues[next(built)]

            def choose(seed, env=env, queue=queue):
                env.shadows = set(queue.popleft())

            env._choose_shadows = choose
            return env

        self.venv = PettingZooVecEnv(env_fn, n_copies)
        self.venv.seed(seed)

    def follow(self, batched, copies) -> None:
        shadows = batched.get_attr("shadows")
        learn = len(batched.learning_seats)
        for c in copies:
            self.queues[c].append(shadows[c * learn])


def same_info(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k, v in a.items():
        w = b[k]
        if isinstance(v, np.ndarray) or isinstance(w, np.ndarray):
            if not (np.array_equal(v, w) and np.asarray(v).dtype == np.asarray(w).dtype):
                return False
        elif v != w:
            return False
    return True


# ---- the batched twins of the PettingZoo envs, and a 3-seat game with a background seat ----
TWINS = {
    "coordination": (
        lambda n: BatchedMatrixGame(coordination_payoffs(0.5), n, rounds=3, time_limit=False),
        lambda: coordination_game(0.5, rounds=3),
    ),
    "matrix-truncated": (
        lambda n: BatchedMatrixGame(coordination_payoffs(0.3), n, rounds=2),
        lambda: MatrixGameEnv(coordination_payoffs(0.3), rounds=2),
    ),
    "ipd": (lambda n: BatchedIPD(n, rounds=3), lambda: IPDEnv(rounds=3)),
    "cooking": (lambda n: BatchedCooking(n, max_steps=7), lambda: CookingEnv(max_steps=7)),
}


def compare_traces(batched: BatchedVecEnv, ref: FollowedReference, steps: int, seed: int) -> tuple[int, int]:
    """Step both with one seeded random-action trace; assert every output agrees.

    Returns the episodes seen and the steps where some copies but not all ended."""
    obs_b = batched.reset()
    ref.follow(batched, range(batched.n_copies))
    obs_r = ref.venv.reset()
    np.testing.assert_array_equal(obs_b, obs_r)
    assert obs_b.dtype == obs_r.dtype
    assert all(same_info(a, b) for a, b in zip(batched.reset_infos, ref.venv.reset_infos, strict=True))
    rng = np.random.default_rng(seed)
    episodes = partial = 0
    n_actions = batched.action_space.n
    learn = len(batched.learning_seats)
    for _ in range(steps):
        actions = rng.integers(0, n_actions, batched.num_envs)
        obs_b, rew_b, done_b, info_b = batched.step(actions)
        ref.follow(batched, sorted({i // learn for i in np.flatnonzero(done_b).tolist()}))
        obs_r, rew_r, done_r, info_r = ref.venv.step(actions)
        np.testing.assert_array_equal(obs_b, obs_r)
        np.testing.assert_array_equal(rew_b, rew_r)
        assert rew_b.dtype == rew_r.dtype
        np.testing.assert_array_equal(done_b, done_r)
        for a, b in zip(info_b, info_r, strict=True):
            assert same_info(a, b), (a, b)
        assert all(same_info(a, b) for a, b in zip(batched.reset_infos, ref.venv.reset_infos, strict=True))
        episodes += int(done_b.sum())
        partial += int(0 < done_b.sum() < len(done_b))
    return episodes, partial


@pytest.mark.parametrize("name", sorted(TWINS))
@pytest.mark.parametrize(("tau", "seat_id"), [(0.0, False), (1.5, True)])
def test_same_trace_as_the_per_copy_path(name, tau, seat_id):
    make_batched, make_pz = TWINS[name]
    n, seed = 3, 11
    batched = BatchedVecEnv(make_batched(n), tau, seat_id=seat_id)
    batched.seed(seed)
    ref = FollowedReference(make_pz, n, seed, tau=tau, seat_id=seat_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingCallbackWarning)
        episodes, _ = compare_traces(batched, ref, steps=20, seed=seed)
    assert episodes >= 2 * n * 2  # several episode ends (auto-reset, terminal observations) were compared
    if tau > 0:
        assert batched.get_attr("srpo_tau") == [tau] * batched.num_envs


def follow_policy(obs):
    """Deterministic: play 1 when the others mostly played 0."""
    return np.stack([obs[:, 1] < 0.5, obs[:, 1] >= 0.5], axis=1).astype(np.float64)


def test_background_seat_same_trace_and_one_act_call_per_step():
    space = ThreeSeats().observation_space("p_2")
    calls = []

    class Counted(FunctionPolicy):
        def act(self, obs, *, rng, mask=None, state=None):
            calls.append(len(obs))
            return super().act(obs, rng=rng, mask=mask, state=state)

    partner = Counted(space, gym.spaces.Discrete(2), follow_policy)
    n, seed = 4, 3
    batched = BatchedVecEnv(ThreeSeats(n), 2.0, background={"p_2": partner})
    batched.seed(seed)
    assert batched.learning_seats == ["p_0", "p_1"] and batched.num_envs == 2 * n
    ref = FollowedReference(lambda: OneCopy(ThreeSeats(1)), n, seed, tau=2.0, fixed={"p_2": partner})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingCallbackWarning)
        episodes, partial = compare_traces(batched, ref, steps=9, seed=seed)
    assert episodes > 0 and partial > 0  # copies ended at different times (terminated and truncated)
    batched_calls = calls[::5]  # per step: one batched call, then the reference's four per-copy calls
    assert batched_calls == [n] * 9 and len(calls) == 9 * (1 + n)


def test_default_fixed_seat_plays_random_reproducibly():
    def run():
        venv = BatchedVecEnv(ThreeSeats(5), 0.0, teams={"a": ["p_0", "p_1"], "b": ["p_2"]}, learn="a")
        assert isinstance(venv.default_fixed["p_2"], RandomPolicy)
        venv.seed(7)
        venv.reset()
        out = [venv.step(np.ones(10, np.int64)) for _ in range(6)]
        return np.stack([o[1] for o in out]), [o[3][0]["background_rewards"]["p_2"] for o in out]

    (r1, bg1), (r2, bg2) = run(), run()
    np.testing.assert_array_equal(r1, r2)
    assert bg1 == bg2 and set(bg1) == {0.6, 1.0}  # the random seat played 0 (1.0) and 1 (0.6) at times


# ---- the shadow draws ----
def test_shadow_draws_are_uniform_per_team_and_independent_of_the_batch():
    spaces = [gym.spaces.Box(0, 1, (1,), np.float32)] * 3
    n = 6000
    draws = BatchedShadows(spaces, [[0, 1, 2]], tau=1.0, n_shadows=1, n_copies=n, seat_id=False)
    draws.draw(np.arange(n), list(range(100, 100 + n)))
    assert (draws.mask.sum(axis=1) == 1).all()
    freq = draws.mask.mean(axis=0)
    assert np.all(np.abs(freq - 1 / 3) < 0.025), freq  # 4 standard errors
    first = draws.mask.copy()
    draws.draw(np.arange(n), [None] * n)  # each copy's next episode
    assert 0.6 < (draws.mask != first).any(axis=1).mean() < 0.73  # a fresh draw: 2/3 change seat
    one = BatchedShadows(spaces, [[0, 1, 2]], tau=1.0, n_shadows=1, n_copies=1, seat_id=False)
    for k in (0, 17, 4321):
        one.draw(np.arange(1), [100 + k])
        np.testing.assert_array_equal(one.mask[0], first[k])  # copy k depends only on its own seed
    two = BatchedShadows(spaces, [[0, 1, 2]], tau=1.0, n_shadows=2, n_copies=50, seat_id=False)
    two.draw(np.arange(50), list(range(50)))
    assert (two.mask.sum(axis=1) == 2).all()
    none = BatchedShadows(spaces, [[0, 1, 2]], tau=0.0, n_shadows=1, n_copies=50, seat_id=False)
    none.draw(np.arange(50), list(range(50)))
    assert not none.mask.any()  # tau = 0: plain IPPO


def test_shadow_reward_is_minus_the_partners_mean_and_features_follow_srpo_layout():
    venv = BatchedVecEnv(BatchedIPD(4), 1.0, seat_id=True)
    venv.seed(0)
    obs = venv.reset().reshape(4, 2, -1)
    shadow = venv.shadow_logic.mask
    assert (shadow.sum(axis=1) == 1).all()
    # [history..., seat one-hot, partner, shadow], exactly as srpo_wrap lays it out
    np.testing.assert_array_equal(obs[:, :, -4:-2], np.broadcast_to(np.eye(2), (4, 2, 2)))
    np.testing.assert_array_equal(obs[:, :, -1], shadow)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingCallbackWarning)
        _, rew, _, infos = venv.step(np.array([0, 1] * 4))  # player_0 cooperates, player_1 defects
    raw = np.array([[0.0, 5.0]] * 4)
    expected = np.where(shadow, -raw[:, ::-1], raw)
    np.testing.assert_array_equal(rew.reshape(4, 2), expected)
    assert infos[0]["raw_rewards"] == {"player_0": 0.0, "player_1": 5.0}
    assert [i["role"] for i in infos] == ["shadow" if s else "partner" for s in shadow.reshape(-1)]


# ---- SB3: seeded runs, monitor, SRPOCallback unchanged ----
class Probe(BaseCallback):
    """Reads what SRPOCallback logged at each rollout end (it runs just before in the CallbackList)."""

    def __init__(self):
        super().__init__()
        self.logged: list[dict] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.logged.append(dict(self.logger.name_to_value))


def short_ppo(tau: float, seed: int, **venv_kwargs):
    venv = batched_vec_env(BatchedCooking(8, max_steps=16), tau, seed=seed, **venv_kwargs)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=16,
        batch_size=128,
        n_epochs=2,
        normalize_advantage=False,
        policy_kwargs=dict(net_arch=[8]),
        seed=seed,
    )
    probe = Probe()
    model.learn(512, callback=CallbackList([SRPOCallback(), probe]))
    return model, probe, venv


def test_srpo_callback_runs_unchanged_and_seeded_runs_reproduce():
    model, probe, venv = short_ppo(1.0, seed=4)
    assert isinstance(venv, RoleVecMonitor) and venv.venv.srpo_callback_attached
    assert len(probe.logged) == 2
    for logged in probe.logged:
        assert np.isfinite(logged["srpo/kl"]) and logged["srpo/shadow_fraction"] == 0.5
    assert "srpo/partner_return" in probe.logged[1] and len(model.ep_info_buffer) > 0  # the monitor's episodes
    again, _, _ = short_ppo(1.0, seed=4)
    for p, q in zip(model.policy.parameters(), again.policy.parameters(), strict=True):
        assert torch.equal(p, q)
    _, probe0, _ = short_ppo(0.0, seed=4)
    assert "srpo/kl" not in probe0.logged[0]  # tau = 0: IPPO, nothing shaped


def test_seeded_traces_reproduce_and_seeds_matter():
    def trace(seed):
        venv = BatchedVecEnv(BatchedCooking(4, max_steps=5), 1.0)
        venv.seed(seed)
        out = [venv.reset()]
        rng = np.random.default_rng(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MissingCallbackWarning)
            for _ in range(12):
                out.append(venv.step(rng.integers(0, 5, 8))[0])
        return np.stack(out)

    np.testing.assert_array_equal(trace(1), trace(1))
    assert not np.array_equal(trace(1), trace(2))


# ---- errors ----
def test_typed_errors_for_bad_input():
    with pytest.raises(ConfigError, match="batched env"):
        BatchedVecEnv(CookingEnv())
    with pytest.raises(ConfigError, match="tau"):
        BatchedVecEnv(BatchedIPD(2), -1.0)
    with pytest.raises(SeatError, match="do not exist"):
        BatchedVecEnv(ThreeSeats(2), background={"nobody": RandomPolicy(*spaces_of(ThreeSeats(), "p_0"))})
    with pytest.raises(SeatError, match="two learning seats"):  # at tau = 0 one seat is allowed (a best response)
        BatchedVecEnv(BatchedIPD(2), 1.0, background={"player_1": RandomPolicy(*spaces_of(BatchedIPD(), "player_1"))})

    class Recurrent(RandomPolicy):
        def initial_state(self, batch_size):
            return np.zeros(batch_size)

    with pytest.raises(ConfigError, match="recurrent"):
        BatchedVecEnv(ThreeSeats(2), background={"p_2": Recurrent(*spaces_of(ThreeSeats(), "p_2"))})
    with pytest.raises(ConfigError, match="Policy"):
        BatchedVecEnv(ThreeSeats(2), background={"p_2": "tit-for-tat"})  # type: ignore[dict-item]
    venv = BatchedVecEnv(BatchedIPD(2))
    with pytest.raises(VecEnvStateError, match="reset"):
        venv.step(np.zeros(4, np.int64))
    venv.reset()
    with pytest.raises(ActionError, match="shape"):
        venv.step(np.zeros(3, np.int64))
    with pytest.raises(ActionError, match="outside"):
        venv.step(np.array([0, 0, 2, 0]))
    with pytest.raises(ConfigError, match="seed"):
        venv.seed(-1)


def test_non_finite_reward_names_copy_and_seat():
    class NaNGame(ThreeSeats):
        def step(self, actions):
            out = super().step(actions)
            out.rewards[1, 0] = np.nan
            return out

    venv = BatchedVecEnv(NaNGame(2), background={"p_2": RandomPolicy(*spaces_of(ThreeSeats(), "p_2"))})
    venv.reset()
    with pytest.raises(NonFiniteError, match=r"copy 1, seat 'p_0'"):
        venv.step(np.zeros(4, np.int64))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_observation_names_copy_and_seat(bad):
    class BadObs(ThreeSeats):
        def step(self, actions):
            out = super().step(actions)
            out.obs[2, 1, 1] = bad
            return out

    venv = BatchedVecEnv(BadObs(3), background={"p_2": RandomPolicy(*spaces_of(ThreeSeats(), "p_2"))})
    venv.reset()
    with pytest.raises(NonFiniteError, match=r"observation is not finite \(copy 2, seat 'p_1', at a step\)"):
        venv.step(np.zeros(6, np.int64))


def test_all_finite_is_exact_where_the_sum_overflows():
    huge = np.full(12, 3e38, np.float32)
    assert np.isinf(np.add.reduce(huge))  # the one-reduction test alone would call these non-finite
    assert all_finite(huge) and all_finite(np.zeros(0, np.float32))
    for bad in (np.nan, np.inf, -np.inf):
        x = np.ones((5, 3))
        x[3, 1] = bad
        assert not all_finite(x)
    both = np.array([np.inf, -np.inf, 1.0])  # their sum is NaN, not an infinity
    assert not all_finite(both)


def spaces_of(env, seat):
    return env.observation_space(seat), env.action_space(seat)


def test_lean_infos_drop_only_the_reward_dicts_and_keep_them_as_arrays():
    def make(reward_infos):
        venv = BatchedVecEnv(
            ThreeSeats(3),
            1.0,
            reward_infos=reward_infos,
            background={"p_2": FunctionPolicy(*spaces_of(ThreeSeats(), "p_2"), follow_policy)},
        )
        venv.seed(5)
        venv.reset()
        return venv

    full, lean = make(True), make(False)
    assert lean.reset_infos == [{k: v for k, v in i.items() if k == "role"} for i in full.reset_infos]
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingCallbackWarning)
        for _ in range(8):
            actions = rng.integers(0, 2, 6)
            obs_f, rew_f, done_f, info_f = full.step(actions)
            obs_l, rew_l, done_l, info_l = lean.step(actions)
            np.testing.assert_array_equal(obs_f, obs_l)
            np.testing.assert_array_equal(rew_f, rew_l)
            np.testing.assert_array_equal(done_f, done_l)
            for k, (f, le) in enumerate(zip(info_f, info_l, strict=True)):
                raw, bg = f.pop("raw_rewards"), f.pop("background_rewards")
                assert same_info(f, le)
                assert list(raw.values()) == lean.last_raw_rewards[k // 2].tolist()
                assert bg == {"p_2": float(lean.last_background_rewards[k // 2, 0])}


def test_background_table_gives_copies_their_own_partners_one_act_call_each():
    from rqe_wrappers.batched.background import BatchedBackground
    from rqe_wrappers.core.policy import ConstantPolicy

    obs_space, act_space = spaces_of(ThreeSeats(), "p_2")
    zero, one = ConstantPolicy(obs_space, act_space, 0), ConstantPolicy(obs_space, act_space, 1)
    bg = BatchedBackground(["p_0", "p_1", "p_2"], {"p_2": zero}, n_copies=4)
    assert bg.table.tolist() == [[-1, -1, 0]] * 4 and bg.columns.tolist() == [2]
    bg.policies.append(one)  # a second partner, e.g. from a population
    bg.assign(np.array([1, 3]), np.array([[-1, -1, 1], [-1, -1, 1]]))
    actions = np.full((4, 3), 9)
    bg.fill(actions, np.zeros((4, 3, 2), np.float32))
    assert actions[:, 2].tolist() == [0, 1, 0, 1] and (actions[:, :2] == 9).all()
    with pytest.raises(ConfigError, match="learning seats"):
        bg.assign(np.array([0]), np.array([[0, -1, 1]]))


def test_a_narrower_background_seat_sees_its_own_observation_width():
    """Tag's runner sees 12 numbers, the chasers 14: the runner's row is zero-padded in the batch and cut back."""
    from rqe_wrappers.envs.tag_batched import BatchedTag

    env = BatchedTag(4)
    seen = []

    def runner(obs):
        seen.append(np.asarray(obs).shape)
        return np.full((len(obs), 5), 0.2)

    policy = FunctionPolicy(env.observation_space("agent_0"), env.action_space("agent_0"), runner, name="runner")
    venv = batched_vec_env(env, tau=1.0, seed=0, background={"agent_0": policy})
    venv.reset()
    for _ in range(3):
        venv.step(np.zeros(venv.num_envs, dtype=np.int64))
    assert seen and set(seen) == {(4, 12)}


@pytest.mark.parametrize("reward_infos", [True, False])
def test_step_infos_off_fills_only_finished_slots_with_what_every_step_would_hold(reward_infos):
    def make(step_infos):
        venv = BatchedVecEnv(
            BatchedCooking(4, max_steps=5),
            1.0,
            reward_infos=reward_infos,
            step_infos=step_infos,
            background=None,
        )
        venv.seed(2)
        venv.reset()
        return venv

    full, lean = make(True), make(False)
    assert all(same_info(a, b) for a, b in zip(full.reset_infos, lean.reset_infos, strict=True))
    rng = np.random.default_rng(1)
    ended = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingCallbackWarning)
        for _ in range(12):
            actions = rng.integers(0, full.action_space.n, full.num_envs)
            roles = lean.roles()  # before the step: the roles the step's infos report
            obs_f, rew_f, done_f, info_f = full.step(actions)
            obs_l, rew_l, done_l, info_l = lean.step(actions)
            np.testing.assert_array_equal(obs_f, obs_l)
            np.testing.assert_array_equal(rew_f, rew_l)
            np.testing.assert_array_equal(done_f, done_l)
            assert lean.last_costs is not None
            assert lean.last_costs.tolist() == [i["cost"] for i in info_f]
            assert roles == [i["role"] for i in info_f]
            for f, le, d in zip(info_f, info_l, done_f, strict=True):
                if d:  # a finished slot: its own dict, as the full step's
                    assert same_info(f, le) and "terminal_observation" in le
                    le["mine"] = 1  # and writable
                else:
                    assert le is NO_INFO and len(le) == 0
                    with pytest.raises(TypeError):
                        le["x"] = 1  # type: ignore[index]
            ended += int(done_f.sum())
    assert ended == 2 * full.num_envs  # every slot finished twice (5-step episodes, 12 steps)


def test_step_infos_off_learns_the_same_srpo_and_aht():
    from rqe_wrappers.aht.config import AHTConfig
    from rqe_wrappers.sb3 import AHTCallback
    from rqe_wrappers.zoo import load_population

    def srpo(step_infos):
        model, probe, _ = short_ppo(1.0, seed=3, step_infos=step_infos)
        return model, probe

    def aht(step_infos):
        venv = batched_vec_env(
            BatchedIPD(32, rounds=3),
            population=load_population("ipd/train"),
            aht=AHTConfig(prior="maximin-utility"),
            seed=3,
            step_infos=step_infos,
        )
        model = PPO("MlpPolicy", venv, n_steps=12, batch_size=128, n_epochs=2, policy_kwargs=dict(net_arch=[8]), seed=3)
        cb = AHTCallback()
        model.learn(768, callback=cb)
        return model, venv.get_attr("beta")[0]

    (m_full, p_full), (m_lean, p_lean) = srpo(True), srpo(False)
    for p, q in zip(m_full.policy.parameters(), m_lean.policy.parameters(), strict=True):
        assert torch.equal(p, q)
    assert p_full.logged == p_lean.logged and "srpo/partner_return" in p_lean.logged[1]
    assert [e["r"] for e in m_full.ep_info_buffer] == [e["r"] for e in m_lean.ep_info_buffer]
    (a_full, beta_full), (a_lean, beta_lean) = aht(True), aht(False)
    np.testing.assert_array_equal(beta_full, beta_lean)
    assert not np.allclose(beta_lean, beta_lean[0])  # nature's prior moved: the callback saw the episodes
    for p, q in zip(a_full.policy.parameters(), a_lean.policy.parameters(), strict=True):
        assert torch.equal(p, q)
