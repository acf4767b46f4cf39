"""A local HTTP zoo for tests (of this library, or of a mirror you host): serve a directory on
127.0.0.1 with injectable faults.

Example:
    >>> with serve_directory("populations") as server:          # doctest: +SKIP
    ...     pop = load_population("tag/runners", url=server.url)
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: fault kinds: "truncate" (Content-Length larger than the body, then the connection closes),
#: "404", "500", "corrupt" (the right length, wrong bytes), "drip" (the file one byte every
#: ``drip_interval`` seconds), "gzip-bomb" (``bomb_bytes`` zeros, gzip-encoded: a few KiB on the wire),
#: "redirect" (302 to the same path on ``localhost``, another host name), "html" (an HTML error page, 200)
#: and "drip-headers" (the response headers one byte every ``drip_interval`` seconds)
FAULTS = ("truncate", "404", "500", "corrupt", "drip", "gzip-bomb", "redirect", "html", "drip-headers")


class _Handler(SimpleHTTPRequestHandler):
    server: _ZooServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.server.requests.append(path)
        if self.server.delay:
            time.sleep(self.server.delay)
        fault = self.server.faults.get(path)
        if fault is None:
            return super().do_GET()
        if fault in ("404", "500"):
            self.send_error(int(fault))
            return None
        if fault in ("gzip-bomb", "redirect", "html"):
            return self._special(fault, path)
        if fault == "drip-headers":
            headers = "HTTP/1.1 200 OK\r\n" + "".join(f"X-Slow-{i}: {'x' * 50}\r\n" for i in range(90))
            self._drip(headers.encode("ascii"))
            self.close_connection = True
            return None
        data = Path(self.translate_path(path)).read_bytes()
        if fault == "corrupt":
            data = bytes(b ^ 0xFF for b in data[:16]) + data[16:]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) + (len(data) + 1000 if fault == "truncate" else 0)))
        self.end_headers()
        if fault == "drip":
            self._drip(data)
        else:
            self.wfile.write(data if fault != "truncate" else data[: max(1, len(data) // 2)])
            self.wfile.flush()
        self.close_connection = True
        return None

    def _drip(self, data: bytes) -> None:
        """One byte per ``drip_interval`` until the file ends, the client leaves, the server stops or 60 s pass."""
        stop = time.monotonic() + 60
        for i in range(len(data)):
            if time.monotonic() > stop or self.server.stopping:
                return
            try:
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
            except OSError:  # the client hung up: what a cut-off client does
                return
            time.sleep(self.server.drip_interval)

    def _special(self, fault: str, path: str) -> None:
        if fault == "redirect":
            port = self.server.server_address[1]
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{port}{path}?redirected")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fault == "html":
            body = b"<!doctype html><html><body><h1>Sign in</h1></body></html>"
            content_type = "text/html"
        else:
            body = gzip.compress(b"\0" * self.server.bomb_bytes, compresslevel=9)
            content_type = "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if fault == "gzip-bomb":
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True


class _ZooServer(ThreadingHTTPServer):
    daemon_threads = True
    faults: dict[str, str]
    requests: list[str]
    delay: float
    drip_interval: float
    bomb_bytes: int
    stopping: bool


class LocalZooServer:
    """A running server: ``url``, ``requests`` (paths asked for, in order), ``faults`` (path -> kind)."""

    def __init__(
        self,
        root: str | Path,
        faults: dict[str, str] | None = None,
        delay: float = 0.0,
        *,
        drip_interval: float = 0.05,
        bomb_bytes: int = 64 * 1024 * 1024,
    ):
        handler = partial(_Handler, directory=str(root))
        handler.timeout = 10  # type: ignore[attr-defined]  # bounded reads
        self._server = _ZooServer(("127.0.0.1", 0), handler)
        self._server.faults = dict(faults or {})
        self._server.requests = []
        self._server.delay = delay
        self._server.drip_interval = drip_interval
        self._server.bomb_bytes = bomb_bytes
        self._server.stopping = False
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._stopped = False

    @property
    def requests(self) -> list[str]:
        return self._server.requests

    @property
    def faults(self) -> dict[str, str]:
        return self._server.faults

    def stop(self) -> None:
        """Stop serving and free the port (nothing listens there afterwards)."""
        if not self._stopped:
            self._stopped = True
            self._server.stopping = True  # dripping handlers end
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)


@contextmanager
def serve_directory(
    root: str | Path,
    *,
    faults: dict[str, str] | None = None,
    delay: float = 0.0,
    drip_interval: float = 0.05,
    bomb_bytes: int = 64 * 1024 * 1024,
) -> Iterator[LocalZooServer]:
    """Serve ``root`` over HTTP on 127.0.0.1 (an ephemeral port) until the block ends."""
    server = LocalZooServer(root, faults, delay, drip_interval=drip_interval, bomb_bytes=bomb_bytes)
    try:
        yield server
    finally:
        server.stop()
