"""The fetch engine's edges, asserted as a user sees them (the exact bytes at the right
offsets, a wrong file never called good, progress that does not lie), each fast and in-process
against the loopback servers: scripts/mutation.py runs them for every mutant of fetch.py."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from easy_oww.errors import DownloadError, HashMismatchError, NetworkError, NotFoundError
from easy_oww.hashes import KnownHash
from easy_oww.progress import NullProgress, Task
from easy_oww.transfer.fetch import (
    Cancelled,
    Fetcher,
    FetchOptions,
    FetchRequest,
    _OrderedHasher,
)
from tests.servers.faulty_http import FaultyServer, RequestRecord

KiB = 1024

# A download that hangs fails here rather than waiting for the suite's 300 s (under mutation
# testing a hang is then a plain failure, seen at once).
pytestmark = pytest.mark.timeout(10)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FaultyServer]:
    server = FaultyServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def faulty_server(shared_server: FaultyServer) -> FaultyServer:
    """One server for the module, emptied for each test: starting and stopping one per test
    was most of this file's time, and mutation testing runs it for every mutant."""
    shared_server.reset()
    return shared_server


def sha(data: bytes) -> KnownHash:
    return KnownHash("sha256", hashlib.sha256(data).hexdigest())


def fast(**kw: object) -> FetchOptions:
    base = dict(backoff_base=0.01, backoff_max=0.05, read_timeout=5.0, min_segment=64 * KiB,
                chunk=16 * KiB, sidecar_interval=0.0)
    base.update(kw)
    return FetchOptions(**base)  # type: ignore[arg-type]


def fetcher_for(tmp_path: Path, **kw: object) -> Fetcher:
    return Fetcher(fast(**kw), lock_dir=tmp_path / "locks")


# -- inspect: what `easy-oww doctor` reports about a URL ------------------------------------

def test_inspect_reports_a_ranged_answer_its_size_etag_and_url(faulty_server: FaultyServer,
                                                               tmp_path):
    data = os.urandom(5000)
    etag = faulty_server.set_file("f.bin", data)
    url = faulty_server.url("f.bin")
    seen = fetcher_for(tmp_path).inspect(FetchRequest(url, tmp_path / "f.bin"))
    assert (seen.status, seen.final_url, seen.size, seen.etag, seen.linked_etag, seen.ranges) \
        == (206, url, 5000, etag, None, True)
    (get,) = faulty_server.requests_for("f.bin")
    assert get.method == "GET" and get.range == "bytes=0-0"  # one byte, not the file


@pytest.mark.parametrize("fault", [{"ignore_range": True}, {"accept_ranges": "none"}])
def test_inspect_of_a_server_ignoring_ranges_says_so_and_reads_the_length(
        faulty_server: FaultyServer, tmp_path, fault):
    data = os.urandom(7000)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", **fault)
    seen = fetcher_for(tmp_path).inspect(FetchRequest(faulty_server.url("f.bin"),
                                                      tmp_path / "f.bin"))
    assert (seen.status, seen.size, seen.ranges) == (200, 7000, False)


def test_inspect_follows_the_redirect_and_reports_the_linked_size_and_etag(
        faulty_server: FaultyServer, tmp_path):
    data = os.urandom(3000)
    etag = faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", redirect_to_cdn=True, linked_headers=True)
    url = faulty_server.url("f.bin")
    seen = fetcher_for(tmp_path).inspect(FetchRequest(url, tmp_path / "f.bin"))
    assert seen.status == 206 and seen.ranges
    assert seen.final_url != url and "/cdn/" in seen.final_url
    assert seen.size == 3000 and seen.linked_etag == etag


def test_inspect_retries_a_busy_server_and_names_a_missing_file(faulty_server: FaultyServer,
                                                                tmp_path):
    faulty_server.set_file("f.bin", b"abc")
    faulty_server.set_faults("f.bin", status=[503, 503])
    fetcher = fetcher_for(tmp_path)
    seen = fetcher.inspect(FetchRequest(faulty_server.url("f.bin"), tmp_path / "f.bin"))
    assert seen.status == 206 and seen.size == 3
    assert len(faulty_server.requests_for("f.bin")) == 3
    with pytest.raises(NotFoundError) as caught:
        fetcher.inspect(FetchRequest(faulty_server.url("gone.bin"), tmp_path / "g.bin"))
    assert caught.value.status == 404
    assert isinstance(caught.value, DownloadError)


# -- helpers ---------------------------------------------------------------------------------

class RecordingTask(Task):
    def __init__(self, owner: RecordingProgress, label: str, total: int | None,
                 completed: int) -> None:
        self.owner = owner
        self.started = (label, total, completed)
        self.advanced = 0
        self.resets: list[tuple[int, int | None]] = []
        self.finished: bool | None = None

    def advance(self, n: int) -> None:
        self.advanced += n
        self.owner.advanced.set()

    def reset(self, completed: int = 0, total: int | None = None) -> None:
        self.resets.append((completed, total))
        if self.owner.on_first_reset is not None:
            hook, self.owner.on_first_reset = self.owner.on_first_reset, None
            hook()

    def finish(self, ok: bool = True) -> None:
        self.finished = ok


class RecordingProgress(NullProgress):
    """What a fetch told the user: its log lines and each file's progress."""

    def __init__(self, on_first_reset: Callable[[], None] | None = None) -> None:
        self.logs: list[str] = []
        self.tasks: list[RecordingTask] = []
        self.advanced = threading.Event()
        # The first reset comes right after the probe: a hook there changes the file on the
        # server between the probe and the download, as an upload between two requests does.
        self.on_first_reset = on_first_reset

    def task(self, label: str, total: int | None, completed: int = 0) -> Task:
        self.tasks.append(RecordingTask(self, label, total, completed))
        return self.tasks[-1]

    def log(self, message: str) -> None:
        self.logs.append(message)


def download(server: FaultyServer, tmp_path: Path, name: str, data: bytes | None = None, *,
             known: bool = True, progress: NullProgress | None = None,
             fetcher: Fetcher | None = None, **kw: object):
    """Fetch `name` from `server` into tmp_path/out; (request, result)."""
    fetcher = fetcher or Fetcher(fast(**kw), lock_dir=tmp_path / "locks", progress=progress)
    data = server.content(name) if data is None else data
    request = FetchRequest(server.url(name), tmp_path / "out" / name,
                           len(data) if known else None, sha(data) if known else None)
    return request, fetcher.fetch(request)


def gets(server: FaultyServer, name: str) -> list[RequestRecord]:
    return server.requests_for(name, "GET")


# -- the validator sent as If-Range ------------------------------------------------------------

@pytest.mark.parametrize("etag", ['W/"v1"', None])
def test_a_resume_without_a_strong_etag_validates_with_the_date(faulty_server: FaultyServer,
                                                                 tmp_path, etag):
    """A weak ETag cannot validate a byte range (RFC 9110 §13.1.5): Last-Modified is sent."""
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data, etag=etag, use_etag=etag is not None)
    faulty_server.set_faults("f.bin", drop_after=100 * KiB, times=1)
    request, _ = download(faulty_server, tmp_path, "f.bin", connections=1)
    assert request.dest.read_bytes() == data
    first, resume = gets(faulty_server, "f.bin")
    assert resume.range == f"bytes={100 * KiB}-"
    assert resume.headers["if-range"] == faulty_server.last_modified("f.bin")
    assert resume.status == 206


def test_a_resume_with_a_strong_etag_validates_with_it(faulty_server: FaultyServer, tmp_path):
    data = os.urandom(300 * KiB)
    etag = faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", drop_after=100 * KiB, times=1)
    request, _ = download(faulty_server, tmp_path, "f.bin", connections=1)
    assert request.dest.read_bytes() == data
    assert [r.headers.get("if-range") for r in gets(faulty_server, "f.bin")] == [None, etag]


# -- servers that ignore Range: remembered per route (host and first path segment) -----------

@pytest.mark.parametrize("use_etag", [True, False])
@pytest.mark.parametrize(("first", "second", "same_route"), [
    ("api/a/x.bin", "api/b/y.bin", True),
    ("api/a/x.bin", "records/b/y.bin", False),
    ("X/d/x.bin", "XX/d/y.bin", False),
])
def test_a_route_seen_ignoring_ranges_starts_its_next_file_on_one_connection(
        faulty_server: FaultyServer, tmp_path, use_etag, first, second, same_route):
    """Zenodo ignores Range on /api/… and honours it on /records/… (zenodo/zenodo#2593)."""
    for name in (first, second):
        faulty_server.set_file(name, os.urandom(400 * KiB), use_etag=use_etag)
    # The first file's resume gets the whole (same) file back: its route ignores ranges.
    faulty_server.set_faults(first, drop_after=100 * KiB, times=1)
    faulty_server.add_faults(first, ignore_range=True)
    fetcher = Fetcher(fast(connections=1), lock_dir=tmp_path / "locks")
    request, _ = download(faulty_server, tmp_path, first, fetcher=fetcher)
    assert request.dest.read_bytes() == faulty_server.content(first)
    assert [r.status for r in gets(faulty_server, first)] == [200, 200, 200]

    fetcher.options.connections = 4
    request, _ = download(faulty_server, tmp_path, second, fetcher=fetcher)
    assert request.dest.read_bytes() == faulty_server.content(second)
    ranges = [r.range for r in gets(faulty_server, second)]
    if same_route:
        assert ranges == [None]
    else:
        assert len(ranges) == 4 and None not in ranges


def test_a_file_that_changed_during_a_resume_does_not_mark_its_route(
        faulty_server: FaultyServer, tmp_path):
    """A 200 to a resume with a new validator is a new file, not a server ignoring Range."""
    old, new = os.urandom(400 * KiB), os.urandom(400 * KiB)
    faulty_server.set_file("api/a.bin", old)
    faulty_server.set_faults("api/a.bin", change_after_bytes=50 * KiB, new_data=new,
                             drop_after=100 * KiB, times=1)
    fetcher = Fetcher(fast(connections=1), lock_dir=tmp_path / "locks")
    request, _ = download(faulty_server, tmp_path, "api/a.bin", old, known=False,
                          fetcher=fetcher)
    assert request.dest.read_bytes() == new
    faulty_server.set_file("api/b.bin", os.urandom(400 * KiB))
    fetcher.options.connections = 4
    request, _ = download(faulty_server, tmp_path, "api/b.bin", fetcher=fetcher)
    assert request.dest.read_bytes() == faulty_server.content("api/b.bin")
    assert len(gets(faulty_server, "api/b.bin")) == 4


# -- answers to a resume ---------------------------------------------------------------------

def test_a_resume_refused_with_416_starts_again_from_zero(faulty_server: FaultyServer,
                                                          tmp_path):
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", drop_after=100 * KiB, times=1)
    faulty_server.add_faults("f.bin", status=416, ranged_only=True,
                             status_headers={"Content-Range": f"bytes */{len(data)}"})
    progress = RecordingProgress()
    request, result = download(faulty_server, tmp_path, "f.bin", connections=1, attempts=2,
                               progress=progress)
    assert request.dest.read_bytes() == data
    assert [(r.range, r.status) for r in gets(faulty_server, "f.bin")] == [
        (None, 200), (f"bytes={100 * KiB}-", 416), (None, 200)]
    assert result.resumed_from == 0
    assert progress.tasks[0].resets[-1] == (0, len(data))


@pytest.mark.parametrize("connections", [1, 4])
def test_a_busy_answer_to_a_ranged_request_is_retried(faulty_server: FaultyServer, tmp_path,
                                                      connections):
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", drop_after=100 * KiB, times=1)
    faulty_server.add_faults("f.bin", status=503, ranged_only=True, times=1)
    request, _ = download(faulty_server, tmp_path, "f.bin", connections=connections)
    assert request.dest.read_bytes() == data
    assert 503 in [r.status for r in gets(faulty_server, "f.bin")]


@pytest.mark.parametrize("connections", [1, 4])
def test_a_connection_dropping_every_few_kb_still_gets_there(faulty_server: FaultyServer,
                                                             tmp_path, connections):
    """Each attempt that brings new bytes resets the count of failures (attempts=2 here)."""
    data = os.urandom(1024 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", drop_after=40 * KiB, times=12)
    request, result = download(faulty_server, tmp_path, "f.bin", connections=connections,
                               attempts=2)
    assert request.dest.read_bytes() == data
    assert result.transferred == len(data)


@pytest.mark.parametrize(("connections", "slots"), [(4, 1), (4, 2)])
def test_files_waiting_for_their_hosts_slots_all_arrive(faulty_server: FaultyServer, tmp_path,
                                                        connections, slots):
    """host_connections (Zenodo allows two): a file waits for a slot (over 0.2 s here, while
    the other stalls) and then gets its turn."""
    files = {name: os.urandom(200 * KiB) for name in ("a.bin", "b.bin")}
    for name, data in files.items():
        faulty_server.set_file(name, data)
        faulty_server.set_faults(name, stall_after=10 * KiB, stall_seconds=0.3, times=slots)
    fetcher = Fetcher(fast(connections=connections), lock_dir=tmp_path / "locks")
    results: dict[str, object] = {}

    def one(name: str) -> None:
        request = FetchRequest(faulty_server.url(name), tmp_path / "out" / name,
                               len(files[name]), sha(files[name]), host_connections=slots)
        try:
            results[name] = fetcher.fetch(request)
        except BaseException as exc:  # reported below
            results[name] = exc

    threads = [threading.Thread(target=one, args=(name,)) for name in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, data in files.items():
        assert not isinstance(results[name], BaseException), results[name]
        assert (tmp_path / "out" / name).read_bytes() == data
        if slots == 1:  # a host allowing one connection gets one request per file
            assert len(gets(faulty_server, name)) == 1


# -- what the user is told -------------------------------------------------------------------

@pytest.mark.parametrize("connections", [1, 4])
def test_a_clean_download_reports_every_byte_once_and_logs_nothing(faulty_server: FaultyServer,
                                                                    tmp_path, connections):
    data = os.urandom(1024 * KiB + 7)
    faulty_server.set_file("f.bin", data)
    progress = RecordingProgress()
    # attempts=1: a single spurious failure (a connection taken as cut at its end) would fail it
    request, result = download(faulty_server, tmp_path, "f.bin", connections=connections,
                               attempts=1, progress=progress)
    assert request.dest.read_bytes() == data
    (task,) = progress.tasks
    assert task.started == ("f.bin", len(data), 0)
    assert task.resets == [(0, len(data)), (0, len(data))]  # after the probe, at the start
    assert task.advanced == len(data) == result.transferred == result.size
    assert (result.path, result.url, result.validator, result.resumed_from, result.skipped) == (
        request.dest, request.url, faulty_server.etag("f.bin"), 0, False)
    umask = os.umask(0)
    os.umask(umask)
    assert request.dest.stat().st_mode & 0o777 == 0o644 & ~umask  # as any file the user makes
    assert task.finished is True
    assert progress.logs == []


@pytest.mark.parametrize("size", [0, 1, 2])
def test_tiny_files_arrive_whole(faulty_server: FaultyServer, tmp_path, size):
    data = os.urandom(size)
    faulty_server.set_file("f.bin", data)
    request, result = download(faulty_server, tmp_path, "f.bin", attempts=1)
    assert request.dest.read_bytes() == data and result.size == size


@pytest.mark.parametrize(("label", "use_etag"), [("the label", True), ("", False)])
def test_log_lines_name_the_file_by_its_label_else_its_name(faulty_server: FaultyServer,
                                                            tmp_path, label, use_etag):
    """A server ignoring Range mid-download (with Last-Modified as its only validator, or an
    ETag): one connection takes over, and the log says so under the file's name."""
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data, use_etag=use_etag)
    faulty_server.set_faults("f.bin", ignore_range=True)
    progress = RecordingProgress()
    fetcher = Fetcher(fast(connections=4), lock_dir=tmp_path / "locks", progress=progress)
    request = FetchRequest(faulty_server.url("f.bin"), tmp_path / "out" / "f.bin", len(data),
                           sha(data), label=label)
    fetcher.fetch(request)
    assert request.dest.read_bytes() == data
    assert progress.logs == [f"{label or 'f.bin'}: the server ignores byte ranges; using one "
                             "connection"]


# -- bodies without a length: the end of the connection is the end of the body --------------

@pytest.mark.parametrize("connections", [1, 4])
def test_a_body_without_a_length_is_fetched_whole(faulty_server: FaultyServer, tmp_path,
                                                  connections):
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", no_length=True)
    request, result = download(faulty_server, tmp_path, "f.bin", known=False,
                               connections=connections)
    assert request.dest.read_bytes() == data
    assert result.size == len(data) == result.transferred
    assert result.hash == str(sha(data))


@pytest.mark.parametrize("connections", [1, 4])
def test_a_connection_closed_early_without_a_length_is_resumed_not_taken_as_the_end(
        faulty_server: FaultyServer, tmp_path, connections):
    """Without Content-Length a cut looks like the body's end: the size the catalog gives
    tells it is not, and the rest is fetched."""
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", no_length=True)
    faulty_server.add_faults("f.bin", drop_after=50 * KiB, times=2)
    request, result = download(faulty_server, tmp_path, "f.bin", connections=connections)
    assert request.dest.read_bytes() == data
    assert result.transferred == len(data)


# -- bodies that are not the file's bytes -----------------------------------------------------

@pytest.mark.parametrize("known", [True, False])
def test_a_compressed_answer_is_refused_and_nothing_takes_the_name(faulty_server: FaultyServer,
                                                                   tmp_path, known):
    data = os.urandom(100 * KiB)
    faulty_server.set_file("f.tar.gz", data)
    faulty_server.set_faults("f.tar.gz", body_headers={"Content-Encoding": "x-gzip"})
    with pytest.raises(DownloadError, match="compressed"):
        download(faulty_server, tmp_path, "f.tar.gz", known=known, connections=1)
    assert not (tmp_path / "out" / "f.tar.gz").exists()


def test_an_empty_content_encoding_is_no_encoding(faulty_server: FaultyServer, tmp_path):
    data = os.urandom(100 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", body_headers={"Content-Encoding": ""})
    request, _ = download(faulty_server, tmp_path, "f.bin", connections=1)
    assert request.dest.read_bytes() == data


# -- several connections ---------------------------------------------------------------------

def test_a_slow_connections_stolen_half_is_fetched_once(faulty_server: FaultyServer, tmp_path):
    """One connection stalls: the others take the back half of its range, and it stops where
    its range now ends (no byte fetched twice, progress not past 100 %)."""
    data = os.urandom(10 * 1024 * KiB)  # 2.5 MiB a connection: more than min_steal (2 MiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", stall_after=KiB, stall_seconds=0.5, times=1,
                             ranged_only=True)
    progress = RecordingProgress()
    request, result = download(faulty_server, tmp_path, "f.bin", connections=4,
                               progress=progress, chunk=64 * KiB)
    assert request.dest.read_bytes() == data
    assert len(gets(faulty_server, "f.bin")) > 4  # a steal happened
    assert result.transferred == len(data) == progress.tasks[0].advanced


def test_segments_with_the_default_read_size_are_exact(faulty_server: FaultyServer, tmp_path):
    data = os.urandom(2 * 1024 * KiB + 3)
    faulty_server.set_file("f.bin", data)
    fetcher = Fetcher(FetchOptions(min_segment=256 * KiB), lock_dir=tmp_path / "locks")
    request, result = download(faulty_server, tmp_path, "f.bin", fetcher=fetcher)
    assert request.dest.read_bytes() == data
    assert len(gets(faulty_server, "f.bin")) == 4


def test_a_cancelled_segmented_download_says_so_and_resumes_later(faulty_server: FaultyServer,
                                                                   tmp_path):
    data = os.urandom(1024 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", rate=2 * 1024 * KiB)
    progress = RecordingProgress()
    fetcher = Fetcher(fast(connections=4), lock_dir=tmp_path / "locks", progress=progress)
    threading.Thread(target=lambda: progress.advanced.wait() and fetcher.cancel.set(),
                     daemon=True).start()
    with pytest.raises(Cancelled):
        download(faulty_server, tmp_path, "f.bin", fetcher=fetcher)
    sent = faulty_server.bytes_sent("f.bin")
    assert 0 < sent < len(data)
    faulty_server.clear_faults("f.bin")
    request, result = download(faulty_server, tmp_path, "f.bin", connections=4)
    assert request.dest.read_bytes() == data
    assert result.resumed_from > 0


def test_a_missing_file_behind_a_good_probe_fails_on_every_connection_as_not_found(
        faulty_server: FaultyServer, tmp_path):
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", status=404, ranged_only=True)
    with pytest.raises(NotFoundError) as caught:
        download(faulty_server, tmp_path, "f.bin", connections=4)
    assert caught.value.status == 404
    assert not (tmp_path / "out" / "f.bin").exists()


# -- the file changes on the server between two requests -------------------------------------

@pytest.mark.parametrize("use_etag", [True, False])
def test_a_file_replaced_between_the_probe_and_the_download_resumes_against_the_new_one(
        faulty_server: FaultyServer, tmp_path, use_etag):
    """The download's 200 carries the new version's validator: it is the one recorded, so the
    next run resumes instead of starting over (or, worse, resuming the old file's part)."""
    old, new = os.urandom(300 * KiB), os.urandom(320 * KiB)
    faulty_server.set_file("f.bin", old, use_etag=use_etag)

    def replace() -> None:
        faulty_server.set_file("f.bin", new, use_etag=use_etag)
        faulty_server.set_faults("f.bin", drop_after=100 * KiB, times=1)

    progress = RecordingProgress(on_first_reset=replace)
    request = FetchRequest(faulty_server.url("f.bin"), tmp_path / "out" / "f.bin")
    with pytest.raises(DownloadError):
        Fetcher(fast(connections=1, attempts=1), lock_dir=tmp_path / "locks",
                progress=progress).fetch(request)
    result = Fetcher(fast(connections=1), lock_dir=tmp_path / "locks").fetch(request)
    assert request.dest.read_bytes() == new
    assert result.resumed_from == 100 * KiB
    assert gets(faulty_server, "f.bin")[-1].range == f"bytes={100 * KiB}-"


@pytest.mark.parametrize("connections", [1, 4])
def test_a_file_replaced_in_place_under_the_same_etag_is_never_stitched_from_two_versions(
        faulty_server: FaultyServer, tmp_path, connections):
    """The ETag stayed but the size changed (Content-Range's total says so): what is on disk
    is the old version's, so the download starts again rather than appending the new one."""
    old, new = os.urandom(800 * KiB), os.urandom(1000 * KiB)
    etag = faulty_server.set_file("f.bin", old, etag="v1")
    faulty_server.set_faults("f.bin", change_after_bytes=50 * KiB, new_data=new, new_etag=etag,
                             drop_after=100 * KiB, times=connections)
    request = FetchRequest(faulty_server.url("f.bin"), tmp_path / "out" / "f.bin")
    progress = RecordingProgress()
    result = Fetcher(fast(connections=connections), lock_dir=tmp_path / "locks",
                     progress=progress).fetch(request)
    assert request.dest.read_bytes() == new
    assert result.size == len(new)
    if connections == 1:  # the log says what the server sent
        assert progress.logs[-1] == (
            f"f.bin: the server sent range bytes {100 * KiB}-{len(new) - 1}/{len(new)} for a "
            f"request from {100 * KiB}; starting again from zero (102.4 kB fetched again)")


# -- the hasher keeps memory flat ---------------------------------------------------------------

class _HeldDigest:
    """sha256 whose first update waits to be let go: the hasher is slower than the network."""

    def __init__(self) -> None:
        self.inner = hashlib.sha256()
        self.entered, self.go = threading.Event(), threading.Event()

    def update(self, data: bytes) -> None:
        self.entered.set()
        self.go.wait()
        self.inner.update(data)

    def hexdigest(self) -> str:
        return self.inner.hexdigest()


def test_bytes_waiting_for_a_slow_hasher_never_pass_its_queue(tmp_path):
    """A receiver ahead of the hasher waits once QUEUE_BYTES are held, instead of holding the
    whole file in memory; every byte is still hashed in order."""
    size = _OrderedHasher.QUEUE_BYTES // 2
    chunks = [os.urandom(size) for _ in range(4)]
    part = tmp_path / "f.part"
    part.write_bytes(b"".join(chunks))
    digest = _HeldDigest()
    hasher = _OrderedHasher(part, digest)  # type: ignore[arg-type]
    hasher.feed(0, chunks[0])
    assert digest.entered.wait(10)  # the hasher holds the first chunk, the queue is empty
    hasher.feed(size, chunks[1])
    hasher.feed(2 * size, chunks[2])  # the queue is full now
    fourth = threading.Thread(target=hasher.feed, args=(3 * size, chunks[3]))
    fourth.start()
    fourth.join(0.3)
    blocked = fourth.is_alive()
    digest.go.set()
    fourth.join()
    assert blocked, "a fourth chunk was taken while QUEUE_BYTES waited"
    assert hasher.finish(4 * size) == hashlib.sha256(b"".join(chunks)).hexdigest()


def test_inspect_of_a_server_without_lengths_reports_no_size(faulty_server: FaultyServer,
                                                             tmp_path):
    faulty_server.set_file("f.bin", os.urandom(3000))
    faulty_server.set_faults("f.bin", no_length=True, ignore_range=True,
                             body_headers={"Content-Range": "bytes 0-0/1"})  # on a 200: void
    seen = fetcher_for(tmp_path).inspect(FetchRequest(faulty_server.url("f.bin"),
                                                      tmp_path / "f.bin"))
    assert (seen.status, seen.size, seen.ranges) == (200, None, False)


def test_inspect_says_what_it_retries_and_names_the_url_when_it_gives_up(
        faulty_server: FaultyServer, tmp_path):
    faulty_server.set_file("f.bin", b"abc")
    faulty_server.set_faults("f.bin", status=503)
    progress = RecordingProgress()
    fetcher = Fetcher(fast(attempts=2), lock_dir=tmp_path / "locks", progress=progress)
    url = faulty_server.url("f.bin")
    with pytest.raises(DownloadError) as caught:
        fetcher.inspect(FetchRequest(url, tmp_path / "f.bin"))
    assert url in str(caught.value)
    assert len(progress.logs) == 1 and progress.logs[0].startswith(f"{url}: ")


def test_inspect_after_cancel_asks_nothing(faulty_server: FaultyServer, tmp_path):
    faulty_server.set_file("f.bin", b"abc")
    fetcher = fetcher_for(tmp_path)
    fetcher.cancel.set()
    with pytest.raises(Cancelled):
        fetcher.inspect(FetchRequest(faulty_server.url("f.bin"), tmp_path / "f.bin"))
    assert faulty_server.requests_for("f.bin") == []


def test_inspect_waits_for_its_hosts_only_slot(faulty_server: FaultyServer, tmp_path):
    """`doctor` beside a download on a host allowing one connection waits its turn."""
    data = os.urandom(200 * KiB)
    faulty_server.set_file("big.bin", data)
    faulty_server.set_faults("big.bin", stall_after=10 * KiB, stall_seconds=0.5, times=1)
    faulty_server.set_file("f.bin", b"abc")
    progress = RecordingProgress()
    fetcher = Fetcher(fast(connections=1), lock_dir=tmp_path / "locks", progress=progress)
    download_request = FetchRequest(faulty_server.url("big.bin"), tmp_path / "out" / "big.bin",
                                    len(data), sha(data), host_connections=1)
    fetching = threading.Thread(target=fetcher.fetch, args=(download_request,))
    fetching.start()
    assert progress.advanced.wait(10)  # the download holds the slot, stalled
    seen = fetcher.inspect(FetchRequest(faulty_server.url("f.bin"), tmp_path / "f.bin",
                                        host_connections=1))
    fetching.join()
    assert seen.status == 206 and seen.size == 3
    assert download_request.dest.read_bytes() == data


@pytest.mark.parametrize("keep_corrupt", [False, True])
def test_a_wrong_file_is_never_kept_under_its_name_and_the_error_says_where_it_went(
        faulty_server: FaultyServer, tmp_path, keep_corrupt):
    data = os.urandom(100 * KiB)
    faulty_server.set_file("f.bin", data)
    fetcher = Fetcher(fast(keep_corrupt=keep_corrupt), lock_dir=tmp_path / "locks")
    request = FetchRequest(faulty_server.url("f.bin"), tmp_path / "out" / "f.bin", len(data),
                           sha(b"something else"))
    with pytest.raises(HashMismatchError) as caught:
        fetcher.fetch(request)
    assert not request.dest.exists()
    corrupt = tmp_path / "out" / "f.bin.corrupt"
    if keep_corrupt:
        assert "; kept it as f.bin.corrupt. Run again" in str(caught.value)
        assert corrupt.read_bytes() == data
    else:
        assert "; deleted the download for safety. Run again" in str(caught.value)
        assert not corrupt.exists()
    assert sorted(p.name for p in request.dest.parent.iterdir()) == (
        ["f.bin.corrupt"] if keep_corrupt else [])


# -- redirects, request headers, statuses -------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("absolute", [True, False])
def test_every_redirect_status_is_followed_to_the_bytes(faulty_server: FaultyServer, tmp_path,
                                                        status, absolute):
    data = os.urandom(100 * KiB)
    faulty_server.set_file("moved/f.bin", data)
    faulty_server.set_file("f.bin", b"the old place")
    where = faulty_server.url("moved/f.bin") if absolute else "/moved/f.bin"
    faulty_server.set_faults("f.bin", status=status, status_headers={"Location": where})
    request = FetchRequest(faulty_server.url("f.bin"), tmp_path / "out" / "f.bin", len(data),
                           sha(data))
    Fetcher(fast(connections=1), lock_dir=tmp_path / "locks").fetch(request)
    assert request.dest.read_bytes() == data


def test_a_redirect_loop_ends_after_ten_hops(faulty_server: FaultyServer, tmp_path):
    faulty_server.set_file("f.bin", b"x")
    faulty_server.set_faults("f.bin", status=302,
                             status_headers={"Location": faulty_server.url("f.bin")})
    with pytest.raises(DownloadError, match="too many redirects"):
        fetcher_for(tmp_path, attempts=1).fetch(FetchRequest(faulty_server.url("f.bin"),
                                                             tmp_path / "out" / "f.bin"))
    assert len(faulty_server.requests_for("f.bin")) == 10


def test_requests_ask_for_the_bytes_as_stored_and_say_who_asks(faulty_server: FaultyServer,
                                                               tmp_path):
    data = os.urandom(10 * KiB)
    faulty_server.set_file("f.bin", data)
    fetcher = Fetcher(fast(), lock_dir=tmp_path / "locks", user_agent="easy-oww/9 (test)")
    download(faulty_server, tmp_path, "f.bin", fetcher=fetcher)
    for record in faulty_server.requests_for("f.bin"):
        assert record.headers["accept-encoding"] == "identity"
        assert record.headers["user-agent"] == "easy-oww/9 (test)"
    faulty_server.reset_counters()
    download(faulty_server, tmp_path / "default", "f.bin")
    assert {r.headers["user-agent"] for r in faulty_server.requests_for("f.bin")} == {"easy-oww"}


@pytest.mark.parametrize(("status", "error", "words"), [
    (401, DownloadError, "needs a login or token (for Hugging Face: set HF_TOKEN)"),
    (403, DownloadError, "is forbidden"),
    (404, NotFoundError, "was not found"),
    (410, NotFoundError, "is gone"),
    (400, DownloadError, "was refused (HTTP 400)"),
    (405, DownloadError, "was refused (HTTP 405)"),
    (418, DownloadError, "was refused (HTTP 418)"),
    (451, DownloadError, "was refused (HTTP 451)"),
])
def test_a_refusal_fails_at_once_saying_why(faulty_server: FaultyServer, tmp_path, status,
                                            error, words):
    faulty_server.set_file("f.bin", b"x")
    faulty_server.set_faults("f.bin", status=status)
    url = faulty_server.url("f.bin")
    with pytest.raises(error) as caught:
        fetcher_for(tmp_path).fetch(FetchRequest(url, tmp_path / "out" / "f.bin"))
    assert type(caught.value) is error and caught.value.status == status
    assert f"{url} {words}" in str(caught.value)
    assert len(faulty_server.requests_for("f.bin")) == (2 if status in (400, 405) else 1)


@pytest.mark.parametrize("known", [True, False])
@pytest.mark.parametrize("status", [400, 405, 501])
def test_a_server_refusing_head_is_probed_with_one_ranged_byte(faulty_server: FaultyServer,
                                                               tmp_path, status, known):
    """The size comes from the ranged byte's Content-Range: four connections either way."""
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", status=[status])
    request, _ = download(faulty_server, tmp_path, "f.bin", connections=4, known=known)
    assert request.dest.read_bytes() == data
    head, probe, *segments = faulty_server.requests_for("f.bin")
    assert (head.method, head.status) == ("HEAD", status)
    assert (probe.method, probe.range, probe.status) == ("GET", "bytes=0-0", 206)
    assert len(segments) == 4


# -- rate limits the server states ---------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "{reset}"},
    {"RateLimit": '"resolvers";r=0;t=60'},
])
def test_a_used_up_rate_limit_is_waited_for_once_said_and_capped(faulty_server: FaultyServer,
                                                                  tmp_path, headers):
    """Zenodo's X-RateLimit-* (epoch seconds), the Hub's IETF-draft RateLimit: the next
    request waits for the reset (capped by retry_after_max) instead of earning a 429."""
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    reset = str(int(time.time()) + 60)
    faulty_server.set_faults("f.bin", times=1, body_headers={
        name: value.format(reset=reset) for name, value in headers.items()})
    progress = RecordingProgress()
    began = time.monotonic()
    # The probe's answer says it; the four segments then all wait, and it is said once.
    request, _ = download(faulty_server, tmp_path, "f.bin", progress=progress,
                          retry_after_max=0.3, connections=4)
    assert time.monotonic() - began >= 0.25
    assert request.dest.read_bytes() == data
    assert len(gets(faulty_server, "f.bin")) == 4
    host = faulty_server.url("").split("/")[2]
    assert progress.logs == [f"{host}: its rate limit is used up; waiting 0 s as it asks"]


@pytest.mark.parametrize("headers", [
    {"X-RateLimit-Remaining": "1", "X-RateLimit-Reset": "{reset}"},
    {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "soon"},
    {"X-RateLimit-Remaining": "0"},
    {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "{past}"},
    {"RateLimit": '"resolvers";r=3;t=60'},
    {"RateLimit": '"resolvers";r=0;t=soon'},
    {"RateLimit": '"resolvers";r=0'},
    {"RateLimit": '"resolvers";r=0;t=0'},
    {"RateLimit": '"resolvers";t=60'},
])
def test_a_rate_limit_with_requests_left_or_unreadable_is_no_wait(faulty_server: FaultyServer,
                                                                  tmp_path, headers):
    data = os.urandom(10 * KiB)
    faulty_server.set_file("f.bin", data)
    now = int(time.time())
    faulty_server.set_faults("f.bin", body_headers={
        name: value.format(reset=now + 600, past=now - 600) for name, value in headers.items()})
    progress = RecordingProgress()
    request, _ = download(faulty_server, tmp_path, "f.bin", progress=progress, connections=1)
    assert request.dest.read_bytes() == data
    assert progress.logs == []


# -- another process holds the file's lock --------------------------------------------------------

class _LogEvents(RecordingProgress):
    def __init__(self) -> None:
        super().__init__()
        self.logged = threading.Event()

    def log(self, message: str) -> None:
        super().log(message)
        self.logged.set()


@pytest.mark.parametrize("done_by_other", [True, False])
def test_a_file_another_process_was_downloading_is_taken_as_done_or_fetched(
        faulty_server: FaultyServer, tmp_path, done_by_other):
    from filelock import FileLock  # the other process's side of the lock

    data = os.urandom(50 * KiB)
    faulty_server.set_file("f.bin", data)
    progress = _LogEvents()
    fetcher = Fetcher(fast(), lock_dir=tmp_path / "locks", progress=progress)
    dest = tmp_path / "out" / "f.bin"
    completed: list[object] = []
    request = FetchRequest(faulty_server.url("f.bin"), dest, len(data), sha(data),
                           done_by_other=lambda: done_by_other, on_complete=completed.append)
    other = FileLock(str(fetcher.lock_file(dest)))
    other.acquire()
    outcome: list[object] = []
    waiting = threading.Thread(target=lambda: outcome.append(fetcher.fetch(request)))
    waiting.start()
    assert progress.logged.wait(10)  # it says it waits for the other process
    if done_by_other:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)  # what the other process left
    other.release()
    waiting.join()
    (result,) = outcome
    assert dest.read_bytes() == data
    assert progress.logs[0].startswith("f.bin: another easy-oww process is downloading it")
    if done_by_other:
        assert (result.skipped, result.size, result.transferred, result.resumed_from,
                result.hash, result.validator) == (True, len(data), 0, len(data),
                                                   str(sha(data)), None)
        assert faulty_server.requests_for("f.bin") == [] and completed == []
    else:
        assert not result.skipped and result.transferred == len(data)
        assert completed == [result]
    assert other.acquire(timeout=0) and other.is_locked  # the lock was let go
    other.release()


def test_the_result_is_recorded_while_the_lock_is_held(faulty_server: FaultyServer, tmp_path):
    from filelock import FileLock, Timeout  # a second holder, to see the lock is held

    data = os.urandom(20 * KiB)
    faulty_server.set_file("f.bin", data)
    fetcher = fetcher_for(tmp_path)
    dest = tmp_path / "out" / "f.bin"
    held: list[bool] = []

    def record(result: object) -> None:
        try:
            FileLock(str(fetcher.lock_file(dest))).acquire(timeout=0)
            held.append(False)
        except Timeout:
            held.append(True)

    fetcher.fetch(FetchRequest(faulty_server.url("f.bin"), dest, len(data), sha(data),
                               on_complete=record))
    assert held == [True]


# -- what the user is told about a restart --------------------------------------------------------

@pytest.mark.parametrize("why", ["changed", "no ranges"])
def test_a_part_that_cannot_be_resumed_is_said_with_its_cost(faulty_server: FaultyServer,
                                                             tmp_path, why):
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", drop_after=100 * KiB, times=1)
    request = FetchRequest(faulty_server.url("f.bin"), tmp_path / "out" / "f.bin", len(data),
                           sha(data))
    with pytest.raises(DownloadError):
        Fetcher(fast(connections=1, attempts=1), lock_dir=tmp_path / "locks").fetch(request)
    sidecar = tmp_path / "out" / "f.bin.part.json"
    saved = json.loads(sidecar.read_text())
    saved["done"] = [[0, 50 * KiB]]  # synced: less than written, which is what is on disk
    sidecar.write_text(json.dumps(saved))
    if why == "changed":
        faulty_server.set_file("f.bin", data, etag="another version")
        said = "the file on the server is not the one the part was cut from"
    else:
        faulty_server.set_faults("f.bin", accept_ranges="none")
        said = "the server does not take byte ranges"
    progress = RecordingProgress()
    result = Fetcher(fast(connections=1), lock_dir=tmp_path / "locks",
                     progress=progress).fetch(request)
    assert request.dest.read_bytes() == data and result.resumed_from == 0
    assert progress.logs == [f"f.bin: {said}; starting again from zero (102.4 kB already on "
                             "disk are fetched again)"]


@pytest.mark.parametrize("connections", [1, 4])
def test_verbose_says_each_decision(faulty_server: FaultyServer, tmp_path, connections):
    data = os.urandom(300 * KiB)
    etag = faulty_server.set_file("f.bin", data)
    progress = RecordingProgress()
    download(faulty_server, tmp_path, "f.bin", progress=progress, connections=connections,
             verbose=True)
    how = "4 connections" if connections == 4 else "one connection"
    assert progress.logs == [f"f.bin: {len(data):,} bytes, validator {etag}; from the start, "
                             f"{how}"]


def test_verbose_says_where_a_resume_starts(faulty_server: FaultyServer, tmp_path):
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data, use_etag=False)
    faulty_server.set_faults("f.bin", no_length=True)
    faulty_server.add_faults("f.bin", drop_after=100 * KiB, times=1)
    request = FetchRequest(faulty_server.url("f.bin"), tmp_path / "out" / "f.bin", len(data),
                           sha(data))
    with pytest.raises(DownloadError):
        Fetcher(fast(connections=1, attempts=1), lock_dir=tmp_path / "locks").fetch(request)
    progress = RecordingProgress()
    Fetcher(fast(connections=1, verbose=True), lock_dir=tmp_path / "locks",
            progress=progress).fetch(request)
    assert request.dest.read_bytes() == data
    assert progress.logs == [f"f.bin: ? bytes, validator {faulty_server.last_modified('f.bin')}; "
                             f"resuming at byte {100 * KiB:,}, one connection"]


def test_a_server_that_keeps_refusing_resumes_is_given_up_after_three_fresh_starts(
        faulty_server: FaultyServer, tmp_path):
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", drop_after=100 * KiB)
    faulty_server.add_faults("f.bin", status=416, ranged_only=True)
    progress = RecordingProgress()
    with pytest.raises(DownloadError, match="again after 3 fresh starts"):
        download(faulty_server, tmp_path, "f.bin", connections=1, progress=progress)
    assert [r.range for r in gets(faulty_server, "f.bin")].count(None) == 4
    assert progress.tasks[0].finished is False
    restarts = [line for line in progress.logs if "starting again from zero" in line]
    assert len(restarts) == 3 and all("(102.4 kB fetched again)" in line for line in restarts)


@pytest.mark.parametrize("connections", [1, 4])
def test_a_206_without_content_range_is_never_written(faulty_server: FaultyServer, tmp_path,
                                                      connections):
    """Where a partial answer's bytes belong is unknown without Content-Range: not written,
    the download starts again, and after three such starts it gives up, saying why."""
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", drop_after=100 * KiB)
    faulty_server.add_faults("f.bin", status=206, ranged_only=True)
    with pytest.raises(DownloadError, match="again after 3 fresh starts") as caught:
        download(faulty_server, tmp_path, "f.bin", connections=connections)
    assert type(caught.value) is DownloadError
    assert not (tmp_path / "out" / "f.bin").exists()


class _FailingDigest:
    def update(self, data: bytes) -> None:
        raise OSError("the disk went away")

    def hexdigest(self) -> str:  # pragma: no cover - never reached
        return ""


def test_a_hasher_that_fails_lets_its_feeder_go_and_says_why(tmp_path):
    """Once the hasher has failed, a receiver feeding it is not left waiting for room in its
    queue for ever; finish() names the failure."""
    size = _OrderedHasher.QUEUE_BYTES // 2
    part = tmp_path / "f.part"
    part.write_bytes(os.urandom(4 * size))
    hasher = _OrderedHasher(part, _FailingDigest())  # type: ignore[arg-type]
    for index in range(4):  # more than QUEUE_BYTES: would block on a live, stuck hasher
        hasher.feed(index * size, b"\0" * size)
    with pytest.raises(DownloadError, match="hash it failed: the disk went away"):
        hasher.finish(4 * size)


def test_a_complete_part_one_byte_past_the_hashers_read_size_is_verified(
        faulty_server: FaultyServer, tmp_path):
    """The part holds every byte; reading it back ends with a read of one byte."""
    data = os.urandom(2 * 1024 * KiB + 1)
    faulty_server.set_file("f.bin", data)
    dest = tmp_path / "out" / "f.bin"
    dest.parent.mkdir(parents=True)
    Path(str(dest) + ".part").write_bytes(data)
    Path(str(dest) + ".part.json").write_text(json.dumps({
        "version": 1, "url": faulty_server.url("f.bin"), "size": len(data),
        "validator": faulty_server.etag("f.bin"), "sequential": True,
        "done": [[0, len(data)]]}))
    _, result = download(faulty_server, tmp_path, "f.bin", connections=1)
    assert dest.read_bytes() == data
    assert result.transferred == 0 and result.resumed_from == len(data)


def test_a_busy_servers_retry_after_is_capped(faulty_server: FaultyServer, tmp_path):
    data = os.urandom(10 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", status=[(503, {"Retry-After": "3600"})])
    began = time.monotonic()
    request, _ = download(faulty_server, tmp_path, "f.bin", retry_after_max=0.2,
                          backoff_max=30.0)
    assert request.dest.read_bytes() == data
    assert 0.15 <= time.monotonic() - began < 5  # the server's hour, capped at 0.2 s


@pytest.mark.parametrize("offline_attempts", [1, 2])
def test_no_server_at_all_is_given_up_after_the_offline_attempts(tmp_path, offline_attempts):
    import socket  # a port nothing listens on

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    progress = RecordingProgress()
    fetcher = Fetcher(fast(offline_attempts=offline_attempts), lock_dir=tmp_path / "locks",
                      progress=progress)
    with pytest.raises(NetworkError):
        fetcher.fetch(FetchRequest(f"http://127.0.0.1:{port}/f.bin", tmp_path / "out" / "f.bin"))
    assert len(progress.logs) == offline_attempts - 1  # one "retrying" line per retry


def test_without_a_lock_folder_the_lock_lives_in_a_hidden_one_beside_the_file(
        faulty_server: FaultyServer, tmp_path):
    data = os.urandom(10 * KiB)
    faulty_server.set_file("f.bin", data)
    fetcher = Fetcher(fast())
    dest = tmp_path / "out" / "f.bin"
    fetcher.fetch(FetchRequest(faulty_server.url("f.bin"), dest, len(data), sha(data)))
    assert dest.read_bytes() == data
    assert fetcher.lock_file(dest).parent == tmp_path / "out" / ".locks"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".locks", "f.bin"]


def test_a_lock_held_on_one_file_does_not_hold_up_another(faulty_server: FaultyServer,
                                                          tmp_path):
    from filelock import FileLock  # another process's lock on a different file

    data = os.urandom(10 * KiB)
    faulty_server.set_file("b.bin", data)
    fetcher = Fetcher(fast(lock_timeout=0.2), lock_dir=tmp_path / "locks")
    other = FileLock(str(fetcher.lock_file(tmp_path / "out" / "a.bin")))
    other.acquire()
    try:
        request, _ = download(faulty_server, tmp_path, "b.bin", fetcher=fetcher)
    finally:
        other.release()
    assert request.dest.read_bytes() == data


@pytest.mark.parametrize("headers", [
    {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "{reset}"},
    {"RateLimit": '"resolvers";r=0;t=1'},
])
def test_a_rate_limit_resetting_within_seconds_is_waited_for_as_stated(
        faulty_server: FaultyServer, tmp_path, headers):
    """Not capped (retry_after_max is a minute here): the wait is the one the server states."""
    data = os.urandom(10 * KiB)
    faulty_server.set_file("f.bin", data)
    began = time.time()
    faulty_server.set_faults("f.bin", times=1, body_headers={
        name: value.format(reset=int(began) + 2) for name, value in headers.items()})
    progress = RecordingProgress()
    request, _ = download(faulty_server, tmp_path, "f.bin", progress=progress,
                          retry_after_max=60.0, connections=1)
    assert request.dest.read_bytes() == data
    assert len(progress.logs) == 1 and "its rate limit is used up" in progress.logs[0]
    assert time.time() - began < 5  # two seconds at most, not the minute of the cap


def test_each_new_rate_limit_is_said(faulty_server: FaultyServer, tmp_path):
    for name in ("a.bin", "b.bin"):
        faulty_server.set_file(name, os.urandom(10 * KiB))
    faulty_server.set_faults("a.bin", times=2, body_headers={"RateLimit": "r=0;t=60"})
    progress = RecordingProgress()
    fetcher = Fetcher(fast(connections=1, retry_after_max=0.1), lock_dir=tmp_path / "locks",
                      progress=progress)
    download(faulty_server, tmp_path, "a.bin", fetcher=fetcher)  # its GET waits
    download(faulty_server, tmp_path, "b.bin", fetcher=fetcher)  # a.bin's GET set a new one
    assert len(progress.logs) == 2


def test_headers_that_mean_nothing_on_a_plain_answer_are_ignored(faulty_server: FaultyServer,
                                                                  tmp_path):
    """A Location (meaningful on a redirect only) and a Content-Range (on a 206 only) on a
    200 neither send the fetch elsewhere nor change the size."""
    data = os.urandom(100 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", body_headers={"Location": faulty_server.url("f.bin"),
                                                    "Content-Range": "bytes 0-0/1"})
    request, _ = download(faulty_server, tmp_path, "f.bin", connections=1)
    assert request.dest.read_bytes() == data
    assert [r.method for r in faulty_server.requests_for("f.bin")] == ["HEAD", "GET"]


@pytest.mark.parametrize("connections", [1, 4])
def test_the_size_a_redirect_states_stands_when_the_cdn_gives_none(faulty_server: FaultyServer,
                                                                   tmp_path, connections):
    """The Hub's X-Linked-Size is on its redirect; the CDN behind may send no length."""
    data = os.urandom(300 * KiB)
    etag = faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", redirect_to_cdn=True, cdn_token_uses=100,
                             linked_headers=True)
    faulty_server.add_faults("f.bin", no_length=True)
    url = faulty_server.url("f.bin")
    seen = fetcher_for(tmp_path).inspect(FetchRequest(url, tmp_path / "f.bin"))
    assert (seen.size, seen.linked_etag) == (len(data), etag)
    remote = fetcher_for(tmp_path).probe(FetchRequest(url, tmp_path / "f.bin"))
    assert (remote.size, remote.linked_etag, remote.accepts_ranges) == (len(data), etag, True)
    assert remote.url != url and "/cdn/" in remote.url  # where the redirects ended
    progress = RecordingProgress()
    request, result = download(faulty_server, tmp_path, "f.bin", known=False,
                               progress=progress, connections=connections)
    assert request.dest.read_bytes() == data and result.size == len(data)
    assert progress.tasks[0].resets[0] == (0, len(data))  # the progress bar knows the size


@pytest.mark.parametrize("connections", [1, 4])
def test_a_server_busy_for_good_is_given_up_naming_the_url(faulty_server: FaultyServer,
                                                           tmp_path, connections):
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", status=503, ranged_only=connections > 1)
    progress = RecordingProgress()
    url = faulty_server.url("f.bin")
    with pytest.raises(DownloadError) as caught:
        download(faulty_server, tmp_path, "f.bin", connections=connections, attempts=2,
                 progress=progress)
    assert url in str(caught.value)
    assert progress.logs and all(line.startswith(f"{url}: ") for line in progress.logs)
    assert "retrying" in progress.logs[0]


@pytest.mark.parametrize("algorithm", ["sha256", "md5", "sha1", "gitsha1"])
@pytest.mark.parametrize("connections", [1, 4])
def test_each_catalog_hash_algorithm_checks_the_download(faulty_server: FaultyServer, tmp_path,
                                                         algorithm, connections):
    """Zenodo states md5, the Hub sha256 (LFS) or git's blob sha1 (small files)."""
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    if algorithm == "gitsha1":
        hexdigest = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    else:
        hexdigest = hashlib.new(algorithm, data).hexdigest()
    request = FetchRequest(faulty_server.url("f.bin"), tmp_path / "out" / "f.bin", len(data),
                           KnownHash(algorithm, hexdigest))
    result = fetcher_for(tmp_path, connections=connections).fetch(request)
    assert request.dest.read_bytes() == data
    assert result.hash == f"{algorithm}:{hexdigest}"


def test_the_sidecar_saved_when_a_download_fails_survives_a_power_cut(
        faulty_server: FaultyServer, tmp_path, monkeypatch):
    """What a failed run recorded is what the next run resumes from: that save is durable."""
    from tests.durability import SyncLog  # wraps os's sync and rename calls for this test

    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", drop_after=100 * KiB, times=1)
    log = SyncLog(monkeypatch)
    with pytest.raises(DownloadError):
        download(faulty_server, tmp_path, "f.bin", connections=1, attempts=1,
                 sidecar_interval=3600.0)
    log.assert_durable_rename(tmp_path / "out" / "f.bin.part.json", writes_seen=False)


def test_a_resumed_part_is_hashed_in_order_read_back_then_fed(tmp_path):
    """The bytes already on disk are read back while new ones arrive; the digest is of the
    whole file in order."""
    size = 1024 * KiB  # the hasher's read size
    old, new = os.urandom(2 * size), os.urandom(size)
    part = tmp_path / "f.part"
    part.write_bytes(old + new)  # new bytes are on disk before they are handed over
    digest = _HeldDigest()
    hasher = _OrderedHasher(part, digest)  # type: ignore[arg-type]
    hasher.advance_to(len(old))
    assert digest.entered.wait(10)  # reading back the first MiB
    hasher.feed(len(old), new)  # arrives while the read-back is behind it
    digest.go.set()
    assert hasher.finish(len(old) + len(new)) == hashlib.sha256(old + new).hexdigest()


def test_a_part_shorter_than_its_bytes_is_an_error_not_a_hang(tmp_path):
    part = tmp_path / "f.part"
    part.write_bytes(os.urandom(1000))
    hasher = _OrderedHasher(part, hashlib.sha256())
    with pytest.raises(DownloadError, match="shorter than the bytes written"):
        hasher.finish(2000)


def test_a_resume_answered_with_an_unknown_total_goes_on(faulty_server: FaultyServer, tmp_path):
    """`Content-Range: bytes a-b/*` (total unknown, RFC 9110 §14.4) lines up all the same."""
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", drop_after=100 * KiB, times=1)
    faulty_server.add_faults("f.bin", ranged_only=True, body_headers={
        "Content-Range": f"bytes {100 * KiB}-{len(data) - 1}/*"})
    request, result = download(faulty_server, tmp_path, "f.bin", connections=1)
    assert request.dest.read_bytes() == data
    assert [(r.range, r.status) for r in gets(faulty_server, "f.bin")] == [
        (None, 200), (f"bytes={100 * KiB}-", 206)]


def test_a_part_ahead_of_its_sidecar_resumes_from_its_length_under_a_hash(
        faulty_server: FaultyServer, tmp_path):
    """A process killed between a write and the next save leaves the part ahead of what the
    sidecar recorded: written in order and guarded by the hash, the part's length is trusted."""
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", drop_after=100 * KiB, times=1)
    with pytest.raises(DownloadError):
        download(faulty_server, tmp_path, "f.bin", connections=1, attempts=1)
    sidecar = tmp_path / "out" / "f.bin.part.json"
    saved = json.loads(sidecar.read_text())
    for key in ("done", "written"):  # as if the last save came 50 KiB earlier
        saved[key] = [[0, 50 * KiB]]
    sidecar.write_text(json.dumps(saved))
    progress = RecordingProgress()
    request, result = download(faulty_server, tmp_path, "f.bin", connections=1,
                               progress=progress)
    assert request.dest.read_bytes() == data
    assert result.resumed_from == 100 * KiB
    assert progress.tasks[0].resets[-1] == (100 * KiB, len(data))  # the bar starts there


@pytest.mark.parametrize("connections", [1, 4])
def test_no_accept_ranges_header_is_no_refusal(faulty_server: FaultyServer, tmp_path,
                                               connections):
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", drop_headers=("Accept-Ranges",))
    request, _ = download(faulty_server, tmp_path, "f.bin", connections=connections)
    assert request.dest.read_bytes() == data
    assert len(gets(faulty_server, "f.bin")) == connections


def test_a_cancel_during_a_retrys_wait_stops_the_download_at_once(faulty_server: FaultyServer,
                                                                  tmp_path):
    data = os.urandom(100 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", status=503)
    progress = _LogEvents()
    fetcher = Fetcher(fast(connections=1, backoff_base=60.0, backoff_max=60.0),
                      lock_dir=tmp_path / "locks", progress=progress)
    threading.Thread(target=lambda: progress.logged.wait() and fetcher.cancel.set(),
                     daemon=True).start()
    began = time.monotonic()
    with pytest.raises(Cancelled):
        download(faulty_server, tmp_path, "f.bin", fetcher=fetcher)
    assert time.monotonic() - began < 30  # not the minute's wait


def test_a_download_waits_for_its_hosts_only_slot_from_its_first_request(
        faulty_server: FaultyServer, tmp_path):
    """A second file on a host allowing one connection waits, from its probe on, while the
    first holds the slot (stalled), then arrives whole."""
    first, second = os.urandom(200 * KiB), os.urandom(50 * KiB)
    faulty_server.set_file("a.bin", first)
    faulty_server.set_faults("a.bin", stall_after=10 * KiB, stall_seconds=0.5, times=1)
    faulty_server.set_file("b.bin", second)
    progress = RecordingProgress()
    fetcher = Fetcher(fast(connections=1), lock_dir=tmp_path / "locks", progress=progress)
    holder = FetchRequest(faulty_server.url("a.bin"), tmp_path / "out" / "a.bin", len(first),
                          sha(first), host_connections=1)
    fetching = threading.Thread(target=fetcher.fetch, args=(holder,))
    fetching.start()
    assert progress.advanced.wait(10)  # a.bin holds the slot, stalled
    waiter = FetchRequest(faulty_server.url("b.bin"), tmp_path / "out" / "b.bin", len(second),
                          sha(second), host_connections=1)
    fetcher.fetch(waiter)
    fetching.join()
    assert holder.dest.read_bytes() == first and waiter.dest.read_bytes() == second


def test_a_206_to_the_probes_ranged_byte_outweighs_accept_ranges_none(
        faulty_server: FaultyServer, tmp_path):
    """A server that says "Accept-Ranges: none" yet answers a ranged request with 206 does
    take ranges: the answer, not the header, decides."""
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", status=[405])  # HEAD refused: the probe is a ranged GET
    faulty_server.add_faults("f.bin", body_headers={"Accept-Ranges": "none"})
    request, _ = download(faulty_server, tmp_path, "f.bin", connections=4)
    assert request.dest.read_bytes() == data
    assert len(gets(faulty_server, "f.bin")) == 1 + 4  # the probe's byte, then four segments


@pytest.mark.parametrize("cuts", [1, 2])
def test_a_cut_without_a_length_size_or_hash_is_noticed_and_the_rest_fetched(
        faulty_server: FaultyServer, tmp_path, cuts):
    """Nothing tells a close-delimited body's cut from its end: a request for what comes
    after it does (416: that was all; bytes: it was cut). It was kept as the whole file."""
    data = os.urandom(300 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", no_length=True)
    faulty_server.add_faults("f.bin", drop_after=50 * KiB, times=cuts)
    request, result = download(faulty_server, tmp_path, "f.bin", known=False)
    assert request.dest.read_bytes() == data
    assert result.size == len(data) == result.transferred  # resumed, never started over
    assert result.hash == str(sha(data))
    asked = [r.range for r in faulty_server.requests_for("f.bin")]
    assert asked[-1] == f"bytes={len(data)}-"  # the last one: what follows the end (416)


def test_without_ranges_a_body_without_a_length_is_taken_as_it_came(
        faulty_server: FaultyServer, tmp_path):
    """A server ignoring ranges answers the question with the whole file again: nothing
    tells a cut from the end then, and the bytes are taken as they came (as before)."""
    data = os.urandom(100 * KiB)
    faulty_server.set_file("f.bin", data)
    faulty_server.set_faults("f.bin", no_length=True, ignore_range=True)
    request, result = download(faulty_server, tmp_path, "f.bin", known=False)
    assert request.dest.read_bytes() == data and result.size == len(data)
    gets = faulty_server.requests_for("f.bin", "GET")
    assert [(r.range, r.status) for r in gets] == [(None, 200), (f"bytes={len(data)}-", 200)]
