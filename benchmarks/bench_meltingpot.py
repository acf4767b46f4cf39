"""Melting Pot throughput (issue 13, item 6): substrate steps raw vs wrapped, and PPO CnnPolicy population
training agent-steps/s in one process vs subprocess workers, written as JSON.

``step``: env-steps/s of ``collaborative_cooking__circuit`` with uniformly random actions: the raw
substrate (``meltingpot_env``), the same inside ``srpo_wrap`` (the role channels), and
``PettingZooVecEnv(srpo_wrap(...), n_copies, n_workers=k)`` for each ``--workers`` k (0: one process).
``train``: stock PPO ``CnnPolicy`` + ``SRPOCallback`` (what a population member trains with) on
``PettingZooVecEnv(srpo_wrap(meltingpot_env(...)), --copies, n_workers=k)`` for each k, on ``--device``;
agent-steps/s = slots x steps / wall seconds of ``--rollouts`` rollouts (collection and update) after one
untimed warm-up rollout, the best of ``--repeats`` blocks. Episodes are 1,000 steps: a block of
``--n-steps`` x ``--rollouts`` steps holds none or one episode end per copy.

Usage (needs the ``[meltingpot]`` extra, docs/meltingpot.md):
    python benchmarks/bench_meltingpot.py step --workers 0 2 --out benchmarks/results/meltingpot-step-cpu-2core.json
    python benchmarks/bench_meltingpot.py train --device cpu --copies 4 --workers 0 2 \
        --out benchmarks/results/meltingpot-train-cpu-2core.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def make_env(substrate: str, wrapped: bool) -> Any:
    from rqe_wrappers import srpo_wrap
    from rqe_wrappers.envs.meltingpot import meltingpot_env

    env = meltingpot_env(substrate)
    return srpo_wrap(env, tau=1.0) if wrapped else env


class _Factory:
    """A picklable env factory for the subprocess workers."""

    def __init__(self, substrate: str):
        self.substrate = substrate

    def __call__(self) -> Any:
        return make_env(self.substrate, True)


def env_rate(env: Any, steps: int, seed: int = 0) -> float:
    """Env-steps/s of ``steps`` random-action steps of a parallel env (resets included)."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    start = time.perf_counter()
    for _ in range(steps):
        if not env.agents:
            env.reset()
        env.step({a: int(rng.integers(env.action_space(a).n)) for a in env.agents})
    return steps / (time.perf_counter() - start)


def vec_rate(venv: Any, steps: int) -> float:
    """Env-steps/s (VecEnv steps x copies) of ``steps`` steps, every slot playing action 0."""
    venv.reset()
    acts = np.zeros(venv.num_envs, np.int64)
    start = time.perf_counter()
    for _ in range(steps):
        venv.step(acts)
    return steps * venv.n_copies / (time.perf_counter() - start)


def step_mode(args: argparse.Namespace) -> dict[str, Any]:
    from rqe_wrappers.sb3 import PettingZooVecEnv

    rows: dict[str, Any] = {
        "raw_env_steps_per_s": round(env_rate(make_env(args.substrate, False), args.steps)),
        "srpo_wrapped_env_steps_per_s": round(env_rate(make_env(args.substrate, True), args.steps)),
    }
    for k in args.workers:
        venv = PettingZooVecEnv(_Factory(args.substrate), args.copies, n_workers=k)
        venv.seed(0)
        rows[f"vec_env_{k}_workers_env_steps_per_s"] = round(vec_rate(venv, args.steps // args.copies))
        venv.close()
    print(json.dumps(rows), flush=True)
    return {"rows": rows}


def train_mode(args: argparse.Namespace) -> dict[str, Any]:
    from stable_baselines3 import PPO

    from rqe_wrappers.sb3 import PettingZooVecEnv, SRPOCallback

    rows = []
    for k in args.workers:
        venv = PettingZooVecEnv(_Factory(args.substrate), args.copies, n_workers=k)
        venv.seed(0)
        per_rollout = venv.num_envs * args.n_steps
        model = PPO(
            "CnnPolicy",
            venv,
            n_steps=args.n_steps,
            batch_size=min(args.batch_size, per_rollout),
            n_epochs=args.n_epochs,
            normalize_advantage=False,
            device=args.device,
            seed=0,
        )
        callback = SRPOCallback()
        model.learn(per_rollout, callback=callback)  # warm-up
        best = 0.0
        for _ in range(args.repeats):
            start = time.perf_counter()
            model.learn(per_rollout * args.rollouts, callback=callback, reset_num_timesteps=False)
            best = max(best, per_rollout * args.rollouts / (time.perf_counter() - start))
        row = {"workers": k, "copies": args.copies, "slots": venv.num_envs, "agent_steps_per_s": round(best)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        venv.close()
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("step", "train"))
    parser.add_argument("--substrate", default="collaborative_cooking__circuit")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--copies", type=int, default=4, help="env copies (2 learning slots each)")
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 2], help="subprocess workers (0: none)")
    parser.add_argument("--steps", type=int, default=2000, help="env steps per step-mode measurement")
    parser.add_argument("--n-steps", type=int, default=128, help="PPO n_steps")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-epochs", type=int, default=4)
    parser.add_argument("--rollouts", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import torch

    from rqe_wrappers.experiments.common import machine_info

    if args.threads:
        torch.set_num_threads(args.threads)
    result: dict[str, Any] = {
        "benchmark": f"bench_meltingpot {args.mode}",
        "machine": {**machine_info(), "torch_threads": torch.get_num_threads(), "device": args.device},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    result |= step_mode(args) if args.mode == "step" else train_mode(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
