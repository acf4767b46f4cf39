"""Population ids and versions, and refs that pin one: ``"tag/runners@2"`` (docs/zoo.md, "Ids and versions")."""

from __future__ import annotations

import re
from typing import Any

from rqe_wrappers.errors import PopulationError
from rqe_wrappers.zoo.schema import is_int, short

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


#: the largest version number (a version is a directory name and a git tag, not a counter)
MAX_VERSION = 10**9 - 1
#: a version written as text: ASCII digits only (superscripts and other scripts' digits pass ``str.isdigit``)
VERSION_TEXT_RE = re.compile(r"^[0-9]{1,9}$")


def is_version_text(text: str) -> bool:
    """Whether ``text`` (a directory name, a ref's suffix) spells a version: 1 to 9 ASCII digits."""
    return bool(VERSION_TEXT_RE.match(text)) and int(text) >= 1


def check_version(version: Any, where: str = "version") -> int:
    """Versions are integers from 1 to 999999999; strings of ASCII digits are accepted on input."""
    if isinstance(version, str) and VERSION_TEXT_RE.match(version):
        version = int(version)
    if not is_int(version) or not 1 <= version <= MAX_VERSION:
        raise PopulationError(
            f"{where}: {short(version)} is not a version; versions are integers from 1 to {MAX_VERSION} "
            "(written with the digits 0-9)"
        )
    return int(version)


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``"tag/runners@2"`` -> ``("tag/runners", 2)``; ``"tag/runners"`` -> ``("tag/runners", None)``."""
    pid, sep, version = ref.partition("@")
    return check_id(pid, "population id"), (check_version(version, f"version in {ref!r}") if sep else None)


def format_ref(pid: str, version: int) -> str:
    """``("tag/runners", 2)`` -> ``"tag/runners@2"``."""
    return f"{pid}@{version}"
