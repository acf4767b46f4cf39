"""Throughput of the SRPO wrapper and of the SB3 adapter on Tag (mpe2 simple_tag), written as JSON.

Measures, in one run on one machine (so the ratios compare like with like):

1. env-steps/s of raw ``simple_tag_v3.parallel_env`` with random actions vs the same env under
   ``srpo_wrap`` (runner fixed to a ``RandomPolicy``: ``srpo``; no fixed seat: ``srpo_shadow_only``),
   and the ``srpo`` env through ``PettingZooVecEnv`` (one copy-step = one env-step);
2. SB3 PPO agent-steps/s (``model.num_timesteps`` / wall time of ``learn``; also per second spent
   inside the VecEnv's ``reset``/``step_async``/``step_wait``) with
   :class:`rqe_wrappers.sb3.PettingZooVecEnv` vs SuperSuit's ``pettingzoo_env_to_vec_env_v1`` +
   ``concat_vec_envs_v1``: same env, copies, PPO settings and steps, in-process and with 2 workers
   (SuperSuit has no ``seed``, so PPO gets no seed there);
3. how long starting 2 subprocess workers (and resetting their envs) takes per start method.

Separate timed runs are at the mercy of load that comes and goes (a shared machine; even an idle
cloud VM drifts by +-30 %), so the numbers to trust are in ``ratios_in_loop``, measured so that
drift hits both sides alike: the wrapper and adapter ratios as the share of one loop's time spent
inside the inner env (its ``step``/``reset`` timed), and ours vs SuperSuit's VecEnv as the median
of alternating 100-step blocks of the same random actions (< 1: ours is faster). The other
timings are the best of interleaved repetitions; the env loops also in CPU seconds of this process.

Usage:
    python benchmarks/bench_adapter.py --out benchmarks/results/adapter-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")  # SuperSuit / PettingZoo deprecation chatter

N_ADVERSARIES, N_OBSTACLES, MAX_CYCLES = 2, 2, 25


def raw_tag():
    from mpe2 import simple_tag_v3

    return simple_tag_v3.parallel_env(
        num_good=1, num_adversaries=N_ADVERSARIES, num_obstacles=N_OBSTACLES, max_cycles=MAX_CYCLES
    )


def srpo_tag():
    """Tag as in the SRPO paper's setup: the runner fixed (here random), the chasers learn."""
    from rqe_wrappers import RandomPolicy, srpo_wrap

    env = raw_tag()
    runner = RandomPolicy(env.observation_space("agent_0"), env.action_space("agent_0"))
    env = srpo_wrap(env, tau=1.0, fixed={"agent_0": runner})
    env.srpo_callback_attached = True  # no KL callback here: silence the reminder, as SRPOCallback would
    return env


def shadow_only_tag():
    """``srpo_wrap`` without fixed seats (all three seats act): the shadow wrapper's own cost."""
    from rqe_wrappers import srpo_wrap

    env = srpo_wrap(raw_tag(), tau=1.0)
    env.srpo_callback_attached = True
    return env


def env_loop(make, steps: int) -> tuple[float, float]:
    """env-steps per wall second and per CPU second of this process, one env, pre-drawn random actions."""
    env = make()
    env.reset(seed=0)
    acts = np.random.default_rng(0).integers(5, size=(steps, 3)).tolist()
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(steps):
        if not env.agents:
            env.reset()
        env.step(dict(zip(env.agents, acts[k], strict=False)))
    return steps / (time.perf_counter() - t0), steps / (time.process_time() - c0)


def adapter_loop(steps: int, n_copies: int) -> tuple[float, float]:
    """Like :func:`env_loop` through PettingZooVecEnv, in-process (one step of one copy = one env-step)."""
    from rqe_wrappers.sb3 import PettingZooVecEnv

    venv = PettingZooVecEnv(srpo_tag, n_copies)
    venv.seed(0)
    venv.reset()
    n = max(1, steps // n_copies)
    acts = np.random.default_rng(0).integers(5, size=(n, venv.num_envs))
    t0, c0 = time.perf_counter(), time.process_time()
    for k in range(n):
        venv.step(acts[k])
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    venv.close()
    return n * n_copies / dt, n * n_copies / dc


class _Timed:
    """Adds up the time spent in some methods of one object (wraps its bound methods)."""

    def __init__(self, env, names=("step", "reset")):
        self.seconds = 0.0
        for name in names:
            setattr(env, name, self._timed(getattr(env, name)))

    def _timed(self, method):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        return timed


def _loop(env, steps: int) -> float:
    env.reset(seed=0)
    acts = np.random.default_rng(0).integers(5, size=(steps, 3)).tolist()
    t0 = time.perf_counter()
    for k in range(steps):
        if not env.agents:
            env.reset()
        env.step(dict(zip(env.agents, acts[k], strict=False)))
    return time.perf_counter() - t0


def inner_share_srpo(steps: int, fixed_runner: bool) -> float:
    """Share of the srpo-wrapped loop's time spent inside the raw env (= its speed relative to raw).

    Measured inside one loop, so load that comes and goes on a shared machine affects both alike.
    """
    from rqe_wrappers import RandomPolicy, srpo_wrap

    raw = raw_tag()
    timer = _Timed(raw)
    fixed = {"agent_0": RandomPolicy(raw.observation_space("agent_0"), raw.action_space("agent_0"))}
    env = srpo_wrap(raw, tau=1.0, fixed=fixed if fixed_runner else None)
    env.srpo_callback_attached = True
    total = _loop(env, steps)
    return timer.seconds / total


def inner_share_adapter(steps: int, n_copies: int) -> float:
    """Share of PettingZooVecEnv's stepping time spent inside the srpo-wrapped env copies."""
    from rqe_wrappers.sb3 import PettingZooVecEnv

    venv = PettingZooVecEnv(srpo_tag, n_copies)
    timers = [_Timed(env) for env in venv._local.envs]  # the in-process copies
    venv.seed(0)
    venv.reset()
    n = max(1, steps // n_copies)
    acts = np.random.default_rng(0).integers(5, size=(n, venv.num_envs))
    for t in timers:
        t.seconds = 0.0
    t0 = time.perf_counter()
    for k in range(n):
        venv.step(acts[k])
    total = time.perf_counter() - t0
    venv.close()
    return sum(t.seconds for t in timers) / total


def ppo_run(adapter: str, n_copies: int, workers: int, steps: int, device: str) -> dict:
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    if adapter == "rqe":
        from rqe_wrappers.sb3 import PettingZooVecEnv

        venv = PettingZooVecEnv(srpo_tag, n_copies, n_workers=workers)
        seed = {"seed": 0}
    else:
        venv = supersuit_vec(n_copies, workers)
        seed = {}  # SuperSuit's VecEnv has no seed(): PPO(seed=...) would crash
    env_time = _Timed(venv, ("reset", "step_async", "step_wait"))  # the VecEnv's share of learn()
    n_steps = 128
    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=256, n_epochs=4, device=device, verbose=0, **seed)
    env_time.seconds = 0.0
    t0 = time.perf_counter()
    model.learn(steps)
    dt = time.perf_counter() - t0
    out = {
        "agent_steps": int(model.num_timesteps),
        "seconds": dt,
        "agent_steps_per_s": model.num_timesteps / dt,
        "vecenv_seconds": env_time.seconds,
        "agent_steps_per_vecenv_s": model.num_timesteps / env_time.seconds,
    }
    venv.close()
    return out


def supersuit_vec(n_copies: int, workers: int):
    import supersuit as ss

    return ss.concat_vec_envs_v1(
        ss.pettingzoo_env_to_vec_env_v1(srpo_tag()), n_copies, num_cpus=workers, base_class="stable_baselines3"
    )


def alternating_blocks(n_copies: int, workers: int, blocks: int, block_steps: int = 100) -> list[float]:
    """Wall time of ours / SuperSuit's for the same random-action blocks, the two VecEnvs alternating.

    Both stay open and take turns, so load that comes and goes hits both alike; one ratio per block.
    """
    from rqe_wrappers.sb3 import PettingZooVecEnv

    ours = PettingZooVecEnv(srpo_tag, n_copies, n_workers=workers)
    ours.seed(0)
    theirs = supersuit_vec(n_copies, workers)
    for v in (ours, theirs):
        v.reset()
    acts = np.random.default_rng(0).integers(5, size=(block_steps, ours.num_envs))
    ratios = []
    for _ in range(blocks):
        times = []
        for v in (ours, theirs):
            t0 = time.perf_counter()
            for a in acts:
                v.step(a)
            times.append(time.perf_counter() - t0)
        ratios.append(times[0] / times[1])
    ours.close()
    theirs.close()
    return ratios


def start_time(method: str) -> float:
    from rqe_wrappers.sb3 import PettingZooVecEnv

    t0 = time.perf_counter()
    venv = PettingZooVecEnv(srpo_tag, 2, n_workers=2, start_method=method)
    venv.seed(0)
    venv.reset()
    dt = time.perf_counter() - t0
    venv.close()
    return dt


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "torch", "stable-baselines3", "pettingzoo", "supersuit", "mpe2", "gymnasium", "rqe-wrappers"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/adapter-cpu.json", help="where to write the JSON")
    ap.add_argument("--steps", type=int, default=4096, help="PPO agent-steps per run (default 4096)")
    ap.add_argument("--env-steps", type=int, default=400, help="env-steps per env-throughput repetition")
    ap.add_argument("--n-copies", type=int, default=4, help="env copies for the adapters (2 agent slots each)")
    ap.add_argument("--repeats", type=int, default=8, help="interleaved repetitions of the env loops")
    ap.add_argument("--ppo-repeats", type=int, default=2, help="interleaved repetitions of the PPO runs")
    ap.add_argument(
        "--blocks",
        type=int,
        default=15,
        help="alternating 100-step blocks, ours vs SuperSuit's VecEnv, per worker setting",
    )
    ap.add_argument("--device", default="cpu", help="PPO device (cpu or cuda)")
    ap.add_argument("--skip-start", action="store_true", help="skip the worker start-up timing")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    t_start = time.perf_counter()

    # 0. worker start-up, first thing (the forkserver's first start includes its one-off torch import)
    starts = {}
    if not args.skip_start:
        from rqe_wrappers.sb3.vec_env import default_start_method

        starts = {m: start_time(m) for m in ("fork", "forkserver", "spawn")}
        starts["forkserver_again"] = start_time("forkserver")
        starts["default"] = default_start_method()

    # 1. env-steps/s
    names = ("raw", "srpo", "srpo_shadow_only", "adapter")
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for _ in range(args.repeats):
        for name, (w, c) in (
            ("raw", env_loop(raw_tag, args.env_steps)),
            ("srpo", env_loop(srpo_tag, args.env_steps)),
            ("srpo_shadow_only", env_loop(shadow_only_tag, args.env_steps)),
            ("adapter", adapter_loop(args.env_steps, args.n_copies)),
        ):
            wall[name].append(w)
            cpu[name].append(c)
    shares: dict[str, list[float]] = {"srpo_vs_raw": [], "srpo_shadow_only_vs_raw": [], "adapter_vs_srpo": []}
    for _ in range(args.repeats):
        shares["srpo_vs_raw"].append(inner_share_srpo(args.env_steps, True))
        shares["srpo_shadow_only_vs_raw"].append(inner_share_srpo(args.env_steps, False))
        shares["adapter_vs_srpo"].append(inner_share_adapter(args.env_steps, args.n_copies))
    env_best = {k: max(v) for k, v in wall.items()}
    cpu_best = {k: max(v) for k, v in cpu.items()}

    def paired(rates: dict, a: str, b: str) -> float:
        """Median over repetitions of rate(a) / rate(b), each pair measured back to back."""
        return float(np.median(np.array(rates[a]) / np.array(rates[b])))

    # 2. PPO agent-steps/s, ours vs SuperSuit
    ppo: dict[str, list[dict]] = {}
    configs = [("rqe", 0), ("supersuit", 0), ("rqe", 2), ("supersuit", 2)]
    for _ in range(args.ppo_repeats):
        for adapter, workers in configs:
            ppo.setdefault(f"{adapter}_workers{workers}", []).append(
                ppo_run(adapter, args.n_copies, workers, args.steps, args.device)
            )
    blocks = {f"workers{w}": alternating_blocks(args.n_copies, w, args.blocks) for w in (0, 2)} if args.blocks else {}
    ppo_best = {k: max(r["agent_steps_per_s"] for r in v) for k, v in ppo.items()}
    ppo_median = {k: float(np.median([r["agent_steps_per_s"] for r in v])) for k, v in ppo.items()}
    vecenv_median = {k: float(np.median([r["agent_steps_per_vecenv_s"] for r in v])) for k, v in ppo.items()}

    def ppo_ratios(rates: dict) -> dict:
        if not rates:
            return {}
        return {
            "rqe_vs_supersuit_in_process": round(rates["rqe_workers0"] / rates["supersuit_workers0"], 3),
            "rqe_vs_supersuit_2_workers": round(rates["rqe_workers2"] / rates["supersuit_workers2"], 3),
        }

    result = {
        "benchmark": "bench_adapter",
        "env": f"mpe2 simple_tag_v3 parallel (1 runner, {N_ADVERSARIES} chasers, {N_OBSTACLES} obstacles, "
        f"max_cycles={MAX_CYCLES}); srpo_wrap(tau=1, runner fixed to RandomPolicy)",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "device": args.device,
            "load_avg_1m_at_end": os.getloadavg()[0],
        },
        "versions": versions(),
        "settings": {
            "ppo_steps": args.steps,
            "env_steps": args.env_steps,
            "n_copies": args.n_copies,
            "slots": 2 * args.n_copies,
            "repeats": args.repeats,
            "ppo_repeats": args.ppo_repeats,
            "ppo": "MlpPolicy, n_steps=128, batch_size=256, n_epochs=4, torch threads=1",
        },
        "env_steps_per_s": {k: round(v, 1) for k, v in env_best.items()},
        "env_steps_per_cpu_s": {k: round(v, 1) for k, v in cpu_best.items()},
        "env_steps_per_s_all": {k: [round(x, 1) for x in v] for k, v in wall.items()},
        "env_steps_per_cpu_s_all": {k: [round(x, 1) for x in v] for k, v in cpu.items()},
        "ratios_in_loop": {
            **{f"{k}_median": round(float(np.median(v)), 3) for k, v in shares.items()},
            **{
                f"vecenv_step_time_rqe_over_supersuit_{k}_median": round(float(np.median(v)), 3)
                for k, v in blocks.items()
            },
        },
        "vecenv_step_time_rqe_over_supersuit_all": {k: [round(x, 3) for x in v] for k, v in blocks.items()},
        "ratios_in_loop_all": {k: [round(x, 3) for x in v] for k, v in shares.items()},
        "ratios": {
            "srpo_vs_raw_env": round(env_best["srpo"] / env_best["raw"], 3),
            "srpo_vs_raw_env_cpu": round(cpu_best["srpo"] / cpu_best["raw"], 3),
            "srpo_vs_raw_env_cpu_paired_median": round(paired(cpu, "srpo", "raw"), 3),
            "srpo_shadow_only_vs_raw_env": round(env_best["srpo_shadow_only"] / env_best["raw"], 3),
            "srpo_shadow_only_vs_raw_env_cpu": round(cpu_best["srpo_shadow_only"] / cpu_best["raw"], 3),
            "srpo_shadow_only_vs_raw_env_cpu_paired_median": round(paired(cpu, "srpo_shadow_only", "raw"), 3),
            "adapter_vs_srpo_env": round(env_best["adapter"] / env_best["srpo"], 3),
            "adapter_vs_srpo_env_cpu": round(cpu_best["adapter"] / cpu_best["srpo"], 3),
            "adapter_vs_srpo_env_cpu_paired_median": round(paired(cpu, "adapter", "srpo"), 3),
            **{f"ppo_{k}": v for k, v in ppo_ratios(ppo_best).items()},
            **{f"ppo_{k}_median": v for k, v in ppo_ratios(ppo_median).items()},
            **{f"ppo_vecenv_time_{k}_median": v for k, v in ppo_ratios(vecenv_median).items()},
        },
        "ppo_agent_steps_per_s": {k: round(v, 1) for k, v in ppo_best.items()},
        "ppo_agent_steps_per_s_median": {k: round(v, 1) for k, v in ppo_median.items()},
        "ppo_agent_steps_per_vecenv_s_median": {k: round(v, 1) for k, v in vecenv_median.items()},
        "ppo_runs": ppo,
        "worker_start_s": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in starts.items()},
        "targets": {"srpo_vs_raw_env": ">= 0.9"},
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    json.dump(
        {
            k: result[k]
            for k in (
                "env_steps_per_s",
                "env_steps_per_cpu_s",
                "ppo_agent_steps_per_s",
                "ratios",
                "ratios_in_loop",
                "worker_start_s",
                "wall_s",
            )
        },
        sys.stdout,
        indent=2,
    )
    print()
    return result


if __name__ == "__main__":
    main()
