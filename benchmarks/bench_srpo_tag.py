"""SRPO's overhead on the SRPO paper's Tag (appendix D.3), written as JSON.

On :func:`rqe_wrappers.envs.tag.tag_env` (1 runner, 2 chasers, 2 obstacles, 100 cycles, rewards
x0.1), in one run on one machine so the ratios compare like with like:

1. **PPO wall time, SRPO vs IPPO**: :func:`rqe_wrappers.experiments.tag.train_chasers` (the
   experiment's own code path: ``srpo_wrap`` + ``PettingZooVecEnv`` + stock PPO with
   ``normalize_advantage=False`` + ``SRPOCallback``) at ``tau=1`` and at ``tau=0`` (same wrapper,
   no shadow), same settings and agent-steps; the runner is the scripted ``tag/evasive-runner``
   (no trained runner needed). Target: ``srpo_vs_ippo_wall <= 1.05``.
2. **env-steps/s**, raw ``tag_env()`` vs ``srpo_wrap(tag_env(), tau=1, fixed={runner: random})``,
   pre-drawn random actions (``bench_adapter.env_loop``). Target: ``srpo_vs_raw_env >= 0.9``. The
   srpo env also runs the runner's ``RandomPolicy`` each step, which the raw loop gets for free;
   ``srpo_shadow_only`` (no fixed seat) isolates the shadow wrapper's own cost.
3. **SB3 PPO agent-steps/s, our adapter vs SuperSuit's** (``pettingzoo_env_to_vec_env_v1`` +
   ``concat_vec_envs_v1``; no seed, SuperSuit's VecEnv has none) on the srpo-wrapped Tag, no
   callback (``bench_adapter.ppo_run``), in-process and with worker processes.

Timings are the best of ``--repeats`` interleaved repetitions (the least disturbed by other load).
In-process runs are also timed in CPU seconds of this process (``*_cpu`` ratios; the env loops'
``srpo_vs_raw_env_cpu_paired_median`` is the median over back-to-back pairs), which other load on a
shared machine disturbs far less than wall time. Runs offline on CPU or CUDA (``--device cuda``);
small MLPs are usually faster on CPU in SB3.

Usage:
    python benchmarks/bench_srpo_tag.py --steps 16384 --out benchmarks/results/srpo-tag-cpu.json
    python benchmarks/bench_srpo_tag.py --device cuda --out benchmarks/results/srpo-tag-cuda.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")  # SuperSuit / PettingZoo deprecation chatter

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_adapter, also when run from elsewhere
import bench_adapter  # noqa: E402  (env_loop, ppo_run, versions)

RUNNER_FOR_BENCH = "tag/evasive-runner"


def paper_tag():
    from rqe_wrappers.envs.tag import tag_env

    return tag_env()


def paper_srpo_tag(tau: float = 1.0):
    """The paper's Tag under ``srpo_wrap`` with a random runner (as ``bench_adapter.srpo_tag``)."""
    from rqe_wrappers import RandomPolicy, srpo_wrap
    from rqe_wrappers.envs.tag import RUNNER, seat_spaces

    env = srpo_wrap(paper_tag(), tau=tau, fixed={RUNNER: RandomPolicy(*seat_spaces(RUNNER))})
    env.srpo_callback_attached = True  # timed without SRPOCallback: silence the reminder
    return env


def paper_shadow_only_tag():
    """``srpo_wrap(tag_env(), tau=1)`` with no fixed seat (all three act): the shadow wrapper's own cost."""
    from rqe_wrappers import srpo_wrap

    env = srpo_wrap(paper_tag(), tau=1.0)
    env.srpo_callback_attached = True
    return env


@contextlib.contextmanager
def adapter_env(make):
    """Point ``bench_adapter``'s env maker at ``make`` (its ``ppo_run`` builds ``srpo_tag()``)."""
    saved = bench_adapter.srpo_tag
    bench_adapter.srpo_tag = make
    try:
        yield
    finally:
        bench_adapter.srpo_tag = saved


def chasers_run(tau: float, steps: int, n_copies: int, device: str) -> dict:
    from rqe_wrappers.experiments.tag import CHASER_PPO, train_chasers

    settings = replace(CHASER_PPO, n_copies=n_copies)
    _, m = train_chasers(tau, steps, RUNNER_FOR_BENCH, seed=0, device=device, settings=settings, eval_episodes=1)
    return {k: m[k] for k in ("seconds", "cpu_seconds", "agent_steps_per_s")} | {"agent_steps": m["steps"]}


def env_rates(make, steps: int) -> tuple[float, float | None]:
    """``(env-steps per wall second, per CPU second of this process)`` from ``bench_adapter.env_loop``."""
    rates = bench_adapter.env_loop(make, steps)
    return (float(rates[0]), float(rates[1])) if isinstance(rates, tuple) else (float(rates), None)


def machine(device: str) -> dict:
    import torch

    from rqe_wrappers.experiments.common import machine_info

    cuda = torch.cuda.is_available()
    return {
        **machine_info(),
        "torch_cuda": torch.version.cuda,
        "device": device,
        "device_name": torch.cuda.get_device_name(0) if cuda and device.startswith("cuda") else "cpu",
        "cuda_available": cuda,
        "load_avg_1m_at_end": os.getloadavg()[0],
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=16_384, help="PPO agent-steps per run (default 16384)")
    ap.add_argument("--n-copies", type=int, default=8, help="Tag copies per PPO run (2 chaser slots each)")
    ap.add_argument("--device", default="cpu", help="PPO device: cpu or cuda")
    ap.add_argument("--out", default="benchmarks/results/srpo-tag-cpu.json", help="where to write the JSON")
    ap.add_argument("--repeats", type=int, default=2, help="interleaved repetitions; the best is reported")
    ap.add_argument("--env-steps", type=int, default=2000, help="env-steps per env-throughput repetition")
    ap.add_argument("--env-repeats", type=int, default=5, help="back-to-back raw/srpo env-loop pairs")
    ap.add_argument(
        "--n-workers",
        "--workers",
        dest="workers",
        type=int,
        nargs="*",
        default=[0, 2],
        help="VecEnv worker processes (n_workers) for the adapter comparison (0 = in-process); none to "
        "skip it (--workers: old name)",
    )
    args = ap.parse_args(argv)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            ap.error("--device cuda, but torch sees no CUDA device")

    import torch

    torch.set_num_threads(1)
    t_start = time.perf_counter()

    # 1. SRPO vs IPPO, whole training loop (interleaved: IPPO, SRPO, IPPO, SRPO, ...)
    runs: dict[str, list[dict]] = {"ippo_tau0": [], "srpo_tau1": []}
    for _ in range(args.repeats):
        runs["ippo_tau0"].append(chasers_run(0.0, args.steps, args.n_copies, args.device))
        runs["srpo_tau1"].append(chasers_run(1.0, args.steps, args.n_copies, args.device))
    wall = {k: min(r["seconds"] for r in v) for k, v in runs.items()}
    cpu = {k: min(r["cpu_seconds"] for r in v) for k, v in runs.items()}
    rate = {k: max(r["agent_steps_per_s"] for r in v) for k, v in runs.items()}

    # 2. env-steps/s, raw vs srpo-wrapped, back-to-back pairs
    env_runs: dict[str, list[tuple[float, float | None]]] = {"raw": [], "srpo": [], "srpo_shadow_only": []}
    for _ in range(args.env_repeats):
        env_runs["raw"].append(env_rates(paper_tag, args.env_steps))
        env_runs["srpo"].append(env_rates(paper_srpo_tag, args.env_steps))
        env_runs["srpo_shadow_only"].append(env_rates(paper_shadow_only_tag, args.env_steps))
    env_best = {k: max(w for w, _ in v) for k, v in env_runs.items()}
    has_cpu = all(c is not None for v in env_runs.values() for _, c in v)
    env_best_cpu = {k: max(c for _, c in v) for k, v in env_runs.items()} if has_cpu else {}
    paired = sorted(s[1] / r[1] for r, s in zip(env_runs["raw"], env_runs["srpo"], strict=True)) if has_cpu else []

    # 3. SB3 adapter: ours vs SuperSuit, same env, copies, PPO settings and steps
    adapters: dict[str, list[dict]] = {}
    with adapter_env(paper_srpo_tag):
        for _ in range(args.repeats):
            for workers in args.workers:
                for adapter in ("rqe", "supersuit"):
                    adapters.setdefault(f"{adapter}_workers{workers}", []).append(
                        bench_adapter.ppo_run(adapter, args.n_copies, workers, args.steps, args.device)
                    )
    adapter_best = {k: max(r["agent_steps_per_s"] for r in v) for k, v in adapters.items()}

    ratios = {
        "srpo_vs_ippo_wall": round(wall["srpo_tau1"] / wall["ippo_tau0"], 3),
        "srpo_vs_ippo_cpu": round(cpu["srpo_tau1"] / cpu["ippo_tau0"], 3),
        "srpo_vs_raw_env": round(env_best["srpo"] / env_best["raw"], 3),
    }
    if has_cpu:
        ratios["srpo_vs_raw_env_cpu"] = round(env_best_cpu["srpo"] / env_best_cpu["raw"], 3)
        ratios["srpo_vs_raw_env_cpu_paired_median"] = round(float(np.median(paired)), 3)
        ratios["shadow_only_vs_raw_env_cpu"] = round(env_best_cpu["srpo_shadow_only"] / env_best_cpu["raw"], 3)
    for workers in args.workers:
        ratios[f"rqe_vs_supersuit_workers{workers}"] = round(
            adapter_best[f"rqe_workers{workers}"] / adapter_best[f"supersuit_workers{workers}"], 3
        )
    result = {
        "benchmark": "bench_srpo_tag",
        "env": "rqe_wrappers.envs.tag.tag_env(): mpe2 simple_tag_v3, 1 runner, 2 chasers, 2 obstacles, "
        "discrete, max_cycles=100, rewards x0.1",
        "machine": machine(args.device),
        "versions": bench_adapter.versions(),
        "settings": {
            "steps": args.steps,
            "n_copies": args.n_copies,
            "slots": 2 * args.n_copies,
            "repeats": args.repeats,
            "env_steps": args.env_steps,
            "env_repeats": args.env_repeats,
            "workers": args.workers,
            "device": args.device,
            "srpo_vs_ippo": f"train_chasers (CHASER_PPO, n_copies={args.n_copies}), runner {RUNNER_FOR_BENCH}, "
            "SRPOCallback at both taus",
            "adapter": "bench_adapter.ppo_run on srpo_wrap(tag_env(), tau=1, runner random), no callback: "
            "MlpPolicy, n_steps=128, batch_size=256, n_epochs=4",
            "torch_threads": 1,
        },
        "ratios": ratios,
        "targets": {"srpo_vs_ippo_wall": "<= 1.05", "srpo_vs_raw_env": ">= 0.9"},
        "ppo_wall_s": {k: round(v, 2) for k, v in wall.items()},
        "ppo_cpu_s": {k: round(v, 2) for k, v in cpu.items()},
        "ppo_agent_steps_per_s": {k: round(v, 1) for k, v in rate.items()},
        "ppo_runs": runs,
        "env_steps_per_s": {k: round(v, 1) for k, v in env_best.items()},
        "env_steps_per_cpu_s": {k: round(v, 1) for k, v in env_best_cpu.items()},
        "env_runs": {k: [[round(w, 1), c if c is None else round(c, 1)] for w, c in v] for k, v in env_runs.items()},
        "adapter_agent_steps_per_s": {k: round(v, 1) for k, v in adapter_best.items()},
        "adapter_runs": adapters,
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    json.dump(
        {
            k: result[k]
            for k in (
                "ratios",
                "ppo_wall_s",
                "ppo_cpu_s",
                "ppo_agent_steps_per_s",
                "env_steps_per_s",
                "adapter_agent_steps_per_s",
                "wall_s",
            )
        },
        sys.stdout,
        indent=2,
    )
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
