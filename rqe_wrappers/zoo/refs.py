"""Population ids and versions, and refs that pin one: ``"tag/runners@2"`` (docs/zoo.md, "Ids and versions")."""

from __future__ import annotations

import re
from typing import Any

from rqe_wrappers.errors import PopulationError
from rqe_wrappers.zoo.schema import is_int

#: population ids: lowercase path segments, e.g. ``tag/runners``, ``ipd/train``
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$")


def check_id(pid: Any, where: str = "id") -> str:
    """Return ``pid`` if it is a valid population id, else raise :class:`PopulationError`."""
    if not isinstance(pid, str) or not ID_RE.match(pid):
        raise PopulationError(
            f"{where}: {pid!r} is not a population id; ids are lowercase path segments of letters, digits, "
            "'-' and '_', e.g. 'tag/runners' or 'ipd/train'"
        )
    return pid


def check_version(version: Any, where: str = "version") -> int:
    """Versions are positive integers (``1``, ``2``, ...); strings of digits are accepted on input."""
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if not is_int(version) or version < 1:
        raise PopulationError(f"{where}: {version!r} is not a version; versions are integers >= 1")
    return int(version)


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``"tag/runners@2"`` -> ``("tag/runners", 2)``; ``"tag/runners"`` -> ``("tag/runners", None)``."""
    pid, sep, version = ref.partition("@")
    return check_id(pid, "population id"), (check_version(version, f"version in {ref!r}") if sep else None)


def format_ref(pid: str, version: int) -> str:
    """``("tag/runners", 2)`` -> ``"tag/runners@2"``."""
    return f"{pid}@{version}"
