"""What the fetch engine must never get wrong, however the server behaves: bytes land at the
offset they belong to, and a finished file is durable before it takes its final name."""

from __future__ import annotations

import os

import pytest

from tests.durability import SyncLog
from tests.transfer.test_fetch import MiB, assert_clean, fetch


@pytest.fixture
def payload() -> bytes:
    return os.urandom(3 * MiB + 12345)


@pytest.mark.parametrize("connections", [1, 4])
@pytest.mark.parametrize("known", [True, False], ids=["hash", "no-hash"])
def test_a_range_answered_from_an_earlier_start_is_never_written_at_the_asked_offset(
        faulty_server, tmp_path, payload, connections, known):
    """A proxy answers `Range: bytes=N-` from N - 4096 and says so in Content-Range. Written at
    N, those bytes would sit 4 KiB off: without a hash to catch it, a wrong file would take
    the final name. The engine must notice the start does not line up and fetch again."""
    faulty_server.set_file("f.bin", payload)
    # One connection: the first answer is cut, so the resume asks for a range.
    faulty_server.set_faults("f.bin", drop_after=1_000_000, times=1)
    shift = faulty_server.add_faults("f.bin", range_start_shift=4096, times=1)
    _, request, result = fetch(faulty_server, tmp_path, payload, connections=connections,
                               known=known)
    assert shift.fired == 1  # the shifted answer was sent
    shifted = [r for r in faulty_server.requests_for("f.bin", "GET")
               if r.status == 206 and r.range and r.range != "bytes=0-"]
    assert shifted
    assert request.dest.read_bytes() == payload
    assert result.size == len(payload)
    assert_clean(request.dest)


@pytest.mark.parametrize("connections", [1, 4])
def test_the_download_is_synced_before_its_rename_and_the_folder_after(
        faulty_server, tmp_path, payload, monkeypatch, connections):
    faulty_server.set_file("f.bin", payload)
    log = SyncLog(monkeypatch)
    _, request, _ = fetch(faulty_server, tmp_path, payload, connections=connections)
    assert request.dest.read_bytes() == payload
    log.assert_durable_rename(request.dest)
