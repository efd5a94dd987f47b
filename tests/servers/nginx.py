"""Run a real nginx (Debian's nginx-light) on loopback, serving one directory.

Everything nginx writes (pid, logs, temp paths) lives in a private temp dir, and nginx runs
in the foreground (``daemon off``) as our child, so ``stop()`` is a plain terminate.  The
access log is JSON lines with the request, status, body bytes sent and Range header, so a
test can count what each request really transferred.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

if TYPE_CHECKING:
    from typing_extensions import Self

_FALLBACK_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")

_LOG_FORMAT = (
    '{"request":"$request","method":"$request_method","uri":"$uri","status":$status,'
    '"body_bytes_sent":$body_bytes_sent,"bytes_sent":$bytes_sent,"range":"$http_range",'
    '"if_range":"$http_if_range","connection":$connection}'
)


def find_nginx() -> str:
    """Path of the nginx binary; raises with the install command when there is none."""
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in _FALLBACK_PATHS:
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "nginx not found on PATH nor in /usr/sbin; the loopback integration tests need it. "
        "Install it with: apt-get install nginx-light"
    )


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class NginxServer:
    """nginx serving ``root`` on 127.0.0.1.

    ``limit_rate`` is nginx syntax ("500k", "2m") and applies per connection.  ``port=0``
    picks a free port (retrying if another process grabs it first).
    """

    host = "127.0.0.1"

    def __init__(
        self,
        root: Path | str,
        *,
        limit_rate: str | None = None,
        port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        self.root = Path(root).resolve()
        self.limit_rate = limit_rate
        self._requested_port = port
        self.port = port
        self.startup_timeout = startup_timeout
        self.binary = find_nginx()
        self.prefix: Path | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        if self._proc is not None:
            return self
        if not self.root.is_dir():
            raise FileNotFoundError(f"nginx root {self.root} is not a directory")
        self._tmp = tempfile.TemporaryDirectory(prefix="easy-oww-nginx-")
        self.prefix = Path(self._tmp.name)
        attempts = 1 if self._requested_port else 5
        last_error = ""
        for _ in range(attempts):
            self.port = self._requested_port or _free_port(self.host)
            self._write_conf()
            with open(self.prefix / "stderr.log", "ab") as stderr:
                self._proc = subprocess.Popen(
                    [
                        self.binary,
                        "-p", f"{self.prefix}/",
                        "-c", str(self.conf_path),
                        "-e", str(self.error_log_path),
                        "-g", "daemon off;",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )  # fmt: skip
            last_error = self._wait_ready()
            if not last_error:
                return self
            self._proc = None
        self._cleanup()
        raise RuntimeError(f"nginx did not start: {last_error}")

    def _wait_ready(self) -> str:
        """Poll until the port accepts connections; '' on success, else the reason."""
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.005
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return self._error_log_tail()
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return ""
            except OSError:
                time.sleep(delay)  # polling a port, with a deadline
                delay = min(delay * 2, 0.1)
        self._terminate()
        return f"port {self.port} not accepting after {self.startup_timeout}s; " + (
            self._error_log_tail()
        )

    def stop(self) -> None:
        self._terminate()
        self._cleanup()

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # fast shutdown of master and workers
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- config ----------------------------------------------------------------------------

    @property
    def conf_path(self) -> Path:
        assert self.prefix is not None
        return self.prefix / "nginx.conf"

    @property
    def access_log_path(self) -> Path:
        assert self.prefix is not None
        return self.prefix / "access.log"

    @property
    def error_log_path(self) -> Path:
        assert self.prefix is not None
        return self.prefix / "error.log"

    def _write_conf(self) -> None:
        assert self.prefix is not None
        p = self.prefix
        # As root, nginx's workers would drop to "nobody" and could not read a test's tmp dir.
        user = "user root;" if os.geteuid() == 0 else ""
        limit = f"limit_rate {self.limit_rate};" if self.limit_rate else ""
        self.conf_path.write_text(
            f"""
{user}
worker_processes 1;
pid {p}/nginx.pid;
error_log {self.error_log_path} warn;
events {{ worker_connections 512; }}
http {{
    default_type application/octet-stream;
    types {{ }}
    log_format easyoww escape=json '{_LOG_FORMAT}';
    access_log {self.access_log_path} easyoww;
    client_body_temp_path {p}/client_body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 30s;
    gzip off;
    server {{
        listen {self.host}:{self.port};
        root {self.root};
        {limit}
        location / {{ }}
    }}
}}
"""
        )

    def _error_log_tail(self) -> str:
        assert self.prefix is not None
        text = ""
        for log in (self.prefix / "stderr.log", self.error_log_path):
            try:
                text += log.read_text(errors="replace")
            except OSError:
                pass
        return text[-2000:].strip()

    # -- use -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + "/" + quote(path.lstrip("/"))

    def access_log(self, *, wait_for: int = 0, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Access log entries (dicts), oldest first.

        nginx logs a request after its last byte is sent, a moment after the client has it;
        ``wait_for`` polls until at least that many entries exist (or ``timeout``).
        """
        deadline = time.monotonic() + timeout
        while True:
            entries = self._read_log()
            if len(entries) >= wait_for or time.monotonic() >= deadline:
                return entries
            time.sleep(0.01)  # polling a file, with a deadline

    def _read_log(self) -> list[dict[str, Any]]:
        try:
            text = self.access_log_path.read_text()
        except FileNotFoundError:
            return []
        # A line being written may be incomplete; only whole lines count.
        return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]

    def access_log_bytes(self, path: str, *, wait_for: int = 0, timeout: float = 5.0) -> int:
        """Total body bytes nginx sent for ``path`` (as in the URL, e.g. "a/b.bin")."""
        target = "/" + unquote(path.lstrip("/"))
        entries = self.access_log(wait_for=wait_for, timeout=timeout)
        return sum(e["body_bytes_sent"] for e in entries if e["uri"] == target)

    def reset_access_log(self) -> None:
        """Empty the access log (nginx keeps appending to the same open file)."""
        self.access_log_path.write_bytes(b"")
