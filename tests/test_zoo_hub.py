"""The zoo on the Hugging Face Hub convention, through the real huggingface_hub client, against a local Hub.

``FakeHub`` serves, on 127.0.0.1, the endpoints huggingface_hub calls (read from its file_download.py,
_commit_api.py and hf_api.py): ``HEAD/GET /{repo}/resolve/{rev}/{file}`` with ``X-Repo-Commit``,
``ETag`` and ``Content-Length``; ``GET /api/models/{repo}/revision/{rev}`` (``model_info``) and
``/refs``; ``POST /api/repos/create``, ``/preupload/{rev}``, ``/commit/{rev}`` (ndjson),
``/tag/{rev}`` and ``/api/validate-yaml``. Uploads are in "regular" mode (inline base64): the real
Hub asks for LFS/Xet uploads of the safetensors, which huggingface_hub handles and this server does
not emulate.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("huggingface_hub")

from _tables import ensure_table

from rqe_wrappers.cli import main as rqe_main
from rqe_wrappers.errors import ChecksumError, ConfigError, PopulationError
from rqe_wrappers.zoo import PopulationWarning, ZooClient, ZooUnreachableError, load_population
from rqe_wrappers.zoo.hub import SUMS_NAME, parse_hub_ref, parse_sums
from rqe_wrappers.zoo.publish import member_from_scripted, push_population, write_population

ROOT = Path(__file__).resolve().parent.parent
TABLE = ensure_table("zoo-test/hub-table")
OBS = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
ACT = gym.spaces.Discrete(3)


# ---- a local Hub -------------------------------------------------------------------------------
class FakeHub:
    """In-memory model repos (commits, branches, tags) behind the Hub's HTTP API, on an ephemeral port."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        # file name -> "corrupt" (same size, other bytes) | "huge" (listed size) | "drip" (a byte every 0.2 s)
        self.faults: dict[str, str] = {}
        self.stopping = False
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: stop() leaves nothing serving

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._serve(self, head=True)

            def do_GET(self) -> None:
                hub._serve(self, head=False)

            def do_POST(self) -> None:
                hub._post(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping = True
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # -- repo state --
    def create(self, repo: str) -> None:
        sha = hashlib.sha1(f"init {repo}".encode()).hexdigest()
        files = {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"}
        self.repos[repo] = {"commits": {sha: files}, "branches": {"main": sha}, "tags": {}}

    def commit(self, repo: str, files: dict[str, bytes], deleted: tuple[str, ...] = (), branch: str = "main") -> str:
        state = self.repos[repo]
        tree = {k: v for k, v in state["commits"][state["branches"][branch]].items() if k not in deleted}
        tree.update(files)
        digest = hashlib.sha1(json.dumps(sorted((k, hashlib.sha256(v).hexdigest()) for k, v in tree.items())).encode())
        sha = hashlib.sha1(f"{state['branches'][branch]}{digest.hexdigest()}".encode()).hexdigest()
        state["commits"][sha] = tree
        state["branches"][branch] = sha
        return sha

    def resolve(self, repo: str, rev: str) -> str | None:
        state = self.repos[repo]
        return state["branches"].get(rev) or state["tags"].get(rev) or (rev if rev in state["commits"] else None)

    # -- HTTP --
    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))  # on HEAD too: the size huggingface_hub expects
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def _json(self, h: BaseHTTPRequestHandler, data: Any, status: int = 200, head: bool = False) -> None:
        self._send(h, status, json.dumps(data).encode(), {"Content-Type": "application/json"}, head)

    def _error(self, h: BaseHTTPRequestHandler, status: int, code: str, head: bool = False, **extra: str) -> None:
        body = json.dumps({"error": code}).encode()
        self._send(
            h,
            status,
            body,
            {"X-Error-Code": code, "X-Error-Message": code, "Content-Type": "application/json", **extra},
            head,
        )

    def _serve(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlparse(h.path).path)
        self.requests.append(("HEAD" if head else "GET", path))
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/(refs|revision/(.+))", path)
        if m:
            repo, what, rev = m.groups()
            if repo not in self.repos:
                return self._error(h, 404, "RepoNotFound", head)
            state = self.repos[repo]
            if what == "refs":

                def ref(kind: str, name: str, sha: str) -> dict[str, str]:
                    return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": sha}

                return self._json(h, {
                    "branches": [ref("heads", n, s) for n, s in state["branches"].items()],
                    "converts": [],
                    "tags": [ref("tags", n, s) for n, s in state["tags"].items()],
                }, head=head)  # fmt: skip
            sha = self.resolve(repo, rev)
            if sha is None:
                return self._error(h, 404, "RevisionNotFound", head)
            siblings = [
                {"rfilename": name, "size": (1 << 40) if self.faults.get(name) == "huge" else len(data)}
                for name, data in sorted(state["commits"][sha].items())
            ]
            return self._json(
                h, {"id": repo, "modelId": repo, "sha": sha, "siblings": siblings, "private": False}, head=head
            )
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m is None:
            return self._error(h, 404, "NotFound", head)
        repo, rev, name = m.groups()
        if repo not in self.repos:
            return self._error(h, 404, "RepoNotFound", head)
        sha = self.resolve(repo, rev)
        if sha is None:
            return self._error(h, 404, "RevisionNotFound", head)
        data = self.repos[repo]["commits"][sha].get(name)
        if data is None:
            return self._error(h, 404, "EntryNotFound", head, **{"X-Repo-Commit": sha})
        etag = hashlib.sha256(data).hexdigest()
        if self.faults.get(name) == "corrupt":
            data = bytes(b ^ 0xFF for b in data[:16]) + data[16:]
        headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"', "Content-Type": "application/octet-stream"}
        if self.faults.get(name) == "drip" and not head:
            return self._drip(h, data, headers)
        self._send(h, 200, data, headers, head)

    def _drip(self, h: BaseHTTPRequestHandler, data: bytes, headers: dict[str, str]) -> None:
        """A byte every 0.2 s (never idle long enough for a per-read timeout), for at most 30 s."""
        h.send_response(200)
        for k, v in {**headers, "Content-Length": str(len(data))}.items():
            h.send_header(k, v)
        h.end_headers()
        stop = time.monotonic() + 30
        for i in range(len(data)):
            if time.monotonic() > stop or self.stopping:
                return
            try:
                h.wfile.write(data[i : i + 1])
                h.wfile.flush()
            except OSError:
                return
            time.sleep(0.2)

    def _post(self, h: BaseHTTPRequestHandler) -> None:
        path = unquote(urlparse(h.path).path)
        self.requests.append(("POST", path))
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        with self.lock:
            if path == "/api/repos/create":
                data = json.loads(body)
                repo = f"{data['organization']}/{data['name']}" if data.get("organization") else data["name"]
                if repo in self.repos:  # the Hub answers 409 with the repo's url
                    return self._json(
                        h, {"error": "You already created this model repo", "url": f"{self.url}/{repo}"}, 409
                    )
                self.create(repo)
                return self._json(h, {"url": f"{self.url}/{repo}", "name": repo})
            if path == "/api/validate-yaml":
                return self._json(h, {"errors": [], "warnings": []})
            m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/(preupload|commit|tag)/(.+)", path)
            if m is None or m.group(1) not in self.repos:
                return self._error(h, 404, "RepoNotFound")
            repo, action, rev = m.groups()
            if action == "preupload":
                files = json.loads(body)["files"]
                return self._json(h, {"files": [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None} for f in files
                ]})  # fmt: skip
            if action == "tag":
                tag = json.loads(body)["tag"]
                if tag in self.repos[repo]["tags"]:
                    return self._error(h, 409, "TagExists")
                self.repos[repo]["tags"][tag] = self.resolve(repo, rev)
                return self._json(h, {})
            added: dict[str, bytes] = {}
            deleted: list[str] = []
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    added[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                elif item["key"] == "deletedFile":
                    deleted.append(item["value"]["path"])
                elif item["key"] != "header":
                    return self._error(h, 400, f"unsupported {item['key']}")
            sha = self.commit(repo, added, tuple(deleted), branch=rev)
            return self._json(
                h, {"commitOid": sha, "commitUrl": f"{self.url}/{repo}/commit/{sha}", "pullRequestUrl": None}
            )


@pytest.fixture
def hub(monkeypatch, tmp_path) -> Iterator[FakeHub]:
    server = FakeHub()
    for var in ("RQE_ZOO_URL", "RQE_ZOO_OFFLINE", "HF_HUB_OFFLINE", "RQE_ZOO_MAX_FILE_MB", "HF_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("RQE_ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no token, no cache of the user's
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield server
    server.stop()


def _write(root: Path, version: int, names: list[str]) -> Path:
    rng = np.random.default_rng(version)
    members = [
        member_from_scripted(n, TABLE, arrays={"probs": rng.dirichlet(np.ones(3))}, seed=i, metrics={"ret": i / 3})
        for i, n in enumerate(names)
    ]
    return write_population(
        root, id="zt/hub", version=version, env={"id": "test/env", "seats": ["a"]}, members=members,
        observation_space=OBS, action_space=ACT, description="hub test",
    )  # fmt: skip


# ---- tests -------------------------------------------------------------------------------------
def test_refs_and_sums():
    assert parse_hub_ref("hf://org/name@3") == ("org/name", 3)
    assert parse_hub_ref("hf://Org-1/na.me_2") == ("Org-1/na.me_2", None)
    for bad in ("hf://org", "hf://org/../x", "hf://org/name/x", "hf://org/name@0", "hf://-org/name"):
        with pytest.raises(PopulationError):
            parse_hub_ref(bad)
    sha = "a" * 64
    assert parse_sums(f"{sha}  manifest.json\n{sha} *m.safetensors\n", "S") == {
        "manifest.json": sha,
        "m.safetensors": sha,
    }
    for bad in (f"{sha}  ../etc/passwd", f"{sha}  sub/file", "abc  manifest.json"):
        with pytest.raises(PopulationError, match="line 1"):
            parse_sums(bad, "S")


def test_push_then_pull_round_trip(hub, tmp_path):
    root = tmp_path / "zoo"
    v1 = _write(root, 1, ["m0", "m1"])
    result = push_population(v1, "org/hub-pop")
    assert (result.tag, result.ref) == ("v1", "hf://org/hub-pop@1")
    state = hub.repos["org/hub-pop"]
    tree = state["commits"][state["tags"]["v1"]]
    assert sorted(tree) == [
        ".gitattributes",
        "README.md",
        SUMS_NAME,
        "m0.safetensors",
        "m1.safetensors",
        "manifest.json",
    ]
    assert tree["manifest.json"] == (v1 / "manifest.json").read_bytes()  # the same files as the zoo's
    sums = parse_sums(tree[SUMS_NAME].decode(), SUMS_NAME)
    assert sums == {
        name: hashlib.sha256(data).hexdigest()
        for name, data in tree.items()
        if name.endswith((".json", ".safetensors"))
    }
    assert 'load_population("hf://org/hub-pop@1")' in tree["README.md"].decode()
    # version 2 drops m1: deleted from main in the same commit, still in tag v1
    push_population(_write(root, 2, ["m0", "m2"]), "org/hub-pop")
    assert "m1.safetensors" not in state["commits"][state["tags"]["v2"]]
    assert "m1.safetensors" in state["commits"][state["tags"]["v1"]]
    with pytest.raises(PopulationError, match=r"hf://org/hub-pop@1 exists \(tag v1\).*immutable.*versions \[1, 2\]"):
        push_population(v1, "org/hub-pop")

    hub.requests.clear()
    pop = load_population("hf://org/hub-pop@1")
    assert pop.ref == "zt/hub@1" and pop.names == ["m0", "m1"]
    assert pop.path == tmp_path / "cache" / "_hf" / "org" / "hub-pop" / "1"
    assert sorted(p.name for p in pop.path.iterdir()) == [
        ".complete",
        SUMS_NAME,
        "m0.safetensors",
        "m1.safetensors",
        "manifest.json",
    ]
    local = load_population(v1)
    probs = pop["m1"].policy().action_probs(np.zeros((1, 2), np.float32))
    assert np.allclose(probs, local["m1"].policy().action_probs(np.zeros((1, 2), np.float32)))
    gets = [p for m, p in hub.requests if m == "GET" and "/resolve/" in p]
    commit = state["tags"]["v1"]
    assert gets == [
        f"/org/hub-pop/resolve/{commit}/{n}" for n in (SUMS_NAME, "manifest.json", "m0.safetensors", "m1.safetensors")
    ]
    # pinned + cached: no request; unpinned asks for the tags and takes the newest
    hub.requests.clear()
    assert load_population("hf://org/hub-pop", version=1).names == ["m0", "m1"] and hub.requests == []
    assert load_population("hf://org/hub-pop").names == ["m0", "m2"]
    assert ("GET", "/api/models/org/hub-pop/refs") in hub.requests
    # verify through the client, as `rqe zoo verify hf://...` does
    assert [problem for _, problem in ZooClient().verify("hf://org/hub-pop@1")] == [None]


def test_pull_errors_say_what_to_do(hub, tmp_path):
    with pytest.raises(PopulationError, match=r"no model repo org/missing at http://127\.0\.0\.1.*HF_TOKEN"):
        load_population("hf://org/missing@1")
    push_population(_write(tmp_path / "zoo", 1, ["m0"]), "org/p")
    with pytest.raises(PopulationError, match=r"no revision 'v7'.*available versions: \[1\]"):
        load_population("hf://org/p@7")
    with pytest.raises(ConfigError, match="HF_ENDPOINT"):
        load_population("hf://org/p@1", url="http://example.invalid")
    hub.create("org/not-a-pop")
    hub.repos["org/not-a-pop"]["tags"]["v1"] = hub.commit("org/not-a-pop", {"model.bin": b"\x80\x04pickle"})
    with pytest.raises(PopulationError, match=r"has no SHA256SUMS: not a population pushed with `rqe zoo push`"):
        load_population("hf://org/not-a-pop@1")


def test_corrupt_or_oversized_downloads_leave_nothing(hub, tmp_path, monkeypatch):
    push_population(_write(tmp_path / "zoo", 1, ["m0", "m1"]), "org/p")
    cache = tmp_path / "cache"
    hub.faults["m1.safetensors"] = "corrupt"
    with pytest.raises(ChecksumError, match=r"m1\.safetensors's sha256 is [0-9a-f]{64}, the population says"):
        load_population("hf://org/p@1")
    assert not (cache / "_hf" / "org" / "p" / "1").exists()
    assert [p.name for p in (cache / "_hf" / "org" / "p").iterdir() if not p.name.endswith(".lock")] == []
    hub.faults["m1.safetensors"] = "huge"
    with pytest.raises(
        PopulationError, match=r"m1\.safetensors is 1099511627776 bytes, over the .*RQE_ZOO_MAX_FILE_MB"
    ):
        load_population("hf://org/p@1")
    gets = [p for m, p in hub.requests if m == "GET" and p.endswith("m1.safetensors")]
    assert len(gets) == 1  # the corrupt one; the oversized one was refused before any transfer
    hub.faults.clear()
    monkeypatch.setenv("RQE_ZOO_MAX_FILE_MB", "0.0001")  # 104 bytes: smaller than the members
    with pytest.raises(PopulationError, match="over the 104-byte cap"):
        load_population("hf://org/p@1")


def test_a_dripping_hub_is_cut_off_at_the_total_deadline(hub, tmp_path, monkeypatch):
    push_population(_write(tmp_path / "zoo", 1, ["m0", "m1"]), "org/p")
    monkeypatch.setenv("RQE_ZOO_TIMEOUT", "1")
    hub.faults["m1.safetensors"] = "drip"
    start = time.monotonic()
    with pytest.raises(ZooUnreachableError, match=r"m1\.safetensors did not arrive within 1 s \(RQE_ZOO_TIMEOUT"):
        load_population("hf://org/p@1")
    assert time.monotonic() - start < 10
    family = tmp_path / "cache" / "_hf" / "org" / "p"
    assert not (family / "1").exists()  # nothing half-pulled is left as the version
    hub.faults.clear()
    monkeypatch.setenv("RQE_ZOO_TIMEOUT", "30")
    assert load_population("hf://org/p@1").names == ["m0", "m1"]  # the next pull sweeps and completes
    assert [p.name for p in family.iterdir() if not p.name.endswith(".lock")] == ["1"]


def test_manifest_is_checked_against_sha256sums(hub, tmp_path):
    push_population(_write(tmp_path / "zoo", 1, ["m0"]), "org/p")
    state = hub.repos["org/p"]
    tree = dict(state["commits"][state["tags"]["v1"]])
    state["tags"]["v1"] = hub.commit(
        "org/p", {"manifest.json": tree["manifest.json"].replace(b"hub test", b"tampered")}
    )
    with pytest.raises(ChecksumError, match=r"manifest\.json's sha256 is .* the population says"):
        load_population("hf://org/p@1")


def test_offline_and_repair(hub, tmp_path, monkeypatch):
    pop = load_population(push_population(_write(tmp_path / "zoo", 1, ["m0", "m1"]), "org/p").ref)
    hub.stop()
    assert load_population("hf://org/p@1").names == ["m0", "m1"]  # pinned + cached: no network needed
    with pytest.warns(
        PopulationWarning, match=r"cannot reach the Hugging Face Hub.*newest cached version, hf://org/p@1"
    ):
        assert load_population("hf://org/p").ref == "zt/hub@1"
    monkeypatch.setenv("RQE_ZOO_OFFLINE", "1")
    assert load_population("hf://org/p").ref == "zt/hub@1"
    with pytest.raises(
        PopulationError, match=r"hf://org/p@2 is not in the cache .* offline mode is on; cached: hf://org/p@1"
    ):
        load_population("hf://org/p@2")
    (pop.path / "m1.safetensors").write_bytes(b"garbage")
    with pytest.raises(ChecksumError, match=r"unusable \(m1\.safetensors: sha256 is .*offline mode is on"):
        load_population("hf://org/p@1")
    monkeypatch.delenv("RQE_ZOO_OFFLINE")
    with pytest.raises(ZooUnreachableError, match=r"cannot reach the Hugging Face Hub at http://127\.0\.0\.1"):
        with pytest.warns(PopulationWarning, match="unusable"):
            load_population("hf://org/p@1")


def test_corrupt_cache_is_refetched(hub, tmp_path):
    pop = load_population(push_population(_write(tmp_path / "zoo", 1, ["m0", "m1"]), "org/p").ref)
    (pop.path / "m0.safetensors").write_bytes(b"garbage")
    with pytest.warns(PopulationWarning, match=r"cached hf://org/p@1 is unusable \(m0\.safetensors: sha256"):
        again = load_population("hf://org/p@1")
    assert again.names == ["m0", "m1"] and again["m0"].policy() is not None


def test_cli_push_and_pull(hub, tmp_path, capsys):
    _write(tmp_path / "zoo", 1, ["m0"])
    assert rqe_main(["zoo", "push", str(tmp_path / "zoo"), "zt/hub@1", "--repo", "org/cli"]) == 0
    out = capsys.readouterr().out
    assert "pushed zt/hub@1 to org/cli as tag v1" in out and "hf://org/cli@1" in out
    assert rqe_main(["zoo", "pull", "hf://org/cli@1"]) == 0
    assert "zt/hub@1: 1 members, verified" in capsys.readouterr().out
    assert rqe_main(["zoo", "verify", "hf://org/cli@1"]) == 0
    assert rqe_main(["zoo", "push", str(tmp_path / "zoo"), "zt/hub@1", "--repo", "org/cli"]) == 2
    assert "immutable" in capsys.readouterr().err


def test_published_population_round_trips(hub, tmp_path):
    """A real published population (SB3 members) pushed and pulled back: same weights, same actions."""
    pytest.importorskip("stable_baselines3")
    push_population(ROOT / "populations" / "tag" / "runners" / "1", "rqe/tag-runners")
    pop = load_population("hf://rqe/tag-runners@1")
    local = load_population(ROOT / "populations" / "tag" / "runners" / "1")
    obs = np.random.default_rng(0).normal(size=(4, 12)).astype(np.float32)
    for name in ("runner-0", "runner-4"):
        assert np.allclose(pop[name].policy().action_probs(obs), local[name].policy().action_probs(obs))


def test_missing_huggingface_hub_names_the_extra(monkeypatch, tmp_path):
    import sys

    monkeypatch.setenv("RQE_ZOO_CACHE", str(tmp_path))
    monkeypatch.delenv("RQE_ZOO_OFFLINE", raising=False)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ConfigError, match=r"pip install 'rqe-wrappers\[zoo\]'"):
        load_population("hf://org/p@1")
