"""Turn-based SRPO on connect four: the learner's snapshot plays the other seat; does it beat random play?

``python -m rqe_wrappers.experiments.connect_four --steps 60000 --taus 0 1 --seeds 0 1 2`` trains stock
sb3-contrib MaskablePPO through :class:`~rqe_wrappers.sb3.PettingZooVecEnv` (one learning seat per copy,
the learner's lagged snapshot in the other) and scores each learner against uniformly random play.
Results: docs/srpo.md, "Turn-based games".
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.core.policy import Policy, RandomPolicy
from rqe_wrappers.experiments.common import check_count, check_seeds, machine_info, run_jobs, write_json
from rqe_wrappers.srpo.roles import PartnerRole


def _raw_space() -> gym.spaces.Dict:
    from pettingzoo.classic import connect_four_v3

    return gym.spaces.Dict({"observation": connect_four_v3.env().observation_space("player_0")["observation"]})


def play_vs_random(learner: Policy, games: int, seed: int) -> dict[str, float]:
    """``learner`` (on ``{"observation": ...}`` with the legal-move mask) against uniformly random moves.

    Seats alternate game by game; game ``g`` is reset with ``seed + g``. Returns win, draw and loss rates.
    """
    from pettingzoo.classic import connect_four_v3

    rng = np.random.default_rng(seed)
    random_player = RandomPolicy(_raw_space(), gym.spaces.Discrete(7))
    outcome = {"win": 0, "draw": 0, "loss": 0}
    for g in range(games):
        env = connect_four_v3.env()
        env.reset(seed=seed + g)
        me = env.possible_agents[g % 2]
        for agent in env.agent_iter():
            obs, reward, term, trunc, _ = env.last()
            if term or trunc:
                if agent == me:
                    outcome["win" if reward > 0 else "loss" if reward < 0 else "draw"] += 1
                env.step(None)
                continue
            policy = learner if agent == me else random_player
            mask = np.asarray(obs["action_mask"], dtype=bool)[None]
            action, _ = policy.act({"observation": obs["observation"][None]}, rng=rng, mask=mask)
            env.step(int(action[0]))
    return {k: v / games for k, v in outcome.items()}


def train_and_score(tau: float, seed: int, steps: int, games: int, n_copies: int = 8) -> dict[str, Any]:
    """One MaskablePPO learner trained with SRPO (``tau > 0``) or IPPO (``tau = 0``), scored vs random."""
    import torch
    from pettingzoo.classic import connect_four_v3
    from sb3_contrib import MaskablePPO

    from rqe_wrappers.sb3 import PettingZooVecEnv, SB3Policy, SRPOCallback
    from rqe_wrappers.srpo.shadow import srpo_wrap

    torch.set_num_threads(1)
    venv = PettingZooVecEnv(lambda: srpo_wrap(connect_four_v3.env(), tau=tau), n_copies=n_copies)
    venv.seed(seed)
    model = MaskablePPO(
        "MultiInputPolicy", venv, seed=seed, n_steps=256, batch_size=512, normalize_advantage=False, device="cpu"
    )
    untrained = play_vs_random(PartnerRole(SB3Policy.from_model(model), _raw_space()), games, 10_000)
    start = time.perf_counter()
    model.learn(steps, callback=SRPOCallback())
    seconds = time.perf_counter() - start
    trained = play_vs_random(PartnerRole(SB3Policy.from_model(model), _raw_space()), games, 10_000)
    venv.close()
    return {
        "tau": tau,
        "seed": seed,
        "steps": steps,
        "train_seconds": round(seconds, 1),
        "games": games,
        "untrained_vs_random": untrained,
        "trained_vs_random": trained,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60_000, help="learner steps per run (default 60000)")
    p.add_argument("--taus", type=float, nargs="+", default=[0.0, 1.0], help="0 = IPPO (default: 0 1)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="default: 0 1 2")
    p.add_argument("--games", type=int, default=200, help="evaluation games vs random (default 200)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once (default 1)")
    p.add_argument("--out", type=Path, default=Path("runs/connect-four/results.json"), help="results JSON")
    a = p.parse_args(argv)
    steps, games, jobs = check_count(a.steps, "steps"), check_count(a.games, "games"), check_count(a.jobs, "jobs")
    rows: list[dict[str, Any]] = []

    def done(row: dict[str, Any]) -> None:
        rows.append(row)
        before = row["untrained_vs_random"]["win"]
        trained, secs = row["trained_vs_random"], row["train_seconds"]
        print(f"tau={row['tau']:g} seed={row['seed']}: vs random {trained} (untrained: {before:.2f} wins) in {secs} s")

    run_jobs(train_and_score, [(t, s, steps, games) for t in a.taus for s in check_seeds(a.seeds)], jobs, done)
    rows.sort(key=lambda r: (r["tau"], r["seed"]))
    write_json(a.out, {"machine": machine_info(), "rows": rows})
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
