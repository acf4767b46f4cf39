"""The SRPO paper's cooking gridworld (appendix D.2): IPPO vs SRPO over seeds and tau, cross-play, free-riding.

Training runs on the batched path (``batched_vec_env(BatchedCooking(...))``, seat identity on so
IPPO can free-ride), one process per (tau, seed); evaluation is cross-play between every pair of
trained agents on the training and the held-out layout, played on the batched twin (the same
table as the PettingZoo env's, tens of times faster). Docs: docs/results/srpo.md.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rqe_wrappers.envs.cooking import LAYOUT_ROWS, MAX_STEPS, BatchedCooking, cooking_env, obs_size
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.common import check_count, check_seeds, check_taus, machine_info, run_jobs, write_json
from rqe_wrappers.experiments.settings import PPOSettings, setting

__all__ = [
    "COOKING_PPO",
    "CookingSweep",
    "draw_figures",
    "free_riding_degree",
    "method_name",
    "run_cooking",
    "summarize_methods",
    "summary_table",
    "train_cooking",
    "train_job",
]

#: PPO for the cooking gridworld on the batched path: 128 copies (256 slots) x 128 steps per rollout.
COOKING_PPO = PPOSettings(
    n_copies=128, n_steps=128, batch_size=4096, n_epochs=4, learning_rate=3e-4, ent_coef=0.01, net_arch=(64, 64)
)
#: The paper's training rollouts last 128 steps (its cross-play episodes 100: ``MAX_STEPS``).
TRAIN_STEPS_PER_EPISODE = 128
MODEL_FILE = "cooking-tau{tau:g}-seed{seed}.zip"
#: ``"role"``: SRPO with separate partner and shadow networks (RolePolicy); ``"shared"``: one MlpPolicy.
POLICIES = ("role", "shared")


def method_name(tau: float) -> str:
    """``"IPPO"`` for ``tau = 0``, else ``"SRPO tau=<tau>"``."""
    return "IPPO" if float(tau) == 0 else f"SRPO tau={float(tau):g}"


def _check_layouts(layouts: Sequence[str]) -> tuple[str, ...]:
    bad = [x for x in layouts if x not in LAYOUT_ROWS]
    if bad or not layouts:
        raise ConfigError(f"layouts must be among {sorted(LAYOUT_ROWS)}, got {list(layouts)}")
    return tuple(layouts)


def train_cooking(
    tau: float,
    steps: int,
    seed: int = 0,
    device: str = "cpu",
    *,
    settings: PPOSettings = COOKING_PPO,
    layout: str = "train",
    max_steps: int = TRAIN_STEPS_PER_EPISODE,
    policy: str = "role",
) -> tuple[Any, dict[str, Any]]:
    """Stock PPO (+ ``SRPOCallback``, ``TimeLimitBootstrap``) on ``batched_vec_env(BatchedCooking(...), tau)``.

    One policy plays both seats; the seat one-hot lets IPPO (``tau = 0``) learn two different roles
    (free-riding), as the paper's IPPO can. ``policy``: ``"role"`` gives SRPO (``tau > 0``) separate
    networks for the partner and the shadow (:class:`~rqe_wrappers.sb3.role_policy.RolePolicy`, as
    the paper's separate adversary); ``"shared"`` one ``MlpPolicy`` for both roles. IPPO always uses
    ``MlpPolicy``. Returns ``(model, metrics)``; metrics: ``tau, method, seed, steps, device,
    seconds, agent_steps_per_s, layout, max_steps, policy, settings``.
    """
    from stable_baselines3 import PPO

    from rqe_wrappers.batched import batched_vec_env
    from rqe_wrappers.sb3 import SRPOCallback, TimeLimitBootstrap
    from rqe_wrappers.sb3.role_policy import RolePolicy

    (tau,) = check_taus([tau])
    steps = check_count(steps, "steps")
    _check_layouts([layout])
    if policy not in POLICIES:
        raise ConfigError(f"policy must be one of {POLICIES}, got {policy!r}")
    env = BatchedCooking(n_copies=settings.n_copies, layout=layout, max_steps=max_steps)
    venv = batched_vec_env(env, tau, seed=seed, seat_id=True, reward_infos=False, step_infos=False)
    policy_class: Any = RolePolicy if policy == "role" and tau > 0 else "MlpPolicy"
    model = PPO(
        policy_class, venv, normalize_advantage=False, seed=seed, device=device, verbose=0, **settings.ppo_kwargs()
    )
    start = time.perf_counter()
    model.learn(steps, callback=[SRPOCallback(), TimeLimitBootstrap()])
    seconds = time.perf_counter() - start
    metrics = {
        "tau": tau,
        "method": method_name(tau),
        "seed": int(seed),
        "steps": int(model.num_timesteps),
        "device": device,
        "seconds": seconds,
        "agent_steps_per_s": model.num_timesteps / seconds,
        "layout": layout,
        "max_steps": max_steps,
        "policy": "MlpPolicy" if isinstance(policy_class, str) else policy_class.__name__,
        "settings": settings.to_json(),
    }
    venv.close()
    return model, metrics


def free_riding_degree(result: Any) -> dict[tuple[str, str], float]:
    """``{(agent in seat 0, agent in seat 1): |mean cost of seat 0 - mean cost of seat 1|}`` per seating.

    The paper's degree of free-riding (section 4.2): the difference in the private costs the two
    players pay; over a cross-play table (``crossplay(...)`` on cooking) per ordered seating.
    """
    first = result.seats[0]
    costs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in result.rows:
        if r["agent_seat"] == first:
            costs.setdefault((r["agent"], r["partner"]), []).append((r["agent_cost"], r["partner_cost"]))
    return {k: float(abs(np.mean([a for a, _ in v]) - np.mean([b for _, b in v]))) for k, v in costs.items()}


def summarize_methods(result: Any, reps: int = 1000) -> dict[str, dict[str, Any]]:
    """Per method: :func:`~rqe_wrappers.eval.stats.summarize_crossplay` of its own agents, plus free-riding.

    ``self_play`` / ``cross_play``: mean, std over pairings, IQM and its bootstrap CI among the
    method's agents; ``worst_pairing``; ``vs_others``: mean return with the other methods' agents;
    ``free_riding_self`` / ``free_riding_cross``: mean degree (:func:`free_riding_degree`) over the
    method's self-play seatings / its cross-play seatings.
    """
    from rqe_wrappers.eval.stats import summarize_crossplay

    across = summarize_crossplay(result, reps=1)["per_method"]
    degree = free_riding_degree(result)
    out: dict[str, dict[str, Any]] = {}
    for method in dict.fromkeys(result.methods.values()):
        mine = [a for a in result.agents if result.methods[a] == method]
        s = summarize_crossplay(result.subset(mine), reps=reps)
        cross = [degree[a, b] for a in mine for b in mine if a != b]
        out[method] = {
            "agents": mine,
            "self_play": s["self_play"],
            "cross_play": s["cross_play"],
            "worst_pairing": s.get("worst_pairing"),
            "vs_others": across[method]["across"],
            "free_riding_self": float(np.mean([degree[a, a] for a in mine])),
            "free_riding_self_std": float(np.std([degree[a, a] for a in mine])),
            "free_riding_cross": float(np.mean(cross)) if cross else None,
        }
    return out


@dataclass(frozen=True)
class CookingSweep:
    """What ``rqe cooking sweep`` runs: agents for every (tau, seed), then cross-play on each layout."""

    tau: tuple[float, ...] = setting((0.0, 1.0), "risk aversion(s); 0 = IPPO (with seat identity)")
    seeds: tuple[int, ...] = setting((0, 1, 2, 3), "seeds, one agent per (tau, seed)")
    steps: int = setting(2_000_000, "agent-steps per (tau, seed)")
    out: Path = setting(Path("runs/cooking"), "output directory (models, results.json, tables, figures)")  # noqa: RUF009
    jobs: int = setting(1, "(tau, seed) runs at once, one process each; also the cross-play workers")
    device: str = setting("cpu", '"cpu" (faster for these small MLPs) or "cuda"')
    train_layout: str = setting("train", "the layout the agents train on")
    policy: str = setting("role", "SRPO's networks: 'role' (separate partner/shadow networks) or 'shared'")
    layouts: tuple[str, ...] = setting(("train", "test"), "layouts of the cross-play (same observation size)")
    episodes: int = setting(100, "cross-play episodes per seating (100 steps each, as in the paper)")
    heatmap_tau: tuple[float, ...] = setting((), "the taus whose agents the heatmaps show (none given: all)")
    figures: bool = setting(True, "draw the heatmaps and the tau-sweep figure (needs matplotlib)")

    def __post_init__(self):
        check_taus(self.tau)
        check_seeds(self.seeds)
        check_count(self.steps, "steps")
        check_count(self.jobs, "jobs")
        check_count(self.episodes, "episodes")
        _check_layouts([self.train_layout, *self.layouts])
        if self.policy not in POLICIES:
            raise ConfigError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        sizes = {layout: obs_size(layout) for layout in [self.train_layout, *self.layouts]}
        if len(set(sizes.values())) > 1:
            raise ConfigError(f"the layouts must have the train layout's observation size; sizes: {sizes}")
        missing = [t for t in (check_taus(self.heatmap_tau) if self.heatmap_tau else ()) if t not in self.tau]
        if missing:
            raise ConfigError(f"heatmap_tau {missing} are not among the trained taus {list(self.tau)}")


def tau_sweep_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (layout, tau) of a sweep's report: self-play, cross-play, free-riding (for the figure)."""
    tau_of = {r["method"]: r["tau"] for r in report["runs"]}
    rows = []
    for layout, res in report["crossplay"].items():
        for method, m in res["methods"].items():
            rows.append(
                {
                    "layout": layout,
                    "tau": tau_of[method],
                    "method": method,
                    "self_play": m["self_play"]["mean"],
                    "self_play_std": m["self_play"]["std"],
                    "cross_play": m["cross_play"].get("mean", float("nan")),
                    "cross_play_std": m["cross_play"].get("std", 0.0),
                    "free_riding": m["free_riding_self"],
                    "free_riding_std": m["free_riding_self_std"],
                }
            )
    return rows


def train_job(
    tau: float, seed: int, steps: int, device: str, settings: dict, layout: str, policy: str, out: str
) -> dict:
    """One (tau, seed) of a sweep: :func:`train_cooking` saved as ``out/cooking-tau<T>-seed<S>.zip`` + ``.json``.

    A model already in ``out`` from a run with the same steps, settings, layout and policy is reused
    (its metrics get ``"reused": True``). A top-level function: it runs in worker processes.
    """
    import json

    import torch

    path = Path(out) / MODEL_FILE.format(tau=tau, seed=seed)
    done = path.with_suffix(".json")
    if path.is_file() and done.is_file():  # trained by an earlier (interrupted or smaller) sweep
        old = json.loads(done.read_text(encoding="utf-8"))
        same = (old.get("steps_asked"), old.get("settings"), old.get("layout"), old.get("policy_option"))
        if same == (steps, settings, layout, policy):
            return {**old, "reused": True}
    torch.set_num_threads(1)
    ppo = PPOSettings.from_json(settings)
    model, metrics = train_cooking(tau, steps, seed, device, settings=ppo, layout=layout, policy=policy)
    model.save(str(path))
    metrics = {**metrics, "file": path.name, "steps_asked": steps, "policy_option": policy}
    write_json(done, metrics)
    return metrics


def _agent_name(tau: float, seed: int) -> str:
    return f"tau{tau:g}-s{seed}"


def run_cooking(sweep: CookingSweep, settings: PPOSettings = COOKING_PPO) -> dict[str, Any]:
    """Train every (tau, seed), then cross-play all agents on each layout; write everything to ``sweep.out``.

    A (tau, seed) whose model and metrics (``cooking-tau<T>-seed<S>.json``) are already in
    ``sweep.out`` from a sweep with the same steps, settings, layout and policy is not trained again
    (an interrupted sweep resumes; a larger sweep reuses a smaller one's agents).

    Writes the models (``cooking-tau<T>-seed<S>.zip``), ``results.json`` (set-up, machine,
    training metrics, per-layout summaries per method and free-riding), ``crossplay-<layout>.json``
    (the tidy tables) and the figures (``heatmap-<layout>.png/svg`` of the ``heatmap_tau`` agents,
    ``tau-sweep.png/svg``).
    """
    out = Path(sweep.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "env": "cooking_v0",
        "train_layout": sweep.train_layout,
        "train_max_steps": TRAIN_STEPS_PER_EPISODE,
        "eval_max_steps": MAX_STEPS,
        "sweep": {k: (str(v) if isinstance(v, Path) else v) for k, v in sweep.__dict__.items()},
        "settings": settings.to_json(),
        "machine": machine_info(),
        "runs": [],
        "crossplay": {},
    }

    def done(row: dict) -> None:
        report["runs"] = sorted([*report["runs"], row], key=lambda r: (r["tau"], r["seed"]))
        write_json(out / "results.json", report, indent=2)
        print(
            f"{row['method']:>14} seed {row['seed']:>3}: {row['steps']:,} steps in {row['seconds']:6.0f} s "
            f"({row['agent_steps_per_s']:,.0f} agent-steps/s) -> {out / row['file']}",
            flush=True,
        )

    args = [
        (t, s, sweep.steps, sweep.device, settings.to_json(), sweep.train_layout, sweep.policy, str(out))
        for t in sweep.tau
        for s in sweep.seeds
    ]
    run_jobs(train_job, args, sweep.jobs, done)
    evaluate_sweep(out, report, sweep)
    return report


def evaluate_sweep(out: Path, report: dict[str, Any], sweep: CookingSweep) -> None:
    """Cross-play of the trained agents in ``out`` on every layout; summaries, tables and figures."""
    from stable_baselines3 import PPO

    from rqe_wrappers.eval import crossplay

    agents = {_agent_name(r["tau"], r["seed"]): PPO.load(str(out / r["file"]), device="cpu") for r in report["runs"]}
    methods = {_agent_name(r["tau"], r["seed"]): r["method"] for r in report["runs"]}
    for layout in sweep.layouts:
        start = time.perf_counter()
        result = crossplay(
            agents,
            functools.partial(cooking_env, layout),
            methods=methods,
            episodes=sweep.episodes,
            seed=10_000,
            batch=sweep.episodes,
            n_workers=sweep.jobs if sweep.jobs > 1 else 0,
            batched=functools.partial(BatchedCooking, layout=layout),
            progress=True,
        )
        result.to_json(out / f"crossplay-{layout}.json")
        per_method = summarize_methods(result)
        report["crossplay"][layout] = {
            "seconds": time.perf_counter() - start,
            "methods": per_method,
            "matrix_agents": list(result.agents),
            "matrix": result.matrix("agent_return").round(3).tolist(),
            "free_riding": {f"{a}|{b}": round(v, 3) for (a, b), v in free_riding_degree(result).items()},
        }
        write_json(out / "results.json", report, indent=2)
        for method, s in per_method.items():
            print(
                f"[{layout}] {method:>14}: self-play {s['self_play']['mean']:7.2f}  cross-play "
                f"{s['cross_play'].get('mean', float('nan')):7.2f}  free-riding {s['free_riding_self']:5.2f} (self) "
                f"{s['free_riding_cross'] or float('nan'):5.2f} (cross)",
                flush=True,
            )
    report["tau_sweep"] = tau_sweep_rows(report)
    write_json(out / "results.json", report, indent=2)
    (out / "summary.md").write_text(summary_table(report), encoding="utf-8")
    if sweep.figures:
        draw_figures(out, sweep.heatmap_tau)
    print(f"wrote {out / 'results.json'}")


def summary_table(report: dict[str, Any]) -> str:
    """A markdown table of a sweep's report: per layout and method, returns, CIs and free-riding."""
    lines = [
        "| layout | method | agents | self-play | cross-play (same method) | IQM cross-play [95% CI] | worst pairing "
        "| with the other methods | free-riding self / cross |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for layout, res in report["crossplay"].items():
        for method, m in res["methods"].items():
            sp, cp = m["self_play"], m["cross_play"]
            worst = m.get("worst_pairing") or {}
            ci = cp.get("iqm_ci") or [float("nan")] * 2
            lines.append(
                f"| {layout} | {method} | {len(m['agents'])} | {sp['mean']:.1f} ± {sp['std']:.1f} "
                f"| {cp.get('mean', float('nan')):.1f} ± {cp.get('std', float('nan')):.1f} "
                f"| {cp.get('iqm', float('nan')):.1f} [{ci[0]:.1f}, {ci[1]:.1f}] "
                f"| {worst.get('value', float('nan')):.1f} | {m['vs_others'] or float('nan'):.1f} "
                f"| {m['free_riding_self']:.2f} / {m['free_riding_cross'] or float('nan'):.2f} |"
            )
    return "\n".join(lines) + "\n"


def draw_figures(out: str | Path, heatmap_tau: Sequence[float] = ()) -> list[Path]:
    """The heatmaps (agents of ``heatmap_tau``, all when empty) and the tau-sweep figure of a sweep in ``out``.

    Reads ``results.json`` and ``crossplay-<layout>.json`` (so figures can be drawn on another
    machine than the sweep ran on); writes ``heatmap-<layout>.png/svg`` and ``tau-sweep.png/svg``.
    """
    import json

    from rqe_wrappers.eval import read_crossplay
    from rqe_wrappers.plots import plot_crossplay, plot_tau_sweep

    out = Path(out)
    report = json.loads((out / "results.json").read_text(encoding="utf-8"))
    shown = [_agent_name(r["tau"], r["seed"]) for r in report["runs"] if not heatmap_tau or r["tau"] in heatmap_tau]
    written = []
    for layout in report["crossplay"]:
        sub = read_crossplay(out / f"crossplay-{layout}.json").subset(shown)
        title = f"cooking cross-play, {layout} layout"
        plot_crossplay(sub.matrix(), sub.agents, sub.methods, out / f"heatmap-{layout}", title=title)
        written.append(out / f"heatmap-{layout}.png")
    title = "cooking: IPPO (tau = 0) and SRPO over tau"
    plot_tau_sweep(report.get("tau_sweep") or tau_sweep_rows(report), out / "tau-sweep", title=title)
    return [*written, out / "tau-sweep.png"]
