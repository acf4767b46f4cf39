"""The zoo client: find a population, download it once, verify it on every load, cache it.

Resolution order of :func:`load_population` (docs/zoo.md has the long form):

1. an existing local path: a population directory ``<root>/<id>/<version>/`` (or its
   ``manifest.json``, or ``<root>/<id>/`` holding version directories) is loaded in place;
2. otherwise an id (``"tag/runners"``, ``"tag/runners@2"``) is looked up in the user cache
   (``RQE_ZOO_CACHE``, default ``platformdirs.user_cache_dir("rqe-wrappers")/zoo``);
3. and fetched from the remote zoo (``RQE_ZOO_URL``; default the ``populations/`` folder of the
   checkout this package is installed from, as a ``file://`` URL) when missing or corrupt.

A pinned version (``id@version``) that is cached loads without touching the network; an unpinned
one asks the remote's ``index.json`` for the newest version and falls back to the newest cached
version (with a warning) when the remote cannot be reached. ``RQE_ZOO_OFFLINE=1`` never uses the
network. Every file's sha256 is checked on every load; downloads go through pooch (temporary file
+ rename, so a cut-off download leaves nothing behind) under one ``filelock.FileLock`` per
population version, so concurrent pulls never see or write half a population.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from rqe_wrappers.errors import ChecksumError, ConfigError, PopulationError
from rqe_wrappers.zoo.manifest import (
    INDEX_NAME,
    MANIFEST_NAME,
    Index,
    check_version,
    format_ref,
    parse_ref,
)
from rqe_wrappers.zoo.members import check_safetensors_bytes, sha256_file
from rqe_wrappers.zoo.population import Population, find_bad_files, open_population, read_manifest

ENV_URL = "RQE_ZOO_URL"
ENV_CACHE = "RQE_ZOO_CACHE"
ENV_OFFLINE = "RQE_ZOO_OFFLINE"
ENV_TIMEOUT = "RQE_ZOO_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
LOCK_TIMEOUT = 600.0


class PopulationWarning(UserWarning):
    """Something was repaired or fell back (a corrupt cached file re-fetched, an offline fallback)."""


# ---- configuration ------------------------------------------------------------------------------
def checkout_populations() -> Path | None:
    """The ``populations/`` folder of the source checkout this package runs from, if there is one."""
    import rqe_wrappers

    candidate = Path(rqe_wrappers.__file__).resolve().parent.parent / "populations"
    return candidate if candidate.is_dir() else None


ENV_CONFIG = "RQE_ZOO_CONFIG"


def config_path() -> Path:
    """``$RQE_ZOO_CONFIG``, else ``platformdirs.user_config_dir("rqe-wrappers")/zoo.toml``."""
    env = os.environ.get(ENV_CONFIG, "").strip()
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("rqe-wrappers")) / "zoo.toml"


def config_url() -> str | None:
    """The ``url = "..."`` entry of the zoo config file, if the file exists (TOML, read as data)."""
    path = config_path()
    if not path.is_file():
        return None
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"zoo config {path}: not valid TOML ({e}); expected a line like url = \"https://...\"") from None
    url = data.get("url")
    if url is not None and not isinstance(url, str):
        raise ConfigError(f"zoo config {path}: 'url' must be a string, got {type(url).__name__}")
    return url.strip() or None if url else None


def default_url() -> str | None:
    """``$RQE_ZOO_URL``, else the config file's ``url``, else the checkout's ``populations/``, else ``None``."""
    url = os.environ.get(ENV_URL, "").strip() or config_url()
    if url:
        return normalize_url(url)
    local = checkout_populations()
    return local.as_uri() if local else None


def normalize_url(url: str | os.PathLike) -> str:
    """Local paths become file:// URLs; http(s):// and file:// pass through (without a trailing slash)."""
    text = os.fspath(url).strip()
    scheme = urlparse(text).scheme.lower()
    if scheme in ("http", "https", "file"):
        return text.rstrip("/")
    if scheme and len(scheme) > 1:  # (one letter: a Windows drive)
        raise ConfigError(f"zoo URL {text!r}: use http(s)://, file:// or a local directory")
    return Path(text).expanduser().resolve().as_uri()


def default_cache_dir() -> Path:
    """``$RQE_ZOO_CACHE``, else ``platformdirs.user_cache_dir("rqe-wrappers")/zoo``."""
    env = os.environ.get(ENV_CACHE, "").strip()
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("rqe-wrappers")) / "zoo"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _short_reason(exc: BaseException) -> str:
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if m:
        return m.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    return text if len(text) < 160 else f"{type(exc).__name__}"


# ---- downloads ----------------------------------------------------------------------------------
class ZooUnreachableError(PopulationError):
    """The remote zoo could not be contacted at all (no server, no network, no such folder)."""


class FileDownloader:
    """A pooch downloader for file:// URLs (pooch itself speaks http, ftp, sftp and doi)."""

    def __call__(self, url: str, output_file: Any, pooch: Any, check_only: bool = False):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"{url}: file:// URLs must name a local path (file:///...)")
        src = Path(url2pathname(parsed.path))
        if check_only:
            return src.is_file()
        if isinstance(output_file, (str, os.PathLike)):
            shutil.copyfile(src, output_file)
        else:
            with open(src, "rb") as f:
                shutil.copyfileobj(f, output_file)
        return None


class _Hashing:
    """Wraps a pooch downloader and remembers the sha256 of what it wrote (for error messages)."""

    def __init__(self, inner):
        self.inner = inner
        self.sha256: str | None = None

    def __call__(self, url, output_file, pooch, check_only=False):
        if check_only:
            return self.inner(url, output_file, pooch, check_only=True)
        self.inner(url, output_file, pooch)
        if isinstance(output_file, (str, os.PathLike)):
            self.sha256 = sha256_file(output_file)
        return None


@dataclass
class Remote:
    """The remote zoo: ``<url>/index.json`` and ``<url>/<id>/<version>/<file>``."""

    url: str
    timeout: float = DEFAULT_TIMEOUT
    progressbar: bool = False

    def __post_init__(self):
        self.url = normalize_url(self.url)
        self._index: Index | None = None

    def url_of(self, rel: str) -> str:
        return f"{self.url}/{rel}"

    def offline_help(self, reason: str) -> str:
        return (
            f"cannot reach the population zoo at {self.url} ({reason}). To work offline: set {ENV_URL} to a "
            "local directory or file:// URL holding the populations (e.g. a checkout's populations/ folder), "
            "or pass a local population directory to load_population(); cached populations load without "
            f"the network when pinned ('ID@VERSION') or with {ENV_OFFLINE}=1."
        )

    def _downloader(self, progressbar: bool):
        if urlparse(self.url).scheme == "file":
            return FileDownloader()
        import pooch

        return pooch.HTTPDownloader(progressbar=progressbar, timeout=self.timeout)

    @contextmanager
    def _errors(self, url: str, sha256: str | None, downloader: _Hashing):
        import requests

        try:
            yield
        except FileNotFoundError:
            if urlparse(self.url).scheme == "file" and not Path(url2pathname(urlparse(self.url).path)).is_dir():
                raise ZooUnreachableError(self.offline_help("no such directory")) from None
            raise PopulationError(f"{url}: not found (the zoo lists a file it does not have)") from None
        except requests.exceptions.HTTPError as e:
            status = e.response.status_code if e.response is not None else "?"
            raise PopulationError(f"{url}: HTTP {status} ({_short_reason(e)})") from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as e:
            raise PopulationError(
                f"the download of {url} was cut off ({_short_reason(e)}); nothing was written to the cache. "
                "Run it again; if it keeps failing the server or the network is at fault."
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
            raise ZooUnreachableError(self.offline_help(_short_reason(e))) from None
        except requests.exceptions.RequestException as e:
            raise PopulationError(f"the download of {url} failed: {_short_reason(e)}") from None
        except ValueError:
            if sha256 is None or downloader.sha256 is None:
                raise
            raise ChecksumError(
                f"{url}: the downloaded file's sha256 is {downloader.sha256}, the manifest says {sha256}; "
                "the remote copy is corrupt or was changed after publishing. Nothing was written to the cache."
            ) from None
        except PermissionError:
            raise
        except OSError as e:
            if urlparse(self.url).scheme == "file":
                raise ZooUnreachableError(self.offline_help(_short_reason(e))) from None
            raise

    def fetch(self, rel: str, dest: Path, sha256: str | None) -> Path:
        """Download ``<url>/<rel>`` to ``dest`` (atomically; verified against ``sha256``)."""
        import pooch

        url = self.url_of(rel)
        downloader = _Hashing(self._downloader(self.progressbar))
        with self._errors(url, sha256, downloader):
            pooch.retrieve(
                url,
                known_hash=f"sha256:{sha256}" if sha256 else None,
                fname=dest.name,
                path=dest.parent,
                downloader=downloader,
                progressbar=self.progressbar,
            )
        return dest

    def read(self, rel: str) -> bytes:
        """The bytes of ``<url>/<rel>`` (small files such as the index), through the same downloader."""
        url = self.url_of(rel)
        downloader = _Hashing(self._downloader(False))
        with tempfile.TemporaryDirectory(prefix="rqe-zoo-") as tmp:
            out = Path(tmp) / "download"
            with self._errors(url, None, downloader):
                downloader(url, str(out), None)
            return out.read_bytes()

    def index(self) -> Index:
        """The remote's ``index.json`` (fetched once per :class:`Remote`)."""
        if self._index is None:
            try:
                data = self.read(INDEX_NAME)
            except ZooUnreachableError:
                raise
            except PopulationError as e:
                raise PopulationError(
                    f"{self.url} is not a population zoo: cannot read its {INDEX_NAME} ({e}). "
                    f"A zoo root has one; generate it with `rqe zoo index <dir>`."
                ) from None
            self._index = Index.loads(data, self.url_of(INDEX_NAME))
        return self._index

    @property
    def fetched_index(self) -> Index | None:
        """The index if it was already fetched (no request)."""
        return self._index

    def pick(self, pid: str, version: int | None) -> int:
        """The version to load, or an error that lists what the zoo has."""
        index = self.index()
        if pid not in index.populations:
            if pid in index.renamed:
                raise PopulationError(f"population {pid!r} was renamed to {index.renamed[pid]!r}; load that id instead")
            raise PopulationError(f"unknown population {pid!r} at {self.url}; available: {index.describe()}")
        versions = index.versions(pid)
        if version is None:
            return max(versions)
        if version not in versions:
            raise PopulationError(
                f"population {pid!r} has no version {version} at {self.url}; available versions: {versions}"
            )
        return version


# ---- the client ---------------------------------------------------------------------------------
class ZooClient:
    """Cache + remote. ``load_population`` makes one from the environment variables; the CLI too.

    ``url`` / ``cache_dir`` / ``offline`` / ``timeout`` default to ``$RQE_ZOO_URL`` (or the checkout's
    populations/), ``$RQE_ZOO_CACHE`` (or the platform's user cache), ``$RQE_ZOO_OFFLINE`` and
    ``$RQE_ZOO_TIMEOUT`` (30 s). ``progressbar`` defaults to on when tqdm is installed.
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
        self.cache_dir = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()).absolute()
        self.offline = _env_flag(ENV_OFFLINE) if offline is None else bool(offline)
        if progressbar is None:
            try:
                import tqdm  # noqa: F401

                progressbar = True
            except ImportError:
                progressbar = False
        self.progressbar = progressbar
        if timeout is None:
            text = os.environ.get(ENV_TIMEOUT, "").strip() or str(DEFAULT_TIMEOUT)
            try:
                timeout = float(text)
            except ValueError:
                raise ConfigError(f"{ENV_TIMEOUT} must be a number of seconds, got {text!r}") from None
        if not timeout > 0:
            raise ConfigError(f"the download timeout must be > 0 seconds, got {timeout}")
        self.timeout = float(timeout)
        self._remote: Remote | None = None

    # -- remote --
    def remote(self) -> Remote:
        if self.offline:
            raise PopulationError(f"offline mode is on ({ENV_OFFLINE} or offline=True): the remote zoo is not used")
        if self.url is None:
            raise PopulationError(
                f"no population zoo configured: set {ENV_URL} to an http(s)://, file:// URL or a local directory "
                "holding populations, or pass a local population directory to load_population()"
            )
        if self._remote is None:
            self._remote = Remote(self.url, timeout=self.timeout, progressbar=self.progressbar)
        return self._remote

    # -- cache --
    def path_of(self, pid: str, version: int) -> Path:
        return self.cache_dir.joinpath(*pid.split("/"), str(version))

    def cached_versions(self, pid: str) -> list[int]:
        base = self.cache_dir.joinpath(*pid.split("/"))
        if not base.is_dir():
            return []
        return sorted(int(p.name) for p in base.iterdir() if p.name.isdigit() and (p / MANIFEST_NAME).is_file())

    def cached(self) -> list[tuple[str, int, Path]]:
        """Every cached ``(id, version, directory)``."""
        out = []
        if not self.cache_dir.is_dir():
            return out
        for manifest in sorted(self.cache_dir.rglob(MANIFEST_NAME)):
            rel = manifest.parent.relative_to(self.cache_dir).parts
            if len(rel) >= 2 and rel[-1].isdigit() and not any(p.startswith(".") for p in rel):
                out.append(("/".join(rel[:-1]), int(rel[-1]), manifest.parent))
        return out

    @contextmanager
    def lock(self, pid: str, version: int):
        """The per-population-version lock every cache write and check happens under."""
        from filelock import FileLock, Timeout

        path = self.path_of(pid, version)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.parent / f"{version}.lock"
        try:
            with FileLock(str(lock_path), timeout=LOCK_TIMEOUT):
                yield
        except Timeout:
            raise PopulationError(
                f"another process has held {lock_path} for {LOCK_TIMEOUT:.0f} s; if no pull is running, delete it"
            ) from None

    # -- loading --
    def load(self, pid: str, version: int | None = None) -> Population:
        """Load ``pid`` (at ``version``, else the newest) from the cache, fetching what is missing."""
        if version is None:
            version = self._choose_version(pid)
        elif not (self.path_of(pid, version) / MANIFEST_NAME).is_file():
            if self.offline:
                raise PopulationError(
                    f"{format_ref(pid, version)} is not in the cache ({self.cache_dir}) and offline mode is on; "
                    f"cached: {self._describe_cached()}"
                )
            version = self.remote().pick(pid, version)
        return self._materialise(pid, version)

    def _describe_cached(self) -> str:
        cached = self.cached()
        return ", ".join(format_ref(p, v) for p, v, _ in cached) or "nothing"

    def _choose_version(self, pid: str) -> int:
        cached = self.cached_versions(pid)
        if self.offline:
            if not cached:
                raise PopulationError(
                    f"population {pid!r} is not in the cache ({self.cache_dir}) and offline mode is on; "
                    f"cached: {self._describe_cached()}"
                )
            return max(cached)
        try:
            return self.remote().pick(pid, None)
        except ZooUnreachableError as e:
            if not cached:
                raise
            warnings.warn(f"{e} Using the newest cached version, {format_ref(pid, max(cached))}.", PopulationWarning, stacklevel=3)
            return max(cached)

    def _cached_manifest(self, pid: str, version: int, mpath: Path):
        """The cached manifest, or ``None`` when absent or unusable (it is then re-fetched)."""
        if not mpath.is_file():
            return None
        ref = format_ref(pid, version)
        index = self._remote.fetched_index if self._remote is not None else None  # no extra request
        entry = index.populations.get(pid, {}).get(version) if index is not None else None
        if entry is not None and sha256_file(mpath) != entry.manifest_sha256:
            warnings.warn(f"cached manifest of {ref} differs from the remote's; re-fetching it", PopulationWarning, stacklevel=4)
            return None
        try:
            return read_manifest(mpath.parent)
        except PopulationError as e:
            if self.offline:
                raise
            warnings.warn(f"cached manifest of {ref} is unusable ({e}); re-fetching it", PopulationWarning, stacklevel=4)
            return None

    def _materialise(self, pid: str, version: int) -> Population:
        ref = format_ref(pid, version)
        dest = self.path_of(pid, version)
        mpath = dest / MANIFEST_NAME
        with self.lock(pid, version):
            had_manifest = mpath.is_file()
            manifest = self._cached_manifest(pid, version, mpath)
            if manifest is None:
                try:
                    remote = self.remote()
                    remote.pick(pid, version)
                    sha = remote.index().populations[pid][version].manifest_sha256
                    remote.fetch(f"{pid}/{version}/{MANIFEST_NAME}", mpath, sha)
                except PopulationError as e:
                    if not had_manifest:
                        raise
                    raise PopulationError(f"cached manifest {mpath} is unusable and re-fetching it failed: {e}") from None
                manifest = read_manifest(dest)
                from_cache = False
            else:
                from_cache = True
            if (manifest.id, manifest.version) != (pid, version):
                raise PopulationError(f"{mpath} declares {manifest.ref}, but it was fetched as {ref}")
            for entry, problem in find_bad_files(manifest, dest):
                target = dest / entry.file
                if problem != "missing":
                    warnings.warn(f"cached file {target} is corrupt ({problem}); re-fetching it", PopulationWarning, stacklevel=3)
                try:
                    self.remote().fetch(f"{pid}/{version}/{entry.file}", target, entry.sha256)
                except PopulationError as e:
                    if problem == "missing" and not from_cache:
                        raise
                    if problem == "missing":
                        raise PopulationError(f"{ref} is only partly cached ({target} is missing) and fetching it failed: {e}") from None
                    raise ChecksumError(f"cached file {target} is corrupt ({problem}) and re-fetching it failed: {e}") from None
            return Population(manifest, dest)

    # -- verification --
    def verify(self, target: str | None = None, *, load: bool = False) -> list[tuple[str, str | None]]:
        """Check cached (or local) populations without repairing them: ``[(label, problem or None)]``.

        ``target``: ``None`` (everything cached), an id (every cached version), ``id@version``, or a
        local population directory. ``load=True`` also builds every member's policy.
        """
        if target is not None and Path(target).expanduser().exists():
            return [verify_directory(_local_population_dir(Path(target).expanduser(), None), load=load)]
        if target is None:
            found = self.cached()
        else:
            pid, version = parse_ref(target)
            versions = [version] if version is not None else self.cached_versions(pid)
            found = [(pid, v, self.path_of(pid, v)) for v in versions if (self.path_of(pid, v) / MANIFEST_NAME).is_file()]
            if not found:
                return [(target, f"not in the cache ({self.cache_dir}); cached: {self._describe_cached()}")]
        return [verify_directory(path, load=load) for _, _, path in found]


def verify_directory(directory: Path, *, load: bool = False) -> tuple[str, str | None]:
    """``(label, problem or None)`` for one population directory: schema, sha256s, safetensors headers."""
    try:
        manifest = read_manifest(directory)
    except PopulationError as e:
        return str(directory), str(e)
    label = f"{manifest.ref} ({directory})"
    bad = find_bad_files(manifest, directory)
    if bad:
        entry, problem = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        return label, f"{entry.file}: {problem}{more}"
    try:
        for entry in manifest.members:
            if entry.file:
                with open(directory / entry.file, "rb") as f:
                    check_safetensors_bytes(f.read(1 << 16), str(directory / entry.file))
        if load:
            population = Population(manifest, directory)
            for member in population.values():
                member.policy()
    except (PopulationError, ConfigError) as e:
        return label, str(e)
    return label, None


def _local_population_dir(path: Path, version: int | None) -> Path:
    if path.is_file() and path.name == MANIFEST_NAME:
        path = path.parent
    if (path / MANIFEST_NAME).is_file():
        return path
    versions = sorted(int(p.name) for p in path.iterdir() if p.name.isdigit() and (p / MANIFEST_NAME).is_file()) if path.is_dir() else []
    if versions:
        if version is None:
            return path / str(max(versions))
        if version not in versions:
            raise PopulationError(f"{path} has no version {version}; it has versions {versions}")
        return path / str(version)
    if (path / INDEX_NAME).is_file():
        raise PopulationError(
            f"{path} is a zoo root, not a population: pass an id and set {ENV_URL}={path} "
            "(or pass the population's directory <root>/<id>/<version>)"
        )
    raise PopulationError(f"{path} is not a population directory (no {MANIFEST_NAME}, no version directories)")


def load_population(
    id_or_path: str | os.PathLike,
    version: int | None = None,
    *,
    url: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    offline: bool | None = None,
    progressbar: bool | None = None,
) -> Population:
    """Load a population by id (``"tag/runners"``, ``"tag/runners@2"``) or from a local directory.

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
    path = Path(id_or_path).expanduser()
    if isinstance(id_or_path, os.PathLike) or path.exists():
        if not path.exists():
            raise PopulationError(f"{path} does not exist")
        population = open_population(_local_population_dir(path, version))
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
