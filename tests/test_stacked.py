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
        return steps, venv.venv._background._stacks or []

    stacked, groups = trace(False)
    alone, none = trace(True)
    assert sorted(len(g) for g, _, _ in groups) == [2, 3] and none == []
    assert all(shared and s.grouped is not None for _, s, shared in groups)  # one transform, batched matmuls
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


def _extractor_net(extractor, seed):
    """An ActorCriticPolicy on a 4-d Box whose features pass through ``extractor`` (a features extractor class)."""
    import gymnasium as gym
    from stable_baselines3.common.policies import ActorCriticPolicy

    box, act = gym.spaces.Box(-1.0, 1.0, (4,), np.float32), gym.spaces.Discrete(3)
    torch.manual_seed(seed)
    return ActorCriticPolicy(box, act, lambda _: 0.0, net_arch=[8], features_extractor_class=extractor)


def _own_probs(net, rows):
    with torch.no_grad():
        return net.get_distribution(torch.as_tensor(rows)).distribution.probs.double().numpy()


def test_linear_only_networks_run_grouped_others_through_vmap_each_with_its_own_probabilities():
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from torch import nn

    class Normed(BaseFeaturesExtractor):  # a LayerNorm holds weights: not a linear layer
        def __init__(self, space):
            super().__init__(space, 4)
            self.norm = nn.LayerNorm(4)

        def forward(self, obs):
            return self.norm(obs)

    class Centred(BaseFeaturesExtractor):  # no weights, but mixes rows (each row minus the batch mean)
        def __init__(self, space):
            super().__init__(space, 4)

        def forward(self, obs):
            return obs - obs.mean(dim=0, keepdim=True)

    from stable_baselines3.common.torch_layers import FlattenExtractor

    rng = np.random.default_rng(0)
    x = [rng.standard_normal((k, 4)).astype(np.float32) for k in (5, 2, 3)]
    for extractor, grouped in ((FlattenExtractor, True), (Normed, False), (Centred, False)):
        nets = [_extractor_net(extractor, s) for s in range(3)]
        if extractor is Normed:
            with torch.no_grad():  # LayerNorm starts at weight 1, bias 0: make the members differ
                for k, n in enumerate(nets):
                    n.features_extractor.norm.weight.add_(k)
        stacked = StackedNets(nets)
        assert (stacked.grouped is not None) == grouped, extractor.__name__
        got = stacked.probs(x)
        for n, rows, g in zip(nets, x, got, strict=True):
            if extractor is Centred:  # the member's own net sees only its rows; so does the stack (padding aside)
                continue
            np.testing.assert_allclose(g, _own_probs(n, rows), rtol=0, atol=1e-6)
        flat = stacked.probs_concat(np.concatenate(x), [5, 2, 3])
        np.testing.assert_allclose(flat, np.concatenate(got), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="counts"):
        stacked.probs_concat(np.concatenate(x), [5, 2])


def test_partner_role_transforms_are_equal_only_for_one_seat_and_one_space():
    found = members(["srpo0.1-s0", "srpo0.1-s1"])
    a, b = (p.stackable()[0] for p in found.values())
    assert a == b and a is not b
    env = BatchedCooking(1)
    other_seat = as_policy(
        load_population("cooking/agents")["srpo0.1-s0"],
        env.observation_space(env.possible_agents[0]),
        env.action_space(env.possible_agents[0]),
        seat_index=0,
        who="s0",
    )
    c = other_seat.stackable()[0]
    assert c != a
    x = np.zeros((2, 54), np.float32)
    assert not np.array_equal(a(x), c(x))  # the seat one-hot differs, so one transform cannot serve both


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device (run on the GPU box)")
def test_cuda_graph_replays_give_the_probabilities_of_the_plain_forward():
    found = [p.stackable() for p in members(["ippo-s0", "ippo-s1", "ippo-s2"]).values()]
    nets = [f[1].to("cuda") for f in found]
    graphed, plain = StackedNets(nets), StackedNets(nets, cuda_graphs=False)
    assert graphed.cuda_graphs and not plain.cuda_graphs
    rng = np.random.default_rng(0)
    for counts in ([5, 0, 3], [2, 3, 3], [8, 0, 0], [1, 1, 6], [30, 1, 1]):  # repeated shapes replay one graph
        x = found[0][0](rng.random((sum(counts), 54)).astype(np.float32))
        np.testing.assert_allclose(graphed.probs_concat(x, counts), plain.probs_concat(x, counts), rtol=0, atol=1e-6)
    assert len(graphed._graphs) == 3  # 8 rows at widths 8 (from 5, 8, 6) and 4 (from 3); 32 rows at 32
    srpo = [p.stackable() for p in members(["srpo0.1-s0", "srpo0.1-s1"]).values()]
    other = [f[1].to("cuda") for f in srpo]
    second = StackedNets(other)
    x, y = x[:8], srpo[0][0](rng.random((6, 54)).astype(np.float32))
    read_x, read_y = graphed.launch(x, [2, 3, 3]), second.launch(y, [4, 2])  # both queued, then read
    np.testing.assert_allclose(read_y(), StackedNets(other, cuda_graphs=False).probs_concat(y, [4, 2]), atol=1e-6)
    np.testing.assert_allclose(read_x(), plain.probs_concat(x, [2, 3, 3]), rtol=0, atol=1e-6)
    stale = graphed.launch(x, [2, 3, 3])
    graphed.launch(x, [3, 3, 2])  # the same graph again: its host buffers now hold this launch
    with pytest.raises(RuntimeError, match="after the next launch"):
        stale()


def test_prepared_forward_passes_serve_the_next_fill_once_and_a_new_assignment_discards_them(monkeypatch):
    from rqe_wrappers.batched.background import BatchedBackground

    pols = list(members().values())
    env = BatchedCooking(12)
    obs = env.reset(seeds=list(range(12)))
    rng = np.random.default_rng(3)
    rows = np.full((12, 2), -1)
    first, second = rows.copy(), rows.copy()
    first[:, 1], second[:, 1] = rng.integers(0, 5, 12), rng.integers(0, 5, 12)

    def background(table):
        bg = BatchedBackground(env.possible_agents, {env.possible_agents[1]: pols[0]}, 12, pool=pols)
        bg.assign(np.arange(12), table)
        bg.seed(7)
        return bg

    launches = []
    real = StackedNets.launch
    monkeypatch.setattr(StackedNets, "launch", lambda self, x, c: launches.append(len(x)) or real(self, x, c))
    want, got = np.zeros((12, 2), np.int64), np.zeros((12, 2), np.int64)
    background(second).fill(want, obs)  # the partners of the second table, never prepared
    n_stacks = len(launches)
    assert n_stacks == 2  # ippo and srpo networks: two architectures
    bg = background(first)
    bg.prepare(obs)
    bg.fill(got, obs)  # served by the prepared passes: no new launch
    assert len(launches) == 2 * n_stacks
    bg = background(first)
    bg.prepare(obs)
    bg.assign(np.arange(12), second)  # other partners now: the prepared passes are for the old ones
    bg.fill(got, obs)
    assert len(launches) == 4 * n_stacks
    np.testing.assert_array_equal(got, want)
    bg.prepare(obs)
    bg.fill(got, obs.copy())  # another observation array: launched afresh
    assert len(launches) == 6 * n_stacks
