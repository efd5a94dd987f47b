"""Fixtures of the mirror tests (test_mirror.py, test_mirror_s3.py): three files served by a
recording origin, and a workspace that downloaded them from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.datasets.helpers import mirror_catalog, run_cli
from tests.servers.faulty_http import FaultyServer

MiB = 1024 * 1024


@pytest.fixture
def blobs() -> dict[str, bytes]:
    # a.bin is big enough for several connections (two 8 MiB segments): ranges to the mirror
    return {"a.bin": os.urandom(17 * MiB + 5), "b.bin": os.urandom(300_001),
            "c.bin": os.urandom(40_000)}


@pytest.fixture
def origin(faulty_server: FaultyServer, blobs) -> FaultyServer:
    for name, data in blobs.items():
        faulty_server.set_file(name, data)
    return faulty_server


@pytest.fixture
def workspace_a(tmp_path, origin, blobs) -> Path:
    """A workspace that downloaded alpha (and gamma) from the origin."""
    ws = tmp_path / "A"
    ws.mkdir()
    mirror_catalog(ws / "datasets.toml", origin.url, blobs, hashed=False)
    run = run_cli(tmp_path, "download", "--workspace", str(ws), "--dataset", "alpha",
                  "--dataset", "gamma")
    assert run.code == 0, run.err
    return ws
