"""Fault injection into the SB3 adapter: non-finite values, dead and hung workers, bad actions, stray agents.

Every fault is injected for real (a small PettingZoo env that misbehaves on cue, real subprocess workers
killed with SIGKILL or left hanging); each test asserts the error type, the message's key words, and that
the VecEnv still closes with no worker process left behind. The failure behaviour: docs/security.md.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from gymnasium.spaces import Box, Discrete, MultiDiscrete
from pettingzoo import ParallelEnv

from rqe_wrappers.errors import (
    ActionError,
    ConfigError,
    NonFiniteError,
    RQEError,
    SeatError,
    VecEnvStateError,
    WorkerError,
    WorkerTimeoutError,
)
from rqe_wrappers.sb3.vec_env import PettingZooVecEnv

EPISODE = 5
SEED = 10  # copy j resets with SEED + j; FaultEnv misbehaves only in the copy seeded SEED + 1 (copy 1)


class FaultEnv(ParallelEnv):
    """Two seats, Box(3) observations, Discrete(3) actions, 5 steps; does ``fault`` at step ``at`` in copy 1."""

    metadata = {"name": "fault_v0"}

    def __init__(self, fault: str | None = None, at: int = 3, seats: tuple[str, ...] = ("a", "b")):
        if fault == "hang_init":
            time.sleep(3600)
        self.fault, self.at = fault, at
        self.possible_agents = list(seats)
        self.agents: list[str] = []
        self.faulty = False
        self.t = 0

    def observation_space(self, agent):
        return Box(-10.0, 10.0, (3,), np.float32)

    @property
    def stall(self) -> int:
        """An attribute that hangs in copy 1 (for ``get_attr``)."""
        if self.faulty:
            time.sleep(3600)
        return 0

    def stall_method(self) -> int:
        """A method that hangs in copy 1 (for ``env_method``)."""
        return self.stall

    def action_space(self, agent):
        return Discrete(3)

    def _obs(self, agents):
        return {a: np.full(3, self.t, dtype=np.float32) for a in agents}

    def reset(self, seed=None, options=None):
        if seed is not None:
            self.faulty = seed == SEED + 1
        self.t = 0
        self.agents = list(self.possible_agents)
        obs = self._obs(self.agents)
        if self.faulty and self.fault == "nan_reset":
            obs["b"][0] = np.nan
        return obs, {a: {} for a in self.agents}

    def step(self, actions):
        self.last_actions = actions
        self.t += 1
        agents = list(self.agents)
        obs, rew = self._obs(agents), {a: 1.0 for a in agents}
        done = self.t >= EPISODE
        hit = self.faulty and self.t == self.at
        if hit:
            if self.fault == "nan_reward":
                rew["b"] = float("nan")
            elif self.fault == "inf_obs":
                obs["b"][1] = np.inf
            elif self.fault == "nan_terminal":
                obs["a"][2] = np.nan
            elif self.fault == "raise":
                raise ValueError("the env broke on purpose")
            elif self.fault == "exit":
                os._exit(3)
            elif self.fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif self.fault == "hang":
                time.sleep(3600)
            elif self.fault == "intruder":
                self.agents.append("intruder")
                obs["intruder"], rew["intruder"] = np.zeros(3, np.float32), 0.0
        agents = list(self.agents)
        term = {a: False for a in agents}
        trunc = {a: done for a in agents}
        if done:
            self.agents = []
        return obs, rew, term, trunc, {a: {} for a in agents}


def make(fault=None, at=3, n_copies=2, n_workers=0, **kwargs) -> PettingZooVecEnv:
    venv = PettingZooVecEnv(lambda: FaultEnv(fault, at), n_copies=n_copies, n_workers=n_workers, **kwargs)
    venv.seed(SEED)
    return venv


def run(venv, steps: int) -> None:
    venv.reset()
    for _ in range(steps):
        venv.step(np.zeros(venv.num_envs, dtype=np.int64))


def assert_closed_cleanly(venv, procs) -> None:
    """``close()`` works (again) and no worker process is left running."""
    venv.close()
    venv.close()
    assert venv.closed
    for p in procs:
        p.join(timeout=5)
        assert not p.is_alive(), f"worker pid {p.pid} still running"
        assert p.exitcode is not None
    assert venv.processes == [] and venv.remotes == []


# ---- one finite-value check --------------------------------------------------------------------------------


@pytest.mark.parametrize("n_workers", [0, 2])
@pytest.mark.parametrize(
    ("fault", "at", "words"),
    [
        ("nan_reward", 3, ["reward nan", "copy 1", "seat 'b'", "step 3 of its episode"]),
        ("inf_obs", 2, ["observation (values [inf])", "copy 1", "seat 'b'", "step 2 of its episode"]),
        ("nan_terminal", EPISODE, ["terminal observation", "copy 1", "seat 'a'", f"step {EPISODE}"]),
    ],
)
def test_non_finite_values_raise_naming_copy_seat_and_step(fault, at, words, n_workers):
    venv = make(fault, at, n_workers=n_workers)
    procs = list(venv.processes)
    with pytest.raises(NonFiniteError) as info:
        run(venv, 2 * EPISODE)
    msg = str(info.value)
    for w in [*words, "Fix the env", "check_finite=False"]:
        assert w in msg, (w, msg)
    assert isinstance(info.value, RQEError)
    if n_workers:  # the worker survives an error in its env: the VecEnv is still usable
        assert all(p.is_alive() for p in procs)
        venv.get_attr("fault")
    assert_closed_cleanly(venv, procs)


def test_non_finite_first_observation_raises_at_reset():
    venv = make("nan_reset")
    with pytest.raises(NonFiniteError, match=r"copy 1, seat 'b', at reset"):
        venv.reset()
    venv.close()


def test_non_finite_observation_after_an_automatic_reset_is_named_so():
    venv = make("nan_reset")
    venv.seed(SEED - 1)  # copy 1 is not faulty at the first reset; the env turns faulty at the next seeded one
    venv.reset()
    assert venv._local is not None
    for env in venv._local.envs:
        env.faulty = True
    with pytest.raises(NonFiniteError, match=rf"at the reset after step {EPISODE} of its episode"):
        for _ in range(EPISODE):
            venv.step(np.zeros(venv.num_envs, dtype=np.int64))
    venv.close()


def test_check_finite_false_lets_values_through():
    venv = make("nan_reward", check_finite=False)
    venv.reset()
    rews = [venv.step(np.zeros(4, dtype=np.int64))[1] for _ in range(3)]
    assert np.isnan(rews[2][3]) and np.isfinite(rews[2][:3]).all()
    venv.close()


def test_seeded_behaviour_is_the_same_with_and_without_the_check():
    def trace(check):
        venv = make(check_finite=check)
        out = [venv.reset()]
        for k in range(2 * EPISODE):
            obs, rew, done, _ = venv.step(np.full(4, k % 3, dtype=np.int64))
            out += [obs, rew, done]
        venv.close()
        return out

    for x, y in zip(trace(True), trace(False), strict=True):
        np.testing.assert_array_equal(x, y)


# ---- one worker-death report ---------------------------------------------------------------------------------


def test_worker_killed_by_sigkill_mid_run_is_named():
    venv = make(n_workers=2)
    procs = list(venv.processes)
    run(venv, 3)
    victim = procs[1]
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(timeout=5)
    with pytest.raises(WorkerError) as info:
        venv.step(np.zeros(4, dtype=np.int64))
    msg = str(info.value)
    for w in ["worker 1", f"pid {victim.pid}", "copies [1]", "exit code -9", "SIGKILL", "during 'step'", "build a new"]:
        assert w in msg, (w, msg)
    assert not isinstance(info.value, WorkerTimeoutError)
    assert venv.closed  # the other worker was stopped at once
    assert_closed_cleanly(venv, procs)


@pytest.mark.parametrize(("fault", "code"), [("exit", "exit code 3"), ("kill", "exit code -9 (killed by SIGKILL")])
def test_worker_that_dies_inside_the_env_is_named(fault, code):
    venv = make(fault, n_workers=2)
    procs = list(venv.processes)
    with pytest.raises(WorkerError) as info:
        run(venv, EPISODE)
    msg = str(info.value)
    for w in ["worker 1", f"pid {procs[1].pid}", code]:
        assert w in msg, (w, msg)
    assert_closed_cleanly(venv, procs)


def test_worker_dead_before_a_reset_or_a_get_attr_is_named():
    venv = make(n_workers=2)
    procs = list(venv.processes)
    os.kill(procs[0].pid, signal.SIGKILL)
    procs[0].join(timeout=5)
    with pytest.raises(WorkerError, match=r"worker 0 .*died during 'reset'"):
        venv.reset()
    with pytest.raises(VecEnvStateError, match="closed"):
        venv.reset()
    assert_closed_cleanly(venv, procs)


def test_exception_in_a_worker_env_keeps_its_type_names_the_worker_and_the_worker_lives():
    venv = make("raise", n_workers=2)
    procs = list(venv.processes)
    with pytest.raises(ValueError, match="broke on purpose") as info:
        run(venv, EPISODE)
    assert any(f"worker 1 (pid {procs[1].pid}" in n for n in info.value.__notes__)
    assert all(p.is_alive() for p in procs)
    assert_closed_cleanly(venv, procs)


def test_hung_worker_raises_after_step_timeout_and_is_stopped():
    venv = make("hang", n_workers=2, step_timeout=1.0)
    procs = list(venv.processes)
    venv.reset()
    start = time.monotonic()
    with pytest.raises(WorkerTimeoutError) as info:
        for _ in range(EPISODE):
            venv.step(np.zeros(4, dtype=np.int64))
    assert time.monotonic() - start < 10
    msg = str(info.value)
    for w in ["worker 1", f"pid {procs[1].pid}", "'step'", "step_timeout=1.0", "raise step_timeout"]:
        assert w in msg, (w, msg)
    assert isinstance(info.value, WorkerError) and isinstance(info.value, TimeoutError)
    assert_closed_cleanly(venv, procs)


@pytest.mark.parametrize("call", ["get_attr", "env_method"])
def test_a_worker_hung_in_get_attr_or_env_method_times_out(call):
    venv = make(n_workers=2, step_timeout=1.0)
    procs = list(venv.processes)
    venv.reset()
    start = time.monotonic()
    with pytest.raises(WorkerTimeoutError) as info:
        venv.get_attr("stall") if call == "get_attr" else venv.env_method("stall_method")
    assert time.monotonic() - start < 10
    for w in ["worker 1", f"pid {procs[1].pid}", f"{call!r}", "step_timeout=1.0"]:
        assert w in str(info.value), (w, str(info.value))
    assert_closed_cleanly(venv, procs)


def test_a_worker_hung_at_start_up_times_out(monkeypatch):
    from rqe_wrappers.sb3.vec_env import worker

    monkeypatch.setattr(worker, "START_TIMEOUT", 1.0)
    start = time.monotonic()
    with pytest.raises(WorkerTimeoutError, match=r"worker 0 .*did not answer 'start' within 1\.0 s"):
        make("hang_init", n_workers=2, step_timeout=0.5)
    assert time.monotonic() - start < 15
    import multiprocessing

    for child in multiprocessing.active_children():  # the hung workers were stopped, not left running
        child.join(timeout=5)
    assert multiprocessing.active_children() == []


def test_close_while_a_worker_hangs_does_not_hang():
    venv = make("hang", n_workers=2)
    procs = list(venv.processes)
    venv.reset()
    for _ in range(2):
        venv.step(np.zeros(4, dtype=np.int64))
    venv.step_async(np.zeros(4, dtype=np.int64))  # worker 1 hangs in step 3
    start = time.monotonic()
    assert_closed_cleanly(venv, procs)
    assert time.monotonic() - start < 20


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), True, "5"])
def test_step_timeout_is_checked(bad):
    with pytest.raises(ConfigError, match="step_timeout"):
        make(step_timeout=bad)


def test_check_finite_is_checked():
    with pytest.raises(ConfigError, match="check_finite"):
        make(check_finite="yes")


# ---- actions, order of calls, seats ------------------------------------------------------------------------


@pytest.mark.parametrize("n_workers", [0, 1])
@pytest.mark.parametrize(
    ("actions", "words"),
    [
        (np.zeros(3, dtype=np.int64), ["shape (3,)", "4 slots", "one action per slot"]),
        (np.zeros((4, 2), dtype=np.int64), ["shape (4, 2)", "4 slots"]),
        (np.array([0, 1, 3, 0]), ["action 3 of slot 2", "copy 1", "seat 'a'", "Discrete(3)", "0 to 2"]),
        (np.array([0, -1, 0, 0]), ["action -1 of slot 1", "copy 0", "seat 'b'"]),
        (np.array([0.0, 1.5, 0.0, 0.0]), ["float64", "whole numbers"]),
        ("left", ["4 slots"]),
    ],
)
def test_bad_actions_raise_action_error(actions, words, n_workers):
    venv = make(n_workers=n_workers)
    procs = list(venv.processes)
    venv.reset()
    with pytest.raises(ActionError) as info:
        venv.step(actions)
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    venv.step(np.zeros(4, dtype=np.int64))  # nothing was sent: the VecEnv still works
    assert_closed_cleanly(venv, procs)


def test_whole_float_actions_are_accepted():
    venv = make()
    venv.reset()
    venv.step(np.array([0.0, 1.0, 2.0, 0.0]))
    assert venv.get_attr("last_actions") == [{"a": 0, "b": 1}] * 2 + [{"a": 2, "b": 0}] * 2
    assert all(type(x) is int for x in venv.get_attr("last_actions")[0].values())
    venv.close()


def test_step_before_reset_and_after_close():
    venv = make()
    with pytest.raises(VecEnvStateError, match=r"step\(\) before reset\(\)"):
        venv.step(np.zeros(4, dtype=np.int64))
    venv.reset()
    venv.close()
    with pytest.raises(VecEnvStateError, match="closed PettingZooVecEnv"):
        venv.step(np.zeros(4, dtype=np.int64))


@pytest.mark.parametrize("n_workers", [0, 2])
def test_agent_appearing_mid_episode_raises_seat_error(n_workers):
    venv = make("intruder", n_workers=n_workers)
    procs = list(venv.processes)
    with pytest.raises(SeatError) as info:
        run(venv, EPISODE)
    msg = str(info.value)
    for w in ["copy 1", "step 3", "['intruder']", "learning seats ['a', 'b']", "possible_agents"]:
        assert w in msg, (w, msg)
    assert_closed_cleanly(venv, procs)


def test_duplicate_learning_seats_raise_seat_error():
    with pytest.raises(SeatError, match=r"\['a'\] more than once"):
        PettingZooVecEnv(lambda: FaultEnv(seats=("a", "a")), n_copies=1)


class MultiFaultEnv(FaultEnv):
    def action_space(self, agent):
        return MultiDiscrete([2, 3])


def test_multidiscrete_action_out_of_range_names_slot_and_range():
    venv = PettingZooVecEnv(lambda: MultiFaultEnv(), n_copies=1)
    venv.reset()
    venv.step(np.array([[1, 2], [0, 0]]))
    with pytest.raises(ActionError, match=r"action \[0, 3\] of slot 1 .*seat 'b'.*valid: \[0, 0\] to \[1, 2\]"):
        venv.step(np.array([[1, 2], [0, 3]]))
    venv.close()
