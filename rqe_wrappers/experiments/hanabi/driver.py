"""``rqe hanabi sweep``: train every (tau, seed) in parallel processes, then cross-play them all.

Writes to ``out``: ``hanabi<P>p-tau<T>-seed<S>.zip`` (one MaskablePPO model per run),
``crossplay.csv`` / ``crossplay.json`` (the tidy table), ``crossplay.png`` / ``.svg`` (the heatmap)
and ``results.json`` (set-up, machine, runs, random play's score, the cross-play summary).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rqe_wrappers.core.checks import integer
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.common import check_count, check_seeds, check_taus, machine_info, run_jobs, write_json
from rqe_wrappers.experiments.hanabi.env import PLAYERS, hanabi_config, max_score
from rqe_wrappers.experiments.hanabi.evaluation import EVAL_EPISODES, EVAL_SEED, hanabi_crossplay, random_score
from rqe_wrappers.experiments.hanabi.training import HANABI_PPO, train_hanabi
from rqe_wrappers.experiments.settings import PPOSettings, setting

RESULTS_FILE = "results.json"
MODEL_FILE = "hanabi{players}p-tau{tau:g}-seed{seed}.zip"

__all__ = ["HanabiSweep", "method_name", "run_sweep"]


@dataclass(frozen=True)
class HanabiSweep:
    """What ``rqe hanabi sweep`` runs: one learner per (tau, seed), then cross-play between all of them."""

    players: int = setting(2, "players (the paper: 2 and 4)", choices=PLAYERS)
    tau: tuple[float, ...] = setting((0.0, 1.0), "risk aversion(s); 0 = IPPO")
    seeds: tuple[int, ...] = setting((0, 1, 2, 3), "seeds, one learner per (tau, seed)")
    steps: int = setting(40_000, "learner moves per run (all seats' slots together)")
    jobs: int = setting(1, "processes: runs trained at once, then cross-play workers")
    out: Path = setting(Path("runs/hanabi"), "output directory")  # noqa: RUF009
    seat_id: bool = setting(True, "add the seat one-hot to the observation (SRPO's seat identity)")
    episodes: int = setting(EVAL_EPISODES, "cross-play episodes per seating")
    eval_seed: int = setting(EVAL_SEED, "cross-play episode e is reset with eval_seed + e")

    def __post_init__(self):
        if self.players not in PLAYERS:
            raise ConfigError(f"players must be one of {list(PLAYERS)}, got {self.players!r}")
        check_taus(self.tau)
        check_seeds(self.seeds)
        check_count(self.steps, "steps")
        check_count(self.jobs, "jobs")
        check_count(self.episodes, "episodes")
        integer("eval_seed", self.eval_seed, low=0)


def method_name(tau: float) -> str:
    """``"IPPO"`` for ``tau = 0``, else ``"SRPO tau=<tau>"``."""
    return "IPPO" if tau == 0 else f"SRPO tau={tau:g}"


def train_job(players: int, tau: float, seed: int, steps: int, settings: dict, seat_id: bool, out: str) -> dict:
    """One (tau, seed) run of the sweep, for worker processes: trains, saves into ``out``, returns metrics."""
    import torch

    torch.set_num_threads(1)
    model, metrics = train_hanabi(players, tau, seed, steps, PPOSettings.from_json(settings), seat_id=seat_id)
    path = Path(out) / _file(players, tau, seed)
    model.save(str(path))
    model.get_env().close()
    return {**metrics, "file": path.name}


def run_sweep(sweep: HanabiSweep, settings: PPOSettings = HANABI_PPO) -> dict[str, Any]:
    """Train, save, cross-play, summarise and plot; returns what ``results.json`` holds."""
    from sb3_contrib import MaskablePPO

    from rqe_wrappers.eval.stats import summarize_crossplay
    from rqe_wrappers.plots import plot_crossplay

    out = Path(sweep.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "game": {"openspiel": "hanabi", **hanabi_config(sweep.players)},
        "max_score": max_score(),
        "sweep": {**asdict(sweep), "out": str(out)},
        "settings": settings.to_json(),
        "machine": machine_info(),
        "runs": [],
    }
    runs = [(float(t), int(s)) for t in sweep.tau for s in sweep.seeds]
    print(
        f"hanabi {sweep.players}p: {len(runs)} runs of {sweep.steps} learner moves, {sweep.jobs} at a time", flush=True
    )

    def done(row: dict) -> None:
        report["runs"] = sorted([*report["runs"], row], key=lambda r: (r["tau"], r["seed"]))
        write_json(out / RESULTS_FILE, report, indent=2)
        print(
            f"[{time.perf_counter() - started:6.0f} s] {method_name(row['tau']):>12} seed {row['seed']}: "
            f"training score {row['train_return']:.2f}, {row['steps_per_s']:.0f} moves/s, {row['seconds']:.0f} s",
            flush=True,
        )

    args = [(sweep.players, t, s, sweep.steps, settings.to_json(), sweep.seat_id, str(out)) for t, s in runs]
    run_jobs(train_job, args, sweep.jobs, done)
    report["random_score"] = random_score(sweep.players, sweep.episodes, sweep.eval_seed)
    agents = {
        f"{method_name(t)} s{s}": MaskablePPO.load(str(out / _file(sweep.players, t, s)), device="cpu") for t, s in runs
    }
    methods = {f"{method_name(t)} s{s}": method_name(t) for t, s in runs}
    elapsed = time.perf_counter() - started
    print(f"[{elapsed:6.0f} s] cross-play: {len(agents)} agents, {sweep.episodes} episodes per seating", flush=True)
    table = hanabi_crossplay(
        agents,
        sweep.players,
        methods=methods,
        episodes=sweep.episodes,
        seed=sweep.eval_seed,
        n_workers=sweep.jobs if sweep.jobs > 1 else 0,
    )
    table.to_csv(out / "crossplay.csv")
    table.to_json(out / "crossplay.json")
    summary = summarize_crossplay(table, seed=sweep.eval_seed)
    report["crossplay"] = {"agents": list(table.agents), "matrix": table.matrix().tolist(), "summary": summary}
    plot_crossplay(
        table.matrix(),
        table.agents,
        table.methods,
        out / "crossplay",
        title=f"Hanabi {sweep.players}p 3x3 cross-play ({sweep.steps} moves per learner)",
        label="mean score (max 9)",
    )
    report["seconds"] = round(time.perf_counter() - started, 1)
    write_json(out / RESULTS_FILE, report, indent=2)
    for method, s in summary["per_method"].items():
        print(f"{method:>12}: self-play {s['self_play']:.2f}, within {_fmt(s['within'])}, across {_fmt(s['across'])}")
    print(f"random play: {report['random_score']:.2f}; wrote {out / RESULTS_FILE} in {report['seconds']:.0f} s")
    return report


def _file(players: int, tau: float, seed: int) -> str:
    return MODEL_FILE.format(players=players, tau=tau, seed=seed)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"
