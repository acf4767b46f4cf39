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

``populations``: population play as ``rqe meltingpot populations`` runs it (``--jobs`` turns at once, each
one process with ``--copies`` copies, partners on the CPU or on the turn's device), round two's rate (partners
are round one's CNN models) over the round's wall time.

``member``: a population member's env stepped without learning (random learner actions), ``--copies`` copies
with ``--partners`` untrained CNN partners batched on the CPU, in ``--jobs`` processes at once, for each
partner weight layout in ``--weights`` (``nchw``: as SB3 makes them, ``cl``: channels-last, as
``load_partner`` makes them): learner-steps/s of every process and their total, and one partner's forward
pass alone at batches 1-16 in each layout.

``profile``: one member's turn (``--partners`` untrained CNN partners, ``--copies`` copies, on ``--device``,
rollouts on ``--rollout-device``) run under cProfile in this process while ``--jobs`` - 1 identical turns run
in other processes at once (as in a round of ``populations``), each stopped after ``--turn-seconds``: the
turn's rate, the seconds in collecting rollouts, in PPO's update and in their main parts, and the top
functions by own time. Where a turn's time goes under load, e.g. on the GPU box:
``python benchmarks/bench_meltingpot.py profile --jobs 16 --copies 16 --device cuda --rollout-device cpu
--turn-seconds 40 --out ...``.

Usage (needs the ``[meltingpot]`` extra, docs/meltingpot.md):
    python benchmarks/bench_meltingpot.py step --workers 0 2 --out benchmarks/results/meltingpot-step-cpu-2core.json
    python benchmarks/bench_meltingpot.py train --device cpu --copies 4 --workers 0 2 \
        --out benchmarks/results/meltingpot-train-cpu-2core.json
"""

from __future__ import annotations

import argparse
import dataclasses
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


def populations_mode(args: argparse.Namespace) -> dict[str, Any]:
    """Population play as ``rqe meltingpot populations`` runs it (one process per member's turn, ``--copies``
    copies each, ``--jobs`` at once), two rounds; the rate is round two's (partners are round one's CNN
    models, as in every later round): its turns' agent-steps over the round's wall time, from the first
    turn's start to the last one's end (building the envs, loading the models and CUDA set-up included)."""

    from rqe_wrappers.experiments.meltingpot_cooking import CNN_KWARGS, MP_PPO, cooking_env_fn
    from rqe_wrappers.experiments.population_play import PopulationPlay, train_populations

    rows = []
    for on_device in args.partners_on_device:
        ppo = dataclasses.replace(MP_PPO, n_copies=args.copies, n_workers=args.workers[0])
        plans = {
            f"{lay}-s{seed}": (
                cooking_env_fn(lay),
                PopulationPlay(sizes=tuple(args.sizes), rounds=2, steps_per_round=args.steps, seed=seed, ppo=ppo),
            )
            for lay in args.layouts
            for seed in args.seeds
        }
        records: list[dict[str, Any]] = []
        start = time.perf_counter()
        train_populations(
            plans,
            policy="CnnPolicy",
            policy_kwargs=CNN_KWARGS,
            devices=args.devices,
            jobs=args.jobs,
            partners_on_device=bool(on_device),
            turn_seconds=args.turn_seconds,
            rollout_device=args.rollout_device,
            on_turn=records.append,
        )
        wall = time.perf_counter() - start
        rounds = {}
        for r in (1, 2):
            turns = [x for x in records if x["round"] == r]
            steps = sum(x["turn_steps"] for x in turns)
            span = max(x["ended"] for x in turns) - min(x["started"] for x in turns)
            rounds[f"round{r}"] = {
                "turns": len(turns),
                "agent_steps": steps,
                "wall_seconds": round(span, 1),
                "agent_steps_per_s": round(steps / span),
                "mean_turn_agent_steps_per_s": round(float(np.mean([x["turn_steps"] / x["seconds"] for x in turns]))),
                # a turn's own time outside PPO's learn: imports, models loaded, envs built, CUDA set up, saved
                "mean_turn_setup_seconds": round(
                    float(np.mean([x["ended"] - x["started"] - x["seconds"] for x in turns])), 1
                ),
                "processes": len({x.get("pid") for x in turns}),  # None: code before turn records had pids
            }
        row = {
            "partners_on_device": bool(on_device),
            "rollout_device": args.rollout_device,
            "jobs": args.jobs,
            "copies_per_turn": args.copies,
            "workers_per_turn": args.workers[0],
            "members": len(records) // 2,
            "total_wall_seconds": round(wall, 1),
            **rounds,
            "agent_steps_per_s": rounds["round2"]["agent_steps_per_s"],
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"rows": rows}


def _layout(weights: str) -> Any:
    """The torch memory format of a ``--weights`` name (``cl``: channels-last, else as SB3 makes them)."""
    import torch as th

    return th.channels_last if weights == "cl" else th.contiguous_format


def _member_partners(obs_space: Any, weights: str, k: int) -> dict[str, Any]:
    from stable_baselines3 import PPO

    from rqe_wrappers.experiments.meltingpot_cooking import CNN_KWARGS, MP_PPO, cooking_env_fn
    from rqe_wrappers.sb3 import PettingZooVecEnv, SB3Policy

    one = PettingZooVecEnv(cooking_env_fn("circuit"), 1)
    out = {}
    for i in range(k):
        model = PPO("CnnPolicy", one, device="cpu", seed=i, **MP_PPO.ppo_kwargs(CNN_KWARGS))
        out[f"p{i}"] = SB3Policy.from_model(model, observation_space=obs_space)
        out[f"p{i}"].policy.to(memory_format=_layout(weights))
    return out


def _member_rate(weights: str, copies: int, partners: int, steps: int) -> float:
    """Learner-steps/s of one process stepping a member env (runs in a worker of :func:`member_mode`)."""
    import torch

    from rqe_wrappers.aht.preferences import Preferences
    from rqe_wrappers.experiments.meltingpot_cooking import cooking_env_fn
    from rqe_wrappers.experiments.population_play import _MemberEnv, seat_spaces
    from rqe_wrappers.sb3 import PettingZooVecEnv

    torch.set_num_threads(1)
    env_fn = cooking_env_fn("circuit")
    obs_space, _ = seat_spaces(env_fn)
    venv = PettingZooVecEnv(_MemberEnv(env_fn, Preferences(), _member_partners(obs_space, weights, partners)), copies)
    venv.seed(0)
    venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(20):
        venv.step(rng.integers(8, size=copies))
    start = time.perf_counter()
    for _ in range(steps):
        venv.step(rng.integers(8, size=copies))
    rate = steps * copies / (time.perf_counter() - start)
    venv.close()
    return rate


def member_mode(args: argparse.Namespace) -> dict[str, Any]:
    """Member envs stepped without learning in ``--jobs`` processes at once, per partner weight layout."""
    import torch as th

    from rqe_wrappers.experiments.common import process_pool
    from rqe_wrappers.experiments.meltingpot_cooking import cooking_env_fn
    from rqe_wrappers.experiments.population_play import seat_spaces

    th.set_num_threads(1)
    obs_space, _ = seat_spaces(cooking_env_fn("circuit"))
    forward = []
    (one,) = _member_partners(obs_space, "nchw", 1).values()
    for b in (1, 4, 8, 16):
        x = np.random.default_rng(0).integers(0, 255, (b, *obs_space.shape), dtype=np.uint8)
        row: dict[str, Any] = {"batch": b}
        for weights in args.weights:
            one.policy.to(memory_format=_layout(weights))
            for _ in range(10):
                one.action_probs(x)
            start = time.perf_counter()
            for _ in range(100):
                one.action_probs(x)
            row[f"{weights}_ms"] = round((time.perf_counter() - start) * 10, 3)
        forward.append(row)
        print(json.dumps(row), flush=True)
    rows = []
    for weights in args.weights:
        with process_pool(args.jobs) as pool:
            futures = [
                pool.submit(_member_rate, weights, args.copies, args.partners, args.steps) for _ in range(args.jobs)
            ]
            rates = [round(f.result()) for f in futures]
        row = {"weights": weights, "processes": args.jobs, "learner_steps_per_s": rates, "total": sum(rates)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"partner_forward_one_process": forward, "rows": rows}


#: the parts of a turn reported by ``profile`` mode: label -> (file name ends with, function name)
PROFILED = {
    "collect_rollouts": ("on_policy_algorithm.py", "collect_rollouts"),
    "update (PPO.train)": ("ppo.py", "train"),
    "env step (PettingZooVecEnv)": ("copies.py", "step"),
    "partners' batched forward passes": ("background.py", "batch_background"),
    "substrate step (MeltingPotEnv)": ("meltingpot.py", "step"),
    "world builds": ("meltingpot.py", "build_environment"),
    "policy forward (rollout)": ("policies.py", "forward"),
    "backward": ("__init__.py", "backward"),
    "optimizer step": ("adam.py", "step"),
    "rollout buffer add": ("buffers.py", "add"),
    "rollout start (RolloutDevice copy)": ("rollout_device.py", "_on_rollout_start"),
}


def profile_mode(args: argparse.Namespace) -> dict[str, Any]:
    """One turn under cProfile while ``--jobs`` - 1 more run at once (see the module doc)."""
    import cProfile
    import pstats
    import tempfile

    import torch
    from stable_baselines3 import PPO

    from rqe_wrappers.aht.preferences import Preferences
    from rqe_wrappers.experiments.common import process_pool
    from rqe_wrappers.experiments.meltingpot_cooking import CNN_KWARGS, MP_PPO, cooking_env_fn
    from rqe_wrappers.experiments.population_play import _member_turn
    from rqe_wrappers.sb3 import PettingZooVecEnv

    torch.set_num_threads(1)
    env_fn = cooking_env_fn("circuit")
    ppo = dataclasses.replace(MP_PPO, n_copies=args.copies, n_workers=0)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = PPO("CnnPolicy", PettingZooVecEnv(env_fn, 1), seed=0, device="cpu", **ppo.ppo_kwargs(CNN_KWARGS))
        files = {}
        for i in range(args.partners + 1):  # partners p0.. and the learner's own round-one file
            files[i] = work / f"m{i}.zip"
            model.save(files[i])
        partners = {f"p{i}": files[i] for i in range(args.partners)}

        def turn(k: int) -> tuple:
            return (env_fn, Preferences(), partners, files[args.partners], work / f"out{k}.zip", "CnnPolicy",
                    dict(CNN_KWARGS), ppo.to_json(), (k, k), 10**9, args.device, "profile", f"t{k}", 1,
                    args.turn_seconds, False, args.rollout_device)  # fmt: skip

        with process_pool(max(args.jobs - 1, 1)) as pool:
            futures = [pool.submit(_member_turn, *turn(k)) for k in range(1, args.jobs)]
            time.sleep(args.stagger)  # the others imported and set up, as in a round
            profiler = cProfile.Profile()
            profiler.enable()
            mine = _member_turn(*turn(0))
            profiler.disable()
            records = [f.result() for f in futures]
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    parts = {}
    for label, (file, name) in PROFILED.items():
        hits = [v for (f, _, n), v in stats.items() if f.endswith(file) and n == name]
        parts[label] = {"calls": sum(v[1] for v in hits), "seconds": round(sum(v[3] for v in hits), 3)}
    top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:40]
    rate = mine["turn_steps"] / mine["seconds"]
    others = [r["turn_steps"] / r["seconds"] for r in records]
    out = {
        "turn": {k: mine[k] for k in ("turn_steps", "seconds", "device")},
        "agent_steps_per_s": round(rate),
        "ms_of_a_core_per_learner_step": round(1e3 / rate, 3),
        "other_turns_agent_steps_per_s": [round(x) for x in others],
        "parts_cumulative": parts,
        "top_by_own_time": [
            {"function": f"{Path(f).name}:{line}({n})", "calls": v[1], "own_s": round(v[2], 3), "cum_s": round(v[3], 3)}
            for (f, line, n), v in top
        ],
    }
    print(json.dumps({k: out[k] for k in ("agent_steps_per_s", "ms_of_a_core_per_learner_step", "parts_cumulative")}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("step", "train", "populations", "member", "profile"))
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
    parser.add_argument("--jobs", type=int, default=2, help="populations: turns at once (processes)")
    parser.add_argument("--devices", nargs="+", default=["cpu"], help="populations: devices, round-robin")
    parser.add_argument("--layouts", nargs="+", default=["circuit"], help="populations: layouts")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="populations: one population per seed")
    parser.add_argument("--sizes", nargs="+", type=int, default=[2, 3], help="populations: sub-population sizes")
    parser.add_argument("--partners-on-device", nargs="+", type=int, default=[0], help="populations: 0 CPU, 1 device")
    parser.add_argument("--rollout-device", default=None, help="populations: collect rollouts there (RolloutDevice)")
    parser.add_argument("--turn-seconds", type=float, default=None, help="populations: a turn's time limit")
    parser.add_argument("--partners", type=int, default=2, help="member: CNN partners")
    parser.add_argument("--weights", nargs="+", default=["nchw", "cl"], help="member: partner weight layouts")
    parser.add_argument("--stagger", type=float, default=5.0, help="profile: seconds the other turns start earlier")
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
    modes = {
        "step": step_mode,
        "train": train_mode,
        "populations": populations_mode,
        "member": member_mode,
        "profile": profile_mode,
    }
    result |= modes[args.mode](args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
