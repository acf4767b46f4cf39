"""``rqe train``: SRPO with stock SB3 PPO, on the coordination game (default) or Tag.

The coordination run is the quick start: it trains a shared policy with SRPO for each tau, and
prints its collaboration probability next to the exact symmetric RQE from :mod:`rqe_wrappers.srpo.rqe`
(same tau, eps = PPO's ``ent_coef``). Results go to ``<out>/results.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rqe_wrappers.errors import ConfigError


@dataclass(frozen=True)
class CoordinationRun:
    """Settings of one SRPO run on the coordination game (defaults: CPU, about 20 s each)."""

    tau: float = 2.0
    eps: float = 0.2
    cost: float = 0.5
    steps: int = 120_000
    n_copies: int = 32
    n_steps: int = 16
    learning_rate: float = 3e-3
    n_epochs: int = 10
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        if self.steps < self.n_copies * 2 * self.n_steps:
            raise ConfigError(f"steps must cover at least one rollout ({self.n_copies * 2 * self.n_steps}), got {self.steps}")
        if self.eps <= 0:
            raise ConfigError(f"eps (PPO ent_coef) must be > 0, got {self.eps}")


def train_coordination(run: CoordinationRun, verbose: int = 0):
    """Train SRPO on the coordination game; return ``(model, partner P(collaborate), exact symmetric RQE)``."""
    import torch
    from stable_baselines3 import PPO

    from rqe_wrappers.envs.matrix import coordination_game, coordination_payoffs
    from rqe_wrappers.srpo.roles import PARTNER, one_hot
    from rqe_wrappers.srpo.rqe import solve_rqe
    from rqe_wrappers.sb3 import PettingZooVecEnv, SB3Policy, SRPOCallback
    from rqe_wrappers.srpo.shadow import srpo_wrap

    torch.set_num_threads(1)
    venv = PettingZooVecEnv(lambda: srpo_wrap(coordination_game(run.cost), tau=run.tau), n_copies=run.n_copies)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=run.n_steps,
        batch_size=run.n_steps * venv.num_envs,
        n_epochs=run.n_epochs,
        learning_rate=lambda progress: run.learning_rate * progress,  # linear decay damps GDA cycling
        ent_coef=run.eps,
        normalize_advantage=False,  # keeps ent_coef == eps (see docs/srpo.md)
        gamma=0.99,
        gae_lambda=1.0,
        policy_kwargs=dict(net_arch=[16]),
        seed=run.seed,
        device=run.device,
        verbose=verbose,
    )
    model.learn(run.steps, callback=SRPOCallback())
    obs = np.concatenate([[0.0], one_hot(PARTNER)]).astype(np.float32)[None]
    p_collab = float(SB3Policy.from_model(model).action_probs(obs)[0, 1])
    symmetric = [e for e in solve_rqe(coordination_payoffs(run.cost), run.tau, run.eps) if abs(e.pi0[1] - e.pi1[1]) < 1e-6]
    venv.close()
    return model, p_collab, float(symmetric[0].pi0[1])


def run_coordination(taus, out: Path, **settings) -> list[dict]:
    """Train one SRPO model per tau and compare with the exact RQE; write ``results.json``."""
    rows = []
    print(f"{'tau':>6} {'learned P(collab)':>18} {'exact RQE':>10} {'|diff|':>7} {'secs':>6}")
    for tau in taus:
        run = CoordinationRun(tau=tau, **settings)
        t0 = time.perf_counter()
        _, learned, exact = train_coordination(run)
        secs = time.perf_counter() - t0
        rows.append({**asdict(run), "learned_p_collaborate": learned, "rqe_p_collaborate": exact,
                     "abs_diff": abs(learned - exact), "seconds": secs})
        print(f"{tau:6.2f} {learned:18.3f} {exact:10.3f} {abs(learned - exact):7.3f} {secs:6.1f}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"wrote {out / 'results.json'}")
    return rows


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train SRPO with stock SB3 PPO (default: coordination game, CPU)")
    p.add_argument("--env", choices=["coordination"], default="coordination")
    p.add_argument("--tau", type=float, nargs="+", default=[0.0, 2.0, 6.0], help="risk aversion(s); 0 = IPPO")
    p.add_argument("--n-copies", type=int, default=CoordinationRun.n_copies)
    p.add_argument("--eps", type=float, default=CoordinationRun.eps, help="entropy weight = PPO ent_coef")
    p.add_argument("--cost", type=float, default=CoordinationRun.cost)
    p.add_argument("--steps", type=int, default=CoordinationRun.steps)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help='"cpu" or "cuda" (small MLPs are faster on CPU)')
    p.add_argument("--out", type=Path, default=Path("runs/coordination"))
    p.set_defaults(func=lambda a: run_coordination(
        a.tau, a.out, eps=a.eps, cost=a.cost, steps=a.steps, n_copies=a.n_copies, seed=a.seed, device=a.device) and 0)
