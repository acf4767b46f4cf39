"""Same learning on the batched path: PPO + SRPOCallback on the coordination game reaches the exact RQE.

The per-copy path is held to the same check at the same settings (tests/test_srpo_callback.py,
``test_learning_reaches_exact_rqe``, marked slow); batched vs per-copy learning curves over seeds are
in benchmarks/bench_batched.py ``curves`` (benchmarks/results/batched-curves-cpu.json, docs/batched.md).
"""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3 import PPO

from rqe_wrappers.batched import batched_vec_env
from rqe_wrappers.envs.matrix import BatchedMatrixGame, coordination_game, coordination_payoffs
from rqe_wrappers.experiments.coordination import CoordinationRun
from rqe_wrappers.sb3 import SB3Policy, SRPOCallback
from rqe_wrappers.srpo.roles import PartnerRole
from rqe_wrappers.srpo.rqe import solve_rqe

torch.set_num_threads(1)


def learn_batched(run: CoordinationRun) -> tuple[float, float]:
    """``learn_coordination``'s PPO set-up on the batched path; each seat's partner-role P(collaborate)."""
    venv = batched_vec_env(
        BatchedMatrixGame(coordination_payoffs(run.cost), run.n_copies, time_limit=False),
        run.tau,
        seed=run.seed,
        seat_id=run.seat_id,
    )
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=run.n_steps,
        batch_size=run.n_steps * venv.num_envs,
        n_epochs=run.n_epochs,
        learning_rate=lambda progress: run.learning_rate * progress,
        ent_coef=run.eps,
        normalize_advantage=False,
        gamma=0.99,
        gae_lambda=1.0,
        policy_kwargs=dict(net_arch=[16]),
        seed=run.seed,
        device="cpu",
    )
    model.learn(run.steps, callback=SRPOCallback())
    raw = coordination_game(run.cost).observation_space("player_0")
    policy = SB3Policy.from_model(model)
    zero = np.zeros((1, 1), np.float32)
    p0, p1 = (float(PartnerRole(policy, raw, seat=k).action_probs(zero)[0, 1]) for k in (0, 1))
    return p0, p1


def test_batched_srpo_reaches_the_exact_rqe_like_the_per_copy_path():
    run = CoordinationRun(tau=3.0, eps=0.2, steps=120_000, seed=0)
    p0, p1 = learn_batched(run)
    symmetric = [
        e for e in solve_rqe(coordination_payoffs(run.cost), run.tau, run.eps) if abs(e.pi0[1] - e.pi1[1]) < 1e-6
    ]
    exact = float(symmetric[0].pi0[1])
    assert exact > 0.6  # risk aversion raised collaboration above the tau = 0 QRE (0.5)
    assert abs((p0 + p1) / 2 - exact) < 0.05, (p0, p1, exact)  # the per-copy path's tolerance
    assert abs(p0 - p1) < 0.05  # SRPO keeps the seats symmetric (seat identity on)
