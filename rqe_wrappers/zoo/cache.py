"""The local cache of downloaded populations: ``<cache>/<id>/<version>/``, one lock per version.

Files arrive in the cache only whole and verified (the remote writes a temporary file next to its
destination and renames it into place); every check and write of one population version happens
under its ``filelock.FileLock`` (``<cache>/<id>/<version>.lock``), so concurrent pulls never see or
write half a population. Beside each cached manifest, ``.manifest.sha256`` keeps the index's hash of
it (checked on every load, so an edited manifest is never trusted) and ``.complete`` says that every
member file arrived and was verified (a pull killed half-way is not listed as cached). Nothing is
written through a symbolic link, and a cache that is complete but not writable (a shared, read-only
cache) is read without its lock. Populations pulled from the Hugging Face Hub (``hf://org/name``)
live in ``<cache>/_hf/<org>/<name>/<version>/`` (``_hf`` cannot be a population id). docs/zoo.md
("Caching, integrity and locking") and docs/security.md ("The cache").
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rqe_wrappers.errors import CacheError
from rqe_wrappers.zoo.manifest import MANIFEST_NAME
from rqe_wrappers.zoo.refs import format_ref, is_version_text

#: seconds to wait for another process's pull of the same population version
LOCK_TIMEOUT = 600.0
#: ``hf://`` keys of the cache, and the cache folder that holds them
HUB_PREFIX = "hf://"
HUB_DIR = "_hf"
#: beside a cached manifest: the sha256 the index gave for it
MANIFEST_HASH = ".manifest.sha256"
#: in a cached version directory: every member file arrived and was verified
COMPLETE = ".complete"
#: temporary files a killed download leaves (``tempfile``'s names, which pooch uses)
_TEMP_FILE = re.compile(r"tmp[a-z0-9_]{8}\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)
_FULL = (errno.ENOSPC, errno.EDQUOT)


def newest_cached(error: Exception, cached: list[int], ref: Callable[[int], str], stacklevel: int) -> int:
    """The newest cached version when the zoo cannot be reached (warns naming it), else raise ``error``."""
    if not cached:
        raise error
    warnings.warn(
        f"{error} Using the newest cached version, {ref(max(cached))}.", PopulationWarning, stacklevel=stacklevel
    )
    return max(cached)


class PopulationWarning(UserWarning):
    """Something was repaired or fell back (a corrupt cached file re-fetched, an offline fallback)."""


def cache_os_error(error: OSError, doing: str) -> CacheError:
    """A typed error for a failed cache write: a full disk, a cache that is not writable, or else."""
    where = f" ({error.filename})" if error.filename else ""
    if error.errno in _FULL:
        return CacheError(
            f"no space left on the device{where} while {doing}; nothing half-written was kept. Free some space, "
            "or set RQE_ZOO_CACHE to a directory on another disk"
        )
    if error.errno in _READ_ONLY:
        return CacheError(
            f"cannot write{where} while {doing}: {error.strerror}. Set RQE_ZOO_CACHE to a directory you can "
            "write (a complete cached population in a read-only cache still loads)"
        )
    return CacheError(f"{doing} failed: {error.strerror or error}{where}")


def _umask() -> int:
    """The process's umask, read without changing it where the platform allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # pragma: no cover - not Linux
    os.umask(mask)
    return mask


def _parts(key: str) -> list[str]:
    """``"tag/runners"`` -> ``["tag", "runners"]``; ``"hf://org/name"`` -> ``["_hf", "org", "name"]``."""
    if key.startswith(HUB_PREFIX):
        return [HUB_DIR, *key[len(HUB_PREFIX) :].split("/")]
    return key.split("/")


class ZooCache:
    """The populations under one cache directory, keyed by id or ``hf://org/name`` (validated before they get here)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def path_of(self, pid: str, version: int) -> Path:
        """``<cache>/<id>/<version>``."""
        return self.directory.joinpath(*_parts(pid), str(version))

    def has_manifest(self, pid: str, version: int) -> bool:
        """Whether the version's manifest is cached (the version may be only partly pulled)."""
        return (self.path_of(pid, version) / MANIFEST_NAME).is_file()

    def has(self, pid: str, version: int) -> bool:
        """Whether the version was pulled whole (its files are still checked on every load)."""
        path = self.path_of(pid, version)
        return (path / MANIFEST_NAME).is_file() and (path / COMPLETE).is_file()

    def versions(self, pid: str) -> list[int]:
        """The versions of ``pid`` pulled whole, oldest first."""
        base = self.directory.joinpath(*_parts(pid))
        if not base.is_dir():
            return []
        return sorted(int(p.name) for p in base.iterdir() if is_version_text(p.name) and self.has(pid, int(p.name)))

    def entries(self) -> list[tuple[str, int, Path]]:
        """Every ``(id, version, directory)`` pulled whole."""
        out: list[tuple[str, int, Path]] = []
        if not self.directory.is_dir():
            return out
        for manifest in sorted(self.directory.rglob(MANIFEST_NAME)):
            rel = manifest.parent.relative_to(self.directory).parts
            if len(rel) >= 2 and is_version_text(rel[-1]) and not any(p.startswith(".") for p in rel):
                if not (manifest.parent / COMPLETE).is_file():
                    continue
                key = "/".join(rel[:-1])
                if rel[0] == HUB_DIR:
                    key = HUB_PREFIX + "/".join(rel[1:-1])
                out.append((key, int(rel[-1]), manifest.parent))
        return out

    def describe(self) -> str:
        """``"tag/runners@1, ipd/train@1"`` or ``"nothing"``."""
        return ", ".join(format_ref(p, v) for p, v, _ in self.entries()) or "nothing"

    # -- integrity ------------------------------------------------------------------------------
    def check_layout(self, pid: str, version: int) -> None:
        """Refuse a version directory reached through a symbolic link below the cache directory.

        A re-fetch would write wherever the link points; the cache directory itself may be a link.
        """
        path = self.directory
        for part in [*_parts(pid), str(version)]:
            path = path / part
            if path.is_symlink():
                raise CacheError(
                    f"{path} is a symbolic link; the zoo cache never writes through one (it may point outside "
                    f"{self.directory}). Remove the link (`rm {path}`) and load again"
                )
            if path.exists() and not path.is_dir():
                raise CacheError(f"{path} is not a directory; remove it and load again")

    def manifest_sha256(self, pid: str, version: int) -> str | None:
        """The index's sha256 of the cached manifest, as recorded when it was fetched (``None``: none recorded)."""
        try:
            text = (self.path_of(pid, version) / MANIFEST_HASH).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if _SHA256.match(text) else None

    def record_manifest_sha256(self, pid: str, version: int, sha256: str) -> None:
        """Keep the index's hash of the manifest beside it (written atomically)."""
        self._write(self.path_of(pid, version) / MANIFEST_HASH, sha256 + "\n", "recording the manifest's hash")

    def mark_complete(self, pid: str, version: int) -> None:
        """Every file of the version arrived and was verified: list it as cached; files readable as the umask allows."""
        path = self.path_of(pid, version)
        mask = _umask()
        try:
            for item in [path, *path.iterdir()]:
                if not item.is_symlink():
                    os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~mask)
        except OSError as e:
            raise cache_os_error(e, f"setting the modes of {path}") from None
        self._write(path / COMPLETE, "", "marking the pull complete")

    def mark_incomplete(self, pid: str, version: int) -> None:
        """A pull into the version starts: it is not listed as cached until :meth:`mark_complete`."""
        try:
            (self.path_of(pid, version) / COMPLETE).unlink(missing_ok=True)
        except OSError as e:
            raise cache_os_error(e, "starting a pull") from None

    def sweep(self, pid: str, version: int, keep: set[str]) -> list[Path]:
        """Remove what killed pulls of the version left: temporary files and Hub staging directories."""
        path = self.path_of(pid, version)
        stale: list[Path] = []
        if path.is_dir():
            stale += [p for p in path.iterdir() if _TEMP_FILE.match(p.name) and p.name not in keep]
        if path.parent.is_dir():
            stale += [p for p in path.parent.glob(f".{version}.*.tmp")]
        for p in stale:
            try:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
            except OSError as e:
                raise cache_os_error(e, f"removing {p}, left by an interrupted pull") from None
        return stale

    def _write(self, target: Path, text: str, doing: str) -> None:
        tmp = target.with_name(target.name + ".new")
        try:
            tmp.write_text(text, encoding="ascii")
            os.replace(tmp, target)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise cache_os_error(e, doing) from None

    @contextmanager
    def lock(self, pid: str, version: int) -> Iterator[bool]:
        """Hold the version's lock; yields whether the cache is writable.

        A cache the user cannot write (a shared, read-only cache) yields ``False`` without a lock:
        the caller may then only read a complete version.
        """
        from filelock import FileLock, Timeout

        path = self.path_of(pid, version)
        lock_path = path.parent / f"{version}.lock"
        lock = FileLock(str(lock_path), timeout=LOCK_TIMEOUT)
        self.check_layout(pid, version)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except Timeout:
            raise CacheError(
                f"another process has held {lock_path} for {LOCK_TIMEOUT:.0f} s; if no pull is running, delete it"
            ) from None
        except OSError as e:
            if e.errno not in _READ_ONLY:
                raise cache_os_error(e, f"taking the lock {lock_path}") from None
            yield False
            return
        try:
            yield True
        finally:
            lock.release()
