"""The adapter's subprocess protocol: each worker runs a :class:`~.copies.CopyGroup` behind a pipe.

Like SB3's ``SubprocVecEnv._worker``: the parent sends ``(command, data)``, the worker answers
``("ok", result)`` or ``("error", exception, traceback)``; :class:`Workers` is the parent's side and
turns a dead or hung worker into a typed error. Start methods: docs/adapter.md; failures: docs/security.md.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cloudpickle

from rqe_wrappers.core.snapshot import share
from rqe_wrappers.errors import WorkerError, WorkerTimeoutError
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


def describe_exit(code: int | None) -> str:
    """``exit code -9 (killed by SIGKILL)`` and friends, for a worker's ``Process.exitcode``."""
    if code is None:
        return "no exit code yet (its pipe closed but the process is still running)"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (often the kernel's out-of-memory killer)" if name == "SIGKILL" else ""
        return f"exit code {code} (killed by {name}{hint})"
    return f"exit code {code} (the env or a library it uses called os._exit / sys.exit, or Python itself failed)"


#: seconds a worker may take to start (import, build its envs) when ``step_timeout`` is shorter
START_TIMEOUT = 120.0


class Workers:
    """The parent's side of the subprocess workers: one pipe and one process per group of copies.

    Every send and receive is guarded: a worker that died raises :class:`WorkerError` naming its
    index, pid and exit code; one that does not answer within ``timeout`` seconds (when set) raises
    :class:`WorkerTimeoutError`. After either, every worker is stopped (see :meth:`shutdown`).
    """

    def __init__(self, remotes: list, processes: list, groups: Sequence[Sequence[int]], timeout: float | None):
        self.remotes = remotes
        self.processes = processes
        self.groups = [list(g) for g in groups]
        self.timeout = timeout

    def _name(self, i: int) -> str:
        p = self.processes[i]
        return f"PettingZooVecEnv worker {i} (pid {p.pid}, copies {self.groups[i]})"

    def _died(self, i: int, what: str) -> WorkerError:
        p = self.processes[i]
        p.join(timeout=2.0)
        return WorkerError(
            f"{self._name(i)} died during {what!r} with {describe_exit(p.exitcode)}. The other workers were "
            "stopped and this PettingZooVecEnv is closed: find the cause (the env's own logs, memory use, a "
            "native crash), then build a new PettingZooVecEnv (and model.set_env(...)) to go on"
        )

    def send(self, which: Sequence[int], messages: Sequence[Any], what: str) -> None:
        """``messages[k]`` to worker ``which[k]``."""
        for i, msg in zip(which, messages, strict=True):
            try:
                self.remotes[i].send(msg)
            except (BrokenPipeError, ConnectionResetError, EOFError, OSError) as e:
                raise self._died(i, what) from e

    def recv(self, which: Sequence[int], what: str) -> list:
        """One reply from each of ``which`` (all read before any error is raised), then the first error.

        Waits at most ``self.timeout`` seconds in all for every command (``"start"``, building the
        envs: at least :data:`START_TIMEOUT` seconds).
        """
        limit = self.timeout
        if limit is not None and what == "start":
            limit = max(limit, START_TIMEOUT)
        deadline = None if limit is None else time.monotonic() + limit
        replies = []
        for i in which:
            r = self.remotes[i]
            if deadline is not None and not r.poll(max(0.0, deadline - time.monotonic())):
                raise WorkerTimeoutError(
                    f"{self._name(i)} did not answer {what!r} within {limit} s (step_timeout={self.timeout}). "
                    "It was stopped and "
                    "this PettingZooVecEnv is closed: find where the env hangs (py-spy dump --pid on a hung "
                    "worker shows it), or raise step_timeout if a step can legitimately take that long; then "
                    "build a new PettingZooVecEnv"
                )
            try:
                replies.append(r.recv())
            except (EOFError, ConnectionResetError, OSError) as e:
                raise self._died(i, what) from e
        for i, (status, *payload) in zip(which, replies, strict=True):
            if status == "error":
                exc, tb = payload
                exc.add_note(f"raised in {self._name(i)}:\n{tb}")
                raise exc
        return [payload[0] for _, *payload in replies]

    def ask(self, which: Sequence[int], messages: Sequence[Any], what: str) -> list:
        self.send(which, messages, what)
        return self.recv(which, what)

    def shutdown(self, waiting: bool) -> None:
        """Drain a pending reply (if ``waiting``), ask every worker to close, join; never hangs.

        A worker that does not close within 10 s in all is terminated (then killed).
        """
        deadline = time.monotonic() + 10
        for r in self.remotes:
            try:
                if waiting and r.poll(max(0.0, deadline - time.monotonic())):
                    r.recv()
                r.send(("close", None))
            except (EOFError, OSError):
                pass
        for r, p in zip(self.remotes, self.processes, strict=True):
            try:
                if p.is_alive() and r.poll(max(0.0, deadline - time.monotonic())):
                    r.recv()
            except (EOFError, OSError):
                pass
            p.join(timeout=max(0.1, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join(timeout=2.0)
            if p.is_alive():  # pragma: no cover - a worker that ignores SIGTERM
                p.kill()
                p.join()
            r.close()
        self.remotes, self.processes = [], []

    def stop_now(self) -> None:
        """Terminate every worker at once (after one died or hung: the others may be mid-command)."""
        for p in self.processes:
            if p.is_alive():
                p.terminate()
        for p in self.processes:
            p.join(timeout=2.0)
            if p.is_alive():  # pragma: no cover
                p.kill()
                p.join()
        for r in self.remotes:
            r.close()
        self.remotes, self.processes = [], []


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
        Workers(remotes, processes, [[] for _ in remotes], None).shutdown(waiting=False)
        raise
    return remotes, processes
