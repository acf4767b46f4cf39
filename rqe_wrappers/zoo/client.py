"""The zoo client: find a population, download it once, verify it on every load, cache it.

Resolution order of :func:`load_population` (docs/zoo.md has the long form):

1. an existing local path: a population directory ``<root>/<id>/<version>/`` (or its
   ``manifest.json``, or ``<root>/<id>/`` holding version directories) is loaded in place;
2. otherwise an id (``"tag/runners"``, ``"tag/runners@2"``) is looked up in the user cache
   (:mod:`rqe_wrappers.zoo.cache`);
3. and fetched from the remote zoo (:mod:`rqe_wrappers.zoo.remotes`; where it is:
   :mod:`rqe_wrappers.zoo.config`) when missing or corrupt.

``hf://org/name@<version>`` refs go to the Hugging Face Hub instead (:mod:`rqe_wrappers.zoo.hub_client`).

A pinned version (``id@version``) that is cached loads without touching the network; an unpinned
one asks the remote's ``index.json`` for the newest version and falls back to the newest cached
version (with a warning) when the remote cannot be reached. ``RQE_ZOO_OFFLINE=1`` never uses the
network. Every file's sha256 is checked on every load.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from rqe_wrappers._compat import moved_names
from rqe_wrappers.errors import CacheError, ChecksumError, ConfigError, PopulationError
from rqe_wrappers.zoo.cache import MANIFEST_HASH, PopulationWarning, ZooCache, cache_os_error, newest_cached
from rqe_wrappers.zoo.config import (
    ENV_CACHE,
    ENV_OFFLINE,
    ENV_URL,
    default_cache_dir,
    default_url,
    is_local_url,
    normalize_url,
    offline_from_env,
    timeout_from_env,
)
from rqe_wrappers.zoo.files import sha256_file
from rqe_wrappers.zoo.hub import HUB_SCHEME, format_hub_ref, parse_hub_ref
from rqe_wrappers.zoo.manifest import MANIFEST_NAME, Manifest
from rqe_wrappers.zoo.population import (
    Population,
    find_bad_files,
    find_population_dir,
    open_population,
    read_manifest,
    verify_directory,
)
from rqe_wrappers.zoo.refs import check_version, format_ref, parse_ref
from rqe_wrappers.zoo.remotes import Remote, ZooUnreachableError, check_timeout


class ZooClient:
    """Cache + remote. ``load_population`` makes one from the environment variables; the CLI too.

    ``url`` / ``cache_dir`` / ``offline`` / ``timeout`` default to ``$RQE_ZOO_URL`` (or the checkout's
    populations/, or the populations the installed wheel ships), ``$RQE_ZOO_CACHE`` (or the platform's
    user cache), ``$RQE_ZOO_OFFLINE`` and ``$RQE_ZOO_TIMEOUT`` (30 s). Offline mode still reads a
    ``file://`` zoo (no network). ``progressbar`` defaults to on when tqdm is installed.
    """

    def __init__(
        self,
        url: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        *,
        offline: bool | None = None,
        progressbar: bool | None = None,
        timeout: float | None = None,
    ):
        self.url = normalize_url(url) if url is not None else default_url()
        directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.cache = ZooCache(directory.absolute())
        self.offline = offline_from_env() if offline is None else bool(offline)
        if progressbar is None:
            try:
                import tqdm  # noqa: F401

                progressbar = True
            except ImportError:
                progressbar = False
        self.progressbar = progressbar
        timeout = timeout_from_env() if timeout is None else timeout
        self.timeout = check_timeout(timeout)
        self._remote: Remote | None = None

    @property
    def cache_dir(self) -> Path:
        return self.cache.directory

    # -- remote --
    @property
    def uses_network(self) -> bool:
        """Whether reaching the remote needs the network (a ``file://`` zoo, e.g. the bundled one, does not)."""
        return not is_local_url(self.url)

    def remote(self) -> Remote:
        if self.offline and self.uses_network:
            raise PopulationError(f"offline mode is on ({ENV_OFFLINE} or offline=True): the remote zoo is not used")
        if self.url is None:
            raise PopulationError(
                f"no population zoo configured: set {ENV_URL} to an http(s)://, file:// URL or a local directory "
                "holding populations, or pass a local population directory to load_population()"
            )
        if self._remote is None:
            self._remote = Remote(self.url, timeout=self.timeout, progressbar=self.progressbar)
        return self._remote

    # -- cache (see ZooCache) --
    def path_of(self, pid: str, version: int) -> Path:
        return self.cache.path_of(pid, version)

    def cached_versions(self, pid: str) -> list[int]:
        return self.cache.versions(pid)

    def cached(self) -> list[tuple[str, int, Path]]:
        """Every cached ``(id, version, directory)``."""
        return self.cache.entries()

    @contextmanager
    def lock(self, pid: str, version: int) -> Iterator[bool]:
        """The per-population-version lock every cache write and check happens under (yields: writable)."""
        with self.cache.lock(pid, version) as writable:
            yield writable

    # -- loading --
    def load(self, pid: str, version: int | None = None) -> Population:
        """Load ``pid`` (at ``version``, else the newest) from the cache, fetching what is missing."""
        if version is None:
            version = self._choose_version(pid)
        elif not self.cache.has_manifest(pid, version):  # partly pulled: repaired under the lock
            if self.offline and self.uses_network:
                raise PopulationError(
                    f"{format_ref(pid, version)} is not in the cache ({self.cache_dir}) and offline mode is on; "
                    f"cached: {self.cache.describe()}"
                )
            version = self.remote().pick(pid, version)
        return self._materialise(pid, version)

    def _choose_version(self, pid: str) -> int:
        cached = self.cache.versions(pid)
        if self.offline and self.uses_network:
            if not cached:
                raise PopulationError(
                    f"population {pid!r} is not in the cache ({self.cache_dir}) and offline mode is on; "
                    f"cached: {self.cache.describe()}"
                )
            return max(cached)
        try:
            return self.remote().pick(pid, None)
        except ZooUnreachableError as e:
            return newest_cached(e, cached, lambda v: format_ref(pid, v), stacklevel=4)

    def _cached_manifest(self, pid: str, version: int, mpath: Path) -> Manifest | None:
        """The cached manifest if it is the one the index named, else ``None`` (it is then re-fetched).

        The index's hash recorded at fetch time is checked on every load (a pinned load never asks
        the index); an index fetched in this session is checked too. Offline, an unusable cached
        manifest is an error.
        """
        if not mpath.is_file():
            return None
        ref = format_ref(pid, version)
        got = sha256_file(mpath)
        index = self._remote.fetched_index if self._remote is not None else None  # no extra request
        entry = index.populations.get(pid, {}).get(version) if index is not None else None
        recorded = self.cache.manifest_sha256(pid, version)
        problem = None
        if entry is not None and got != entry.manifest_sha256:
            problem = f"its sha256 is {got}, the index says {entry.manifest_sha256}"
        elif recorded is None and entry is None:
            problem = f"no index hash is recorded beside it ({MANIFEST_HASH})"
        elif recorded is not None and got != recorded:
            problem = f"its sha256 is {got}, the index said {recorded} when it was fetched (edited since?)"
        if problem is None:
            try:
                return read_manifest(mpath.parent)
            except PopulationError as e:
                problem = str(e)
        if self.offline and self.uses_network:
            raise ChecksumError(
                f"cached manifest {mpath} is not the one the index named ({problem}) and offline mode is on"
            )
        warnings.warn(
            f"cached manifest of {ref} is unusable ({problem}); re-fetching it", PopulationWarning, stacklevel=5
        )
        return None

    def _fetch(self, rel: str, target: Path, sha256: str) -> None:
        """One file from the remote into the cache; a failed write is a :class:`CacheError`."""
        try:
            self.remote().fetch(rel, target, sha256)
        except OSError as e:
            raise cache_os_error(e, f"writing {target}") from None

    def _materialise(self, pid: str, version: int) -> Population:
        with self.cache.lock(pid, version) as writable:
            if not writable:
                return self._read_only(pid, version)
            return self._pull(pid, version)

    def _read_only(self, pid: str, version: int) -> Population:
        """A version in a cache the user cannot write: loads only if whole and verified."""
        dest = self.cache.path_of(pid, version)
        ref = format_ref(pid, version)
        fix = f"ask its owner to run `rqe zoo pull {ref}`, or set {ENV_CACHE} to a directory you can write"
        manifest = self._cached_manifest(pid, version, dest / MANIFEST_NAME) if self.cache.has(pid, version) else None
        if manifest is None:
            raise CacheError(f"{ref} is not whole in the read-only cache {self.cache_dir}; {fix}")
        bad = find_bad_files(manifest, dest, symlinks=False)
        if bad:
            raise ChecksumError(f"{dest / cast(str, bad[0][0].file)} in the read-only cache is {bad[0][1]}; {fix}")
        return Population(manifest, dest)

    def _pull(self, pid: str, version: int) -> Population:
        """Under the lock: check what is cached, fetch what is missing or wrong, mark the version whole."""
        dest = self.cache.path_of(pid, version)
        mpath = dest / MANIFEST_NAME
        manifest = None if mpath.is_symlink() else self._cached_manifest(pid, version, mpath)
        self.cache.sweep(pid, version, keep={e.file for e in manifest.members if e.file} if manifest else set())
        from_cache = manifest is not None
        if manifest is not None and self.cache.manifest_sha256(pid, version) is None:
            self.cache.record_manifest_sha256(pid, version, sha256_file(mpath))  # it matched the index
        if manifest is None:
            manifest = self._fetch_manifest(pid, version, mpath)
        bad = find_bad_files(manifest, dest, symlinks=False)
        if bad:
            self.cache.mark_incomplete(pid, version)
        for entry, problem in bad:
            self._repair(pid, version, dest / cast(str, entry.file), cast(str, entry.sha256), problem, from_cache)
        if bad or not self.cache.has(pid, version):
            self.cache.mark_complete(pid, version)
        return Population(manifest, dest)

    def _fetch_manifest(self, pid: str, version: int, mpath: Path) -> Manifest:
        """The manifest from the remote, checked against the index's hash, with that hash kept beside it."""
        ref = format_ref(pid, version)
        had_manifest = mpath.exists() or mpath.is_symlink()
        self.cache.mark_incomplete(pid, version)
        try:
            remote = self.remote()
            remote.pick(pid, version)
            sha = remote.index().populations[pid][version].manifest_sha256
            if mpath.is_symlink():
                mpath.unlink()  # the link only, never what it points to
            self._fetch(f"{pid}/{version}/{MANIFEST_NAME}", mpath, sha)
        except CacheError:
            raise
        except PopulationError as e:
            if not had_manifest:
                raise
            raise PopulationError(f"cached manifest {mpath} is unusable and re-fetching it failed: {e}") from None
        self.cache.record_manifest_sha256(pid, version, sha)
        manifest = read_manifest(mpath.parent)
        if (manifest.id, manifest.version) != (pid, version):
            for name in (MANIFEST_NAME, MANIFEST_HASH):
                (mpath.parent / name).unlink(missing_ok=True)
            raise PopulationError(
                f"{mpath} declares {manifest.ref}, but it was fetched as {ref}; it was removed from the cache"
            )
        return manifest

    def _repair(self, pid: str, version: int, target: Path, sha256: str, problem: str, from_cache: bool) -> None:
        """Fetch one missing or corrupt member file; errors say what was cached and why the repair failed."""
        if problem != "missing":
            warnings.warn(
                f"cached file {target} is corrupt ({problem}); re-fetching it", PopulationWarning, stacklevel=5
            )
        try:
            if target.is_symlink():
                target.unlink()  # the link only, never what it points to
            self._fetch(f"{pid}/{version}/{target.name}", target, sha256)
        except CacheError:
            raise
        except PopulationError as e:
            if problem == "missing" and not from_cache:
                raise
            if problem == "missing":
                raise PopulationError(
                    f"{format_ref(pid, version)} is only partly cached ({target} is missing) and fetching it "
                    f"failed: {e}"
                ) from None
            raise ChecksumError(f"cached file {target} is corrupt ({problem}) and re-fetching it failed: {e}") from None

    # -- verification --
    def verify(self, target: str | None = None, *, load: bool = False) -> list[tuple[str, str | None]]:
        """Check cached (or local) populations without repairing them: ``[(label, problem or None)]``.

        ``target``: ``None`` (everything cached), an id (every cached version), ``id@version``, or a
        local population directory. ``load=True`` also builds every member's policy.
        """
        if target is not None and Path(target).expanduser().exists():
            return [verify_directory(find_population_dir(Path(target).expanduser()), load=load)]
        if target is None:
            found = self.cache.entries()
        else:
            if target.startswith(HUB_SCHEME):
                repo_id, version = parse_hub_ref(target)
                pid = format_hub_ref(repo_id)
            else:
                pid, version = parse_ref(target)
            versions = [version] if version is not None else self.cache.versions(pid)
            found = [(pid, v, self.cache.path_of(pid, v)) for v in versions if self.cache.has(pid, v)]
            if not found:
                return [(target, f"not in the cache ({self.cache_dir}); cached: {self.cache.describe()}")]
        return [verify_directory(path, load=load) for _, _, path in found]


def load_population(
    id_or_path: str | os.PathLike,
    version: int | None = None,
    *,
    url: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    offline: bool | None = None,
    progressbar: bool | None = None,
) -> Population:
    """Load a population by id (``"tag/runners"``, ``"tag/runners@2"``), from a local directory, or from
    the Hugging Face Hub (``"hf://org/name@1"``: :func:`rqe_wrappers.zoo.hub_client.load_hub_population`).

    Downloads once into the user cache, verifies every file's sha256 on every load, and never
    unpickles anything. See the module docstring for the resolution order and
    :class:`ZooClient` for the keyword arguments (they override the ``RQE_ZOO_*`` variables).

    Example:
        >>> pop = load_population("tag/runners")          # doctest: +SKIP
        >>> model = pop["runner-3"].to_sb3()               # doctest: +SKIP
        >>> policy = pop["runner-3"].policy()              # doctest: +SKIP
    """
    if not isinstance(id_or_path, (str, os.PathLike)):
        raise ConfigError(f"load_population needs an id or a path, got {type(id_or_path).__name__}")
    if version is not None:
        version = check_version(version)
    if isinstance(id_or_path, str) and id_or_path.startswith(HUB_SCHEME):
        if url is not None:
            raise ConfigError(f"{id_or_path!r} is on the Hugging Face Hub: url= does not apply (set HF_ENDPOINT)")
        from rqe_wrappers.zoo.hub_client import load_hub_population

        return load_hub_population(id_or_path, version, cache_dir=cache_dir, offline=offline)
    path = Path(id_or_path).expanduser()
    if isinstance(id_or_path, os.PathLike) or path.exists():
        if not path.exists():
            raise PopulationError(f"{path} does not exist")
        population = open_population(find_population_dir(path, version))
        if version is not None and population.version != version:
            raise PopulationError(f"{path} holds {population.ref}, not version {version}")
        return population
    try:
        pid, ref_version = parse_ref(str(id_or_path))
    except PopulationError as e:
        raise PopulationError(f"{id_or_path!r} is neither an existing directory nor a population id: {e}") from None
    if version is not None and ref_version is not None and version != ref_version:
        raise ConfigError(f"{id_or_path!r} pins version {ref_version} but version={version} was passed")
    client = ZooClient(url, cache_dir, offline=offline, progressbar=progressbar)
    return client.load(pid, version if version is not None else ref_version)


_ZOO = "rqe_wrappers.zoo"
__getattr__ = moved_names(
    f"{_ZOO}.client",
    {
        **dict.fromkeys(
            (
                "ENV_CACHE",
                "ENV_TIMEOUT",
                "ENV_CONFIG",
                "DEFAULT_TIMEOUT",
                "checkout_populations",
                "config_path",
                "config_url",
            ),
            f"{_ZOO}.config",
        ),
        "LOCK_TIMEOUT": f"{_ZOO}.cache",
        "FileDownloader": f"{_ZOO}.remotes",
    },
)
