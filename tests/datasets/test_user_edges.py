"""What a user meets off the walked paths: another catalog's downloads, a file already at the
destination. Each test here failed before its fix (issue 8, part 1)."""

from __future__ import annotations

import json
import os

from tests.datasets.helpers import run_cli, sha256, write_catalog


def test_junk_at_the_destination_is_not_adopted_without_proof(tmp_path, faulty_server):
    # No hash and no size in the catalog: only the server's size can vouch for a file.
    real = os.urandom(1_000_000)
    faulty_server.set_file("big.bin", real)
    ws = tmp_path / "ws"
    (ws / "datasets" / "plain").mkdir(parents=True)
    (ws / "datasets" / "plain" / "big.bin").write_bytes(b"20 bytes of junk....")
    write_catalog(ws / "datasets.toml", {"plain": {"priority": "critical", "files": [
        {"url": faulty_server.url("big.bin"), "path": "plain/big.bin"}]}})
    run = run_cli(tmp_path, "download", "--workspace", str(ws))
    assert run.code == 0, run.err
    assert (ws / "datasets" / "plain" / "big.bin").read_bytes() == real


def test_a_file_the_servers_size_confirms_is_adopted_without_a_download(tmp_path, faulty_server):
    real = os.urandom(300_000)
    faulty_server.set_file("same.bin", real)
    ws = tmp_path / "ws"
    (ws / "datasets" / "plain").mkdir(parents=True)
    (ws / "datasets" / "plain" / "same.bin").write_bytes(real)
    write_catalog(ws / "datasets.toml", {"plain": {"priority": "critical", "files": [
        {"url": faulty_server.url("same.bin"), "path": "plain/same.bin"}]}})
    run = run_cli(tmp_path, "download", "--workspace", str(ws))
    assert run.code == 0, run.err
    assert faulty_server.bytes_sent("same.bin") == 0  # a HEAD, no body


def _mine(tmp_path, faulty_server):
    data = os.urandom(200_000)
    faulty_server.set_file("mine.bin", data)
    mine = write_catalog(tmp_path / "mine.toml", {"mine": {"priority": "critical", "files": [
        {"url": faulty_server.url("mine.bin"), "path": "mine/mine.bin", "hash": sha256(data)}]}})
    ws = tmp_path / "ws"
    run = run_cli(tmp_path, "download", "--catalog", str(mine), "--workspace", str(ws))
    assert run.code == 0, run.err
    return ws, mine, data


def test_verify_checks_what_another_catalog_downloaded(tmp_path, faulty_server):
    ws, mine, _ = _mine(tmp_path, faulty_server)
    target = ws / "datasets" / "mine" / "mine.bin"
    spoiled = bytearray(target.read_bytes())
    spoiled[1000] ^= 0xFF
    target.write_bytes(bytes(spoiled))
    run = run_cli(tmp_path, "verify", "--json", "--workspace", str(ws))  # no --catalog
    assert run.code == 1, (run.out, run.err)
    rows = [r for r in run.json() if r["dataset"] == "mine"]
    assert rows and not rows[0]["ok"] and rows[0]["problem"] == "hash mismatch"
    assert rows[0]["catalog"] == str(mine)
    table = run_cli(tmp_path, "verify", "--workspace", str(ws))
    assert table.code == 1 and "hash mismatch" in table.out
    assert "Nothing downloaded" not in table.out


def test_paths_lists_what_another_catalog_downloaded(tmp_path, faulty_server):
    ws, _, _ = _mine(tmp_path, faulty_server)
    run = run_cli(tmp_path, "paths", "--json", "--workspace", str(ws))
    assert run.code == 0, run.err
    assert json.loads(run.out)["mine"] == str(ws / "datasets" / "mine" / "mine.bin")
