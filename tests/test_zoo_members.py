"""Zoo members: SB3 round trip, scripted members, refusing pickles and import paths, space checks."""

from __future__ import annotations

import hashlib
import json
import pickle

import gymnasium as gym
import numpy as np
import pytest

th = pytest.importorskip("torch")
sb3 = pytest.importorskip("stable_baselines3")
from stable_baselines3 import PPO  # noqa: E402

from rqe_wrappers.core.policy import FunctionPolicy, batch_size  # noqa: E402
from rqe_wrappers.core.registry import register_scripted, scripted_names  # noqa: E402
from rqe_wrappers.envs.matrix import MatrixGameEnv  # noqa: E402
from rqe_wrappers.errors import ConfigError, PopulationError, SpaceMismatchError  # noqa: E402
from rqe_wrappers.sb3 import SB3Policy  # noqa: E402
from rqe_wrappers.zoo import check_population_spaces, load_population  # noqa: E402
from rqe_wrappers.zoo.publish import member_from_sb3, member_from_scripted, write_population  # noqa: E402

TABLE = "zoo-test/members-table"
if TABLE not in scripted_names():

    @register_scripted(TABLE)
    def _table_policy(observation_space, action_space, arrays=None, bias=0.0):
        """A tabular test policy: fixed probabilities from ``arrays['probs']`` (uniform without)."""
        n = action_space.n
        probs = np.asarray(arrays["probs"], dtype=np.float64) if arrays else np.full(n, 1.0 / n)
        probs = probs + bias
        probs = probs / probs.sum()
        return FunctionPolicy(
            observation_space, action_space, lambda obs: np.tile(probs, (batch_size(obs), 1)), name="table"
        )


@pytest.fixture(scope="module")
def trained():
    th.set_num_threads(1)
    env = gym.make("CartPole-v1")
    model = PPO(
        "MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu",
        policy_kwargs={"net_arch": [8], "activation_fn": th.nn.ReLU},
    )  # fmt: skip
    model.learn(128)
    return model, env


@pytest.fixture(scope="module")
def published(trained, tmp_path_factory):
    model, _ = trained
    root = tmp_path_factory.mktemp("zoo")
    path = write_population(
        root,
        id="test/cartpole",
        version=1,
        env={"id": "gymnasium/CartPole-v1", "version": gym.__version__},
        members=[member_from_sb3(model, "runner-3", metrics={"return": 21.5})],
    )
    return root, path


def _probs(policy, obs):
    with th.no_grad():
        obs_t, _ = policy.obs_to_tensor(obs)
        return policy.get_distribution(obs_t).distribution.probs.numpy()


def test_sb3_round_trip_actions_and_probabilities_match(trained, published):
    model, env = trained
    pop = load_population(published[1])
    member = pop["runner-3"]
    assert member.seed == 0 and member.metrics == {"return": 21.5} and member.kind == "sb3"
    obs = np.stack([env.observation_space.sample() for _ in range(32)]).astype(np.float32)

    back = member.to_sb3()
    assert type(back) is PPO and back.n_steps == 64 and back.batch_size == 32
    assert np.array_equal(back.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    assert np.array_equal(_probs(back.policy, obs), _probs(model.policy, obs))
    for k, v in model.policy.state_dict().items():
        assert th.equal(back.policy.state_dict()[k], v), k

    policy = member.policy()
    assert isinstance(policy, SB3Policy)
    assert np.allclose(policy.action_probs(obs), _probs(model.policy, obs), atol=1e-7)
    rng = np.random.default_rng(0)
    actions, _ = policy.act(obs, rng=rng)
    assert actions.shape == (32,) and set(actions) <= {0, 1}

    back.set_env(gym.make("CartPole-v1"))  # continue training on the stock model
    back.learn(64)
    with_env = member.to_sb3(gym.make("CartPole-v1"), n_steps=32)
    assert with_env.n_steps == 32
    with_env.learn(32)


def test_member_from_sb3_refuses_what_needs_pickles(trained):
    _, env = trained

    class MyActivation(th.nn.ReLU):
        pass

    model = PPO(
        "MlpPolicy", env, n_steps=16, batch_size=16, device="cpu", policy_kwargs={"activation_fn": MyActivation}
    )
    with pytest.raises(ConfigError, match=r"activation_fn.*cannot be published"):
        member_from_sb3(model, "x")


def _rewrite_member_file(pop_dir, member, data: bytes):
    (pop_dir / f"{member}.safetensors").write_bytes(data)
    manifest = json.loads((pop_dir / "manifest.json").read_text())
    for m in manifest["members"]:
        if m["name"] == member:
            m["sha256"] = hashlib.sha256(data).hexdigest()
    (pop_dir / "manifest.json").write_text(json.dumps(manifest))


class _Boom:
    """Unpickling this would create a marker file: proves the loader never unpickles."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_weights_are_refused_without_unpickling(published, tmp_path):
    import shutil

    pop_dir = tmp_path / "pop"
    shutil.copytree(published[1], pop_dir)
    marker = tmp_path / "pwned"
    _rewrite_member_file(pop_dir, "runner-3", pickle.dumps(_Boom(str(marker))))
    pop = load_population(pop_dir)  # sha256 is right: the file is what the manifest says
    for call in (lambda m: m.to_sb3(), lambda m: m.policy()):
        with pytest.raises(PopulationError, match=r"pickle.*refused"):
            call(pop["runner-3"])
    assert not marker.exists()

    buf = tmp_path / "model.pt"
    th.save({"w": th.zeros(2)}, buf)  # torch.save: a zip of pickles
    _rewrite_member_file(pop_dir, "runner-3", buf.read_bytes())
    with pytest.raises(PopulationError, match="zip archive"):
        load_population(pop_dir)["runner-3"].to_sb3()


def test_spec_naming_an_import_path_is_refused(published, tmp_path):
    import shutil

    pop_dir = tmp_path / "pop"
    shutil.copytree(published[1], pop_dir)
    manifest = json.loads((pop_dir / "manifest.json").read_text())
    manifest["members"][0]["sb3"]["policy"] = "stable_baselines3.common.policies:ActorCriticPolicy"
    (pop_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PopulationError, match=r"members\[0\]\.sb3\.policy"):
        load_population(pop_dir)
    manifest["members"][0]["sb3"]["policy"] = "MlpPolicy"
    manifest["members"][0]["sb3"]["policy_kwargs"]["activation_fn"] = "os:system"
    (pop_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PopulationError, match=r"activation_fn.*expected one of"):
        load_population(pop_dir)


def test_weights_that_do_not_fit_the_spec(published, tmp_path):
    import shutil

    from safetensors.numpy import save

    pop_dir = tmp_path / "pop"
    shutil.copytree(published[1], pop_dir)
    _rewrite_member_file(pop_dir, "runner-3", save({"foo": np.zeros(3, np.float32)}))
    with pytest.raises(PopulationError, match="do not fit the policy"):
        load_population(pop_dir)["runner-3"].policy()


def test_contrib_algorithms_round_trip(tmp_path):
    contrib = pytest.importorskip("sb3_contrib")
    env = gym.make("CartPole-v1")
    small = dict(n_steps=16, batch_size=16, device="cpu")
    maskable = contrib.MaskablePPO("MlpPolicy", env, policy_kwargs={"net_arch": [4]}, **small)
    lstm = {"lstm_hidden_size": 4, "net_arch": [4]}
    recurrent = contrib.RecurrentPPO("MlpLstmPolicy", env, policy_kwargs=lstm, **small)
    path = write_population(
        tmp_path, id="test/contrib", version=1, env="gymnasium/CartPole-v1",
        members=[member_from_sb3(maskable, "maskable"), member_from_sb3(recurrent, "recurrent")],
    )  # fmt: skip
    pop = load_population(path)
    for name, original in (("maskable", maskable), ("recurrent", recurrent)):
        back = pop[name].to_sb3()
        assert type(back) is type(original)
        for k, v in original.policy.state_dict().items():
            assert th.equal(back.policy.state_dict()[k], v), (name, k)
    obs = np.zeros((3, 4), np.float32)
    assert pop["maskable"].policy().action_probs(obs).shape == (3, 2)
    with pytest.raises(PopulationError, match=r"RecurrentPPO.*to_sb3"):
        pop["recurrent"].policy()


def test_scripted_members_with_arrays(tmp_path):
    obs_space, act_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32), gym.spaces.Discrete(2)
    probs = np.array([0.25, 0.75])
    path = write_population(
        tmp_path, id="test/scripted", version=1, env={"id": "rqe_wrappers/matrix_game_v0", "seats": ["player_1"]},
        observation_space=obs_space, action_space=act_space,
        members=[
            member_from_scripted("tab", TABLE, arrays={"probs": probs}, seed=1),
            member_from_scripted("uniform-ish", TABLE, bias=0.5, metrics={"return": 2.0}),
        ],
    )  # fmt: skip
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["members"][0]["file"] == "tab.safetensors" and manifest["members"][1]["file"] is None
    assert manifest["members"][1]["scripted"] == {"name": TABLE, "kwargs": {"bias": 0.5}}
    pop = load_population(path)
    obs = np.zeros((4, 1), np.float32)
    assert np.allclose(pop["tab"].policy().action_probs(obs), np.tile(probs, (4, 1)))
    assert np.allclose(pop["uniform-ish"].policy().action_probs(obs), 0.5)
    assert set(pop.policies()) == {"tab", "uniform-ish"}
    with pytest.raises(PopulationError, match="only sb3 members"):
        pop["tab"].to_sb3()
    with pytest.raises(KeyError, match="no member 'nope'; members: \\['tab', 'uniform-ish'\\]"):
        pop["nope"]


def test_write_population_checks_members(tmp_path, trained):
    obs_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    where = dict(id="t/x", version=1, env="e", observation_space=obs_space, action_space=gym.spaces.Discrete(2))
    with pytest.raises(ConfigError, match="unknown scripted policy 'no/such'"):
        write_population(tmp_path, members=[member_from_scripted("a", "no/such")], **where)
    with pytest.raises(ConfigError, match="duplicate member names"):
        write_population(tmp_path, id="t/x", version=1, env="e", members=[member_from_scripted("a", TABLE)] * 2)
    with pytest.raises(SpaceMismatchError, match=r"member 'net': observation space mismatch"):
        write_population(tmp_path, members=[member_from_sb3(trained[0], "net")], **where)
    with pytest.raises(ConfigError, match="JSON"):
        member_from_scripted("a", TABLE, bias=object())
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t" / "x").iterdir())  # nothing half-written
    path = write_population(tmp_path, members=[member_from_scripted("a", TABLE)], **where)
    with pytest.raises(PopulationError, match="immutable; bump the version"):
        write_population(tmp_path, members=[member_from_scripted("a", TABLE)], **where)
    assert path.is_dir()


def test_space_mismatch_names_member_seat_and_both_spaces(tmp_path, published):
    obs_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    path = write_population(
        tmp_path, id="test/three-actions", version=1, env={"id": "rqe_wrappers/matrix_game_v0", "seats": ["player_1"]},
        observation_space=obs_space, action_space=gym.spaces.Discrete(3), members=[member_from_scripted("t3", TABLE)],
    )  # fmt: skip
    pop = load_population(path)
    env = MatrixGameEnv(np.zeros((2, 2, 2)), rounds=2)
    with pytest.raises(SpaceMismatchError) as info:
        check_population_spaces(pop, env)
    msg = str(info.value)
    assert "member 't3'" in msg and "seat 'player_1'" in msg
    assert str(env.action_space("player_1")) in msg and "Discrete(3)" in msg

    cart = load_population(published[1])
    cart.check_env(gym.make("CartPole-v1"))  # fits
    mismatch = r"member 'runner-3': observation space mismatch: the environment has Box"
    with pytest.raises(SpaceMismatchError, match=mismatch):
        cart.check_env(gym.make("MountainCar-v0"))
