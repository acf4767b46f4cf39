"""Raw env throughput: each batched env (the rules over N copies as arrays) vs its PettingZoo env
stepped in a Python loop, written as JSON.

For the cooking gridworld (train layout), the IPD (3 rounds), the coordination game (10 rounds) and
the paper's Tag (``tag_env()`` vs ``BatchedTag``), copy-steps/s (one copy-step = one joint step of
every seat = 2 agent-steps; 3 for Tag) of

- the PettingZoo parallel env in a loop (``step`` with a dict of actions, ``reset`` at episode end);
- the batched core at N = 1, 64, 1024, 4096 copies (``step`` with an ``(N, 2)`` array, finished
  copies reset with ``reset(copies=...)``, as a VecEnv would).

Actions are random, drawn beforehand (a pool cycled through), so their drawing is not timed. Each
figure is the best of ``--repeats`` interleaved timed blocks of at least ``--seconds`` each; the
ratios (batched / PettingZoo loop) are the numbers to compare across machines, the absolute
numbers are for the machine in ``machine``.

Usage:
    python benchmarks/bench_envs.py --out benchmarks/results/envs-cpu.json
    python benchmarks/bench_envs.py --envs tag  # re-measure some envs, keep the others' rows in --out
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

COPIES = (1, 64, 1024, 4096)
POOL = 64


def _envs() -> dict[str, tuple[Callable[[], Any], Callable[[int], Any], str]]:
    from rqe_wrappers.envs.cooking import BatchedCooking, cooking_env
    from rqe_wrappers.envs.ipd import BatchedIPD, IPDEnv
    from rqe_wrappers.envs.matrix import BatchedMatrixGame, MatrixGameEnv, coordination_payoffs
    from rqe_wrappers.envs.tag import tag_env
    from rqe_wrappers.envs.tag_batched import BatchedTag

    pay = coordination_payoffs(0.5)
    return {
        "cooking": (lambda: cooking_env("train"), lambda n: BatchedCooking(n, "train"), "train layout, 100 steps"),
        "ipd": (lambda: IPDEnv(3), lambda n: BatchedIPD(n, rounds=3), "3 rounds"),
        "coordination": (
            lambda: MatrixGameEnv(pay, rounds=10, name="coordination_v0", time_limit=False),
            lambda n: BatchedMatrixGame(pay, n, rounds=10, time_limit=False),
            "cost 0.5, 10 rounds",
        ),
        "tag": (tag_env, BatchedTag, "mpe2 simple_tag_v3, 1 runner, 2 chasers, 100 cycles; 3 seats"),
    }


def loop_rate(make: Callable[[], Any], seconds: float, rng: np.random.Generator) -> float:
    """Copy-steps/s of one PettingZoo parallel env stepped in a Python loop."""
    env = make()
    agents = list(env.possible_agents)
    sizes = [env.action_space(a).n for a in agents]
    pool = [{a: int(rng.integers(n)) for a, n in zip(agents, sizes, strict=True)} for _ in range(POOL)]
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while True:
        for _ in range(200):
            _, _, terms, truncs, _ = env.step(pool[steps % POOL])
            steps += 1
            if any(terms.values()) or any(truncs.values()):
                env.reset()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps / elapsed


def batched_rate(core: Any, seconds: float, rng: np.random.Generator) -> float:
    """Copy-steps/s of a batched core (finished copies reset as a VecEnv would)."""
    n = core.n_copies
    sizes = [core.action_space(a).n for a in core.possible_agents]
    pool = [np.stack([rng.integers(0, s, n) for s in sizes], axis=1) for _ in range(POOL)]
    core.reset(seeds=0)
    steps, start = 0, time.perf_counter()
    while True:
        for _ in range(20):
            out = core.step(pool[steps % POOL])
            steps += 1
            done = out.terminated | out.truncated
            if done.any():
                core.reset(copies=np.flatnonzero(done))
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps * n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/envs-cpu.json")
    parser.add_argument("--seconds", type=float, default=0.5, help="minimum length of one timed block")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timed blocks; the best is kept")
    parser.add_argument("--envs", nargs="+", choices=sorted(_envs()), help="only these (other rows of --out are kept)")
    args = parser.parse_args()

    import gymnasium
    import pettingzoo

    rng = np.random.default_rng(0)
    results: dict[str, Any] = {}
    if args.envs and os.path.exists(args.out):
        with open(args.out, encoding="utf-8") as f:
            results = json.load(f)["results"]
    for name, (make, make_core, settings) in _envs().items():
        if args.envs and name not in args.envs:
            continue
        cores = {n: make_core(n) for n in COPIES}
        loop, batched = [], {n: [] for n in COPIES}
        for _ in range(args.repeats):
            loop.append(loop_rate(make, args.seconds, rng))
            for n in COPIES:
                batched[n].append(batched_rate(cores[n], args.seconds, rng))
        best_loop = max(loop)
        results[name] = {
            "settings": settings,
            "pettingzoo_loop_copy_steps_per_s": round(best_loop),
            "batched_copy_steps_per_s": {str(n): round(max(v)) for n, v in batched.items()},
            "ratio_batched_over_loop": {str(n): round(max(v) / best_loop, 2) for n, v in batched.items()},
        }
        print(name, json.dumps(results[name]))
    report = {
        "benchmark": "bench_envs",
        "what": "raw env copy-steps/s (1 copy-step = every seat acts = 2 agent-steps, 3 for tag), random actions",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "device": "cpu (numpy, one process)",
            "note": "absolute numbers are for this machine; compare the ratios",
            "load_avg_1m_at_end": os.getloadavg()[0],
        },
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pettingzoo": pettingzoo.__version__,
            "gymnasium": gymnasium.__version__,
        },
        "settings": {"copies": list(COPIES), "seconds_per_block": args.seconds, "repeats": args.repeats},
        "results": results,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
