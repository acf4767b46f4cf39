"""Lookup-table partners on the batched path (Policy.tabular): one index call over every member's rows,
the draws each member would make with its own ``act``, table misses answered by the member itself."""

import gymnasium as gym
import numpy as np
import pytest

from rqe_wrappers import AHTConfig, load_population
from rqe_wrappers.batched import batched_vec_env
from rqe_wrappers.batched.background import BatchedBackground
from rqe_wrappers.core.policy import DiscretePolicy
from rqe_wrappers.envs.ipd import BatchedIPD
from rqe_wrappers.partners import ipd as ipd_partners


def _trace(steps: int = 40, n: int = 64):
    venv = batched_vec_env(
        BatchedIPD(n), population=load_population("ipd/train"), aht=AHTConfig(prior="uniform"), seed=3
    )
    obs = venv.reset()
    actions = np.random.default_rng(0).integers(2, size=(steps, venv.num_envs))
    out = [obs.copy()]
    for t in range(steps):
        obs, rew, done, infos = venv.step(actions[t])
        out.append((obs.copy(), rew.copy(), done.copy(), [i.get("focal_return") for i in infos]))
    return out


def test_ipd_partners_play_as_with_their_own_act_and_index_once_a_step(monkeypatch):
    calls = []
    real = ipd_partners.history_indices

    def counted(obs):
        calls.append(len(obs))
        return real(obs)

    monkeypatch.setattr(ipd_partners, "history_indices", counted)
    tabular = _trace()
    steps_indexed = len(calls)
    monkeypatch.setattr(ipd_partners.IPDPolicy, "tabular", lambda self: None)
    calls.clear()
    own = _trace()
    assert len(calls) >= 8 * 40  # their own act: each of the nine members indexes its own rows (most steps)
    assert steps_indexed == 40  # tables: one call a step for all nine
    for a, b in zip(tabular[1:], own[1:], strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert a[3] == b[3]


class Keyed(DiscretePolicy):
    """Probabilities by the first observation entry (a table for keys 0-2; key -1 answered here, not tabulated)."""

    def __init__(self, table, missing, use_table=True):
        super().__init__(gym.spaces.Box(-1, 2, (1,)), gym.spaces.Discrete(3))
        self.table, self.missing, self.use_table = np.asarray(table, float), np.asarray(missing, float), use_table

    def action_probs(self, obs, *, state=None):
        keys = np.asarray(obs)[:, 0].astype(int)
        return np.where((keys >= 0)[:, None], self.table[np.maximum(keys, 0)], self.missing)

    def tabular(self):
        return (_keys, self.table) if self.use_table else None


def _keys(obs):
    return np.asarray(obs)[:, 0].astype(np.int64)


@pytest.mark.parametrize("seed", [0, 1])
def test_table_misses_use_the_members_own_probabilities(seed):
    rng = np.random.default_rng(seed)
    tables = rng.dirichlet(np.ones(3), size=(2, 3))
    missing = rng.dirichlet(np.ones(3), size=2)
    obs = rng.integers(-1, 3, size=(50, 2, 1)).astype(np.float32)  # 50 copies, two seats; -1: not in the table
    acts = {}
    for use in (True, False):
        a, b = (Keyed(tables[k], missing[k], use) for k in range(2))
        bg = BatchedBackground(["p_0", "p_1"], {"p_1": a}, n_copies=50, pool=[b])
        bg.assign(np.arange(25, 50), np.tile([-1, 1], (25, 1)))  # half the copies meet the second member
        bg.seed(7)
        out = np.full((50, 2), -9)
        for _ in range(5):
            bg.fill(out, obs)
        acts[use] = out.copy()
        if use:
            assert len(bg._tables) == 1 and bg._tables[0][1] == [0, 1]
    np.testing.assert_array_equal(acts[True], acts[False])
    assert (acts[True][:, 0] == -9).all()  # the learning seat is left alone


def test_each_policys_cells_are_where_the_table_names_it_copy_major():
    """The cells found with one sort are ``np.nonzero(table == p)``'s, policies playing nowhere included; the
    cells of several members, consecutive or not, are theirs in member order."""
    rng = np.random.default_rng(0)
    pols = [Keyed(np.full((3, 3), 1 / 3), np.full(3, 1 / 3)) for _ in range(5)]
    bg = BatchedBackground(["p_0", "p_1", "p_2"], {"p_1": pols[0], "p_2": pols[1]}, n_copies=40, pool=pols[2:])
    rows = np.column_stack([np.full(40, -1), rng.choice([0, 2, 4], 40), rng.choice([1, 2], 40)])
    bg.assign(np.arange(40), rows)
    bg._index_cells()
    assert bg._cells is not None
    for p in range(5):
        want = np.nonzero(bg.table == p)
        np.testing.assert_array_equal(bg._cells[p][0], want[0])
        np.testing.assert_array_equal(bg._cells[p][1], want[1])
    assert len(bg._cells[3][0]) == 0
    for members in ([1, 2, 3], [4, 0, 2], [2]):
        got = bg._span(members)
        for k in range(2):
            np.testing.assert_array_equal(got[k], np.concatenate([bg._cells[m][k] for m in members]))
