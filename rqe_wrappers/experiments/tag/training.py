"""Tag training with stock SB3 PPO: runners against scripted chasers, SRPO/IPPO chasers against a runner."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rqe_wrappers.core.policy import Policy
from rqe_wrappers.envs.tag import CHASERS, RUNNER, tag_env
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.experiments.common import check_count
from rqe_wrappers.experiments.settings import PPOSettings
from rqe_wrappers.experiments.tag.evaluation import (
    DEFAULT_CHASERS,
    EVAL_EPISODES,
    EVAL_SEED,
    Agent,
    as_tag_policy,
    evaluate_chasers,
    evaluate_runner,
)

#: Runner training: 16 copies x 1 seat x 128 steps = 2,048 agent-steps per rollout.
RUNNER_PPO = PPOSettings()
#: Chaser training: 8 copies x 2 seats x 128 steps = 2,048 agent-steps per rollout.
CHASER_PPO = PPOSettings(n_copies=8)
#: Chaser training on the batched path: 256 copies x 2 seats x 64 steps = 32,768 agent-steps per
#: rollout, minibatches of 4,096, 5 epochs (40 gradient steps per rollout), lr 1e-3 (docs/tag.md, "Budgets").
BATCHED_CHASER_PPO = PPOSettings(n_copies=256, n_steps=64, batch_size=4096, n_epochs=5, learning_rate=1e-3)
RUNNER_FILE = "runner-seed{seed}.zip"
RUNNER_FILE_RE = re.compile(r"runner-seed(-?\d+)\.zip$")


def _check_steps(steps: Any) -> int:
    return check_count(steps, "steps (agent-steps of training)")


def _chaser_seats(chasers: Agent | Mapping[str, Agent]) -> dict[str, Policy]:
    if isinstance(chasers, Mapping):
        if set(chasers) != set(CHASERS):
            raise ConfigError(f"chasers must name both chaser seats {list(CHASERS)}, got {sorted(chasers)}")
        return {s: as_tag_policy(chasers[s], s) for s in CHASERS}
    one = as_tag_policy(chasers, CHASERS[0])
    return {s: one for s in CHASERS}


def _train(
    make_venv: Callable[[], Any],
    steps: int,
    settings: PPOSettings,
    seed: int,
    device: str,
    verbose: int,
    *,
    callback: Any = None,
    policy: Any = "MlpPolicy",
    **extra: Any,
) -> tuple[Any, dict[str, Any]]:
    """Stock PPO (``policy``: an SB3 policy name or class) on ``make_venv()`` for ``steps``; the model, its timing."""
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    venv = make_venv()
    try:
        model = PPO(policy, venv, seed=int(seed), device=device, verbose=verbose, **settings.ppo_kwargs(), **extra)
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


def _curve_callback(curve: list[list[float | None]]) -> Any:
    """An SB3 callback appending ``[num_timesteps, mean return of the monitor's last 100 episodes]`` per rollout.

    The mean is ``None`` until an episode has ended.
    """
    from stable_baselines3.common.callbacks import BaseCallback

    class _Curve(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            episodes = [float(e["r"]) for e in self.model.ep_info_buffer or ()]
            curve.append([int(self.num_timesteps), float(np.mean(episodes)) if episodes else None])

    return _Curve()


def _per_copy_venv(make_env: Callable[[], Any], settings: PPOSettings) -> Callable[[], Any]:
    """``VecMonitor(PettingZooVecEnv(make_env, settings.n_copies))`` (VecMonitor: ep_rew_mean), built on call."""

    def build() -> Any:
        from stable_baselines3.common.vec_env import VecMonitor

        from rqe_wrappers.sb3 import PettingZooVecEnv

        return VecMonitor(PettingZooVecEnv(make_env, n_copies=settings.n_copies, n_workers=settings.n_workers))

    return build


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
    model, metrics = _train(
        _per_copy_venv(lambda: background_seats(tag_env(), chaser_policies), settings),
        steps,
        settings,
        seed,
        device,
        verbose,
    )
    metrics.update(
        chasers=chasers if isinstance(chasers, str) else repr(chasers),
        eval_episodes=int(eval_episodes),
        eval_seed=int(eval_seed),
    )
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
    seat_id: bool = True,
):
    """Train both chasers (one shared PPO policy) with SRPO (``tau > 0``) or IPPO (``tau = 0``).

    The runner is fixed (``runner_policy``: a Policy, SB3 model or scripted name). The env is
    ``srpo_wrap(tag_env(), tau, fixed={"agent_0": runner}, seat_id=seat_id)`` (seat identity: the
    shared policy knows which chaser it plays, so IPPO may split the work), PPO runs with
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
    model, timing = _train(
        _per_copy_venv(lambda: srpo_wrap(tag_env(), tau=tau, fixed={RUNNER: runner}, seat_id=seat_id), settings),
        steps,
        settings,
        seed,
        device,
        verbose,
        callback=SRPOCallback(),
        normalize_advantage=False,
    )
    return model, _chaser_metrics(model, tau, timing, runner, settings, eval_episodes, eval_seed)


def _chaser_metrics(
    model: Any,
    tau: float,
    timing: dict[str, Any],
    runner: Policy,
    settings: PPOSettings,
    eval_episodes: int,
    eval_seed: int,
    **extra: Any,
) -> dict[str, Any]:
    """Trained chasers' metrics: tau, timing, the seeded evaluation against ``runner``, settings, ``extra``."""
    ev = evaluate_chasers(model, {"train": runner}, eval_episodes, eval_seed)
    return {
        "tau": float(tau),
        **timing,
        "eval_episodes": int(eval_episodes),
        "eval_seed": int(eval_seed),
        "chaser_return": ev["per_runner"]["train"],
        "chaser_return_std": ev["per_runner_std"]["train"],
        "settings": settings.to_json(),
        **extra,
    }


def train_chasers_batched(
    tau: float,
    steps: int,
    runner_policy: Agent,
    seed: int = 0,
    device: str = "cpu",
    *,
    settings: PPOSettings = BATCHED_CHASER_PPO,
    eval_episodes: int = EVAL_EPISODES,
    eval_seed: int = EVAL_SEED,
    verbose: int = 0,
    seat_id: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """:func:`train_chasers` on the batched path: all ``settings.n_copies`` copies of Tag stepped as arrays.

    The env is ``batched_vec_env(BatchedTag(n_copies), tau, seed=seed, seat_id=seat_id,
    background={"agent_0": runner}, reward_infos=False, step_infos=False)`` (docs/batched.md), the same slots,
    observations (raw, seat one-hot, role) and rewards as ``srpo_wrap(tag_env(), ...)``; stock PPO
    with ``normalize_advantage=False``, :class:`~rqe_wrappers.sb3.SRPOCallback` and
    :class:`~rqe_wrappers.sb3.TimeLimitBootstrap`. The runner must
    be stateless (a feed-forward SB3 model, a zoo member or a scripted name). The trained model
    plays :func:`~rqe_wrappers.envs.tag.tag_env` as :func:`train_chasers`' models do; the final
    evaluation is :func:`evaluate_chasers` on mpe2's env (the reference numbers).

    Returns ``(model, metrics)``: :func:`train_chasers`' metrics plus ``path`` (``"batched"``) and
    ``curve`` (``[agent-steps, mean partner-role training return]`` after every rollout: SB3's
    ``rollout/ep_rew_mean``, the last 100 partner episodes). SRPO (``tau > 0``) trains a
    :class:`~rqe_wrappers.sb3.role_policy.RolePolicy` (separate partner and shadow networks).
    """
    from rqe_wrappers.batched import batched_vec_env
    from rqe_wrappers.envs.tag_batched import BatchedTag
    from rqe_wrappers.sb3 import SRPOCallback, TimeLimitBootstrap
    from rqe_wrappers.sb3.role_policy import RolePolicy

    steps = _check_steps(steps)
    if not isinstance(settings, PPOSettings):
        raise ConfigError(f"settings must be a PPOSettings, e.g. BATCHED_CHASER_PPO; got {type(settings).__name__}")
    if settings.n_workers:
        raise ConfigError(
            f"the batched path steps all copies in this process: n_workers must be 0, got {settings.n_workers} "
            "(use --jobs to run several trainings at once)"
        )
    runner = as_tag_policy(runner_policy, RUNNER)
    curve: list[list[float | None]] = []
    model, timing = _train(
        lambda: batched_vec_env(
            BatchedTag(n_copies=settings.n_copies),
            tau,
            seed=int(seed),
            seat_id=seat_id,
            background={RUNNER: runner},
            reward_infos=False,
            step_infos=False,
        ),
        steps,
        settings,
        seed,
        device,
        verbose,
        callback=[SRPOCallback(), _curve_callback(curve), TimeLimitBootstrap()],
        policy=RolePolicy if float(tau) > 0 else "MlpPolicy",
        normalize_advantage=False,
    )
    return model, _chaser_metrics(
        model, tau, timing, runner, settings, eval_episodes, eval_seed, path="batched", curve=curve
    )


def runner_files(directory: str | Path) -> dict[int, Path]:
    """``{seed: path}`` of the ``runner-seed<N>.zip`` files in ``directory`` (from ``rqe tag train-runners``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(
            f"{directory} is not a directory; train runners first: rqe tag train-runners --out {directory}"
        )
    found = {}
    for p in directory.iterdir():
        m = RUNNER_FILE_RE.match(p.name)
        if m:
            found[int(m.group(1))] = p
    if not found:
        raise ConfigError(
            f"no runner-seed<N>.zip in {directory}; train runners first: rqe tag train-runners --out {directory}"
        )
    return dict(sorted(found.items()))


def load_runner(path: str | Path) -> Policy:
    """A runner saved by ``rqe tag train-runners`` as a CPU :class:`Policy`.

    SB3 ``.zip`` files hold pickles: load only files you made (the zoo's published members are
    safetensors and load without unpickling).
    """
    from stable_baselines3 import PPO

    from rqe_wrappers.sb3 import SB3Policy

    return SB3Policy.from_model(PPO.load(str(path), device="cpu"))
