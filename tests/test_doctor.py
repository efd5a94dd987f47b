"""`easy-oww doctor` against the loopback stand-ins: what each source would serve, found
without downloading, and the one line per host a user gets offline."""

from __future__ import annotations

import hashlib
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


# -- Hub revisions: pinned or following main --------------------------------------------------
TARS = "agkphysics/AudioSet"
TAR = "data/bal_train09.tar"


def _pinned_then_moved_on(hub) -> tuple[str, str]:
    """The tars at one commit, then main converted (the tar gone): (pinned, main)."""
    hub.add_file(TARS, TAR, DATA)
    pinned = hub.commit(TARS)
    hub.remove_file(TARS, TAR)
    hub.add_file(TARS, "data/bal_train/part-0.parquet", b"PAR1...PAR1")
    return pinned, hub.commit(TARS)


def _hub_catalog(revision: str) -> dict:
    return {
        "tars": {"priority": "critical", "files": [{
            "hf_repo": TARS, "hf_file": TAR, "hf_revision": revision,
            "path": "audioset/archive/bal_train09.tar"}]},
        "rirs": {"priority": "recommended", "files": [{
            "hf_repo": RIRS, "hf_folder": "16khz", "path": "rirs"}]},
    }


def test_a_pinned_source_whose_main_moved_on_still_uses_its_commit(tmp_path, services):
    hub, _ = services
    pinned, main = _pinned_then_moved_on(hub)
    run, _ = _run(tmp_path, services, _hub_catalog(pinned), "--json")
    assert run.code == 0, run.err
    report = run.json()
    assert report["ok"]
    by = {r["repo"]: r for r in report["revisions"]}
    assert by[TARS]["line"] == (f"{TARS}: pinned {pinned[:7]}, main is now {main[:7]}: the "
                                "pinned files are used")
    assert (by[TARS]["pinned"], by[TARS]["main"], by[TARS]["moved_on"],
            by[TARS]["files_answer"]) == (True, main, True, True)
    assert by[TARS]["probe"] == hub.resolve_url(TARS, TAR, revision=pinned)
    assert by[RIRS]["line"] == f"{RIRS}: follows main (not pinned)"
    assert by[RIRS]["pinned"] is False and by[RIRS]["main"] is None  # nothing asked
    assert len(hub.requests_of("revision")) == 1  # main's commit, for the pinned repo only
    (head,) = [r for r in hub.requests_of("resolve", "HEAD")]
    assert head.status == 302 and hub.bytes_sent(TARS, TAR) <= 1  # one byte, by the GET
    table, _ = _run(tmp_path, services, _hub_catalog(pinned))
    assert table.code == 0
    assert f"{TARS}: pinned {pinned[:7]}, main is now {main[:7]}: the pinned files are used" \
        in table.out
    assert f"{RIRS}: follows main (not pinned)" in table.out


def test_a_pinned_source_that_main_still_is_says_so(tmp_path, services):
    hub, _ = services
    hub.add_file(TARS, TAR, DATA)
    pinned = hub.commit(TARS)
    run, _ = _run(tmp_path, services, _hub_catalog(pinned), "--json")
    (tars,) = [r for r in run.json()["revisions"] if r["repo"] == TARS]
    assert tars["line"] == f"{TARS}: pinned {pinned[:7]}, which main still is"
    assert tars["moved_on"] is False and tars["files_answer"] is True


def test_pinned_files_that_answer_404_are_said_plainly_and_block(tmp_path, services):
    hub, _ = services
    pinned, main = _pinned_then_moved_on(hub)
    hub.set_fault(TARS, TAR, status=404, times=None)  # the commit listed, its file gone
    run, _ = _run(tmp_path, services, _hub_catalog(pinned), "--json")
    assert run.code == 1
    report = run.json()
    (tars,) = [r for r in report["revisions"] if r["repo"] == TARS]
    assert tars["files_answer"] is False
    assert tars["line"] == (f"{TARS}: pinned {pinned[:7]} (main is now {main[:7]}), but {TAR} "
                            "answers 404 there: downloading tars fails until a catalog entry "
                            "pins a revision that has the files")
    (blocking,) = report["blocking"]  # the source's own check: one line, not two
    assert blocking.startswith("tars: audioset/archive/bal_train09.tar: ") and "404" in blocking
    table, _ = _run(tmp_path, services, _hub_catalog(pinned))
    assert tars["line"] in table.out and "1 problem would" in table.out


def test_the_same_source_on_main_is_a_listing_error_where_main_lost_the_file(tmp_path,
                                                                             services):
    hub, _ = services
    _pinned_then_moved_on(hub)
    run, _ = _run(tmp_path, services, _hub_catalog("main"), "--json")
    assert run.code == 1
    report = run.json()
    assert "has no file 'data/bal_train09.tar' at revision 'main'" in \
        report["listing_errors"]["tars"]
    (tars,) = [r for r in report["revisions"] if r["repo"] == TARS]
    assert tars["line"] == f"{TARS}: follows main (not pinned)"


def test_fma_smalls_host_is_asked_like_any_url_host(tmp_path, services, faulty_server):
    """fma_small is a plain URL with mdeff/fma's sha1: its host gets the one-byte check."""
    data = os.urandom(50_000)
    faulty_server.set_file("fma/fma_small.zip", data)
    run, _ = _run(tmp_path, services, {"fma_small": {"priority": "optional", "files": [{
        "url": faulty_server.url("fma/fma_small.zip"), "path": "fma_small/archive/fma_small.zip",
        "hash": "sha1:" + hashlib.sha1(data).hexdigest()}]}}, "--all", "--json")
    assert run.code == 0, run.err
    (check,) = run.json()["sources"]
    assert check["reachable"] and check["ranges"] and check["size"] == len(data)
    assert check["hash"].startswith("sha1:") and check["hash_agrees"] is None  # none stated
    assert run.json()["revisions"] == []  # not a Hub source
    faulty_server.stop()
    gone, _ = _run(tmp_path, services, {"fma_small": {"priority": "optional", "files": [{
        "url": faulty_server.url("fma/fma_small.zip"),
        "path": "fma_small/archive/fma_small.zip"}]}}, "--all")
    assert gone.code == 1 and "cannot be reached" in gone.out


def test_a_pinned_source_on_an_unreachable_hub_is_one_line_without_more_waiting(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    commit = "5a2fa42a1506470d275a47ff8e1fdac5b364e6ef"
    write_catalog(ws / "datasets.toml", {"tars": {"priority": "critical", "files": [{
        "hf_repo": TARS, "hf_file": TAR, "hf_revision": commit, "size": len(DATA),
        "hash": sha256(DATA), "path": "audioset/archive/bal_train09.tar"}]}})
    started = time.monotonic()
    run = run_cli(tmp_path, "doctor", "--json", "--workspace", str(ws),
                  HF_ENDPOINT="http://127.0.0.1:9")
    assert time.monotonic() - started < 10 and run.code == 1
    report = run.json()
    assert report["unreachable"] == {"127.0.0.1:9": report["sources"][0]["problem"]}
    (tars,) = report["revisions"]
    assert tars["line"].startswith(f"{TARS}: pinned 5a2fa42; 127.0.0.1:9 cannot be reached")
    assert tars["main"] is None and tars["files_answer"] is None
