"""Melting Pot substrates as seeded PettingZoo parallel envs (rqe_wrappers.envs.meltingpot).

CI runs this file in its own environment with the ``[meltingpot]`` extra (docs/meltingpot.md); where
Melting Pot is not installed the tests that need it are skipped, the import check is not.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import pickle
import subprocess
import sys

import numpy as np
import pytest

needs_meltingpot = pytest.mark.skipif(
    importlib.util.find_spec("meltingpot") is None, reason="Melting Pot is not installed (docs/meltingpot.md)"
)


def test_importing_the_library_never_imports_meltingpot_or_tensorflow():
    code = (
        "import sys, rqe_wrappers, rqe_wrappers.envs, rqe_wrappers.envs.meltingpot; "
        "print(sorted(m for m in ('meltingpot', 'tensorflow', 'dmlab2d') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _trace(env, seed: int | None, steps: int = 60, actions: int = 0) -> list[str]:
    """Hashes of both players' views and the rewards, over ``steps`` random-action steps (actions drawn
    with seed ``actions``) after ``reset(seed=seed)`` (``None``: the world's own streams go on)."""
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(actions)
    out = [hashlib.md5(b"".join(o.tobytes() for o in obs.values())).hexdigest()]
    for _ in range(steps):
        obs, rew, _, _, _ = env.step({a: int(rng.integers(8)) for a in env.agents})
        out.append(hashlib.md5(b"".join(o.tobytes() for o in obs.values())).hexdigest() + str(sorted(rew.items())))
    return out


@needs_meltingpot
@pytest.mark.parametrize("substrate", ["collaborative_cooking__circuit", "collaborative_cooking__cramped"])
def test_the_papers_layouts_pass_pettingzoos_api_test(substrate):
    import gymnasium as gym
    from pettingzoo.test import parallel_api_test

    from rqe_wrappers.envs.meltingpot import meltingpot_env

    env = meltingpot_env(substrate, render_mode="rgb_array")
    assert env.possible_agents == ["player_0", "player_1"]
    assert env.observation_space("player_0") == gym.spaces.Box(0, 255, (40, 40, 3), np.uint8)
    assert env.action_space("player_1") == gym.spaces.Discrete(8)
    parallel_api_test(env, num_cycles=30)
    env.reset(seed=0)
    frame = env.render()
    assert frame is not None and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3


@needs_meltingpot
def test_one_seed_is_one_episode_in_every_build():
    # Melting Pot spawns the avatars in an order that changes from build to build (Lua's string hash is
    # seeded per VM); the patched Lua tree fixes it, so fresh builds with one seed play one episode
    from rqe_wrappers.envs.meltingpot import meltingpot_env

    traces = {tuple(_trace(meltingpot_env(), 3)) for _ in range(6)}
    assert len(traces) == 1
    env = meltingpot_env()
    (first,) = traces
    assert tuple(_trace(env, 3)) == first and tuple(_trace(env, 3)) == first  # re-seeding one env
    assert tuple(_trace(env, 4)) != first  # and seeds matter


@needs_meltingpot
def test_bad_input_is_a_config_error():
    from rqe_wrappers.envs.meltingpot import meltingpot_env
    from rqe_wrappers.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown Melting Pot substrate"):
        meltingpot_env("collaborative_cooking__nowhere")
    with pytest.raises(ConfigError, match="roles"):
        meltingpot_env(roles=("chef",))
    env = meltingpot_env()
    with pytest.raises(ConfigError, match="seed"):
        env.reset(seed=-1)
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="missing"):
        env.step({"player_0": 0})
    with pytest.raises(ConfigError, match="outside"):
        env.step({"player_0": 0, "player_1": 8})


@needs_meltingpot
def test_srpo_with_a_cnn_policy_through_subprocess_workers():
    # dmlab2d worlds do not pickle: the env is built inside each worker; the role feature adds two
    # image channels, which SB3's CnnPolicy takes
    from stable_baselines3 import PPO

    from rqe_wrappers import srpo_wrap
    from rqe_wrappers.envs.meltingpot import meltingpot_env
    from rqe_wrappers.sb3 import PettingZooVecEnv, SRPOCallback

    pickle.loads(pickle.dumps(meltingpot_env()))  # the env object itself pickles
    venv = PettingZooVecEnv(lambda: srpo_wrap(meltingpot_env(), tau=1.0), 2, n_workers=2)
    try:
        venv.seed(0)
        obs = venv.reset()
        assert obs.shape == (4, 40, 40, 5) and obs.dtype == np.uint8
        model = PPO("CnnPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, normalize_advantage=False, seed=0)
        model.learn(64, callback=SRPOCallback())
        assert model.num_timesteps >= 64
    finally:
        venv.close()


@needs_meltingpot
def test_a_lua_tree_it_does_not_know_is_refused_not_patched_blindly(monkeypatch, tmp_path):
    import platformdirs

    from rqe_wrappers.envs import meltingpot as mp_env

    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda name: str(tmp_path))
    monkeypatch.setattr(mp_env, "_AVATAR_ORDER", (("-- a line this version does not have\n", "x"),))
    with pytest.raises(ImportError, match="not the one rqe_wrappers patches"):
        mp_env.patched_root()
    assert not list(tmp_path.rglob("PATCHED"))  # nothing half-made is left to be taken for a patched tree


@needs_meltingpot
def test_substrates_run_without_tensorflow_or_jax_through_the_stand_ins():
    # the GPU box cannot carry TensorFlow: with it, jax and chex (and what only Melting Pot's evaluation
    # tools import) unimportable, stand-in modules let the substrates run
    absent = ["tensorflow", "jax", "jaxlib", "chex", "cv2", "pandas"]
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({absent!r}))\n"  # `import x` fails, as if not installed
        "from rqe_wrappers.envs.meltingpot import meltingpot_env\n"
        "env = meltingpot_env(); obs, _ = env.reset(seed=0)\n"
        "out = env.step({a: 1 for a in env.agents})\n"
        "from meltingpot.utils.policies import saved_model_policy\n"
        "from meltingpot.utils.substrates import substrate\n"
        "tf = saved_model_policy.tf\n"  # what Melting Pot's modules hold
        "print(type(tf).__name__, type(substrate.chex).__name__, obs['player_0'].shape)\n"
        "try:\n    tf.saved_model\nexcept AttributeError as e:\n    print('bots:', 'need the real one' in str(e))\n"
        # sys.modules is as it was: libraries that look for TensorFlow (torch's compiler) find none
        f"print('left:', [sys.modules.get(m, 'gone') for m in {absent[:4]!r}])\n"
        "import inspect; [m for m in list(sys.modules.values()) if inspect.ismodule(m) and hasattr(m, '__file__')]\n"
        "print('inspect:', hasattr(tf, '__file__'), hasattr(substrate.chex, '__file__'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "_TensorFlowStub _ChexStub (40, 40, 3)" in out.stdout and "bots: True" in out.stdout
    assert "left: [None, None, None, None]" in out.stdout and "inspect: False False" in out.stdout


# ---- Melting Pot's scenarios, with bots the tests build themselves ---------------------------------------

SCENARIO = "collaborative_cooking__circuit_0"  # one focal player (player_0), one bot: chef_0 or chef_1
CHEFS = ("collaborative_cooking__circuit__chef_0", "collaborative_cooking__circuit__chef_1")


def _save_bot(path, low: int) -> None:
    """A saved model with Melting Pot's bot interface (``initial_state(key)``, ``step(key, timestep,
    prev_state)``, its function signatures): it plays ``low + (key + t) % 4`` at step ``t``, so the
    chef_0 test bot plays actions 0-3 and the chef_1 one 4-7, and the key (seeded) sets the phase."""
    import dm_env
    import tensorflow as tf

    class Bot(tf.Module):
        @tf.function(input_signature=[])
        def function_signatures(self):
            kind = tf.constant(1, tf.int32)  # inspect.Parameter.POSITIONAL_OR_KEYWORD
            step = [(tf.constant(b"key"), kind), (tf.constant(b"timestep"), kind), (tf.constant(b"prev_state"), kind)]
            return {"initial_state": [(tf.constant(b"key"), kind)], "step": step}

        @tf.function(input_signature=[])
        def function_tables(self):
            return {}

        @tf.function(input_signature=[tf.TensorSpec([2], tf.uint32)])
        def initial_state(self, key):
            return key, tf.zeros([1], tf.int32)

        @tf.function(
            input_signature=[
                tf.TensorSpec([2], tf.uint32),
                dm_env.TimeStep(
                    step_type=tf.TensorSpec([], tf.int32),
                    reward=tf.TensorSpec([], tf.float32),
                    discount=tf.TensorSpec([], tf.float32),
                    observation={"RGB": tf.TensorSpec([40, 40, 3], tf.uint8)},
                ),
                tf.TensorSpec([1], tf.int32),
            ]
        )
        def step(self, key, timestep, prev_state):
            action = tf.cast(low + key[1] % 4, tf.int64)
            return key + tf.constant([0, 1], tf.uint32), ((action, {}), prev_state + 1)

    tf.saved_model.save(Bot(), str(path))


@pytest.fixture(scope="module")
def saved_bots(tmp_path_factory):
    pytest.importorskip("meltingpot")
    pytest.importorskip("tensorflow")
    root = tmp_path_factory.mktemp("saved_models")
    for i, name in enumerate(CHEFS):
        _save_bot(root / name, 4 * i)
    return root


@pytest.fixture
def chef_bots(saved_bots, monkeypatch):
    """Melting Pot's bot configs for the scenario's two chefs pointed at the test's saved models."""
    from meltingpot.configs import bots as bot_configs

    configs = dict(bot_configs.BOT_CONFIGS)
    for name in CHEFS:
        configs[name] = bot_configs.BotConfig(
            substrate="collaborative_cooking__circuit",
            roles={"default"},
            model_path=str(saved_bots / name),
            puppeteer_builder=None,
        )
    monkeypatch.setattr(bot_configs, "BOT_CONFIGS", configs)


def _bot_actions(env, seed: int, steps: int = 12) -> tuple[tuple[str, ...], list[int]]:
    """The bots drawn for the episode of ``seed`` and the actions they played (read from Melting Pot's
    own record of the background population's actions)."""
    _, infos = env.reset(seed=seed)
    played: list[int] = []
    env._world.observables().background.action.subscribe(lambda a: played.extend(int(x) for x in a))
    for _ in range(steps):
        env.step(dict.fromkeys(env.agents, 0))
    return infos["player_0"]["bots"], played


@needs_meltingpot
def test_a_scenario_seats_its_focal_players_and_its_bots_play_the_rest(chef_bots):
    import gymnasium as gym
    from pettingzoo.test import parallel_api_test

    from rqe_wrappers.envs.meltingpot import meltingpot_scenario_env

    env = meltingpot_scenario_env(SCENARIO, render_mode="rgb_array")
    assert env.possible_agents == ["player_0"]  # player_1 is the scenario's bot
    assert env.observation_space("player_0") == gym.spaces.Box(0, 255, (40, 40, 3), np.uint8)
    parallel_api_test(env, num_cycles=20)
    drawn = {}
    for seed in range(8):
        bots, played = _bot_actions(env, seed)
        assert len(bots) == 1 and bots[0] in CHEFS and len(played) == 12
        low = 4 * CHEFS.index(bots[0])
        assert all(low <= a < low + 4 for a in played), (bots, played)  # the drawn bot's own model acts
        assert all((b - a) % 4 == 1 for a, b in itertools.pairwise(played))  # its key advances
        drawn[seed] = (bots, played)
    assert {b for b, _ in drawn.values()} == {(CHEFS[0],), (CHEFS[1],)}  # both bots drawn across seeds
    for seed in (0, 5):  # one seed, one draw and one key: the same bot plays the same actions
        assert _bot_actions(env, seed) == drawn[seed]
    assert env.render().shape[2] == 3
    env.close()


@needs_meltingpot
def test_scenario_bots_that_are_not_installed_are_named(monkeypatch, tmp_path):
    from meltingpot.configs import bots as bot_configs

    from rqe_wrappers.envs.meltingpot import meltingpot_scenario_env
    from rqe_wrappers.errors import ConfigError

    configs = dict(bot_configs.BOT_CONFIGS)
    configs[CHEFS[1]] = bot_configs.BotConfig(
        substrate="collaborative_cooking__circuit",
        roles={"default"},
        model_path=str(tmp_path / "absent"),
        puppeteer_builder=None,
    )
    monkeypatch.setattr(bot_configs, "BOT_CONFIGS", configs)
    with pytest.raises(ConfigError, match="chef_1"):
        meltingpot_scenario_env(SCENARIO)
    with pytest.raises(ConfigError, match="unknown Melting Pot scenario"):
        meltingpot_scenario_env("collaborative_cooking__nowhere_0")


@needs_meltingpot
def test_evaluate_scenarios_scores_an_agent_against_the_bots_reproducibly(chef_bots):
    from rqe_wrappers.core.policy import Policy
    from rqe_wrappers.envs.meltingpot import meltingpot_scenario_env
    from rqe_wrappers.eval.episodes import play_episodes
    from rqe_wrappers.eval.meltingpot import evaluate_scenarios

    class Noop(Policy):
        def act(self, obs, *, rng, mask=None, state=None):
            return np.zeros(len(obs), np.int64), None

    env = meltingpot_scenario_env(SCENARIO)
    agent = Noop(env.observation_space("player_0"), env.action_space("player_0"))
    result = evaluate_scenarios(agent, [SCENARIO], episodes=2, seed=3, batch=2)
    again = evaluate_scenarios(agent, [SCENARIO], episodes=2, seed=3, batch=1)  # other batching, same episodes
    assert result.returns == again.returns and len(result.returns[SCENARIO]) == 2
    by_hand = play_episodes(
        [env, meltingpot_scenario_env(SCENARIO)], {"player_0": agent}, [3, 4], {"player_0": np.random.default_rng(0)}
    )
    assert result.returns[SCENARIO] == [e.returns["player_0"] for e in by_hand]
    assert result.table()[0]["episodes"] == 2 and result.worst()[0] == SCENARIO


def _components(tree, name):
    """Every ``{"component": name, "kwargs": ...}`` entry in a nested lab2d settings structure."""
    if isinstance(tree, dict):
        found = [tree] if tree.get("component") == name else []
        return found + [c for v in tree.values() for c in _components(v, name)]
    if isinstance(tree, list | tuple):
        return [c for v in tree for c in _components(v, name)]
    return []


@needs_meltingpot
def test_substrate_settings_reach_the_world_that_is_built():
    from rqe_wrappers.envs.meltingpot import meltingpot_env
    from rqe_wrappers.errors import ConfigError

    def pots(env):
        return {
            c["kwargs"]["reward"] for c in _components(env._factory._lab2d_settings_builder(env.roles), "CookingPot")
        }

    assert pots(meltingpot_env()) == {0.0}  # Melting Pot's default: no reward for a tomato in the pot
    shaped = meltingpot_env(settings={"cooking_pot_pseudoreward": 1.0})  # the minimax-Bayes paper's training shaping
    assert pots(shaped) == {1.0}
    assert pots(pickle.loads(pickle.dumps(shaped))) == {1.0}  # a worker process builds the same world
    with pytest.raises(ConfigError, match="no config keys"):
        meltingpot_env(settings={"delivery_global_reward": False})
    with pytest.raises(ConfigError, match="as published"):
        meltingpot_env(scenario="collaborative_cooking__circuit_0", settings={"cooking_pot_pseudoreward": 1.0})


@needs_meltingpot
def test_stacked_views_are_the_last_frames_oldest_first():
    from rqe_wrappers.envs.meltingpot import meltingpot_env
    from rqe_wrappers.errors import ConfigError

    plain, stacked = (
        meltingpot_env("collaborative_cooking__cramped"),
        meltingpot_env("collaborative_cooking__cramped", frames=3),
    )
    assert stacked.observation_space("player_0").shape == (40, 40, 9)
    views = [plain.reset(seed=5)[0]]
    got = [stacked.reset(seed=5)[0]]
    rng = np.random.default_rng(1)
    for _ in range(5):
        acts = {a: int(rng.integers(8)) for a in plain.agents}
        views.append(plain.step(acts)[0])
        got.append(stacked.step(acts)[0])
    for t, obs in enumerate(got):
        for seat, o in obs.items():
            assert stacked.observation_space(seat).contains(o)
            want = [views[max(t - k, 0)][seat] for k in (2, 1, 0)]  # at a reset the first view fills every slot
            np.testing.assert_array_equal(o, np.concatenate(want, -1))
    with pytest.raises(ConfigError, match="frames"):
        meltingpot_env(frames=0)


def _builder_world(factory, roles, seed, key, reads):
    """The world as Melting Pot's own ``builder.builder`` builds it, every observation read (the reference)."""
    from meltingpot.utils.substrates import builder
    from meltingpot.utils.substrates import substrate as mp_substrate
    from meltingpot.utils.substrates.wrappers import (
        collective_reward_wrapper,
        discrete_action_wrapper,
        multiplayer_wrapper,
        observables_wrapper,
    )

    from rqe_wrappers.envs.meltingpot import patched_root

    root, builder._MELTINGPOT_ROOT = builder._MELTINGPOT_ROOT, patched_root()
    try:
        env = builder.builder(factory._lab2d_settings_builder(roles), env_seed=seed)
    finally:
        builder._MELTINGPOT_ROOT = root
    env = observables_wrapper.ObservablesWrapper(env)
    env = multiplayer_wrapper.Wrapper(
        env,
        individual_observation_names=factory._individual_observations,
        global_observation_names=factory._global_observations,
    )
    env = discrete_action_wrapper.Wrapper(env, action_table=factory._action_table)
    return mp_substrate.Substrate(collective_reward_wrapper.CollectiveRewardWrapper(env))


@needs_meltingpot
def test_the_lean_build_steps_the_world_melting_pots_builder_steps(monkeypatch):
    """The env's own build (Lua settings made once per process, only the seats' views and rewards read at
    each step) gives the episodes of Melting Pot's ``builder.builder``, across an episode's end (the world
    rebuilt) and a seedless reset."""
    from rqe_wrappers.envs import meltingpot as mpe

    def run() -> tuple[list[str], list[int]]:
        env = mpe.meltingpot_env("collaborative_cooking__cramped", frames=2, settings={"cooking_pot_pseudoreward": 1.0})
        out = _trace(env, seed=3, steps=900)
        reads = [len(list(env._substrate_world.observation()[0]))]
        for t in itertools.count():  # to the episode's end (1,000 steps in cooking)
            _, rew, _, _, _ = env.step({a: t % 8 for a in env.agents})
            out.append(str(sorted(rew.items())))
            if not env.agents:
                break
        assert 900 + t + 1 == 1000
        out += _trace(env, None, 30, actions=1)  # the next episode: a world rebuilt, its seeds going on
        return out, reads

    lean, lean_reads = run()
    assert lean_reads == [1]  # each seat's dict holds its view only (no WORLD.RGB, no debug layers)
    monkeypatch.setattr(mpe, "_build", _builder_world)
    reference, reference_reads = run()
    assert reference_reads[0] > 1 and lean == reference
