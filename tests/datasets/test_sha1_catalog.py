"""A catalog entry with a ``sha1:`` hash (as mdeff/fma publishes for fma_small.zip) is checked
end to end: the download through dropped connections, the manifest, a re-run, `verify`."""

from __future__ import annotations

import hashlib
import json
import os

from tests.datasets.helpers import run_cli, write_catalog

MiB = 1024 * 1024


def sha1(data: bytes) -> str:
    return "sha1:" + hashlib.sha1(data).hexdigest()


def catalog(ws, url: str, size: int, hash_text: str) -> None:
    write_catalog(ws / "datasets.toml", {
        "fma": {"name": "FMA small", "priority": "optional", "files": [
            {"url": url, "path": "fma/fma_small.zip", "size": size, "hash": hash_text}]}})


def test_a_sha1_catalog_hash_is_checked_through_faults_recorded_and_verified(
        tmp_path, faulty_server):
    data = os.urandom(3 * MiB + 5)
    faulty_server.set_file("fma_small.zip", data)
    faulty_server.set_faults("fma_small.zip", drop_after=700_000, times=3)
    ws = tmp_path / "ws"
    ws.mkdir()
    catalog(ws, faulty_server.url("fma_small.zip"), len(data), sha1(data))
    run = run_cli(tmp_path, "download", "--dataset", "fma", "--workspace", str(ws))
    assert run.code == 0, run.err
    target = ws / "datasets" / "fma" / "fma_small.zip"
    assert target.read_bytes() == data
    manifest = json.loads((ws / ".cache" / "manifest.json").read_text())
    assert manifest["datasets"]["fma"]["files"]["fma/fma_small.zip"]["hash"] == sha1(data)

    faulty_server.reset_counters()
    again = run_cli(tmp_path, "download", "--dataset", "fma", "--workspace", str(ws))
    assert again.code == 0, again.err
    assert faulty_server.bytes_sent("fma_small.zip") == 0  # checked by its sha1, not refetched

    verify = run_cli(tmp_path, "verify", "fma", "--workspace", str(ws), "--json")
    assert verify.code == 0 and all(row["ok"] for row in verify.json())
    rotted = bytearray(data)
    rotted[MiB] ^= 0xFF  # same size: only the sha1 sees it
    target.write_bytes(bytes(rotted))
    bad = run_cli(tmp_path, "verify", "fma", "--workspace", str(ws))
    assert bad.code == 1 and "hash mismatch" in bad.out


def test_a_download_that_does_not_match_the_catalogs_sha1_fails_in_one_line(
        tmp_path, faulty_server):
    data = os.urandom(MiB + 3)
    faulty_server.set_file("fma_small.zip", data)
    ws = tmp_path / "ws"
    ws.mkdir()
    wrong = hashlib.sha1(b"another file").hexdigest()
    catalog(ws, faulty_server.url("fma_small.zip"), len(data), f"sha1:{wrong}")
    run = run_cli(tmp_path, "download", "--dataset", "fma", "--workspace", str(ws))
    assert run.code != 0
    assert "Traceback" not in run.err
    lines = [line for line in run.err.splitlines() if "sha1 mismatch" in line]
    assert len(lines) == 1, run.err
    assert wrong in lines[0] and hashlib.sha1(data).hexdigest() in lines[0]
    assert not (ws / "datasets" / "fma" / "fma_small.zip").exists()
