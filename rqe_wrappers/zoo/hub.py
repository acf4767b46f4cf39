"""The Hugging Face Hub convention: refs ``hf://org/name@<version>``, ``SHA256SUMS``, errors.

One model repo per population; one git tag ``v<version>`` per version, whose tree holds the zoo's own
files at the repo root: ``manifest.json``, one ``<member>.safetensors`` per member with weights or
arrays, ``SHA256SUMS`` (``sha256sum`` format: the manifest and every member file) and the model card
``README.md``. Fetching is :mod:`rqe_wrappers.zoo.hub_client`; pushing is
:mod:`rqe_wrappers.zoo.publish.hub`. ``huggingface_hub`` is imported only through :func:`require_hub`.
docs/zoo.md ("The Hugging Face Hub").
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rqe_wrappers.errors import ConfigError, PopulationError
from rqe_wrappers.zoo.cache import HUB_PREFIX
from rqe_wrappers.zoo.config import ENV_OFFLINE, offline_from_env
from rqe_wrappers.zoo.refs import check_version
from rqe_wrappers.zoo.remotes import ZooUnreachableError

HUB_SCHEME = HUB_PREFIX  # "hf://"
SUMS_NAME = "SHA256SUMS"
DEFAULT_ENDPOINT = "https://huggingface.co"
#: caps on the small files, before and after their transfer (member files: ``RQE_ZOO_MAX_FILE_MB``)
MAX_SUMS_BYTES = 1 << 20
MAX_MANIFEST_BYTES = 64 << 20

#: ``org/name``: letters, digits, ``-``, ``_``, ``.``; no ``..``; at most 96 characters per part (as the Hub)
REPO_RE = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?/[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$"
)
TAG_RE = re.compile(r"^v([1-9][0-9]{0,8})$")
_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *]([A-Za-z0-9][A-Za-z0-9._-]{0,127})$")
_NETWORK_ERRORS = ("ConnectError", "ConnectionError", "ConnectTimeout", "Timeout", "TimeoutException", "NetworkError")


def require_hub() -> Any:
    """The ``huggingface_hub`` module, or a :class:`ConfigError` that says how to install it."""
    try:
        import huggingface_hub
    except ImportError:
        raise ConfigError(
            "hf:// populations (rqe zoo push / pull hf://...) need huggingface_hub: pip install 'rqe-wrappers[zoo]'"
        ) from None
    return huggingface_hub


def check_repo_id(repo_id: Any, where: str = "Hub repo") -> str:
    """``org/name`` as the Hub spells it (letters, digits, ``-``, ``_``, ``.``), else :class:`PopulationError`."""
    if not isinstance(repo_id, str) or not REPO_RE.match(repo_id) or ".." in repo_id:
        raise PopulationError(
            f"{where}: {repo_id!r} is not a Hugging Face repo id; expected 'org/name' (letters, digits, '-', '_', '.')"
        )
    return repo_id


def parse_hub_ref(ref: str) -> tuple[str, int | None]:
    """``"hf://org/name@2"`` -> ``("org/name", 2)``; ``"hf://org/name"`` -> ``("org/name", None)``.

    Example:
        >>> parse_hub_ref("hf://rqe/tag-runners@1")
        ('rqe/tag-runners', 1)
    """
    if not ref.startswith(HUB_SCHEME):
        raise PopulationError(f"{ref!r} is not a Hub ref; expected hf://org/name or hf://org/name@VERSION")
    repo_id, sep, version = ref[len(HUB_SCHEME) :].partition("@")
    check_repo_id(repo_id, f"Hub ref {ref!r}")
    return repo_id, (check_version(version, f"version in {ref!r}") if sep else None)


def format_hub_ref(repo_id: str, version: int | None = None) -> str:
    """``("org/name", 2)`` -> ``"hf://org/name@2"``."""
    return f"{HUB_SCHEME}{repo_id}" + (f"@{version}" if version is not None else "")


def version_tag(version: int) -> str:
    """The git tag of a version: ``1`` -> ``"v1"``."""
    return f"v{check_version(version)}"


def tag_version(tag: str) -> int | None:
    """``"v3"`` -> ``3``; any other tag name -> ``None``."""
    m = TAG_RE.match(tag)
    return int(m.group(1)) if m else None


def format_sums(sums: Mapping[str, str]) -> str:
    """``SHA256SUMS`` text (``sha256sum -c SHA256SUMS`` checks it), sorted by file name."""
    return "".join(f"{sha}  {name}\n" for name, sha in sorted(sums.items()))


def parse_sums(text: str, source: str) -> dict[str, str]:
    """``{file name: sha256}`` from ``SHA256SUMS`` text; every line is ``<64 hex>  <bare file name>``."""
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _SUM_LINE.match(line)
        if m is None:
            raise PopulationError(f"{source}: line {number} is not '<sha256>  <file name>': {line[:80]!r}")
        sha, name = m.groups()
        if name in sums and sums[name] != sha:
            raise PopulationError(f"{source}: {name} is listed twice with different sha256s")
        sums[name] = sha
    return sums


def hub_endpoint(endpoint: str | None = None) -> str:
    """``endpoint``, else ``$HF_ENDPOINT`` (read at call time), else https://huggingface.co."""
    return (endpoint or os.environ.get("HF_ENDPOINT", "").strip() or DEFAULT_ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    """``$RQE_ZOO_OFFLINE`` or huggingface_hub's own ``$HF_HUB_OFFLINE``."""
    return offline_from_env() or os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def offline_help(repo_id: str, endpoint: str, reason: str) -> str:
    return (
        f"cannot reach the Hugging Face Hub at {endpoint} for {repo_id} ({reason}). To work offline: pin a "
        f"cached version (hf://{repo_id}@VERSION) or set {ENV_OFFLINE}=1 to use the newest cached one; "
        "HF_ENDPOINT points the client at a mirror."
    )


def _is_network_error(e: BaseException) -> bool:
    return any(cls.__name__ in _NETWORK_ERRORS for cls in type(e).__mro__)


@contextmanager
def hub_errors(repo_id: str, endpoint: str, revision: str | None = None, file: str | None = None) -> Iterator[None]:
    """Turn huggingface_hub's and the HTTP client's errors into one :class:`PopulationError` saying what to do."""
    utils = require_hub().utils
    at = f"{repo_id}" + (f" at {revision}" if revision else "")
    try:
        yield
    except PopulationError:
        raise
    except utils.LocalEntryNotFoundError as e:  # no connection and nothing in huggingface_hub's cache
        raise ZooUnreachableError(offline_help(repo_id, endpoint, str(e).splitlines()[0][:160])) from None
    except utils.RepositoryNotFoundError:
        raise PopulationError(
            f"there is no model repo {repo_id} at {endpoint} (or it is private or gated: log in with "
            "`hf auth login` or set HF_TOKEN)"
        ) from None
    except utils.RevisionNotFoundError:
        raise PopulationError(
            f"{repo_id} at {endpoint} has no revision {revision!r}: that version was not pushed "
            "(version N of a population is the tag vN)"
        ) from None
    except utils.EntryNotFoundError:
        raise PopulationError(
            f"{at} has no {file or 'such file'}: not a population pushed with `rqe zoo push`"
        ) from None
    except utils.HfHubHTTPError as e:
        status = e.response.status_code if getattr(e, "response", None) is not None else "?"
        raise PopulationError(
            f"the Hub at {endpoint} answered HTTP {status} for {at}: {str(e).splitlines()[0]}"
        ) from None
    except Exception as e:
        if _is_network_error(e):
            raise ZooUnreachableError(offline_help(repo_id, endpoint, f"{type(e).__name__}: {e}"[:160])) from None
        raise
