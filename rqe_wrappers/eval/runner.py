"""Many seatings of one env, each for seeded episodes, in this process or spread over worker processes.

A *seating* maps every seat to a player (``{seat: name}``); ``players[name][seat]`` is the policy.
Each seating's episodes are cut into jobs of ``batch`` episodes (a job on a batched twin of the
env is one batched env of ``batch`` copies); episode ``e`` is reset with
``seed + e`` and a job's policies sample from streams named after the seating, the job and the
seat, so results do not depend on ``n_workers``. Workers start with ``forkserver`` (else
``spawn``) and receive the env factory and the policies once, sent with cloudpickle.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pettingzoo import ParallelEnv

from rqe_wrappers.core.policy import Policy
from rqe_wrappers.core.seeding import stream
from rqe_wrappers.errors import ConfigError
from rqe_wrappers.eval.episodes import COST_KEY, EpisodeStats, play_batched, play_episodes

__all__ = ["play_seatings"]


@dataclass
class _Setup:
    env_fn: Callable[[], Any]
    players: Mapping[str, Mapping[str, Policy]]
    seed: int
    cost_key: str
    batched: Callable[[int], Any] | None = None
    envs: list[Any] = field(default_factory=list)
    batched_envs: dict[int, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Job:
    seating: tuple[tuple[str, str], ...]  # (seat, player name), in seat order
    start: int
    stop: int


_SETUP: _Setup | None = None  # this worker's (or the calling process's) current setup


def _pickler() -> Any:
    """cloudpickle (lambdas and local classes travel too) when installed, else the standard pickle."""
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover (the sb3 extra installs it)
        import pickle

        return pickle
    return cloudpickle


def _init_worker(blob: bytes) -> None:
    global _SETUP
    _SETUP = _pickler().loads(blob)
    if "torch" in sys.modules:  # one thread per worker: the workers are the parallelism
        sys.modules["torch"].set_num_threads(1)


def _play_job(job: _Job) -> list[EpisodeStats]:
    setup = _SETUP
    assert setup is not None, "a job ran before its setup"
    policies = {seat: setup.players[name][seat] for seat, name in job.seating}
    name = "eval/" + "/".join(f"{seat}={who}" for seat, who in job.seating) + f"/{job.start}"
    rngs = {seat: stream(setup.seed, f"{name}/{seat}") for seat in policies}
    n = job.stop - job.start
    seeds = [setup.seed + e for e in range(job.start, job.stop)]
    if setup.batched is not None:
        if n not in setup.batched_envs:
            setup.batched_envs[n] = setup.batched(n)
        return play_batched(setup.batched_envs[n], policies, seeds, rngs, cost_key=setup.cost_key)
    if not setup.envs:
        setup.envs.append(setup.env_fn())
    if isinstance(setup.envs[0], ParallelEnv):
        setup.envs += [setup.env_fn() for _ in range(n - len(setup.envs))]
    return play_episodes(setup.envs[:n], policies, seeds, rngs, cost_key=setup.cost_key)


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, show: bool) -> Any:
    """A tqdm bar over episodes when ``show`` (tqdm is imported only then)."""
    if not show:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ConfigError("progress=True needs tqdm: pip install tqdm (or pass progress=False)") from None
    return tqdm(total=total, unit="episode", desc="episodes")


def play_seatings(
    env_fn: Callable[[], Any],
    players: Mapping[str, Mapping[str, Policy]],
    background: Mapping[str, Policy],
    seatings: Sequence[Mapping[str, str]],
    episodes: int,
    *,
    seed: int = 0,
    batch: int = 32,
    n_workers: int = 0,
    progress: bool = False,
    cost_key: str = COST_KEY,
    batched: Callable[[int], Any] | None = None,
) -> list[list[EpisodeStats]]:
    """``episodes`` episodes of each seating (``background`` fills the seats a seating leaves out), in order.

    ``batched(n)``: a batched twin of ``env_fn()``'s env with ``n`` copies; each job is then played
    as one batched env (:func:`~rqe_wrappers.eval.episodes.play_batched`).

    Arguments are checked by the callers (:func:`~rqe_wrappers.eval.crossplay.crossplay`,
    :func:`~rqe_wrappers.eval.population.evaluate_population`).
    """
    bg = "__background__"
    all_players = {**players, bg: dict(background)}
    jobs = []
    for seating in seatings:
        full = {**dict.fromkeys(background, bg), **seating}
        for start in range(0, episodes, batch):
            jobs.append(_Job(tuple(sorted(full.items())), start, min(start + batch, episodes)))
    setup = _Setup(env_fn, all_players, seed, cost_key, batched)
    done: list[list[EpisodeStats] | None] = [None] * len(jobs)
    bar = _progress_bar(len(seatings) * episodes, progress)
    global _SETUP
    torch = sys.modules.get("torch") if n_workers == 0 else None
    threads = torch.get_num_threads() if torch is not None else 1
    try:
        if n_workers == 0:
            _SETUP = setup
            if torch is not None:  # tiny per-step forward passes: threads only add overhead
                torch.set_num_threads(1)
            for i, job in enumerate(jobs):
                done[i] = _play_job(job)
                bar.update(job.stop - job.start)
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            blob = _pickler().dumps(setup)
            ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
            with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker, initargs=(blob,)) as pool:
                futures = {pool.submit(_play_job, job): i for i, job in enumerate(jobs)}
                for fut in as_completed(futures):
                    i = futures[fut]
                    done[i] = fut.result()
                    bar.update(jobs[i].stop - jobs[i].start)
    finally:
        _SETUP = None
        bar.close()
        if torch is not None:
            torch.set_num_threads(threads)
    per_seating: list[list[EpisodeStats]] = [[] for _ in seatings]
    per_job = len(range(0, episodes, batch))
    for i, stats in enumerate(done):
        per_seating[i // per_job].extend(stats or [])
    return per_seating
