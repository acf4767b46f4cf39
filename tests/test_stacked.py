"""StackedNets: a population of networks of one architecture in one forward pass, as each acts alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rqe_wrappers.batched import batched_vec_env
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.envs.cooking import BatchedCooking
from rqe_wrappers.eval.agents import as_policy
from rqe_wrappers.sb3.stacked import StackedNets, stack_key
from rqe_wrappers.zoo import load_population

torch.set_num_threads(1)
NAMES = ["ippo-s0", "ippo-s1", "ippo-s2", "srpo0.1-s0", "srpo0.1-s1"]


def members(names=NAMES):
    env = BatchedCooking(1)
    seat = env.possible_agents[1]
    population = load_population("cooking/agents")
    obs, act = env.observation_space(seat), env.action_space(seat)
    return {n: as_policy(population[n], obs, act, seat_index=1, who=n) for n in names}


class Alone(Policy):
    """The same policy, not stackable: it acts on its own (the unstacked reference)."""

    def __init__(self, inner: Policy):
        super().__init__(inner.observation_space, inner.action_space)
        self.inner = inner

    def act(self, obs, *, rng, mask=None, state=None):
        return self.inner.act(obs, rng=rng, mask=mask, state=state)


def test_stacked_probabilities_are_each_networks_own():
    found = members()
    by_key: dict = {}
    for name, pol in found.items():
        by_key.setdefault(stack_key(pol.stackable()[1]), []).append(name)
    assert sorted(map(len, by_key.values())) == [2, 3]  # the RolePolicy (SRPO) and MlpPolicy (IPPO) agents
    rng = np.random.default_rng(0)
    for names in by_key.values():
        raw = [rng.random((k, 54)).astype(np.float32) for k in (7, 0, 3)[: len(names)]]
        pols = [found[n] for n in names]
        stacked = StackedNets([p.stackable()[1] for p in pols])
        got = stacked.probs([p.stackable()[0](x) for p, x in zip(pols, raw, strict=True)])
        for p, x, g in zip(pols, raw, got, strict=True):
            assert g.shape == (len(x), 5)
            if len(x):
                np.testing.assert_allclose(g, p.action_probs(x), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="one architecture"):
        StackedNets([found["ippo-s0"].stackable()[1], found["srpo0.1-s0"].stackable()[1]])


@pytest.mark.filterwarnings("ignore::rqe_wrappers.errors.MissingCallbackWarning")
def test_a_stacked_population_plays_the_episodes_its_members_play_alone():
    def trace(wrap):
        pols = {n: (Alone(p) if wrap else p) for n, p in members().items()}
        venv = batched_vec_env(BatchedCooking(16, max_steps=8), seed=4, population=pols)
        venv.reset()
        rng = np.random.default_rng(1)
        steps = [venv.step(rng.integers(0, 5, venv.num_envs))[:3] for _ in range(20)]
        return steps, venv.venv._background._stacks

    stacked, groups = trace(False)
    alone, none = trace(True)
    assert sorted(len(g) for g, _ in groups) == [2, 3] and none == []
    for a, b in zip(stacked, alone, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_networks_that_differ_only_in_their_activation_are_not_stacked_together():
    import gymnasium as gym
    from stable_baselines3.common.policies import ActorCriticPolicy
    from torch import nn

    box, act = gym.spaces.Box(-1.0, 1.0, (4,), np.float32), gym.spaces.Discrete(3)

    def net(activation, seed):
        torch.manual_seed(seed)
        return ActorCriticPolicy(box, act, lambda _: 0.0, net_arch=[8], activation_fn=activation)

    tanh, relu, tanh2 = net(nn.Tanh, 0), net(nn.ReLU, 1), net(nn.Tanh, 2)
    assert stack_key(tanh) == stack_key(tanh2) != stack_key(relu)  # same shapes, another activation
    with pytest.raises(ValueError, match="one architecture"):
        StackedNets([tanh, relu])
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    got = StackedNets([tanh, tanh2]).probs([x, x[:2]])
    for n, rows, g in ((tanh, x, got[0]), (tanh2, x[:2], got[1])):
        with torch.no_grad():
            want = n.get_distribution(torch.as_tensor(rows)).distribution.probs.double().numpy()
        np.testing.assert_allclose(g, want, rtol=0, atol=1e-6)
