"""The adapter's subprocess protocol: each worker runs a :class:`~.copies.CopyGroup` behind a pipe.

Like SB3's ``SubprocVecEnv._worker``: the parent sends ``(command, data)``, the worker answers
``("ok", result)`` or ``("error", exception, traceback)``. Start methods: docs/adapter.md.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cloudpickle

from rqe_wrappers.core.snapshot import share
from rqe_wrappers.sb3.vec_env.copies import CopyGroup

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env.base_vec_env import CloudpickleWrapper

#: imported once by a forkserver, so workers fork with torch and SB3 already loaded
PRELOAD = "rqe_wrappers.sb3.vec_env"


def worker(remote, parent_remote, payload: CloudpickleWrapper) -> None:
    """Build ``CopyGroup(*payload.var)`` and serve the parent's commands until ``close``."""
    parent_remote.close()
    try:
        import torch

        torch.set_num_threads(1)  # each worker is one env-stepping thread; also safe after fork
    except ImportError:  # pragma: no cover
        pass
    try:
        group = CopyGroup(*payload.var)
    except BaseException as e:
        send_error(remote, e)
        remote.close()
        return
    remote.send(("ok", group.describe()))
    while True:
        try:
            cmd, data = remote.recv()
        except (EOFError, KeyboardInterrupt):
            break
        try:
            if cmd == "step":
                out = group.step(data)
            elif cmd == "reset":
                out = group.reset(*data)
            elif cmd == "get_attr":
                out = group.get_attr(*data)
            elif cmd == "set_attr":
                out = None
                group.set_attr(*data)
            elif cmd == "env_method":
                out = group.env_method(*data)
            elif cmd == "share":
                out = None
                share(*cloudpickle.loads(data))
            elif cmd == "close":
                group.close()
                remote.send(("ok", None))
                break
            else:
                raise NotImplementedError(f"unknown worker command {cmd!r}")
        except BaseException as e:
            send_error(remote, e)
            continue
        remote.send(("ok", out))
    remote.close()


def send_error(remote, e: BaseException) -> None:
    tb = traceback.format_exc()
    try:
        remote.send(("error", e, tb))
    except Exception:
        remote.send(("error", RuntimeError(f"{type(e).__name__}: {e}"), tb))


def recv_all(remotes) -> list:
    """One reply from each worker (all of them, so none is left unread), then the first error raised."""
    replies = [r.recv() for r in remotes]
    for status, *payload in replies:
        if status == "error":
            exc, tb = payload
            exc.add_note(f"raised in a PettingZooVecEnv worker:\n{tb}")
            raise exc
    return [payload[0] for _, *payload in replies]


def default_start_method() -> str:
    """``forkserver`` where available, else ``spawn`` (both safe with torch threads in the parent)."""
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def context(method: str):
    """The multiprocessing context; a forkserver preloads the adapter (torch, SB3) once.

    Its workers are then forked from a process that has already imported them: starting a worker
    takes well under a second instead of a fresh torch import each (seconds). The preload only
    applies if this process has not started its forkserver yet.
    """
    ctx = mp.get_context(method)
    if method == "forkserver":
        from multiprocessing import forkserver

        current = list(getattr(forkserver._forkserver, "_preload_modules", None) or ["__main__"])
        if PRELOAD not in current:
            ctx.set_forkserver_preload([*current, PRELOAD])
    return ctx


def start(method: str, payloads: Sequence[CloudpickleWrapper]) -> tuple[list, list]:
    """One daemon worker per payload; returns ``(remotes, processes)``."""
    ctx = context(method)
    remotes: list = []
    processes: list = []
    try:
        for payload in payloads:
            remote, work_remote = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(work_remote, remote, payload), daemon=True)
            proc.start()
            work_remote.close()
            remotes.append(remote)
            processes.append(proc)
    except BaseException:
        shutdown(remotes, processes, waiting=False)
        raise
    return remotes, processes


def shutdown(remotes: Sequence[Any], processes: Sequence[Any], waiting: bool) -> None:
    """Drain a pending reply (if ``waiting``), ask every worker to close, join (terminate after 10 s)."""
    if waiting:
        for r in remotes:
            try:
                r.recv()
            except (EOFError, OSError):
                pass
    for r in remotes:
        try:
            r.send(("close", None))
        except (BrokenPipeError, OSError):
            pass
    deadline = time.monotonic() + 10
    for r, p in zip(remotes, processes, strict=True):
        try:
            if r.poll(max(0.0, deadline - time.monotonic())):
                r.recv()
        except (EOFError, OSError):
            pass
        p.join(timeout=max(0.1, deadline - time.monotonic()))
        if p.is_alive():
            p.terminate()
            p.join()
        r.close()
