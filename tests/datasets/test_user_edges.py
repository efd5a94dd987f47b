"""What a user meets off the walked paths: another catalog's downloads, a file already at the
destination. Each test here failed before its fix (issue 8, part 1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from easy_oww.datasets.tidy import STALE_PART_DAYS
from easy_oww.progress import human_bytes
from tests.datasets.helpers import (
    cli_cmd,
    cli_env,
    run_cli,
    sha256,
    wait_for_progress,
    write_catalog,
)

MiB = 1024 * 1024


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


# -- clean keeps another catalog's partial download -------------------------------------------
def _on_disk(path) -> int:
    st = path.stat()
    return min(st.st_size, st.st_blocks * 512)


def test_clean_keeps_another_catalogs_interrupted_download_and_prints_its_real_bytes(
        tmp_path, faulty_server):
    data = os.urandom(20 * MiB)  # two 8 MiB segments at least: several connections
    faulty_server.set_file("big.bin", data)
    faulty_server.set_faults("big.bin", rate=500_000)
    mine = write_catalog(tmp_path / "mine.toml", {"mine": {"priority": "critical", "files": [
        {"url": faulty_server.url("big.bin"), "path": "mine/big.bin", "size": len(data),
         "hash": sha256(data)}]}})
    ws = tmp_path / "ws"
    proc = subprocess.Popen(cli_cmd("download", "--catalog", str(mine), "--connections", "4",
                                    "--workspace", str(ws)), env=cli_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_progress(ws, "mine/big.bin", 0, proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    part = ws / "datasets" / "mine" / "big.bin.part"
    record = ws / "datasets" / "mine" / "big.bin.part.json"
    assert part.stat().st_size == len(data)  # sparse: sized to the whole file up front
    real = human_bytes(_on_disk(part))
    assert _on_disk(part) < len(data)

    for args, verb in ((["--dry-run"], "would keep"), ([], "kept")):
        run = run_cli(tmp_path, "clean", *args, "--workspace", str(ws))  # no --catalog
        assert run.code == 0, run.err
        assert f"{verb} {part} ({real}): " in run.out
        assert f"untouched for {STALE_PART_DAYS} days" in run.out
        assert f"easy-oww clean --partial {part}" in run.out
        assert run.out.splitlines()[1:] == [f"{'Would free' if args else 'Freed'} 0 B."], run.out
        assert part.exists() and record.exists()

    named = run_cli(tmp_path, "clean", "--partial", str(ws / "datasets" / "mine" / "big.bin"),
                    "--workspace", str(ws))
    assert named.code == 0, named.err
    assert f"deleted {part} ({real}): partial download, named with --partial" in named.out
    assert not part.exists() and not record.exists()
    wrong = run_cli(tmp_path, "clean", "--partial", str(part), "--workspace", str(ws))
    assert wrong.code == 2 and len(wrong.err.strip().splitlines()) == 1
    assert "no partial download" in wrong.err and "Traceback" not in wrong.err


def test_clean_help_documents_partial(tmp_path):
    run = run_cli(tmp_path, "clean", "--help")
    assert "--partial PATH" in run.out and "easy-oww clean --partial" in run.out


# -- a manifest of garbage bytes --------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["download", "--status"], ["download", "--status", "--json"], ["paths"],
    ["paths", "--json"], ["verify"], ["verify", "--json"], ["clean", "--dry-run"]])
def test_a_manifest_of_garbage_bytes_is_set_aside_and_said(tmp_path, command):
    ws = tmp_path / "ws"
    for folder in (".cache", "datasets"):
        (ws / folder).mkdir(parents=True)
    garbage = b"\xff\xfe" + os.urandom(4096)  # not UTF-8, let alone JSON
    (ws / ".cache" / "manifest.json").write_bytes(garbage)
    run = run_cli(tmp_path, *command, "--workspace", str(ws))
    assert run.code == 0, run.err
    assert "This is a bug" not in run.err and "Traceback" not in run.err
    assert "Note: the manifest was damaged; it was set aside as" in run.err
    (aside,) = (ws / ".cache").glob("manifest.json.damaged-*")
    assert aside.read_bytes() == garbage and str(aside) in run.err


# -- two datasets, one path ----------------------------------------------------------------------
@pytest.mark.parametrize("first, second, claimed", [
    ({"url": "http://127.0.0.1:9/a", "path": "shared/x.bin"},
     {"url": "http://127.0.0.1:9/b", "path": "shared/x.bin"}, "shared/x.bin"),
    ({"hf_repo": "o/r", "hf_folder": "16khz", "path": "rooms"},
     {"url": "http://127.0.0.1:9/b", "path": "rooms/extra.wav"}, "rooms/extra.wav"),
])
def test_two_datasets_claiming_one_path_are_refused(tmp_path, first, second, claimed):
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"one": {"files": [first]}, "two": {"files": [second]}})
    run = run_cli(tmp_path, "download", "--status", "--workspace", str(ws))
    assert run.code == 2, (run.out, run.err)
    assert len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err
    assert "'one'" in run.err and "'two'" in run.err and repr(claimed) in run.err


def test_a_file_inside_another_datasets_unpack_folder_is_refused(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {
        "clips": {"files": [{"url": "http://127.0.0.1:9/c.zip", "path": "clips/c.zip"}],
                  "unpack": [{"format": "zip", "into": "clips/audio"}]},
        "extra": {"files": [{"url": "http://127.0.0.1:9/e.wav",
                             "path": "clips/audio/e.wav"}]}})
    run = run_cli(tmp_path, "verify", "--workspace", str(ws))
    assert run.code == 2 and "'clips'" in run.err and "'extra'" in run.err
    assert "'clips/audio/e.wav'" in run.err


def test_remove_keeps_a_file_another_dataset_records(tmp_path, faulty_server):
    data = os.urandom(100_000)
    faulty_server.set_file("x.bin", data)
    entry = {"url": faulty_server.url("x.bin"), "path": "shared/x.bin", "hash": sha256(data)}
    one = write_catalog(tmp_path / "one.toml", {"one": {"files": [entry]}})
    two = write_catalog(tmp_path / "two.toml", {"two": {"files": [entry]}})
    ws = tmp_path / "ws"
    for catalog, key in ((one, "one"), (two, "two")):
        run = run_cli(tmp_path, "download", "--dataset", key, "--catalog", str(catalog),
                      "--workspace", str(ws))
        assert run.code == 0, run.err
    shared = ws / "datasets" / "shared" / "x.bin"
    run = run_cli(tmp_path, "remove", "one", "--yes", "--catalog", str(one), "--workspace",
                  str(ws))
    assert run.code == 0, run.err
    assert f"kept {shared}" in run.out and "two records it too" in run.out
    assert shared.read_bytes() == data
    verify = run_cli(tmp_path, "verify", "two", "--catalog", str(two), "--workspace", str(ws))
    assert verify.code == 0, verify.out
    rows = run_cli(tmp_path, "download", "--status", "--json", "--dataset", "two",
                   "--catalog", str(two), "--workspace", str(ws)).json()
    assert rows[0]["status"] == "cached"


# -- verify --json says the same every run ------------------------------------------------------
def test_verify_json_reports_the_same_facts_on_every_run(tmp_path, faulty_server):
    ws, mine, data = _mine(tmp_path, faulty_server)
    target = ws / "datasets" / "mine" / "mine.bin"
    target.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    runs = [run_cli(tmp_path, "verify", "--json", "--catalog", str(mine), "--workspace", str(ws))
            for _ in range(3)]
    assert [r.code for r in runs] == [1, 1, 1]
    first = runs[0].json()
    assert [r["path"] for r in first] == [str(target)]  # one row per file
    assert first[0]["size"] == len(data) and first[0]["expected"] == sha256(data)
    assert first[0]["actual"] not in (None, sha256(data))
    assert all(r.json() == first for r in runs[1:])
    target.unlink()  # missing now: still the recorded size and hash, run after run
    gone = [run_cli(tmp_path, "verify", "--json", "--catalog", str(mine), "--workspace",
                    str(ws)).json() for _ in range(2)]
    assert gone[0] == gone[1]
    assert (gone[0][0]["problem"], gone[0][0]["size"], gone[0][0]["expected"]) == (
        "missing", len(data), sha256(data))


# -- remove of a dataset never downloaded -------------------------------------------------------
def test_remove_of_a_dataset_never_downloaded_says_there_was_nothing(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"never": {"files": [
        {"url": "http://127.0.0.1:9/n.bin", "path": "never/n.bin"}]}})
    run = run_cli(tmp_path, "remove", "never", "--yes", "--workspace", str(ws))
    assert run.code == 0, run.err
    assert run.out.startswith("Nothing to remove: never was never downloaded")
    assert "Removed" not in run.out


# -- into a pipe: whole paths ---------------------------------------------------------------------
def test_status_and_verify_into_a_pipe_print_whole_paths(tmp_path, faulty_server):
    data = os.urandom(10_000)
    faulty_server.set_file("f.bin", data)
    rel = ("a_dataset_folder_with_a_rather_long_name/and_a_subfolder_that_is_long_too/"
           "the_file_itself_has_a_long_name_as_well.bin")
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"longish": {"name": "Long paths", "priority": "critical",
                                                     "files": [{"url": faulty_server.url("f.bin"),
                                                                "path": rel, "size": len(data)}]}})
    assert run_cli(tmp_path, "download", "--workspace", str(ws)).code == 0
    whole = str(ws / "datasets" / rel)
    status = run_cli(tmp_path, "download", "--status", "--workspace", str(ws))
    assert status.code == 0, status.err
    assert status.out.splitlines() == ["\t".join(["Long paths", human_bytes(len(data)),
                                                  "Critical", "cached", whole])]
    verify = run_cli(tmp_path, "verify", "--workspace", str(ws))
    assert verify.code == 0, verify.err
    assert verify.out.splitlines() == [
        "\t".join(["longish", whole, human_bytes(len(data)), "ok"]), "1 ok, 0 failed."]


# -- Hugging Face folder entries ------------------------------------------------------------------
def test_a_nested_hub_folder_is_the_datasets_location(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"rir": {"files": [
        {"hf_repo": "o/r", "hf_folder": "16khz", "path": "rooms/rir"}]}})
    rows = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert rows[0]["path"] == str(ws / "datasets" / "rooms" / "rir")
    # Its listing was never fetched: clean keeps what is under its folder, not the parent's.
    stray = ws / "datasets" / "rooms" / "stray.bin.part"
    mine = ws / "datasets" / "rooms" / "rir" / "r1.wav.part"
    for path in (stray, mine):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    run = run_cli(tmp_path, "clean", "--workspace", str(ws))
    assert run.code == 0, run.err
    assert not stray.exists() and mine.exists()


def test_an_unknown_hub_repo_type_is_refused(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"rir": {"files": [
        {"hf_repo": "o/r", "hf_folder": "16khz", "path": "rir", "hf_repo_type": "x/../y"}]}})
    run = run_cli(tmp_path, "download", "--status", "--workspace", str(ws))
    assert run.code == 2 and len(run.err.strip().splitlines()) == 1
    assert "hf_repo_type'" in run.err and "'datasets', 'models' or 'spaces'" in run.err
