"""Agent-steps/s of RLlib PPO with SRPO (rqe_wrappers.rllib) vs the number of env runners, beside the
SB3 per-copy path (PettingZooVecEnv + SRPOCallback) on the same env and settings, written as JSON.

For each ``--runners`` k: RLlib PPO (new API stack, torch, CPU) on ``srpo_wrap(<env>, tau)`` with
``num_env_runners=k`` (k = 0: sampling in the driver), ``--envs-per-runner`` env copies per runner,
``--batch`` env steps per iteration, ``--epochs`` epochs over one minibatch of the whole batch; after
``--warmup`` untimed iterations, agent-steps/s = agent steps sampled / wall seconds of ``--iters``
iterations (sampling and update), with the iteration's sampling and learner seconds from RLlib's timers.
Then, in the same run, stock SB3 PPO + SRPOCallback on ``PettingZooVecEnv(srpo_wrap(<env>, tau))``
with the same agent steps per rollout (``--envs-per-runner`` copies, ``n_steps`` to match), the same
epochs and network, for ``n_workers`` in {0} and each k >= 1 of ``--runners`` (subprocess workers).

Usage (CPU, no network):
    OMP_NUM_THREADS=1 python benchmarks/bench_rllib.py --runners 1 2 --out benchmarks/results/rllib-cpu-2core.json
    python benchmarks/bench_rllib.py --env cooking --runners 0 1 2 --batch 4096 --out rllib-cooking.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any


def make_env(name: str, tau: float) -> Any:
    from rqe_wrappers import srpo_wrap

    if name == "coordination":
        from rqe_wrappers.envs.matrix import coordination_game

        return srpo_wrap(coordination_game(0.5), tau=tau)
    from rqe_wrappers.envs.cooking import cooking_env

    return srpo_wrap(cooking_env("train"), tau=tau)


def rllib_rate(args: argparse.Namespace, runners: int) -> dict[str, Any]:
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    from rqe_wrappers.rllib import srpo_ppo

    config = (
        PPOConfig()
        .env_runners(num_env_runners=runners, num_envs_per_env_runner=args.envs_per_runner)
        .training(
            train_batch_size_per_learner=args.batch,
            minibatch_size=args.batch,
            num_epochs=args.epochs,
            lr=3e-4,
            entropy_coeff=0.01,
            use_kl_loss=False,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(args.net_arch), vf_share_layers=False))
        .debugging(seed=0)
    )
    env, tau = args.env, args.tau
    algo = srpo_ppo(config, lambda: make_env(env, tau), env_name=f"bench-{env}").build_algo()
    try:
        for _ in range(args.warmup):
            algo.train()
        steps0 = _agent_steps(algo.train())  # the warm-up's last result: lifetime counters so far
        start = time.perf_counter()
        sampling = learning = 0.0
        for _ in range(args.iters):
            result = algo.train()
            sampling += float(result["timers"]["env_runner_sampling_timer"])
            learning += float(result["timers"]["learner_update_timer"])
        wall = time.perf_counter() - start
        steps = _agent_steps(result) - steps0
    finally:
        algo.stop()
    return {
        "method": "rllib",
        "env_runners": runners,
        "agent_steps": steps,
        "wall_s": round(wall, 3),
        "agent_steps_per_s": round(steps / wall),
        "sampling_s_per_iter_ewma": round(sampling / args.iters, 3),
        "learner_s_per_iter_ewma": round(learning / args.iters, 3),
    }


def _agent_steps(result: dict[str, Any]) -> int:
    return int(sum(result["env_runners"]["num_agent_steps_sampled_lifetime"].values()))


def sb3_rate(args: argparse.Namespace, n_workers: int) -> dict[str, Any]:
    import torch
    from stable_baselines3 import PPO

    from rqe_wrappers.sb3 import PettingZooVecEnv, SRPOCallback

    torch.set_num_threads(1)
    env, tau = args.env, args.tau
    venv = PettingZooVecEnv(lambda: make_env(env, tau), n_copies=args.envs_per_runner, n_workers=n_workers)
    agents_per_step = venv.num_envs  # slots: one per learning seat per copy
    seats = agents_per_step // args.envs_per_runner
    n_steps = max(1, args.batch * seats // agents_per_step)
    per_rollout = n_steps * agents_per_step
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=n_steps,
        batch_size=per_rollout,
        n_epochs=args.epochs,
        learning_rate=3e-4,
        ent_coef=0.01,
        normalize_advantage=False,
        policy_kwargs=dict(net_arch=list(args.net_arch)),
        device="cpu",
        seed=0,
    )
    callback = SRPOCallback()
    model.learn(per_rollout * args.warmup, callback=callback)
    start = time.perf_counter()
    model.learn(per_rollout * args.iters, callback=callback, reset_num_timesteps=False)
    wall = time.perf_counter() - start
    venv.close()
    return {
        "method": "sb3_per_copy",
        "n_workers": n_workers,
        "agent_steps": per_rollout * args.iters,
        "wall_s": round(wall, 3),
        "agent_steps_per_s": round(per_rollout * args.iters / wall),
    }


def versions() -> dict[str, Any]:
    import gymnasium
    import pettingzoo
    import ray

    from rqe_wrappers.experiments.common import machine_info

    out: dict[str, Any] = {**machine_info(), "ray": ray.__version__, "gymnasium": gymnasium.__version__}
    out["pettingzoo"] = pettingzoo.__version__
    out["device"] = "cpu"
    out["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    if hasattr(os, "getloadavg"):
        out["load_average_at_start"] = os.getloadavg()[0]
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=("coordination", "cooking"), default="coordination")
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 2], help="RLlib num_env_runners to measure")
    parser.add_argument("--envs-per-runner", type=int, default=32, help="env copies per runner (SB3: n_copies)")
    parser.add_argument("--batch", type=int, default=1024, help="env steps per iteration / rollout")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--iters", type=int, default=4, help="timed iterations (rollouts)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    parser.add_argument("--tau", type=float, default=2.0)
    parser.add_argument("--net-arch", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="ray.init(num_cpus=...)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if any(k < 0 for k in args.runners) or min(args.batch, args.iters, args.envs_per_runner) < 1:
        parser.error("--runners must be >= 0; --batch, --iters and --envs-per-runner >= 1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray
    import torch

    torch.set_num_threads(1)
    machine = versions()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    rows = []
    try:
        for k in args.runners:
            rows.append(rllib_rate(args, k))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        ray.shutdown()
    for w in sorted({0, *[k for k in args.runners if k >= 1]}):
        rows.append(sb3_rate(args, w))
        print(json.dumps(rows[-1]), flush=True)
    sb3 = {r["n_workers"]: r["agent_steps_per_s"] for r in rows if r["method"] == "sb3_per_copy"}
    for r in rows:
        if r["method"] == "rllib":
            r["over_sb3_same_workers"] = round(r["agent_steps_per_s"] / sb3.get(r["env_runners"], sb3[0]), 3)
            r["over_sb3_in_process"] = round(r["agent_steps_per_s"] / sb3[0], 3)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    out = {"benchmark": "bench_rllib", "machine": machine, "settings": settings, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
