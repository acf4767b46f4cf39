"""Iterated prisoner's dilemma: env API and rules, observation encoding, the nine partners,
the perturbed test set and exact evaluation."""

import itertools

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from rqe_wrappers import ConfigError, RandomPolicy, SpaceMismatchError, make_scripted
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.core.registry import scripted_names
from rqe_wrappers.envs.ipd import (
    IPDEnv,
    decode_history,
    encode_history,
    history_index,
    history_indices,
    history_observations,
    n_histories,
    observation_space,
    swap_perspective,
)
from rqe_wrappers.partners.ipd import (
    PARTNER_NAMES,
    PERTURBATION_WIDTHS,
    PERTURBED_COUNT,
    IPDTablePolicy,
    best_response,
    best_response_value,
    expected_return,
    perturbed_partners,
    self_play_best_value,
    training_partners,
)

C, D = 0, 1


# ---- env -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("rounds", [1, 3])
def test_parallel_api_and_seed(rounds):
    parallel_api_test(IPDEnv(rounds), num_cycles=10)
    parallel_seed_test(lambda: IPDEnv(rounds))


@pytest.mark.parametrize("a0, a1, r0, r1", [(C, C, 4.0, 4.0), (C, D, 0.0, 5.0), (D, C, 5.0, 0.0), (D, D, 1.0, 1.0)])
def test_payoffs_per_joint_action(a0, a1, r0, r1):
    env = IPDEnv(rounds=2)
    env.reset(seed=0)
    _, rewards, terms, truncs, _ = env.step({"player_0": a0, "player_1": a1})
    assert rewards == {"player_0": r0, "player_1": r1}
    assert not any(terms.values()) and not any(truncs.values())


def test_episode_terminates_after_rounds_and_obs_is_history_from_own_perspective():
    env = IPDEnv(rounds=3)
    obs, _ = env.reset(seed=0)
    assert obs["player_0"].shape == (16,) and obs["player_0"] in env.observation_space("player_0")
    played = [(C, D), (D, D), (D, C)]
    for t, (a0, a1) in enumerate(played):
        obs, _, terms, truncs, _ = env.step({"player_0": a0, "player_1": a1})
        assert decode_history(obs["player_0"]) == played[: t + 1]
        assert decode_history(obs["player_1"]) == [(b, a) for a, b in played[: t + 1]]
        assert all(terms.values()) == (t == 2) and not any(truncs.values())
    assert env.agents == []
    with pytest.raises(ConfigError, match="reset"):
        env.step({"player_0": C, "player_1": C})


def test_deterministic_trace():
    def trace(seed):
        env, rng, out = IPDEnv(rounds=4), np.random.default_rng(seed), []
        for _ in range(3):
            env.reset(seed=seed)
            while env.agents:
                acts = {a: int(rng.integers(2)) for a in env.agents}
                obs, rew, *_ = env.step(acts)
                out.append((acts, {a: o.tolist() for a, o in obs.items()}, rew))
        return out

    assert trace(3) == trace(3)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_bad_rounds(bad):
    with pytest.raises(ConfigError, match="rounds"):
        IPDEnv(rounds=bad)


def test_bad_actions():
    env = IPDEnv()
    env.reset()
    with pytest.raises(ConfigError, match="missing"):
        env.step({"player_0": C})
    with pytest.raises(ConfigError, match="player_1"):
        env.step({"player_0": C, "player_1": 2})


# ---- observation encoding ------------------------------------------------------------------------
@pytest.mark.parametrize("rounds", [1, 2, 3, 4])
def test_history_index_is_a_bijection(rounds):
    seen = {}
    for t in range(rounds):
        for hist in itertools.product([(C, C), (C, D), (D, C), (D, D)], repeat=t):
            obs = encode_history(hist, rounds)
            assert decode_history(obs) == list(hist)
            seen[history_index(obs)] = hist
    assert sorted(seen) == list(range(n_histories(rounds)))
    assert n_histories(rounds) == sum(4**t for t in range(rounds))
    table = history_observations(rounds)
    assert (history_indices(table) == np.arange(n_histories(rounds))).all()
    assert [decode_history(table[i]) for i in range(len(table))] == [list(seen[i]) for i in range(len(table))]


@pytest.mark.parametrize("rounds", [5, 12, 25])
def test_history_indices_by_dot_products_are_the_digit_by_digit_indices(rounds, monkeypatch):
    import rqe_wrappers.envs.ipd as ipd

    rng = np.random.default_rng(rounds)
    moves = [(C, C), (C, D), (D, C), (D, D)]
    hists = [[moves[k] for k in rng.integers(0, 4, rng.integers(0, rounds + 1))] for _ in range(300)]
    batch = np.stack([encode_history(h, rounds) for h in hists])
    fast = history_indices(batch)
    monkeypatch.setattr(ipd, "_EXACT_ROUNDS", 0)  # the loop over rounds
    assert fast.tolist() == history_indices(batch).tolist()
    assert (fast == -1).tolist() == [len(h) == rounds for h in hists]


def test_history_index_rejects_complete_and_malformed_observations():
    with pytest.raises(ConfigError, match="over"):
        history_index(encode_history([(C, C)] * 3, 3))
    assert history_indices(history_observations(3, 3)).tolist() == [-1] * 64
    bad = encode_history([(C, D)], 3)
    bad[4 * 3] = 1.0  # two round markers
    with pytest.raises(ConfigError, match="round marker"):
        history_index(bad)
    gap = encode_history([], 3)
    gap[5] = 1.0  # a move recorded in round 1 while the marker says none was played
    with pytest.raises(ConfigError, match="history blocks"):
        history_index(gap)
    with pytest.raises(ConfigError, match="IPD observation"):
        history_index(np.zeros(7))


def test_swap_perspective():
    obs = encode_history([(C, D), (D, D), (D, C)], 4)
    assert decode_history(swap_perspective(obs)) == [(D, C), (D, D), (C, D)]
    assert (swap_perspective(swap_perspective(obs)) == obs).all()


# ---- scripted partners ---------------------------------------------------------------------------
BEHAVIOUR = [  # (partner, history as (partner's move, other's move), expected move)
    ("ipd/always-cooperate", [], C),
    ("ipd/always-cooperate", [(C, D), (C, D)], C),
    ("ipd/always-defect", [], D),
    ("ipd/always-defect", [(D, C), (D, C)], D),
    ("ipd/tit-for-tat", [], C),
    ("ipd/tit-for-tat", [(C, D)], D),
    ("ipd/tit-for-tat", [(C, D), (D, C)], C),
    ("ipd/tit-for-tat", [(D, D), (D, D), (D, C)], C),
    ("ipd/tit-for-tat-d", [], D),
    ("ipd/tit-for-tat-d", [(D, C)], C),
    ("ipd/tit-for-tat-d", [(D, C), (C, D)], D),
    ("ipd/tat-for-tit", [], C),
    ("ipd/tat-for-tit", [(C, D)], C),
    ("ipd/tat-for-tit", [(C, D), (C, C)], D),
    ("ipd/tat-for-tit-d", [], D),
    ("ipd/tat-for-tit-d", [(D, D)], C),
    ("ipd/tat-for-tit-d", [(D, C)], D),
    ("ipd/cooperate-until-defected", [], C),
    ("ipd/cooperate-until-defected", [(C, C), (C, C)], C),
    ("ipd/cooperate-until-defected", [(C, D)], D),
    ("ipd/cooperate-until-defected", [(C, D), (D, C), (D, C)], D),  # never forgives
    ("ipd/cooperate-until-defected", [(D, C), (D, C), (C, C)], C),  # its own defections don't count
    ("ipd/defect-until-cooperated", [], D),
    ("ipd/defect-until-cooperated", [(D, D), (D, D)], D),
    ("ipd/defect-until-cooperated", [(D, C)], C),
    ("ipd/defect-until-cooperated", [(D, C), (C, D), (C, D)], C),  # cooperates for good
]


@pytest.mark.parametrize("name, history, move", BEHAVIOUR)
def test_scripted_partner_behaviour(name, history, move):
    policy = make_scripted(name, rounds=4)
    probs = policy.action_probs(encode_history(history, 4)[None])
    assert probs.tolist() == [[1.0 - move, float(move)]]


def test_random_partner_and_registry():
    policy = make_scripted("ipd/random", rounds=3)
    assert np.allclose(policy.action_probs(history_observations(3)), 0.5)
    assert set(PARTNER_NAMES) | {"ipd/table"} <= set(scripted_names())
    partners = training_partners(3)
    assert list(partners) == list(PARTNER_NAMES) and len(partners) == 9
    for name, policy in partners.items():
        assert policy.name == name and policy.observation_space == observation_space(3)
        probs = policy.action_probs(history_observations(3))
        assert probs.shape == (n_histories(3), 2) and np.allclose(probs.sum(axis=1), 1.0)
        actions, _ = policy.act(history_observations(3), rng=np.random.default_rng(0))
        assert actions.shape == (n_histories(3),)


def test_partner_with_wrong_rounds_fails_clearly():
    with pytest.raises(SpaceMismatchError, match="4-round"):
        make_scripted("ipd/tit-for-tat", rounds=4).action_probs(history_observations(3))


# ---- tabular policy ------------------------------------------------------------------------------
def test_table_policy_round_trips_through_make_scripted():
    p = np.random.default_rng(0).random(n_histories(3))
    table = make_scripted("ipd/table", arrays={"p_defect": p}, rounds=3)
    assert isinstance(table, IPDTablePolicy)
    assert np.allclose(table.action_probs(history_observations(3))[:, 1], p)
    name, kwargs = table.spec()
    again = make_scripted(name, **kwargs)
    assert np.array_equal(again.table, table.table) and again.rounds == 3
    assert table.action_probs(history_observations(3, 3)[:2]).tolist() == [[1.0, 0.0]] * 2


def test_table_policy_tabulates_any_partner():
    for policy in training_partners(3).values():
        table = IPDTablePolicy.from_policy(policy, 3)
        obs = history_observations(3)
        assert np.allclose(table.action_probs(obs), policy.action_probs(obs))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"arrays": {"p_defect": np.zeros(20)}, "rounds": 3}, "shape"),
        ({"arrays": {"p_defect": np.full(21, 1.5)}, "rounds": 3}, r"\[0, 1\]"),
        ({"arrays": {"p_defect": np.full(21, np.nan)}, "rounds": 3}, r"\[0, 1\]"),
        ({"arrays": {"probs": np.zeros(21)}, "rounds": 3}, "p_defect"),
    ],
)
def test_table_policy_bad_arrays(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        make_scripted("ipd/table", **kwargs)


# ---- perturbed test set --------------------------------------------------------------------------
@pytest.mark.parametrize("w", [0.1, 0.5, 1.0])
def test_perturbed_partners_stay_within_w_of_their_base(w):
    bases = training_partners(3)
    tables = {name: IPDTablePolicy.from_policy(p, 3).table for name, p in bases.items()}
    test_set = perturbed_partners(bases, w, count=64, rounds=3, rng=np.random.default_rng(1))
    assert len(test_set) == 64
    drawn = set()
    for policy in test_set:
        base = policy.name.split("(")[1].split(",")[0]
        drawn.add(base)
        l1 = 2 * np.abs(policy.table - tables[base])  # |dp| + |d(1-p)|
        assert l1.max() <= w + 1e-12
        assert ((policy.table >= 0) & (policy.table <= 1)).all()
    assert len(drawn) >= 6  # bases are drawn uniformly from the nine


def test_perturbed_partners_reproduce_with_seed():
    bases = training_partners(3)
    a = perturbed_partners(bases, 0.3, 8, 3, np.random.default_rng(7))
    b = perturbed_partners(bases, 0.3, 8, 3, 7)
    c = perturbed_partners(bases, 0.3, 8, 3, np.random.default_rng(8))
    assert [p.table.tolist() for p in a] == [p.table.tolist() for p in b]
    assert [p.table.tolist() for p in a] != [p.table.tolist() for p in c]
    assert PERTURBED_COUNT == 512 and PERTURBATION_WIDTHS == tuple(round(0.1 * k, 1) for k in range(1, 11))


@pytest.mark.parametrize(
    "args, match",
    [
        (([], 0.1, 4, 3, 0), "at least one"),
        ((None, -0.1, 4, 3, 0), r"\[0, 2\]"),
        ((None, 2.5, 4, 3, 0), r"\[0, 2\]"),
        ((None, float("nan"), 4, 3, 0), r"\[0, 2\]"),
        ((None, 0.1, 0, 3, 0), "count"),
        ((None, 0.1, 4, 3, None), "rng"),
    ],
)
def test_perturbed_partners_bad_input(args, match):
    bases = training_partners(3) if args[0] is None else args[0]
    with pytest.raises(ConfigError, match=match):
        perturbed_partners(bases, *args[1:])


# ---- exact evaluation ----------------------------------------------------------------------------
BEST_RESPONSE_VALUES_3 = {
    "ipd/always-cooperate": 15.0,  # D, D, D
    "ipd/always-defect": 3.0,  # D, D, D
    "ipd/tit-for-tat": 13.0,  # C, C, D
    "ipd/tat-for-tit": 15.0,  # D, D, D: it answers each D with C
    "ipd/tit-for-tat-d": 9.0,  # C (sucker), C, D
    "ipd/tat-for-tit-d": 11.0,  # D, D, D: DD then DC twice
    "ipd/cooperate-until-defected": 13.0,  # C, C, D
    "ipd/defect-until-cooperated": 10.0,  # C (sucker), D, D
    "ipd/random": 9.0,  # always D: 3 per round
}


def test_best_response_values_and_policies():
    for name, partner in training_partners(3).items():
        value = best_response_value(partner, 3)
        assert value == pytest.approx(BEST_RESPONSE_VALUES_3[name])
        assert expected_return(best_response(partner, 3), partner, 3)[0] == pytest.approx(value)
    assert self_play_best_value(3) == 12.0


def test_expected_return_known_pairs_and_symmetry():
    p = training_partners(3)
    assert expected_return(p["ipd/tit-for-tat"], p["ipd/tit-for-tat"], 3) == (12.0, 12.0)
    assert expected_return(p["ipd/always-defect"], p["ipd/always-cooperate"], 3) == (15.0, 0.0)
    assert expected_return(p["ipd/tit-for-tat"], p["ipd/tit-for-tat-d"], 3) == (5.0, 10.0)  # CD, DC, CD
    assert expected_return(p["ipd/random"], p["ipd/random"], 3) == pytest.approx((7.5, 7.5))
    rng = np.random.default_rng(0)
    tables = [IPDTablePolicy(rng.random(n_histories(3)), 3) for _ in range(4)]
    for a, b in itertools.combinations(tables + list(p.values()), 2):
        ra, rb = expected_return(a, b, 3)
        assert expected_return(b, a, 3) == pytest.approx((rb, ra))
        assert best_response_value(b, 3) >= ra - 1e-9 and best_response_value(a, 3) >= rb - 1e-9


def test_expected_return_matches_sampled_play():
    rng = np.random.default_rng(0)
    a, b = IPDTablePolicy(rng.random(n_histories(3)), 3), training_partners(3)["ipd/random"]
    env, totals, episodes = IPDEnv(3), np.zeros(2), 3000
    for _ in range(episodes):
        obs, _ = env.reset()
        while env.agents:
            acts = {
                "player_0": int(a.act(obs["player_0"][None], rng=rng)[0][0]),
                "player_1": int(b.act(obs["player_1"][None], rng=rng)[0][0]),
            }
            obs, rew, *_ = env.step(acts)
            totals += [rew["player_0"], rew["player_1"]]
    exact = np.array(expected_return(a, b, 3))
    assert np.abs(totals / episodes - exact).max() < 0.25  # ~5 standard errors


def test_evaluation_rejects_unfit_policies():
    tft = make_scripted("ipd/tit-for-tat", rounds=3)
    with pytest.raises(SpaceMismatchError, match="policy_b"):
        expected_return(tft, make_scripted("ipd/tit-for-tat", rounds=4), 3)

    class NotDiscrete(Policy):
        def act(self, obs, *, rng, mask=None, state=None):
            return np.zeros(len(obs), np.int64), state

    with pytest.raises(ConfigError, match="DiscretePolicy"):
        best_response_value(NotDiscrete(observation_space(3), tft.action_space), 3)
    # any DiscretePolicy on the right spaces works, not only the IPD classes
    assert best_response_value(RandomPolicy(observation_space(3), tft.action_space), 3) == pytest.approx(9.0)
