"""Policies on the learner's device: Policy.to, SB3Policy.to, and batched_vec_env(device=...)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rqe_wrappers.batched import batched_vec_env
from rqe_wrappers.envs.cooking import BatchedCooking
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.eval.agents import as_policy
from rqe_wrappers.partners.ipd import TitForTat
from rqe_wrappers.zoo import load_population

torch.set_num_threads(1)


def cooking_member():
    env = BatchedCooking(1)
    seat = env.possible_agents[1]
    member = load_population("cooking/agents")["ippo-s0"]
    return as_policy(member, env.observation_space(seat), env.action_space(seat), seat_index=1, who="ippo-s0")


def sb3_net(policy):
    while not hasattr(policy, "policy"):  # through the partner-role wrapper to the SB3Policy
        policy = policy.inner
    return policy.policy


def test_to_reaches_the_network_through_the_wrappers():
    policy = cooking_member()
    assert policy.to("meta") is policy  # the meta device holds no data: only where the tensors are
    assert {p.device.type for p in sb3_net(policy).parameters()} == {"meta"}
    assert TitForTat().to("cuda").act(np.zeros((2, 16), np.float32), rng=np.random.default_rng(0))[0].shape == (2,)


@pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning")
def test_members_on_a_device_play_the_same_episodes():
    def trace(device):
        members = {"a": cooking_member(), "b": cooking_member()}
        venv = batched_vec_env(BatchedCooking(8, max_steps=6), seed=3, population=members, device=device)
        venv.reset()
        rng = np.random.default_rng(0)
        out = [venv.step(rng.integers(0, 5, venv.num_envs))[:3] for _ in range(9)]
        devices = {p.device.type for m in members.values() for p in sb3_net(m).parameters()}
        return out, devices

    (plain, on_plain), (moved, on_cpu) = trace(None), trace("cpu")
    assert on_plain == on_cpu == {"cpu"}
    for a, b in zip(plain, moved, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("device", ["bogus", 3.5, "cuda"])
def test_a_bad_or_missing_device_is_a_config_error(device):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="device"):
        batched_vec_env(BatchedCooking(2), seed=0, population={"a": cooking_member()}, device=device)
