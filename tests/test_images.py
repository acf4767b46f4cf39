"""Image observations: the seat identity and the role as constant image channels, so CnnPolicy works."""

import gymnasium as gym
import numpy as np
import pytest

from rqe_wrappers import FunctionPolicy, UnsupportedSpaceError, srpo_wrap
from rqe_wrappers.srpo.features import ObsFeatures, role_features, set_role
from rqe_wrappers.srpo.roles import PARTNER, SHADOW, PartnerRole, role_of

pytestmark = pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning")

IMG = gym.spaces.Box(0, 255, (36, 36, 3), np.uint8)


def test_role_and_seat_are_constant_channels():
    f = ObsFeatures(IMG, n_seats=3)
    assert f.space == gym.spaces.Box(0, 255, (36, 36, 3 + 3 + 2), np.uint8)
    img = np.random.default_rng(0).integers(0, 256, (36, 36, 3), dtype=np.uint8)
    out = f.add(img, SHADOW, seat=2)
    assert f.space.contains(out)
    np.testing.assert_array_equal(out[..., :3], img)
    for ch, on in enumerate([0, 0, 1, 0, 1]):  # seat 2 of 3, then [partner, shadow]
        assert np.all(out[..., 3 + ch] == 255 * on)
    assert role_of(out) == SHADOW and role_of(f.add(img, PARTNER, seat=2)) == PARTNER


def test_role_is_read_and_set_channel_last_and_channel_first():
    f = ObsFeatures(IMG)
    batch = np.stack([f.add(np.zeros((36, 36, 3), np.uint8), r) for r in (PARTNER, SHADOW, SHADOW)])
    assert role_features(batch).tolist() == [[1, 0], [0, 1], [0, 1]]
    chw = batch.transpose(0, 3, 1, 2)[None]  # SB3's VecTransposeImage, with a leading (steps,) axis
    assert role_features(chw).tolist() == [[[1, 0], [0, 1], [0, 1]]]
    flipped = set_role(chw, PARTNER)
    assert role_features(flipped).tolist() == [[[1, 0]] * 3]
    np.testing.assert_array_equal(flipped[:, :, :3], chw[:, :, :3])  # the image itself is untouched
    assert np.all(flipped[:, :, 3] == 255) and np.all(flipped[:, :, 4] == 0)


def test_grayscale_and_partner_role_on_images():
    gray = gym.spaces.Box(0, 255, (36, 36), np.uint8)
    f = ObsFeatures(gray)
    assert f.space.shape == (36, 36, 3)
    seen = []
    policy = FunctionPolicy(f.space, gym.spaces.Discrete(2), lambda o: (seen.append(o), np.full((len(o), 2), 0.5))[1])
    PartnerRole(policy, gray).action_probs(np.zeros((2, 36, 36), np.uint8))
    assert seen[0].shape == (2, 36, 36, 3) and role_features(seen[0]).tolist() == [[1, 0]] * 2


def test_images_too_small_for_their_channels():
    with pytest.raises(UnsupportedSpaceError, match="resize"):
        ObsFeatures(gym.spaces.Box(0, 255, (4, 4, 3), np.uint8))
    with pytest.raises(UnsupportedSpaceError, match="1-D Box"):
        ObsFeatures(gym.spaces.Box(0.0, 1.0, (8, 8, 3), np.float32))  # float pixels: not an image for SB3


def pistonball(n_pistons=4, size=36):
    pistonball_v6 = pytest.importorskip("pettingzoo.butterfly.pistonball_v6")
    ss = pytest.importorskip("supersuit")
    return ss.resize_v1(pistonball_v6.parallel_env(n_pistons=n_pistons, max_cycles=25), size, size)


def test_pistonball_api_test_with_role_channels():
    from pettingzoo.test import parallel_api_test

    env = srpo_wrap(pistonball(), tau=1.0, seat_id=True)
    assert env.observation_space("piston_0").shape == (36, 36, 3 + 4 + 2)
    parallel_api_test(env, num_cycles=10)


@pytest.mark.filterwarnings("ignore:SRPO with normalize_advantage")
def test_cnn_policy_trains_on_pistonball_and_tells_the_shadow_apart():
    """Stock CnnPolicy on srpo_wrap(pistonball): SB3 transposes the image; the shadow rows stay readable."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    from rqe_wrappers.sb3 import PettingZooVecEnv, SRPOCallback
    from rqe_wrappers.sb3.srpo_callback import shadow_mask

    class Check(BaseCallback):
        rollouts: list = []

        def _on_rollout_end(self):  # after SRPOCallback's
            obs = self.model.rollout_buffer.observations  # (steps, slots, C, H, W) after VecTransposeImage
            roles = role_features(obs)
            self.rollouts.append((roles, shadow_mask(obs), self.logger.name_to_value["srpo/shadow_fraction"], obs))

        def _on_step(self):
            return True

    venv = PettingZooVecEnv(lambda: srpo_wrap(pistonball(), tau=1.0), n_copies=2)
    model = PPO("CnnPolicy", venv, n_steps=16, batch_size=64, n_epochs=1, policy_kwargs=dict(net_arch=[8]), seed=0)
    model.learn(256, callback=[SRPOCallback(), Check()])
    assert model.observation_space.shape == (5, 36, 36)  # channel-first inside SB3
    assert len(Check.rollouts) == 2
    for roles, mask, fraction, obs in Check.rollouts:
        # every row's role channels are constant planes, exactly one of partner/shadow lit
        assert set(np.unique(obs[:, :, 3:])) <= {0, 255}
        assert np.all(obs[:, :, 3:].min(axis=(3, 4)) == obs[:, :, 3:].max(axis=(3, 4)))
        assert np.all(roles.sum(axis=-1) == 1)
        # one shadow among the 4 pistons of each copy at every step
        per_copy = roles[..., SHADOW].reshape(len(roles), 2, 4).sum(axis=-1)
        assert np.all(per_copy == 1)
        np.testing.assert_array_equal(mask, roles[..., SHADOW] > 0.5)  # what SRPOCallback shapes
        assert fraction == pytest.approx(0.25)
    venv.close()
