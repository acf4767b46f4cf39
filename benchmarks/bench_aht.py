"""Throughput of minimax-Bayes AHT training (aht_wrap + AHTCallback) vs self-play, on the IPD, as JSON.

Same env (the 3-round IPD), same PPO settings (those of ``rqe ipd``), same number of SB3 slots
(16), in one process, on one machine:

- ``aht_population``: ``aht_wrap(ipd_env(), <the nine scripted partners>, "uniform")`` +
  :class:`~rqe_wrappers.sb3.AHTCallback` (the PBR learner of ``rqe ipd``; MU/MR differ only in
  nature's O(10) update per rollout);
- ``raw_self_play``: the raw ``ipd_env()`` through ``PettingZooVecEnv`` (8 copies x 2 seats, both
  seats are SB3 slots: no partner inference at all);
- ``aht_self_play``: ``aht_wrap(ipd_env(), {}, "self-play")`` + callback (the other seat is the
  learner's snapshot, an MLP forward per step inside the env);
- ``aht_constant_population``: as ``aht_population`` but every member a ``ConstantPolicy``
  (same scenarios, near-free partners).

Reported: PPO steps/s (``model.num_timesteps`` / wall time of ``learn``, best of interleaved
repetitions, so slow drift of a shared machine hits every variant alike), the ratio AHT / self-play
(target >= 0.8), env-only steps/s (the VecEnv stepped with random actions, no learner), and the
background-inference cost: every population member is wrapped in a timer, so the time spent in
partner ``act`` calls per env step is measured directly (and as a share of the env-only step time).

Usage:
    python benchmarks/bench_aht.py --steps 30000 --out benchmarks/results/aht-cpu.json
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

warnings.filterwarnings("ignore")

N_SLOTS = 16
ROUNDS = 3


def timed(policy, clock: dict):
    """A Policy that delegates to ``policy`` and adds the wall time of each ``act`` to ``clock``."""
    from rqe_wrappers.core.policy import Policy

    class _Timed(Policy):
        def __init__(self, inner):
            super().__init__(inner.observation_space, inner.action_space)
            self.inner = inner

        def initial_state(self, batch_size):
            return self.inner.initial_state(batch_size)

        def act(self, obs, *, rng, mask=None, state=None):
            t0 = time.perf_counter()
            out = self.inner.act(obs, rng=rng, mask=mask, state=state)
            clock["seconds"] += time.perf_counter() - t0
            clock["calls"] += 1
            return out

    return _Timed(policy)


def population(kind: str, clock: dict | None = None) -> dict:
    import gymnasium as gym

    from rqe_wrappers.core.policy import ConstantPolicy
    from rqe_wrappers.envs.ipd import observation_space
    from rqe_wrappers.partners.ipd import training_partners

    members = training_partners(ROUNDS)
    if kind == "constant":
        members = {
            n: ConstantPolicy(observation_space(ROUNDS), gym.spaces.Discrete(2), i % 2) for i, n in enumerate(members)
        }
    if clock is not None:
        members = {n: timed(p, clock) for n, p in members.items()}
    return members


def env_fn(variant: str, clock: dict | None = None):
    from rqe_wrappers.aht.wrapper import aht_wrap
    from rqe_wrappers.envs.ipd import ipd_env

    if variant == "raw_self_play":
        return lambda: ipd_env(ROUNDS), N_SLOTS // 2
    if variant == "aht_self_play":
        return lambda: aht_wrap(ipd_env(ROUNDS), {}, "self-play", lr=0.01), N_SLOTS
    kind = "constant" if variant == "aht_constant_population" else "scripted"
    pop = population(kind, clock)  # shared by the copies: one clock
    return lambda: aht_wrap(ipd_env(ROUNDS), pop, "uniform", lr=0.01), N_SLOTS


VARIANTS = ("aht_population", "raw_self_play", "aht_self_play", "aht_constant_population")


def learn_rate(variant: str, steps: int, device: str) -> dict:
    """PPO steps/s of one variant (fresh model, seed 0)."""
    import torch
    from stable_baselines3 import PPO

    from rqe_wrappers.experiments.ipd import IPDSettings
    from rqe_wrappers.sb3 import AHTCallback, make_vec_env

    torch.set_num_threads(1)
    clock = {"seconds": 0.0, "calls": 0}
    make, n_copies = env_fn(variant, clock)
    venv = make_vec_env(make, n_copies=n_copies, seed=0)
    assert venv.num_envs == N_SLOTS
    settings = IPDSettings()
    kwargs = settings.ppo_kwargs()
    kwargs["n_steps"] = settings.n_copies * settings.n_steps // N_SLOTS  # same rollout size for every variant
    model = PPO("MlpPolicy", venv, seed=0, device=device, **kwargs)
    callback = None if variant == "raw_self_play" else AHTCallback()
    t0 = time.perf_counter()
    model.learn(steps, callback=callback)
    seconds = time.perf_counter() - t0
    venv.close()
    env_steps = model.num_timesteps if variant != "raw_self_play" else model.num_timesteps // 2
    return {
        "steps": int(model.num_timesteps),
        "seconds": seconds,
        "steps_per_s": model.num_timesteps / seconds,
        "background_act_seconds": clock["seconds"],
        "background_act_calls": clock["calls"],
        "background_act_us_per_env_step": 1e6 * clock["seconds"] / max(env_steps, 1),
    }


def env_only_rate(variant: str, steps: int) -> dict:
    """VecEnv steps/s (slot-steps) with random actions, no learner; the learner snapshot is a random policy."""
    from rqe_wrappers.sb3 import make_vec_env

    clock = {"seconds": 0.0, "calls": 0}
    make, n_copies = env_fn(variant, clock)
    venv = make_vec_env(make, n_copies=n_copies, seed=0)
    rng = np.random.default_rng(0)
    acts = rng.integers(2, size=(steps // N_SLOTS + 1, N_SLOTS))
    venv.reset()
    t0 = time.perf_counter()
    for a in acts:
        venv.step(a)
    seconds = time.perf_counter() - t0
    venv.close()
    slot_steps = len(acts) * N_SLOTS
    env_steps = slot_steps if variant != "raw_self_play" else slot_steps // 2
    return {
        "slot_steps": slot_steps,
        "seconds": seconds,
        "steps_per_s": slot_steps / seconds,
        "background_act_us_per_env_step": 1e6 * clock["seconds"] / env_steps,
        "background_share_of_step_time": clock["seconds"] / seconds,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30_000, help="PPO steps per timed learn run")
    p.add_argument("--env-steps", type=int, default=30_000, help="slot-steps per env-only loop")
    p.add_argument("--repeats", type=int, default=2, help="interleaved repetitions (best is reported)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="benchmarks/results/aht-cpu.json")
    a = p.parse_args(argv)
    import stable_baselines3
    import torch

    learn: dict[str, list] = {v: [] for v in VARIANTS}
    env_only: dict[str, list] = {v: [] for v in VARIANTS}
    for r in range(a.repeats):
        for v in VARIANTS:
            env_only[v].append(env_only_rate(v, a.env_steps))
            learn[v].append(learn_rate(v, a.steps, a.device))
            print(
                f"rep {r} {v:>24}: PPO {learn[v][-1]['steps_per_s']:7.0f} steps/s, "
                f"env-only {env_only[v][-1]['steps_per_s']:7.0f} slot-steps/s",
                flush=True,
            )
    best = {v: max(runs, key=lambda x: x["steps_per_s"]) for v, runs in learn.items()}
    best_env = {v: max(runs, key=lambda x: x["steps_per_s"]) for v, runs in env_only.items()}
    rate = {v: best[v]["steps_per_s"] for v in VARIANTS}
    result = {
        "benchmark": "bench_aht",
        "env": f"rqe_wrappers ipd_v0, {ROUNDS} rounds; {N_SLOTS} SB3 slots in one process",
        "ppo": "rqe ipd defaults (IPDSettings), n_steps scaled so every variant has the same rollout size",
        "device": a.device,
        "steps": a.steps,
        "repeats": a.repeats,
        "ppo_steps_per_s": rate,
        "ratio_aht_population_vs_raw_self_play": rate["aht_population"] / rate["raw_self_play"],
        "ratio_aht_population_vs_aht_self_play": rate["aht_population"] / rate["aht_self_play"],
        "target_ratio": 0.8,
        "env_only_slot_steps_per_s": {v: best_env[v]["steps_per_s"] for v in VARIANTS},
        "background": {
            "act_us_per_env_step_scripted": best_env["aht_population"]["background_act_us_per_env_step"],
            "act_us_per_env_step_constant": best_env["aht_constant_population"]["background_act_us_per_env_step"],
            "share_of_env_step_time_scripted": best_env["aht_population"]["background_share_of_step_time"],
            "act_us_per_env_step_during_ppo": best["aht_population"]["background_act_us_per_env_step"],
            "share_of_ppo_time": best["aht_population"]["background_act_seconds"] / best["aht_population"]["seconds"],
        },
        "runs": {"learn": learn, "env_only": env_only},
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "stable_baselines3": stable_baselines3.__version__,
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg": os.getloadavg(),
        },
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "ppo_steps_per_s",
                    "ratio_aht_population_vs_raw_self_play",
                    "ratio_aht_population_vs_aht_self_play",
                    "env_only_slot_steps_per_s",
                    "background",
                )
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
