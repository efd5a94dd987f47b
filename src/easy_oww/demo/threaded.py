"""What every loopback test server shares: serving from a daemon thread, a clean stop that
also ends connections in flight (stalls, keep-alive), and use as a context manager."""

from __future__ import annotations

import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import Self


class ThreadedServer:
    """Subclasses call `_init_threaded` and implement `_make_server`."""

    thread_name = "loopback"

    def _init_threaded(self, host: str, port: int) -> None:
        self.host = host
        self._requested_port = port
        self.port = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()  # set on stop(): waits in handlers end early
        self._conns: set[socket.socket] = set()
        self._httpd: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None

    def _make_server(self) -> socketserver.BaseServer:
        raise NotImplementedError

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._stop.clear()
        self._httpd = self._make_server()
        self.port = self._httpd.server_address[1]  # type: ignore[index]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"{self.thread_name}-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


class QuietHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its owner, skips the reverse DNS lookup on bind
    and stays quiet when a client hangs up mid-answer (the fault tests do that on purpose)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: Any,
                 handler: type[BaseHTTPRequestHandler]) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]  # type: ignore[assignment]

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)
