"""The loopback servers do what the download-engine tests rely on.

Each fault has a test that fails if the fault were not implemented.  The NginxServer
wrapper is tested at the end of this file.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from tests.servers import nginx as nginx_module
from tests.servers.faulty_http import FaultyServer
from tests.servers.nginx import NginxServer

REPO = Path(__file__).resolve().parents[2]
DATA = bytes(range(256)) * 400  # 102_400 bytes, every offset distinguishable enough
OTHER = bytes(reversed(DATA))


@dataclass
class Got:
    status: int
    headers: dict[str, str]
    body: bytes
    error: Exception | None = None
    elapsed: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


_pool = urllib3.PoolManager(retries=False)


def get(url: str, method: str = "GET", timeout: float = 10.0, **headers: str) -> Got:
    """One request, no retries, no redirects; body kept even when the read fails."""
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
    t0 = time.monotonic()
    resp = _pool.request(
        method, url, headers=hdrs, preload_content=False, timeout=timeout, redirect=False
    )
    chunks: list[bytes] = []
    error: Exception | None = None
    try:
        while True:
            chunk = resp.read1(65536)
            if not chunk:
                break
            chunks.append(chunk)
    except (ProtocolError, ReadTimeoutError) as exc:
        error = exc
    finally:
        if error is None:
            resp.release_conn()
        else:
            resp.close()
    return Got(resp.status, dict(resp.headers), b"".join(chunks), error, time.monotonic() - t0)


# -- correct behaviour --------------------------------------------------------------------


def test_get_sends_validators_and_length(faulty_server: FaultyServer) -> None:
    etag = faulty_server.set_file("a.bin", DATA)
    got = get(faulty_server.url("a.bin"))
    assert got.status == 200 and got.body == DATA and got.error is None
    assert etag == f'"{hashlib.sha1(DATA).hexdigest()}"'
    assert got.headers["ETag"] == etag
    assert got.headers["Accept-Ranges"] == "bytes"
    assert got.headers["Content-Length"] == str(len(DATA))
    assert got.headers["Last-Modified"] == faulty_server.last_modified("a.bin")
    assert faulty_server.bytes_sent("a.bin") == len(DATA)


def test_head_has_headers_and_no_body(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    got = get(faulty_server.url("a.bin"), "HEAD")
    assert got.status == 200 and got.body == b""
    assert got.headers["Content-Length"] == str(len(DATA))
    assert got.headers["ETag"] == faulty_server.etag("a.bin")
    assert faulty_server.bytes_sent("a.bin") == 0


def test_unknown_path_is_404(faulty_server: FaultyServer) -> None:
    assert get(faulty_server.url("nope.bin")).status == 404
    assert get(faulty_server.url("nope.bin"), "HEAD").status == 404


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [
        ("bytes=10-19", 10, 19),
        ("bytes=100000-", 100000, len(DATA) - 1),
        ("bytes=-5", len(DATA) - 5, len(DATA) - 1),
        ("bytes=100-999999999", 100, len(DATA) - 1),
    ],
)
def test_range_answers_206(faulty_server: FaultyServer, spec: str, start: int, end: int) -> None:
    faulty_server.set_file("a.bin", DATA)
    got = get(faulty_server.url("a.bin"), Range=spec)
    assert got.status == 206
    assert got.body == DATA[start : end + 1]
    assert got.headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert got.headers["Content-Length"] == str(end - start + 1)
    assert faulty_server.bytes_sent("a.bin") == end - start + 1


def test_unsatisfiable_range_is_416(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_file("empty.bin", b"")
    for path, spec, size in [
        ("a.bin", f"bytes={len(DATA)}-", len(DATA)),
        ("a.bin", "bytes=-0", len(DATA)),
        ("empty.bin", "bytes=0-", 0),
    ]:
        got = get(faulty_server.url(path), Range=spec)
        assert got.status == 416, spec
        assert got.headers["Content-Range"] == f"bytes */{size}"


@pytest.mark.parametrize("spec", ["bytes=0-1,5-6", "bytes=9-3", "items=0-1", "bytes=x-"])
def test_unsupported_or_invalid_range_is_ignored(faulty_server: FaultyServer, spec: str) -> None:
    faulty_server.set_file("a.bin", DATA)
    got = get(faulty_server.url("a.bin"), Range=spec)
    assert got.status == 200 and got.body == DATA


def test_if_range_with_etag(faulty_server: FaultyServer) -> None:
    old = faulty_server.set_file("a.bin", DATA)
    assert old is not None
    assert get(faulty_server.url("a.bin"), Range="bytes=5-", If_Range=old).status == 206
    weak = get(faulty_server.url("a.bin"), Range="bytes=5-", If_Range="W/" + old)
    assert weak.status == 200 and weak.body == DATA

    new = faulty_server.set_file("a.bin", OTHER)
    assert new != old
    stale = get(faulty_server.url("a.bin"), Range="bytes=5-", If_Range=old)
    assert stale.status == 200 and stale.body == OTHER and stale.headers["ETag"] == new


def test_if_range_with_date_when_no_etag(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA, use_etag=False)
    first = get(faulty_server.url("a.bin"), "HEAD")
    assert "ETag" not in first.headers
    date = first.headers["Last-Modified"]
    assert get(faulty_server.url("a.bin"), Range="bytes=5-", If_Range=date).status == 206

    faulty_server.set_file("a.bin", OTHER, use_etag=False)
    stale = get(faulty_server.url("a.bin"), Range="bytes=5-", If_Range=date)
    assert stale.status == 200 and stale.body == OTHER


def test_explicit_validators(faulty_server: FaultyServer) -> None:
    lm = "Tue, 01 Jul 2025 10:00:00 GMT"
    faulty_server.set_file("a.bin", DATA, etag="v1", last_modified=lm)
    got = get(faulty_server.url("a.bin"), "HEAD")
    assert got.headers["ETag"] == '"v1"' and got.headers["Last-Modified"] == lm


def test_never_compresses(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.txt", b"a" * 50_000)
    got = get(faulty_server.url("a.txt"), Accept_Encoding="gzip, br")
    assert "Content-Encoding" not in got.headers and got.body == b"a" * 50_000


def test_file_on_disk_served_with_sendfile(faulty_server: FaultyServer, tmp_path: Path) -> None:
    blob = os.urandom(3 << 20)
    (tmp_path / "big.bin").write_bytes(blob)
    faulty_server.set_file("big.bin", file=tmp_path / "big.bin")
    assert get(faulty_server.url("big.bin")).body == blob
    got = get(faulty_server.url("big.bin"), Range="bytes=1000000-")
    assert got.status == 206 and got.body == blob[1000000:]
    assert faulty_server.bytes_sent("big.bin") == len(blob) * 2 - 1000000


def test_keep_alive_serves_several_requests_on_one_connection(
    faulty_server: FaultyServer,
) -> None:
    faulty_server.set_file("a.bin", DATA)
    conn = http.client.HTTPConnection("127.0.0.1", faulty_server.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("GET", "/a.bin")
            assert conn.getresponse().read() == DATA
        assert conn.sock is not None  # still the same open connection
    finally:
        conn.close()


def test_set_file_mid_download_keeps_response_consistent(faulty_server: FaultyServer) -> None:
    big_old, big_new = b"o" * (8 << 20), b"n" * (8 << 20)
    faulty_server.set_file("a.bin", big_old)
    resp = _pool.request("GET", faulty_server.url("a.bin"), preload_content=False)
    first = resp.read(1024)
    faulty_server.set_file("a.bin", big_new)
    assert first + resp.read() == big_old
    resp.release_conn()
    assert get(faulty_server.url("a.bin")).body == big_new


def test_requests_are_recorded_and_counters_reset(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    get(faulty_server.url("a.bin"), Range="bytes=0-9", Authorization="Bearer x")
    get(faulty_server.url("a.bin"), "HEAD")
    records = faulty_server.requests
    assert [(r.method, r.path, r.status, r.range, r.bytes_sent) for r in records] == [
        ("GET", "/a.bin", 206, "bytes=0-9", 10),
        ("HEAD", "/a.bin", 200, None, 0),
    ]
    assert records[0].headers["authorization"] == "Bearer x"
    faulty_server.reset_counters()
    assert faulty_server.requests == [] and faulty_server.bytes_sent("a.bin") == 0


# -- faults -------------------------------------------------------------------------------


def test_drop_after_closes_after_n_bytes_then_stops_after_times(
    faulty_server: FaultyServer,
) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", drop_after=1000, times=2)
    for _ in range(2):
        got = get(faulty_server.url("a.bin"))
        assert got.status == 200 and got.error is not None
        assert got.body == DATA[:1000]
    got = get(faulty_server.url("a.bin"))
    assert got.error is None and got.body == DATA
    assert faulty_server.bytes_sent("a.bin") == 2000 + len(DATA)


def test_drop_after_counts_per_response_on_ranges(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", drop_after=100)
    got = get(faulty_server.url("a.bin"), Range="bytes=5000-")
    assert got.status == 206 and got.body == DATA[5000:5100] and got.error is not None
    # A response no longer than drop_after is sent whole.
    assert get(faulty_server.url("a.bin"), Range="bytes=0-99").body == DATA[:100]


def test_drop_rst_resets_the_connection(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", drop_after=1000, drop_rst=True)
    try:
        got = get(faulty_server.url("a.bin"))
    except ProtocolError:  # the reset may arrive before the headers are read
        return
    assert got.error is not None and len(got.body) <= 1000


def test_faults_object_is_mutable(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.faults("a.bin").drop_after = 10
    assert get(faulty_server.url("a.bin")).body == DATA[:10]
    faulty_server.faults("a.bin").drop_after = None
    assert get(faulty_server.url("a.bin")).body == DATA


def test_ignore_range_answers_200_with_everything(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", ignore_range=True, times=1)
    got = get(faulty_server.url("a.bin"), Range="bytes=100-")
    assert got.status == 200 and got.body == DATA
    assert got.headers["Accept-Ranges"] == "bytes"  # the lie a bad CDN tells
    assert "Content-Range" not in got.headers
    assert get(faulty_server.url("a.bin"), Range="bytes=100-").status == 206


def test_status_sequence_then_normal(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", status=[500, (429, {"Retry-After": "1"}), 503])
    first = get(faulty_server.url("a.bin"))
    assert first.status == 500 and json.loads(first.body)["error"]
    second = get(faulty_server.url("a.bin"), "HEAD")
    assert second.status == 429 and second.headers["Retry-After"] == "1"
    assert get(faulty_server.url("a.bin")).status == 503
    last = get(faulty_server.url("a.bin"))
    assert last.status == 200 and last.body == DATA
    assert faulty_server.bytes_sent("a.bin") == len(DATA)


def test_status_int_with_times(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", status=502, times=2, status_headers={"X-Why": "test"})
    statuses = [get(faulty_server.url("a.bin")) for _ in range(3)]
    assert [g.status for g in statuses] == [502, 502, 200]
    assert statuses[0].headers["X-Why"] == "test"


def test_stacked_rules_each_with_own_times(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.add_faults("a.bin", status=[503])
    faulty_server.add_faults("a.bin", drop_after=50, times=1)
    assert get(faulty_server.url("a.bin")).status == 503
    assert get(faulty_server.url("a.bin")).body == DATA[:50]
    assert get(faulty_server.url("a.bin")).body == DATA


def test_change_after_bytes_replaces_content_and_etag(faulty_server: FaultyServer) -> None:
    old = faulty_server.set_file("a.bin", DATA)
    assert old is not None
    faulty_server.add_faults("a.bin", drop_after=1000, times=1)
    faulty_server.add_faults("a.bin", change_after_bytes=1000, new_data=OTHER)
    got = get(faulty_server.url("a.bin"))
    assert got.body == DATA[:1000] and got.headers["ETag"] == old
    assert faulty_server.etag("a.bin") not in (None, old)
    resumed = get(faulty_server.url("a.bin"), Range="bytes=1000-", If_Range=old)
    assert resumed.status == 200 and resumed.body == OTHER


def test_change_after_bytes_keeps_in_flight_response_on_old_version(
    faulty_server: FaultyServer,
) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", change_after_bytes=500, new_data=OTHER)
    assert get(faulty_server.url("a.bin")).body == DATA
    assert get(faulty_server.url("a.bin")).body == OTHER


def test_change_in_place_mixes_versions_in_one_response(faulty_server: FaultyServer) -> None:
    old = faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", change_after_bytes=1000, new_data=OTHER, change_in_place=True)
    got = get(faulty_server.url("a.bin"))
    assert got.headers["ETag"] == old and got.error is None
    assert got.body == DATA[:1000] + OTHER[1000:]


def test_stall_triggers_client_read_timeout(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", stall_after=2000, stall_seconds=30)
    got = get(faulty_server.url("a.bin"), timeout=0.3)
    assert isinstance(got.error, ReadTimeoutError)
    assert got.body == DATA[:2000]
    assert got.elapsed < 5


def test_short_stall_then_rest_of_body(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", stall_after=10, stall_seconds=0.3)
    got = get(faulty_server.url("a.bin"), timeout=5)
    assert got.body == DATA and got.elapsed >= 0.25


def test_stop_ends_stall_and_idle_connections_quickly() -> None:
    server = FaultyServer().start()
    server.set_file("a.bin", DATA)
    server.set_faults("a.bin", stall_after=10, stall_seconds=60)
    stalled = _pool.request("GET", server.url("a.bin"), preload_content=False, timeout=30)
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    idle.request("HEAD", "/a.bin")
    idle.getresponse().read()
    t0 = time.monotonic()
    server.stop()
    assert time.monotonic() - t0 < 2
    with pytest.raises(ProtocolError):
        stalled.read()
    stalled.close()
    idle.close()


def test_rate_throttles_each_response(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", rate=250_000)  # 102 kB at 250 kB/s: ~0.4 s
    got = get(faulty_server.url("a.bin"))
    assert got.body == DATA
    assert 0.3 <= got.elapsed < 3


def test_wrong_length_announces_more_than_it_sends(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", wrong_length=7, times=1)
    got = get(faulty_server.url("a.bin"))
    assert got.headers["Content-Length"] == str(len(DATA) + 7)
    assert got.body == DATA and got.error is not None
    assert get(faulty_server.url("a.bin")).error is None


def test_no_head_answers_405(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", no_head=True)
    assert get(faulty_server.url("a.bin"), "HEAD").status == 405
    assert get(faulty_server.url("a.bin")).body == DATA


def test_accept_ranges_none_ignores_range(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", accept_ranges="none")
    assert get(faulty_server.url("a.bin"), "HEAD").headers["Accept-Ranges"] == "none"
    got = get(faulty_server.url("a.bin"), Range="bytes=10-")
    assert got.status == 200 and got.body == DATA


def test_redirect_to_cdn_token_is_single_use(faulty_server: FaultyServer) -> None:
    etag = faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults(
        "a.bin", redirect_to_cdn=True, linked_headers=True, extra_headers={"X-Repo-Commit": "c"}
    )
    head = get(faulty_server.url("a.bin"), "HEAD")
    assert head.status == 302
    assert head.headers["X-Linked-Size"] == str(len(DATA))
    assert head.headers["X-Linked-Etag"] == etag
    assert head.headers["X-Repo-Commit"] == "c"

    location = get(faulty_server.url("a.bin")).headers["Location"]
    assert location.startswith(faulty_server.base_url + "/cdn/") and location.endswith("/a.bin")
    got = get(location, Range="bytes=10-")
    assert got.status == 206 and got.body == DATA[10:]
    assert get(location).status == 403  # reused
    assert faulty_server.bytes_sent("a.bin") == len(DATA) - 10
    assert [r.cdn for r in faulty_server.requests_for("a.bin", "GET")] == [False, True, True]

    # A client that follows redirects gets the file through a fresh token.
    followed = urllib3.request("GET", faulty_server.url("a.bin"))
    assert followed.status == 200 and followed.data == DATA


def test_redirect_token_expiry_and_uses(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", redirect_to_cdn=True, cdn_token_ttl=0.0)
    assert get(get(faulty_server.url("a.bin")).headers["Location"]).status == 403
    faulty_server.set_faults("a.bin", redirect_to_cdn=True, cdn_token_uses=2)
    location = get(faulty_server.url("a.bin")).headers["Location"]
    assert [get(location).status for _ in range(3)] == [200, 200, 403]


def test_body_faults_apply_on_the_cdn_leg(faulty_server: FaultyServer) -> None:
    faulty_server.set_file("a.bin", DATA)
    faulty_server.set_faults("a.bin", redirect_to_cdn=True, drop_after=300)
    location = get(faulty_server.url("a.bin")).headers["Location"]
    got = get(location)
    assert got.body == DATA[:300] and got.error is not None


# -- separate process ---------------------------------------------------------------------


def test_runs_as_a_process_with_stats_endpoint(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(DATA)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.servers.faulty_http",
            "--file",
            f"a.bin={tmp_path / 'a.bin'}",
            "--fault",
            'a.bin={"drop_after": 100, "times": 1}',
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT ")
        base = f"http://127.0.0.1:{int(line.split()[1])}"
        assert get(base + "/a.bin").body == DATA[:100]
        assert get(base + "/a.bin").body == DATA
        stats = json.loads(get(base + "/__stats").body)
        assert stats["bytes_sent"] == {"/a.bin": 100 + len(DATA)}
        assert len(stats["requests"]) == 2
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


# -- nginx --------------------------------------------------------------------------------


def test_nginx_serves_ranges_and_logs_bytes(nginx_server, tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(DATA)
    server = nginx_server(tmp_path)
    got = get(server.url("a.bin"), Range="bytes=100-199")
    assert got.status == 206 and got.body == DATA[100:200]
    assert get(server.url("a.bin")).body == DATA
    entries = server.access_log(wait_for=2)
    assert [(e["status"], e["body_bytes_sent"], e["range"]) for e in entries] == [
        (206, 100, "bytes=100-199"),
        (200, len(DATA), ""),
    ]
    assert server.access_log_bytes("a.bin") == 100 + len(DATA)


def test_nginx_limit_rate(nginx_server, tmp_path: Path) -> None:
    # nginx lets one second's worth through at once: 307 kB at 200 kB/s takes ~0.5 s.
    (tmp_path / "a.bin").write_bytes(DATA * 3)
    server = nginx_server(tmp_path, limit_rate="200k")
    got = get(server.url("a.bin"))
    assert got.body == DATA * 3
    assert 0.3 <= got.elapsed < 5


def test_nginx_stop_frees_the_port(tmp_path: Path) -> None:
    server = NginxServer(tmp_path).start()
    port = server.port
    server.stop()
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()


def test_nginx_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(nginx_module, "_FALLBACK_PATHS", ())
    with pytest.raises(RuntimeError, match="apt-get install nginx-light"):
        NginxServer(tmp_path)
