"""The remote zoo: ``<url>/index.json`` and ``<url>/<id>/<version>/<file>`` over http(s) or file://.

Downloads go through pooch with the known sha256 (a temporary file next to the destination, renamed
into place only when it matches), so a cut-off or corrupt download leaves nothing behind. Network
failures become one :class:`ZooUnreachableError` that says how to work offline. docs/zoo.md
("The client").
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse
from urllib.request import url2pathname

from rqe_wrappers.errors import ChecksumError, ConfigError, PopulationError
from rqe_wrappers.zoo import limits
from rqe_wrappers.zoo.config import DEFAULT_TIMEOUT, ENV_OFFLINE, ENV_TIMEOUT, ENV_URL, normalize_url
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


_CHUNK = 1 << 16


def _too_large(url: str, cap: int, what: str) -> PopulationError:
    return PopulationError(
        f"{url}: {what} is larger than {cap} bytes; nothing was written to the cache. "
        f"The cap is {limits.DOWNLOAD_MB.env} (MiB) for member files and {limits.JSON_MB.env} (MiB) for JSON; "
        "raise it if you trust the zoo"
    )


@contextmanager
def _sink(output_file: Any) -> Iterator[Any]:
    if isinstance(output_file, (str, os.PathLike)):
        with open(output_file, "wb") as f:
            yield f
    else:
        yield output_file


class FileDownloader:
    """A pooch downloader for file:// URLs (pooch itself speaks http, ftp, sftp and doi): regular
    files only (a symlink to ``/dev/zero`` or a FIFO is refused), at most ``max_bytes``."""

    def __init__(self, max_bytes: int | None = None):
        self.max_bytes = max_bytes

    def __call__(self, url: str, output_file: Any, pooch: Any, check_only: bool = False) -> bool | None:
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"{url}: file:// URLs must name a local path (file:///...)")
        src = Path(url2pathname(parsed.path))
        if check_only:
            return src.is_file()
        cap = self.max_bytes if self.max_bytes is not None else limits.DOWNLOAD_MB.int_value() * limits.MB
        st = src.stat()  # FileNotFoundError is reported by Remote._errors
        if not stat.S_ISREG(st.st_mode):
            raise PopulationError(
                f"{url}: not a regular file (a device, FIFO or directory, perhaps through a symlink); refusing to "
                "copy it. Nothing was written to the cache."
            )
        if st.st_size > cap:
            raise _too_large(url, cap, f"the file ({st.st_size} bytes)")
        total = 0
        with open(src, "rb") as f, _sink(output_file) as out:
            while chunk := f.read(_CHUNK):
                total += len(chunk)
                if total > cap:  # the file grew while being copied
                    raise _too_large(url, cap, "the file")
                out.write(chunk)
        return None


class GuardedHTTPDownloader:
    """A pooch downloader for http(s) with a total deadline per request (``timeout`` seconds from the
    first byte sent to the last received, not per read: a server dripping a byte a second is cut off),
    a cap on the bytes written after gzip/deflate decoding, and no redirect to another host.

    A single read waits at most ``timeout`` too, so a request ends within twice ``timeout``.
    """

    def __init__(self, timeout: float, max_bytes: int, progressbar: bool = False):
        self.timeout = check_timeout(timeout)
        self.max_bytes = max_bytes
        self.progressbar = progressbar

    def __call__(self, url: str, output_file: Any, pooch: Any, check_only: bool = False) -> bool | None:
        import requests
        import urllib3.exceptions as u3

        deadline = time.monotonic() + self.timeout
        with self._open_by(url, "HEAD" if check_only else "GET", deadline) as resp:
            resp.raise_for_status()
            if check_only:
                return True
            declared = resp.headers.get("Content-Length", "")
            if declared.isascii() and declared.isdigit() and int(declared[:20]) > self.max_bytes:
                raise _too_large(url, self.max_bytes, f"the response ({declared} bytes declared)")
            bar = self._bar(declared)
            total = 0
            try:
                with _sink(output_file) as out:
                    while True:
                        if time.monotonic() > deadline:
                            raise self._too_slow(url)
                        try:
                            chunk = resp.raw.read1(_CHUNK, decode_content=True)
                        except u3.DecodeError as e:
                            raise requests.exceptions.ContentDecodingError(e) from None
                        except u3.ReadTimeoutError as e:
                            raise requests.exceptions.ConnectionError(e) from None
                        except (u3.ProtocolError, u3.SSLError) as e:
                            raise requests.exceptions.ChunkedEncodingError(e) from None
                        if not chunk:
                            break
                        total += len(chunk)
                        if total > self.max_bytes:
                            raise _too_large(url, self.max_bytes, "the decoded response")
                        out.write(chunk)
                        if bar is not None:
                            bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        return None

    def _too_slow(self, url: str) -> PopulationError:
        return PopulationError(
            f"the download of {url} took longer than {self.timeout:g} s in all and was cut off; nothing was "
            f"written to the cache. Raise {ENV_TIMEOUT} (seconds per request) on a slow network, or check the server."
        )

    def _open_by(self, url: str, method: str, deadline: float) -> Any:
        """:meth:`_open` (connect, redirects, status line and headers) within the deadline: a server that
        drips its headers is abandoned at the deadline (its thread ends at the server's next pause
        longer than ``timeout``, or when it finishes; the late response is closed unread)."""
        box: dict[str, Any] = {}
        lock = threading.Lock()

        def work() -> None:
            try:
                resp = self._open(url, method)
            except BaseException as e:  # handed to the caller below
                with lock:
                    box["error"] = e
                return
            with lock:
                if box.get("abandoned"):
                    resp.close()
                else:
                    box["resp"] = resp

        worker = threading.Thread(target=work, name=f"rqe-zoo-open {url}", daemon=True)
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        with lock:
            if "resp" in box:
                return box["resp"]
            if "error" in box:
                raise box["error"]
            box["abandoned"] = True
        raise self._too_slow(url)

    def _open(self, url: str, method: str) -> Any:
        """The response, following at most 5 redirects, all on the URL's own host."""
        import requests

        target = url
        for _ in range(6):
            resp = requests.request(
                method, target, stream=True, timeout=(self.timeout, self.timeout), allow_redirects=False
            )
            if not resp.is_redirect:
                return resp
            resp.close()
            new = urljoin(target, resp.headers.get("Location", ""))
            if urlparse(new).netloc != urlparse(url).netloc or urlparse(new).scheme != urlparse(url).scheme:
                raise PopulationError(
                    f"{url} redirected to another host ({urlparse(new).scheme}://{urlparse(new).netloc}); the zoo "
                    f"does not follow redirects off its own host. Point {ENV_URL} at that address if you trust it."
                )
            target = new
        raise PopulationError(f"{url}: more than 5 redirects; the server is misconfigured")

    def _bar(self, declared: str) -> Any:
        if not self.progressbar:
            return None
        from tqdm import tqdm

        total = int(declared[:20]) if declared.isascii() and declared.isdigit() else None
        return tqdm(total=total, unit="B", unit_scale=True, leave=True)


def check_timeout(timeout: Any) -> float:
    """A download timeout: a finite number of seconds > 0 (``inf``, ``nan`` and ``0`` are refused)."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not (math.isfinite(timeout) and timeout > 0)
    ):
        raise ConfigError(
            f"the download timeout ({ENV_TIMEOUT}) must be a finite number of seconds > 0, got {timeout!r}"
        )
    return float(timeout)


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
        self.timeout = check_timeout(self.timeout)
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

    def _downloader(self, progressbar: bool, max_bytes: int | None = None) -> Any:
        cap = limits.DOWNLOAD_MB.int_value() * limits.MB if max_bytes is None else max_bytes
        if urlparse(self.url).scheme == "file":
            return FileDownloader(cap)
        return GuardedHTTPDownloader(self.timeout, cap, progressbar=progressbar)

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
        """The bytes of ``<url>/<rel>`` (small JSON files such as the index: at most the JSON cap)."""
        url = self.url_of(rel)
        downloader = _Hashing(self._downloader(False, int(limits.JSON_MB.value() * limits.MB)))
        out = io.BytesIO()  # in memory, capped: nothing is written to disk
        with self._errors(url, None, downloader):
            downloader(url, out, None)
        return out.getvalue()

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
