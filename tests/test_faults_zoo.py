"""Fault injection for the zoo's resource limits and meaning checks (issue 9, first two classes).

Hostile JSON (huge, deep, duplicate keys, NaN), declared spaces and networks above the caps, version
strings that crash ``int()``, allowed fields with no meaning (optimizer kwargs, CnnPolicy on vectors,
use_sde with discrete actions, gamma > 1), non-finite or wrong-dtype weights, and servers that drip,
send gzip bombs, redirect off-host or serve HTML. Each test asserts the error type, the message's key
words, and that nothing outside the cache changed (and nothing half-written stayed inside it).
"""

from __future__ import annotations

import copy
import inspect
import json
import shutil
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from _tables import ensure_table

from rqe_wrappers.errors import ConfigError, PopulationError
from rqe_wrappers.zoo import ZooClient, load_population
from rqe_wrappers.zoo.cache import ZooCache
from rqe_wrappers.zoo.config import timeout_from_env
from rqe_wrappers.zoo.index import Index
from rqe_wrappers.zoo.manifest import Manifest
from rqe_wrappers.zoo.population import open_population, read_manifest
from rqe_wrappers.zoo.publish import member_from_scripted, write_index, write_population
from rqe_wrappers.zoo.refs import check_version, parse_ref
from rqe_wrappers.zoo.schema import load_json
from rqe_wrappers.zoo.spaces import space_from_json
from rqe_wrappers.zoo.testing import serve_directory

ROOT = Path(__file__).resolve().parents[1]
TABLE = ensure_table("zoo-test/faults-table")
OBS = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
ACT = gym.spaces.Discrete(3)
RUNNERS = ROOT / "populations" / "tag" / "runners" / "1"
CAP_VARS = (
    "RQE_ZOO_MAX_JSON_MB", "RQE_ZOO_MAX_JSON_DEPTH", "RQE_ZOO_MAX_SPACE_ELEMENTS", "RQE_ZOO_MAX_DISCRETE_N",
    "RQE_ZOO_MAX_SPACE_DEPTH", "RQE_ZOO_MAX_NET_WIDTH", "RQE_ZOO_MAX_NET_DEPTH", "RQE_ZOO_MAX_FILE_MB",
)  # fmt: skip


def _members(names, arrays=None):
    rng = np.random.default_rng(0)
    return [
        member_from_scripted(n, TABLE, arrays=arrays or {"probs": rng.dirichlet(np.ones(3))}, seed=i)
        for i, n in enumerate(names)
    ]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in (*CAP_VARS, "RQE_ZOO_URL", "RQE_ZOO_OFFLINE", "RQE_ZOO_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def remote_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("remote")
    common: dict[str, Any] = dict(env={"id": "test/env", "seats": ["a"]}, observation_space=OBS, action_space=ACT)
    write_population(root, id="zt/pop", version=1, members=_members(["m0", "m1"]), **common)
    write_index(root)
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RQE_ZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _snapshot(directory: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every file under ``directory`` (outside ``skip``) with its size and mtime."""
    out = {}
    for p in directory.rglob("*"):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            out[str(p.relative_to(directory))] = (st.st_size, st.st_mtime_ns)
    return out


def _no_leftovers(cache: Path, member: str | None = None) -> None:
    """Nothing half-written in the cache: no temporaries, and no file of the member whose download failed
    (members that arrived whole and verified may stay, as the cache keeps them)."""
    if not cache.exists():
        return
    kept = (".json", ".lock", ".safetensors", ".complete", ".manifest.sha256")
    junk = [p.name for p in cache.rglob("*") if p.is_file() and not p.name.endswith(kept)]
    assert junk == [], junk
    if member is not None:
        assert not list(cache.rglob(f"{member}.safetensors"))


def _manifest_data() -> dict:
    return json.loads((RUNNERS / "manifest.json").read_text())


def _loads(data: dict) -> Manifest:
    return Manifest.loads(json.dumps(data), "hostile/manifest.json")


# ---- one guarded JSON reader ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[" * 100_000 + "]" * 100_000, ["hostile.json", "nested too deeply", "RQE_ZOO_MAX_JSON_DEPTH"]),
        ("[" * 80 + "]" * 80, ["hostile.json", "nests 80 levels", "RQE_ZOO_MAX_JSON_DEPTH"]),
        ('{"id": "a/b", "id": "c/d"}', ["hostile.json", "'id' appears twice"]),
        ('{"x": NaN}', ["hostile.json", "not valid JSON", "NaN"]),
        ('{"x": 1e999}', ["hostile.json", "not valid JSON", "infinity"]),
        ('{"x": ' + "9" * 5000 + "}", ["hostile.json", "not valid JSON"]),
        (b"\xff\xfe{", ["hostile.json", "not valid JSON"]),
    ],
    ids=["deep-100k", "deep-80", "duplicate-key", "nan", "overflow-float", "5000-digit-int", "not-utf8"],
)
def test_json_reader_refuses_hostile_text(text, words):
    with pytest.raises(PopulationError) as info:
        load_json(text, "hostile.json")
    for w in words:
        assert w in str(info.value)


def test_json_size_cap_is_checked_before_reading_and_raisable(tmp_path, monkeypatch):
    pop = tmp_path / "pop"
    shutil.copytree(RUNNERS, pop)
    before = _snapshot(tmp_path)
    monkeypatch.setenv("RQE_ZOO_MAX_JSON_MB", "0.001")  # 1 KiB; the manifest is 8 KiB
    with pytest.raises(PopulationError, match=r"manifest\.json: \d+ bytes is too large.*RQE_ZOO_MAX_JSON_MB"):
        read_manifest(pop)
    monkeypatch.setenv("RQE_ZOO_MAX_JSON_MB", "1")
    assert read_manifest(pop).id == "tag/runners"
    for bad in ("inf", "nan", "-1", "lots"):
        monkeypatch.setenv("RQE_ZOO_MAX_JSON_MB", bad)
        with pytest.raises(ConfigError, match="RQE_ZOO_MAX_JSON_MB must be"):
            read_manifest(pop)
    assert _snapshot(tmp_path) == before


def test_manifest_symlinked_to_dev_zero_is_not_read(tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    pop = tmp_path / "pop"
    pop.mkdir()
    (pop / "manifest.json").symlink_to("/dev/zero")
    with pytest.raises(PopulationError, match=r"manifest\.json: not a regular file"):
        read_manifest(pop)


# ---- one cap on declared spaces and network sizes -----------------------------------------------
BOX = {"type": "Box", "dtype": "float32", "low": 0, "high": 1}


@pytest.mark.parametrize(
    ("space", "words"),
    [
        ({"type": "Discrete", "n": 10**30}, ["space.n", "above the cap", "RQE_ZOO_MAX_DISCRETE_N"]),
        ({"type": "Discrete", "n": 3, "start": -(10**30)}, ["space.start", "RQE_ZOO_MAX_DISCRETE_N"]),
        ({**BOX, "shape": [100_000, 100_000]}, ["more than 4194304 elements", "RQE_ZOO_MAX_SPACE_ELEMENTS"]),
        ({**BOX, "shape": [2] * 64}, ["RQE_ZOO_MAX_SPACE_ELEMENTS"]),
        ({"type": "MultiDiscrete", "nvec": [2, 10**30]}, ["space.nvec", "RQE_ZOO_MAX_DISCRETE_N"]),
        ({"type": "MultiBinary", "n": [4096, 4096]}, ["RQE_ZOO_MAX_SPACE_ELEMENTS"]),
        (
            {"type": "Tuple", "spaces": [{**BOX, "shape": [3_000_000]}, {**BOX, "shape": [3_000_000]}]},
            ["RQE_ZOO_MAX_SPACE_ELEMENTS"],
        ),
        ({**BOX, "shape": [2], "low": [10**400, 0]}, ["space.low", "out of range"]),
        ({**BOX, "shape": [2], "low": [0, 0], "high": [1]}, ["space.high", "shape"]),
    ],
    ids=[
        "discrete-1e30",
        "discrete-start",
        "box-1e10",
        "box-2^64",
        "multidiscrete",
        "multibinary",
        "tuple-sum",
        "box-bound-1e400",
        "box-bound-shape",
    ],
)
def test_declared_spaces_above_the_caps_are_refused_before_allocation(space, words):
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        space_from_json(space)
    assert time.monotonic() - start < 1.0  # nothing was allocated
    for w in words:
        assert w in str(info.value)


def test_space_nesting_cap_and_raising_caps(monkeypatch):
    nested: dict = {"type": "Discrete", "n": 2}
    for _ in range(20):
        nested = {"type": "Dict", "spaces": {"x": nested}}
    with pytest.raises(ConfigError, match=r"nest more than 8 levels.*RQE_ZOO_MAX_SPACE_DEPTH"):
        space_from_json(nested)
    monkeypatch.setenv("RQE_ZOO_MAX_SPACE_DEPTH", "32")
    assert isinstance(space_from_json(nested), gym.spaces.Dict)
    monkeypatch.setenv("RQE_ZOO_MAX_SPACE_ELEMENTS", "10")
    with pytest.raises(ConfigError, match="more than 10 elements"):
        space_from_json({**BOX, "shape": [11]})
    assert space_from_json({**BOX, "shape": [10]}).shape == (10,)


def test_a_manifest_declaring_a_huge_space_names_file_and_field():
    data = _manifest_data()
    data["observation_space"] = {**BOX, "shape": [1_000_000, 1_000_000]}
    with pytest.raises(PopulationError, match=r"hostile/manifest\.json: field observation_space.*elements"):
        _loads(data)
    data = _manifest_data()
    data["action_space"] = {"type": "Discrete", "n": 10**30}
    with pytest.raises(PopulationError, match=r"field action_space\.n: .*above the cap"):
        _loads(data)


@pytest.mark.parametrize(
    ("policy_kwargs", "words"),
    [
        ({"net_arch": [10_000_000]}, ["net_arch", "10000000 units", "RQE_ZOO_MAX_NET_WIDTH"]),
        ({"net_arch": [8] * 1000}, ["net_arch", "1000 layers", "RQE_ZOO_MAX_NET_DEPTH"]),
        ({"net_arch": {"pi": [64], "vf": [2**40]}}, ["net_arch", "RQE_ZOO_MAX_NET_WIDTH"]),
        ({"lstm_hidden_size": 10**9}, ["lstm_hidden_size", "RQE_ZOO_MAX_NET_WIDTH"]),
    ],
    ids=["wide", "deep", "wide-vf", "lstm"],
)
def test_network_sizes_above_the_caps_are_refused(policy_kwargs, words):
    data = _manifest_data()
    data["members"][0]["sb3"]["policy_kwargs"] = policy_kwargs
    with pytest.raises(PopulationError) as info:
        _loads(data)
    for w in ["hostile/manifest.json", "members[0].sb3.policy_kwargs", *words]:
        assert w in str(info.value)


@pytest.mark.parametrize("version", ["²", "\u0661\u0662", "9" * 5000, "0", "-1", "1.0", "", 10**12, True])
def test_version_strings_that_crash_int_are_refused(version):
    with pytest.raises(PopulationError, match="is not a version; versions are integers from 1"):
        check_version(version)
    if isinstance(version, str):
        with pytest.raises(PopulationError, match="not a version"):
            parse_ref(f"zt/pop@{version}")


def test_version_directories_and_index_keys_with_odd_digits(tmp_path):
    cache = ZooCache(tmp_path)
    for name in ("²", "\u0661", "9" * 200, "1"):
        (tmp_path / "zt" / "pop" / name).mkdir(parents=True)
        (tmp_path / "zt" / "pop" / name / "manifest.json").write_text("{}")
        (tmp_path / "zt" / "pop" / name / ".complete").write_text("")
    assert cache.versions("zt/pop") == [1]
    assert [v for _, v, _ in cache.entries()] == [1]
    index = {"schema_version": 1, "populations": {"zt/pop": {"latest": 1, "versions": {"²": {}}}}}
    with pytest.raises(PopulationError, match=r"index\.json: field 'populations\.zt/pop\.versions\.²'.*not a version"):
        Index.from_json(index, "index.json")


# ---- allowed fields checked for meaning ----------------------------------------------------------
@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ({"policy_kwargs": {"optimizer_kwargs": {"lrr": 0.1}}}, ["optimizer_kwargs.lrr", "Adam takes no argument"]),
        ({"policy_kwargs": {"optimizer_kwargs": {"fused": True}}}, ["Adam takes no argument 'fused'"]),
        (
            {"policy_kwargs": {"optimizer_class": "SGD", "optimizer_kwargs": {"betas": [0.9, 0.99]}}},
            ["SGD takes no argument 'betas'"],
        ),
        ({"policy_kwargs": {"optimizer_kwargs": {"lr": -1.0}}}, ["optimizer_kwargs.lr", ">= 0"]),
        ({"policy_kwargs": {"optimizer_kwargs": {"betas": [0.9]}}}, ["optimizer_kwargs.betas", "two numbers"]),
        ({"policy_kwargs": {"features_extractor_kwargs": {"features_dim": 8}}}, ["FlattenExtractor takes no"]),
        (
            {"policy_kwargs": {"features_extractor_class": "NatureCNN", "features_extractor_kwargs": {"x": 1}}},
            ["NatureCNN takes no argument 'x'"],
        ),
        ({"policy": "CnnPolicy"}, ["members[0].sb3.policy", "image observation space", "MlpPolicy"]),
        ({"policy": "MultiInputPolicy"}, ["needs a Dict observation space"]),
        ({"algo_kwargs": {"use_sde": True}}, ["algo_kwargs.use_sde", "continuous (Box) actions"]),
        ({"algo_kwargs": {"learning_rate": -0.001}}, ["algo_kwargs.learning_rate", "[0, inf]"]),
        ({"algo_kwargs": {"gamma": 1.5}}, ["algo_kwargs.gamma", "(0, 1]"]),
        ({"algo_kwargs": {"gamma": 0}}, ["algo_kwargs.gamma", "(0, 1]"]),
        ({"algo_kwargs": {"gae_lambda": 2}}, ["algo_kwargs.gae_lambda", "[0, 1]"]),
        ({"algo_kwargs": {"clip_range": 0}}, ["algo_kwargs.clip_range", "(0, inf]"]),
        ({"algo_kwargs": {"max_grad_norm": -1}}, ["algo_kwargs.max_grad_norm"]),
    ],
    ids=[
        "optim-key",
        "optim-fused",
        "sgd-betas",
        "optim-lr",
        "optim-betas",
        "flatten-kwargs",
        "cnn-kwargs",
        "cnn-on-vector",
        "multiinput-on-box",
        "sde-discrete",
        "lr<0",
        "gamma>1",
        "gamma=0",
        "lambda",
        "clip",
        "grad-norm",
    ],
)
def test_allowed_fields_are_checked_for_meaning(edit, words):
    data = _manifest_data()
    sb3 = data["members"][0]["sb3"]
    for key, value in edit.items():
        if isinstance(value, dict):
            sb3[key] = {**sb3[key], **value}
        else:
            sb3[key] = value
    with pytest.raises(PopulationError) as info:
        _loads(data)
    for w in ["hostile/manifest.json", *words]:
        assert w in str(info.value)


def test_meaning_checks_accept_what_sb3_accepts():
    data = _manifest_data()
    sb3 = data["members"][0]["sb3"]
    sb3["policy_kwargs"] = {"optimizer_kwargs": {"eps": 1e-5, "betas": [0.9, 0.999]}, "net_arch": [64, 64]}
    sb3["algo_kwargs"] = {**sb3["algo_kwargs"], "gamma": 1.0, "learning_rate": 0.0}
    assert _loads(data).members[0].sb3 is not None
    image = copy.deepcopy(data)
    image["observation_space"] = {"type": "Box", "shape": [36, 36, 3], "dtype": "uint8", "low": 0, "high": 255}
    image["members"][0]["sb3"]["policy"] = "CnnPolicy"
    assert (_loads(image).members[0].sb3 or {}).get("policy") == "CnnPolicy"


def test_allow_listed_kwargs_are_taken_by_the_installed_classes():
    import torch.optim
    from stable_baselines3.common import torch_layers

    from rqe_wrappers.zoo.sb3_spec import EXTRACTOR_KWARGS, OPTIMIZER_KWARGS

    for name, keys in OPTIMIZER_KWARGS.items():
        assert keys <= set(inspect.signature(getattr(torch.optim, name).__init__).parameters), name
    for name, keys in EXTRACTOR_KWARGS.items():
        taken = set(inspect.signature(getattr(torch_layers, name).__init__).parameters) - {"self", "observation_space"}
        assert keys == taken, name


# ---- weights: finite, of the right dtype, at load and at publish --------------------------------
def _tamper(pop: Path, member: str, tensors: dict[str, np.ndarray]) -> None:
    """Replace a member's file and re-sign it in the manifest (a hostile but self-consistent zoo)."""
    from safetensors.numpy import save_file

    from rqe_wrappers.zoo.files import sha256_file

    save_file(tensors, str(pop / f"{member}.safetensors"))
    data = json.loads((pop / "manifest.json").read_text())
    for m in data["members"]:
        if m["name"] == member:
            m["sha256"] = sha256_file(pop / f"{member}.safetensors")
    (pop / "manifest.json").write_text(json.dumps(data))


def test_non_finite_scripted_arrays_are_refused_at_load(remote_root, tmp_path):
    pop = tmp_path / "pop"
    shutil.copytree(remote_root / "zt" / "pop" / "1", pop)
    _tamper(pop, "m0", {"probs": np.array([np.nan, 0.5, 0.5])})
    member = open_population(pop)["m0"]
    with pytest.raises(PopulationError, match=r"member 'm0'.*tensor 'probs' holds 1 NaN or infinite value"):
        member.policy()


def test_wrong_dtype_or_non_finite_sb3_weights_are_refused_at_load(tmp_path):
    from safetensors.numpy import load_file

    pop = tmp_path / "pop"
    shutil.copytree(RUNNERS, pop)
    weights = load_file(str(pop / "runner-0.safetensors"))
    _tamper(pop, "runner-0", {k: v.astype(np.int32) for k, v in weights.items()})
    bad_inf = dict(weights)
    key = next(iter(bad_inf))
    bad_inf[key] = np.full_like(bad_inf[key], np.inf)
    _tamper(pop, "runner-1", bad_inf)
    population = open_population(pop)
    with pytest.raises(PopulationError, match=r"member 'runner-0'.*has dtype int32; member tensors must be floating"):
        population["runner-0"]._state_dict()
    with pytest.raises(PopulationError, match=r"member 'runner-1'.*NaN or infinite"):
        population["runner-1"]._state_dict()


@pytest.mark.parametrize(
    ("arrays", "words"),
    [
        ({"probs": np.array([np.inf, 0.0, 0.0])}, ["member 'bad'", "NaN or infinite"]),
        ({"probs": np.array(["a", "b", "c"])}, ["member 'bad'", "dtype <U1", "numeric"]),
    ],
    ids=["inf", "strings"],
)
def test_non_finite_or_wrong_dtype_tensors_are_refused_at_publish(tmp_path, arrays, words):
    root = tmp_path / "zoo"
    root.mkdir()
    with pytest.raises(ConfigError) as info:
        write_population(
            root, id="zt/bad", version=1, env={"id": "test/env"}, members=_members(["bad"], arrays),
            observation_space=OBS, action_space=ACT,
        )  # fmt: skip
    for w in words:
        assert w in str(info.value)
    assert list(root.iterdir()) == []  # nothing written


# ---- the download guard --------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "soon"])
def test_nonsense_timeouts_are_refused(monkeypatch, value, tmp_path):
    monkeypatch.setenv("RQE_ZOO_TIMEOUT", value)
    with pytest.raises(ConfigError, match="RQE_ZOO_TIMEOUT must be"):
        timeout_from_env()
    with pytest.raises(ConfigError, match="RQE_ZOO_TIMEOUT"):
        ZooClient("http://127.0.0.1:9", tmp_path / "cache")
    monkeypatch.delenv("RQE_ZOO_TIMEOUT")
    with pytest.raises(ConfigError, match="finite number of seconds"):
        ZooClient("http://127.0.0.1:9", tmp_path / "cache", timeout=float("inf"))


def _load_expecting(server_url: str, cache: Path, tmp_path: Path, remote_root: Path, error, words, member=None, **kw):
    outside = _snapshot(tmp_path, skip=cache)
    remote = _snapshot(remote_root)
    with pytest.raises(error) as info:
        ZooClient(server_url, cache, **kw).load("zt/pop", 1)
    for w in words:
        assert w in str(info.value), str(info.value)
    _no_leftovers(cache, member)
    assert _snapshot(tmp_path, skip=cache) == outside
    assert _snapshot(remote_root) == remote
    return info.value


def test_a_dripping_server_is_cut_off_at_the_total_deadline(remote_root, cache, tmp_path):
    faults = {"/zt/pop/1/m0.safetensors": "drip"}
    with serve_directory(remote_root, faults=faults, drip_interval=0.02) as server:
        start = time.monotonic()
        _load_expecting(
            server.url, cache, tmp_path, remote_root, PopulationError,
            ["m0.safetensors", "took longer than 0.6 s in all", "RQE_ZOO_TIMEOUT"], "m0", timeout=0.6,
        )  # fmt: skip
        assert time.monotonic() - start < 5  # a per-read timeout would wait about 15 s for 700 bytes
        del server.faults["/zt/pop/1/m0.safetensors"]  # the server recovers: the next load completes
        assert ZooClient(server.url, cache).load("zt/pop", 1).names == ["m0", "m1"]


def test_a_server_dripping_its_headers_is_cut_off_at_the_total_deadline(remote_root, cache, tmp_path):
    with serve_directory(remote_root, faults={"/index.json": "drip-headers"}, drip_interval=0.02) as server:
        start = time.monotonic()
        _load_expecting(
            server.url, cache, tmp_path, remote_root, PopulationError,
            ["index.json", "took longer than 0.5 s in all", "RQE_ZOO_TIMEOUT"], timeout=0.5,
        )  # fmt: skip
        assert time.monotonic() - start < 3  # the headers alone would take about 100 s


def test_a_gzip_bomb_is_cut_off_at_the_decoded_size_cap(remote_root, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("RQE_ZOO_MAX_FILE_MB", "1")
    faults = {"/zt/pop/1/m1.safetensors": "gzip-bomb"}
    with serve_directory(remote_root, faults=faults, bomb_bytes=32 * 1024 * 1024) as server:
        _load_expecting(
            server.url, cache, tmp_path, remote_root, PopulationError,
            ["m1.safetensors", "decoded response is larger than 1048576 bytes", "RQE_ZOO_MAX_FILE_MB"], "m1",
        )  # fmt: skip


def test_a_gzip_bomb_index_hits_the_json_cap_by_default(remote_root, cache, tmp_path):
    with serve_directory(remote_root, faults={"/index.json": "gzip-bomb"}, bomb_bytes=32 * 1024 * 1024) as server:
        _load_expecting(
            server.url, cache, tmp_path, remote_root, PopulationError,
            ["index.json", "larger than 16777216 bytes", "RQE_ZOO_MAX_JSON_MB"],
        )  # fmt: skip


def test_an_index_redirected_to_another_host_is_refused(remote_root, cache, tmp_path):
    with serve_directory(remote_root, faults={"/index.json": "redirect"}) as server:
        _load_expecting(
            server.url, cache, tmp_path, remote_root, PopulationError,
            ["index.json", "redirected to another host (http://localhost:"],
        )  # fmt: skip


def test_an_html_page_instead_of_the_index(remote_root, cache, tmp_path):
    with serve_directory(remote_root, faults={"/index.json": "html"}) as server:
        _load_expecting(server.url, cache, tmp_path, remote_root, PopulationError, ["index.json", "not valid JSON"])


def test_a_declared_length_over_the_cap_is_refused_before_the_transfer(remote_root, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("RQE_ZOO_MAX_FILE_MB", "0.00001")  # 10 bytes: the manifests and members are larger
    with serve_directory(remote_root) as server:
        _load_expecting(server.url, cache, tmp_path, remote_root, PopulationError, ["bytes declared", "larger than"])


def test_file_zoo_member_symlinked_to_dev_zero_is_refused(remote_root, cache, tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    zoo = tmp_path / "zoo"
    shutil.copytree(remote_root, zoo)
    (zoo / "zt" / "pop" / "1" / "m0.safetensors").unlink()
    (zoo / "zt" / "pop" / "1" / "m0.safetensors").symlink_to("/dev/zero")
    outside = _snapshot(tmp_path, skip=cache)
    with pytest.raises(PopulationError, match=r"m0\.safetensors: not a regular file.*Nothing was written"):
        load_population("zt/pop@1", url=zoo.as_uri(), cache_dir=cache)
    _no_leftovers(cache, "m0")
    assert _snapshot(tmp_path, skip=cache) == outside


def test_file_zoo_index_over_the_json_cap(remote_root, cache, tmp_path, monkeypatch):
    zoo = tmp_path / "zoo"
    shutil.copytree(remote_root, zoo)
    with open(zoo / "index.json", "ab") as f:
        f.write(b" " * 2 * 1024 * 1024)  # valid JSON, 2 MiB of trailing spaces
    monkeypatch.setenv("RQE_ZOO_MAX_JSON_MB", "1")
    with pytest.raises(PopulationError, match=r"index\.json: the file \(\d+ bytes\) is larger than 1048576"):
        load_population("zt/pop@1", url=zoo.as_uri(), cache_dir=cache)
    _no_leftovers(cache)


def test_guards_leave_normal_downloads_alone(remote_root, cache):
    with serve_directory(remote_root) as server:
        assert ZooClient(server.url, cache, timeout=5).load("zt/pop", 1).names == ["m0", "m1"]
