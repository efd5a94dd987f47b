"""The demo's stand-in for the internet: the generated datasets over HTTP on loopback.

It answers as the real hosts' CDNs do what the fetch engine asks: ``HEAD``, one ``Range``
(206, 416 past the end), ``If-Range`` against its strong ETag (the file's sha256, quoted),
``Content-Length``, ``Accept-Ranges``, ``Last-Modified``. Two things are the demo's own:

- every answer is paced to `rate` bytes a second, so a 12 MB file takes long enough for the
  progress bars to be seen (loopback would finish it in milliseconds);
- `hold_once(path, at)`: once `at` bytes of that file have gone out, `reached` is set and the
  answer slows to a trickle until `release()`, so the demo can interrupt the download at a
  known point (a trickle, not a stop: the client's reads keep returning, so its Ctrl-C
  handling runs at once instead of after a read timeout).

Not mirror serve's aiohttp server (transfer/serve.py): that one hands files to sendfile,
which cannot be paced or held.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from easy_oww.demo.data import OriginFile
from easy_oww.demo.ranges import UNSATISFIABLE, if_range_matches, parse_range
from easy_oww.demo.threaded import QuietHTTPServer, ThreadedServer

_SLICE = 64 * 1024
_TRICKLE = 16 * 1024  # per _TRICKLE_EVERY while held: the bar creeps, reads keep returning
_TRICKLE_EVERY = 0.1
_LAST_MODIFIED = formatdate(1_577_836_800, usegmt=True)  # 2020-01-01: any fixed date


class DemoOrigin(ThreadedServer):
    """`files` under `folder`, served at ``http://127.0.0.1:PORT/<path>``."""

    thread_name = "demo-origin"

    def __init__(self, folder: Path, files: list[OriginFile], *, rate: int,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self._init_threaded(host, port)
        self.folder = folder
        self.files = {f.path: f for f in files}
        self.rate = rate
        self.sent: Counter[str] = Counter()  # bytes of each file's bodies sent so far
        self.starts: list[tuple[str, int]] = []  # (path, first byte) of every GET answered
        self.reached = threading.Event()
        self._held: tuple[str, int] | None = None
        self._released = threading.Event()

    def _make_server(self) -> QuietHTTPServer:
        return QuietHTTPServer((self.host, self._requested_port), self, _Handler)

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)

    def hold_once(self, path: str, at: int) -> None:
        """Slow `path` to a trickle once `at` of its bytes are out; `reached` says when."""
        self._held = (path, at)

    def release(self) -> None:
        """End the hold for good: everything at `rate` again."""
        self._held = None
        self._released.set()

    def _holding(self, path: str) -> bool:
        held = self._held
        if held is None or held[0] != path or self.sent[path] < held[1]:
            return False
        self.reached.set()
        return True

    def pace(self, path: str, n: int) -> None:
        """Count `n` bytes of `path` as sent and wait as long as sending them should take."""
        with self._lock:
            self.sent[path] += n
        self._stop.wait(n / self.rate)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "easy-oww-demo"
    server: QuietHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.owner._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the demo's output is the commands' own

    def do_GET(self) -> None:
        self._answer("GET")

    def do_HEAD(self) -> None:
        self._answer("HEAD")

    def _answer(self, method: str) -> None:
        try:
            self._serve(method)
        except OSError:  # the client went away (the demo's Ctrl-C does that on purpose)
            self.close_connection = True

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _serve(self, method: str) -> None:
        origin: DemoOrigin = self.server.owner
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        served = origin.files.get(rel)
        if served is None:  # only the files made for the demo: no listing, no "..", no links
            self._head(404, {"Content-Length": "0"})
            return
        etag = f'"{served.sha256}"'
        headers = {"ETag": etag, "Last-Modified": _LAST_MODIFIED, "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        start, end, status = 0, served.size - 1, 200
        wanted = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if wanted is not None and (if_range is None
                                   or if_range_matches(if_range, etag, _LAST_MODIFIED)):
            span = parse_range(wanted, served.size)
            if span == UNSATISFIABLE:
                self._head(416, {"Content-Range": f"bytes */{served.size}",
                                 "Content-Length": "0"})
                return
            if isinstance(span, tuple):
                (start, end), status = span, 206
                headers["Content-Range"] = f"bytes {start}-{end}/{served.size}"
        headers["Content-Length"] = str(end - start + 1)
        self._head(status, headers)
        if method == "HEAD":
            return
        with origin._lock:
            origin.starts.append((rel, start))
        with open(origin.folder / rel, "rb") as source:
            source.seek(start)
            left = end - start + 1
            while left > 0 and not origin._stop.is_set():
                held = origin._holding(rel)
                data = source.read(min(_TRICKLE if held else _SLICE, left))
                self.wfile.write(data)
                left -= len(data)
                if held:
                    with origin._lock:
                        origin.sent[rel] += len(data)
                    origin._released.wait(_TRICKLE_EVERY)
                else:
                    origin.pace(rel, len(data))
        self.wfile.flush()

