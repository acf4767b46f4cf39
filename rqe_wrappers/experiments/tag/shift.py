"""``rqe tag shift``: SRPO/IPPO chasers on the batched path over (tau, seed), then runner and teammate shift.

Every (tau, seed) trains one chaser model (:func:`train_chasers_batched`) against one runner of the
zoo's ``tag/runners`` and is scored on mpe2's env (:func:`evaluate_chasers`, the reference numbers)
against every runner: the training runner, the other training-set runners, the held-out
``tag/runners-heldout`` and the scripted ``tag/evasive-runner`` and ``tag/still`` (*runner shift*).
Then all models play each other as chaser teammates, the training runner in its seat
(:func:`~rqe_wrappers.eval.crossplay.crossplay`, *teammate shift*). Docs: docs/tag.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rqe_wrappers.envs.tag import CHASERS, ENV_ID, RUNNER, tag_env
from rqe_wrappers.envs.tag_batched import BatchedTag
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.common import check_count, check_seeds, check_taus, machine_info, run_jobs, write_json
from rqe_wrappers.experiments.settings import PPOSettings, setting
from rqe_wrappers.experiments.tag.evaluation import EVAL_SEED, evaluate_chasers
from rqe_wrappers.experiments.tag.training import BATCHED_CHASER_PPO, _check_steps, train_chasers_batched

TRAIN_RUNNERS = "tag/runners"
HELDOUT_RUNNERS = "tag/runners-heldout"
SCRIPTED_RUNNERS = ("tag/evasive-runner", "tag/still")
SHIFT_OUT = Path("runs/tag/shift")
RESULTS_FILE = "results.json"
NO_FREE_RIDING = "N/A: Tag has no private cost (both chasers get the team's reward), so free-riding cannot be measured"


@dataclass(frozen=True)
class ShiftSweep:
    """What ``rqe tag shift`` runs: chasers for every (tau, seed) on the batched path, then both shifts."""

    tau: tuple[float, ...] = setting((0.0, 1.0), "risk aversion(s); 0 = IPPO (with seat identity)")
    seeds: tuple[int, ...] = setting(tuple(range(10)), "seeds, one chaser model per (tau, seed)")
    steps: int = setting(1_000_000, "agent-steps per (tau, seed)")
    train_runner: str = setting("runner-0", f"member of {TRAIN_RUNNERS} the chasers train against")
    out: Path = setting(SHIFT_OUT, "output dir (chasers-tau<T>-seed<S>.zip, results.json, crossplay.*)")  # noqa: RUF009
    jobs: int = setting(1, "(tau, seed) runs at once, one process (one torch thread) each")
    device: str = setting("cpu", '"cpu" or "cuda" (PPO\'s device; the env runs on the CPU)')
    eval_episodes: int = setting(16, "seeded mpe2 episodes per model and runner (runner shift)")
    crossplay_episodes: int = setting(32, "seeded episodes per seating of the teammate cross-play")

    def __post_init__(self) -> None:
        check_taus(self.tau)
        check_seeds(self.seeds)
        _check_steps(self.steps)
        check_count(self.jobs, "jobs")
        check_count(self.eval_episodes, "eval_episodes")
        check_count(self.crossplay_episodes, "crossplay_episodes")
        if not isinstance(self.train_runner, str) or not self.train_runner:
            raise ConfigError(f"train_runner must name a member of {TRAIN_RUNNERS}, e.g. 'runner-0'")


def method_name(tau: float) -> str:
    """``"IPPO"`` for tau 0, else ``"SRPO tau=<tau>"``."""
    return "IPPO" if float(tau) == 0 else f"SRPO tau={float(tau):g}"


def agent_name(tau: float, seed: int) -> str:
    """A model's name in the tables: ``ippo-s<seed>`` or ``srpo<tau>-s<seed>``."""
    return f"ippo-s{seed}" if float(tau) == 0 else f"srpo{float(tau):g}-s{seed}"


def opponents(train_runner: str = "runner-0") -> dict[str, dict[str, str]]:
    """Every runner of the runner shift: ``{name: {"agent": <agent string>, "group": ...}}``, training runner first.

    Groups: ``train`` (``train_runner``), ``train-set`` (the other members of ``tag/runners``),
    ``held-out`` (``tag/runners-heldout``), ``scripted`` (``tag/evasive-runner``, ``tag/still``).
    Members are given as ``"<population>:<member>"`` strings, loaded from the zoo where they are used.
    """
    from rqe_wrappers.zoo.client import load_population

    train_set = list(load_population(TRAIN_RUNNERS))
    if train_runner not in train_set:
        raise ConfigError(f"train_runner must be a member of {TRAIN_RUNNERS}: one of {train_set}, got {train_runner!r}")
    out = {train_runner: {"agent": f"{TRAIN_RUNNERS}:{train_runner}", "group": "train"}}
    out.update({m: {"agent": f"{TRAIN_RUNNERS}:{m}", "group": "train-set"} for m in train_set if m != train_runner})
    out.update({m: {"agent": f"{HELDOUT_RUNNERS}:{m}", "group": "held-out"} for m in load_population(HELDOUT_RUNNERS)})
    out.update({name: {"agent": name, "group": "scripted"} for name in SCRIPTED_RUNNERS})
    return out


def _model_file(tau: float, seed: int) -> str:
    return f"chasers-tau{float(tau):g}-seed{seed}.zip"


def shift_job(
    tau: float,
    seed: int,
    steps: int,
    device: str,
    runners: dict[str, str],
    train_runner: str,
    settings: dict[str, Any],
    eval_episodes: int,
    out: str,
) -> dict[str, Any]:
    """Train one (tau, seed) on the batched path, save it, score it against every runner on mpe2's env."""
    model, metrics = train_chasers_batched(
        tau,
        steps,
        runners[train_runner],
        seed,
        device,
        settings=PPOSettings.from_json(settings),
        eval_episodes=eval_episodes,
    )
    path = Path(out) / _model_file(tau, seed)
    model.save(str(path))
    ev = evaluate_chasers(model, runners, eval_episodes)
    return {"agent": agent_name(tau, seed), "method": method_name(tau), **metrics, "file": path.name, "eval": ev}


def runner_shift(rows: Sequence[Mapping[str, Any]], groups: Mapping[str, str], train_runner: str) -> dict[str, Any]:
    """Per method and runner: mean and std over seeds of the chaser return, and the share kept of the training score.

    ``rows``: the sweep's rows (``method``, ``eval.per_runner``). ``kept`` is the ratio of the
    means over seeds (this runner / the training runner); ``groups`` aggregates each group's runners
    (mean over the group's runners per seed, then over seeds).
    """
    out: dict[str, Any] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r["eval"]["per_runner"] for r in rows if r["method"] == method]
        base = float(np.mean([p[train_runner] for p in mine]))

        def entry(per_seed: np.ndarray, base: float = base) -> dict[str, Any]:
            mean = float(per_seed.mean())
            return {
                "mean": mean,
                "std": float(per_seed.std()),
                "kept": mean / base if base > 0 else None,
                "seeds": per_seed.tolist(),
            }

        by_group: dict[str, list[str]] = {}
        for name, group in groups.items():
            by_group.setdefault(group, []).append(name)
        out[method] = {
            "seeds": len(mine),
            "runners": {name: entry(np.array([p[name] for p in mine])) for name in groups},
            "groups": {
                g: entry(np.array([np.mean([p[n] for n in names]) for p in mine])) for g, names in by_group.items()
            },
        }
    return out


def runner_shift_table(shift: Mapping[str, Any], groups: Mapping[str, str]) -> str:
    """A markdown table: one row per runner (with its group), per method ``mean ± std (kept %)``."""
    methods = list(shift)
    head = "| runner | group | " + " | ".join(f"{m} (n={shift[m]['seeds']})" for m in methods) + " |"
    lines = [head, "|---|---|" + "---|" * len(methods)]

    def cell(e: Mapping[str, Any]) -> str:
        kept = "" if e["kept"] is None else f" ({100 * e['kept']:.0f} %)"
        return f"{e['mean']:.2f} ± {e['std']:.2f}{kept}"

    for name, group in groups.items():
        lines.append(f"| {name} | {group} | " + " | ".join(cell(shift[m]["runners"][name]) for m in methods) + " |")
    for g in dict.fromkeys(groups.values()):
        lines.append(f"| *all {g}* | {g} | " + " | ".join(cell(shift[m]["groups"][g]) for m in methods) + " |")
    return "\n".join(lines) + "\n"


def batched_tag(n_copies: int) -> BatchedTag:
    """Tag's batched twin with ``n_copies`` copies (the cross-play's ``batched=``)."""
    return BatchedTag(n_copies=n_copies)


def teammate_shift(
    models: Mapping[str, str | Path],
    methods: Mapping[str, str],
    runner: str,
    out: str | Path,
    *,
    episodes: int = 32,
    seed: int = EVAL_SEED,
    n_workers: int = 0,
) -> dict[str, Any]:
    """Cross-play of chaser models (``{name: SB3 zip}``) in the chaser seats, ``runner`` in its seat.

    Writes ``crossplay.json`` / ``crossplay.csv`` (the tidy table) and ``crossplay.png`` / ``.svg``
    (the heatmap) to ``out``; returns :func:`~rqe_wrappers.eval.stats.summarize_crossplay`'s summary
    with ``free_riding`` set to why it does not apply to Tag.
    """
    from rqe_wrappers.eval.crossplay import crossplay
    from rqe_wrappers.eval.stats import summarize_crossplay
    from rqe_wrappers.plots import plot_crossplay
    from rqe_wrappers.sb3.sb3_policy import SB3Policy

    out = Path(out)
    agents = {name: SB3Policy.from_model(_load_ppo(path)) for name, path in models.items()}
    result = crossplay(
        agents,
        tag_env,
        methods=methods,
        seats=CHASERS,
        background={RUNNER: runner},
        episodes=episodes,
        seed=seed,
        n_workers=n_workers,
        batch=episodes,
        batched=batched_tag,
    )
    result.to_json(out / "crossplay.json")
    result.to_csv(out / "crossplay.csv")
    plot_crossplay(
        result.matrix(),
        result.agents,
        result.methods,
        out / "crossplay",
        title=f"Tag teammate shift (runner {runner})",
        label="chaser return (collision-steps per episode)",
    )
    summary = summarize_crossplay(result, seed=seed)
    summary["free_riding"] = NO_FREE_RIDING
    summary["matrix"] = {"agents": list(result.agents), "values": result.matrix().tolist()}
    return summary


def _load_ppo(path: str | Path) -> Any:
    from stable_baselines3 import PPO

    return PPO.load(str(path), device="cpu")


def run_shift(
    taus: Sequence[float],
    steps: int,
    out: str | Path,
    *,
    seeds: Sequence[int] = tuple(range(10)),
    train_runner: str = "runner-0",
    device: str = "cpu",
    settings: PPOSettings = BATCHED_CHASER_PPO,
    eval_episodes: int = 16,
    crossplay_episodes: int = 32,
    jobs: int = 1,
) -> dict[str, Any]:
    """Train chasers for every (tau, seed) on the batched path; measure runner shift and teammate shift.

    Writes to ``out``: ``chasers-tau<T>-seed<S>.zip`` (SB3 files), ``results.json`` (set-up,
    machine, one row per run with its training curve and per-runner scores, ``runner_shift``,
    ``teammate_shift``, timings; rewritten as runs finish), ``runner-shift.md`` (the table),
    ``crossplay.json`` / ``.csv`` / ``.png`` / ``.svg``. ``jobs`` runs train at once (one process each);
    the cross-play then plays on ``jobs`` worker processes.
    """
    start = time.perf_counter()
    steps = _check_steps(steps)
    jobs = check_count(jobs, "jobs")
    seeds = check_seeds(seeds)
    check_taus(taus)
    if not isinstance(settings, PPOSettings):
        raise ConfigError(f"settings must be a PPOSettings, e.g. BATCHED_CHASER_PPO; got {type(settings).__name__}")
    if settings.n_workers:
        raise ConfigError(f"the batched path takes n_workers=0 (use jobs for parallel runs), got {settings.n_workers}")
    runners = opponents(train_runner)
    groups = {name: r["group"] for name, r in runners.items()}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "env": ENV_ID,
        "path": "batched (BatchedTag) training, mpe2 evaluation",
        "train_runner": f"{TRAIN_RUNNERS}:{train_runner}",
        "runners": runners,
        "taus": [float(t) for t in taus],
        "seeds": seeds,
        "steps": steps,
        "eval_episodes": int(eval_episodes),
        "crossplay_episodes": int(crossplay_episodes),
        "eval_seed": EVAL_SEED,
        "settings": settings.to_json(),
        "machine": machine_info(),
        "reward": "scaled x0.1: chaser-runner collision-steps per episode (both chasers get it)",
        "rows": [],
    }
    print(
        f"tag shift: {len(taus)} tau x {len(seeds)} seeds, {steps} agent-steps each, {jobs} jobs -> {out}", flush=True
    )

    def done(row: dict[str, Any]) -> None:
        report["rows"] = sorted([*report["rows"], row], key=lambda r: (r["tau"], r["seed"]))
        write_json(out / RESULTS_FILE, report, indent=1)
        per = row["eval"]["per_runner"]
        print(
            f"[{time.perf_counter() - start:6.0f} s] {row['agent']:>14}: training runner {per[train_runner]:6.2f}  "
            f"evasive {per['tag/evasive-runner']:6.2f}  worst {row['eval']['worst_case']:6.2f} "
            f"({row['eval']['worst_runner']})  {row['agent_steps_per_s']:7.0f} agent-steps/s  {row['seconds']:5.0f} s",
            flush=True,
        )

    agents = {name: r["agent"] for name, r in runners.items()}
    args = [
        (float(t), s, steps, device, agents, train_runner, settings.to_json(), int(eval_episodes), str(out))
        for t in taus
        for s in seeds
    ]
    run_jobs(shift_job, args, jobs, done)
    trained = time.perf_counter() - start
    report["runner_shift"] = runner_shift(report["rows"], groups, train_runner)
    table = runner_shift_table(report["runner_shift"], groups)
    (out / "runner-shift.md").write_text(table, encoding="utf-8")
    print(table, flush=True)
    print(f"[{time.perf_counter() - start:6.0f} s] teammate cross-play of {len(report['rows'])} models ...", flush=True)
    report["teammate_shift"] = teammate_shift(
        {r["agent"]: out / r["file"] for r in report["rows"]},
        {r["agent"]: r["method"] for r in report["rows"]},
        agents[train_runner],
        out,
        episodes=crossplay_episodes,
        n_workers=jobs if jobs > 1 else 0,
    )
    report["seconds"] = {"training": trained, "total": time.perf_counter() - start}
    write_json(out / RESULTS_FILE, report, indent=1)
    ts = report["teammate_shift"]
    for method, m in ts["per_method"].items():
        print(
            f"teammate shift {method:>14}: self-play {m['self_play']:6.2f}, within {m['within']}, across {m['across']}"
        )
    print(
        f"self-play {ts['self_play']['mean']:.2f}, cross-play {ts['cross_play'].get('mean', float('nan')):.2f}; "
        f"worst pairing {ts.get('worst_pairing')}",
        flush=True,
    )
    print(f"[{report['seconds']['total']:6.0f} s] wrote {out / RESULTS_FILE}", flush=True)
    return report
