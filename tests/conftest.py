"""Shared fixtures: the loopback servers in tests/servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers.faulty_http import FaultyServer
from tests.servers.nginx import NginxServer


@pytest.fixture
def faulty_server() -> Iterator[FaultyServer]:
    """A started FaultyServer on 127.0.0.1; empty (every path 404s until set_file)."""
    server = FaultyServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nginx_server() -> Iterator[Callable[..., NginxServer]]:
    """Factory: ``nginx_server(root_dir, limit_rate=None)`` starts nginx serving root_dir.

    Every server started through the factory is stopped at teardown.
    """
    started: list[NginxServer] = []

    def start(root: Path | str, limit_rate: str | None = None, port: int = 0) -> NginxServer:
        server = NginxServer(root, limit_rate=limit_rate, port=port).start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            server.stop()
