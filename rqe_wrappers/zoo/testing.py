"""A local HTTP zoo for tests (of this library, or of a mirror you host): serve a directory on
127.0.0.1 with injectable faults.

Example:
    >>> with serve_directory("populations") as server:          # doctest: +SKIP
    ...     pop = load_population("tag/runners", url=server.url)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: fault kinds: "truncate" (Content-Length larger than the body, then the connection closes),
#: "404", "500", and "corrupt" (the right length, wrong bytes)
FAULTS = ("truncate", "404", "500", "corrupt")


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
        data = Path(self.translate_path(path)).read_bytes()
        if fault == "corrupt":
            data = bytes(b ^ 0xFF for b in data[:16]) + data[16:]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) + (len(data) + 1000 if fault == "truncate" else 0)))
        self.end_headers()
        self.wfile.write(data if fault != "truncate" else data[: max(1, len(data) // 2)])
        self.wfile.flush()
        self.close_connection = True
        return None


class _ZooServer(ThreadingHTTPServer):
    daemon_threads = True
    faults: dict[str, str]
    requests: list[str]
    delay: float


class LocalZooServer:
    """A running server: ``url``, ``requests`` (paths asked for, in order), ``faults`` (path -> kind)."""

    def __init__(self, root: str | Path, faults: dict[str, str] | None = None, delay: float = 0.0):
        handler = partial(_Handler, directory=str(root))
        handler.timeout = 10  # type: ignore[attr-defined]  # bounded reads
        self._server = _ZooServer(("127.0.0.1", 0), handler)
        self._server.faults = dict(faults or {})
        self._server.requests = []
        self._server.delay = delay
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
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)


@contextmanager
def serve_directory(
    root: str | Path, *, faults: dict[str, str] | None = None, delay: float = 0.0
) -> Iterator[LocalZooServer]:
    """Serve ``root`` over HTTP on 127.0.0.1 (an ephemeral port) until the block ends."""
    server = LocalZooServer(root, faults, delay)
    try:
        yield server
    finally:
        server.stop()
