"""The fetch engine against our misbehaving loopback server: every fault ends in the exact
bytes or a clear error, never a wrong file in place."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from easy_oww.errors import (
    DownloadError,
    HashMismatchError,
    LockTimeoutError,
    NetworkError,
    SizeMismatchError,
)
from easy_oww.hashes import KnownHash
from easy_oww.transfer.fetch import Fetcher, FetchOptions, FetchRequest, RangeSet
from tests.servers.faulty_http import FaultyServer

MiB = 1024 * 1024


def sha(data: bytes) -> KnownHash:
    return KnownHash("sha256", hashlib.sha256(data).hexdigest())


def fast(**kw: object) -> FetchOptions:
    base = dict(backoff_base=0.01, backoff_max=0.05, read_timeout=5.0, min_segment=256 * 1024,
                chunk=64 * 1024, sidecar_interval=0.0)
    base.update(kw)
    return FetchOptions(**base)  # type: ignore[arg-type]


@pytest.fixture
def payload() -> bytes:
    return os.urandom(3 * MiB + 12345)


def fetch(server: FaultyServer, tmp_path: Path, data: bytes, name: str = "f.bin",
          connections: int = 1, known: bool = True, **kw: object):
    fetcher = Fetcher(fast(connections=connections, **kw), lock_dir=tmp_path / "locks")
    request = FetchRequest(server.url(name), tmp_path / "out" / name, len(data) if known else None,
                           sha(data) if known else None)
    return fetcher, request, fetcher.fetch(request)


def assert_clean(dest: Path) -> None:
    leftovers = [p.name for p in dest.parent.iterdir() if p.name.startswith(dest.name + ".")]
    assert leftovers == [], leftovers


@pytest.mark.parametrize("connections", [1, 4])
def test_plain_download_is_exact_and_leaves_no_part(faulty_server, tmp_path, payload, connections):
    faulty_server.set_file("f.bin", payload)
    _, request, result = fetch(faulty_server, tmp_path, payload, connections=connections)
    assert request.dest.read_bytes() == payload
    assert result.hash == str(sha(payload))
    assert faulty_server.bytes_sent("f.bin") == len(payload)
    assert_clean(request.dest)


def test_a_dead_writers_sidecar_temp_file_is_swept(faulty_server, tmp_path, payload):
    faulty_server.set_file("f.bin", payload)
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".f.bin.part.json.k3j9x2aa.tmp"  # what a process killed mid-save leaves
    other = out / ".g.bin.part.json.k3j9x2aa.tmp"  # another file's: not ours to touch
    stale.write_bytes(b'{"version": 1')
    other.write_bytes(b"{")
    _, request, _ = fetch(faulty_server, tmp_path, payload)
    assert request.dest.read_bytes() == payload
    assert not stale.exists() and other.exists()


def test_unknown_hash_records_sha256(faulty_server, tmp_path, payload):
    faulty_server.set_file("f.bin", payload)
    _, request, result = fetch(faulty_server, tmp_path, payload, known=False)
    assert result.hash == str(sha(payload)) and result.size == len(payload)


@pytest.mark.parametrize("connections", [1, 4])
def test_dropped_connections_resume_without_resending(faulty_server, tmp_path, payload,
                                                      connections):
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", drop_after=700_000, times=6)
    _, request, _ = fetch(faulty_server, tmp_path, payload, connections=connections)
    assert request.dest.read_bytes() == payload
    # Each drop costs at most the bytes of the chunk in flight, never a restart from zero.
    assert faulty_server.bytes_sent("f.bin") <= len(payload) + 6 * 64 * 1024


def test_server_ignoring_range_on_resume_restarts_from_zero(faulty_server, tmp_path, payload):
    """The original easy-oww appended a 200 body to the partial file: silent corruption."""
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", drop_after=1_000_000, times=1)
    faulty_server.add_faults("f.bin", ignore_range=True)
    _, request, _ = fetch(faulty_server, tmp_path, payload)
    assert request.dest.read_bytes() == payload


def test_ignored_ranges_use_one_connection_not_a_retry_loop(faulty_server, tmp_path, payload):
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", accept_ranges="none")
    _, request, _ = fetch(faulty_server, tmp_path, payload, connections=4)
    assert request.dest.read_bytes() == payload
    gets = [r for r in faulty_server.requests_for("f.bin", "GET")]
    assert len(gets) == 1 and not gets[0].range


def test_range_ignored_mid_segmented_download_falls_back(faulty_server, tmp_path, payload):
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", ignore_range=True)  # claims bytes, sends 200
    _, request, _ = fetch(faulty_server, tmp_path, payload, connections=4)
    assert request.dest.read_bytes() == payload


def test_file_changing_on_server_restarts_and_gets_new_bytes(faulty_server, tmp_path, payload):
    new = os.urandom(len(payload))
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", drop_after=1_000_000, times=1)
    faulty_server.add_faults("f.bin", change_after_bytes=900_000, new_data=new)
    fetcher = Fetcher(fast(), lock_dir=tmp_path / "locks")
    dest = tmp_path / "out" / "f.bin"
    # Known size, no known hash: the validator change must force a restart from zero.
    fetcher.fetch(FetchRequest(faulty_server.url("f.bin"), dest, len(new)))
    assert dest.read_bytes() == new


def test_changed_file_with_catalog_hash_fails_clearly(faulty_server, tmp_path, payload):
    new = os.urandom(len(payload))
    faulty_server.set_file("f.bin", new)
    with pytest.raises(HashMismatchError) as err:
        fetch(faulty_server, tmp_path, payload)
    message = str(err.value)
    assert "f.bin" in message and sha(payload).hexdigest in message
    assert sha(new).hexdigest in message and "\n" not in message
    assert not (tmp_path / "out" / "f.bin").exists()
    assert_clean(tmp_path / "out" / "f.bin")


def test_hash_mismatch_can_keep_corrupt_copy(faulty_server, tmp_path, payload):
    faulty_server.set_file("f.bin", payload[::-1])
    with pytest.raises(HashMismatchError, match="kept it as f.bin.corrupt"):
        fetch(faulty_server, tmp_path, payload, keep_corrupt=True)
    assert (tmp_path / "out" / "f.bin.corrupt").read_bytes() == payload[::-1]
    assert not (tmp_path / "out" / "f.bin").exists()


def test_size_differs_from_catalog_fails_before_downloading(faulty_server, tmp_path, payload):
    faulty_server.set_file("f.bin", payload + b"x")
    with pytest.raises(SizeMismatchError, match="catalog says"):
        fetch(faulty_server, tmp_path, payload)
    assert faulty_server.bytes_sent("f.bin") == 0


def test_retries_5xx_and_429_with_retry_after(faulty_server, tmp_path, payload):
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", status=[500, (429, {"Retry-After": "0"}), 503])
    _, request, _ = fetch(faulty_server, tmp_path, payload)
    assert request.dest.read_bytes() == payload
    statuses = [r.status for r in faulty_server.requests_for("f.bin")]
    assert statuses[:3] == [500, 429, 503]


def test_gives_up_after_bounded_attempts(faulty_server, tmp_path, payload):
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", status=500)
    with pytest.raises(DownloadError, match="gave up after 3 attempts"):
        fetch(faulty_server, tmp_path, payload, attempts=3)
    assert len(faulty_server.requests_for("f.bin")) == 3


@pytest.mark.parametrize("status", [404, 403])
def test_404_and_403_fail_at_once_naming_the_url(faulty_server, tmp_path, payload, status):
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", status=status)
    with pytest.raises(DownloadError) as err:
        fetch(faulty_server, tmp_path, payload)
    assert faulty_server.url("f.bin") in str(err.value)
    assert len(faulty_server.requests_for("f.bin")) == 1


def test_stalled_connection_is_noticed_and_resumed(faulty_server, tmp_path, payload):
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", stall_after=500_000, stall_seconds=30, times=1)
    _, request, _ = fetch(faulty_server, tmp_path, payload, read_timeout=0.5)
    assert request.dest.read_bytes() == payload
    assert faulty_server.bytes_sent("f.bin") < len(payload) + 500_000


def test_wrong_content_length_is_a_clear_error_not_a_file(faulty_server, tmp_path, payload):
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", wrong_length=1000)
    # With the catalog's size and hash, the engine reads exactly what it needs and proves it...
    _, request, _ = fetch(faulty_server, tmp_path, payload)
    assert request.dest.read_bytes() == payload
    request.dest.unlink()
    # ...and without them, the promised bytes never come: an error, never a file in place.
    with pytest.raises(DownloadError) as err:
        fetch(faulty_server, tmp_path, payload, known=False, attempts=2)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out" / "f.bin").exists()


def test_no_head_falls_back_to_ranged_get(faulty_server, tmp_path, payload):
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", no_head=True)
    _, request, _ = fetch(faulty_server, tmp_path, payload, connections=4)
    assert request.dest.read_bytes() == payload


def test_expiring_cdn_redirects_are_resolved_again(faulty_server, tmp_path, payload):
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", redirect_to_cdn=True, cdn_token_uses=1, linked_headers=True)
    faulty_server.add_faults("f.bin", drop_after=800_000, times=3)
    _, request, _ = fetch(faulty_server, tmp_path, payload, connections=2)
    assert request.dest.read_bytes() == payload
    assert not any(r.status == 403 for r in faulty_server.requests)


def test_resume_across_fetchers_from_a_sidecar(faulty_server, tmp_path, payload):
    """Interrupt one fetcher (a second process, in effect) and finish with a new one."""
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", drop_after=2_000_000, times=1)
    with pytest.raises(DownloadError):
        fetch(faulty_server, tmp_path, payload, attempts=1)
    sidecar = json.loads((tmp_path / "out" / "f.bin.part.json").read_text())
    have = RangeSet(sidecar["done"]).total()
    assert have > 0
    faulty_server.reset_counters()
    _, request, result = fetch(faulty_server, tmp_path, payload)
    assert request.dest.read_bytes() == payload
    assert result.resumed_from >= have
    assert faulty_server.bytes_sent("f.bin") == len(payload) - result.resumed_from
    ranged = [r for r in faulty_server.requests_for("f.bin", "GET") if r.range]
    assert ranged and ranged[0].headers.get("if-range") == faulty_server.etag("f.bin")


def test_a_complete_part_is_verified_without_asking_for_a_byte(faulty_server, tmp_path, payload):
    """The part holds every byte (its sidecar's last save was one short): it is hashed and
    put in place; asking for `bytes=<size>-` would only earn a 416."""
    faulty_server.set_file("f.bin", payload)
    dest = tmp_path / "out" / "f.bin"
    dest.parent.mkdir(parents=True)
    Path(str(dest) + ".part").write_bytes(payload)
    Path(str(dest) + ".part.json").write_text(json.dumps({
        "version": 1, "url": faulty_server.url("f.bin"), "size": len(payload),
        "validator": faulty_server.etag("f.bin"), "sequential": True,
        "done": [[0, len(payload) - 1]]}))
    _, request, result = fetch(faulty_server, tmp_path, payload)
    assert dest.read_bytes() == payload
    assert result.transferred == 0 and result.resumed_from == len(payload)
    assert faulty_server.requests_for("f.bin", "GET") == []


@pytest.mark.parametrize("connections", [1, 4])
def test_416_to_a_resume_starts_again_from_zero(faulty_server, tmp_path, payload, connections):
    """A server that answers a resume's range with 416 (it lost track of the file, or a proxy
    in between did) does not get the part appended to: the download starts again."""
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", drop_after=1_000_000, times=1)
    refusal = faulty_server.add_faults("f.bin", status=416, ranged_only=True, times=1,
                                       status_headers={"Content-Range": f"bytes */{len(payload)}"})
    _, request, result = fetch(faulty_server, tmp_path, payload, connections=connections)
    assert refusal.fired == 1
    assert [r.status for r in faulty_server.requests_for("f.bin", "GET")].count(416) == 1
    assert request.dest.read_bytes() == payload
    assert_clean(request.dest)


def test_corrupt_resumed_part_is_caught_by_the_hash(faulty_server, tmp_path, payload):
    """Bytes on disk rotted between runs: the hash of the resumed file catches it."""
    faulty_server.set_file("f.bin", payload)
    dest = tmp_path / "out" / "f.bin"
    dest.parent.mkdir(parents=True)
    half = len(payload) // 2
    Path(str(dest) + ".part").write_bytes(b"\0" * half)
    Path(str(dest) + ".part.json").write_text(json.dumps({
        "version": 1, "url": faulty_server.url("f.bin"), "size": len(payload),
        "validator": faulty_server.etag("f.bin"), "sequential": True, "done": [[0, half]]}))
    with pytest.raises(HashMismatchError):
        fetch(faulty_server, tmp_path, payload)
    assert not dest.exists()


def test_second_fetcher_waits_for_the_lock_then_times_out(faulty_server, tmp_path, payload):
    from filelock import FileLock

    faulty_server.set_file("f.bin", payload)
    fetcher = Fetcher(fast(lock_timeout=0.3), lock_dir=tmp_path / "locks")
    dest = tmp_path / "out" / "f.bin"
    name = hashlib.sha1(str(dest.parent.resolve().joinpath("f.bin")).encode()).hexdigest()[:16]
    (tmp_path / "locks").mkdir()
    holder = FileLock(str(tmp_path / "locks" / f"{name}.lock"))
    done, held = threading.Event(), threading.Event()

    def hold() -> None:
        with holder:
            held.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(5)
        with pytest.raises(LockTimeoutError, match="another process"):
            fetcher.fetch(FetchRequest(faulty_server.url("f.bin"), dest, len(payload),
                                       sha(payload)))
        assert faulty_server.bytes_sent("f.bin") == 0
    finally:
        done.set()
        thread.join()


def test_offline_is_a_network_error(tmp_path):
    fetcher = Fetcher(fast(attempts=2), lock_dir=tmp_path / "locks")
    with pytest.raises(NetworkError, match="offline"):
        fetcher.fetch(FetchRequest("http://127.0.0.1:9/x.bin", tmp_path / "x.bin"))


def test_many_files_in_threads_share_one_fetcher(faulty_server, tmp_path):
    blobs = {f"f{i}.bin": os.urandom(300_000 + i) for i in range(8)}
    for name, data in blobs.items():
        faulty_server.set_file(name, data)
    fetcher = Fetcher(fast(connections=2), lock_dir=tmp_path / "locks")
    errors: list[BaseException] = []

    def get(name: str) -> None:
        try:
            fetcher.fetch(FetchRequest(faulty_server.url(name), tmp_path / name,
                                       len(blobs[name]), sha(blobs[name])))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=get, args=(n,)) for n in blobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all((tmp_path / n).read_bytes() == d for n, d in blobs.items())


def test_rangeset_merges_and_finds_gaps():
    rs = RangeSet([[10, 20], [0, 5], [18, 30]])
    assert rs.ranges == [[0, 5], [10, 30]]
    assert rs.prefix() == 5 and rs.total() == 25
    assert rs.missing(40) == [(5, 10), (30, 40)]


FAULTS = st.lists(st.sampled_from(["drop", "status500", "ignore_range", "stall"]), max_size=4)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=1, max_value=400_000), faults=FAULTS,
       connections=st.sampled_from([1, 3]))
def test_any_cut_any_faults_ends_in_the_exact_bytes(faulty_server, tmp_path_factory, cut,
                                                    faults, connections):
    data = hashlib.sha256(str(cut).encode()).digest() * 16_000  # 512,000 bytes
    tmp = tmp_path_factory.mktemp("prop")
    name = f"p{cut}.bin"
    faulty_server.set_file(name, data)
    faulty_server.set_faults(name, drop_after=cut, times=1)
    for fault in faults:
        if fault == "drop":
            faulty_server.add_faults(name, drop_after=cut // 2 + 1, times=1)
        elif fault == "status500":
            faulty_server.add_faults(name, status=500, times=1)
        elif fault == "ignore_range":
            faulty_server.add_faults(name, ignore_range=True, times=1)
        else:
            faulty_server.add_faults(name, stall_after=cut // 3, stall_seconds=5, times=1)
    fetcher = Fetcher(fast(connections=connections, min_segment=64 * 1024, read_timeout=0.3,
                           attempts=8), lock_dir=tmp / "locks")
    dest = tmp / name
    # At most five faults, each once, against eight attempts: every run must end in the exact
    # bytes. (Accepting a DownloadError here would let a resume that corrupts bytes pass, as
    # long as the hash caught it.)
    result = fetcher.fetch(FetchRequest(faulty_server.url(name), dest, len(data), sha(data)))
    assert dest.read_bytes() == data and result.size == len(data)
    assert_clean(dest)


def test_token_goes_to_the_hub_host_only_never_to_the_cdn(faulty_server, tmp_path, payload):
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", redirect_to_cdn=True, cdn_host="localhost",
                             cdn_token_uses=100)
    fetcher = Fetcher(fast(connections=2), lock_dir=tmp_path / "locks")
    dest = tmp_path / "f.bin"
    fetcher.fetch(FetchRequest(faulty_server.url("f.bin"), dest, len(payload), sha(payload),
                               auth_headers={"Authorization": "Bearer hf_secret"},
                               auth_host="127.0.0.1"))
    assert dest.read_bytes() == payload
    hub = [r for r in faulty_server.requests if not r.cdn]
    cdn = [r for r in faulty_server.requests if r.cdn]
    assert hub and cdn
    assert all(r.headers.get("authorization") == "Bearer hf_secret" for r in hub)
    assert not any("authorization" in r.headers for r in cdn)
    assert all("hf_secret" not in r.path for r in faulty_server.requests)


@pytest.mark.parametrize("known_hash", [True, False])
def test_resume_trusts_unsynced_bytes_only_when_a_hash_guards_them(faulty_server, tmp_path,
                                                                  payload, known_hash):
    """`written` (survives a kill) vs `done` (survives a power cut): without a hash to catch
    bytes a power cut lost, only the fdatasync'd ranges are trusted."""
    faulty_server.set_file("f.bin", payload)
    dest = tmp_path / "out" / "f.bin"
    dest.parent.mkdir(parents=True)
    synced, written = 500_000, 1_500_000
    part = bytearray(len(payload))
    part[:written] = payload[:written]
    Path(str(dest) + ".part").write_bytes(bytes(part))  # preallocated, as several connections
    Path(str(dest) + ".part.json").write_text(json.dumps({
        "version": 1, "url": faulty_server.url("f.bin"), "size": len(payload),
        "validator": faulty_server.etag("f.bin"), "sequential": False,
        "done": [[0, synced]], "written": [[0, written]]}))
    fetcher = Fetcher(fast(connections=4), lock_dir=tmp_path / "locks")
    result = fetcher.fetch(FetchRequest(faulty_server.url("f.bin"), dest, len(payload),
                                        sha(payload) if known_hash else None))
    assert dest.read_bytes() == payload
    assert result.resumed_from == (written if known_hash else synced)
    assert faulty_server.bytes_sent("f.bin") == len(payload) - result.resumed_from


@pytest.mark.parametrize("status", [404, 410, 403])
def test_a_gone_url_hands_over_to_its_fallback(faulty_server, tmp_path, payload, status):
    faulty_server.set_file("api.bin", payload)
    faulty_server.set_faults("gone.bin", status=status)
    fetcher = Fetcher(fast(), lock_dir=tmp_path / "locks")
    dest = tmp_path / "f.bin"
    result = fetcher.fetch(FetchRequest(faulty_server.url("gone.bin"), dest, len(payload),
                                        sha(payload),
                                        fallback_urls=(faulty_server.url("api.bin"),)))
    assert dest.read_bytes() == payload and result.url == faulty_server.url("api.bin")
    assert faulty_server.requests_for("gone.bin") and faulty_server.bytes_sent("gone.bin") == 0


def test_a_fallback_is_not_tried_for_a_busy_server_and_the_hash_still_decides(
        faulty_server, tmp_path, payload):
    faulty_server.set_file("f.bin", payload)
    faulty_server.set_faults("f.bin", status=500)
    faulty_server.set_file("other.bin", os.urandom(len(payload)))  # not the same bytes
    fetcher = Fetcher(fast(attempts=2), lock_dir=tmp_path / "locks")
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError):  # 500 is not "gone": no hand-over
        fetcher.fetch(FetchRequest(faulty_server.url("f.bin"), dest, len(payload), sha(payload),
                                   fallback_urls=(faulty_server.url("other.bin"),)))
    assert faulty_server.requests_for("other.bin") == []
    faulty_server.set_faults("f.bin", status=404)
    with pytest.raises(HashMismatchError):  # handed over, but those bytes are not the file
        fetcher.fetch(FetchRequest(faulty_server.url("f.bin"), dest, len(payload), sha(payload),
                                   fallback_urls=(faulty_server.url("other.bin"),)))
    assert not dest.exists()
    faulty_server.remove_file("other.bin")
    with pytest.raises(DownloadError, match="was not found"):  # the last URL's error
        fetcher.fetch(FetchRequest(faulty_server.url("f.bin"), dest, len(payload), sha(payload),
                                   fallback_urls=(faulty_server.url("other.bin"),)))


def test_a_segments_backoff_waits_its_whole_delay_unless_cancelled():
    # The wait between a segment's attempts: a wait that returned early would turn the
    # retry policy's backoff into a burst of requests at a struggling server.
    import threading
    import time

    from easy_oww.transfer.fetch import _LinkedEvent

    outer, inner = threading.Event(), threading.Event()
    linked = _LinkedEvent(outer, inner)
    started = time.monotonic()
    assert linked.wait(0.3) is False
    assert time.monotonic() - started >= 0.3
    outer.set()  # Ctrl-C on the whole download
    assert linked.wait(30) is True and linked.is_set() and not inner.is_set()
    linked.set()  # a failed segment stops its siblings, not the other downloads
    assert inner.is_set()
