"""BatchedTag against mpe2's simple_tag (via tag_env) step for step on seeded traces, its reset
distributions, per-copy seeding, and its typed errors."""

import numpy as np
import pytest

from rqe_wrappers import ConfigError, SeatError
from rqe_wrappers.envs.tag import CHASERS, RUNNER, seat_spaces, tag_env
from rqe_wrappers.envs.tag_batched import (
    AGENT_ACCEL,
    AGENT_MAX_SPEED,
    AGENT_SIZE,
    CONTACT_FORCE,
    CONTACT_MARGIN,
    DAMPING,
    DT,
    LANDMARK_SIZE,
    OBS_SIZES,
    BatchedTag,
    TagState,
    mpe2_state,
)

#: Observations and rewards must agree with mpe2 to this (absolute); on this machine they agree exactly.
TOL = 1e-5


def _stack(states):
    return TagState(*[np.concatenate([getattr(s, f) for s in states]) for f in TagState._fields])


def _actions(rng, pos, runner_right):
    """Random actions, biased so that the traces see collisions and the far-out penalty: in copies
    ``runner_right`` the runner mostly moves +x (it leaves the square), in the others the chasers
    mostly move towards the runner along the larger component (as ``tag/greedy-chaser``)."""
    n = len(pos)
    acts = rng.integers(0, 5, (n, 3))
    push = runner_right & (rng.random(n) < 0.8)
    acts[push, 2] = 2
    rel = pos[:, 2:3] - pos[:, :2]  # (n, 2 chasers, 2)
    along_x = np.abs(rel[..., 0]) >= np.abs(rel[..., 1])
    greedy = np.where(along_x, np.where(rel[..., 0] > 0, 2, 1), np.where(rel[..., 1] > 0, 4, 3))
    chase = ~runner_right[:, None] & (rng.random((n, 2)) < 0.8)
    acts[:, :2] = np.where(chase, greedy, acts[:, :2])
    return acts


@pytest.mark.parametrize(("max_cycles", "scale"), [(100, 0.1), (30, 1.0)])
def test_batched_tag_steps_as_mpe2_from_mpe2_state(max_cycles, scale):
    seeds = [0, 1, 2, 3, 7, 11, 42, 100]
    envs = [tag_env(max_cycles=max_cycles, reward_scale=scale) for _ in seeds]
    core = BatchedTag(len(seeds), max_cycles=max_cycles, reward_scale=scale)
    core.reset(seeds=0)
    first = [env.reset(seed=s)[0] for env, s in zip(envs, seeds, strict=True)]
    obs = core.set_state(_stack([mpe2_state(env) for env in envs]))
    agents = core.possible_agents
    for k in range(len(seeds)):
        for i, a in enumerate(agents):
            np.testing.assert_allclose(core.seat_obs(obs, i)[k], first[k][a], atol=TOL, rtol=0)
    rng = np.random.default_rng(5)
    runner_right = np.arange(len(seeds)) % 2 == 1
    seen = {"chaser": 0.0, "far": 0, "capped": 0}
    for step in range(max_cycles):
        acts = _actions(rng, core.agent_pos, runner_right)
        out = core.step(acts)
        assert out.obs.dtype == np.float32 and out.costs is None
        for k, env in enumerate(envs):
            o, r, te, tr, _ = env.step({a: int(acts[k, i]) for i, a in enumerate(agents)})
            for i, a in enumerate(agents):
                np.testing.assert_allclose(core.seat_obs(out.obs, i)[k], o[a], atol=TOL, rtol=0)
                assert out.obs[k, i, OBS_SIZES[i] :].tolist() == [0.0] * (14 - OBS_SIZES[i])
                assert out.rewards[k, i] == pytest.approx(r[a], abs=TOL)
                assert (bool(out.terminated[k]), bool(out.truncated[k])) == (te[a], tr[a])
        assert out.truncated.all() == (step == max_cycles - 1)
        seen["chaser"] += out.rewards[:, 0].sum()
        seen["far"] += int((np.abs(core.agent_pos[:, 2]) > 1.0).any(axis=1).sum())
        speed = np.linalg.norm(core.agent_vel, axis=2)
        seen["capped"] += int(np.isclose(speed, AGENT_MAX_SPEED).sum())
    assert all(not env.agents for env in envs)
    # the traces went through collisions, the runner's far-out penalty and the speed cap
    assert seen["chaser"] > 0 and seen["far"] > 0 and seen["capped"] > 0, seen


def test_constants_are_mpe2s():
    world = tag_env().unwrapped.world
    assert (world.dt, world.damping, world.contact_force, world.contact_margin) == (
        DT,
        DAMPING,
        CONTACT_FORCE,
        CONTACT_MARGIN,
    )
    assert [a.size for a in world.agents] == AGENT_SIZE.tolist()
    assert [a.accel for a in world.agents] == AGENT_ACCEL.tolist()
    assert [a.max_speed for a in world.agents] == AGENT_MAX_SPEED.tolist()
    assert [a.mass for a in world.agents] == [1.0] * 3 and all(a.u_noise is None for a in world.agents)
    assert [(lm.size, lm.movable, lm.collide) for lm in world.landmarks] == [(LANDMARK_SIZE, False, True)] * 2


def test_seats_and_spaces_are_tag_envs():
    env, core = tag_env(), BatchedTag(2)
    assert core.possible_agents == env.possible_agents == [*CHASERS, RUNNER]
    for i, a in enumerate(core.possible_agents):
        assert (core.observation_space(a), core.action_space(a)) == seat_spaces(a)
        assert core.observation_space(a).shape == (OBS_SIZES[i],)
    assert core.max_cycles == env.unwrapped.max_cycles == 100 and core.reward_scale == 0.1


def test_reset_draws_mpe2s_distributions():
    core = BatchedTag(4096)
    obs = core.reset(seeds=0)
    pos, lm = core.agent_pos, core.landmark_pos
    assert (core.agent_vel == 0).all() and (core.t == 0).all()
    assert np.abs(pos).max() <= 1.0 and np.abs(pos).max() > 0.999
    assert np.abs(lm).max() <= 0.9 and np.abs(lm).max() > 0.899
    for x, half in ((pos, 1.0), (lm, 0.9)):  # uniform on [-half, half]: mean 0, std half / sqrt(3)
        assert np.abs(x.mean(axis=0)).max() < 0.05 * half
        np.testing.assert_allclose(x.std(axis=0), half / np.sqrt(3), rtol=0.04)
    # mpe2 draws from the same ranges
    env = tag_env()
    states = []
    for s in range(64):
        env.reset(seed=s)
        states.append(mpe2_state(env))
    mpe = _stack(states)
    assert np.abs(mpe.agent_pos).max() <= 1.0 and np.abs(mpe.landmark_pos).max() <= 0.9
    assert (mpe.agent_vel == 0).all()
    # observations at reset are the state's
    np.testing.assert_allclose(obs[:, :, 2:4], pos.astype(np.float32))
    np.testing.assert_allclose(obs[:, 0, 10:12], (pos[:, 2] - pos[:, 0]).astype(np.float32), atol=1e-6)


def _episode(core, seeds, acts):
    """Observations and rewards of ``reset(seeds)``, the steps ``acts``, and an unseeded ``reset()`` after step 10."""
    trace = [core.reset(seeds=seeds)]
    for t, a in enumerate(acts):
        out = core.step(a)
        trace += [out.obs, out.rewards]
        if t == 9:
            trace.append(core.reset())
    return trace


def test_copy_k_plays_as_a_one_copy_batch_with_its_seed():
    seeds = [5, 9, 11]
    acts = np.random.default_rng(3).integers(0, 5, (20, 3, 3))
    batch = _episode(BatchedTag(3, max_cycles=10), seeds, acts[:10])
    for k, s in enumerate(seeds):
        alone = BatchedTag(1, max_cycles=10)
        single = _episode(alone, [s], acts[:10, k : k + 1])
        for got, want in zip(batch, single, strict=True):
            np.testing.assert_array_equal(got[k], want[0])
    # copy k after an unseeded reset continues its own stream, as the one-copy batch does
    both = [BatchedTag(3, max_cycles=10), BatchedTag(1, max_cycles=10)]
    both[0].reset(seeds=seeds)
    both[1].reset(seeds=[seeds[1]])
    np.testing.assert_array_equal(both[0].reset(copies=[1])[1], both[1].reset()[0])


def test_seeds_reproduce_and_differ():
    acts = np.random.default_rng(4).integers(0, 5, (10, 4, 3))
    a = _episode(BatchedTag(4, max_cycles=10), 3, acts)
    b = _episode(BatchedTag(4, max_cycles=10), 3, acts)
    c = _episode(BatchedTag(4, max_cycles=10), 4, acts)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    np.testing.assert_array_equal(a[0][1:], c[0][:-1])  # an int seed s seeds copies s, s + 1, ...


def test_state_round_trip_and_partial_reset():
    core = BatchedTag(3, max_cycles=5)
    core.reset(seeds=[1, 2, 3])
    for _ in range(5):
        out = core.step(np.full((3, 3), 4))
    assert out.truncated.tolist() == [True] * 3
    kept = core.get_state([2])
    core.reset(seeds=[8], copies=np.array([False, True, False]))
    assert core.t.tolist() == [5, 0, 5]
    got = core.get_state([2])
    for f in TagState._fields:
        np.testing.assert_array_equal(getattr(got, f), getattr(kept, f))
    core.reset(copies=[0, 2])
    state = core.get_state()
    again = BatchedTag(3, max_cycles=5)
    again.set_state(state)
    np.testing.assert_array_equal(again.step(np.zeros((3, 3), int)).obs, core.step(np.zeros((3, 3), int)).obs)


def test_typed_errors():
    for bad in ({"n_copies": 0}, {"max_cycles": 0}, {"max_cycles": 2.5}, {"reward_scale": "x"}):
        with pytest.raises(ConfigError):
            BatchedTag(**bad)
    core = BatchedTag(2, max_cycles=1)
    with pytest.raises(ConfigError, match="reset"):
        core.step(np.zeros((2, 3), int))
    with pytest.raises(ConfigError, match="every copy"):
        core.set_state(core.get_state([0]), copies=[0])
    core.reset(seeds=0)
    for bad_acts in (np.zeros((2, 2), int), np.zeros((2, 3)), np.full((2, 3), 5), np.full((2, 3), -1)):
        with pytest.raises(ConfigError, match="actions"):
            core.step(bad_acts)
    core.step(np.zeros((2, 3), int))
    with pytest.raises(ConfigError, match="finished"):
        core.step(np.zeros((2, 3), int))
    good = core.get_state()
    with pytest.raises(ConfigError, match="agent_pos"):
        core.set_state(good._replace(agent_pos=np.zeros((2, 2, 2))))
    with pytest.raises(ConfigError, match="landmark_pos"):
        core.set_state(good._replace(landmark_pos=np.full((2, 2, 2), np.nan)))
    with pytest.raises(ConfigError, match=r"state\.t"):
        core.set_state(good._replace(t=np.array([0, 1])))
    with pytest.raises(ConfigError, match="TagState"):
        core.set_state(tuple(good))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="copies"):
        core.reset(copies=[5])
    with pytest.raises(ConfigError, match="seat"):
        BatchedTag.seat_obs(core.observe(), 3)
    with pytest.raises(SeatError):
        core.observation_space("agent_1")
    with pytest.raises(ConfigError, match="simple_tag"):
        mpe2_state(object())
