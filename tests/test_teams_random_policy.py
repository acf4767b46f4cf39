"""RandomPolicy on every action space (the default for seats outside the learning team), seeded."""

import gymnasium as gym
import numpy as np
import pytest
from mpe2 import simple_tag_v3

from rqe_wrappers import RandomPolicy, UnsupportedSpaceError, srpo_wrap

pytestmark = pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning")

OBS = gym.spaces.Box(0, 1, (2,), np.float32)
SPACES = [
    gym.spaces.Discrete(5),
    gym.spaces.Discrete(3, start=-1),
    gym.spaces.MultiDiscrete([2, 3, 4]),
    gym.spaces.MultiBinary(6),
    gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
    gym.spaces.Box(0, 4, (3,), np.int64),
    gym.spaces.Box(np.array([-np.inf, 0, -2], np.float32), np.array([np.inf, np.inf, 2], np.float32)),
]


@pytest.mark.parametrize("space", SPACES, ids=str)
def test_actions_are_in_the_space_seeded_and_spread(space):
    pol = RandomPolicy(OBS, space)

    def draw(seed):
        return pol.act(np.zeros((400, 2)), rng=np.random.default_rng(seed))[0]

    a = draw(0)
    assert len(a) == 400 and all(space.contains(x) for x in a)
    np.testing.assert_array_equal(a, draw(0))
    assert not np.array_equal(a, draw(1))
    flat = np.asarray(a, np.float64).reshape(400, -1)
    assert np.all(flat.std(axis=0) > 0.1)  # every component varies


def test_discrete_draws_are_unchanged():
    """The Discrete path draws exactly as before Box/Multi* support: floor(u * n) + start, one u per row."""
    pol = RandomPolicy(OBS, gym.spaces.Discrete(5, start=2))
    got, _ = pol.act(np.zeros((50, 2)), rng=np.random.default_rng(7))
    want = (np.random.default_rng(7).random(50) * 5).astype(np.int64) + 2
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(pol.action_probs(np.zeros((2, 2))), np.full((2, 5), 0.2))


def test_uniform_over_bounds_and_legal_values():
    box = RandomPolicy(OBS, gym.spaces.Box(0.0, 10.0, (1,), np.float32))
    a, _ = box.act(np.zeros((4000, 2)), rng=np.random.default_rng(0))
    assert abs(a.mean() - 5.0) < 0.2 and a.min() >= 0 and a.max() <= 10
    np.testing.assert_allclose(box.log_prob(None, a[:3]), [np.log(0.1)] * 3)
    md = RandomPolicy(OBS, gym.spaces.MultiDiscrete([2, 3]))
    mask = np.array([[0, 1, 1, 0, 1]] * 300)  # component 0: only 1; component 1: 0 or 2
    a, _ = md.act(np.zeros((300, 2)), rng=np.random.default_rng(0), mask=mask)
    assert set(a[:, 0]) == {1} and set(a[:, 1]) == {0, 2}


def test_continuous_runner_is_the_default_fixed_seat():
    """mpe2 with continuous actions: the default runner needs a Box random policy, and moves."""
    env = srpo_wrap(simple_tag_v3.parallel_env(continuous_actions=True, max_cycles=5), tau=1.0)
    (runner,) = env.default_fixed.values()
    assert isinstance(runner.action_space, gym.spaces.Box)
    env.reset(seed=0)
    while env.agents:
        env.step({a: env.action_space(a).sample() * 0 for a in env.agents})


def test_unsupported_action_space():
    with pytest.raises(UnsupportedSpaceError, match="Policy subclass"):
        RandomPolicy(OBS, gym.spaces.Tuple((gym.spaces.Discrete(2),)))
