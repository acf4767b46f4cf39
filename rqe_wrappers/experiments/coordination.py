"""SRPO with stock SB3 PPO on the coordination game, against the exact RQE (``rqe coordination``).

The quick start: it trains one shared policy with SRPO for each tau (with seat identity by
default, so tau = 0 is IPPO able to free-ride), and prints each seat's collaboration probability
next to the nearest exact RQE from :mod:`rqe_wrappers.srpo.rqe` (same tau, eps = PPO's
``ent_coef``). Results go to ``<out>/results.json``. Docs: docs/srpo.md.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rqe_wrappers._compat import moved_names
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.common import check_taus
from rqe_wrappers.experiments.settings import setting

DEFAULT_OUT = Path("runs/coordination")


@dataclass(frozen=True)
class CoordinationRun:
    """Settings of one SRPO run on the coordination game (defaults: CPU, about 20 s each)."""

    tau: float = setting(2.0, "risk aversion; 0 = IPPO")
    eps: float = setting(0.2, "entropy weight = PPO ent_coef (the RQE's bounded rationality)")
    cost: float = setting(0.5, "private cost of collaborating, in (0, 1)")
    steps: int = setting(120_000, "agent-steps of training")
    n_copies: int = setting(32, "env copies (two SB3 slots each)")
    n_steps: int = setting(16, "PPO n_steps: steps per SB3 slot per rollout")
    learning_rate: float = setting(3e-3, "initial PPO learning rate (decays linearly to 0)")
    n_epochs: int = setting(10, "PPO epochs per rollout")
    seed: int = setting(0, "PPO and env seed")
    device: str = setting("cpu", '"cpu" or "cuda" (small MLPs are faster on CPU)')
    seat_id: bool = setting(True, "seat identity (a seat one-hot): the shared policy may play each seat differently")

    def __post_init__(self):
        if self.steps < self.n_copies * 2 * self.n_steps:
            rollout = self.n_copies * 2 * self.n_steps
            raise ConfigError(f"steps must cover at least one rollout ({rollout}), got {self.steps}")
        if self.eps <= 0:
            raise ConfigError(f"eps (PPO ent_coef) must be > 0, got {self.eps}")


@dataclass(frozen=True)
class CoordinationSweep:
    """What ``rqe coordination`` runs: one :class:`CoordinationRun` per tau, written to ``out``."""

    tau: tuple[float, ...] = setting((0.0, 2.0, 6.0), "risk aversion(s), one run each; 0 = IPPO")
    out: Path = setting(DEFAULT_OUT, "output directory (results.json)")  # noqa: RUF009 (a field)

    def __post_init__(self):
        check_taus(self.tau)


@dataclass(frozen=True)
class CoordinationOutcome:
    """What one run learned: each seat's partner-role P(collaborate) and the exact RQE nearest to it."""

    model: Any
    p_by_seat: tuple[float, float]
    nearest_rqe: tuple[float, float]
    symmetric_rqe: float

    @property
    def gap(self) -> float:
        """Largest per-seat distance to the nearest exact RQE."""
        return max(abs(a - b) for a, b in zip(self.p_by_seat, self.nearest_rqe, strict=True))


def coordination_ppo(
    run: CoordinationRun, venv: Any, *, seed: int | None = None, device: str | None = None, verbose: int = 0
) -> Any:
    """The paper's PPO for the coordination game on ``venv`` (any path: per-copy or batched)."""
    from stable_baselines3 import PPO

    return PPO(
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
        seed=run.seed if seed is None else seed,
        device=run.device if device is None else device,
        verbose=verbose,
    )


def partner_probs(model: Any, run: CoordinationRun) -> tuple[float, float]:
    """Each seat's P(collaborate) in the partner role (seat one-hot where trained with seat identity)."""
    from rqe_wrappers.envs.matrix import coordination_game
    from rqe_wrappers.sb3 import SB3Policy
    from rqe_wrappers.srpo.roles import PartnerRole

    game = coordination_game(run.cost)
    raw_space = game.observation_space(game.possible_agents[0])
    policy = SB3Policy.from_model(model)
    zero = np.zeros((1, *raw_space.shape), raw_space.dtype)
    p0, p1 = (float(PartnerRole(policy, raw_space, seat=k).action_probs(zero)[0, 1]) for k in (0, 1))
    return p0, p1


def learn_coordination(run: CoordinationRun, verbose: int = 0) -> CoordinationOutcome:
    """Train SRPO on the coordination game; per-seat result and the exact RQE nearest to it."""
    import torch

    from rqe_wrappers.envs.matrix import coordination_game, coordination_payoffs
    from rqe_wrappers.sb3 import PettingZooVecEnv, SRPOCallback
    from rqe_wrappers.srpo.rqe import solve_rqe
    from rqe_wrappers.srpo.shadow import srpo_wrap

    torch.set_num_threads(1)
    venv = PettingZooVecEnv(
        lambda: srpo_wrap(coordination_game(run.cost), tau=run.tau, seat_id=run.seat_id), n_copies=run.n_copies
    )
    model = coordination_ppo(run, venv, verbose=verbose)
    model.learn(run.steps, callback=SRPOCallback())
    venv.close()
    p0, p1 = partner_probs(model, run)
    equilibria = solve_rqe(coordination_payoffs(run.cost), run.tau, run.eps)
    symmetric = [e for e in equilibria if abs(e.pi0[1] - e.pi1[1]) < 1e-6]
    nearest = min(equilibria, key=lambda e: max(abs(e.pi0[1] - p0), abs(e.pi1[1] - p1)))
    return CoordinationOutcome(
        model, (p0, p1), (float(nearest.pi0[1]), float(nearest.pi1[1])), float(symmetric[0].pi0[1])
    )


def train_coordination(run: CoordinationRun, verbose: int = 0):
    """Train SRPO on the coordination game; return ``(model, P(collaborate), exact symmetric RQE)``.

    ``P(collaborate)`` is the partner role's, averaged over the two seats (with ``seat_id=True``
    the seats may differ: :func:`learn_coordination` reports each and the nearest RQE).
    """
    out = learn_coordination(run, verbose)
    return out.model, float(np.mean(out.p_by_seat)), out.symmetric_rqe


def run_coordination(taus, out: Path, **settings: Any) -> list[dict]:
    """Train one SRPO model per tau and compare each seat with the nearest exact RQE; write ``results.json``.

    ``settings``: the other :class:`CoordinationRun` fields. Each row holds the run's settings,
    ``learned_p_collaborate_by_seat``, ``nearest_rqe_by_seat``, ``abs_diff`` (the larger seat gap),
    ``learned_p_collaborate`` (seat mean), ``rqe_p_collaborate`` (the symmetric RQE) and ``seconds``.
    """
    rows = []
    print(f"{'tau':>6} {'P(collab) seat 0':>17} {'seat 1':>7} {'nearest RQE':>13} {'|diff|':>7} {'secs':>6}")
    for tau in taus:
        run = CoordinationRun(tau=tau, **settings)
        t0 = time.perf_counter()
        res = learn_coordination(run)
        secs = time.perf_counter() - t0
        rows.append(
            {
                **asdict(run),
                "learned_p_collaborate": float(np.mean(res.p_by_seat)),
                "learned_p_collaborate_by_seat": list(res.p_by_seat),
                "rqe_p_collaborate": res.symmetric_rqe,
                "nearest_rqe_by_seat": list(res.nearest_rqe),
                "abs_diff": res.gap,
                "seconds": secs,
            }
        )
        p, q = res.p_by_seat
        r0, r1 = res.nearest_rqe
        print(f"{tau:6.2f} {p:17.3f} {q:7.3f} {f'{r0:.3f}/{r1:.3f}':>13} {res.gap:7.3f} {secs:6.1f}", flush=True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"wrote {out / 'results.json'}")
    return rows


__getattr__ = moved_names(__name__, {"add_parser": "rqe_wrappers.cli.coordination"})
