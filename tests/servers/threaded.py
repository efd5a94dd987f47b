"""What every loopback test server shares: serving from a daemon thread, a clean stop that
also ends connections in flight (stalls, keep-alive), and use as a context manager."""

from __future__ import annotations

import socket
import socketserver
import threading
from typing import TYPE_CHECKING

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
