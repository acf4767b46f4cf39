"""The SRPO paper's Tag experiment (appendix D.3) with stock SB3 PPO.

Two stages, as in the paper:

1. **Runners** (:func:`train_runner`): the runner is the only learning seat; the two chasers are
   fixed scripted policies (default ``"tag/greedy-chaser"``) played inside the env by
   :func:`~rqe_wrappers.background_seats`. One PPO model per seed; the zoo packages them.
2. **Chasers** (:func:`train_chasers`): both chasers learn one shared policy with SRPO (``tau > 0``)
   or IPPO (``tau = 0``, the same wrapper with no shadow) against a fixed trained runner, through
   ``srpo_wrap(tag_env(), tau, fixed={"agent_0": runner})`` and :class:`~rqe_wrappers.sb3.SRPOCallback`.

Evaluation (:func:`play_tag`, :func:`evaluate_chasers`) plays the unwrapped :func:`tag_env` in
lock-step batches, every episode seeded (episode ``i`` resets with ``seed + i``; each policy
samples from its own :func:`~rqe_wrappers.core.seeding.stream`), so the same seed gives the same numbers.
Returns are the env's *scaled* rewards (x0.1): a chaser's return is the team's number of
chaser-runner collision-steps in the episode (both chasers get the same).

Command line: ``rqe tag train-runners ...`` and ``rqe tag srpo ...`` (see ``docs/tag.md``).
SB3 and torch are imported only inside the functions that train or load models.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import platform
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from rqe_wrappers.envs.tag import CHASERS, ENV_ID, MAX_CYCLES, REWARD_SCALE, RUNNER, seat_spaces, tag_env
from rqe_wrappers.errors import ConfigError, SpaceMismatchError
from rqe_wrappers.experiments.settings import PPOSettings
from rqe_wrappers.core.policy import Policy
from rqe_wrappers.core.registry import make_scripted
from rqe_wrappers.srpo.roles import PARTNER, one_hot, with_role_space
from rqe_wrappers.core.seeding import stream

#: Evaluation episodes are reset with ``EVAL_SEED + i``: far from training seeds, shared by all runs.
EVAL_SEED = 1_000_000
EVAL_EPISODES = 64  # the paper's training-curve evaluation: 64 rollouts of length 100
DEFAULT_CHASERS = "tag/greedy-chaser"
RUNNER_FILE = "runner-seed{seed}.zip"
RUNNER_FILE_RE = re.compile(r"runner-seed(-?\d+)\.zip$")
METRICS_FILE = "metrics.json"

Agent = Any  # a Policy, an SB3 model (BaseAlgorithm), or a registered scripted policy's name


#: Runner training: 16 copies x 1 seat x 128 steps = 2,048 agent-steps per rollout.
RUNNER_PPO = PPOSettings()
#: Chaser training: 8 copies x 2 seats x 128 steps = 2,048 agent-steps per rollout.
CHASER_PPO = PPOSettings(n_copies=8)


def _check_steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConfigError(f"steps (agent-steps of training) must be an integer >= 1, got {steps!r}")
    return int(steps)


def _check_episodes(episodes: Any) -> int:
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ConfigError(f"episodes must be an integer >= 1, got {episodes!r}")
    return int(episodes)


# ---- agents as Policies on tag_env() seats ------------------------------------------------------
class PartnerRole(Policy):
    """Plays an SRPO-trained policy (role-featured observations) on plain ``tag_env()`` observations.

    Appends the *partner* one-hot to every observation, the role a trained chaser plays with real
    teammates (:mod:`rqe_wrappers.srpo.roles`).
    """

    def __init__(self, inner: Policy, observation_space: gym.spaces.Box):
        super().__init__(observation_space, inner.action_space)
        self.inner = inner
        self._role = one_hot(PARTNER, np.float32)

    def initial_state(self, batch_size: int):
        return self.inner.initial_state(batch_size)

    def act(self, obs, *, rng, mask=None, state=None):
        obs = np.asarray(obs, dtype=np.float32)
        featured = np.concatenate([obs, np.broadcast_to(self._role, (len(obs), 2))], axis=1)
        return self.inner.act(featured, rng=rng, mask=mask, state=state)

    def __repr__(self) -> str:
        return f"PartnerRole({self.inner!r})"


def as_tag_policy(agent: Agent, seat: str) -> Policy:
    """``agent`` as a :class:`Policy` that plays ``seat`` of :func:`tag_env`.

    ``agent`` may be a :class:`Policy`, an SB3 model (a detached CPU copy is taken), or the name of
    a registered scripted policy (built with the seat's spaces). Policies trained with SRPO (whose
    observations carry the role feature) are wrapped in :class:`PartnerRole`.
    """
    obs_space, act_space = seat_spaces(seat)
    if isinstance(agent, str):
        return make_scripted(agent, observation_space=obs_space, action_space=act_space)
    if not isinstance(agent, Policy):
        try:
            from stable_baselines3.common.base_class import BaseAlgorithm
        except ImportError:  # pragma: no cover
            BaseAlgorithm = ()  # noqa: N806
        if not isinstance(agent, BaseAlgorithm):
            raise TypeError(
                f"seat {seat!r}: expected a rqe_wrappers Policy, an SB3 model or a scripted policy name, "
                f"got {type(agent).__name__}"
            )
        from rqe_wrappers.sb3 import SB3Policy

        agent = SB3Policy.from_model(agent)
    if agent.action_space != act_space:
        raise SpaceMismatchError(f"seat {seat!r}: the policy acts in {agent.action_space}, Tag needs {act_space}")
    if agent.observation_space == obs_space:
        return agent
    if agent.observation_space == with_role_space(obs_space):
        return PartnerRole(agent, obs_space)
    raise SpaceMismatchError(
        f"seat {seat!r}: the policy observes {agent.observation_space}, but this Tag seat gives {obs_space} "
        f"(or {with_role_space(obs_space)} with SRPO's role feature). Was it trained for another seat?"
    )


# ---- seeded batched evaluation -----------------------------------------------------------------
def play_tag(
    policies: Mapping[str, Agent], episodes: int, seed: int = EVAL_SEED, *, batch: int = 32
) -> dict[str, np.ndarray]:
    """Play ``episodes`` seeded episodes of :func:`tag_env`; per-episode (scaled) returns of every seat.

    ``policies`` maps every seat to an agent (see :func:`as_tag_policy`); seats that share one
    object act in one batched call. Episode ``i`` is reset with ``seed + i``; each distinct
    policy samples from ``stream(seed, "tag-eval/<its seats>")``. Episodes run ``batch`` at a time
    in lock-step. Recurrent state is not carried (Tag's policies here are feed-forward).
    """
    episodes = _check_episodes(episodes)
    seats = [*CHASERS, RUNNER]
    missing = [s for s in seats if s not in policies]
    if missing:
        raise ConfigError(f"play_tag needs a policy for every seat; missing {missing}")
    built: dict[tuple, Policy] = {}
    per_seat: dict[str, Policy] = {}
    for s in seats:  # one Policy per distinct agent object (names: one per name and seat kind)
        agent = policies[s]
        key = ("name", agent, s == RUNNER) if isinstance(agent, str) else ("object", id(agent))
        if key not in built:
            built[key] = as_tag_policy(policies[s], s)
        per_seat[s] = built[key]
    groups: dict[int, list[str]] = {}
    for s in seats:
        groups.setdefault(id(per_seat[s]), []).append(s)
    rngs = {g: stream(seed, "tag-eval/" + "+".join(ss)) for g, ss in groups.items()}
    returns = {s: np.zeros(episodes) for s in seats}
    envs = [tag_env() for _ in range(min(int(batch), episodes))]
    for start in range(0, episodes, len(envs)):
        chunk = list(range(start, min(start + len(envs), episodes)))
        obs = {k: envs[k].reset(seed=int(seed) + ep)[0] for k, ep in enumerate(chunk)}
        while True:
            live = [k for k in range(len(chunk)) if envs[k].agents]
            if not live:
                break
            actions: dict[int, dict[str, int]] = {k: {} for k in live}
            for g, group_seats in groups.items():
                rows = [(k, s) for k in live for s in group_seats if s in envs[k].agents]
                if not rows:
                    continue
                acts, _ = per_seat[group_seats[0]].act(np.stack([obs[k][s] for k, s in rows]), rng=rngs[g])
                for (k, s), a in zip(rows, np.asarray(acts).tolist()):
                    actions[k][s] = a
            for k in live:
                obs[k], rew, _, _, _ = envs[k].step(actions[k])
                for s, r in rew.items():
                    returns[s][chunk[k]] += r
    for env in envs:
        env.close()
    return returns


def evaluate_runner(runner: Agent, chasers: Agent | Mapping[str, Agent] = DEFAULT_CHASERS,
                    episodes: int = EVAL_EPISODES, seed: int = EVAL_SEED) -> dict[str, float]:
    """Mean (scaled) runner and chaser returns of ``runner`` against ``chasers`` over seeded episodes."""
    chaser_agents = chasers if isinstance(chasers, Mapping) else {c: chasers for c in CHASERS}
    rets = play_tag({**chaser_agents, RUNNER: runner}, episodes, seed)
    return {
        "runner_return": float(rets[RUNNER].mean()),
        "runner_return_std": float(rets[RUNNER].std()),
        "chaser_return": float(rets[CHASERS[0]].mean()),
    }


def evaluate_chasers(
    model: Agent,
    runner_policies: Mapping[str, Agent],
    episodes: int = 100,
    seed: int = EVAL_SEED,
    *,
    partner: Agent | None = None,
) -> dict[str, Any]:
    """Mean chaser return of trained chasers against each runner, plus worst case and mean over runners.

    Both chasers are played by ``model`` in the *partner* role (or ``adversary_1`` by ``partner``,
    for teammate-shift cross-play). Returns are *scaled* (x0.1, the training reward): the team's
    collision-steps per episode. Keys: ``per_runner`` and ``per_runner_std`` (``{name: float}``),
    ``worst_case``, ``worst_runner``, ``mean`` (over runners), ``episodes``, ``seed``, ``reward``.
    Same arguments, same numbers.
    """
    if not runner_policies:
        raise ConfigError("evaluate_chasers needs at least one runner: runner_policies={name: policy}")
    chaser = as_tag_policy(model, CHASERS[0])
    second = chaser if partner is None else as_tag_policy(partner, CHASERS[1])
    per, std = {}, {}
    for name, runner in runner_policies.items():
        rets = play_tag({CHASERS[0]: chaser, CHASERS[1]: second, RUNNER: runner}, episodes, seed)
        team = (rets[CHASERS[0]] + rets[CHASERS[1]]) / 2.0
        per[str(name)], std[str(name)] = float(team.mean()), float(team.std())
    worst = min(per, key=per.get)
    return {
        "per_runner": per,
        "per_runner_std": std,
        "worst_case": per[worst],
        "worst_runner": worst,
        "mean": float(np.mean(list(per.values()))),
        "episodes": int(episodes),
        "seed": int(seed),
        "reward": "scaled x0.1 (training reward): chaser-runner collision-steps per episode",
    }


# ---- training -----------------------------------------------------------------------------------
def _chaser_seats(chasers: Agent | Mapping[str, Agent]) -> dict[str, Policy]:
    if isinstance(chasers, Mapping):
        if set(chasers) != set(CHASERS):
            raise ConfigError(f"chasers must name both chaser seats {list(CHASERS)}, got {sorted(chasers)}")
        return {s: as_tag_policy(chasers[s], s) for s in CHASERS}
    one = as_tag_policy(chasers, CHASERS[0])
    return {s: one for s in CHASERS}


def _train(make_env, steps: int, settings: PPOSettings, seed: int, device: str, verbose: int, *, callback=None,
           **extra) -> tuple[Any, dict[str, Any]]:
    """Stock PPO on ``PettingZooVecEnv(make_env)`` for ``steps``; returns the model and its timing metrics."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    from rqe_wrappers.sb3 import PettingZooVecEnv

    torch.set_num_threads(1)
    venv = VecMonitor(PettingZooVecEnv(make_env, n_copies=settings.n_copies, n_workers=settings.n_workers))  # ep_rew_mean
    try:
        model = PPO("MlpPolicy", venv, seed=int(seed), device=device, verbose=verbose, **settings.ppo_kwargs(), **extra)
        t0, c0 = time.perf_counter(), time.process_time()
        model.learn(steps, callback=callback)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    finally:
        venv.close()
    return model, {
        "seed": int(seed),
        "steps": int(model.num_timesteps),
        "device": str(model.device),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "agent_steps_per_s": model.num_timesteps / seconds,
    }


def _machine() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"torch": torch.__version__, "cuda_device": cuda, "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version()}


def train_runner(
    seed: int,
    steps: int,
    device: str = "cpu",
    chasers: Agent | Mapping[str, Agent] = DEFAULT_CHASERS,
    *,
    settings: PPOSettings = RUNNER_PPO,
    eval_episodes: int = EVAL_EPISODES,
    eval_seed: int = EVAL_SEED,
    verbose: int = 0,
):
    """Train a Tag runner with stock SB3 PPO against fixed chasers; returns ``(model, metrics)``.

    The chasers (a scripted name, a Policy or SB3 model, or ``{seat: agent}``) play inside the env
    (:func:`~rqe_wrappers.background_seats`); the runner is the only SB3 slot of each env copy.
    ``metrics``: ``seed``, ``steps``, ``chasers``, ``device``, ``seconds`` (wall time of training
    only), ``cpu_seconds`` (this process's CPU time in it), ``agent_steps_per_s``,
    ``eval_episodes``, ``eval_seed``, ``runner_return`` (mean scaled runner return against the
    chasers over the seeded evaluation episodes), ``runner_return_std``, ``chaser_return`` (mean
    collision-steps per episode), ``settings``.
    """
    from rqe_wrappers.seats.background import background_seats

    steps = _check_steps(steps)
    chaser_policies = _chaser_seats(chasers)
    model, metrics = _train(lambda: background_seats(tag_env(), chaser_policies), steps, settings, seed, device,
                            verbose)
    metrics.update(chasers=chasers if isinstance(chasers, str) else repr(chasers),
                   eval_episodes=int(eval_episodes), eval_seed=int(eval_seed))
    metrics.update(evaluate_runner(model, chaser_policies, eval_episodes, eval_seed))
    metrics["settings"] = settings.to_json()
    return model, metrics


def train_chasers(
    tau: float,
    steps: int,
    runner_policy: Agent,
    seed: int = 0,
    device: str = "cpu",
    *,
    settings: PPOSettings = CHASER_PPO,
    eval_episodes: int = EVAL_EPISODES,
    eval_seed: int = EVAL_SEED,
    verbose: int = 0,
):
    """Train both chasers (one shared PPO policy) with SRPO (``tau > 0``) or IPPO (``tau = 0``).

    The runner is fixed (``runner_policy``: a Policy, SB3 model or scripted name). The env is
    ``srpo_wrap(tag_env(), tau, fixed={"agent_0": runner})``, PPO runs with
    ``normalize_advantage=False`` and :class:`~rqe_wrappers.sb3.SRPOCallback` (a no-op at tau 0).
    Returns ``(model, metrics)``; ``metrics``: ``tau``, ``seed``, ``steps``, ``device``,
    ``seconds``, ``cpu_seconds``, ``agent_steps_per_s``, ``eval_episodes``, ``eval_seed``,
    ``chaser_return`` (mean scaled chaser return against the training runner, both seats played
    by the model as partners), ``chaser_return_std``, ``settings``.
    """
    from rqe_wrappers.sb3 import SRPOCallback
    from rqe_wrappers.srpo.shadow import srpo_wrap

    steps = _check_steps(steps)
    runner = as_tag_policy(runner_policy, RUNNER)
    model, timing = _train(lambda: srpo_wrap(tag_env(), tau=tau, fixed={RUNNER: runner}), steps, settings, seed,
                           device, verbose, callback=SRPOCallback(), normalize_advantage=False)
    ev = evaluate_chasers(model, {"train": runner}, eval_episodes, eval_seed)
    metrics = {
        "tau": float(tau),
        **timing,
        "eval_episodes": int(eval_episodes),
        "eval_seed": int(eval_seed),
        "chaser_return": ev["per_runner"]["train"],
        "chaser_return_std": ev["per_runner_std"]["train"],
        "settings": settings.to_json(),
    }
    return model, metrics


# ---- saved runners ------------------------------------------------------------------------------
def runner_files(directory: str | Path) -> dict[int, Path]:
    """``{seed: path}`` of the ``runner-seed<N>.zip`` files in ``directory`` (from ``rqe tag train-runners``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(
            f"{directory} is not a directory; train runners first: rqe tag train-runners --out {directory}")
    found = {}
    for p in directory.iterdir():
        m = RUNNER_FILE_RE.match(p.name)
        if m:
            found[int(m.group(1))] = p
    if not found:
        raise ConfigError(
            f"no runner-seed<N>.zip in {directory}; train runners first: rqe tag train-runners --out {directory}")
    return dict(sorted(found.items()))


def load_runner(path: str | Path) -> Policy:
    """A runner saved by ``rqe tag train-runners`` as a CPU :class:`Policy`.

    SB3 ``.zip`` files hold pickles: load only files you made (the zoo's published members are
    safetensors and load without unpickling).
    """
    from stable_baselines3 import PPO

    from rqe_wrappers.sb3 import SB3Policy

    return SB3Policy.from_model(PPO.load(str(path), device="cpu"))


# ---- command line -------------------------------------------------------------------------------
def _pool(jobs: int) -> ProcessPoolExecutor:
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context(method))


def _run_jobs(fn: Callable[..., dict], arg_list: Sequence[tuple], jobs: int, on_result: Callable[[dict], None],
              while_waiting: Callable[[], None] | None = None) -> None:
    """``fn(*args)`` for each args, in this process (``jobs == 1``) or in ``jobs`` processes."""
    if jobs <= 1 or len(arg_list) <= 1:
        if while_waiting:
            while_waiting()
        for args in arg_list:
            on_result(fn(*args))
        return
    with _pool(min(jobs, len(arg_list))) as pool:
        futures = [pool.submit(fn, *args) for args in arg_list]
        if while_waiting:
            while_waiting()
        for fut in as_completed(futures):
            on_result(fut.result())


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def _settings(base: PPOSettings, **changes: Any) -> PPOSettings:
    return replace(base, **{k: v for k, v in changes.items() if v is not None})


def _runner_job(seed: int, steps: int, device: str, chasers: str, settings: dict, eval_episodes: int, out: str) -> dict:
    settings_obj = PPOSettings(**{**settings, "net_arch": tuple(settings["net_arch"])})
    model, metrics = train_runner(seed, steps, device, chasers, settings=settings_obj, eval_episodes=eval_episodes)
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
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be an integer >= 1, got {jobs!r}")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct integers, at least one; got {seeds}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "env": ENV_ID,
        "env_settings": {"runner": RUNNER, "chasers": list(CHASERS), "obstacles": 2, "max_cycles": MAX_CYCLES,
                         "reward_scale": REWARD_SCALE},
        "chasers": chasers,
        "steps": steps,
        "eval_episodes": int(eval_episodes),
        "eval_seed": EVAL_SEED,
        "reward": "scaled x0.1; runner_return: mean runner episode return, chaser_return: collision-steps per episode",
        "settings": settings.to_json(),
        "machine": _machine(),
        "baselines": {},
        "runners": [],
    }

    def baselines() -> None:
        runner_obs, runner_act = seat_spaces(RUNNER)
        for name, agent in (("tag/still", "tag/still"), ("tag/evasive-runner", "tag/evasive-runner"),
                            ("random", RandomPolicy(runner_obs, runner_act))):
            report["baselines"][name] = evaluate_runner(agent, chasers, eval_episodes)
            print(f"baseline {name:>20}: runner {report['baselines'][name]['runner_return']:8.2f}  "
                  f"chaser {report['baselines'][name]['chaser_return']:6.2f}", flush=True)
        _write_json(out / METRICS_FILE, report)

    def done(metrics: dict) -> None:
        report["runners"] = sorted([*report["runners"], metrics], key=lambda m: m["seed"])
        _write_json(out / METRICS_FILE, report)
        print(f"runner seed {metrics['seed']:>5}: runner {metrics['runner_return']:8.2f}  chaser "
              f"{metrics['chaser_return']:6.2f}  {metrics['agent_steps_per_s']:7.0f} agent-steps/s  "
              f"{metrics['seconds']:6.0f} s -> {out / metrics['file']}", flush=True)

    args = [(s, steps, device, chasers, settings.to_json(), int(eval_episodes), str(out)) for s in seeds]
    _run_jobs(_runner_job, args, jobs, done, baselines)
    print(f"wrote {out / METRICS_FILE}")
    return report


def _chaser_job(tau: float, seed: int, steps: int, device: str, train_runner_path: str, runners: dict[str, str],
                settings: dict, eval_episodes: int, out: str) -> dict:
    settings_obj = PPOSettings(**{**settings, "net_arch": tuple(settings["net_arch"])})
    model, metrics = train_chasers(tau, steps, load_runner(train_runner_path), seed, device, settings=settings_obj,
                                   eval_episodes=eval_episodes)
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
    files = runner_files(runners_dir)
    train_seed = min(files) if train_runner_seed is None else int(train_runner_seed)
    if train_seed not in files:
        raise ConfigError(f"no runner with seed {train_seed} in {runners_dir}; there are seeds {sorted(files)}")
    for tau in taus:
        if not (math.isfinite(float(tau)) and float(tau) >= 0):
            raise ConfigError(f"tau must be finite and >= 0 (0 = IPPO), got {tau}")
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
        "machine": _machine(),
        "reward": "scaled x0.1: chaser-runner collision-steps per episode",
        "rows": [],
    }

    def done(row: dict) -> None:
        report["rows"] = sorted([*report["rows"], row], key=lambda r: (r["tau"], r["seed"]))
        _write_json(out / "results.json", report)
        ev = row["eval"]
        trained_on = ev["per_runner"][report["train_runner"]]
        print(f"tau {row['tau']:6.2f} seed {row['seed']:>3}: vs training runner {trained_on:6.2f}"
              f"  worst {ev['worst_case']:6.2f} ({ev['worst_runner']})  mean {ev['mean']:6.2f}  "
              f"{row['agent_steps_per_s']:6.0f} agent-steps/s", flush=True)

    args = [(float(t), int(s), steps, device, str(files[train_seed]), opponents, settings.to_json(), int(eval_episodes),
             str(out)) for t in taus for s in seeds]
    _run_jobs(_chaser_job, args, jobs, done)
    print(f"wrote {out / 'results.json'}")
    return report


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("tag", help="the SRPO paper's Tag: train runners, then SRPO/IPPO chasers (docs/tag.md)")
    sub = p.add_subparsers(dest="action", required=True)

    r = sub.add_parser("train-runners", help="train runners (PPO) against scripted chasers; one SB3 zip per seed")
    r.add_argument("--seeds", type=int, nargs="+", default=[0])
    r.add_argument("--steps", type=int, default=200_000, help="agent-steps per runner")
    r.add_argument("--out", type=Path, default=Path("runs/tag/runners"))
    r.add_argument("--jobs", type=int, default=1, help="seeds trained at once, one process each")
    r.add_argument("--device", default="cpu", help='"cpu" (faster for these small MLPs) or "cuda"')
    r.add_argument("--chasers", default=DEFAULT_CHASERS, help="scripted chaser policy (registered name)")
    r.add_argument("--n-copies", type=int, default=RUNNER_PPO.n_copies, help="env copies per runner")
    r.add_argument("--n-workers", type=int, default=0, help="subprocesses stepping the env copies (0 = in-process)")
    r.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES)
    r.set_defaults(func=lambda a: train_runners(
        a.seeds, a.steps, a.out, device=a.device, chasers=a.chasers, jobs=a.jobs, eval_episodes=a.eval_episodes,
        settings=_settings(RUNNER_PPO, n_copies=a.n_copies, n_workers=a.n_workers)) and 0)

    s = sub.add_parser("srpo", help="train SRPO (tau > 0) / IPPO (tau = 0) chasers against a saved runner")
    s.add_argument("--tau", type=float, nargs="+", default=[0.0, 1.0], help="risk aversion(s); 0 = IPPO")
    s.add_argument("--steps", type=int, default=500_000, help="agent-steps per (tau, seed)")
    s.add_argument("--runners", type=Path, required=True, help="directory written by `rqe tag train-runners`")
    s.add_argument("--train-runner", type=int, default=None, help="seed of the training runner (default: lowest)")
    s.add_argument("--seeds", type=int, nargs="+", default=[0])
    s.add_argument("--out", type=Path, default=Path("runs/tag/srpo"))
    s.add_argument("--jobs", type=int, default=1, help="(tau, seed) runs at once, one process each")
    s.add_argument("--device", default="cpu")
    s.add_argument("--n-copies", type=int, default=CHASER_PPO.n_copies)
    s.add_argument("--n-workers", type=int, default=0)
    s.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES)
    s.set_defaults(func=lambda a: run_srpo(
        a.tau, a.steps, a.runners, a.out, seeds=a.seeds, train_runner_seed=a.train_runner, device=a.device,
        jobs=a.jobs, eval_episodes=a.eval_episodes,
        settings=_settings(CHASER_PPO, n_copies=a.n_copies, n_workers=a.n_workers)) and 0)
