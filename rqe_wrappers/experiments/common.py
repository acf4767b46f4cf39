"""Plumbing shared by the experiment drivers: parallel runs, atomic JSON, machine info, input checks."""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from rqe_wrappers.core.checks import is_integer, is_real
from rqe_wrappers.errors import ConfigError


def process_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` worker processes started with forkserver (or spawn): safe with torch threads in the parent.

    The fork server preloads torch and SB3 as ``PettingZooVecEnv``'s does (the same server, if this process
    has not started it yet), so each job's process starts with them instead of importing them (seconds a job).
    """
    from rqe_wrappers.sb3.vec_env.worker import context, default_start_method

    return ProcessPoolExecutor(max_workers=jobs, mp_context=context(default_start_method()))


def run_jobs(
    fn: Callable[..., dict],
    arg_list: Sequence[tuple],
    jobs: int,
    on_result: Callable[[dict], None],
    while_waiting: Callable[[], None] | None = None,
) -> None:
    """``fn(*args)`` for each args: in this process (``jobs == 1``) or ``jobs`` processes at a time.

    ``on_result`` gets every result in this process as it arrives; ``while_waiting`` runs here once
    the jobs are submitted (e.g. baselines evaluated while the workers train).
    """
    if jobs <= 1 or len(arg_list) <= 1:
        if while_waiting:
            while_waiting()
        for args in arg_list:
            on_result(fn(*args))
        return
    with process_pool(min(jobs, len(arg_list))) as pool:
        futures = [pool.submit(fn, *args) for args in arg_list]
        if while_waiting:
            while_waiting()
        for fut in as_completed(futures):
            on_result(fut.result())


def one_thread_in_workers() -> None:
    """Torch on one thread when this is a worker process of :func:`run_jobs` (many jobs share the cores)."""
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        import torch

        torch.set_num_threads(1)


def deadline_callback(deadline: float) -> Any:
    """An SB3 callback that stops ``learn`` once ``time.perf_counter()`` passes ``deadline`` (a guard for
    runs on machine time that is fixed; the steps taken are the model's ``num_timesteps``)."""
    import time

    from stable_baselines3.common.callbacks import BaseCallback

    class Deadline(BaseCallback):
        def _on_step(self) -> bool:
            return time.perf_counter() < deadline

    return Deadline()


def write_json(path: Path, data: Any, indent: int = 1) -> None:
    """Write ``data`` as JSON atomically (a temporary file renamed over ``path``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=indent) + "\n", encoding="utf-8")
    tmp.replace(path)


def machine_info() -> dict[str, Any]:
    """Python, platform, CPU and (when installed) torch, SB3 and CUDA device of this machine."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import stable_baselines3
        import torch
    except ImportError:  # pragma: no cover
        return info
    info.update(
        torch=torch.__version__,
        stable_baselines3=stable_baselines3.__version__,
        cuda_device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    )
    return info


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum`` (ConfigError otherwise)."""
    if not is_integer(value) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_seeds(seeds: Iterable[Any]) -> list[int]:
    """Distinct integer seeds, at least one (ConfigError otherwise)."""
    seeds = list(seeds)
    if not seeds or any(not is_integer(s) for s in seeds):
        raise ConfigError(f"seeds must be integers, at least one; got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct, got {seeds}")
    return [int(s) for s in seeds]


def check_taus(taus: Sequence[Any]) -> tuple[float, ...]:
    """A sweep's taus as floats: one or more distinct finite numbers >= 0 (0 = IPPO)."""
    out = []
    for tau in taus:
        if not is_real(tau) or not (math.isfinite(float(tau)) and float(tau) >= 0):
            raise ConfigError(f"tau must be finite and >= 0 (0 = IPPO), got {tau!r}")
        out.append(float(tau))
    if not out:
        raise ConfigError("tau needs at least one value (0 = IPPO), e.g. --tau 0 1")
    if len(set(out)) != len(out):
        raise ConfigError(f"tau values must be distinct (one run per tau and seed), got {list(taus)}")
    return tuple(out)
