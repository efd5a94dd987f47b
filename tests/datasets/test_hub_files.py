"""`download` of single Hub files (`hf_file`) as a user runs it, against the Hub stand-in:
a pinned revision keeps serving its bytes after `main` moves on, the sizes and hashes come
from the listing at that revision (cached for an offline `--status`), a catalog hash that
disagrees with the listing is refused, and the ACAV100M entries (catalog-sized, on `main`)
still go through HF_ENDPOINT with the token and resume a dropped connection."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.datasets.helpers import run_cli, sha256, write_catalog
from tests.servers.hub_standin import HubStandin

REPO = "agkphysics/AudioSet"
TOKEN = "hf_test"
TARS = {f"data/bal_train{i:02d}.tar": os.urandom(150_000 + i) for i in (0, 1, 9)}


@pytest.fixture
def hub():
    with HubStandin(page_size=2, require_token=TOKEN) as server:
        yield server


def _moved_on(hub: HubStandin) -> str:
    """Commit the tars, then convert main as agkphysics/AudioSet did (tars gone, Parquet in,
    and here one tar replaced too); returns the commit before the conversion."""
    for name, data in TARS.items():
        hub.add_file(REPO, name, data)
    pinned = hub.commit(REPO)
    hub.add_file(REPO, "data/bal_train09.tar", b"main's different bytes")
    for name in ("data/bal_train00.tar", "data/bal_train01.tar"):
        hub.remove_file(REPO, name)
    hub.add_file(REPO, "data/bal_train/part-0.parquet", b"PAR1...PAR1")
    assert hub.commit(REPO) != pinned
    return pinned


def _catalog(ws, revision: str, hashes: dict[str, str]) -> None:
    write_catalog(ws / "datasets.toml", {"tars": {"priority": "optional", "files": [
        {"hf_repo": REPO, "hf_file": name, "hf_revision": revision,
         "path": f"audioset/archive/{name.rsplit('/', 1)[1]}"}
        | ({"hash": hashes[name]} if name in hashes else {}) for name in TARS]}})


def test_a_pinned_hub_file_is_fetched_as_the_commit_has_it_after_main_moved_on(tmp_path, hub):
    pinned = _moved_on(hub)
    ws = tmp_path / "ws"
    ws.mkdir()
    # 09 carries its hash in the catalog (a cross-check); 00 and 01 take the listing's.
    _catalog(ws, pinned, {"data/bal_train09.tar": sha256(TARS["data/bal_train09.tar"])})
    hub.set_fault(REPO, "data/bal_train00.tar", drop_after=60_000)  # resumed, not restarted
    run = run_cli(tmp_path, "download", "--dataset", "tars", "--workspace", str(ws),
                  HF_ENDPOINT=hub.endpoint, HF_TOKEN=TOKEN)
    assert run.code == 0, run.err
    archive = ws / "datasets" / "audioset" / "archive"
    for name, data in TARS.items():
        assert (archive / name.rsplit("/", 1)[1]).read_bytes() == data  # not main's bytes
    assert hub.bytes_sent(REPO, "data/bal_train00.tar") < 1.2 * len(TARS["data/bal_train00.tar"])
    assert all(f"/tree/{pinned}/data" in r.target for r in hub.requests_of("tree"))
    assert hub.cdn_saw_authorization == 0  # the token went to the Hub host only
    manifest = (ws / ".cache" / "manifest.json").read_text()
    assert TOKEN not in manifest
    files = json.loads(manifest)["datasets"]["tars"]["files"]
    assert files["audioset/archive/bal_train01.tar"]["hash"] == sha256(
        TARS["data/bal_train01.tar"])
    hub.stop()  # offline: the listing cached at the commit still sizes the dataset
    (row,) = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert (row["status"], row["size_bytes"]) == ("cached", sum(map(len, TARS.values())))


def test_the_same_entries_on_main_fail_where_main_lost_the_tars(tmp_path, hub):
    """What pinning saves users from: main answers without the tars (openWakeWord #296)."""
    _moved_on(hub)
    ws = tmp_path / "ws"
    ws.mkdir()
    _catalog(ws, "main", {})
    run = run_cli(tmp_path, "download", "--dataset", "tars", "--workspace", str(ws),
                  HF_ENDPOINT=hub.endpoint, HF_TOKEN=TOKEN)
    assert run.code == 1
    assert "has no file 'data/bal_train00.tar' at revision 'main'" in run.err
    assert "Traceback" not in run.err


def test_a_catalog_hash_the_pinned_listing_disagrees_with_is_refused_naming_both(tmp_path,
                                                                                 hub):
    pinned = _moved_on(hub)
    ws = tmp_path / "ws"
    ws.mkdir()
    wrong = "sha256:" + hashlib.sha256(b"the file the catalog was written for").hexdigest()
    _catalog(ws, pinned, {"data/bal_train09.tar": wrong})
    run = run_cli(tmp_path, "download", "--dataset", "tars", "--workspace", str(ws),
                  HF_ENDPOINT=hub.endpoint, HF_TOKEN=TOKEN)
    assert run.code == 1 and "Traceback" not in run.err
    (line,) = [line for line in run.err.splitlines() if "refusing it" in line]
    assert wrong in line and sha256(TARS["data/bal_train09.tar"]) in line
    assert "data/bal_train09.tar" in line and pinned in line
    assert hub.total_bytes_sent() == 0  # refused before a byte was fetched
    assert "0 file(s) downloaded (0 B); tars missing." in run.out  # the summary still comes


def test_the_acav100m_entries_as_built_in_go_through_hf_endpoint_and_resume(tmp_path, hub):
    """The built-in entries' keys (hf_file on main, catalog size and hash) with a small file:
    no listing, the mirror's resolve URL, the token to the Hub only, a drop resumed."""
    data = os.urandom(400_000)
    features = "davidscripka/openwakeword_features"
    hub.add_file(features, "validation_set_features.npy", data)
    hub.set_fault(features, "validation_set_features.npy", drop_after=150_000)
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"acav100m_val": {
        "name": "ACAV100M Validation", "priority": "critical", "files": [{
            "hf_repo": features, "hf_file": "validation_set_features.npy",
            "hf_revision": "main", "path": "acav100m/validation_set_features.npy",
            "size": len(data), "hash": sha256(data)}]}}, builtin=True)
    run = run_cli(tmp_path, "download", "--dataset", "acav100m_val", "--workspace", str(ws),
                  HF_ENDPOINT=hub.endpoint, HF_TOKEN=TOKEN)
    assert run.code == 0, run.err
    assert (ws / "datasets" / "acav100m" / "validation_set_features.npy").read_bytes() == data
    assert hub.requests_of("tree") == []  # the catalog sizes and hashes it
    assert {r.target for r in hub.requests_of("resolve")} == {
        f"/datasets/{features}/resolve/main/validation_set_features.npy"}
    assert all(r.authorization for r in hub.requests_of("resolve"))
    assert hub.cdn_saw_authorization == 0
    assert hub.bytes_sent(features, "validation_set_features.npy") < 1.2 * len(data)
