"""Pushing a population to the Hugging Face Hub: one model repo per population, one tag ``v<N>`` per version.

``push_population`` verifies the local population, commits its files to the repo's ``main`` branch
(``manifest.json``, the member ``.safetensors``, ``SHA256SUMS`` and the model card ``README.md``;
files of an older version that this one lacks are deleted in the same commit) and tags that commit
``v<version>``. A tag that exists is never moved: published versions are immutable. Loading is
``load_population("hf://org/name@<version>")``. docs/zoo.md ("The Hugging Face Hub").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rqe_wrappers.errors import PopulationError
from rqe_wrappers.zoo.files import sha256_file
from rqe_wrappers.zoo.hub import (
    SUMS_NAME,
    check_repo_id,
    format_hub_ref,
    format_sums,
    hub_endpoint,
    hub_errors,
    require_hub,
    tag_version,
    version_tag,
)
from rqe_wrappers.zoo.manifest import MANIFEST_NAME
from rqe_wrappers.zoo.population import Population, find_population_dir, open_population
from rqe_wrappers.zoo.publish.card import CARD_NAME, model_card

#: files of the repo that a push keeps even when the population does not have them
KEPT = (".gitattributes",)


@dataclass(frozen=True)
class PushResult:
    """What a push made: the repo, the version and its tag, the commit, and the ref to load it by."""

    repo_id: str
    version: int
    tag: str
    commit: str
    files: tuple[str, ...]

    @property
    def ref(self) -> str:
        return format_hub_ref(self.repo_id, self.version)


def hub_files(population: Population, repo_id: str | None = None) -> dict[str, Path | bytes]:
    """The repo tree of one version: ``{path in repo: local file or bytes}``."""
    files: dict[str, Path | bytes] = {MANIFEST_NAME: population.path / MANIFEST_NAME}
    sums = {MANIFEST_NAME: sha256_file(population.path / MANIFEST_NAME)}
    for entry in population.manifest.members:
        if entry.file is not None and entry.sha256 is not None:
            files[entry.file] = population.path / entry.file
            sums[entry.file] = entry.sha256
    files[SUMS_NAME] = format_sums(sums).encode()
    files[CARD_NAME] = model_card(population.manifest, hub_repo=repo_id).encode()
    return files


def push_population(
    directory: str | os.PathLike,
    repo_id: str,
    *,
    endpoint: str | None = None,
    token: Any = None,
    private: bool | None = None,
    api: Any = None,
) -> PushResult:
    """Push the population in ``directory`` (``<root>/<id>/<version>/``) to ``repo_id`` as tag ``v<version>``.

    The repo is created when missing (``private`` as given). ``endpoint`` defaults to ``$HF_ENDPOINT``,
    ``token`` to huggingface_hub's (``HF_TOKEN`` or ``hf auth login``); ``api`` replaces the
    ``huggingface_hub.HfApi`` (tests). Refuses a version whose tag exists.

    Example:
        >>> push_population("populations/tag/runners/1", "my-org/tag-runners")   # doctest: +SKIP
    """
    check_repo_id(repo_id)
    hub = require_hub()
    endpoint = hub_endpoint(endpoint)
    population = open_population(find_population_dir(Path(directory)))  # every sha256 checked
    files = hub_files(population, repo_id)
    tag = version_tag(population.version)
    if api is None:
        api = hub.HfApi(endpoint=endpoint, token=token)
    with hub_errors(repo_id, endpoint):
        api.create_repo(repo_id, repo_type="model", exist_ok=True, **({} if private is None else {"private": private}))
        refs = api.list_repo_refs(repo_id)
    tags = sorted(v for v in (tag_version(t.name) for t in refs.tags) if v is not None)
    if population.version in tags:
        raise PopulationError(
            f"{format_hub_ref(repo_id, population.version)} exists (tag {tag}): published versions are immutable; "
            f"push a new version (the repo has versions {tags})"
        )
    existing: list[str] = []
    if any(b.name == "main" for b in refs.branches):
        with hub_errors(repo_id, endpoint, "main"):
            info = api.model_info(repo_id, revision="main")
        existing = [s.rfilename for s in (info.siblings or [])]
    operations: list[Any] = [
        hub.CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(src) if isinstance(src, Path) else src)
        for name, src in files.items()
    ]
    operations += [
        hub.CommitOperationDelete(path_in_repo=name) for name in existing if name not in files and name not in KEPT
    ]
    message = f"{population.ref}: {len(population)} members ({population.env.id})"
    with hub_errors(repo_id, endpoint, "main"):
        commit = api.create_commit(repo_id, operations=operations, commit_message=message, revision="main")
        api.create_tag(repo_id, tag=tag, revision=commit.oid, tag_message=message)
    return PushResult(repo_id, population.version, tag, str(commit.oid), tuple(sorted(files)))
