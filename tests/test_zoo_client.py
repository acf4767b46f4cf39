"""Zoo client over a local HTTP server: download, cache, verify, repair, lock, offline; CLI; recipes."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import subprocess
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from _tables import ensure_table

from rqe_wrappers.cli import main as rqe_main
from rqe_wrappers.errors import ChecksumError, ConfigError, PopulationError
from rqe_wrappers.zoo import PopulationWarning, ZooClient, ZooUnreachableError, load_population
from rqe_wrappers.zoo.config import default_url
from rqe_wrappers.zoo.publish import (
    BuildResult,
    builder_names,
    member_from_scripted,
    register_builder,
    write_index,
    write_population,
)
from rqe_wrappers.zoo.testing import serve_directory

TABLE = ensure_table("zoo-test/client-table")
OBS = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
ACT = gym.spaces.Discrete(3)


def _members(names):
    rng = np.random.default_rng(0)
    return [
        member_from_scripted(
            n, TABLE, arrays={"probs": rng.dirichlet(np.ones(3))}, seed=i, metrics={"return": float(i)}
        )
        for i, n in enumerate(names)
    ]


@pytest.fixture(scope="module")
def remote_root(tmp_path_factory) -> Path:
    """A zoo root: zt/pop versions 1 and 2, zt/other version 1, and a renamed id."""
    root = tmp_path_factory.mktemp("remote")
    common = dict(env={"id": "test/env", "seats": ["a"]}, observation_space=OBS, action_space=ACT)
    write_population(root, id="zt/pop", version=1, members=_members(["m0", "m1"]), **common)
    write_population(root, id="zt/pop", version=2, members=_members(["m0", "m1", "m2"]), **common)
    write_population(root, id="zt/other", version=1, members=_members(["x"]), **common)
    write_index(root, renamed={"zt/old": "zt/pop"})
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    for var in ("RQE_ZOO_URL", "RQE_ZOO_OFFLINE", "RQE_ZOO_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RQE_ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return tmp_path / "cache"


def _leftovers(directory: Path) -> list[str]:
    """Files in the cache other than finished manifests/members and locks (i.e. temporaries)."""
    if not directory.exists():
        return []
    kept = (".json", ".safetensors", ".lock", ".complete", ".manifest.sha256")
    return sorted(p.name for p in directory.rglob("*") if p.is_file() and not p.name.endswith(kept))


def test_download_then_cache_then_offline(remote_root, cache):
    with serve_directory(remote_root) as server:
        pop = load_population("zt/pop", url=server.url)
        assert pop.ref == "zt/pop@2" and pop.names == ["m0", "m1", "m2"]
        assert pop.path == cache / "zt" / "pop" / "2"
        files = sorted(p.name for p in pop.path.iterdir())
        # the members, the manifest, the index's hash of the manifest, the "pulled whole" marker
        assert files == [
            ".complete",
            ".manifest.sha256",
            "m0.safetensors",
            "m1.safetensors",
            "m2.safetensors",
            "manifest.json",
        ]
        first = list(server.requests)
        assert first[0] == "/index.json" and len(first) == 5
        pinned = load_population("zt/pop@2", url=server.url)  # pinned + cached: no request at all
        assert server.requests == first and pinned.names == pop.names
    # the server is gone: pinned loads from the cache; unpinned falls back with a warning
    assert load_population("zt/pop", version=2, url=server.url).ref == "zt/pop@2"
    with pytest.warns(PopulationWarning, match=r"cannot reach .*Using the newest cached version, zt/pop@2"):
        assert load_population("zt/pop", url=server.url).ref == "zt/pop@2"
    (pop.path / "m2.safetensors").unlink()
    with pytest.raises(PopulationError, match=r"only partly cached .*m2\.safetensors is missing.*cannot reach"):
        load_population("zt/pop@2", url=server.url)
    probs = pop["m1"].policy().action_probs(np.zeros((2, 2), np.float32))
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0)


def test_offline_is_one_clear_error(cache):
    with serve_directory(cache.parent) as server:
        url = server.url
    with pytest.raises(ZooUnreachableError) as info:
        load_population("zt/pop", url=url)
    msg = str(info.value)
    assert url in msg and "RQE_ZOO_URL" in msg and "local population directory" in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert isinstance(info.value, PopulationError)


def test_offline_mode_never_uses_the_network(remote_root, cache, monkeypatch):
    monkeypatch.setenv("RQE_ZOO_OFFLINE", "1")
    with pytest.raises(PopulationError, match=r"not in the cache .* offline mode is on"):
        load_population("zt/pop@1", url="http://127.0.0.1:9")
    with pytest.raises(PopulationError, match="offline mode is on"):
        load_population("zt/pop", url="http://127.0.0.1:9")


def test_checksum_mismatch_on_download(remote_root, cache):
    with serve_directory(remote_root, faults={"/zt/pop/1/m1.safetensors": "corrupt"}) as server:
        msg = r"m1\.safetensors: the downloaded file's sha256 is [0-9a-f]{64}, the manifest says"
        with pytest.raises(ChecksumError, match=msg):
            load_population("zt/pop@1", url=server.url)
    pop_dir = cache / "zt" / "pop" / "1"
    assert not (pop_dir / "m1.safetensors").exists()
    assert _leftovers(cache) == []


def test_cut_off_download_leaves_nothing(remote_root, cache):
    with serve_directory(remote_root, faults={"/zt/pop/1/m0.safetensors": "truncate"}) as server:
        with pytest.raises(PopulationError, match=r"download of .*m0\.safetensors was cut off") as info:
            load_population("zt/pop@1", url=server.url)
        assert not isinstance(info.value, ChecksumError)
        assert not (cache / "zt" / "pop" / "1" / "m0.safetensors").exists()
        assert _leftovers(cache) == []
        del server.faults["/zt/pop/1/m0.safetensors"]  # the network recovers: the next load completes
        assert load_population("zt/pop@1", url=server.url).names == ["m0", "m1"]


def test_corrupted_cache_file_is_refetched_once(remote_root, cache):
    with serve_directory(remote_root) as server:
        pop = load_population("zt/pop@1", url=server.url)
        target = pop.path / "m0.safetensors"
        target.write_bytes(b"\x00" * 8 + target.read_bytes()[8:])
        with pytest.warns(PopulationWarning, match=r"m0\.safetensors is corrupt .*re-fetching"):
            again = load_population("zt/pop@1", url=server.url)
        assert server.requests.count("/zt/pop/1/m0.safetensors") == 2
        again.verify()
        # the remote copy is bad too: reported, not looped
        target.write_bytes(b"junk")
        server.faults["/zt/pop/1/m0.safetensors"] = "corrupt"
        failed = r"corrupt .* and re-fetching it failed"
        with pytest.warns(PopulationWarning), pytest.raises(ChecksumError, match=failed):
            load_population("zt/pop@1", url=server.url)
    target.write_bytes(b"junk")  # and with the server gone
    with pytest.warns(PopulationWarning), pytest.raises(ChecksumError, match="re-fetching it failed: cannot reach"):
        load_population("zt/pop@1", url=server.url)


def _pull(url, cache_dir, queue):
    try:
        pop = load_population("zt/pop@2", url=url, cache_dir=cache_dir)
        queue.put(("ok", pop.names, str(pop.path)))
    except Exception as e:
        queue.put(("error", repr(e), ""))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_two_processes_pull_at_once(remote_root, cache):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    with serve_directory(remote_root, delay=0.1) as server:
        procs = [ctx.Process(target=_pull, args=(server.url, str(cache), queue)) for _ in range(2)]
        for p in procs:
            p.start()
        results = [queue.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        member_requests = [r for r in server.requests if r.endswith(".safetensors")]
    assert [r[0] for r in results] == ["ok", "ok"], results
    assert results[0][1] == ["m0", "m1", "m2"] and results[0][2] == results[1][2]
    assert sorted(member_requests) == [f"/zt/pop/2/m{i}.safetensors" for i in range(3)]
    assert ZooClient(cache_dir=cache).verify("zt/pop@2")[0][1] is None
    assert _leftovers(cache) == []


def test_unknown_id_or_version_lists_what_exists(remote_root, cache):
    with serve_directory(remote_root) as server:
        available = r"available: zt/other \(version 1\), zt/pop \(versions 1, 2\)"
        with pytest.raises(PopulationError, match=rf"unknown population 'zt/nope' .* {available}"):
            load_population("zt/nope", url=server.url)
        with pytest.raises(PopulationError, match=r"'zt/pop' has no version 7 .* available versions: \[1, 2\]"):
            load_population("zt/pop@7", url=server.url)
        with pytest.raises(PopulationError, match="'zt/old' was renamed to 'zt/pop'"):
            load_population("zt/old", url=server.url)
    with pytest.raises(PopulationError, match="neither an existing directory nor a population id"):
        load_population("Not An Id", url=server.url)


def test_file_urls_and_plain_directories(remote_root, cache):
    assert load_population("zt/other", url=remote_root.as_uri()).ref == "zt/other@1"
    assert load_population("zt/pop@1", url=str(remote_root), cache_dir=cache / "b").names == ["m0", "m1"]
    with pytest.raises(ZooUnreachableError, match="no such directory"):
        load_population("zt/pop", url=str(remote_root / "missing"), cache_dir=cache / "c")


def test_default_url_is_the_checkout_populations(monkeypatch, tmp_path):
    monkeypatch.delenv("RQE_ZOO_URL", raising=False)
    monkeypatch.setenv("RQE_ZOO_CONFIG", str(tmp_path / "absent.toml"))
    assert default_url() is None or default_url().endswith("/populations")
    monkeypatch.setenv("RQE_ZOO_URL", "http://example.invalid/zoo/")
    assert default_url() == "http://example.invalid/zoo"


def test_local_paths(remote_root, tmp_path):
    assert load_population(remote_root / "zt" / "pop").ref == "zt/pop@2"  # newest version
    assert load_population(remote_root / "zt" / "pop", version=1).ref == "zt/pop@1"
    assert load_population(remote_root / "zt" / "pop" / "1" / "manifest.json").ref == "zt/pop@1"
    with pytest.raises(PopulationError, match="is a zoo root"):
        load_population(remote_root)
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(remote_root / "zt" / "pop" / "1", copy)
    (copy / "m1.safetensors").write_bytes(b"changed")
    with pytest.raises(ChecksumError, match=r"m1\.safetensors: sha256 is"):
        load_population(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["members"][0]["seed"] = "zero"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    field = r"manifest\.json: field 'members\[0\]\.seed': expected an integer or null"
    with pytest.raises(PopulationError, match=field):
        load_population(copy)


def test_bad_remote_manifest_names_the_field(remote_root, tmp_path, cache):
    import shutil

    root = tmp_path / "bad"
    shutil.copytree(remote_root, root)
    manifest_path = root / "zt" / "other" / "1" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["members"][0]["kind"] = "pickle"
    manifest_path.write_text(json.dumps(manifest))
    index = json.loads((root / "index.json").read_text())  # an index consistent with the bad manifest
    sha = hashlib.sha256(manifest_path.read_bytes()).hexdigest()
    index["populations"]["zt/other"]["versions"]["1"]["manifest_sha256"] = sha
    (root / "index.json").write_text(json.dumps(index))
    with serve_directory(root) as server:
        with pytest.raises(PopulationError, match=r"field 'members\[0\]\.kind': expected one of \['sb3', 'scripted'\]"):
            load_population("zt/other", url=server.url)


# ---- CLI ----------------------------------------------------------------------------------------
def test_cli_list_pull_verify(remote_root, cache, capsys):
    with serve_directory(remote_root) as server:
        assert rqe_main(["zoo", "list", "--url", server.url]) == 0
        out = capsys.readouterr().out
        assert "zt/pop  versions 1, 2" in out and "zt/old  renamed to zt/pop" in out
        assert rqe_main(["zoo", "pull", "zt/pop@1", "--url", server.url]) == 0
        assert "zt/pop@1: 2 members, verified" in capsys.readouterr().out
    assert rqe_main(["zoo", "list", "--cached"]) == 0
    assert "zt/pop  versions 1" in capsys.readouterr().out
    assert rqe_main(["zoo", "verify"]) == 0
    assert "ok      zt/pop@1" in capsys.readouterr().out
    assert rqe_main(["zoo", "verify", str(remote_root / "zt" / "pop" / "2"), "--load"]) == 0
    assert "ok      zt/pop@2" in capsys.readouterr().out
    (cache / "zt" / "pop" / "1" / "m0.safetensors").write_bytes(b"bad")
    assert rqe_main(["zoo", "verify", "zt/pop"]) == 1  # a failed check is a result (as sha256sum -c)
    assert "FAILED  zt/pop@1" in capsys.readouterr().out
    with pytest.warns(PopulationWarning, match="corrupt"):
        assert rqe_main(["zoo", "pull", "zt/pop@1", "--url", server.url]) == 2  # server gone, file corrupt
    assert "re-fetching it failed: cannot reach" in capsys.readouterr().err
    assert rqe_main(["zoo", "list", "--url", server.url]) == 2
    assert "cannot reach the population zoo" in capsys.readouterr().err


def test_cli_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        rqe_main(["zoo", "--help"])
    out = capsys.readouterr().out
    for cmd in ("list", "pull", "verify", "build", "index"):
        assert cmd in out


# ---- recipes and the index ----------------------------------------------------------------------
def _sb3_builder(recipe):
    """A tiny PPO per seed on CartPole; the metric is measured at build time."""
    import torch as th
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    from rqe_wrappers.zoo.publish import member_from_sb3

    th.set_num_threads(1)
    members = []
    for seed in recipe.seeds:
        env = Monitor(gym.make("CartPole-v1"))
        model = PPO(
            "MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=seed, device="cpu",
            policy_kwargs={"net_arch": [4]},
        )  # fmt: skip
        model.learn(recipe.budget["timesteps"])
        mean, _ = evaluate_policy(model, env, n_eval_episodes=2)
        members.append(member_from_sb3(model, f"cart-{seed}", metrics={"return": float(mean)}))
    return BuildResult(members=members)


if "zoo-test/sb3" not in builder_names():
    register_builder("zoo-test/sb3")(_sb3_builder)


def _recipe(repo: Path, name: str, **fields) -> Path:
    directory = repo / "zoo" / name
    directory.mkdir(parents=True)
    data = {"schema_version": 1, "version": 1, "env": {"id": "gymnasium/CartPole-v1"}, **fields}
    (directory / "recipe.json").write_text(json.dumps(data))
    return directory


def test_build_recipe_records_recipe_commit_and_metrics(tmp_path, capsys):
    pytest.importorskip("stable_baselines3")
    repo = tmp_path / "repo"
    recipe = _recipe(repo, "carts", id="test/carts", builder="zoo-test/sb3", seeds=[1, 2], budget={"timesteps": 32})
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    try:
        subprocess.run([*git, "init", "-q"], check=True, timeout=20)
        subprocess.run([*git, "add", "."], check=True, timeout=20)
        subprocess.run([*git, "commit", "-q", "-m", "recipe"], check=True, timeout=20)
        commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    assert rqe_main(["zoo", "build", str(recipe)]) == 0
    assert "wrote" in capsys.readouterr().out
    pop = load_population(repo / "populations" / "test" / "carts" / "1")
    assert pop.names == ["cart-1", "cart-2"] and pop["cart-2"].seed == 2
    assert isinstance(pop["cart-1"].metrics["return"], float)
    assert pop["cart-1"].recipe.path == "zoo/carts" and pop["cart-1"].recipe.commit == commit
    index = json.loads((repo / "populations" / "index.json").read_text())
    assert index["populations"]["test/carts"]["latest"] == 1
    readme = (repo / "populations" / "README.md").read_text()
    assert "| `test/carts@1` |" in readme and "[`zoo/carts`](../zoo/carts)" in readme and "return:" in readme
    assert rqe_main(["zoo", "build", str(recipe)]) == 2  # versions are immutable
    assert "bump 'version'" in capsys.readouterr().err


def test_recipes_cannot_name_import_paths(tmp_path):
    from rqe_wrappers.zoo.publish import build_recipe

    for builder in ("os:system", "rqe_wrappers.zoo.publish.builders:_private", "tests.test_zoo_client:_sb3_builder"):
        recipe = _recipe(tmp_path, builder.replace(":", "_").replace(".", "_"), id="test/x", builder=builder)
        with pytest.raises(ConfigError, match="import paths are not accepted"):
            build_recipe(recipe)


def test_ipd_partners_recipe_builds(tmp_path):
    """The one real recipe shipped in zoo/: it builds now (exact metrics, nothing trained)."""
    from rqe_wrappers.zoo.publish import build_recipe

    recipe = Path(__file__).resolve().parent.parent / "zoo" / "ipd-partners"
    if not recipe.is_dir():
        pytest.skip("zoo/ipd-partners not in this checkout")
    pytest.importorskip("rqe_wrappers.partners.ipd")
    pop = load_population(build_recipe(recipe, tmp_path))
    assert pop.ref == "ipd/train@1" and len(pop) == 9
    assert pop.best_responses["c1:always-cooperate"] == 15.0 and pop.best_responses["c2"] == 12.0
    assert pop["always-defect"].metrics["best_response_value"] == 3.0
    from rqe_wrappers.envs.ipd import ipd_env

    pop.check_env(ipd_env(3))
    assert pop["tit-for-tat"].policy().action_probs(np.zeros((1, 16), np.float32)).shape == (1, 2)
    aht = pytest.importorskip("rqe_wrappers.aht.wrapper")
    partners = aht.population_policies(pop, ipd_env(3))  # what aht_wrap does with a zoo population
    assert sorted(partners) == sorted(pop.names)


def test_index_command_regenerates_index_and_readme(remote_root, tmp_path, capsys):
    import shutil

    root = tmp_path / "pops"
    shutil.copytree(remote_root, root)
    (root / "index.json").unlink()
    (root / "README.md").write_text("# My zoo\n\nHand-written intro stays.\n")
    assert rqe_main(["zoo", "index", str(root)]) == 0
    index = json.loads((root / "index.json").read_text())
    assert sorted(index["populations"]) == ["zt/other", "zt/pop"]
    readme = (root / "README.md").read_text()
    assert readme.startswith("# My zoo\n\nHand-written intro stays.")
    assert readme.count("| `zt/pop@") == 2 and "scripted, no recipe" in readme
    assert "return: 0.5 (mean; 0 to 1)" in readme
    rqe_main(["zoo", "index", str(root)])
    assert (root / "README.md").read_text() == readme  # idempotent


def test_config_file_sets_the_url_and_env_var_wins(monkeypatch, tmp_path, remote_root, cache):
    config = tmp_path / "zoo.toml"
    config.write_text(f'url = "{remote_root.as_uri()}"\n')
    monkeypatch.setenv("RQE_ZOO_CONFIG", str(config))
    monkeypatch.delenv("RQE_ZOO_URL", raising=False)
    assert default_url() == remote_root.as_uri()
    assert load_population("zt/pop@1", cache_dir=cache).ref == "zt/pop@1"
    monkeypatch.setenv("RQE_ZOO_URL", "http://example.invalid/zoo")
    assert default_url() == "http://example.invalid/zoo"
    config.write_text("url = [1, 2]\n")
    monkeypatch.delenv("RQE_ZOO_URL")
    with pytest.raises(ConfigError, match="'url' must be a string"):
        default_url()
    config.write_text("url = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        default_url()
