"""``rqe tag``'s runs: runners over seeds, then SRPO/IPPO chasers over (tau, seed), with their reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rqe_wrappers.envs.tag import CHASERS, ENV_ID, MAX_CYCLES, REWARD_SCALE, RUNNER, seat_spaces
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.common import check_count, check_seeds, check_taus, machine_info, run_jobs, write_json
from rqe_wrappers.experiments.settings import PPOSettings, setting
from rqe_wrappers.experiments.tag.evaluation import (
    DEFAULT_CHASERS,
    EVAL_EPISODES,
    EVAL_SEED,
    evaluate_chasers,
    evaluate_runner,
)
from rqe_wrappers.experiments.tag.training import (
    CHASER_PPO,
    RUNNER_FILE,
    RUNNER_PPO,
    _check_steps,
    load_runner,
    runner_files,
    train_chasers,
    train_runner,
)

METRICS_FILE = "metrics.json"
RUNNERS_OUT = Path("runs/tag/runners")
SRPO_OUT = Path("runs/tag/srpo")


@dataclass(frozen=True)
class RunnerSweep:
    """What ``rqe tag train-runners`` runs: one runner per seed against scripted chasers."""

    seeds: tuple[int, ...] = setting((0,), "seeds, one runner each")
    steps: int = setting(200_000, "agent-steps per runner")
    out: Path = setting(RUNNERS_OUT, "output directory (runner-seed<N>.zip, metrics.json)")  # noqa: RUF009
    jobs: int = setting(1, "seeds trained at once, one process each")
    device: str = setting("cpu", '"cpu" (faster for these small MLPs) or "cuda"')
    chasers: str = setting(DEFAULT_CHASERS, "scripted chaser policy (registered name)")
    eval_episodes: int = setting(EVAL_EPISODES, "seeded evaluation episodes per runner")

    def __post_init__(self):
        check_seeds(self.seeds)
        _check_steps(self.steps)
        check_count(self.jobs, "jobs")
        check_count(self.eval_episodes, "eval_episodes")


@dataclass(frozen=True)
class ChaserSweep:
    """What ``rqe tag srpo`` runs: chasers for every (tau, seed) against one saved runner."""

    runners: Path = field(metadata={"help": "directory written by `rqe tag train-runners`"})
    tau: tuple[float, ...] = setting((0.0, 1.0), "risk aversion(s); 0 = IPPO")
    steps: int = setting(500_000, "agent-steps per (tau, seed)")
    train_runner: int | None = setting(
        None, "seed of the runner the chasers train against (none = the lowest seed in --runners)"
    )
    seeds: tuple[int, ...] = setting((0,), "seeds, one chaser model per (tau, seed)")
    out: Path = setting(SRPO_OUT, "output dir (chasers-tau<T>-seed<S>.zip, results.json)")  # noqa: RUF009
    jobs: int = setting(1, "(tau, seed) runs at once, one process each")
    device: str = setting("cpu", '"cpu" or "cuda"')
    eval_episodes: int = setting(EVAL_EPISODES, "seeded evaluation episodes per runner")

    def __post_init__(self):
        check_taus(self.tau)
        check_seeds(self.seeds)
        _check_steps(self.steps)
        check_count(self.jobs, "jobs")
        check_count(self.eval_episodes, "eval_episodes")


def _runner_job(seed: int, steps: int, device: str, chasers: str, settings: dict, eval_episodes: int, out: str) -> dict:
    model, metrics = train_runner(
        seed, steps, device, chasers, settings=PPOSettings.from_json(settings), eval_episodes=eval_episodes
    )
    path = Path(out) / RUNNER_FILE.format(seed=seed)
    model.save(str(path))
    return {**metrics, "file": path.name}


def train_runners(
    seeds: Sequence[int],
    steps: int,
    out: str | Path,
    *,
    device: str = "cpu",
    chasers: str = DEFAULT_CHASERS,
    settings: PPOSettings = RUNNER_PPO,
    eval_episodes: int = EVAL_EPISODES,
    jobs: int = 1,
) -> dict[str, Any]:
    """Train one runner per seed (``jobs`` at a time, one process each); write zips + ``metrics.json``.

    ``metrics.json`` (rewritten as each runner finishes) holds the set-up, machine info, baselines
    (still, evasive and uniform-random runners against the same chasers and evaluation episodes)
    and one entry per runner (:func:`train_runner`'s metrics plus ``file``).
    """
    from rqe_wrappers.core.policy import RandomPolicy

    steps = _check_steps(steps)
    jobs = check_count(jobs, "jobs")
    seeds = check_seeds(seeds)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "env": ENV_ID,
        "env_settings": {
            "runner": RUNNER,
            "chasers": list(CHASERS),
            "obstacles": 2,
            "max_cycles": MAX_CYCLES,
            "reward_scale": REWARD_SCALE,
        },
        "chasers": chasers,
        "steps": steps,
        "eval_episodes": int(eval_episodes),
        "eval_seed": EVAL_SEED,
        "reward": "scaled x0.1; runner_return: mean runner episode return, chaser_return: collision-steps per episode",
        "settings": settings.to_json(),
        "machine": machine_info(),
        "baselines": {},
        "runners": [],
    }

    def baselines() -> None:
        runner_obs, runner_act = seat_spaces(RUNNER)
        for name, agent in (
            ("tag/still", "tag/still"),
            ("tag/evasive-runner", "tag/evasive-runner"),
            ("random", RandomPolicy(runner_obs, runner_act)),
        ):
            report["baselines"][name] = evaluate_runner(agent, chasers, eval_episodes)
            print(
                f"baseline {name:>20}: runner {report['baselines'][name]['runner_return']:8.2f}  "
                f"chaser {report['baselines'][name]['chaser_return']:6.2f}",
                flush=True,
            )
        write_json(out / METRICS_FILE, report, indent=2)

    def done(metrics: dict) -> None:
        report["runners"] = sorted([*report["runners"], metrics], key=lambda m: m["seed"])
        write_json(out / METRICS_FILE, report, indent=2)
        print(
            f"runner seed {metrics['seed']:>5}: runner {metrics['runner_return']:8.2f}  chaser "
            f"{metrics['chaser_return']:6.2f}  {metrics['agent_steps_per_s']:7.0f} agent-steps/s  "
            f"{metrics['seconds']:6.0f} s -> {out / metrics['file']}",
            flush=True,
        )

    args = [(s, steps, device, chasers, settings.to_json(), int(eval_episodes), str(out)) for s in seeds]
    run_jobs(_runner_job, args, jobs, done, baselines)
    print(f"wrote {out / METRICS_FILE}")
    return report


def _chaser_job(
    tau: float,
    seed: int,
    steps: int,
    device: str,
    train_runner_path: str,
    runners: dict[str, str],
    settings: dict,
    eval_episodes: int,
    out: str,
) -> dict:
    model, metrics = train_chasers(
        tau,
        steps,
        load_runner(train_runner_path),
        seed,
        device,
        settings=PPOSettings.from_json(settings),
        eval_episodes=eval_episodes,
    )
    path = Path(out) / f"chasers-tau{tau:g}-seed{seed}.zip"
    model.save(str(path))
    opponents = {name: (load_runner(p) if p.endswith(".zip") else p) for name, p in runners.items()}
    ev = evaluate_chasers(model, opponents, eval_episodes)
    return {**metrics, "file": path.name, "eval": ev}


def run_srpo(
    taus: Sequence[float],
    steps: int,
    runners_dir: str | Path,
    out: str | Path,
    *,
    seeds: Sequence[int] = (0,),
    train_runner_seed: int | None = None,
    device: str = "cpu",
    settings: PPOSettings = CHASER_PPO,
    eval_episodes: int = EVAL_EPISODES,
    jobs: int = 1,
) -> dict[str, Any]:
    """Train chasers for every (tau, seed) against one saved runner; evaluate them against every runner.

    The opponents are all ``runner-seed<N>.zip`` in ``runners_dir`` (the training runner and the
    held-out ones) plus the scripted ``tag/evasive-runner``. Writes ``chasers-tau<T>-seed<S>.zip``
    and ``results.json`` to ``out``.
    """
    steps = _check_steps(steps)
    jobs = check_count(jobs, "jobs")
    files = runner_files(runners_dir)
    train_seed = min(files) if train_runner_seed is None else int(train_runner_seed)
    if train_seed not in files:
        raise ConfigError(f"no runner with seed {train_seed} in {runners_dir}; there are seeds {sorted(files)}")
    check_taus(taus)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    opponents = {f"seed{s}": str(p.resolve()) for s, p in files.items()}
    opponents["tag/evasive-runner"] = "tag/evasive-runner"
    report: dict[str, Any] = {
        "env": ENV_ID,
        "train_runner": f"seed{train_seed}",
        "runners_dir": str(Path(runners_dir).resolve()),
        "steps": steps,
        "settings": settings.to_json(),
        "machine": machine_info(),
        "reward": "scaled x0.1: chaser-runner collision-steps per episode",
        "rows": [],
    }

    def done(row: dict) -> None:
        report["rows"] = sorted([*report["rows"], row], key=lambda r: (r["tau"], r["seed"]))
        write_json(out / "results.json", report, indent=2)
        ev = row["eval"]
        trained_on = ev["per_runner"][report["train_runner"]]
        print(
            f"tau {row['tau']:6.2f} seed {row['seed']:>3}: vs training runner {trained_on:6.2f}"
            f"  worst {ev['worst_case']:6.2f} ({ev['worst_runner']})  mean {ev['mean']:6.2f}  "
            f"{row['agent_steps_per_s']:6.0f} agent-steps/s",
            flush=True,
        )

    args = [
        (
            float(t),
            int(s),
            steps,
            device,
            str(files[train_seed]),
            opponents,
            settings.to_json(),
            int(eval_episodes),
            str(out),
        )
        for t in taus
        for s in seeds
    ]
    run_jobs(_chaser_job, args, jobs, done)
    print(f"wrote {out / 'results.json'}")
    return report
