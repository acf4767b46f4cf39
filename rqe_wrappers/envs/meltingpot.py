"""Melting Pot substrates (dmlab2d) as seeded PettingZoo parallel envs: ``meltingpot_env("<substrate>")``.

Each player is a seat ``player_<i>`` observing its ``RGB`` view (uint8, e.g. 40 x 40 x 3 in the
collaborative cooking layouts) and choosing one of the substrate's discrete actions (8 in cooking);
rewards are the players' own. An episode ends when the substrate's timestep is the last one:
``terminated`` where dm_env's discount is 0 (Melting Pot's fixed-length episodes), else ``truncated``.
``reset(seed=s)`` rebuilds the dmlab2d world with ``env_seed = s`` (a build takes ~0.3 s) and Python's
``random`` (which Melting Pot draws from while building) seeded from ``s``, from a copy of Melting Pot's
Lua tree in which the avatars take their spawn points in a fixed order (:func:`patched_root`; the
original order changes from build to build): one seed gives one episode. A reset without a seed
continues the world's own stream. Worlds are built as Melting Pot's ``builder.builder`` builds them, with
the Lua settings made once per process and, for a substrate that does not render, only the seats'
views and rewards read from dmlab2d at each step (:func:`_build`). The world is built
at the first reset, inside the process that steps it (dmlab2d objects do not pickle), so the env
object itself pickles and works with ``PettingZooVecEnv(..., n_workers=k)``.

``meltingpot_scenario_env("<scenario>")`` is one of Melting Pot's evaluation scenarios the same way:
its focal players are the seats (named by their player index), its bots (saved models under
Melting Pot's ``assets/saved_models``) play the other players inside the env, drawn per episode
from Python's ``random`` as Melting Pot draws them, which the env seeds from ``reset(seed=...)``.
The bots' models come with an online install of Melting Pot; where they are missing (the offline
install) making the env raises :class:`~rqe_wrappers.errors.ConfigError` naming them.

Melting Pot is an optional extra (``pip install "rqe-wrappers[meltingpot]"``, docs/meltingpot.md for
the offline install): this module imports it only when an env is made, and ``import rqe_wrappers``
never does. Melting Pot's own substrate import brings TensorFlow and chex (hence jax) in; where they
are not installed stand-in modules take their places (the substrates never call TensorFlow and use
chex only for ``@chex.dataclass``; the bots need the real TensorFlow).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import random
import sys
import types
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from rqe_wrappers.core.checks import is_integer
from rqe_wrappers.errors import ConfigError

#: the collaborative cooking layouts of the minimax-Bayes paper's deep-RL experiment (Table 3)
PAPER_LAYOUTS = ("collaborative_cooking__circuit", "collaborative_cooking__cramped")

_INSTALL = (
    "Melting Pot is not installed: pip install 'rqe-wrappers[meltingpot]' (offline: docs/meltingpot.md, the "
    "pre-seeded assets tarball)"
)


class _MissingModuleError(AttributeError):
    """A name a stand-in module does not provide: an AttributeError (so ``hasattr`` and ``inspect``, which
    torch runs over every module in ``sys.modules``, see a missing attribute) that says what is missing."""


class _TensorFlowStub(types.ModuleType):
    """Stands in for TensorFlow where it is not installed (e.g. the GPU box, where it is too large to carry).

    Melting Pot imports TensorFlow for its bots' saved models only; its substrates never call it. At
    import time its modules read ``tf.Tensor`` (in annotations) and ``tf.executing_eagerly()``; any
    other name raises an AttributeError that says the bots need the real TensorFlow.
    """

    Tensor = type("Tensor", (), {})

    def __init__(self) -> None:
        super().__init__("tensorflow", "rqe_wrappers' stand-in: Melting Pot's substrates run without TensorFlow")

    @staticmethod
    def executing_eagerly() -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        raise _MissingModuleError(
            f"tensorflow.{name}: TensorFlow is not installed (rqe_wrappers stands in for it so that Melting Pot's "
            "substrates run); Melting Pot's bots and scenarios need the real one: pip install tensorflow"
        )


class _ChexStub(types.ModuleType):
    """Stands in for chex where it (or jax, which it imports; jaxlib is a 93 MB wheel) is not installed.

    Melting Pot's substrate and scenario modules use chex only as ``@chex.dataclass(frozen=True)`` for
    their observables records: here a frozen, keyword-only ``dataclasses.dataclass``. Any other name
    raises an AttributeError that says chex is not installed.
    """

    def __init__(self) -> None:
        super().__init__("chex", "rqe_wrappers' stand-in: Melting Pot's substrates run without jax")

    @staticmethod
    def dataclass(cls: Any = None, *, frozen: bool = False, **_: Any) -> Any:
        wrap = functools.partial(dataclasses.dataclass, frozen=frozen, kw_only=True)
        return wrap if cls is None else wrap(cls)

    def __getattr__(self, name: str) -> Any:
        raise _MissingModuleError(
            f"chex.{name}: chex (and jax) are not installed; rqe_wrappers stands in for chex.dataclass"
        )


def _meltingpot() -> Any:
    """``meltingpot.substrate``; without TensorFlow or chex/jax, :class:`_TensorFlowStub` and
    :class:`_ChexStub` take their places while Melting Pot is imported (its modules keep them; the
    substrates run without the real ones, the bots need TensorFlow), then ``sys.modules`` is put back as
    it was, so other libraries that look for TensorFlow (torch's compiler does) do not find a stand-in."""
    stubs: dict[str, types.ModuleType] = {}
    try:
        import tensorflow  # noqa: F401  (Melting Pot imports it; present: the real one)
    except ImportError:
        stubs["tensorflow"] = _TensorFlowStub()
    try:
        import chex  # noqa: F401  (imports jax)
    except ImportError:
        stubs["chex"] = _ChexStub()
    before = {name: sys.modules[name] for name in stubs if name in sys.modules}  # e.g. a None that blocks it
    sys.modules.update(stubs)
    try:
        from meltingpot import substrate
    except ImportError as e:
        raise ImportError(f"{_INSTALL} ({e})") from e
    finally:
        for name in stubs:
            del sys.modules[name]
        sys.modules.update(before)
    return substrate


#: ``BaseSimulation:_avatarStart`` hands the seeded spawn points to the avatars in ``pairs()`` order over a
#: table keyed by strings; the Lua VM seeds its string hash per state, so that order (who spawns where)
#: changes from build to build. The patched copy iterates in sorted key order: (original, replacement).
_AVATAR_ORDER = (
    (
        "  local cachedAvatarSpawnGroups = {}\n  for key, avatarObject in pairs(self._variables.avatarObjects) do\n",
        "  local cachedAvatarSpawnGroups = {}\n  local sortedKeys = {}\n"
        "  for key, _ in pairs(self._variables.avatarObjects) do\n    table.insert(sortedKeys, key)\n  end\n"
        "  table.sort(sortedKeys)\n  for _, key in ipairs(sortedKeys) do\n"
        "    local avatarObject = self._variables.avatarObjects[key]\n",
    ),
    (
        "  for spawnGroup, numAvatarsThisGroup in pairs(avatarsPerSpawnGroup) do\n",
        "  local sortedGroups = {}\n  for spawnGroup, _ in pairs(avatarsPerSpawnGroup) do\n"
        "    table.insert(sortedGroups, spawnGroup)\n  end\n  table.sort(sortedGroups)\n"
        "  for _, spawnGroup in ipairs(sortedGroups) do\n"
        "    local numAvatarsThisGroup = avatarsPerSpawnGroup[spawnGroup]\n",
    ),
    (
        "  -- Create the avatars.\n  for key, avatarObject in pairs(self._variables.avatarObjects) do\n",
        "  -- Create the avatars.\n  for _, key in ipairs(sortedKeys) do\n"
        "    local avatarObject = self._variables.avatarObjects[key]\n",
    ),
)


def patched_root() -> str:
    """A copy of Melting Pot's Lua tree with the avatar order fixed (:data:`_AVATAR_ORDER`), built once per
    Melting Pot version under this user's cache; returns the directory that holds ``meltingpot/lua``."""
    import importlib.metadata
    import shutil
    import tempfile
    from pathlib import Path

    import meltingpot
    from platformdirs import user_cache_dir

    version = importlib.metadata.version("dm-meltingpot")
    root = Path(user_cache_dir("rqe-wrappers")) / "meltingpot-lua" / version
    if (root / "meltingpot" / "lua" / "PATCHED").exists():
        return str(root)
    source = Path(meltingpot.__file__).parent / "lua"
    text = (source / "modules" / "base_simulation.lua").read_text(encoding="utf-8")
    for old, new in _AVATAR_ORDER:
        if text.count(old) != 1:
            raise ImportError(
                f"dm-meltingpot {version}: base_simulation.lua is not the one rqe_wrappers patches for seeded "
                "resets; use dm-meltingpot 2.4.1 (pip install 'rqe-wrappers[meltingpot]')"
            )
        text = text.replace(old, new)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root.parent))  # built aside, then moved in: no half-written tree
    shutil.copytree(source, staging / "meltingpot" / "lua")
    (staging / "meltingpot" / "lua" / "modules" / "base_simulation.lua").write_text(text, encoding="utf-8")
    (staging / "meltingpot" / "lua" / "PATCHED").write_text(version, encoding="utf-8")
    try:
        staging.rename(root)
    except OSError:  # another process won the race: use its copy
        shutil.rmtree(staging, ignore_errors=True)
    return str(root)


def _build(factory: Any, roles: tuple[str, ...], seed: int | None, key: Any, reads: frozenset[str] | None) -> Any:
    """Melting Pot's ``factory.build(roles)`` with dmlab2d's ``env_seed`` and the patched Lua tree (Melting
    Pot's own build draws a random seed and spawns the avatars in an order that changes from build to build).

    As Melting Pot's ``builder.builder`` builds it (a world rebuilt at every reset), with two savings:
    the flattened Lua settings are made once per process for ``key`` (they are the same for every build of
    one substrate, settings and roles), and with ``reads`` (per-player observation names, e.g. ``{"RGB"}``)
    each step reads only those and the players' rewards from dmlab2d instead of every observation
    (``WORLD.RGB``, the debug layers, ...), and no global observation. ``reads=None``: everything, as
    Melting Pot's scenarios and their bots need."""
    import itertools

    import dmlab2d
    from meltingpot.utils.substrates import builder
    from meltingpot.utils.substrates import substrate as mp_substrate
    from meltingpot.utils.substrates.wrappers import (
        collective_reward_wrapper,
        discrete_action_wrapper,
        multiplayer_wrapper,
        observables_wrapper,
        reset_wrapper,
    )

    settings = _lua_settings(factory, roles, key)
    if seed is None:  # as builder.builder: a long seed other than 0, from Python's `random`
        seed = random.randint(1, builder._MAX_SEED)
    seeds = (s % (builder._MAX_SEED + 1) for s in itertools.count(seed))

    def build_environment() -> Any:
        env_seed = next(seeds)
        raw = dmlab2d.Lab2d(builder._DMLAB2D_ROOT, {**settings, "env_seed": str(env_seed)})
        names = raw.observation_names()
        if reads is not None:
            wanted = {*reads, "REWARD"}
            names = [n for n in names if n.partition(".")[0].isdigit() and n.partition(".")[2] in wanted]
        return dmlab2d.Environment(env=raw, observation_names=names, seed=env_seed)

    env = observables_wrapper.ObservablesWrapper(reset_wrapper.ResetWrapper(build_environment))
    env = multiplayer_wrapper.Wrapper(
        env,
        individual_observation_names=factory._individual_observations if reads is None else reads,
        global_observation_names=factory._global_observations if reads is None else (),
    )
    env = discrete_action_wrapper.Wrapper(env, action_table=factory._action_table)
    env = collective_reward_wrapper.CollectiveRewardWrapper(env)
    return mp_substrate.Substrate(env)


#: the flattened Lua settings of each (key, roles) built in this process (:func:`_lua_settings`)
_LUA_SETTINGS: dict[Any, dict[str, str]] = {}


def _lua_settings(factory: Any, roles: tuple[str, ...], key: Any) -> dict[str, str]:
    """What Melting Pot's ``builder.builder`` hands dmlab2d for ``factory``'s world with ``roles`` (before the
    seed), with the patched Lua tree; made once per ``(key, roles)``."""
    import copy

    from meltingpot.utils.substrates import builder
    from ml_collections import config_dict

    if (key, roles) in _LUA_SETTINGS:
        return _LUA_SETTINGS[(key, roles)]
    root, builder._MELTINGPOT_ROOT = builder._MELTINGPOT_ROOT, patched_root()  # read below only
    try:
        lab2d = config_dict.ConfigDict(copy.deepcopy(factory._lab2d_settings_builder(roles))).unlock()
        builder.apply_prefab_overrides(lab2d, None)
        builder.maybe_build_and_add_avatar_objects(lab2d)
        builder.locate_and_overwrite_level_directory(lab2d)
        settings = builder.parse_python_settings_for_dmlab2d(lab2d)
    finally:
        builder._MELTINGPOT_ROOT = root
    _LUA_SETTINGS[(key, roles)] = settings
    return settings


def _substrate_factory(substrate: str, settings: dict[str, Any]) -> Any:
    """Melting Pot's factory of ``substrate``, built from its config with ``settings`` overriding config keys."""
    mp = _meltingpot()
    if not settings:
        return mp.get_factory(substrate)
    config = mp.get_config(substrate)
    unknown = sorted(k for k in settings if k not in config)
    if unknown:
        raise ConfigError(f"{substrate} has no config keys {unknown}; its keys: {sorted(config.keys())}")
    with config.unlocked():
        for key, value in settings.items():
            config[key] = value
    return mp.get_factory_from_config(config)


class _Kept:
    """A bot that outlives the scenario built around it (Melting Pot closes a scenario's bots with it;
    the env builds a new world at every seeded reset and keeps its bots until :meth:`MeltingPotEnv.close`)."""

    def __init__(self, bot: Any):
        self.bot = bot

    def initial_state(self) -> Any:
        return self.bot.initial_state()

    def step(self, timestep: Any, prev_state: Any) -> Any:
        return self.bot.step(timestep, prev_state)

    def close(self) -> None:
        """Kept open: the env closes the bot."""


def _scenario_config(name: str) -> Any:
    """Melting Pot's config of scenario ``name``, its bots' saved models checked to be installed."""
    _meltingpot()
    from meltingpot import scenario as mp_scenario
    from meltingpot.configs import bots as bot_configs

    if name not in mp_scenario.SCENARIOS:
        raise ConfigError(f"unknown Melting Pot scenario {name!r}; known: {sorted(mp_scenario.SCENARIOS)}")
    config = mp_scenario.get_config(name)
    names = sorted(set().union(*config.bots_by_role.values()))
    missing = [
        f"{n} ({bot_configs.BOT_CONFIGS[n].model_path})"
        for n in names
        if not os.path.isdir(bot_configs.BOT_CONFIGS[n].model_path)
    ]
    if missing:
        raise ConfigError(
            f"scenario {name!r} needs the saved models of its bots, which are not installed: {missing}. They come "
            "with Melting Pot's assets: pip install dm-meltingpot with internet access (docs/meltingpot.md)"
        )
    return config


class MeltingPotEnv(ParallelEnv):
    """A Melting Pot substrate as a PettingZoo parallel env (see the module doc).

    Args:
        substrate: a name from ``meltingpot.substrate.SUBSTRATES`` (default: cooking's circuit layout).
        roles: one role per player (default: the substrate's ``default_player_roles``).
        observation: the per-player observation key (``"RGB"``).
        render_mode: ``"rgb_array"`` renders ``WORLD.RGB`` (the whole map).
        scenario: a name from ``meltingpot.scenario.SCENARIOS``: its substrate with its bots in the
            non-focal players (``substrate`` and ``roles`` then come from the scenario).
        settings: substrate config keys to override, e.g. ``{"cooking_pot_pseudoreward": 1.0}`` (the
            minimax-Bayes paper's shaping for training); not with ``scenario`` (evaluation is as published).
        frames: each seat observes its last ``frames`` views stacked along the channel axis, oldest
            first (40 x 40 x 3k in cooking); at a reset the first view fills every slot. A
            feed-forward CNN then sees motion (the paper's policies have an LSTM instead).
    """

    metadata = {"name": "meltingpot_v0", "render_modes": ["rgb_array"], "is_parallelizable": True}

    def __init__(
        self,
        substrate: str = PAPER_LAYOUTS[0],
        roles: tuple[str, ...] | list[str] | None = None,
        observation: str = "RGB",
        render_mode: str | None = None,
        scenario: str | None = None,
        settings: dict[str, Any] | None = None,
        frames: int = 1,
    ):
        if not is_integer(frames) or not 1 <= int(frames) <= 16:
            raise ConfigError(f"frames must be a whole number from 1 to 16, got {frames!r}")
        self.frames = int(frames)
        mp = _meltingpot()
        self.scenario = scenario
        if settings is not None and not isinstance(settings, dict):
            raise ConfigError(f"settings must be a dict of substrate config keys, got {type(settings).__name__}")
        if settings and scenario is not None:
            raise ConfigError("settings change the substrate; Melting Pot's scenarios are evaluated as published")
        self.settings = dict(settings or {})
        is_focal: tuple[bool, ...] | None = None
        if scenario is not None:
            config = _scenario_config(scenario)
            if roles is not None:
                raise ConfigError(f"scenario {scenario!r} sets the roles ({list(config.roles)}); leave roles unset")
            substrate, roles, is_focal = config.substrate, tuple(config.roles), tuple(config.is_focal)
        if substrate not in mp.SUBSTRATES:
            raise ConfigError(f"unknown Melting Pot substrate {substrate!r}; known: {sorted(mp.SUBSTRATES)}")
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.substrate = substrate
        self._factory_cache: Any = _substrate_factory(substrate, self.settings)
        self.roles = tuple(self._factory.default_player_roles() if roles is None else roles)
        unknown = sorted(set(self.roles) - set(self._factory.valid_roles()))
        if unknown or not self.roles:
            raise ConfigError(
                f"roles {unknown or list(self.roles)} are not valid for {substrate}: "
                f"{sorted(self._factory.valid_roles())}"
            )
        spec = self._factory.timestep_spec().observation
        if observation not in spec:
            raise ConfigError(f"{substrate} has no per-player observation {observation!r}; it has {sorted(spec)}")
        shape, n_actions = spec[observation].shape, int(self._factory.action_spec().num_values)
        self.observation, self.render_mode = observation, render_mode
        focal = is_focal or (True,) * len(self.roles)
        self.possible_agents = [f"player_{i}" for i, f in enumerate(focal) if f]
        self.agents: list[str] = []
        self._py_random: Any = None  # the state of Python's `random` that Melting Pot draws from, this env's own
        self._bots: dict[str, Any] = {}
        self._substrate_world: Any = None
        #: a scenario's bots in this episode, in the order of its non-focal players (``infos[seat]["bots"]``)
        self.bots: tuple[str, ...] = ()
        shape = (*tuple(shape)[:-1], int(shape[-1]) * self.frames)
        self._obs_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self._stack: dict[str, np.ndarray] = {}
        self._act_space = gym.spaces.Discrete(n_actions)
        self._world: Any = None
        self._last: Any = None

    def observation_space(self, agent: str) -> gym.Space:
        return self._obs_space

    def action_space(self, agent: str) -> gym.Space:
        return self._act_space

    @property
    def _factory(self) -> Any:
        if self._factory_cache is None:  # after unpickling: fetched again in this process
            self._factory_cache = _substrate_factory(self.substrate, self.settings)
        return self._factory_cache

    def __getstate__(self) -> dict[str, Any]:  # the dmlab2d world and the factory stay in their process
        state = dict(self.__dict__)
        state["_world"], state["_last"], state["_factory_cache"] = None, None, None
        state["_bots"], state["_substrate_world"] = {}, None
        return state

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None and (not is_integer(seed) or int(seed) < 0):
            raise ConfigError(f"seed must be a whole number >= 0 or None, got {seed!r}")
        if seed is None and self._world is not None:
            self._last = self._drawing(self._world.reset)  # the world's own streams go on
        else:
            if self._world is not None:
                self._world.close()
            # Melting Pot draws from Python's global `random` while it builds and resets a world (and a
            # scenario's bots at each reset): this env's own state of it, seeded from `seed`, is swapped
            # in around those calls (and the caller's put back), so one seed gives one episode
            self._py_random = random.Random(None if seed is None else int(seed)).getstate()
            self._world = self._drawing(lambda: self._build(None if seed is None else int(seed)))
            self._last = self._drawing(self._world.reset)
        self.agents = list(self.possible_agents)
        self._stack = {}
        info = {"bots": self.bots} if self.scenario is not None else {}
        return self._observations(), {a: dict(info) for a in self.agents}

    def _drawing(self, fn: Any) -> Any:
        """``fn()`` with this env's state of Python's ``random`` in place of the caller's."""
        outer = random.getstate()
        random.setstate(self._py_random)
        try:
            return fn()
        finally:
            self._py_random = random.getstate()
            random.setstate(outer)

    def _build(self, seed: int | None) -> Any:
        """A new world: the substrate, and for a scenario the scenario around it with the env's bots."""
        # a substrate on its own reads only the seats' views (and rewards) from dmlab2d at each step; a
        # scenario's bots and rendering read the rest (WORLD.RGB, ...) as Melting Pot does
        lean = self.scenario is None and self.render_mode is None
        key = (self.substrate, repr(sorted(self.settings.items())))
        self._substrate_world = _build(
            self._factory, self.roles, seed, key, frozenset({self.observation}) if lean else None
        )
        if self.scenario is None:
            return self._substrate_world
        from meltingpot import bot as mp_bot
        from meltingpot import scenario as mp_scenario
        from meltingpot.utils.scenarios import scenario as scenario_lib

        config = mp_scenario.get_config(self.scenario)
        names = sorted(set().union(*config.bots_by_role.values()))
        for name in names:
            if name not in self._bots:
                self._bots[name] = mp_bot.build(name)
        world = scenario_lib.build_scenario(
            substrate=self._substrate_world,
            bots={n: _Kept(self._bots[n]) for n in names},
            bots_by_role=config.bots_by_role,
            roles=config.roles,
            is_focal=config.is_focal,
            permitted_observations=mp_scenario.PERMITTED_OBSERVATIONS,
        )
        world.observables().background.names.subscribe(self._drawn)  # the bots of each episode, at its reset
        return world

    def _drawn(self, names: Any) -> None:
        self.bots = tuple(str(n) for n in names)

    def step(self, actions: dict[str, Any]):
        if not self.agents:
            raise RuntimeError("step() after the episode ended; call reset() first")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ConfigError(f"step() needs an action for every live player; missing {missing}")
        acts = [int(actions[a]) for a in self.possible_agents]
        bad = [a for a, x in zip(self.possible_agents, acts, strict=True) if not 0 <= x < self._act_space.n]
        if bad:
            raise ConfigError(f"actions of {bad} are outside {self._act_space}")
        self._last = self._world.step(acts)
        obs = self._observations()
        rewards = {a: float(r) for a, r in zip(self.possible_agents, self._last.reward, strict=True)}
        end = bool(self._last.last())
        terminated = end and float(np.asarray(self._last.discount)) == 0.0
        term = {a: terminated for a in self.agents}
        trunc = {a: end and not terminated for a in self.agents}
        infos: dict[str, dict] = {a: {} for a in self.agents}
        if end:
            self.agents = []
        return obs, rewards, term, trunc, infos

    def _observations(self) -> dict[str, np.ndarray]:
        views = {
            a: np.asarray(o[self.observation], np.uint8)
            for a, o in zip(self.possible_agents, self._last.observation, strict=True)
        }
        if self.frames == 1:
            return views
        for a, view in views.items():  # the oldest view drops out, the newest comes in last
            old = self._stack.get(a)
            c = view.shape[-1]
            new = np.concatenate([view] * self.frames, -1) if old is None else np.concatenate([old[..., c:], view], -1)
            self._stack[a] = new
        return dict(self._stack)  # new arrays every step (concatenate), never written in place: no copy

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._last is None:
            return None
        return np.asarray(self._substrate_world.observation()[0]["WORLD.RGB"], np.uint8)

    def close(self) -> None:
        if self._world is not None:
            self._world.close()
            self._world = None
        for bot in self._bots.values():
            bot.close()
        self._bots = {}


def meltingpot_env(substrate: str = PAPER_LAYOUTS[0], **kwargs: Any) -> MeltingPotEnv:
    """:class:`MeltingPotEnv` (``substrate``, ``roles``, ``observation``, ``render_mode``, ``settings``, ``frames``)."""
    return MeltingPotEnv(substrate, **kwargs)


def meltingpot_scenario_env(scenario: str, **kwargs: Any) -> MeltingPotEnv:
    """Melting Pot's scenario ``scenario`` (e.g. ``"collaborative_cooking__circuit_0"``): its focal players
    as the seats, its bots inside (:class:`MeltingPotEnv`; ``observation``, ``render_mode``, ``frames``)."""
    return MeltingPotEnv(scenario=scenario, **kwargs)
