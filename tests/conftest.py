"""Shared fixtures: the loopback servers in tests/servers."""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.servers.faulty_http import FaultyServer
from tests.servers.nginx import NginxServer

# The suite (and CI) runs each property test on a fixed set of examples, so a run is
# reproducible and a red CI means a change broke something. To hunt for new cases, run with
# HYPOTHESIS_PROFILE=explore (fresh random examples on every run).
settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fixed"))

# A shell starts a background job (`pytest &`, some CI runners) with SIGINT ignored, and an
# ignored signal stays ignored in every child: the CLI processes the tests stop with Ctrl-C
# would never see it. Python's own handler here means children start with the default.
signal.signal(signal.SIGINT, signal.default_int_handler)


# Per-user state and config (platformdirs reads XDG_*) private to the test run, for what runs
# before any test's own folders below (module and session fixtures that grow a library).
_RUN_USER = Path(tempfile.mkdtemp(prefix="easy-oww-tests-user-"))
os.environ["XDG_STATE_HOME"] = str(_RUN_USER / "state")
os.environ["XDG_CONFIG_HOME"] = str(_RUN_USER / "config")
os.environ.pop("EASY_OWW_CONFIG_DIR", None)


@pytest.fixture(autouse=True)
def private_user_folders(tmp_path_factory, monkeypatch) -> None:
    """Each test gets its own per-user state and config folders (platformdirs reads XDG_*):
    the Freesound request budget and the remembered workspace live there, and a suite run must
    neither spend the machine's real daily budget (2,000 a day, shared by every run on it) nor
    read or change the user's settings. Subprocesses inherit the variables."""
    home = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))


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
