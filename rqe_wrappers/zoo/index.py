"""``index.json``: every population id and version of one zoo root (docs/zoo.md, "index.json")."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rqe_wrappers.zoo.refs import check_id, check_version
from rqe_wrappers.zoo.schema import (
    INT,
    SCHEMA_VERSION,
    SHA256_RE,
    STR,
    STR_OR_NULL,
    ObjectReader,
    expect,
    field_error,
    load_json,
)

INDEX_NAME = "index.json"

_VERSIONS = expect(lambda x: isinstance(x, dict) and bool(x), "a non-empty object")
_SHA256 = expect(lambda x: isinstance(x, str) and bool(SHA256_RE.match(x)), "64 lowercase hex digits")
_RENAMED = expect(
    lambda x: isinstance(x, dict) and all(isinstance(v, str) for v in x.values()), "an object of old id -> new id"
)


@dataclass(frozen=True)
class IndexEntry:
    """One published version as listed in ``index.json``."""

    manifest_sha256: str
    env: str
    members: int
    description: str = ""
    recipe: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Index:
    """``index.json``: every population id and version of one zoo root, plus renamed ids."""

    populations: dict[str, dict[int, IndexEntry]]
    renamed: dict[str, str] = field(default_factory=dict)

    def versions(self, pid: str) -> list[int]:
        return sorted(self.populations.get(pid, {}))

    def latest(self, pid: str) -> int:
        return max(self.populations[pid])

    def describe(self) -> str:
        """``"tag/runners (versions 1, 2), ipd/train (version 1)"`` or ``"no populations"``."""
        if not self.populations:
            return "no populations"
        parts = []
        for pid in sorted(self.populations):
            vs = self.versions(pid)
            parts.append(f"{pid} (version{'s' if len(vs) > 1 else ''} {', '.join(map(str, vs))})")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "populations": {
                pid: {
                    "latest": max(vs),
                    "versions": {str(v): vs[v].to_json() for v in sorted(vs)},
                }
                for pid, vs in sorted(self.populations.items())
            },
            "renamed": dict(sorted(self.renamed.items())),
        }

    @classmethod
    def from_json(cls, data: Any, source: str = INDEX_NAME) -> Index:
        r = ObjectReader(data, "", source)
        schema = r.get("schema_version", INT)
        if schema != SCHEMA_VERSION:
            raise field_error(source, "schema_version", f"this library reads schema {SCHEMA_VERSION}, got {schema}")
        pops_data = r.get("populations", expect(lambda x: isinstance(x, dict), "an object"))
        pops: dict[str, dict[int, IndexEntry]] = {}
        for pid, pdata in pops_data.items():
            check_id(pid, f"{source}: field 'populations.{pid}'")
            pr = ObjectReader(pdata, f"populations.{pid}", source)
            pr.get("latest", INT)
            versions: dict[int, IndexEntry] = {}
            for vkey, vdata in pr.get("versions", _VERSIONS).items():
                v = check_version(vkey, f"{source}: field 'populations.{pid}.versions.{vkey}'")
                vr = ObjectReader(vdata, f"populations.{pid}.versions.{vkey}", source)
                versions[v] = IndexEntry(
                    manifest_sha256=vr.get("manifest_sha256", _SHA256),
                    env=vr.get("env", STR),
                    members=vr.get("members", INT),
                    description=vr.get("description", STR, ""),
                    recipe=vr.get("recipe", STR_OR_NULL, None),
                )
                vr.done()
            pr.done()
            pops[pid] = versions
        renamed = r.get("renamed", _RENAMED, {})
        r.done()
        return cls(populations=pops, renamed=dict(renamed))

    @classmethod
    def loads(cls, text: str | bytes, source: str = INDEX_NAME) -> Index:
        return cls.from_json(load_json(text, source), source)
