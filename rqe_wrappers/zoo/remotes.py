"""The remote zoo: ``<url>/index.json`` and ``<url>/<id>/<version>/<file>`` over http(s) or file://.

Downloads go through pooch with the known sha256 (a temporary file next to the destination, renamed
into place only when it matches), so a cut-off or corrupt download leaves nothing behind. Network
failures become one :class:`ZooUnreachableError` that says how to work offline. docs/zoo.md
("The client").
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from rqe_wrappers.errors import ChecksumError, ConfigError, PopulationError
from rqe_wrappers.zoo.config import DEFAULT_TIMEOUT, ENV_OFFLINE, ENV_URL, normalize_url
from rqe_wrappers.zoo.files import sha256_file
from rqe_wrappers.zoo.index import INDEX_NAME, Index


class ZooUnreachableError(PopulationError):
    """The remote zoo could not be contacted at all (no server, no network, no such folder)."""


def _short_reason(exc: BaseException) -> str:
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if m:
        return m.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    return text if len(text) < 160 else f"{type(exc).__name__}"


class FileDownloader:
    """A pooch downloader for file:// URLs (pooch itself speaks http, ftp, sftp and doi)."""

    def __call__(self, url: str, output_file: Any, pooch: Any, check_only: bool = False) -> bool | None:
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

    def __init__(self, inner: Any):
        self.inner = inner
        self.sha256: str | None = None

    def __call__(self, url: str, output_file: Any, pooch: Any, check_only: bool = False) -> Any:
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

    def __post_init__(self) -> None:
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

    def _downloader(self, progressbar: bool) -> Any:
        if urlparse(self.url).scheme == "file":
            return FileDownloader()
        import pooch

        return pooch.HTTPDownloader(progressbar=progressbar, timeout=self.timeout)

    @contextmanager
    def _errors(self, url: str, sha256: str | None, downloader: _Hashing) -> Iterator[None]:
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
