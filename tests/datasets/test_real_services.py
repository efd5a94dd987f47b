"""Downloads against stand-ins that copy the real services' documented and reported quirks
(REFERENCE §6; each quirk's source is named beside it in tests/servers/)."""

from __future__ import annotations

import os

import pytest

from easy_oww.datasets import DatasetManager
from easy_oww.progress import NullProgress
from easy_oww.transfer.fetch import FetchOptions
from tests.datasets.helpers import run_cli, sha256, write_catalog
from tests.servers.hub_standin import HubStandin
from tests.servers.zenodo_standin import ZenodoStandin

MiB = 1024 * 1024
RECORD = 4060432
REPO = "davidscripka/openwakeword_features"


@pytest.fixture
def zenodo(monkeypatch):
    with ZenodoStandin() as server:
        monkeypatch.setenv("ZENODO_ENDPOINT", server.endpoint)
        yield server


def _zenodo_workspace(tmp_path, key: str):
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"fsd": {"priority": "optional", "files": [
        {"zenodo_record": RECORD, "zenodo_key": key, "path": f"fsd/{key}"}]}})
    return ws


def test_a_dropped_zenodo_download_resumes_where_it_stopped(tmp_path, zenodo):
    # Zenodo's API route (the record's links.self) ignores Range (zenodo/zenodo#2593): a
    # resume there starts from zero. The download route honours it, so a connection dropped
    # at 1 MiB costs only what was lost, not the whole volume again.
    data = os.urandom(3 * MiB + 123)
    key = "FSD50K.dev_audio.z01"
    zenodo.add_file(RECORD, key, data)
    zenodo.set_fault(RECORD, key, drop_after=MiB)
    ws = _zenodo_workspace(tmp_path, key)
    manager = DatasetManager(workspace=ws, options=FetchOptions(connections=1,
                                                                backoff_base=0.01))
    report = manager.download(["fsd"])
    assert report.ok, report.errors
    assert (ws / "datasets" / "fsd" / key).read_bytes() == data
    assert zenodo.bytes_sent(RECORD, key) == len(data)  # not MiB + len(data)
    ranged = [r for r in zenodo.requests if r.kind == "file" and r.range]
    assert ranged and all(r.status == 206 for r in ranged)


def test_zenodo_gets_two_connections_at_most(tmp_path, zenodo):
    # Users are blocked with more than two downloads at once (karel-brinda/Phylign#236); the
    # stand-in answers a third concurrent body with 429. Three volumes, three jobs, four
    # connections each: never more than two bodies at once, and no 429.
    zenodo.pace = 0.05  # a slow link, so the three downloads overlap
    zenodo.retry_after = 1
    volumes = {f"FSD50K.dev_audio.z0{i}": os.urandom(3 * MiB + i) for i in range(1, 4)}
    for key, data in volumes.items():
        zenodo.add_file(RECORD, key, data)
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"fsd": {"priority": "optional", "files": [
        {"zenodo_record": RECORD, "zenodo_key": key, "path": f"fsd/{key}"} for key in volumes]}})
    manager = DatasetManager(workspace=ws, jobs=3, options=FetchOptions(connections=4,
                                                                        min_segment=MiB))
    report = manager.download(["fsd"])
    assert report.ok, report.errors
    for key, data in volumes.items():
        assert (ws / "datasets" / "fsd" / key).read_bytes() == data
    assert zenodo.peak_parallel <= 2
    assert not [r for r in zenodo.requests if r.status == 429]


def test_zenodo_rate_limit_headers_are_honoured(tmp_path, zenodo):
    # X-RateLimit-Remaining: 0 means wait for X-RateLimit-Reset, not earn a 429.
    zenodo.per_minute, zenodo.window = 1, 1  # the HEAD uses the window's only request
    data = os.urandom(100_000)
    zenodo.add_file(RECORD, "FSD50K.doc.zip", data)
    ws = _zenodo_workspace(tmp_path, "FSD50K.doc.zip")
    lines: list[str] = []

    class Log(NullProgress):
        def log(self, message: str) -> None:
            lines.append(message)

    assert DatasetManager(workspace=ws, progress=Log()).download(["fsd"]).ok
    assert any("rate limit is used up" in line for line in lines)
    assert not [r for r in zenodo.requests if r.status == 429]


@pytest.fixture
def hub(monkeypatch):
    with HubStandin() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        yield server


def _hub_workspace(tmp_path, url: str, data: bytes, *, hash: str | None = None,
                   fmt: dict | None = None):
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    write_catalog(ws / "datasets.toml", {"feat": {"priority": "critical", "files": [
        {"url": url, "path": "feat/file.bin", "size": len(data),
         "hash": hash or sha256(data), **(fmt or {})}]}})
    return ws


def test_a_download_outlives_its_signed_url_and_finishes_exactly(tmp_path, hub):
    # The Hub's CDN links expire after about an hour (X-Amz-Expires=3600). A download cut
    # off, then resumed after its link expired, must resolve /resolve/ again, not reuse it.
    data = os.urandom(3 * MiB)
    hub.add_file(REPO, "big.bin", data)
    hub.set_fault(REPO, "big.bin", drop_after=MiB)
    ws = _hub_workspace(tmp_path, hub.resolve_url(REPO, "big.bin"), data)
    first = DatasetManager(workspace=ws, options=FetchOptions(connections=1, attempts=1))
    assert not first.download(["feat"]).ok  # cut at 1 MiB, no retry left
    hub.advance(7200)  # every link issued so far has expired
    assert DatasetManager(workspace=ws, options=FetchOptions(connections=1)).download(
        ["feat"]).ok
    assert (ws / "datasets" / "feat" / "file.bin").read_bytes() == data
    assert hub.bytes_sent(REPO, "big.bin") == len(data)  # the resume sent only the rest


def test_a_refused_signed_link_is_resolved_again_once(tmp_path, monkeypatch):
    # A 403 from the CDN (a link that expired on the way) means "resolve again", once.
    with HubStandin(cdn_token_ttl=0.0) as hub:  # every link is expired when used
        data = os.urandom(50_000)
        hub.add_file(REPO, "small.bin", data)
        ws = _hub_workspace(tmp_path, hub.resolve_url(REPO, "small.bin"), data)
        report = DatasetManager(workspace=ws, options=FetchOptions(backoff_base=0.01)
                                ).download(["feat"])
    assert not report.ok
    assert "refused the signed link" in report.errors[0]
    assert "gave up after 2 attempts" in report.errors[0]
    assert len(hub.requests_of("resolve")) == 2  # resolved twice, then a plain refusal


def test_a_relative_redirect_is_followed(tmp_path):
    # Small files may get a relative Location (/api/resolve-cache/…) on the real Hub.
    with HubStandin(resolve_cache=True) as hub:
        data = os.urandom(20_000)
        hub.add_file(REPO, "config.json", data, lfs=False)
        ws = _hub_workspace(tmp_path, hub.resolve_url(REPO, "config.json"), data)
        assert DatasetManager(workspace=ws).download(["feat"]).ok
        assert [r.status for r in hub.requests_of("resolve-cache", "GET")] == [200]
    assert (ws / "datasets" / "feat" / "file.bin").read_bytes() == data


def test_a_changed_upstream_file_is_said_before_downloading(tmp_path, hub):
    # The resolve answer's X-Linked-Etag is the file's sha256: a catalog hash that differs
    # means the file changed upstream; fetching 17 GB to fail the check helps nobody.
    data = os.urandom(2 * MiB)
    hub.add_file(REPO, "moved.bin", data)
    old = sha256(b"what the catalog was written against")
    ws = _hub_workspace(tmp_path, hub.resolve_url(REPO, "moved.bin"), data, hash=old)
    report = DatasetManager(workspace=ws).download(["feat"])
    assert not report.ok
    assert "changed upstream" in report.errors[0] and "nothing was downloaded" in report.errors[0]
    assert hub.bytes_sent(REPO, "moved.bin") == 0
    assert not (ws / "datasets" / "feat" / "file.bin.part").exists()


def test_a_file_failing_its_format_check_never_takes_the_final_name(tmp_path, faulty_server):
    # Right size, right hash (the catalog was written for these bytes), wrong format: the
    # trainer must never find it at the final path, and the bytes spent are reported.
    junk = b"RIFF" + os.urandom(60_000)
    faulty_server.set_file("clip.wav", junk)
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"clips": {"priority": "critical", "files": [
        {"url": faulty_server.url("clip.wav"), "path": "clips/clip.wav", "size": len(junk),
         "hash": sha256(junk), "format": "wav", "sample_rate": 16000}]}})
    run = run_cli(tmp_path, "download", "--workspace", str(ws))
    assert run.code == 1
    assert not (ws / "datasets" / "clips" / "clip.wav").exists()
    assert not list((ws / "datasets" / "clips").glob("clip.wav.part*"))
    assert "deleted the download for safety" in run.err
    assert "(60.0 kB)" in run.out  # what this run fetched, not "0 B"


def test_when_the_download_route_is_gone_the_api_route_serves(tmp_path, zenodo):
    data = os.urandom(500_000)
    key = "FSD50K.ground_truth.zip"
    zenodo.add_file(RECORD, key, data)
    zenodo.download_route_status = 404
    ws = _zenodo_workspace(tmp_path, key)
    lines: list[str] = []

    class Log(NullProgress):
        def log(self, message: str) -> None:
            lines.append(message)

    assert DatasetManager(workspace=ws, progress=Log()).download(["fsd"]).ok
    assert (ws / "datasets" / "fsd" / key).read_bytes() == data
    assert any("answered HTTP 404; trying" in line and "/api/records/" in line for line in lines)


def test_a_route_that_ignores_ranges_is_learned_for_the_next_files(tmp_path, zenodo):
    # The API route ignores Range: the first file finds out (one wasted ranged try per
    # connection); the second starts on one connection without asking.
    files = {f"part{i}.bin": os.urandom(2 * MiB + i) for i in range(2)}
    for key, data in files.items():
        zenodo.add_file(RECORD, key, data)
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"api": {"priority": "critical", "files": [
        {"url": zenodo.content_url(RECORD, key), "path": f"api/{key}", "size": len(data)}
        for key, data in files.items()]}})
    manager = DatasetManager(workspace=ws, jobs=1, options=FetchOptions(
        connections=2, min_segment=256 * 1024))
    assert manager.download(["api"]).ok
    for key, data in files.items():
        assert (ws / "datasets" / "api" / key).read_bytes() == data
    ranged = {key: [r for r in zenodo.requests if r.range and r.file
                    and r.file.endswith(key) and r.method == "GET"] for key in files}
    assert ranged["part0.bin"]  # found out on the first file
    assert ranged["part1.bin"] == []  # and not asked again


def test_a_restart_from_zero_is_said_with_its_cost(tmp_path, faulty_server):
    data = os.urandom(3 * MiB)
    faulty_server.set_file("big.bin", data)
    faulty_server.set_faults("big.bin", drop_after=MiB, times=1)
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"big": {"priority": "critical", "files": [
        {"url": faulty_server.url("big.bin"), "path": "big.bin", "size": len(data)}]}})
    first = run_cli(tmp_path, "download", "--connections", "1", "--retries", "1",
                    "--workspace", str(ws))
    assert first.code == 1 and (ws / "datasets" / "big.bin.part").exists()
    faulty_server.set_faults("big.bin", accept_ranges="none")  # now it cannot resume
    second = run_cli(tmp_path, "download", "--connections", "1", "--workspace", str(ws))
    assert second.code == 0, second.err
    assert "starting again from zero" in second.err and "fetched again" in second.err
    assert (ws / "datasets" / "big.bin").read_bytes() == data


def test_an_unreachable_hub_is_one_plain_line(tmp_path):
    run = run_cli(tmp_path, "download", "--dataset", "mit_rir",
                  "--workspace", str(tmp_path / "ws"), HF_ENDPOINT="http://127.0.0.1:9")
    assert run.code == 1
    errors = [line for line in run.err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "(offline?)" in errors[0]
    assert "MaxRetryError" not in run.err and "Traceback" not in run.err
