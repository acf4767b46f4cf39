"""A population directory: loading and verifying it in place, and the space check run before training.

The client (:mod:`rqe_wrappers.zoo.client`) puts populations in the cache; this module reads one
directory ``<root>/<id>/<version>/`` (docs/zoo.md, "Layout").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import gymnasium as gym

from rqe_wrappers.core.spaces import SpaceMismatch, check_spaces_alike
from rqe_wrappers.errors import ChecksumError, ConfigError, PopulationError, SeatError
from rqe_wrappers.zoo.config import ENV_URL
from rqe_wrappers.zoo.files import check_safetensors_bytes, sha256_file
from rqe_wrappers.zoo.index import INDEX_NAME
from rqe_wrappers.zoo.manifest import MANIFEST_NAME, EnvInfo, Manifest, MemberEntry
from rqe_wrappers.zoo.members import Member
from rqe_wrappers.zoo.refs import is_version_text
from rqe_wrappers.zoo.schema import read_json_file

if TYPE_CHECKING:
    from rqe_wrappers.core.policy import Policy


class UnknownMemberError(PopulationError, KeyError):
    """``population[name]`` for a name the population does not have."""

    def __str__(self) -> str:
        return str(self.args[0])


class Population(Mapping[str, Member]):
    """A verified population on disk: ``population["runner-3"]`` is a :class:`Member`.

    Get one with :func:`rqe_wrappers.zoo.load_population`. Iterating yields member names in
    manifest order.
    """

    def __init__(self, manifest: Manifest, path: str | Path):
        self.manifest = manifest
        self.path = Path(path)
        self._members = {e.name: Member(e, self) for e in manifest.members}

    id = property(lambda self: self.manifest.id)
    version = property(lambda self: self.manifest.version)
    ref = property(lambda self: self.manifest.ref)
    env: EnvInfo = property(lambda self: self.manifest.env)  # type: ignore[assignment]
    observation_space: gym.Space = property(lambda self: self.manifest.observation_space)  # type: ignore[assignment]
    action_space: gym.Space = property(lambda self: self.manifest.action_space)  # type: ignore[assignment]
    best_responses = property(lambda self: self.manifest.best_responses)
    description = property(lambda self: self.manifest.description)

    @property
    def names(self) -> list[str]:
        return list(self._members)

    def __getitem__(self, name: str) -> Member:
        try:
            return self._members[name]
        except KeyError:
            raise UnknownMemberError(f"population {self.ref} has no member {name!r}; members: {self.names}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def policies(self, *, deterministic: bool = False) -> dict[str, Policy]:
        """Every member as a :class:`rqe_wrappers.Policy`, by name."""
        return {name: m.policy(deterministic=deterministic) for name, m in self._members.items()}

    def check_env(self, env: Any, seats: Sequence[str] | None = None) -> None:
        """Raise :class:`SpaceMismatchError` unless every member fits ``env``'s seats.

        See :func:`check_population_spaces`.
        """
        check_population_spaces(self, env, seats)

    def verify(self) -> None:
        """Re-hash every file; raise :class:`ChecksumError` on the first mismatch."""
        bad = find_bad_files(self.manifest, self.path)
        if bad:
            entry, problem = bad[0]
            raise ChecksumError(f"population {self.ref}: {self.path / cast(str, entry.file)}: {problem}")

    def __repr__(self) -> str:
        return f"Population({self.ref!r}, env={self.env.id!r}, members={self.names}, path='{self.path}')"


def read_manifest(directory: str | Path) -> Manifest:
    """Parse ``<directory>/manifest.json`` (schema errors name the file and field)."""
    path = Path(directory) / MANIFEST_NAME
    try:
        data = read_json_file(path)
    except FileNotFoundError:
        raise PopulationError(f"{directory} has no {MANIFEST_NAME}: not a population directory") from None
    return Manifest.from_json(data, str(path))


def find_bad_files(
    manifest: Manifest, directory: str | Path, *, symlinks: bool = True
) -> list[tuple[MemberEntry, str]]:
    """Members whose file is missing or whose sha256 differs from the manifest, with the reason.

    ``symlinks=False`` (the cache) counts a symbolic link as a bad file, unread.
    """
    bad = []
    for entry in manifest.members:
        if entry.file is None:
            continue
        path = Path(directory) / entry.file
        if not symlinks and path.is_symlink():
            bad.append((entry, "a symbolic link, not a file"))
            continue
        if not path.is_file():
            bad.append((entry, "missing"))
            continue
        got = sha256_file(path)
        if got != entry.sha256:
            bad.append((entry, f"sha256 is {got}, the manifest says {entry.sha256}"))
    return bad


def open_population(directory: str | Path, *, verify: bool = True) -> Population:
    """Load a population directory in place (``<root>/<id>/<version>/``), checking every sha256."""
    population = Population(read_manifest(directory), Path(directory).resolve())
    if verify:
        population.verify()
    return population


def find_population_dir(path: Path, version: int | None = None) -> Path:
    """The population directory a local ``path`` names: ``<root>/<id>/<version>/``, its manifest, or
    ``<root>/<id>/`` (then ``version``, else the newest)."""
    if path.is_file() and path.name == MANIFEST_NAME:
        path = path.parent
    if (path / MANIFEST_NAME).is_file():
        return path
    versions = []
    if path.is_dir():
        versions = sorted(
            int(p.name) for p in path.iterdir() if is_version_text(p.name) and (p / MANIFEST_NAME).is_file()
        )
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


def verify_directory(directory: Path, *, load: bool = False) -> tuple[str, str | None]:
    """``(label, problem or None)`` for one population directory: schema, sha256s, safetensors headers.

    Nothing is repaired. ``load=True`` also builds every member's policy.
    """
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


# ---- space checks -------------------------------------------------------------------------------
def _env_spaces(env: Any, seat: str | None) -> tuple[gym.Space, gym.Space]:
    if seat is None:
        return env.observation_space, env.action_space
    return env.observation_space(seat), env.action_space(seat)


def check_population_spaces(population: Population, env: Any, seats: Sequence[str] | None = None) -> None:
    """Check that every member can play every one of ``seats`` of ``env``; run it before training.

    ``env`` is a PettingZoo env (AEC or parallel) or a gymnasium env (then ``seats`` is ignored).
    ``seats`` defaults to the seats the manifest names (``env.seats``), else every seat of the env.
    Raises :class:`SpaceMismatchError` naming the population, the member, the seat and both spaces.
    """
    is_multi = hasattr(env, "possible_agents") and callable(getattr(env, "observation_space", None))
    if not is_multi:
        seat_list: list[str | None] = [None]
    else:
        seat_list = list(seats) if seats is not None else list(population.env.seats or env.possible_agents)
        unknown = [s for s in seat_list if s not in env.possible_agents]
        if unknown:
            raise SeatError(f"seats {unknown} do not exist; the env's seats are {list(env.possible_agents)}")
    members = [(name, population.observation_space, population.action_space) for name in population]
    for seat in seat_list:
        env_obs, env_act = _env_spaces(env, seat)
        where = f" in seat {seat!r}" if seat is not None else ""

        def explain(m: SpaceMismatch, where: str = where) -> str:
            return (
                f"population {population.ref}, member {m.name!r}{where}: {m.kind} space mismatch: "
                f"the environment has {m.expected}, the member expects {m.got}. The population was trained on "
                f"{population.env.id!r} with kwargs {population.env.kwargs}; use that env (same "
                "version and wrappers) or a population built for yours."
            )

        check_spaces_alike(members, explain, reference=("the environment", env_obs, env_act))
