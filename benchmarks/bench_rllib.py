"""Agent-steps/s of RLlib PPO with SRPO (rqe_wrappers.rllib) vs the number of env runners, beside the
SB3 per-copy path (PettingZooVecEnv + SRPOCallback) on the same env and settings, written as JSON.

For each ``--runners`` k: RLlib PPO (new API stack, torch) on ``srpo_wrap(<env>, tau)`` with
``num_env_runners=k`` (k = 0: sampling in the driver), ``--envs-per-runner`` env copies per runner,
``--batch`` env steps per iteration in all (``--batch / max(1, --learners)`` per learner), ``--epochs``
epochs over one minibatch of each learner's batch; ``--learners`` N remote learners (0: one local
learner in the driver) with ``--gpus-per-learner`` G GPUs each (N = 0, G = 1: the local learner on
GPU 0). After ``--warmup`` untimed iterations, agent-steps/s = agent steps sampled / wall seconds of
``--iters`` iterations (sampling and update), with the iteration's sampling and learner seconds from
RLlib's timers. Then, in the same run, stock SB3 PPO + SRPOCallback on
``PettingZooVecEnv(srpo_wrap(<env>, tau))`` on ``--sb3-device`` with the same agent steps per rollout
(``--envs-per-runner`` copies, ``n_steps`` to match), the same epochs and network, for ``n_workers``
in {0} and each k >= 1 of ``--runners`` (subprocess workers); ``--no-sb3`` skips it.

The JSON is rewritten after every measurement (a run cut short keeps what it measured); ``--append``
adds this run's rows to those already in ``--out`` (e.g. a second learner set-up), ``--plot`` draws
agent-steps/s against the number of env runners / SB3 workers from the JSON written (a PNG).
``--env tag`` (the paper's Tag, runner fixed to a random policy) needs mpe2. ``--method aht`` measures
minimax-Bayes AHT instead (``aht_ppo`` on the cooking gridworld with five scripted partners, nature's
maximin-utility prior at ``--nature-lr``; RLlib only): its rows also record nature's prior and the
utility it holds per scenario after the timed iterations.

Usage (CPU, no network):
    OMP_NUM_THREADS=1 python benchmarks/bench_rllib.py --runners 1 2 --out benchmarks/results/rllib-cpu-2core.json
    python benchmarks/bench_rllib.py --env cooking --runners 0 1 2 --batch 4096 --out rllib-cooking.json
GPU (one GPU learner in the driver, SB3 on CUDA; then 2 GPU learners added to the same JSON):
    python benchmarks/bench_rllib.py --env cooking --runners 1 2 4 8 15 --gpus-per-learner 1 \
        --sb3-device cuda --out rllib-gpu.json --plot rllib-gpu.png
    python benchmarks/bench_rllib.py --env cooking --runners 8 15 --learners 2 --gpus-per-learner 1 \
        --no-sb3 --append --out rllib-gpu.json --plot rllib-gpu.png
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
    if name == "tag":
        from rqe_wrappers import RandomPolicy
        from rqe_wrappers.envs.tag import RUNNER, seat_spaces, tag_env

        return srpo_wrap(tag_env(), tau=tau, fixed={RUNNER: RandomPolicy(*seat_spaces(RUNNER))})
    from rqe_wrappers.envs.cooking import cooking_env

    return srpo_wrap(cooking_env("train"), tau=tau)


def make_aht_env(lr: float) -> Any:
    """Minimax-Bayes AHT on the cooking gridworld: the learner's seat and one background partner drawn
    by nature from five scripted ones (uniformly random, or standing / moving one way all game)."""
    from rqe_wrappers import aht_wrap
    from rqe_wrappers.core.policy import ConstantPolicy, RandomPolicy
    from rqe_wrappers.envs.cooking import ACTION_NAMES, cooking_env

    env = cooking_env("train")
    obs, act = env.observation_space(env.possible_agents[0]), env.action_space(env.possible_agents[0])
    partners: dict[str, Any] = {"random": RandomPolicy(obs, act)}
    partners.update({f"always-{name}": ConstantPolicy(obs, act, a) for a, name in enumerate(ACTION_NAMES) if a != 1})
    return aht_wrap(env, partners, "maximin-utility", lr=lr)


def rllib_rate(args: argparse.Namespace, runners: int) -> dict[str, Any]:
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    from rqe_wrappers.rllib import srpo_ppo

    per_learner = max(1, args.batch // max(1, args.learners))
    config = (
        PPOConfig()
        .env_runners(num_env_runners=runners, num_envs_per_env_runner=args.envs_per_runner)
        .learners(num_learners=args.learners, num_gpus_per_learner=args.gpus_per_learner)
        .training(
            train_batch_size_per_learner=per_learner,
            minibatch_size=per_learner,
            num_epochs=args.epochs,
            lr=3e-4,
            entropy_coeff=0.01,
            use_kl_loss=False,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(args.net_arch), vf_share_layers=False))
        .debugging(seed=0)
    )
    env, tau, lr = args.env, args.tau, args.nature_lr
    start = time.perf_counter()
    if args.method == "aht":
        from rqe_wrappers.rllib import aht_ppo

        algo = aht_ppo(config, lambda: make_aht_env(lr), env_name=f"bench-aht-{env}").build_algo()
    else:
        algo = srpo_ppo(config, lambda: make_env(env, tau), env_name=f"bench-{env}").build_algo()
    build = time.perf_counter() - start
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
        nature = _nature(algo) if args.method == "aht" else {}
    finally:
        algo.stop()
    return {
        "method": "rllib" if args.method == "srpo" else "rllib_aht",
        **nature,
        "env_runners": runners,
        "learners": args.learners,
        "gpus_per_learner": args.gpus_per_learner,
        "train_batch_size_per_learner": per_learner,
        "agent_steps": steps,
        "wall_s": round(wall, 3),
        "agent_steps_per_s": round(steps / wall),
        "sampling_s_per_iter_ewma": round(sampling / args.iters, 3),
        "learner_s_per_iter_ewma": round(learning / args.iters, 3),
        "build_s": round(build, 3),
    }


def _nature(algo: Any) -> dict[str, Any]:
    """Nature's state after training (AHT): its prior and the utility it holds per scenario."""
    cb = algo.callbacks[0] if isinstance(algo.callbacks, list) else algo.callbacks
    return {
        "scenarios": list(cb.scenarios.ids),
        "nature_prior": [round(float(b), 4) for b in cb.nature.beta],
        "scenario_utilities": [round(float(u), 3) for u in cb.filled_utilities()],
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
        device=args.sb3_device,
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
        "device": str(model.device),
        "agent_steps": per_rollout * args.iters,
        "wall_s": round(wall, 3),
        "agent_steps_per_s": round(per_rollout * args.iters / wall),
    }


def versions() -> dict[str, Any]:
    import gymnasium
    import pettingzoo
    import ray
    import torch

    from rqe_wrappers.experiments.common import machine_info

    out: dict[str, Any] = {**machine_info(), "ray": ray.__version__, "gymnasium": gymnasium.__version__}
    out["pettingzoo"] = pettingzoo.__version__
    out["numpy"] = __import__("numpy").__version__
    cuda = torch.cuda.is_available()
    out["device"] = "cuda" if cuda else "cpu"
    out["torch_cuda"] = torch.version.cuda
    out["gpu_count"] = torch.cuda.device_count() if cuda else 0
    out["gpu_names"] = [torch.cuda.get_device_name(i) for i in range(out["gpu_count"])]
    out["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS")
    if hasattr(os, "sched_getaffinity"):
        out["cpus_usable"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        out["load_average_at_start"] = os.getloadavg()[0]
    return out


def with_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with each RLlib row's rate over SB3's at the same worker count and in process (when measured)."""
    sb3 = {r["n_workers"]: r["agent_steps_per_s"] for r in rows if r["method"] == "sb3_per_copy"}
    out = []
    for r in rows:
        r = {k: v for k, v in r.items() if not k.startswith("over_sb3_")}
        if r["method"] == "rllib" and 0 in sb3:
            r["over_sb3_same_workers"] = round(r["agent_steps_per_s"] / sb3.get(r["env_runners"], sb3[0]), 3)
            r["over_sb3_in_process"] = round(r["agent_steps_per_s"] / sb3[0], 3)
        out.append(r)
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    """Agent-steps/s against env runners (RLlib, one line per learner set-up) and SB3 workers, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    lines: dict[str, list[tuple[int, int]]] = {}
    for r in result["rows"]:
        if r["method"] == "rllib":
            learners, gpus = r.get("learners", 0), r.get("gpus_per_learner", 0)
            where = (f"{gpus:g} GPU" + (" each" if learners > 1 else "")) if gpus else "CPU"
            label = f"RLlib, {f'{learners} remote' if learners else 'local'} learner{'s' * (learners > 1)} ({where})"
            lines.setdefault(label, []).append((r["env_runners"], r["agent_steps_per_s"]))
        else:
            label = f"SB3 per-copy ({r.get('device', 'cpu')}), subprocess workers"
            lines.setdefault(label, []).append((r["n_workers"], r["agent_steps_per_s"]))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in lines.items():
        points.sort()
        marker = "o" if label.startswith("RLlib") else "s"
        ax.plot([x for x, _ in points], [y for _, y in points], marker=marker, label=label)
    machine, settings = result["machine"], result["settings"]
    gpu = ", ".join(sorted(set(machine.get("gpu_names") or []))) or "no GPU"
    ax.set_title(
        f"{settings['env']}: batch {settings['batch']}, {settings['envs_per_runner']} copies/runner, "
        f"{machine.get('cpu_count')} CPUs, {gpu}",
        fontsize=9,
    )
    ax.set_xlabel("env runners (RLlib) / subprocess workers (SB3); 0 = in the driver")
    ax.set_ylabel("agent steps / s (sampling + update)")
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    fig.savefig(partial, dpi=120, format="png")
    partial.replace(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=("coordination", "cooking", "tag"), default="coordination")
    parser.add_argument(
        "--method",
        choices=("srpo", "aht"),
        default="srpo",
        help="srpo: srpo_wrap(<env>); aht: minimax-Bayes on the cooking gridworld with five scripted partners "
        "(aht_ppo; RLlib only, rows record nature's prior)",
    )
    parser.add_argument("--nature-lr", type=float, default=0.05, help="nature's step size (--method aht)")
    parser.add_argument("--runners", type=int, nargs="+", default=[1, 2], help="RLlib num_env_runners to measure")
    parser.add_argument("--envs-per-runner", type=int, default=32, help="env copies per runner (SB3: n_copies)")
    parser.add_argument("--batch", type=int, default=1024, help="env steps per iteration / rollout")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--iters", type=int, default=4, help="timed iterations (rollouts)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    parser.add_argument("--tau", type=float, default=2.0)
    parser.add_argument("--net-arch", type=int, nargs="+", default=[64, 64])
    parser.add_argument("--learners", type=int, default=0, help="RLlib num_learners (0: one local learner)")
    parser.add_argument("--gpus-per-learner", type=float, default=0, help="RLlib num_gpus_per_learner")
    parser.add_argument("--sb3-device", default="cpu", help="SB3 PPO device (cpu, cuda, ...)")
    parser.add_argument("--no-sb3", action="store_true", help="RLlib only (no SB3 comparison)")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="ray.init(num_cpus=...)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--append", action="store_true", help="add the rows to those already in --out")
    parser.add_argument("--plot", type=Path, help="PNG of agent-steps/s vs runners / workers")
    args = parser.parse_args(argv)
    if any(k < 0 for k in args.runners) or min(args.batch, args.iters, args.envs_per_runner) < 1:
        parser.error("--runners must be >= 0; --batch, --iters and --envs-per-runner >= 1")
    if args.learners < 0 or args.gpus_per_learner < 0:
        parser.error("--learners and --gpus-per-learner must be >= 0")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import ray
    import torch

    torch.set_num_threads(1)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    out: dict[str, Any] = {"benchmark": "bench_rllib", "machine": versions(), "settings": settings, "rows": []}
    if args.append and args.out.exists():
        before = json.loads(args.out.read_text())
        out = {**before, "rows": before["rows"], "appended": [*before.get("appended", []), settings]}
    rows: list[dict[str, Any]] = out["rows"]

    def record(row: dict[str, Any]) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)
        out["rows"] = with_ratios(rows)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        partial = args.out.with_name(args.out.name + ".part")  # replaced whole: a kill never leaves half a file
        partial.write_text(json.dumps(out, indent=2) + "\n")
        partial.replace(args.out)
        if args.plot:
            plot(out, args.plot)

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    try:
        for k in args.runners:
            record(rllib_rate(args, k))
    finally:
        ray.shutdown()
    if not args.no_sb3:
        for w in sorted({0, *[k for k in args.runners if k >= 1]}):
            record(sb3_rate(args, w))
    print(f"wrote {args.out}" + (f" and {args.plot}" if args.plot else ""))
    return out


if __name__ == "__main__":
    main()
