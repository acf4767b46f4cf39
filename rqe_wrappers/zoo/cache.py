"""The local cache of downloaded populations: ``<cache>/<id>/<version>/``, one lock per version.

Files arrive in the cache only whole and verified (the remote writes a temporary file next to its
destination and renames it into place); every check and write of one population version happens
under its ``filelock.FileLock`` (``<cache>/<id>/<version>.lock``), so concurrent pulls never see or
write half a population. Populations pulled from the Hugging Face Hub (``hf://org/name``) live in
``<cache>/_hf/<org>/<name>/<version>/`` (``_hf`` cannot be a population id). docs/zoo.md ("Caching,
integrity and locking").
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rqe_wrappers.errors import PopulationError
from rqe_wrappers.zoo.manifest import MANIFEST_NAME
from rqe_wrappers.zoo.refs import format_ref, is_version_text

#: seconds to wait for another process's pull of the same population version
LOCK_TIMEOUT = 600.0
#: ``hf://`` keys of the cache, and the cache folder that holds them
HUB_PREFIX = "hf://"
HUB_DIR = "_hf"


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

    def has(self, pid: str, version: int) -> bool:
        """Whether the version's manifest is in the cache (its files are checked on load)."""
        return (self.path_of(pid, version) / MANIFEST_NAME).is_file()

    def versions(self, pid: str) -> list[int]:
        """The cached versions of ``pid``, oldest first."""
        base = self.directory.joinpath(*_parts(pid))
        if not base.is_dir():
            return []
        return sorted(int(p.name) for p in base.iterdir() if is_version_text(p.name) and (p / MANIFEST_NAME).is_file())

    def entries(self) -> list[tuple[str, int, Path]]:
        """Every cached ``(id, version, directory)``."""
        out: list[tuple[str, int, Path]] = []
        if not self.directory.is_dir():
            return out
        for manifest in sorted(self.directory.rglob(MANIFEST_NAME)):
            rel = manifest.parent.relative_to(self.directory).parts
            if len(rel) >= 2 and is_version_text(rel[-1]) and not any(p.startswith(".") for p in rel):
                key = "/".join(rel[:-1])
                if rel[0] == HUB_DIR:
                    key = HUB_PREFIX + "/".join(rel[1:-1])
                out.append((key, int(rel[-1]), manifest.parent))
        return out

    def describe(self) -> str:
        """``"tag/runners@1, ipd/train@1"`` or ``"nothing"``."""
        return ", ".join(format_ref(p, v) for p, v, _ in self.entries()) or "nothing"

    @contextmanager
    def lock(self, pid: str, version: int) -> Iterator[None]:
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
