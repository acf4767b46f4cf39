"""Image members in the zoo (a shared CNN stored once, channel-last play) and the meltingpot-cooking builder.

Neither needs Melting Pot: the models are trained on a stand-in env with the cooking layouts' spaces
(40 x 40 RGB x 4 stacked views, 8 actions), as ``rqe meltingpot populations`` writes them.
"""

from __future__ import annotations

import json
import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO

from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.meltingpot_cooking import CNN_KWARGS
from rqe_wrappers.sb3 import SB3Policy
from rqe_wrappers.zoo import load_population
from rqe_wrappers.zoo.publish import build_recipe, member_from_sb3, write_population

torch.set_num_threads(1)
SPACE = gym.spaces.Box(0, 255, (40, 40, 12), np.uint8)


class Kitchen(gym.Env):
    """Random images with the cooking layouts' spaces."""

    observation_space, action_space = SPACE, gym.spaces.Discrete(8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), float(action == 3), False, False, {}


def cnn_model(seed: int) -> PPO:
    kwargs = {"net_arch": [64], **CNN_KWARGS}
    return PPO("CnnPolicy", Kitchen(), n_steps=16, batch_size=16, n_epochs=1, policy_kwargs=kwargs, seed=seed)


def test_a_shared_cnn_is_stored_once_and_the_member_plays_channel_last_images(tmp_path):
    model = cnn_model(0)
    member = member_from_sb3(model, "chef")
    state = model.policy.state_dict()
    assert any(k.startswith("pi_features_extractor.") for k in state)  # SB3 names the shared CNN thrice
    assert not any(k.startswith(("pi_features_extractor.", "vf_features_extractor.")) for k in member.tensors)
    write_population(tmp_path, id="t/chefs", version=1, env="kitchen", members=[member], observation_space=SPACE)
    policy = load_population(tmp_path / "t" / "chefs" / "1")["chef"].policy()
    assert policy.observation_space == SPACE  # the env's images, though the network sees them transposed
    obs = np.stack([SPACE.sample() for _ in range(6)])
    ref = SB3Policy.from_model(model, observation_space=SPACE)
    np.testing.assert_allclose(policy.action_probs(obs), ref.action_probs(obs), atol=1e-6)
    net = policy.policy
    assert net.pi_features_extractor is net.features_extractor  # loaded shared again, not three copies


def _run_dir(tmp_path):
    """A directory as ``rqe meltingpot populations`` leaves it: results.json and one model per member."""
    run = tmp_path / "run"
    (run / "cramped-s3").mkdir(parents=True)
    rows = []
    for i, name in enumerate(("sp0-m0", "sp0-m1")):
        model = cnn_model(i)
        model.learn(16)
        model.save(run / "cramped-s3" / f"{name}.zip")
        rows.append(
            {
                "name": name,
                "file": f"cramped-s3/{name}.zip",
                "steps": 16,
                "sub_population": 0,
                "preferences.prosociality": 0.1 * i,
                "preferences.risk_aversion": 1.0,
                "dishes_per_episode": 0.5 * i,
            }
        )
    report = {
        "layouts": ["cramped"],
        "seeds": [3],
        "play": {"sizes": [2], "rounds": 2, "steps_per_round": 8},
        "turn_seconds": 10.0,
        "eval_episodes": 2,
        "eval_seed": 50_000,
        "jobs": 4,
        "devices": ["cuda:0"],
        "machine": {"cpu_count": 64, "cuda_device": "NVIDIA H200", "torch": "2.11"},
        "populations": {"cramped-s3": rows},
    }
    (run / "results.json").write_text(json.dumps(report))
    return run


def _recipe(tmp_path, run, **params):
    recipe = tmp_path / "recipe"
    recipe.mkdir(exist_ok=True)
    data = {
        "schema_version": 1,
        "id": "meltingpot/cramped-test",
        "version": 1,
        "description": "Test chefs.",
        "builder": "meltingpot-cooking",
        "env": {
            "id": "meltingpot/collaborative_cooking__cramped",
            "kwargs": {"frames": 4},
            "seats": ["player_0", "player_1"],
        },
        "seeds": [3],
        "budget": {"rounds": 2, "steps_per_round": 8},
        "params": {"layout": "cramped", "sizes": [2], "reuse_dir": str(run), **params},
    }
    (recipe / "recipe.json").write_text(json.dumps(data))
    return recipe


def test_the_builder_publishes_a_run_of_the_same_settings_with_its_metrics_and_command(tmp_path):
    run = _run_dir(tmp_path)
    target = build_recipe(_recipe(tmp_path, run), tmp_path / "pops")
    pop = load_population(target)
    assert list(pop) == ["sp0-m0", "sp0-m1"]
    assert pop["sp0-m1"].metrics["dishes_per_episode"] == 0.5
    assert pop["sp0-m1"].metrics["preferences.prosociality"] == pytest.approx(0.1)
    assert pop["sp0-m1"].metrics["eval_episodes"] == 2
    assert pop.observation_space == SPACE
    assert "rqe meltingpot populations --layouts cramped --seeds 3 --sizes 2 --rounds 2" in pop.description
    model = PPO.load(run / "cramped-s3" / "sp0-m1.zip", device="cpu")
    obs = np.stack([SPACE.sample() for _ in range(4)])
    ref = SB3Policy.from_model(model, observation_space=SPACE)
    np.testing.assert_allclose(pop["sp0-m1"].policy().action_probs(obs), ref.action_probs(obs), atol=1e-6)


def test_the_builder_checks_its_recipe(tmp_path):
    run = _run_dir(tmp_path)
    with pytest.raises(ConfigError, match="layout"):
        build_recipe(_recipe(tmp_path, run, layout="kitchen"), tmp_path / "pops")
    with pytest.raises(ConfigError, match="unknown params"):
        build_recipe(_recipe(tmp_path, run, colour="red"), tmp_path / "pops")
    shutil.rmtree(run / "cramped-s3")  # a run that does not hold the models it names is no silent fallback
    with pytest.raises((ConfigError, FileNotFoundError, OSError)):
        build_recipe(_recipe(tmp_path, run), tmp_path / "pops")
