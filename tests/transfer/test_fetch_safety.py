"""What the fetch engine must never get wrong, however the server behaves: bytes land at the
offset they belong to, and a finished file is durable before it takes its final name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from easy_oww.errors import IntegrityError
from easy_oww.transfer.fetch import Fetcher, FetchRequest, FormatCheckError
from easy_oww.transfer.resume import RangeSet
from tests.durability import SyncLog
from tests.transfer.test_fetch import MiB, assert_clean, fast, fetch, sha


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


def test_a_part_longer_than_the_file_is_cut_to_size_and_verified(faulty_server, tmp_path,
                                                                  payload):
    """A part written in order that runs past the file's end (left by an older, longer copy):
    its tail is dropped and the rest verified, not the whole thrown away nor kept whole."""
    faulty_server.set_file("f.bin", payload)
    dest = tmp_path / "out" / "f.bin"
    dest.parent.mkdir(parents=True)
    Path(str(dest) + ".part").write_bytes(payload + b"tail of an older copy")
    Path(str(dest) + ".part.json").write_text(json.dumps({
        "version": 1, "url": faulty_server.url("f.bin"), "size": len(payload),
        "validator": faulty_server.etag("f.bin"), "sequential": True, "done": [[0, 1000]]}))
    _, request, result = fetch(faulty_server, tmp_path, payload)
    assert dest.read_bytes() == payload
    assert result.transferred == 0 and faulty_server.bytes_sent("f.bin") == 0
    assert_clean(dest)


@pytest.mark.parametrize("keep_corrupt", [False, True])
def test_a_download_failing_its_format_check_never_takes_the_final_name(
        faulty_server, tmp_path, payload, keep_corrupt):
    faulty_server.set_file("f.bin", payload)
    checked: list[bytes] = []

    def check(part: Path) -> None:
        checked.append(part.read_bytes())
        raise IntegrityError("not a zip archive")

    fetcher = Fetcher(fast(keep_corrupt=keep_corrupt), lock_dir=tmp_path / "locks")
    dest = tmp_path / "out" / "f.bin"
    with pytest.raises(FormatCheckError, match="not a zip archive") as caught:
        fetcher.fetch(FetchRequest(faulty_server.url("f.bin"), dest, len(payload), sha(payload),
                                   check=check))
    assert checked == [payload]  # the check saw the complete, verified bytes
    assert caught.value.transferred == len(payload)
    assert not dest.exists()
    left = sorted(p.name for p in dest.parent.iterdir())
    assert left == (["f.bin.corrupt"] if keep_corrupt else [])
    request = FetchRequest(faulty_server.url("f.bin"), dest, len(payload), sha(payload),
                           check=lambda part: None)
    assert fetcher.fetch(request).size == len(payload) and dest.read_bytes() == payload


@pytest.mark.parametrize("connections", [1, 4])
def test_the_sidecar_never_vouches_for_bytes_not_yet_synced(faulty_server, tmp_path, payload,
                                                           monkeypatch, connections):
    """`done` in the sidecar is what survives a power cut, and a resume without a hash trusts
    only that: every byte it claims was written before an fdatasync of the part that came
    before the sidecar's rename. (`written` may run ahead: a killed process keeps those.)"""
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", rate=4 * MiB // connections)  # about 0.8 s: many saves
    log = SyncLog(monkeypatch, keep=lambda target: target.endswith(".part.json"))
    _, request, _ = fetch(faulty_server, tmp_path, payload, connections=connections,
                          known=False, sidecar_interval=0.1)
    assert request.dest.read_bytes() == payload
    part = str(request.dest) + ".part"
    written, synced = RangeSet(), RangeSet()
    claims = 0
    for call in log.calls:
        if call.op == "write" and call.path == part and call.span:
            written.add(*call.span)
        elif call.op == "sync" and call.path == part:
            synced = RangeSet(written.ranges)
        elif call.op == "rename" and call.data is not None:
            done = json.loads(call.data)["done"]
            claims += bool(done)
            for start, end in done:
                assert RangeSet(synced.ranges + [[start, end]]).total() == synced.total(), (
                    f"the sidecar claims [{start}, {end}) before it was synced")
    assert claims >= 2  # the sidecar did vouch for bytes along the way
