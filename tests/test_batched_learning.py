"""Same learning on the batched path: PPO + SRPOCallback on the coordination game reaches the exact RQE.

The per-copy path is held to the same check at the same settings (tests/test_srpo_callback.py,
``test_learning_reaches_exact_rqe``, marked slow); batched vs per-copy learning curves over seeds are
in benchmarks/bench_batched.py ``curves`` (benchmarks/results/batched-curves-cpu.json, docs/batched.md).
"""

from __future__ import annotations

import torch

from rqe_wrappers.batched import batched_vec_env
from rqe_wrappers.envs.matrix import BatchedMatrixGame, coordination_payoffs
from rqe_wrappers.experiments.coordination import CoordinationRun, coordination_ppo, partner_probs
from rqe_wrappers.sb3 import SRPOCallback
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
    model = coordination_ppo(run, venv, device="cpu")
    model.learn(run.steps, callback=SRPOCallback())
    return partner_probs(model, run)


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
