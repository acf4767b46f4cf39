"""End-to-end PPO throughput on the batched path (IPPO, SRPO) beside SB3's own ceiling, and batched vs
per-copy learning curves, written as JSON.

``speed`` (default): for each env (``cooking``, ``ipd``; ``tag`` when ``rqe_wrappers.envs.tag_batched``
exists) and each ``--copies`` N, stock PPO (+ ``SRPOCallback``) on ``batched_vec_env(<batched env of N
copies>, tau, reward_infos=False)`` for the ``--methods`` set-ups: IPPO (tau = 0) and SRPO (``--tau``);
``srpo_reward_infos`` (the default ``reward_infos=True``); ``srpo_role`` (``RolePolicy``; ``ippo_role_fast``:
IPPO with that policy class, so the wall ratio compares one network class); ``*_ends``
(``step_infos=False``); ``*_boot`` (+ ``TimeLimitBootstrap``); ``*_fast`` (both: the fast path), and the
same PPO on a *null* VecEnv with the same spaces and slot count (zero observations and rewards, no env,
no infos, no episode ends): SB3's own ceiling at those settings. Agent-steps/s = slots x steps / wall
seconds of ``--rollouts`` rollouts (collection and update), the best of ``--repeats`` timed blocks
interleaved over the set-ups, after one untimed warm-up rollout each (every block kept; ``*_median_paired``:
the median over repeats of the ratio of the set-ups' ``r``-th blocks); every row of one run is measured
in that run, on the card in ``machine``. Make a block (``--n-steps`` x ``--rollouts`` steps) hold whole
episodes (cooking: 100 steps, Tag: 25): a best-of over shorter blocks keeps the blocks without an
episode end and hides what episode ends cost.

``curves``: PPO + SRPOCallback on the coordination game (the ``rqe coordination`` settings) through the
batched path and through ``PettingZooVecEnv(srpo_wrap(...))`` for ``--seeds`` seeds; the partner role's
P(collaborate) after every rollout, each path's mean and standard deviation over seeds, and the largest
gap between the two means in units of the seed noise.

``aht``: minimax-Bayes AHT (``population=``, stock PPO + ``AHTCallback``, one learner slot per copy,
2N copies) beside self-play (IPPO, tau = 0, two learner slots per copy, N copies) on the same batched
path at the same slot count 2N, for ``ipd`` (the nine ``ipd/train`` partners) and ``cooking`` (the 16
trained networks of ``cooking/agents``) among ``--envs``; as is and ``*_fast`` (``step_infos=False`` +
``TimeLimitBootstrap``), the members on ``--device``; ``aht_fast_over_self_play_fast`` is the issue's
ratio (target 0.8) of the best blocks, ``*_median_paired`` the median over repeats of block ``r``'s ratio
(the two blocks run one after the other, so a slow spell of the machine slows both), every block's rate kept.

``phases``: where a PPO step's time goes, IPPO fast beside the null env (VecEnv step, policy forward, buffer
add, callbacks, the rest of SB3's collection loop, the update, ``learn``'s own set-up), milliseconds per step,
median over blocks.

``monitor``: the cost of the monitor on the step path: milliseconds per ``step`` of SRPO's
``BatchedVecEnv`` (``reward_infos=False``) bare and inside ``RoleVecMonitor``, random actions, the best
of ``--repeats`` blocks of ``--steps-per-block`` steps, per env and ``--copies``.

Usage (offline, no network):
    python benchmarks/bench_batched.py --device cpu --copies 256 1024 --out benchmarks/results/batched-cpu.json
    python benchmarks/bench_batched.py --device cuda --copies 256 1024 4096 --out benchmarks/results/batched-cuda.json
    python benchmarks/bench_batched.py curves --seeds 0 1 2 3 --out benchmarks/results/batched-curves-cpu.json
    python benchmarks/bench_batched.py aht --device cuda --envs ipd cooking --copies 1024 4096 --n-steps 50 --rollouts 2
    python benchmarks/bench_batched.py monitor --copies 1024 4096 --out benchmarks/results/batched-monitor-cpu.json
    python benchmarks/bench_batched.py phases --device cuda --envs cooking --copies 256 --n-steps 50 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np


def batched_envs() -> dict[str, Callable[[int], Any]]:
    """The batched envs to measure (Tag only where its batched twin exists)."""
    from rqe_wrappers.envs.cooking import BatchedCooking
    from rqe_wrappers.envs.ipd import BatchedIPD

    envs: dict[str, Callable[[int], Any]] = {"cooking": lambda n: BatchedCooking(n, "train"), "ipd": BatchedIPD}
    try:
        from rqe_wrappers.envs.tag_batched import BatchedTag
    except ImportError:
        return envs
    envs["tag"] = BatchedTag
    return envs


def null_vec_env(num_envs: int, observation_space: Any, action_space: Any) -> Any:
    """A VecEnv that does nothing: SB3's ceiling for ``num_envs`` slots of these spaces."""
    from stable_baselines3.common.vec_env import VecEnv

    class NullVecEnv(VecEnv):
        def __init__(self) -> None:
            self.render_mode = None
            super().__init__(num_envs, observation_space, action_space)
            self._obs = np.zeros((num_envs, *observation_space.shape), observation_space.dtype)
            self._rew = np.zeros(num_envs, np.float32)
            self._done = np.zeros(num_envs, bool)
            self._infos: list[dict] = [{} for _ in range(num_envs)]

        def reset(self):
            return self._obs.copy()

        def step_async(self, actions):
            pass

        def step_wait(self):
            return self._obs.copy(), self._rew.copy(), self._done.copy(), self._infos

        def close(self):
            pass

        def get_attr(self, attr_name, indices=None):
            return [getattr(self, attr_name, None)] * len(list(self._get_indices(indices)))

        def set_attr(self, attr_name, value, indices=None):
            setattr(self, attr_name, value)

        def env_method(self, method_name, *args, indices=None, **kwargs):
            raise AttributeError(method_name)

        def env_is_wrapped(self, wrapper_class, indices=None):
            return [False] * len(list(self._get_indices(indices)))

    return NullVecEnv()


def ppo_model(venv: Any, args: argparse.Namespace, callback: Any = None, policy: Any = "MlpPolicy") -> Any:
    """PPO on ``venv`` with the stated settings, after one untimed warm-up rollout (allocation, first kernels)."""
    from stable_baselines3 import PPO

    per_rollout = venv.num_envs * args.n_steps
    model = PPO(
        policy,
        venv,
        n_steps=args.n_steps,
        batch_size=min(args.batch_size, per_rollout),
        n_epochs=args.n_epochs,
        normalize_advantage=False,
        policy_kwargs=dict(net_arch=list(args.net_arch)),
        device=args.device,
        seed=0,
    )
    model.learn(per_rollout, callback=callback)
    return model


def ppo_rate(model: Any, args: argparse.Namespace, callback: Any = None) -> float:
    """Agent-steps/s of ``args.rollouts`` more rollouts (collection and update) of ``model``."""
    per_rollout = model.get_env().num_envs * args.n_steps
    start = time.perf_counter()
    model.learn(per_rollout * args.rollouts, callback=callback, reset_num_timesteps=False)
    return per_rollout * args.rollouts / (time.perf_counter() - start)


def machine(device: str) -> dict[str, Any]:
    import torch

    from rqe_wrappers.experiments.common import machine_info

    out: dict[str, Any] = {**machine_info(), "torch_threads": torch.get_num_threads(), "device": device}
    if device.startswith("cuda"):
        out["card"] = torch.cuda.get_device_name(torch.device(device))
    if hasattr(os, "getloadavg"):
        out["load_average_at_start"] = os.getloadavg()[0]
    return out


#: speed mode's ratios: name -> (numerator, denominator) of the rates (a wall-time ratio is the rates' inverse)
RATIOS = {
    "srpo_over_null": ("srpo", "null"),
    "srpo_over_ippo_wall": ("ippo", "srpo"),
    "srpo_role_over_ippo_wall": ("ippo", "srpo_role"),
    "srpo_ends_over_null": ("srpo_ends", "null"),
    "srpo_ends_over_ippo_ends_wall": ("ippo_ends", "srpo_ends"),
    "srpo_role_ends_over_ippo_ends_wall": ("ippo_ends", "srpo_role_ends"),
    "srpo_boot_over_null": ("srpo_boot", "null"),
    "srpo_fast_over_null": ("srpo_fast", "null"),
    "srpo_fast_over_ippo_fast_wall": ("ippo_fast", "srpo_fast"),
    "srpo_role_fast_over_ippo_fast_wall": ("ippo_fast", "srpo_role_fast"),
    # one network class on both sides: what SRPO adds to IPPO when both train RolePolicy's two networks
    "srpo_role_fast_over_ippo_role_fast_wall": ("ippo_role_fast", "srpo_role_fast"),
}


METHODS = (
    "ippo",
    "srpo",
    "srpo_reward_infos",
    "srpo_role",
    "ippo_ends",
    "srpo_ends",
    "srpo_role_ends",
    "srpo_boot",
    "ippo_fast",
    "srpo_fast",
    "srpo_role_fast",
    "ippo_role_fast",
)


def ratios(rates: dict[str, float]) -> dict[str, float]:
    """The :data:`RATIOS` whose two rates were measured."""
    return {k: round(rates[a] / rates[b], 3) for k, (a, b) in RATIOS.items() if a in rates and b in rates}


def median_paired(over: list[float], under: list[float]) -> float:
    """The median over repeats ``r`` of block ``r``'s ratio (the set-ups' blocks ``r`` run one after the other,
    so a slow spell of the machine slows them alike)."""
    return round(float(np.median(np.divide(over, under))), 3)


def paired_ratios(blocks: dict[str, list[float]]) -> dict[str, float]:
    """``<ratio>_median_paired``: :func:`median_paired` of each of the :data:`RATIOS` whose set-ups ran."""
    return {
        f"{k}_median_paired": median_paired(blocks[a], blocks[b])
        for k, (a, b) in RATIOS.items()
        if a in blocks and b in blocks
    }


def speed(args: argparse.Namespace) -> dict[str, Any]:
    from rqe_wrappers.batched import batched_vec_env
    from rqe_wrappers.sb3 import SRPOCallback, TimeLimitBootstrap
    from rqe_wrappers.sb3.role_policy import RolePolicy

    envs = batched_envs()
    unknown = [e for e in args.envs if e not in envs]
    if unknown:
        raise SystemExit(f"unknown envs {unknown}; available here: {sorted(envs)}")
    rows = []
    for name in args.envs:
        for n in args.copies:
            every = {  # method: (tau, reward infos, step infos, policy); srpo_role: separate partner/shadow networks
                "ippo": (0.0, False, True, "MlpPolicy"),
                "srpo": (args.tau, False, True, "MlpPolicy"),
                "srpo_reward_infos": (args.tau, True, True, "MlpPolicy"),
                "srpo_role": (args.tau, False, True, RolePolicy),
                "ippo_ends": (0.0, False, False, "MlpPolicy"),  # infos at episode ends only (step_infos=False)
                "srpo_ends": (args.tau, False, False, "MlpPolicy"),
                "srpo_role_ends": (args.tau, False, False, RolePolicy),
                "srpo_boot": (args.tau, False, True, "MlpPolicy"),  # + TimeLimitBootstrap
                "ippo_fast": (0.0, False, False, "MlpPolicy"),  # step_infos=False + TimeLimitBootstrap
                "srpo_fast": (args.tau, False, False, "MlpPolicy"),
                "srpo_role_fast": (args.tau, False, False, RolePolicy),
                "ippo_role_fast": (0.0, False, False, RolePolicy),  # IPPO with SRPO's two-network policy
            }
            setups = {m: every[m] for m in args.methods}
            callbacks: dict[str, Any] = {
                m: [SRPOCallback(), TimeLimitBootstrap()] if m.endswith(("_boot", "_fast")) else SRPOCallback()
                for m in setups
            }
            models = {
                m: ppo_model(
                    batched_vec_env(envs[name](n), tau, seed=0, reward_infos=full, step_infos=each),
                    args,
                    callbacks[m],
                    pol,
                )
                for m, (tau, full, each, pol) in setups.items()
            }
            venv = next(iter(models.values())).get_env()
            spaces = (venv.num_envs, venv.observation_space, venv.action_space)
            models["null"] = ppo_model(null_vec_env(*spaces), args)
            callbacks["null"] = None
            blocks: dict[str, list[float]] = {m: [] for m in models}
            for _ in range(args.repeats):  # interleaved, best of: a busy machine only slows some blocks
                for m, model in models.items():
                    blocks[m].append(ppo_rate(model, args, callbacks[m]))
            rates = {m: max(b) for m, b in blocks.items()}
            row = {
                "env": name,
                "n_copies": n,
                "slots": spaces[0],
                **{f"{m}_agent_steps_per_s": round(r) for m, r in rates.items()},
                **ratios(rates),
                **paired_ratios(blocks),
                "blocks_agent_steps_per_s": {m: [round(r) for r in b] for m, b in blocks.items()},
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"rows": rows}


def aht_populations() -> dict[str, tuple[Callable[[int], Any], Callable[[], dict[str, Any]]]]:
    """``env: (batched env of N copies, its AHT population)``: the IPD's nine scripted partners, and
    cooking's 16 published PPO agents (``cooking/agents``, trained networks; seat ``agent_1``, with the
    seat identity and role they were trained with, through ``as_policy``)."""
    from rqe_wrappers.envs.cooking import BatchedCooking
    from rqe_wrappers.envs.ipd import BatchedIPD
    from rqe_wrappers.eval.agents import as_policy
    from rqe_wrappers.zoo import load_population

    def cooking_agents() -> dict[str, Any]:
        env = BatchedCooking(1, "train")
        seat = env.possible_agents[1]
        obs, act = env.observation_space(seat), env.action_space(seat)
        return {n: as_policy(m, obs, act, seat_index=1, who=n) for n, m in load_population("cooking/agents").items()}

    return {
        "ipd": (BatchedIPD, lambda: load_population("ipd/train").policies()),
        "cooking": (lambda n: BatchedCooking(n, "train"), cooking_agents),
    }


def aht_speed(args: argparse.Namespace) -> dict[str, Any]:
    """AHT (2N copies, one learner slot each) vs self-play (N copies, two slots): agent-steps/s at 2N slots,
    per env of :func:`aht_populations` named in ``--envs``; as is, and ``*_fast``: infos at episode ends only
    (``step_infos=False``) and ``TimeLimitBootstrap``."""
    from rqe_wrappers.batched import batched_vec_env
    from rqe_wrappers.sb3 import AHTCallback, TimeLimitBootstrap

    if args.no_tables:  # the IPD partners index and draw on their own rows, one act call each (as before tables)
        from rqe_wrappers.partners.ipd import IPDPolicy

        IPDPolicy.tabular = lambda self: None  # type: ignore[method-assign]
    known = aht_populations()
    rows = []
    for name in [e for e in args.envs if e in known]:
        make, population = known[name]
        members = population()
        for n in args.copies:
            callbacks: dict[str, Any] = {"self_play": None, "aht": AHTCallback()}
            callbacks |= {"self_play_fast": TimeLimitBootstrap(), "aht_fast": [AHTCallback(), TimeLimitBootstrap()]}
            venvs = {
                f"{m}{tail}": batched_vec_env(
                    make(n if m == "self_play" else 2 * n),
                    seed=0,
                    reward_infos=False,
                    step_infos=not tail,
                    population=None if m == "self_play" else members,
                    device=args.device,  # the members act on the learner's device
                )
                for tail in ("", "_fast")
                for m in ("self_play", "aht")
            }
            models = {m: ppo_model(venvs[m], args, callbacks[m]) for m in venvs}
            blocks: dict[str, list[float]] = {m: [] for m in models}
            for _ in range(args.repeats):
                for m, model in models.items():
                    blocks[m].append(ppo_rate(model, args, callbacks[m]))
            rates = {m: max(b) for m, b in blocks.items()}
            paired = {tail: median_paired(blocks[f"aht{tail}"], blocks[f"self_play{tail}"]) for tail in ("", "_fast")}
            row = {
                "env": name,
                "population_size": len(members),
                "slots": 2 * n,
                "self_play_copies": n,
                "aht_copies": 2 * n,
                **{f"{m}_agent_steps_per_s": round(r) for m, r in rates.items()},
                "aht_over_self_play": round(rates["aht"] / rates["self_play"], 3),
                "aht_fast_over_self_play_fast": round(rates["aht_fast"] / rates["self_play_fast"], 3),
                "aht_over_self_play_median_paired": paired[""],
                "aht_fast_over_self_play_fast_median_paired": paired["_fast"],
                "blocks_agent_steps_per_s": {m: [round(r) for r in b] for m, b in blocks.items()},
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"rows": rows}


PHASES = ("env_step", "policy_forward", "buffer_add", "callbacks", "collect_rest", "train", "learn_rest")


def phases(args: argparse.Namespace) -> dict[str, Any]:
    """Where a PPO step's time goes: IPPO fast (``SRPOCallback`` + ``TimeLimitBootstrap``, ``step_infos=False``)
    beside the null env, per env and ``--copies``; milliseconds per VecEnv step of each phase, the median over
    ``--repeats`` interleaved blocks. ``collect_rest`` is SB3's collection loop outside the timed calls (the
    actions' copy to the host, clipping, the info buffer, the callbacks' locals), ``learn_rest`` is ``learn``'s
    own (its set-up and the callbacks' ``init_callback`` each block, the logger); on CUDA the policy's forward
    is timed up to a synchronisation, so its kernels count there and not in the next phase."""
    import torch
    from stable_baselines3.common.callbacks import BaseCallback

    from rqe_wrappers.batched import batched_vec_env
    from rqe_wrappers.sb3 import SRPOCallback, TimeLimitBootstrap

    cuda = args.device.startswith("cuda")
    spent: dict[str, float] = {}
    depth = [0]

    def timed(phase: str, fn: Callable[..., Any], sync: bool = False) -> Callable[..., Any]:
        def run(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            out = fn(*a, **k)
            if sync:
                torch.cuda.synchronize()
            spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - start
            return out

        return run

    on_step = BaseCallback.on_step

    def counted_on_step(self: Any) -> bool:  # the outermost callback's on_step only (lists call their children)
        depth[0] += 1
        start = time.perf_counter()
        try:
            return on_step(self)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                spent["callbacks"] = spent.get("callbacks", 0.0) + time.perf_counter() - start

    envs = batched_envs()
    rows = []
    BaseCallback.on_step = counted_on_step  # type: ignore[method-assign]
    try:
        for name in args.envs:
            for n in args.copies:
                callbacks: dict[str, Any] = {"ippo_fast": [SRPOCallback(), TimeLimitBootstrap()], "null": None}
                venv = batched_vec_env(envs[name](n), 0.0, seed=0, reward_infos=False, step_infos=False)
                models = {"ippo_fast": ppo_model(venv, args, callbacks["ippo_fast"])}
                models["null"] = ppo_model(null_vec_env(venv.num_envs, venv.observation_space, venv.action_space), args)
                for model in models.values():
                    model.env.step = timed("env_step", model.env.step)
                    model.policy.forward = timed("policy_forward", model.policy.forward, sync=cuda)
                    model.rollout_buffer.add = timed("buffer_add", model.rollout_buffer.add)
                    model.collect_rollouts = timed("collect", model.collect_rollouts)
                    model.train = timed("train", model.train)
                blocks: dict[str, dict[str, list[float]]] = {m: {} for m in models}
                steps = args.n_steps * args.rollouts
                for _ in range(args.repeats):
                    for m, model in models.items():
                        spent.clear()
                        wall = steps * model.get_env().num_envs / ppo_rate(model, args, callbacks[m])
                        inner = sum(spent.get(k, 0.0) for k in PHASES[:4])  # the phases timed inside collect
                        spent["collect_rest"] = spent.get("collect", 0.0) - inner
                        spent["learn_rest"] = wall - spent.get("collect", 0.0) - spent.get("train", 0.0)
                        for k in PHASES:
                            blocks[m].setdefault(k, []).append(1e3 * spent.get(k, 0.0) / steps)
                ms = {m: {k: round(float(np.median(v)), 4) for k, v in b.items()} for m, b in blocks.items()}
                row = {"env": name, "n_copies": n, "slots": venv.num_envs, "ms_per_step_median": ms}
                row["total_ms_per_step"] = {m: round(sum(v.values()), 4) for m, v in ms.items()}
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        BaseCallback.on_step = on_step  # type: ignore[method-assign]
    return {"rows": rows}


def monitor_cost(args: argparse.Namespace) -> dict[str, Any]:
    """Milliseconds per step of SRPO's batched VecEnv, bare and inside ``RoleVecMonitor``."""
    from rqe_wrappers.batched.vec_env import BatchedVecEnv
    from rqe_wrappers.sb3.monitor import RoleVecMonitor

    envs = batched_envs()
    rows = []
    for name in args.envs:
        for n in args.copies:
            best: dict[str, float] = {}
            for _ in range(args.repeats):
                for kind in ("bare", "monitored"):
                    inner = BatchedVecEnv(envs[name](n), args.tau, reward_infos=False)
                    inner.seed(0)
                    venv: Any = RoleVecMonitor(inner) if kind == "monitored" else inner
                    venv.reset()
                    actions = np.random.default_rng(0).integers(
                        0, venv.action_space.n, (args.steps_per_block, venv.num_envs)
                    )
                    start = time.perf_counter()
                    for a in actions:
                        venv.step(a)
                    ms = (time.perf_counter() - start) / args.steps_per_block * 1e3
                    best[kind] = min(best.get(kind, np.inf), ms)
            row = {
                "env": name,
                "n_copies": n,
                "slots": venv.num_envs,
                **{f"{k}_ms_per_step": round(v, 3) for k, v in best.items()},
            }
            row["monitor_ms_per_step"] = round(best["monitored"] - best["bare"], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"rows": rows}


def curves(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from stable_baselines3.common.callbacks import BaseCallback, CallbackList

    from rqe_wrappers.batched import batched_vec_env
    from rqe_wrappers.envs.matrix import BatchedMatrixGame, coordination_game, coordination_payoffs
    from rqe_wrappers.experiments.coordination import CoordinationRun, coordination_ppo
    from rqe_wrappers.sb3 import SRPOCallback, make_vec_env
    from rqe_wrappers.srpo.rqe import solve_rqe
    from rqe_wrappers.srpo.shadow import srpo_wrap

    class PartnerP(BaseCallback):
        """P(collaborate) of the partner role at the game's only state, after every rollout's update."""

        def __init__(self) -> None:
            super().__init__()
            self.p: list[float] = []

        def _on_step(self) -> bool:
            return True

        def _on_rollout_start(self) -> None:
            obs = torch.as_tensor(np.array([[0.0, 1.0, 0.0]], np.float32), device=self.model.device)
            with torch.no_grad():
                probs = cast(Any, self.model.policy).get_distribution(obs).distribution.probs
            self.p.append(float(probs[0, 1]))

    run = CoordinationRun(tau=args.tau, steps=args.steps, seat_id=False)
    pay = coordination_payoffs(run.cost)
    paths = {
        "batched": lambda seed: batched_vec_env(
            BatchedMatrixGame(pay, run.n_copies, time_limit=False), run.tau, seed=seed
        ),
        "per_copy": lambda seed: make_vec_env(
            lambda: srpo_wrap(coordination_game(run.cost), tau=run.tau), run.n_copies, seed=seed
        ),
    }
    out: dict[str, Any] = {"settings": {**run.__dict__}, "seeds": list(args.seeds)}
    for path, make in paths.items():
        per_seed, seconds = [], []
        for seed in args.seeds:
            torch.manual_seed(seed)
            venv = make(seed)
            model = coordination_ppo(run, venv, seed=seed, device="cpu")
            probe = PartnerP()
            t0 = time.perf_counter()
            model.learn(run.steps, callback=CallbackList([SRPOCallback(), probe]))
            seconds.append(time.perf_counter() - t0)
            probe._on_rollout_start()  # the final policy
            per_seed.append(probe.p)
            print(f"{path} seed {seed}: final P(collaborate) {probe.p[-1]:.3f} ({seconds[-1]:.1f} s)", flush=True)
        arr = np.array(per_seed)
        out[path] = {
            "p_collaborate": per_seed,
            "mean": arr.mean(axis=0).tolist(),
            "std": arr.std(axis=0, ddof=1).tolist(),
            "seconds": seconds,
        }
    a, b = (np.array(out[p]["p_collaborate"]) for p in paths)
    noise = np.sqrt((a.var(axis=0, ddof=1) + b.var(axis=0, ddof=1)) / len(args.seeds))  # s.e. of the gap
    gap = np.abs(a.mean(axis=0) - b.mean(axis=0))
    later = slice(len(gap) // 4, None)  # past the first quarter (both start at the same ~0.5)
    rqe = next(e for e in solve_rqe(pay, run.tau, run.eps) if abs(e.pi0[1] - e.pi1[1]) < 1e-6)
    out["comparison"] = {
        "max_gap_over_standard_error": float(np.max(gap[later] / np.maximum(noise[later], 1e-9))),
        "max_gap": float(np.max(gap)),
        "final_mean": {"batched": float(a[:, -1].mean()), "per_copy": float(b[:, -1].mean())},
        "final_std": {"batched": float(a[:, -1].std(ddof=1)), "per_copy": float(b[:, -1].std(ddof=1))},
        "symmetric_rqe_p_collaborate": float(rqe.pi0[1]),
    }
    print(json.dumps(out["comparison"], indent=2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", choices=("speed", "curves", "aht", "monitor", "phases"), default="speed")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (speed mode)")
    parser.add_argument("--envs", nargs="+", default=["cooking", "ipd"], help="batched envs (speed mode)")
    parser.add_argument("--copies", nargs="+", type=int, default=[256, 1024, 4096], help="env copies")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=["ippo", "srpo", "srpo_role", "ippo_fast", "srpo_fast", "srpo_role_fast"],
        help="speed mode's set-ups, each beside the null env (*_ends: step_infos=False; *_boot: + TimeLimitBootstrap; "
        "*_fast: both)",
    )
    parser.add_argument("--tau", type=float, default=2.0, help="SRPO's risk aversion")
    parser.add_argument("--n-steps", type=int, default=32, help="PPO n_steps (per slot per rollout)")
    parser.add_argument("--batch-size", type=int, default=8192, help="PPO minibatch size")
    parser.add_argument("--n-epochs", type=int, default=4, help="PPO epochs per rollout")
    parser.add_argument("--net-arch", nargs="+", type=int, default=[64, 64], help="policy/value MLP")
    parser.add_argument("--rollouts", type=int, default=2, help="rollouts per timed block")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks per setting (interleaved; best kept)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3], help="seeds (curves mode)")
    parser.add_argument("--steps", type=int, default=120_000, help="agent-steps per run (curves mode)")
    parser.add_argument("--steps-per-block", type=int, default=200, help="steps per timed block (monitor mode)")
    parser.add_argument("--no-tables", action="store_true", help="aht: switch the IPD partners' lookup tables off")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default benchmarks/results/batched-...)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mode == "curves":
        torch.set_num_threads(1)
        args.device = "cpu"
    result: dict[str, Any] = {"benchmark": f"bench_batched {args.mode}", "machine": machine(args.device)}
    if args.mode in ("speed", "aht", "phases"):
        result["ppo"] = {
            "n_steps": args.n_steps,
            "batch_size": args.batch_size,
            "n_epochs": args.n_epochs,
            "net_arch": args.net_arch,
            "normalize_advantage": False,
            "warmup_rollouts": 1,
            "rollouts_per_timed_block": args.rollouts,
            "timed_blocks_best_of": args.repeats,
            "srpo_tau": args.tau,
            "ippo_and_srpo_reward_infos": False,
            "ends_step_infos": False,
        }
    modes = {"speed": speed, "curves": curves, "aht": aht_speed, "monitor": monitor_cost, "phases": phases}
    result |= modes[args.mode](args)
    out = args.out or Path("benchmarks/results") / f"batched-{args.mode}-{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
