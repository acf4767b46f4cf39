"""SRPO on turn-based (AEC) games: the other seats of every copy are played by the learner's lagged
snapshot, which SRPOCallback shares at training start and at every rollout end (issue 8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from pettingzoo.classic import tictactoe_v3
from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from rqe_wrappers import PettingZooVecEnv, SB3Policy, SRPOCallback, srpo_wrap
from rqe_wrappers.core.snapshot import shared
from rqe_wrappers.errors import MissingCallbackWarning


class Ledger(BaseCallback):
    """After SRPOCallback at each rollout end: the shared snapshot and the learner's weights then."""

    def __init__(self):
        super().__init__()
        self.rows: list[tuple[object, dict[str, th.Tensor]]] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        weights = {k: v.detach().clone() for k, v in self.model.policy.state_dict().items()}
        self.rows.append((shared("learner"), weights))


def _same(policy: SB3Policy, weights: dict[str, th.Tensor]) -> bool:
    mine = policy.get_weights()
    return set(mine) == set(weights) and all(np.array_equal(mine[k], weights[k].numpy()) for k in weights)


@pytest.fixture
def counted_acts(monkeypatch):
    """Counts SB3Policy.act calls per policy object: who actually played the other seats."""
    calls: dict[int, int] = {}
    original = SB3Policy.act

    def act(self, obs, **kwargs):
        calls[id(self)] = calls.get(id(self), 0) + 1
        return original(self, obs, **kwargs)

    monkeypatch.setattr(SB3Policy, "act", act)
    return calls


def test_other_seats_play_the_learners_lagged_snapshot(counted_acts):
    venv = PettingZooVecEnv(lambda: srpo_wrap(tictactoe_v3.env(), tau=1.0), n_copies=2)
    assert venv.uses_snapshot and venv.snapshot_name == "learner"
    model = MaskablePPO(
        "MultiInputPolicy",
        venv,
        seed=0,
        n_steps=16,
        batch_size=32,
        n_epochs=1,
        policy_kwargs={"net_arch": [8]},
        normalize_advantage=False,
    )
    initial = {k: v.detach().clone() for k, v in model.policy.state_dict().items()}
    assert shared("learner") is None
    ledger = Ledger()
    model.learn(128, callback=CallbackList([SRPOCallback(), ledger]))  # 4 rollouts of 16 steps x 2 slots

    snapshots = [row[0] for row in ledger.rows]
    assert len(ledger.rows) == 4 and all(isinstance(s, SB3Policy) for s in snapshots)
    assert len({id(s) for s in snapshots}) == 4  # a fresh copy every rollout
    for snap, weights in ledger.rows:  # shared at rollout end = the learner before that update
        assert _same(snap, weights)
    final = {k: v.detach() for k, v in model.policy.state_dict().items()}
    assert not _same(snapshots[-1], final)  # ... so the seats lag the learner by one update
    assert _same(snapshots[0], initial) and not _same(snapshots[1], initial)  # no update before the first
    # the snapshots of rollout ends 1-3 each played the other seats during the next rollout
    for snap in snapshots[:-1]:
        assert counted_acts.get(id(snap), 0) > 0
    assert counted_acts.get(id(snapshots[-1]), 0) == 0  # no rollout after the last one
    venv.close()


def test_snapshot_goes_through_the_venv_to_worker_processes(monkeypatch):
    calls: list[tuple[str, str]] = []
    original = PettingZooVecEnv.share_snapshot

    def share_snapshot(self, name, policy):
        calls.append((name, type(policy).__name__))
        original(self, name, policy)  # the path that reaches workers (tests/test_vec_env.py)

    monkeypatch.setattr(PettingZooVecEnv, "share_snapshot", share_snapshot)
    venv = PettingZooVecEnv(lambda: srpo_wrap(tictactoe_v3.env(), tau=1.0), n_copies=2, n_workers=1)
    model = MaskablePPO(
        "MultiInputPolicy",
        venv,
        seed=0,
        n_steps=8,
        batch_size=16,
        policy_kwargs={"net_arch": [8]},
        normalize_advantage=False,
    )
    model.learn(32, callback=SRPOCallback())  # 2 rollouts
    assert calls == [("learner", "SB3Policy")] * 3  # training start + each rollout end
    venv.close()


def test_parallel_envs_share_nothing():
    from rqe_wrappers.envs.matrix import coordination_game

    venv = PettingZooVecEnv(lambda: srpo_wrap(coordination_game(0.5), tau=1.0), n_copies=2)
    assert not venv.uses_snapshot
    model = MaskablePPO(
        "MlpPolicy", venv, seed=0, n_steps=8, batch_size=16, policy_kwargs={"net_arch": [8]}, normalize_advantage=False
    )
    callback = SRPOCallback()
    model.learn(16, callback=callback)
    assert callback.snapshot_name is None and shared("learner") is None


def test_unshared_snapshot_warns_once():
    venv = PettingZooVecEnv(tictactoe_v3.env, n_copies=2)
    venv.reset()
    actions = np.array([np.flatnonzero(m)[0] for m in venv.action_masks()])
    with pytest.warns(MissingCallbackWarning, match="play uniformly at random"):
        venv.step(actions)
    venv.close()


def test_connect_four_driver_trains_and_scores(tmp_path):
    import json

    from rqe_wrappers.experiments import connect_four

    out = tmp_path / "c4.json"
    assert connect_four.main(["--steps", "256", "--taus", "1", "--seeds", "0", "--games", "4", "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["tau"] == 1.0 and row["steps"] == 256 and row["games"] == 4
    for key in ("untrained_vs_random", "trained_vs_random"):
        assert sum(row[key].values()) == pytest.approx(1.0)


def test_play_vs_random_counts_every_game():
    import gymnasium as gym

    from rqe_wrappers.core.policy import RandomPolicy
    from rqe_wrappers.experiments.connect_four import _raw_space, play_vs_random

    rates = play_vs_random(RandomPolicy(_raw_space(), gym.spaces.Discrete(7)), games=10, seed=3)
    assert sum(rates.values()) == pytest.approx(1.0) and set(rates) == {"win", "draw", "loss"}
    assert rates == play_vs_random(RandomPolicy(_raw_space(), gym.spaces.Discrete(7)), games=10, seed=3)  # seeded


def test_rewards_handed_out_on_dead_steps_are_kept():
    """4-player OpenSpiel Hanabi pays on dead steps; the shadow wrapper used to drop those (api_test failed
    for 4 of these 20 seeds; the raw env passes all)."""
    pytest.importorskip("pyspiel")
    from pettingzoo.test import api_test

    from rqe_wrappers.conformance import CASES, wrapped

    case = next(c for c in CASES if c.id == "openspiel/hanabi-4p")
    for seed in range(20):
        np.random.seed(seed)  # api_test samples with numpy's global generator
        api_test(wrapped(case, "srpo")(), num_cycles=50)


def test_game_over_before_the_learner_moves_is_one_masked_step():
    """Leduc: when the other seat ends the game first, the slot shows one all-false mask, then done."""
    from pettingzoo.classic import leduc_holdem_v4

    venv = PettingZooVecEnv(leduc_holdem_v4.env, n_copies=2)
    venv.seed(0)
    venv.reset()
    rng = np.random.default_rng(0)
    seen = 0
    for _ in range(400):
        masks = venv.action_masks()
        empty = ~masks.any(axis=1)
        actions = np.array([rng.choice(np.flatnonzero(m)) if m.any() else 0 for m in masks])
        _, _, dones, _ = venv.step(actions)
        assert dones[empty].all()  # never more than one step without a legal move
        seen += int(empty.sum())
    assert seen > 0  # the case happens (about one slot-step in nine here)
    venv.close()
