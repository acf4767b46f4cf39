"""Loading ``hf://org/name@<version>`` populations: fetch from the Hugging Face Hub, verify, cache.

The tag ``v<version>`` is resolved to its commit once (``model_info``, which also lists every file's
size); then ``SHA256SUMS``, ``manifest.json`` (checked against ``SHA256SUMS``) and every member file
(checked against the manifest, and ``SHA256SUMS`` must agree) are downloaded with
``hf_hub_download`` at that commit into a temporary directory of the cache. Every file is refused
above its size cap before and after its transfer, member files must be safetensors, and the
population is renamed into ``<cache>/_hf/<org>/<name>/<version>/`` only when whole. Cached versions
load without the network when pinned; every load re-hashes every file. docs/zoo.md ("The Hugging
Face Hub").
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rqe_wrappers.errors import CacheError, ChecksumError, ConfigError, PopulationError
from rqe_wrappers.zoo.cache import PopulationWarning, ZooCache, newest_cached
from rqe_wrappers.zoo.config import (
    ENV_MAX_FILE_MB,
    ENV_TIMEOUT,
    default_cache_dir,
    max_file_bytes_from_env,
    timeout_from_env,
)
from rqe_wrappers.zoo.files import check_safetensors_bytes, sha256_file
from rqe_wrappers.zoo.hub import (
    MAX_MANIFEST_BYTES,
    MAX_SUMS_BYTES,
    SUMS_NAME,
    format_hub_ref,
    hub_endpoint,
    hub_errors,
    hub_offline,
    parse_hub_ref,
    parse_sums,
    require_hub,
    tag_version,
    version_tag,
)
from rqe_wrappers.zoo.manifest import MANIFEST_NAME
from rqe_wrappers.zoo.population import Population, find_bad_files, open_population, read_manifest
from rqe_wrappers.zoo.refs import check_version
from rqe_wrappers.zoo.remotes import ZooUnreachableError, check_timeout


def remote_versions(api: Any, repo_id: str, endpoint: str) -> list[int]:
    """The versions a Hub repo publishes (its ``v<N>`` tags), oldest first."""
    with hub_errors(repo_id, endpoint):
        refs = api.list_repo_refs(repo_id)
    return sorted(v for v in (tag_version(t.name) for t in refs.tags) if v is not None)


def check_cached(directory: Path, version: int) -> str | None:
    """What is wrong with a cached Hub population (``None``: whole and verified)."""
    try:
        manifest = read_manifest(directory)
        sums = parse_sums((directory / SUMS_NAME).read_text(encoding="utf-8"), str(directory / SUMS_NAME))
        if sums.get(MANIFEST_NAME) != sha256_file(directory / MANIFEST_NAME):
            return f"{MANIFEST_NAME} does not match {SUMS_NAME}"
        if manifest.version != version:
            return f"it holds version {manifest.version}"
        bad = find_bad_files(manifest, directory)
        return f"{bad[0][0].file}: {bad[0][1]}" if bad else None
    except (PopulationError, OSError, UnicodeDecodeError) as e:
        return str(e)


_T = TypeVar("_T")


def within(timeout: float, what: str, fn: Callable[[], _T]) -> _T:
    """``fn()`` (one Hub request), abandoned after ``timeout`` seconds in all.

    huggingface_hub's own timeout is per read: a server that drips a byte a second never trips it.
    The request runs in a daemon thread; past the deadline it is left to end on its own (it writes
    only into the staging directory, which the caller removes) and ``ZooUnreachableError`` is raised.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e

    thread = threading.Thread(target=run, name="rqe-hub-request", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise ZooUnreachableError(
            f"{what} did not arrive within {timeout:g} s ({ENV_TIMEOUT} is the total time of one request); "
            "nothing was written to the cache. Raise it for a slow link, or try again later"
        )
    if "error" in box:
        raise box["error"]
    return box["value"]


def _downloader(
    hub: Any,
    repo_id: str,
    commit: str,
    sizes: dict[str, int | None],
    staging: Path,
    endpoint: str,
    token: Any,
    timeout: float,
) -> Callable[[str, int, str | None], Path]:
    """``get(name, cap, sha256)``: one file of the commit into ``staging/population``, capped and checked."""
    out = staging / "population"
    out.mkdir()
    label = f"{format_hub_ref(repo_id)} ({commit[:10]})"

    def get(name: str, cap: int, sha256: str | None) -> Path:
        if name not in sizes:
            raise PopulationError(f"{label} has no {name}: not a population pushed with `rqe zoo push`")
        listed = sizes[name]
        if listed is not None and listed > cap:
            raise PopulationError(
                f"{label}: {name} is {listed} bytes, over the {cap}-byte cap (raise {ENV_MAX_FILE_MB} for bigger "
                "members); nothing was downloaded"
            )
        with hub_errors(repo_id, endpoint, commit, name):
            path = Path(
                within(
                    timeout,
                    f"{label}: {name}",
                    lambda: hub.hf_hub_download(
                        repo_id,
                        name,
                        revision=commit,
                        endpoint=endpoint,
                        token=token,
                        local_dir=staging / "download",
                        cache_dir=staging / "hf-cache",
                    ),
                )
            )
        size = path.stat().st_size
        if size > cap or (listed is not None and size != listed):
            raise PopulationError(f"{label}: {name} arrived with {size} bytes (listed: {listed}, cap: {cap})")
        got = sha256_file(path)
        if sha256 is not None and got != sha256:
            raise ChecksumError(
                f"{label}: {name}'s sha256 is {got}, the population says {sha256}; the Hub copy is corrupt or "
                "was changed after publishing. Nothing was written to the cache."
            )
        target = out / name
        if path.is_symlink():
            shutil.copyfile(path, target)
        else:
            os.replace(path, target)
        return target

    return get


def fetch_hub_population(
    repo_id: str,
    version: int,
    dest: Path,
    *,
    endpoint: str,
    token: Any = None,
    max_file_bytes: int,
    timeout: float | None = None,
) -> None:
    """Download tag ``v<version>`` of ``repo_id`` into ``dest`` (replacing it), verified; only whole.

    ``timeout``: seconds for each request in all (default ``$RQE_ZOO_TIMEOUT``, 30 s).
    """
    hub = require_hub()
    timeout = check_timeout(timeout_from_env() if timeout is None else timeout)
    tag = version_tag(version)
    api = hub.HfApi(endpoint=endpoint, token=token)
    try:
        with hub_errors(repo_id, endpoint, tag):
            info = within(
                timeout,
                f"{format_hub_ref(repo_id, version)}'s file list",
                lambda: api.model_info(repo_id, revision=tag, files_metadata=True),
            )
    except PopulationError as e:
        if f"no revision {tag!r}" not in str(e):
            raise
        raise PopulationError(f"{e}; available versions: {remote_versions(api, repo_id, endpoint)}") from None
    commit = str(info.sha)
    sizes = {s.rfilename: s.size for s in (info.siblings or [])}
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{version}.", suffix=".tmp"))
    try:
        get = _downloader(hub, repo_id, commit, sizes, staging, endpoint, token, timeout)
        sums_path = get(SUMS_NAME, MAX_SUMS_BYTES, None)
        sums = parse_sums(sums_path.read_text(encoding="utf-8"), f"{format_hub_ref(repo_id, version)}: {SUMS_NAME}")
        if MANIFEST_NAME not in sums:
            raise PopulationError(f"{format_hub_ref(repo_id, version)}: {SUMS_NAME} does not list {MANIFEST_NAME}")
        manifest_path = get(MANIFEST_NAME, MAX_MANIFEST_BYTES, sums[MANIFEST_NAME])
        manifest = read_manifest(manifest_path.parent)
        if manifest.version != version:
            raise PopulationError(
                f"{format_hub_ref(repo_id)}: tag {tag} holds {manifest.ref}; a tag vN must hold version N"
            )
        for entry in manifest.members:
            if entry.file is None:
                continue
            if sums.get(entry.file) != entry.sha256:
                raise ChecksumError(
                    f"{format_hub_ref(repo_id, version)}: {SUMS_NAME} and {MANIFEST_NAME} disagree about {entry.file}"
                )
            path = get(entry.file, max_file_bytes, entry.sha256)
            with open(path, "rb") as f:
                check_safetensors_bytes(f.read(1 << 16), str(path))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(manifest_path.parent, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _choose_version(cache: ZooCache, key: str, repo_id: str, offline: bool, endpoint: str, token: Any) -> int:
    cached = cache.versions(key)
    if offline:
        if not cached:
            raise PopulationError(
                f"{key} is not in the cache ({cache.directory}) and offline mode is on; cached: {cache.describe()}"
            )
        return max(cached)
    try:
        versions = remote_versions(require_hub().HfApi(endpoint=endpoint, token=token), repo_id, endpoint)
    except ZooUnreachableError as e:
        return newest_cached(e, cached, lambda v: format_hub_ref(repo_id, v), stacklevel=5)
    if not versions:
        raise PopulationError(f"{key} at {endpoint} has no version tags (v1, v2, ...): publish with `rqe zoo push`")
    return max(versions)


def load_hub_population(
    ref: str,
    version: int | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    offline: bool | None = None,
    endpoint: str | None = None,
    token: Any = None,
    max_file_bytes: int | None = None,
) -> Population:
    """Load ``hf://org/name@<version>`` (newest tag when unpinned): from the cache, else from the Hub.

    ``endpoint`` defaults to ``$HF_ENDPOINT`` (else https://huggingface.co), ``token`` to
    huggingface_hub's own (``HF_TOKEN`` or ``hf auth login``), ``offline`` to ``$RQE_ZOO_OFFLINE`` /
    ``$HF_HUB_OFFLINE``, ``max_file_bytes`` to ``$RQE_ZOO_MAX_FILE_MB`` (2048 MB).

    Example:
        >>> pop = load_hub_population("hf://my-org/tag-runners@1")   # doctest: +SKIP
    """
    repo_id, ref_version = parse_hub_ref(ref)
    if version is not None:
        version = check_version(version)
        if ref_version is not None and ref_version != version:
            raise ConfigError(f"{ref!r} pins version {ref_version} but version={version} was passed")
    version = version if version is not None else ref_version
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cache = ZooCache(directory.absolute())
    offline = hub_offline() if offline is None else bool(offline)
    endpoint = hub_endpoint(endpoint)
    cap = max_file_bytes_from_env() if max_file_bytes is None else int(max_file_bytes)
    key = format_hub_ref(repo_id)
    if version is None:
        version = _choose_version(cache, key, repo_id, offline, endpoint, token)
    label = format_hub_ref(repo_id, version)
    with cache.lock(key, version) as writable:
        dest = cache.path_of(key, version)
        if (dest / MANIFEST_NAME).is_file():
            problem = check_cached(dest, version)
            if problem is None:
                if writable and not cache.has(key, version):
                    cache.mark_complete(key, version)  # pulled whole before the marker existed
                return Population(read_manifest(dest), dest.resolve())
            if not writable:
                raise CacheError(f"cached {label} ({dest}) is unusable ({problem}) and the cache is read-only")
            if offline:
                raise ChecksumError(f"cached {label} ({dest}) is unusable ({problem}) and offline mode is on")
            warnings.warn(f"cached {label} is unusable ({problem}); re-fetching it", PopulationWarning, stacklevel=2)
        elif offline:
            raise PopulationError(
                f"{label} is not in the cache ({cache.directory}) and offline mode is on; cached: {cache.describe()}"
            )
        if not writable:
            raise CacheError(
                f"{label} is not in the read-only cache {cache.directory}; "
                "set RQE_ZOO_CACHE to a directory you can write"
            )
        cache.sweep(key, version, keep=set())
        fetch_hub_population(repo_id, version, dest, endpoint=endpoint, token=token, max_file_bytes=cap)
        cache.mark_complete(key, version)
        return open_population(dest)
