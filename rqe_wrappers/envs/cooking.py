"""The SRPO paper's cooking gridworld (appendix D.2): the rules over N copies as arrays, and ``cooking_v0``.

:class:`BatchedCooking` holds the rules once, as numpy over all copies; :class:`CookingEnv` (the
PettingZoo parallel env, id ``cooking_v0``) is that core with one copy, so the two cannot
diverge. Rules, layouts, observation layout and our choices where the paper is silent:
docs/cooking.md.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from rqe_wrappers.core.checks import integer
from rqe_wrappers.envs.batched import BatchedBase, BatchStep, Seeds, action_index, batch_actions, copy_keys, uniforms
from rqe_wrappers.errors import ConfigError

ENV_ID = "cooking_v0"
AGENTS = ("player_0", "player_1")
UP, DOWN, LEFT, RIGHT, STAY = range(5)
ACTION_NAMES = ("up", "down", "left", "right", "stay")
_DELTAS = ((-1, 0), (1, 0), (0, -1), (0, 1), (0, 0))
MOVE_COST = 0.2
COLLISION_COST = 2.0
ONION_REWARD = 1.0
DELIVERY_REWARD = 10.0
RESPAWN_PROB = 0.2
#: The paper's cross-play episodes last 100 steps (its training rollouts 128: pass ``max_steps=128``).
MAX_STEPS = 100

#: Layout characters: ``.`` floor, ``#`` counter (solid), ``P`` pot (solid), ``O`` onion source
#: (floor), ``A`` / ``B`` the two start cells (floor). A layout is the grid inside its outer wall.
LAYOUT_ROWS: dict[str, tuple[str, ...]] = {
    "train": (
        "AB...",
        ".....",
        "..P..",
        ".....",
        "O...O",
    ),
    "test": (
        "AB...",
        ".....",
        "O#P#O",
        ".....",
        ".....",
    ),
    # one onion source beside the pot: one worker can carry every onion, so a second adds little
    "one-source": (
        "A...B",
        ".....",
        "..P..",
        "..O..",
        ".....",
    ),
    "one-source-test": (
        "A...B",
        ".....",
        ".#P#.",
        ".....",
        "..O..",
    ),
}


@dataclass(frozen=True)
class Layout:
    """A parsed layout: cells are numbered row-major (``cell = row * width + col``)."""

    name: str
    rows: tuple[str, ...]
    height: int
    width: int
    solid: np.ndarray  # (cells,) bool: counters and pots
    pots: tuple[int, ...]
    onions: tuple[int, ...]  # onion sources, row-major: onion k is entry k of the observation's onion block
    starts: tuple[int, int]  # cells A and B
    target: np.ndarray  # (cells, 5): where each action leads (the same cell when blocked by a counter or the edge)
    into_pot: np.ndarray  # (cells, 5) bool: the action pushes into a pot
    onion_at: np.ndarray  # (cells,) index of the onion source on the cell, -1 if none


def parse_layout(name: str, rows: tuple[str, ...]) -> Layout:
    """Parse a layout drawing (see :data:`LAYOUT_ROWS`); :class:`ConfigError` if it is malformed."""
    rows = tuple(rows)
    if not rows or any(len(r) != len(rows[0]) for r in rows) or not rows[0]:
        raise ConfigError(f"layout {name!r}: rows must be non-empty strings of one length, got {rows!r}")
    bad = {c for r in rows for c in r} - set(".#POAB")
    if bad:
        raise ConfigError(f"layout {name!r}: unknown characters {sorted(bad)}; use . # P O A B")
    flat = "".join(rows)
    height, width = len(rows), len(rows[0])
    if flat.count("A") != 1 or flat.count("B") != 1 or "P" not in flat or "O" not in flat:
        raise ConfigError(f"layout {name!r} needs exactly one A, one B, at least one P and one O")
    solid = np.array([c in "#P" for c in flat])
    target = np.empty((height * width, 5), np.int64)
    into_pot = np.zeros((height * width, 5), bool)
    for cell in range(height * width):
        r, c = divmod(cell, width)
        for a, (dr, dc) in enumerate(_DELTAS):
            rr, cc = r + dr, c + dc
            inside = 0 <= rr < height and 0 <= cc < width
            nxt = rr * width + cc
            target[cell, a] = nxt if inside and not solid[nxt] else cell
            into_pot[cell, a] = inside and flat[nxt] == "P"
    onions = tuple(i for i, ch in enumerate(flat) if ch == "O")
    onion_at = np.full(height * width, -1, np.int64)
    onion_at[list(onions)] = np.arange(len(onions))
    return Layout(
        name=name,
        rows=rows,
        height=height,
        width=width,
        solid=solid,
        pots=tuple(i for i, ch in enumerate(flat) if ch == "P"),
        onions=onions,
        starts=(flat.index("A"), flat.index("B")),
        target=target,
        into_pot=into_pot,
        onion_at=onion_at,
    )


def get_layout(layout: str) -> Layout:
    """The named layout (``"train"`` or the held-out ``"test"``), or :class:`ConfigError`."""
    if not isinstance(layout, str) or layout not in LAYOUT_ROWS:
        raise ConfigError(f"unknown cooking layout {layout!r}; choose one of {sorted(LAYOUT_ROWS)}")
    return _parsed(layout)


@functools.cache
def _parsed(layout: str) -> Layout:
    return parse_layout(layout, LAYOUT_ROWS[layout])


def obs_size(layout: str = "train") -> int:
    """Observation length: own cell one-hot, partner's cell one-hot, own and partner's carry, onions."""
    lay = get_layout(layout)
    return 2 * lay.height * lay.width + 2 + len(lay.onions)


def observation_space(layout: str = "train") -> gym.spaces.Box:
    """Every seat's observation space (``Box(0, 1, (obs_size,), float32)``)."""
    return gym.spaces.Box(0.0, 1.0, (obs_size(layout),), np.float32)


def action_space() -> gym.spaces.Discrete:
    """Every seat's action space: 0 up, 1 down, 2 left, 3 right, 4 stay."""
    return gym.spaces.Discrete(5)


def _check_max_steps(max_steps: int) -> int:
    return integer("max_steps", max_steps, low=1, hint="the episode's time limit in steps")


class BatchedCooking(BatchedBase):
    """The cooking rules over ``n_copies`` copies at once (numpy, no per-copy Python loop in ``step``).

    Copy ``k`` after ``reset(seeds=[..., s, ...])`` plays exactly as ``CookingEnv`` after
    ``reset(seed=s)``. Episodes end by truncation after ``max_steps`` steps; the caller resets
    finished copies (``reset(copies=...)``).

    Example:
        >>> core = BatchedCooking(n_copies=3)
        >>> obs = core.reset(seeds=0)  # copies seeded 0, 1, 2
        >>> out = core.step(np.full((3, 2), STAY))
        >>> out.obs.shape, out.rewards.tolist()
        ((3, 2, 54), [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    """

    possible_agents = list(AGENTS)

    def __init__(self, n_copies: int = 1, layout: str = "train", max_steps: int = MAX_STEPS):
        super().__init__(n_copies, {a: (observation_space(layout), action_space()) for a in AGENTS})
        self.layout = get_layout(layout)
        self.max_steps = _check_max_steps(max_steps)
        n, k = self.n_copies, len(self.layout.onions)
        self._cells = self.layout.height * self.layout.width
        self.pos = np.zeros((n, 2), np.int64)  # cell of each seat
        self.carry = np.zeros((n, 2), bool)
        self.onions = np.zeros((n, k), bool)  # onion available at each source
        self.t = np.zeros(n, np.int64)
        self._keys = np.zeros(n, np.uint64)
        self._rows = np.arange(n)
        self._seat_rows = np.arange(2 * n)

    def reset(self, seeds: Seeds = None, copies: np.ndarray | None = None) -> np.ndarray:
        """Reset ``copies`` (all for ``None``) with per-copy ``seeds``; the observations of all copies."""
        idx, per_copy = self._reset_copies(seeds, copies)
        keys = copy_keys(per_copy, self._keys[idx], ENV_ID)
        self._keys[idx] = keys
        swap = uniforms(keys, np.zeros(len(idx)), 1)[:, 0] < 0.5  # which seat starts on A
        a, b = self.layout.starts
        self.pos[idx, 0] = np.where(swap, b, a)
        self.pos[idx, 1] = np.where(swap, a, b)
        self.carry[idx] = False
        self.onions[idx] = True
        self.t[idx] = 0
        return self.observe()

    def observe(self) -> np.ndarray:
        """Observations ``(n_copies, 2, obs_size)`` float32, each seat's from its own side."""
        cells, seats = self._cells, self._seat_rows
        out = np.zeros((self.n_copies, 2, 2 * cells + 2 + self.onions.shape[1]), np.float32)
        flat = out.reshape(2 * self.n_copies, -1)  # a view, row 2 * copy + seat
        flat[seats, self.pos.reshape(-1)] = 1.0  # own cell
        flat[seats, cells + self.pos[:, ::-1].reshape(-1)] = 1.0  # the partner's cell
        out[:, :, 2 * cells] = self.carry
        out[:, :, 2 * cells + 1] = self.carry[:, ::-1]
        out[:, :, 2 * cells + 2 :] = self.onions[:, None, :]
        return out

    def step(self, actions: np.ndarray) -> BatchStep:
        """Step every copy; ``actions`` ``(n_copies, 2)`` ints in 0..4. Costs are in ``BatchStep.costs``."""
        if not self._started:
            raise ConfigError("step() before reset(): call reset() first")
        acts = batch_actions(actions, self.n_copies, (5, 5), ", ".join(ACTION_NAMES))
        draws = uniforms(self._keys, self.t + 1, 1 + self.onions.shape[1])
        first = 2 * self._rows + (draws[:, 0] >= 0.5)  # flat index of the seat updated first
        costs = np.zeros((self.n_copies, 2))
        team = np.zeros(self.n_copies)
        flat_acts, flat_costs = acts.reshape(-1), costs.reshape(-1)
        self._move(first, flat_acts, flat_costs, team)
        self._move(first ^ 1, flat_acts, flat_costs, team)
        self.onions |= draws[:, 1:] < RESPAWN_PROB
        self.t += 1
        return BatchStep(
            obs=self.observe(),
            rewards=team[:, None] - costs,
            terminated=np.zeros(self.n_copies, bool),
            truncated=self.t >= self.max_steps,
            costs=costs,
        )

    def _move(self, me: np.ndarray, acts: np.ndarray, costs: np.ndarray, team: np.ndarray) -> None:
        """Apply one seat per copy, the partner as it stands now; ``me`` is ``2 * copy + seat`` (flat indices)."""
        lay, k = self.layout, self.onions.shape[1]
        pos, carry, onions = self.pos.reshape(-1), self.carry.reshape(-1), self.onions.reshape(-1)  # views
        here, act = pos[me], acts[me]
        there = lay.target.reshape(-1)[5 * here + act]
        moving = act != STAY
        collide = moving & (there == pos[me ^ 1])
        costs[me] += MOVE_COST * moving + COLLISION_COST * collide
        carrying = carry[me]
        deliver = carrying & lay.into_pot.reshape(-1)[5 * here + act]
        there = np.where(collide, here, there)
        pos[me] = there
        src = lay.onion_at[there]
        slot = k * (me >> 1) + src  # the entered source's entry in the flat onion array
        pick = (src >= 0) & (there != here) & ~carrying
        pick &= onions[np.where(pick, slot, 0)]
        onions[slot[pick]] = False
        carry[me] = (carrying & ~deliver) | pick
        team += DELIVERY_REWARD * deliver + ONION_REWARD * pick

    def render(self, copy: int = 0, mode: str = "ansi") -> str | np.ndarray:
        """One copy as text (``"ansi"``) or an RGB image ``(H * 24, W * 24, 3)`` uint8 (``"rgb_array"``)."""
        k = integer("copy", copy, low=0, high=self.n_copies - 1)
        if mode == "ansi":
            return self._ansi(k)
        if mode == "rgb_array":
            return self._rgb(k)
        raise ConfigError(f"render mode must be 'ansi' or 'rgb_array', got {mode!r}")

    def _ansi(self, k: int) -> str:
        lay = self.layout
        grid = [list(r.replace("A", ".").replace("B", ".").replace("O", ",")) for r in lay.rows]
        for j, cell in enumerate(lay.onions):
            if self.onions[k, j]:
                grid[cell // lay.width][cell % lay.width] = "o"
        for seat, (empty, full) in enumerate((("a", "A"), ("b", "B"))):
            cell = int(self.pos[k, seat])
            grid[cell // lay.width][cell % lay.width] = full if self.carry[k, seat] else empty
        return "\n".join("".join(r) for r in grid) + f"\nstep {int(self.t[k])}/{self.max_steps}\n"

    def _rgb(self, k: int, px: int = 24) -> np.ndarray:
        lay = self.layout
        colours = {".": (235, 235, 235), "A": (235, 235, 235), "B": (235, 235, 235), "#": (110, 110, 110)}
        colours |= {"P": (70, 45, 30), "O": (215, 205, 170)}
        img = np.zeros((lay.height * px, lay.width * px, 3), np.uint8)

        def fill(cell: int, colour: tuple[int, int, int], margin: int) -> None:
            r, c = divmod(cell, lay.width)
            img[r * px + margin : (r + 1) * px - margin, c * px + margin : (c + 1) * px - margin] = colour

        for cell, ch in enumerate("".join(lay.rows)):
            fill(cell, colours[ch], 0)
        for j, cell in enumerate(lay.onions):
            if self.onions[k, j]:
                fill(cell, (240, 200, 40), px // 4)
        for seat, colour in enumerate(((200, 50, 50), (50, 90, 200))):
            cell = int(self.pos[k, seat])
            fill(cell, colour, px // 8)
            if self.carry[k, seat]:
                fill(cell, (240, 200, 40), 3 * px // 8)
        return img


class CookingEnv(ParallelEnv):
    """The cooking gridworld as a PettingZoo parallel env: :class:`BatchedCooking` with one copy.

    Rewards: the shared team reward of the step minus the seat's own private cost; ``infos[agent]``
    has that cost under ``"cost"`` (0.2 per move attempt + 2.0 per collision), so free-riding can be
    measured. Episodes end by truncation after ``max_steps`` steps.

    Example:
        >>> env = CookingEnv(layout="train")
        >>> obs, infos = env.reset(seed=0)
        >>> obs, rewards, terms, truncs, infos = env.step({"player_0": DOWN, "player_1": STAY})
        >>> rewards["player_0"], infos["player_0"]["cost"], rewards["player_1"]
        (-0.2, 0.2, 0.0)
    """

    metadata = {"name": ENV_ID, "render_modes": ["rgb_array", "ansi"], "is_parallelizable": True, "render_fps": 5}

    def __init__(self, layout: str = "train", max_steps: int = MAX_STEPS, render_mode: str | None = None):
        if render_mode is not None and render_mode not in ("rgb_array", "ansi"):
            raise ConfigError(f"render_mode must be None, 'rgb_array' or 'ansi', got {render_mode!r}")
        self.core = BatchedCooking(n_copies=1, layout=layout, max_steps=max_steps)
        self.layout = layout
        self.max_steps = self.core.max_steps
        self.render_mode = render_mode
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []

    def observation_space(self, agent: str) -> gym.spaces.Box:
        return self.core.observation_space(agent)

    def action_space(self, agent: str) -> gym.spaces.Discrete:
        return self.core.action_space(agent)

    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        obs = self.core.reset(seeds=[seed])
        self.agents = list(self.possible_agents)
        return {a: obs[0, i] for i, a in enumerate(self.agents)}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise ConfigError("step() called after the episode ended; call reset() first")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ConfigError(f"step() needs an action for every seat; missing {missing}")
        row = [action_index(a, actions[a], 5, ", ".join(ACTION_NAMES)) for a in self.possible_agents]
        out = self.core.step(np.array([row]))
        assert out.costs is not None
        agents = self.agents
        obs = {a: out.obs[0, i] for i, a in enumerate(agents)}
        rewards = {a: float(out.rewards[0, i]) for i, a in enumerate(agents)}
        terms = {a: bool(out.terminated[0]) for a in agents}
        truncs = {a: bool(out.truncated[0]) for a in agents}
        infos = {a: {"cost": float(out.costs[0, i])} for i, a in enumerate(agents)}
        if out.terminated[0] or out.truncated[0]:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        return self.core.render(0, self.render_mode)

    def close(self) -> None:
        pass


def cooking_env(layout: str = "train", max_steps: int = MAX_STEPS, render_mode: str | None = None) -> CookingEnv:
    """The paper's cooking gridworld (``cooking_v0``, parallel API) on ``layout`` (``"train"`` or ``"test"``)."""
    return CookingEnv(layout=layout, max_steps=max_steps, render_mode=render_mode)
