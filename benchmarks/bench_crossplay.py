"""Throughput of cross-play (rqe_wrappers.eval.crossplay) on Tag: episodes per second, one process vs workers.

A 10 x 10 cross-play of chasers on the paper's Tag (mpe2 simple_tag_v3, 100 steps per episode):
three scripted chasers (``tag/greedy-chaser``, ``tag/still``, uniform random) and seven SB3
``MlpPolicy`` chasers ([64, 64], the runners' architecture, freshly initialised with seeds 0-6:
the cost of a trained network's forward pass without training one), with the published runner
``tag/runners:runner-0`` (an SB3 member) in the runner seat. Every ordered pairing plays
``--episodes`` episodes per seating: 100 seatings x ``--episodes`` episodes in all, each one 100
lock-step env steps with three policy calls (batched over ``batch=32`` episodes).

Reported per ``--workers`` value: wall seconds of ``crossplay`` (worker start-up included),
episodes/s and env steps/s, the speed-up over one process, and that every run gave the same table.

Usage:
    python benchmarks/bench_crossplay.py --out benchmarks/results/crossplay-cpu.json
    python benchmarks/bench_crossplay.py --quick  # 10 episodes per pairing (1,000 episodes)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

N_MLP = 7


def agents() -> tuple[dict, dict]:
    """The ten chasers and their methods."""
    import torch
    from stable_baselines3.common.policies import ActorCriticPolicy

    from rqe_wrappers.core.policy import RandomPolicy
    from rqe_wrappers.envs.tag import CHASERS, seat_spaces
    from rqe_wrappers.sb3 import SB3Policy

    obs, act = seat_spaces(CHASERS[0])
    out: dict = {"greedy": "tag/greedy-chaser", "still": "tag/still", "random": RandomPolicy(obs, act)}
    methods = dict.fromkeys(out, "scripted")
    for seed in range(N_MLP):
        torch.manual_seed(seed)
        net = ActorCriticPolicy(obs, act, lambda _: 0.0, net_arch=[64, 64])
        out[f"mlp-{seed}"] = SB3Policy(net)
        methods[f"mlp-{seed}"] = "mlp"
    return out, methods


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--episodes", type=int, default=100, help="episodes per seating (default: 100)")
    p.add_argument("--quick", action="store_true", help="10 episodes per seating")
    p.add_argument("--workers", default="0,2", help="comma-separated n_workers values (default: 0,2)")
    p.add_argument("--out", default="benchmarks/results/crossplay-cpu.json")
    p.add_argument("--note", default="", help="a remark stored in the JSON (e.g. why the run is not full size)")
    a = p.parse_args(argv)
    episodes = 10 if a.quick else a.episodes

    import numpy as np

    from rqe_wrappers.envs.tag import CHASERS, RUNNER, tag_env
    from rqe_wrappers.eval import crossplay
    from rqe_wrappers.experiments.common import machine_info, write_json

    chasers, methods = agents()
    runs = []
    tables = []
    for workers in [int(w) for w in a.workers.split(",")]:
        t0 = time.perf_counter()
        result = crossplay(
            chasers,
            tag_env,
            methods=methods,
            seats=list(CHASERS),
            background={RUNNER: "tag/runners:runner-0"},
            episodes=episodes,
            seed=0,
            n_workers=workers,
        )
        seconds = time.perf_counter() - t0
        n = len(chasers) ** 2 * episodes
        runs.append(
            {
                "n_workers": workers,
                "seconds": seconds,
                "episodes": n,
                "episodes_per_s": n / seconds,
                "env_steps_per_s": n * 100 / seconds,
            }
        )
        tables.append(result.matrix())
        print(json.dumps(runs[-1]), flush=True)
    base = runs[0]["episodes_per_s"]
    for r in runs:
        r["speedup_vs_first"] = r["episodes_per_s"] / base

    result = {
        "benchmark": "10 x 10 cross-play of Tag chasers (3 scripted + 7 SB3 MLPs), runner tag/runners:runner-0",
        "episodes_per_seating": episodes,
        "seatings": len(chasers) ** 2,
        "full_size": episodes == 100,
        "note": a.note,
        "runs": runs,
        "same_table_for_every_worker_count": all(np.array_equal(t, tables[0]) for t in tables),
        "mean_chaser_return_matrix": tables[0].round(4).tolist(),
        "agents": list(result.agents),
        "machine": {**machine_info(), "load_avg": os.getloadavg()},
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_json(Path(a.out), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
