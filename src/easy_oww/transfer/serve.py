"""A read-only HTTP file server for verified files (what `easy-oww mirror serve` runs).

It knows nothing of datasets: a `Shelf` says which files may be served, at which size and
with which hash, and what the index says; the datasets layer (datasets/mirror.py) builds one
from a workspace's manifest. It sits in transfer/ beside the fetcher because it is the other
end of the same HTTP: what it sends (ETag = the file's hash, Range, If-Range) is what
`Fetcher` resumes and verifies against.

aiohttp serves the bytes: its `FileResponse` parses ``Range`` and hands the file to the
kernel's sendfile, so a single event loop keeps up with nginx on loopback (B13 in
docs/benchmarks.md; starlette + uvicorn, which copies the file through Python in 64 KiB
chunks, reached about a third of it). Three things are ours, around it: the ETag is the
file's recorded hash (aiohttp's own is mtime-size); ``If-Range`` is checked against that ETag
(aiohttp's reads it as a date only, and would serve a range for any ETag); and no
precompressed sibling (``<file>.gz``) is ever served in its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiohttp import hdrs, web

from easy_oww.errors import EasyOwwError


class ServeError(EasyOwwError):
    """The server cannot start (the address is taken, the host is unknown)."""


@dataclass(frozen=True)
class Servable:
    path: Path  # the file on disk
    size: int  # its recorded size (it is served only while the file still has it)
    hash: str  # "sha256:<hex>": sent, quoted, as the ETag


class NotServed(Exception):
    """`Shelf.find` refuses a path: 404 (not a verified file) or 403 (a link out)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class Shelf(Protocol):
    def find(self, rel: str) -> Servable:
        """The verified file at `rel` (relative, '/'-separated); raises NotServed."""
        ...

    def index(self) -> dict[str, Any]:
        """The JSON document served as /index.json."""
        ...


# Conditional headers FileResponse would judge against its own mtime-size ETag: a client of
# ours sends none but If-Range (handled here); any other is dropped rather than misjudged.
_DROPPED = (hdrs.ACCEPT_ENCODING, hdrs.IF_MATCH, hdrs.IF_NONE_MATCH, hdrs.IF_MODIFIED_SINCE,
            hdrs.IF_UNMODIFIED_SINCE, hdrs.IF_RANGE)


class _HashedFile(web.FileResponse):
    """A FileResponse whose request is cleaned first (see `_DROPPED`) and whose ETag is the
    file's hash (set in `_use_hash_etag`, just before the headers go out)."""

    def __init__(self, served: Servable) -> None:
        super().__init__(served.path, headers={hdrs.CONTENT_TYPE: "application/octet-stream"})
        self.served = served

    async def prepare(self, request: web.BaseRequest) -> Any:
        headers = request.headers.copy()
        if_range = headers.get(hdrs.IF_RANGE)
        if if_range is not None and if_range.strip() != f'"{self.served.hash}"':
            headers.popall(hdrs.RANGE, None)  # another version's validator: the whole file
        for name in _DROPPED:
            headers.popall(name, None)
        return await super().prepare(request.clone(headers=headers))


async def _use_hash_etag(request: web.Request, response: web.StreamResponse) -> None:
    if isinstance(response, _HashedFile) and response.status in (200, 206):
        response.etag = response.served.hash


def build_app(shelf: Shelf, *, middlewares: tuple[Any, ...] = ()) -> web.Application:
    """The application: ``GET|HEAD /datasets/<path>`` and ``GET /index.json``."""

    async def index(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        document = await loop.run_in_executor(None, shelf.index)
        return web.json_response(document)

    async def file(request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        loop = asyncio.get_running_loop()
        try:
            served = await loop.run_in_executor(None, shelf.find, rel)
        except NotServed as refusal:
            return web.Response(status=refusal.status, text=refusal.reason + "\n")
        return _HashedFile(served)

    app = web.Application(middlewares=list(middlewares))
    app.router.add_get("/index.json", index)
    app.router.add_get("/datasets/{path:.+}", file)
    app.on_response_prepare.append(_use_hash_etag)
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port` (0: a free port); ServeError in one line."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ServeError(f"--host {host}: {exc.strerror}; give an address of this machine "
                         "(127.0.0.1, 0.0.0.0 for every interface)") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose "
                         "another --port (0 picks a free one)") from None
    sock.listen(512)
    sock.setblocking(False)
    return sock


async def _serve(app: web.Application, sock: socket.socket, ready: Callable[[], None],
                 stop: asyncio.Event | None = None, access_log: Any = None) -> None:
    runner = web.AppRunner(app, access_log=access_log, handle_signals=False)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        ready()
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        await runner.cleanup()


def serve_forever(app: web.Application, sock: socket.socket, ready: Callable[[], None], *,
                  access_log: Any = None) -> None:
    """Serve until KeyboardInterrupt (Ctrl-C) or another BaseException reaches the loop (the
    CLI's SIGTERM handler raises one); the listening socket and open connections are closed
    on the way out."""
    asyncio.run(_serve(app, sock, ready, access_log=access_log))


@dataclass
class ServerThread:
    """The server in a background thread (tests, benchmarks): `url` once started."""

    url: str
    _loop: asyncio.AbstractEventLoop
    _stop: asyncio.Event
    _thread: threading.Thread

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@contextlib.contextmanager
def serving(app: web.Application, host: str = "127.0.0.1", port: int = 0
            ) -> Iterator[ServerThread]:
    """Run `app` on `host`:`port` in a thread for the duration of the block."""
    sock = bind(host, port)
    started = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        async def main() -> None:
            holder["loop"], holder["stop"] = asyncio.get_running_loop(), asyncio.Event()
            await _serve(app, sock, started.set, holder["stop"])

        asyncio.run(main())

    thread = threading.Thread(target=run, name="mirror-serve", daemon=True)
    thread.start()
    if not started.wait(10):
        raise ServeError("the server did not start within 10 s")
    bound_host, bound_port = sock.getsockname()[:2]
    server = ServerThread(f"http://{bound_host}:{bound_port}", holder["loop"], holder["stop"],
                          thread)
    try:
        yield server
    finally:
        server.stop()
