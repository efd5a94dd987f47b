"""`easy-oww doctor` against the loopback stand-ins: what each source would serve, found
without downloading, and the one line per host a user gets offline."""

from __future__ import annotations

import os
import time

import pytest

from tests.datasets.helpers import run_cli, sha256, write_catalog
from tests.servers.hub_standin import HubStandin
from tests.servers.zenodo_standin import ZenodoStandin

REPO = "davidscripka/openwakeword_features"
RIRS = "davidscripka/MIT_environmental_impulse_responses"
RECORD = 4060432
DATA = os.urandom(100_000)


@pytest.fixture
def services():
    with HubStandin() as hub, ZenodoStandin() as zenodo:
        hub.add_file(REPO, "validation_set_features.npy", DATA)
        for name in ("a.wav", "b.wav", "c.wav"):
            hub.add_file(RIRS, f"16khz/{name}", DATA)
        zenodo.add_file(RECORD, "FSD50K.doc.zip", DATA)
        yield hub, zenodo


def _run(tmp_path, services, catalog: dict, *args: str):
    hub, zenodo = services
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    write_catalog(ws / "datasets.toml", catalog)
    return run_cli(tmp_path, "doctor", "--workspace", str(ws), *args,
                   HF_ENDPOINT=hub.endpoint, ZENODO_ENDPOINT=zenodo.endpoint), ws


def test_every_source_answers_as_the_catalog_expects(tmp_path, services):
    hub, zenodo = services
    run, _ = _run(tmp_path, services, {
        "feat": {"priority": "critical", "files": [{
            "url": hub.resolve_url(REPO, "validation_set_features.npy"), "path": "f/v.npy",
            "size": len(DATA), "hash": sha256(DATA)}]},
        "rirs": {"priority": "recommended", "files": [{
            "hf_repo": RIRS, "hf_folder": "16khz", "path": "rirs"}]},
        "doc": {"priority": "critical", "files": [{
            "zenodo_record": RECORD, "zenodo_key": "FSD50K.doc.zip", "path": "z/doc.zip"}]},
    }, "--json")
    assert run.code == 0, run.err
    report = run.json()
    assert report["ok"] and report["blocking"] == []
    by = {s["dataset"]: s for s in report["sources"]}
    assert by["feat"]["hash_agrees"] is True and by["feat"]["ranges"] is True
    assert by["feat"]["served_by"] == "localhost"  # the Hub's redirect to its CDN host
    assert by["rirs"]["files"] == 3 and by["rirs"]["ok"]  # a folder is asked once
    assert by["doc"]["server_hash"] == by["doc"]["hash"]  # Zenodo's ETag is "md5:…"
    assert report["workspace"]["needed_bytes"] == 5 * len(DATA)
    assert hub.bytes_sent(REPO, "validation_set_features.npy") <= 1
    assert zenodo.bytes_sent(RECORD, "FSD50K.doc.zip") <= 1  # one byte, no download


def test_a_changed_file_and_a_route_without_ranges_are_named(tmp_path, services):
    hub, zenodo = services
    catalog = {
        "moved": {"priority": "critical", "files": [{
            "url": hub.resolve_url(REPO, "validation_set_features.npy"), "path": "f/v.npy",
            "hash": sha256(b"the file the catalog was written for")}]},
        "api": {"priority": "critical", "files": [{  # Zenodo's API route ignores Range
            "url": zenodo.content_url(RECORD, "FSD50K.doc.zip"), "path": "z/doc.zip"}]},
    }
    run, _ = _run(tmp_path, services, catalog, "--json")
    assert run.code == 1
    report = run.json()
    by = {s["dataset"]: s for s in report["sources"]}
    assert by["moved"]["hash_agrees"] is False and "changed upstream" in by["moved"]["problem"]
    assert by["api"]["ranges"] is False and by["api"]["ok"]  # slower to resume, not blocking
    assert report["blocking"] == [f"moved: f/v.npy: {by['moved']['problem']}"]
    table, _ = _run(tmp_path, services, catalog, "--dataset", "moved")
    assert table.code == 1 and "differs" in table.out and "1 problem would" in table.out


def test_offline_is_one_line_per_host_within_ten_seconds(tmp_path, services):
    started = time.monotonic()
    run, _ = _run(tmp_path, services, {
        "a": {"priority": "critical", "files": [
            {"url": "http://127.0.0.1:9/one.bin", "path": "a/one.bin"},
            {"url": "http://127.0.0.1:9/two.bin", "path": "a/two.bin"}]},
        "b": {"priority": "critical", "files": [
            {"url": "http://no-such-host.invalid/x.bin", "path": "b/x.bin"}]},
    })
    assert time.monotonic() - started < 10
    assert run.code == 1
    assert run.out.count("127.0.0.1:9: cannot be reached") == 1
    assert run.out.count("no-such-host.invalid: cannot be reached") == 1
    assert "Traceback" not in run.err


def test_an_unknown_dataset_is_bad_usage(tmp_path, services):
    run, _ = _run(tmp_path, services, {}, "--dataset", "nope")
    assert run.code == 2 and "unknown dataset 'nope'" in run.err
