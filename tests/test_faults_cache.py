"""Fault injection for the zoo cache's integrity (issue 9, "cache integrity").

A tampered but valid cached manifest, symbolic links in the cache, a read-only (shared) cache, file
modes, a pull killed with SIGKILL half-way, a full disk and a write refused, and a manifest served
under the wrong id. Each test asserts the error type, the message's key words, and that nothing
outside the cache changed (nothing half-written stays inside it, and a half-pulled version is never
listed as cached).
"""

from __future__ import annotations

import errno
import hashlib
import json
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from _tables import ensure_table

from rqe_wrappers.errors import CacheError, ChecksumError, PopulationError
from rqe_wrappers.zoo import load_population
from rqe_wrappers.zoo.cache import COMPLETE, MANIFEST_HASH, PopulationWarning, ZooCache
from rqe_wrappers.zoo.publish import member_from_scripted, write_index, write_population
from rqe_wrappers.zoo.testing import serve_directory

TABLE = ensure_table("zoo-test/cache-table")
OBS = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
ACT = gym.spaces.Discrete(3)
ENV: dict[str, Any] = {"id": "test/env", "seats": ["a"]}


def _members(names: list[str], seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [
        member_from_scripted(n, TABLE, arrays={"probs": rng.dirichlet(np.ones(3))}, seed=i) for i, n in enumerate(names)
    ]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("RQE_ZOO_URL", "RQE_ZOO_OFFLINE", "RQE_ZOO_TIMEOUT", "RQE_ZOO_MAX_FILE_MB"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def remote_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("remote")
    common: dict[str, Any] = dict(env=ENV, observation_space=OBS, action_space=ACT)
    write_population(root, id="zt/pop", version=1, members=_members(["m0", "m1"]), **common)
    write_index(root)
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RQE_ZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _tree(directory: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``directory`` with its size, mtime and mode (links not followed)."""
    out = {}
    for p in sorted(directory.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(directory))] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def _temporaries(cache: Path) -> list[str]:
    kept = (".json", ".lock", ".safetensors", COMPLETE, MANIFEST_HASH)
    return sorted(p.name for p in cache.rglob("*") if p.is_file() and not p.name.endswith(kept))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- the index's hash kept beside the cached manifest --------------------------------------------
def test_a_tampered_valid_manifest_is_not_trusted_for_pinned_loads(remote_root, cache):
    with serve_directory(remote_root) as server:
        pop = load_population("zt/pop@1", url=server.url)
        original = {name: _sha(pop.path / name) for name in ("manifest.json", "m0.safetensors")}
        assert (pop.path / MANIFEST_HASH).read_text().strip() == original["manifest.json"]
        # a valid manifest that points m0 at a file of the attacker's (here m1's bytes), whose sha256 it names
        fake = pop.path / "m0.safetensors"
        fake.write_bytes((pop.path / "m1.safetensors").read_bytes())
        data = json.loads((pop.path / "manifest.json").read_text())
        data["members"][0]["sha256"] = _sha(fake)
        (pop.path / "manifest.json").write_text(json.dumps(data, indent=2))
        server.requests.clear()
        with pytest.warns(PopulationWarning, match=r"cached manifest of zt/pop@1 is unusable .*edited since"):
            again = load_population("zt/pop@1", url=server.url)
        assert "/zt/pop/1/manifest.json" in server.requests  # re-fetched, not trusted
        assert {name: _sha(again.path / name) for name in original} == original
        again.verify()
    # tampered again with no server and offline: refused, never loaded
    data["members"][0]["sha256"] = _sha(fake)
    (pop.path / "manifest.json").write_text(json.dumps(data, indent=2))
    with pytest.raises(ChecksumError, match=r"manifest\.json is not the one the index named.*offline mode is on"):
        load_population("zt/pop@1", url=server.url, offline=True)


def test_a_recorded_hash_that_is_garbage_sends_the_load_to_the_index(remote_root, cache):
    with serve_directory(remote_root) as server:
        pop = load_population("zt/pop@1", url=server.url)
        (pop.path / MANIFEST_HASH).write_text("not a hash\n")
        server.requests.clear()
        with pytest.warns(PopulationWarning, match=r"no index hash is recorded"):
            load_population("zt/pop@1", url=server.url)
        assert server.requests[0] == "/index.json"
        assert len((pop.path / MANIFEST_HASH).read_text().strip()) == 64  # recorded again


# ---- no writes through a symbolic link -------------------------------------------------------------
@pytest.mark.parametrize("link", ["zt", "zt/pop", "zt/pop/1"])
def test_a_symlinked_cache_directory_is_refused_and_nothing_is_written_through_it(remote_root, cache, tmp_path, link):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    (cache / link).parent.mkdir(parents=True, exist_ok=True)
    (cache / link).symlink_to(outside, target_is_directory=True)
    before = _tree(outside)
    with serve_directory(remote_root) as server:
        with pytest.raises(CacheError, match=rf"{link}.* is a symbolic link.*never writes through one.*rm "):
            load_population("zt/pop@1", url=server.url)
        assert server.requests in ([], ["/index.json"])  # refused before any file is written
    assert _tree(outside) == before


def test_a_symlinked_member_file_is_replaced_not_written_through(remote_root, cache, tmp_path):
    with serve_directory(remote_root) as server:
        pop = load_population("zt/pop@1", url=server.url)
        victim = tmp_path / "victim.safetensors"
        victim.write_bytes((pop.path / "m0.safetensors").read_bytes())  # even a matching file
        (pop.path / "m0.safetensors").unlink()
        (pop.path / "m0.safetensors").symlink_to(victim)
        (pop.path / "m1.safetensors").unlink()
        (pop.path / "m1.safetensors").symlink_to("/dev/zero")  # never read
        stat = victim.stat()
        with pytest.warns(PopulationWarning, match=r"m0\.safetensors is corrupt \(a symbolic link, not a file\)"):
            again = load_population("zt/pop@1", url=server.url)
    assert not (again.path / "m0.safetensors").is_symlink() and not (again.path / "m1.safetensors").is_symlink()
    again.verify()
    assert victim.stat().st_mtime_ns == stat.st_mtime_ns  # the link was replaced, its target untouched


# ---- a read-only (shared) cache --------------------------------------------------------------------
def _refuse_lock(monkeypatch) -> None:
    """The lock cannot be created: what a read-only directory or file system does to a non-root user."""
    import filelock

    def acquire(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", self.lock_file)

    monkeypatch.setattr(filelock.FileLock, "acquire", acquire)


def test_a_complete_read_only_cache_loads_without_writing(remote_root, cache, monkeypatch):
    with serve_directory(remote_root) as server:
        load_population("zt/pop@1", url=server.url)
    before = _tree(cache)
    _refuse_lock(monkeypatch)
    pop = load_population("zt/pop@1", url="http://127.0.0.1:9", offline=False)  # no server, no network needed
    assert pop.names == ["m0", "m1"]
    pop.verify()
    assert _tree(cache) == before


def test_a_read_only_cache_missing_a_file_names_the_fix(remote_root, cache, monkeypatch):
    with serve_directory(remote_root) as server:
        pop = load_population("zt/pop@1", url=server.url)
        (pop.path / "m1.safetensors").write_bytes(b"junk")
        before = _tree(cache)
        _refuse_lock(monkeypatch)
        with pytest.raises(ChecksumError, match=r"m1\.safetensors in the read-only cache.*RQE_ZOO_CACHE"):
            load_population("zt/pop@1", url=server.url)
        (pop.path / COMPLETE).unlink()
        before = _tree(cache)
        with pytest.raises(CacheError, match=r"zt/pop@1 is not whole in the read-only cache.*rqe zoo pull zt/pop@1"):
            load_population("zt/pop@1", url=server.url)
    assert _tree(cache) == before


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions")
def test_a_chmod_read_only_cache_loads(remote_root, cache):  # pragma: no cover - CI runs as root here
    with serve_directory(remote_root) as server:
        load_population("zt/pop@1", url=server.url)
    dirs = [cache, *[p for p in cache.rglob("*") if p.is_dir()]]
    for d in dirs:
        d.chmod(0o555)
    try:
        assert load_population("zt/pop@1", url="http://127.0.0.1:9").names == ["m0", "m1"]
    finally:
        for d in dirs:
            d.chmod(0o755)


# ---- file modes --------------------------------------------------------------------------------------
def test_pulled_files_are_readable_as_the_umask_allows(remote_root, cache):
    old = os.umask(0o022)
    try:
        with serve_directory(remote_root) as server:
            pop = load_population("zt/pop@1", url=server.url)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in [pop.path, *pop.path.iterdir()]}
    assert modes == {
        "1": 0o755,
        "manifest.json": 0o644,
        "m0.safetensors": 0o644,
        "m1.safetensors": 0o644,
        MANIFEST_HASH: 0o644,
        COMPLETE: 0o644,
    }


# ---- a pull killed with SIGKILL half-way -------------------------------------------------------------
def _pull_forever(url: str, cache_dir: str) -> None:
    load_population("zt/pop@1", url=url, cache_dir=cache_dir, progressbar=False)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_pull_killed_mid_file_is_not_listed_and_the_next_pull_cleans_up(remote_root, cache):
    ctx = multiprocessing.get_context("spawn")
    with serve_directory(remote_root, faults={"/zt/pop/1/m1.safetensors": "drip"}, drip_interval=0.05) as server:
        proc = ctx.Process(target=_pull_forever, args=(server.url, str(cache)))
        proc.start()
        deadline = time.monotonic() + 60
        version_dir = cache / "zt" / "pop" / "1"
        while time.monotonic() < deadline and not ((version_dir / "m0.safetensors").is_file() and _temporaries(cache)):
            time.sleep(0.05)
        time.sleep(0.3)  # some bytes of m1 are in its temporary file
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL
        leftovers = _temporaries(cache)
        assert len(leftovers) == 1 and leftovers[0].startswith("tmp")  # what a killed pooch download leaves
        listed = ZooCache(cache)
        assert listed.versions("zt/pop") == [] and listed.entries() == [] and not listed.has("zt/pop", 1)
        with pytest.raises(PopulationError, match=r"not in the cache"):
            load_population("zt/pop", url=server.url, offline=True)  # offline: not offered as cached
        server.faults.clear()
        pop = load_population("zt/pop@1", url=server.url)  # the next pull finishes and sweeps
    pop.verify()
    assert _temporaries(cache) == [] and listed.versions("zt/pop") == [1]


# ---- a full disk, a write refused ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, r"no space left on the device .*m1\.safetensors.*nothing half-written was kept"),
        (errno.EACCES, r"cannot write .*m1\.safetensors.*Set RQE_ZOO_CACHE to a directory you can write"),
        (errno.EROFS, r"cannot write .*m1\.safetensors.*Set RQE_ZOO_CACHE"),
        (errno.EIO, r"writing .*m1\.safetensors failed"),
    ],
)
def test_a_failed_write_is_a_cache_error_and_leaves_no_temporary(remote_root, cache, monkeypatch, code, words):
    import rqe_wrappers.zoo.remotes as remotes

    real = remotes.Remote.fetch

    def fetch(self, rel, dest, sha256):
        if rel.endswith("m1.safetensors"):
            raise OSError(code, os.strerror(code), str(dest))
        return real(self, rel, dest, sha256)

    monkeypatch.setattr(remotes.Remote, "fetch", fetch)
    with serve_directory(remote_root) as server:
        with pytest.raises(CacheError, match=words):
            load_population("zt/pop@1", url=server.url)
    assert _temporaries(cache) == [] and ZooCache(cache).versions("zt/pop") == []


def test_a_full_disk_while_writing_the_body_leaves_no_temporary(remote_root, cache, monkeypatch):
    """ENOSPC raised by the real write of the downloaded bytes (a file object that fills up)."""
    import rqe_wrappers.zoo.remotes as remotes

    real_sink = remotes._sink

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), getattr(self.f, "name", None))

        def __getattr__(self, name):
            return getattr(self.f, name)

    from contextlib import contextmanager

    @contextmanager
    def sink(output_file):
        with real_sink(output_file) as f:
            yield Full(f) if isinstance(output_file, (str, os.PathLike)) else f

    monkeypatch.setattr(remotes, "_sink", sink)
    with serve_directory(remote_root) as server:
        with pytest.raises(CacheError, match=r"no space left on the device"):
            load_population("zt/pop@1", url=server.url)
    assert _temporaries(cache) == [] and ZooCache(cache).entries() == []


# ---- a manifest served under the wrong id --------------------------------------------------------------
def test_a_manifest_fetched_under_the_wrong_id_does_not_stay_in_the_cache(cache, tmp_path):
    root = tmp_path / "remote"
    common: dict[str, Any] = dict(env=ENV, observation_space=OBS, action_space=ACT)
    write_population(root, id="zt/other", version=1, members=_members(["m0"]), **common)
    (root / "zt" / "other").rename(root / "zt" / "pop")  # zt/other@1 served as zt/pop@1, its hash indexed
    sha = _sha(root / "zt" / "pop" / "1" / "manifest.json")
    index = {
        "schema_version": 1,
        "populations": {
            "zt/pop": {"latest": 1, "versions": {"1": {"manifest_sha256": sha, "env": "test/env", "members": 1}}}
        },
    }
    (root / "index.json").write_text(json.dumps(index))
    with serve_directory(root) as server:
        with pytest.raises(PopulationError, match=r"declares zt/other@1, but it was fetched as zt/pop@1.*removed"):
            load_population("zt/pop@1", url=server.url)
    version_dir = cache / "zt" / "pop" / "1"
    assert not (version_dir / "manifest.json").exists() and not (version_dir / MANIFEST_HASH).exists()
    assert ZooCache(cache).entries() == [] and _temporaries(cache) == []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
