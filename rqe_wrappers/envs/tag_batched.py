"""The paper's Tag over N copies as arrays: mpe2 ``simple_tag_v3``'s physics, rewards and observations.

:class:`BatchedTag` is :func:`~rqe_wrappers.envs.tag.tag_env` (1 runner, 2 chasers, 2 obstacles,
discrete actions, rewards x0.1, 100 cycles) written as numpy over all copies, following mpe2 1.1.1
(``simple_tag.Scenario`` and ``_mpe_utils.core.World``) operation for operation, so that a copy
given mpe2's state (:meth:`BatchedTag.set_state`, :func:`mpe2_state`) steps as mpe2 does: the
tests compare observations and rewards to 1e-5 over whole seeded episodes. Only the reset
differs: mpe2 draws its start from its own ``np_random``, this class from per-copy counter-based
streams (:mod:`rqe_wrappers.envs.batched`), with the same distributions. See docs/tag.md.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rqe_wrappers.core.checks import integer
from rqe_wrappers.envs.batched import BatchedBase, BatchStep, Seeds, batch_actions, check_copies, copy_keys, uniforms
from rqe_wrappers.envs.tag import (
    ACTION_DIRECTIONS,
    CHASERS,
    ENV_ID,
    MAX_CYCLES,
    REWARD_SCALE,
    RUNNER,
    check_reward_scale,
    seat_spaces,
)
from rqe_wrappers.errors import ConfigError

# ---- mpe2 1.1.1's constants (checked against an mpe2 world in tests/test_tag_batched.py) ----------
DT = 0.1  # World.dt
DAMPING = 0.25  # World.damping
CONTACT_FORCE = 1e2  # World.contact_force
CONTACT_MARGIN = 1e-3  # World.contact_margin
#: Per agent, in seat order (adversary_0, adversary_1, agent_0); every mass is 1.
AGENT_SIZE = np.array([0.075, 0.075, 0.05])
AGENT_ACCEL = np.array([3.0, 3.0, 4.0])
AGENT_MAX_SPEED = np.array([1.0, 1.0, 1.3])
LANDMARK_SIZE = 0.2
#: Start positions: agents uniform in [-1, 1]^2, obstacles in [-0.9, 0.9]^2, velocities 0.
AGENT_START, LANDMARK_START = 1.0, 0.9

SEATS = (*CHASERS, RUNNER)
N_AGENTS, N_LANDMARKS = 3, 2
#: Observation length of each seat (a row of ``BatchStep.obs`` is padded with zeros to 14).
OBS_SIZES = (14, 14, 12)
_NAMES = "0 no-op, 1 -x, 2 +x, 3 -y, 4 +y"

# Colliding pairs (a, b), a < b, in mpe2's loop order over entities (3 agents, then 2 obstacles);
# the obstacle-obstacle pair is left out (neither moves).
_PAIRS = np.array([(a, b) for a in range(5) for b in range(a + 1, 5) if a < N_AGENTS])
_SIZES = np.concatenate([AGENT_SIZE, [LANDMARK_SIZE] * N_LANDMARKS])
_DIST_MIN = _SIZES[_PAIRS[:, 0]] + _SIZES[_PAIRS[:, 1]]
# For agent i, its pairs in the order mpe2 adds their forces (by the other entity's index), and the
# sign of the pair's force on it (+ as the pair's first entity, - as the second).
_TERMS = [[(p, 1.0 if a == i else -1.0) for p, (a, b) in enumerate(_PAIRS.tolist()) if i in (a, b)] for i in range(3)]
_TERM_PAIR = np.array([[p for p, _ in t] for t in _TERMS])  # (3, 4)
_TERM_SIGN = np.array([[s for _, s in t] for t in _TERMS])[None, :, :, None]  # (1, 3, 4, 1)
_OTHERS = np.array([[1, 2], [0, 2], [0, 1]])  # the other agents in each seat's observation, in order


class TagState(NamedTuple):
    """The state of some copies (float64 arrays, seat order ``adversary_0, adversary_1, agent_0``).

    Attributes:
        agent_pos: ``(n, 3, 2)`` positions.
        agent_vel: ``(n, 3, 2)`` velocities.
        landmark_pos: ``(n, 2, 2)`` obstacle positions.
        t: ``(n,)`` steps taken in the episode.
    """

    agent_pos: np.ndarray
    agent_vel: np.ndarray
    landmark_pos: np.ndarray
    t: np.ndarray


def _check_max_cycles(max_cycles: Any) -> int:
    return integer("max_cycles", max_cycles, low=1, hint=f"the episode length (the paper uses {MAX_CYCLES})")


class BatchedTag(BatchedBase):
    """The paper's Tag over ``n_copies`` copies at once (numpy, no per-copy Python loop in ``step``).

    Seats, spaces, reward scale and episode length are those of ``tag_env(max_cycles,
    reward_scale)``. Episodes end by truncation after ``max_cycles`` steps (nothing terminates
    early); the caller resets finished copies (``reset(copies=...)``).

    Observations are ``(n_copies, 3, 14)`` float32: the seats' observations differ in length
    (chasers 14, runner 12), so the runner's row is padded with two zeros; seat ``i``'s own
    observation is ``obs[:, i, :OBS_SIZES[i]]`` (:meth:`seat_obs`).

    Example:
        >>> core = BatchedTag(n_copies=2)
        >>> obs = core.reset(seeds=0)  # copies seeded 0, 1
        >>> out = core.step(np.zeros((2, 3), np.int64))
        >>> out.obs.shape, out.rewards.shape, out.truncated.tolist()
        ((2, 3, 14), (2, 3), [False, False])
    """

    possible_agents = list(SEATS)

    def __init__(self, n_copies: int = 1, max_cycles: int = MAX_CYCLES, reward_scale: float = REWARD_SCALE):
        super().__init__(n_copies, {a: seat_spaces(a) for a in SEATS})
        self.max_cycles = _check_max_cycles(max_cycles)
        self.reward_scale = check_reward_scale(reward_scale)
        n = self.n_copies
        self.agent_pos = np.zeros((n, N_AGENTS, 2))
        self.agent_vel = np.zeros((n, N_AGENTS, 2))
        self.landmark_pos = np.zeros((n, N_LANDMARKS, 2))
        self.t = np.zeros(n, np.int64)
        self._keys = np.zeros(n, np.uint64)

    # ---- episodes -------------------------------------------------------------------------------
    def reset(self, seeds: Seeds = None, copies: np.ndarray | None = None) -> np.ndarray:
        """Reset ``copies`` (all for ``None``) with per-copy ``seeds``; the observations of all copies.

        Agents start uniform in ``[-1, 1]^2``, obstacles in ``[-0.9, 0.9]^2``, at rest (mpe2's
        distributions, drawn from each copy's own counter-based stream).
        """
        idx, per_copy = self._reset_copies(seeds, copies)
        keys = copy_keys(per_copy, self._keys[idx], ENV_ID)
        self._keys[idx] = keys
        u = uniforms(keys, np.zeros(len(idx)), 2 * (N_AGENTS + N_LANDMARKS))
        self.agent_pos[idx] = (-AGENT_START + 2 * AGENT_START * u[:, :6]).reshape(-1, N_AGENTS, 2)
        self.landmark_pos[idx] = (-LANDMARK_START + 2 * LANDMARK_START * u[:, 6:]).reshape(-1, N_LANDMARKS, 2)
        self.agent_vel[idx] = 0.0
        self.t[idx] = 0
        return self.observe()

    def get_state(self, copies: np.ndarray | None = None) -> TagState:
        """A copy of the state of ``copies`` (all for ``None``)."""
        idx = check_copies(copies, self.n_copies)
        return TagState(
            self.agent_pos[idx].copy(), self.agent_vel[idx].copy(), self.landmark_pos[idx].copy(), self.t[idx].copy()
        )

    def set_state(self, state: TagState, copies: np.ndarray | None = None) -> np.ndarray:
        """Put ``state`` (one row per copy in ``copies``, all for ``None``) in place; all copies' observations.

        With :func:`mpe2_state` this starts a copy where an mpe2 env stands (e.g. after its
        ``reset(seed=s)``), to step both side by side. Setting every copy also counts as the first reset.
        """
        idx = check_copies(copies, self.n_copies)
        if not self._started and len(idx) < self.n_copies:
            raise ConfigError("before the first reset(), set_state() must set every copy (copies=None)")
        if not isinstance(state, TagState):
            raise ConfigError(f"state must be a TagState (see BatchedTag.get_state), got {type(state).__name__}")
        n = len(idx)
        shapes = {"agent_pos": (n, N_AGENTS, 2), "agent_vel": (n, N_AGENTS, 2), "landmark_pos": (n, N_LANDMARKS, 2)}
        fields = {}
        for name, shape in shapes.items():
            value = np.asarray(getattr(state, name), dtype=np.float64)
            if value.shape != shape or not np.isfinite(value).all():
                raise ConfigError(f"state.{name} must be a finite array of shape {shape}, got shape {value.shape}")
            fields[name] = value
        t = np.asarray(state.t)
        if t.shape != (n,) or t.dtype.kind not in "iu" or (t < 0).any() or (t >= self.max_cycles).any():
            raise ConfigError(f"state.t must be {n} integers in 0..{self.max_cycles - 1}, got {t!r}")
        self.agent_pos[idx] = fields["agent_pos"]
        self.agent_vel[idx] = fields["agent_vel"]
        self.landmark_pos[idx] = fields["landmark_pos"]
        self.t[idx] = t
        self._started = True
        return self.observe()

    # ---- the rules ------------------------------------------------------------------------------
    def step(self, actions: np.ndarray) -> BatchStep:
        """Step every copy; ``actions`` ``(n_copies, 3)`` ints in 0..4 (seat order of ``possible_agents``)."""
        if not self._started:
            raise ConfigError("step() before reset(): call reset() first")
        if (self.t >= self.max_cycles).any():
            raise ConfigError("step() on a finished copy: reset(copies=...) the copies that were truncated first")
        acts = batch_actions(actions, self.n_copies, (5, 5, 5), _NAMES)
        self._integrate(self._forces(acts))
        self.t += 1
        return BatchStep(
            obs=self.observe(),
            rewards=self._rewards(),
            terminated=np.zeros(self.n_copies, bool),
            truncated=self.t >= self.max_cycles,
            costs=None,
        )

    def _forces(self, acts: np.ndarray) -> np.ndarray:
        """Each agent's force ``(n, 3, 2)``: its action, then each contact force in mpe2's order."""
        force = np.take(ACTION_DIRECTIONS, acts, axis=0) * AGENT_ACCEL[None, :, None]
        ent = np.concatenate([self.agent_pos, self.landmark_pos], axis=1)
        delta = np.take(ent, _PAIRS[:, 0], axis=1) - np.take(ent, _PAIRS[:, 1], axis=1)  # (n, pairs, 2)
        dist = np.sqrt(np.square(delta[..., 0]) + np.square(delta[..., 1]))
        k = CONTACT_MARGIN
        y = -(dist - _DIST_MIN) / k
        # softplus(y) is exactly 0 below -750 (exp underflows); skipping those avoids numpy's slow underflow path
        softplus = np.zeros_like(y)
        np.logaddexp(0, y, out=softplus, where=y > -750)
        penetration = softplus * k
        pair_force = CONTACT_FORCE * delta / dist[..., None] * penetration[..., None]
        terms = np.take(pair_force, _TERM_PAIR, axis=1) * _TERM_SIGN  # (n, 3, 4, 2); the sign flip is exact
        for j in range(terms.shape[2]):  # sequential, as mpe2 adds them (float addition is not associative)
            force = force + terms[:, :, j]
        return force

    def _integrate(self, force: np.ndarray) -> None:
        """mpe2's ``World.integrate_state``: move, damp, accelerate (mass 1), cap the speed."""
        self.agent_pos += self.agent_vel * DT
        vel = self.agent_vel * (1 - DAMPING)
        vel += force * DT
        speed = np.sqrt(np.square(vel[..., 0]) + np.square(vel[..., 1]))
        fast = speed > AGENT_MAX_SPEED
        capped = vel / np.where(fast, speed, 1.0)[..., None] * AGENT_MAX_SPEED[None, :, None]
        self.agent_vel = np.where(fast[..., None], capped, vel)

    def _rewards(self) -> np.ndarray:
        """``(n, 3)``, scaled: chasers +10 per chaser-runner collision; the runner -10 each and the bound penalty."""
        delta = self.agent_pos[:, :2] - self.agent_pos[:, 2:3]
        dist = np.sqrt(np.square(delta[..., 0]) + np.square(delta[..., 1]))
        hits = (dist < AGENT_SIZE[:2] + AGENT_SIZE[2]).sum(axis=1)
        x = np.abs(self.agent_pos[:, 2])  # (n, 2)
        with np.errstate(over="ignore"):
            far = np.minimum(np.exp(2 * x - 2), 10)
        bound = np.where(x < 0.9, 0.0, np.where(x < 1.0, (x - 0.9) * 10, far))
        runner = -10.0 * hits - bound[:, 0] - bound[:, 1]
        out = np.empty((self.n_copies, 3))
        out[:, :2] = (10.0 * hits)[:, None] * self.reward_scale
        out[:, 2] = runner * self.reward_scale
        return out

    def observe(self) -> np.ndarray:
        """Observations ``(n_copies, 3, 14)`` float32 (mpe2's layout, docs/tag.md; the runner's row padded)."""
        pos, vel = self.agent_pos, self.agent_vel
        out = np.zeros((self.n_copies, N_AGENTS, 14))
        out[..., 0:2] = vel
        out[..., 2:4] = pos
        out[..., 4:8] = (self.landmark_pos[:, None] - pos[:, :, None]).reshape(-1, N_AGENTS, 4)
        out[..., 8:12] = (np.take(pos, _OTHERS, axis=1) - pos[:, :, None]).reshape(-1, N_AGENTS, 4)
        out[:, :2, 12:14] = vel[:, 2:3]
        return out.astype(np.float32)

    @staticmethod
    def seat_obs(obs: np.ndarray, seat: int) -> np.ndarray:
        """Seat ``seat``'s observations ``(n_copies, OBS_SIZES[seat])`` from a ``(n_copies, 3, 14)`` batch."""
        i = integer("seat", seat, low=0, high=N_AGENTS - 1, hint="0, 1 the chasers, 2 the runner")
        return obs[:, i, : OBS_SIZES[i]]


def mpe2_state(env: Any) -> TagState:
    """The state of one mpe2 ``simple_tag`` env (any wrapper of it, e.g. :func:`~rqe_wrappers.envs.tag.tag_env`).

    A :class:`TagState` of one copy, for :meth:`BatchedTag.set_state`; ``ConfigError`` if ``env``
    is not the paper's Tag.
    """
    world = getattr(getattr(env, "unwrapped", None), "world", None)
    names = [a.name for a in getattr(world, "agents", [])]
    if world is None or names != list(SEATS) or len(world.landmarks) != N_LANDMARKS:
        raise ConfigError(
            f"env must be mpe2's simple_tag with the paper's seats {list(SEATS)} (tag_env()), got {env!r}"
        )
    return TagState(
        agent_pos=np.array([[a.state.p_pos for a in world.agents]], dtype=np.float64),
        agent_vel=np.array([[a.state.p_vel for a in world.agents]], dtype=np.float64),
        landmark_pos=np.array([[lm.state.p_pos for lm in world.landmarks]], dtype=np.float64),
        t=np.array([int(env.unwrapped.steps)]),
    )
