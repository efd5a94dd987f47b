"""`easy-oww download / verify / init` as a user runs them: real processes, real servers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from filelock import FileLock

from tests.datasets.helpers import (
    cli_cmd,
    cli_env,
    run_cli,
    sha256,
    wait_for_progress,
    write_catalog,
)

MiB = 1024 * 1024


@pytest.fixture
def blobs() -> dict[str, bytes]:
    return {"a.bin": os.urandom(2 * MiB + 17), "b1.bin": os.urandom(300_000),
            "b2.bin": os.urandom(200_001), "c.bin": os.urandom(50_000)}


@pytest.fixture
def served(faulty_server, blobs, tmp_path):
    """A workspace whose datasets.toml points at the faulty server."""
    for name, data in blobs.items():
        faulty_server.set_file(name, data)
    ws = tmp_path / "ws"
    ws.mkdir()
    url = faulty_server.url
    write_catalog(ws / "datasets.toml", {
        "alpha": {"name": "Alpha features", "priority": "critical", "files": [
            {"url": url("a.bin"), "path": "alpha/a.bin", "size": len(blobs["a.bin"]),
             "hash": sha256(blobs["a.bin"])}]},
        "beta": {"name": "Beta clips", "priority": "recommended", "files": [
            {"url": url("b1.bin"), "path": "beta/b1.bin", "hash": sha256(blobs["b1.bin"])},
            {"url": url("b2.bin"), "path": "beta/b2.bin"}]},
        "gamma": {"name": "Gamma extra", "priority": "optional", "files": [
            {"url": url("c.bin"), "path": "gamma/c.bin", "size": len(blobs["c.bin"])}]},
    })
    return ws


def status(tmp_path: Path, ws: Path, *keys: str) -> dict[str, dict]:
    args = ["download", "--status", "--json", "--workspace", str(ws)]
    for key in keys:
        args += ["--dataset", key]
    run = run_cli(tmp_path, *args)
    assert run.code == 0, run.err
    return {row["key"]: row for row in run.json()}


def test_required_then_all_downloads_verifies_and_reports(tmp_path, served, blobs, faulty_server):
    run = run_cli(tmp_path, "download", "--workspace", str(served), "--dataset", "alpha",
                  "--dataset", "beta", "--dataset", "gamma")
    assert run.code == 0, run.err
    rows = status(tmp_path, served, "alpha", "beta", "gamma")
    assert {k: r["status"] for k, r in rows.items()} == {
        "alpha": "cached", "beta": "cached", "gamma": "cached"}
    assert rows["alpha"]["path"] == str(served / "datasets" / "alpha" / "a.bin")
    assert rows["alpha"]["size_bytes"] == rows["alpha"]["done_bytes"] == len(blobs["a.bin"])
    assert rows["beta"]["path"] == str(served / "datasets" / "beta")
    for rel, name in (("alpha/a.bin", "a.bin"), ("beta/b2.bin", "b2.bin")):
        assert (served / "datasets" / rel).read_bytes() == blobs[name]
    manifest = json.loads((served / ".cache" / "manifest.json").read_text())
    # A file with no catalog hash still gets its sha256 recorded, for `verify`.
    assert manifest["datasets"]["beta"]["files"]["beta/b2.bin"]["hash"] == sha256(blobs["b2.bin"])
    faulty_server.reset_counters()
    again = run_cli(tmp_path, "download", "--all", "--workspace", str(served))
    assert again.code == 0, again.err
    assert sum(faulty_server.bytes_sent(n) for n in blobs) == 0  # cached: nothing re-fetched
    verify = run_cli(tmp_path, "verify", "--workspace", str(served), "--json")
    assert verify.code == 0 and all(row["ok"] for row in verify.json())


def test_status_table_and_default_selection(tmp_path, served):
    run = run_cli(tmp_path, "--workspace", str(served), "download")  # no flag = required
    assert run.code == 0, run.err
    rows = status(tmp_path, served)
    assert rows["alpha"]["status"] == rows["beta"]["status"] == "cached"
    assert rows["gamma"]["status"] == "missing"
    table = run_cli(tmp_path, "download", "--status", "--workspace", str(served))
    assert "Alpha features" in table.out and "cached" in table.out and "Optional" in table.out


def test_status_of_chosen_datasets_shows_them_alone(tmp_path, served):
    # The table and --json show the same selection: --dataset beta is beta alone in both.
    table = run_cli(tmp_path, "download", "--status", "--dataset", "beta",
                    "--workspace", str(served))
    assert table.code == 0, table.err
    assert "Beta clips" in table.out
    assert "Alpha features" not in table.out and "Gamma extra" not in table.out
    assert list(status(tmp_path, served, "beta")) == ["beta"]


def test_rotted_file_is_corrupt_and_verify_fails(tmp_path, served, blobs):
    assert run_cli(tmp_path, "download", "--dataset", "alpha", "--workspace", str(served)).code == 0
    target = served / "datasets" / "alpha" / "a.bin"
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF  # same size, different bytes: only a full re-hash sees it
    target.write_bytes(bytes(data))
    assert status(tmp_path, served, "alpha")["alpha"]["status"] == "cached"  # fast check
    run = run_cli(tmp_path, "verify", "alpha", "--workspace", str(served))
    assert run.code == 1 and "hash mismatch" in run.out
    assert status(tmp_path, served, "alpha")["alpha"]["status"] == "corrupt"
    fixed = run_cli(tmp_path, "download", "--dataset", "alpha", "--workspace", str(served))
    assert fixed.code == 0, fixed.err
    assert target.read_bytes() == blobs["a.bin"]
    assert status(tmp_path, served, "alpha")["alpha"]["status"] == "cached"


def test_a_file_whose_size_changed_is_corrupt_then_fetched_again(tmp_path, served, blobs,
                                                                 faulty_server):
    """`--status` calls a recorded file at another size corrupt and says to run download
    again: that run must fetch it, not skip it as recorded."""
    assert run_cli(tmp_path, "download", "--dataset", "alpha", "--workspace", str(served)).code == 0
    target = served / "datasets" / "alpha" / "a.bin"
    with open(target, "r+b") as handle:
        handle.truncate(len(blobs["a.bin"]) - 4096)  # cut short, as by a full disk or a copy
    assert status(tmp_path, served, "alpha")["alpha"]["status"] == "corrupt"
    faulty_server.reset_counters()
    again = run_cli(tmp_path, "download", "--dataset", "alpha", "--workspace", str(served))
    assert again.code == 0, again.err
    assert faulty_server.bytes_sent("a.bin") > 0
    assert target.read_bytes() == blobs["a.bin"]
    assert status(tmp_path, served, "alpha")["alpha"]["status"] == "cached"


def test_changed_catalog_hash_makes_the_dataset_stale(tmp_path, served, blobs):
    assert run_cli(tmp_path, "download", "--dataset", "beta", "--workspace", str(served)).code == 0
    catalog = served / "datasets.toml"
    catalog.write_text(catalog.read_text().replace(sha256(blobs["b1.bin"]), "sha256:" + "0" * 64))
    assert status(tmp_path, served, "beta")["beta"]["status"] == "stale"


def test_404_fails_that_file_and_the_rest_still_finish(tmp_path, served, faulty_server):
    faulty_server.set_faults("b2.bin", status=404)
    run = run_cli(tmp_path, "download", "--workspace", str(served))
    assert run.code == 1
    assert faulty_server.url("b2.bin") in run.err and "Traceback" not in run.err
    rows = status(tmp_path, served)
    assert rows["alpha"]["status"] == "cached" and rows["beta"]["status"] == "partial"


def test_python_api_file_downloaded_and_partial_percent(tmp_path, served, blobs, faulty_server):
    faulty_server.set_faults("a.bin", drop_after=1_000_000)
    run = run_cli(tmp_path, "download", "--dataset", "alpha", "--retries", "1",
                  "--workspace", str(served))
    assert run.code == 1
    row = status(tmp_path, served, "alpha")["alpha"]
    assert row["status"] == "partial" and 0 < row["done_bytes"] < len(blobs["a.bin"])
    table = run_cli(tmp_path, "download", "--status", "--workspace", str(served))
    assert "partial" in table.out and "%" in table.out


@pytest.mark.parametrize("body, needle", [
    ('[datasets.x]\nfiles = [{url = "http://h/x", path = "x", colour = "red"}]',
     "'files[0].colour'"),
    ('[datasets.x]\nfiles = [{url = "http://h/x", path = "x", size = "big"}]',
     "'files[0].size'"),
    ('[datasets.x]\nfiles = [{url = "http://h/x", path = "../../etc/x"}]', "escapes"),
    ('[datasets.x]\nfiles = [{url = "http://h/x", path = "x", hash = "sha256:xyz"}]',
     "'files[0].hash'"),
    ('[datasets.x]\npriority = "urgent"\nfiles = [{url = "http://h/x", path = "x"}]', "'priority'"),
    ("[datasets.x\n", "not valid TOML"),
])
def test_bad_catalog_is_refused_in_one_line(tmp_path, body, needle):
    bad = tmp_path / "bad.toml"
    bad.write_text(body)
    run = run_cli(tmp_path, "download", "--status", "--catalog", str(bad),
                  "--workspace", str(tmp_path / "ws"))
    assert run.code == 2
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and needle in lines[0]
    if "TOML" not in needle:
        assert "dataset 'x'" in lines[0]


def test_bad_usage_exits_2(tmp_path, served):
    assert run_cli(tmp_path, "download", "--all", "--dataset", "alpha").code == 2
    assert run_cli(tmp_path, "download", "--json").code == 2
    run = run_cli(tmp_path, "download", "--dataset", "nope", "--workspace", str(served))
    assert run.code == 2 and "unknown dataset 'nope'" in run.err


def test_not_enough_space_is_refused_unless_forced(tmp_path, faulty_server):
    """A real 4 MB tmpfs as the workspace drive."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        data = os.urandom(6 * MiB)
        faulty_server.set_file("big.bin", data)
        catalog = write_catalog(tmp_path / "c.toml", {"big": {"priority": "critical", "files": [
            {"url": faulty_server.url("big.bin"), "path": "big.bin", "size": len(data)}]}})
        run = run_cli(tmp_path, "download", "--dataset", "big", "--catalog", str(catalog),
                      "--workspace", str(mount / "ws"))
        assert run.code == 1
        assert "need 6.3 MB" in run.err and "free" in run.err and str(mount) in run.err
        assert faulty_server.bytes_sent("big.bin") == 0
        forced = run_cli(tmp_path, "download", "--dataset", "big", "--catalog", str(catalog),
                         "--force", "--workspace", str(mount / "ws"))
        assert forced.code == 1 and "No space left" in forced.err  # tried, failed clearly
        assert "Traceback" not in forced.err
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_the_space_check_compares_with_free_space_not_the_drives_size(tmp_path, faulty_server):
    """A real 4 MB tmpfs, half full: the download fits the drive's size but not what is
    free. Compared with the size, the check would let it start and fail on a full disk."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        (mount / "other.bin").write_bytes(os.urandom(2 * MiB + MiB // 2))
        data = os.urandom(2 * MiB)
        usage = shutil.disk_usage(mount)
        assert usage.free < len(data) < usage.total
        faulty_server.set_file("big.bin", data)
        catalog = write_catalog(tmp_path / "c.toml", {"big": {"priority": "critical", "files": [
            {"url": faulty_server.url("big.bin"), "path": "big.bin", "size": len(data)}]}})
        run = run_cli(tmp_path, "download", "--dataset", "big", "--catalog", str(catalog),
                      "--workspace", str(mount / "ws"))
        assert run.code == 1
        assert "need 2.1 MB" in run.err and "free" in run.err, run.err
        assert faulty_server.bytes_sent("big.bin") == 0
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_fat_drive_refuses_a_file_over_4_gib(tmp_path, faulty_server):
    """A real FAT filesystem (FUSE fusefat on an image file) as the workspace drive."""
    image, mount = tmp_path / "fat.img", tmp_path / "fat"
    subprocess.run(["truncate", "-s", "32M", str(image)], check=True)
    subprocess.run(["mkfs.vfat", str(image)], check=True, capture_output=True)
    mount.mkdir()
    subprocess.run(["fusefat", "-o", "rw+", str(image), str(mount)], check=True,
                   capture_output=True)
    try:
        faulty_server.set_file("huge.bin", b"x")
        catalog = write_catalog(tmp_path / "c.toml", {"huge": {"priority": "critical", "files": [
            {"url": faulty_server.url("huge.bin"), "path": "huge.bin", "size": 5 * 2**30}]}})
        run = run_cli(tmp_path, "download", "--dataset", "huge", "--catalog", str(catalog),
                      "--force", "--workspace", str(mount / "ws"))
        assert run.code == 1 and "up to 4 GiB" in run.err and "fusefat" in run.err
        assert faulty_server.bytes_sent("huge.bin") == 0
    finally:
        subprocess.run(["fusermount", "-u", str(mount)], check=False)


def test_lock_held_by_another_process_exits_75(tmp_path, served):
    import hashlib

    dest = (served / "datasets" / "gamma" / "c.bin").resolve()
    locks = served / ".cache" / "locks"
    locks.mkdir(parents=True)
    name = hashlib.sha1(str(dest).encode()).hexdigest()[:16]
    with FileLock(str(locks / f"{name}.lock")):
        run = run_cli(tmp_path, "download", "--dataset", "gamma", "--lock-timeout", "0.5",
                      "--workspace", str(served))
    assert run.code == 75, run.err
    assert "another process" in run.err


def test_damaged_manifest_is_set_aside_and_files_adopted(tmp_path, served, faulty_server, blobs):
    assert run_cli(tmp_path, "download", "--workspace", str(served)).code == 0
    (served / ".cache" / "manifest.json").write_text("{ not json")
    faulty_server.reset_counters()
    run = run_cli(tmp_path, "download", "--workspace", str(served))
    assert run.code == 0, run.err
    assert sum(faulty_server.bytes_sent(n) for n in blobs) == 0  # re-hashed, not re-fetched
    assert list((served / ".cache").glob("manifest.json.damaged-*"))
    assert "set aside" in run.err
    assert status(tmp_path, served)["alpha"]["status"] == "cached"


def test_malformed_manifest_entry_counts_as_damage_not_a_traceback(tmp_path, served):
    assert run_cli(tmp_path, "download", "--dataset", "gamma", "--workspace", str(served)).code == 0
    (served / ".cache" / "manifest.json").write_text('{"version": 1, "datasets": {"gamma": 5}}')
    shown = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(served))
    assert shown.code == 0 and "set aside" in shown.err and "Traceback" not in shown.err
    assert {r["key"]: r["status"] for r in shown.json()}["gamma"] == "missing"
    assert list((served / ".cache").glob("manifest.json.damaged-*"))
    run = run_cli(tmp_path, "download", "--dataset", "gamma", "--workspace", str(served))
    assert run.code == 0, run.err
    assert status(tmp_path, served, "gamma")["gamma"]["status"] == "cached"


def test_two_processes_on_one_workspace_lose_no_manifest_entry(tmp_path, served):
    procs = [subprocess.Popen(cli_cmd("download", "--dataset", key, "--workspace", str(served)),
                              env=cli_env(tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for key in ("alpha", "beta", "gamma")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    rows = status(tmp_path, served)
    assert all(rows[k]["status"] == "cached" for k in ("alpha", "beta", "gamma"))


def test_workspace_resolution_order(tmp_path, served):
    init = run_cli(tmp_path, "init", "--workspace", str(tmp_path / "new" / "place"))
    assert init.code == 0, init.err
    assert "Drive: /" in init.out and "free of" in init.out  # mount point, type, free space
    assert (tmp_path / "new" / "place" / "datasets").is_dir()
    assert (tmp_path / "new" / "place" / "freesound_library").is_dir()
    remembered = status(tmp_path, tmp_path / "new" / "place")  # explicit
    assert remembered
    rows = run_cli(tmp_path, "download", "--status", "--json").json()
    assert rows[0]["path"].startswith(str(tmp_path / "new" / "place"))  # remembered by init
    env_rows = run_cli(tmp_path, "download", "--status", "--json",
                       EASY_OWW_WORKSPACE=str(tmp_path / "envws")).json()
    assert env_rows[0]["path"].startswith(str(tmp_path / "envws"))  # env beats remembered
    flag_rows = run_cli(tmp_path, "--workspace", str(tmp_path / "flag"), "download", "--status",
                        "--json", EASY_OWW_WORKSPACE=str(tmp_path / "envws")).json()
    assert flag_rows[0]["path"].startswith(str(tmp_path / "flag"))  # flag beats env


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_keep_parts_and_say_how_to_resume(tmp_path, served, faulty_server,
                                                             blobs, sig, code):
    faulty_server.set_faults("a.bin", rate=1_000_000)
    proc = subprocess.Popen(cli_cmd("download", "--dataset", "alpha", "--connections", "1",
                                    "--workspace", str(served)), env=cli_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for_progress(served, "alpha/a.bin", 0, proc) > 0
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code
    assert "run the same command again" in err and "Traceback" not in err
    assert (served / "datasets" / "alpha" / "a.bin.part").exists()
    faulty_server.clear_faults()
    assert run_cli(tmp_path, "download", "--dataset", "alpha", "--workspace", str(served)).code == 0
    assert (served / "datasets" / "alpha" / "a.bin").read_bytes() == blobs["a.bin"]


def test_chaos_sigkill_ten_times_then_resume(tmp_path, faulty_server):
    """SIGKILL the CLI at random points; the final bytes are exact and the server never sent
    much more than the file plus one range per kill (a downloader that restarts fails this)."""
    import random

    data = os.urandom(3 * MiB)
    rate = 250_000  # per connection
    faulty_server.set_file("big.bin", data)
    faulty_server.set_faults("big.bin", rate=rate)
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"big": {"priority": "critical", "files": [
        {"url": faulty_server.url("big.bin"), "path": "big.bin", "size": len(data),
         "hash": sha256(data)}]}})
    rng = random.Random(7)
    kills = 0
    seen = 0
    while kills < 10:
        connections = rng.choice(["1", "3"])
        proc = subprocess.Popen(cli_cmd("download", "--dataset", "big", "--connections",
                                        connections, "--workspace", str(ws)),
                                env=cli_env(tmp_path), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        step = rng.randint(20_000, 100_000)
        seen = wait_for_progress(ws, "big.bin", seen + step, proc)
        if proc.poll() is not None:
            break  # finished before we could kill it
        proc.kill()
        proc.wait()
        kills += 1
    final = run_cli(tmp_path, "download", "--dataset", "big", "--workspace", str(ws))
    assert final.code == 0, final.err
    assert (ws / "datasets" / "big.bin").read_bytes() == data
    assert kills >= 10
    # A kill can lose only what arrived after the sidecar's last save: at most one save
    # interval (0.5 s) of transfer per connection. A downloader that starts over would
    # re-send the whole file on every run.
    per_kill = 3 * rate // 2
    sent = faulty_server.bytes_sent("big.bin")
    assert sent <= len(data) + kills * per_kill, (sent, kills)


def test_same_dataset_in_two_processes_is_downloaded_once(tmp_path, served, faulty_server,
                                                          blobs):
    faulty_server.set_faults("a.bin", rate=2_000_000)
    args = ["download", "--dataset", "alpha", "--workspace", str(served)]
    first = subprocess.Popen(cli_cmd(*args), env=cli_env(tmp_path), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert wait_for_progress(served, "alpha/a.bin", 0, first) > 0
    second = subprocess.Popen(cli_cmd(*args), env=cli_env(tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    _, err = second.communicate(timeout=60)
    assert first.wait(timeout=60) == 0 and second.returncode == 0, err
    assert "another easy-oww process is downloading it" in err
    assert (served / "datasets" / "alpha" / "a.bin").read_bytes() == blobs["a.bin"]
    assert faulty_server.bytes_sent("a.bin") == len(blobs["a.bin"])  # fetched once
