"""The manifest (CacheManager), on real files in tmp_path."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock

from easy_oww.datasets.cache import CacheEntryError, CacheManager
from easy_oww.errors import LockTimeoutError
from tests.durability import SyncLog


@pytest.fixture
def cache(tmp_path) -> CacheManager:
    (tmp_path / "datasets").mkdir()
    return CacheManager(tmp_path / ".cache", tmp_path / "datasets", lock_timeout=5)


def _file(cache: CacheManager, rel: str, data: bytes):
    path = cache.datasets_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_records_are_relative_to_the_datasets_folder_and_survive_a_reload(cache, tmp_path):
    path = _file(cache, "d/a.bin", b"abc")
    cache.record_file("d", path, size=3, hash="sha256:x", source="http://h/a")
    cache.record_file("d", tmp_path / "elsewhere.bin", size=1, hash="sha256:y")
    files = CacheManager(cache.cache_dir, cache.datasets_dir).entry("d")["files"]
    assert set(files) == {"d/a.bin", str(tmp_path / "elsewhere.bin")}
    assert files["d/a.bin"]["source"] == "http://h/a"
    assert cache.absolute("d/a.bin") == path


def test_is_cached_needs_complete_and_every_file_at_its_size(cache):
    path = _file(cache, "d/a.bin", b"abc")
    cache.record_file("d", path, size=3, hash="sha256:x")
    assert not cache.is_cached("d")
    cache.mark_complete("d")
    assert cache.is_cached("d") and cache.list_cached() == ["d"]
    path.write_bytes(b"abcd")
    assert not cache.is_cached("d")
    path.write_bytes(b"abc")
    cache.record_failure("d", path, "hash mismatch")
    assert not cache.is_cached("d")


def test_a_removed_archive_does_not_count_against_its_dataset(cache):
    archive = _file(cache, "d/a.zip", b"zip")
    member = _file(cache, "d/x.wav", b"wav")
    cache.record_file("d", archive, size=3, hash="sha256:x", extra={"archive": True})
    cache.record_file("d", member, size=3, hash="sha256:y")
    cache.mark_complete("d")
    archive.unlink()
    cache.mark_removed("d", archive)
    assert cache.entry("d")["files"]["d/a.zip"]["removed"] is True
    assert cache.is_cached("d")
    assert [r["path"] for r in cache.verify_files("d")] == [str(member)]


def test_a_damaged_manifest_is_set_aside_and_rebuilt(cache):
    cache.cache_dir.mkdir(parents=True)
    cache.manifest_path.write_text('{"datasets": {"d": "not a table"}}')
    assert cache.load() == {"version": 1, "datasets": {}}
    assert cache.damaged is not None and cache.damaged.name.startswith("manifest.json.damaged-")
    assert cache.damaged.read_text() == '{"datasets": {"d": "not a table"}}'
    assert json.loads(cache.manifest_path.read_text())["datasets"] == {}


def test_add_entry_checks_the_file_and_its_checksum(cache, tmp_path):
    path = _file(cache, "mine/a.wav", b"hello")
    md5 = hashlib.md5(b"hello").hexdigest()
    with pytest.raises(CacheEntryError, match="does not exist"):
        cache.add_entry("mine", tmp_path / "nope.wav")
    with pytest.raises(CacheEntryError, match="checksum"):
        cache.add_entry("mine", path, checksum="sha256:zz")
    with pytest.raises(CacheEntryError, match="not the given"):
        cache.add_entry("mine", path, checksum="0" * 32)
    assert cache.entry("mine") is None
    cache.add_entry("mine", path, checksum=md5, metadata={"by": "hand"})
    record = cache.entry("mine")["files"]["mine/a.wav"]
    assert record["hash"] == f"md5:{md5}" and record["source"] == "added by hand"
    assert cache.is_cached("mine") and cache.entry("mine")["metadata"] == {"by": "hand"}
    cache.add_entry("mine2", path)  # no checksum: sha256 is computed for later checks
    assert cache.entry("mine2")["files"]["mine/a.wav"]["hash"] == \
        "sha256:" + hashlib.sha256(b"hello").hexdigest()


def test_verify_integrity_finds_rot_and_records_it(cache):
    path = _file(cache, "d/a.bin", b"abc")
    cache.add_entry("d", path)
    assert cache.verify_integrity("d")
    path.write_bytes(b"abd")  # same size, other bytes
    assert not cache.verify_integrity("d")
    assert cache.entry("d")["failed"]["d/a.bin"]["reason"] == "hash mismatch"
    assert not cache.is_cached("d")


def test_remove_entry_forgets_but_keeps_the_files(cache):
    path = _file(cache, "d/a.bin", b"abc")
    cache.add_entry("d", path)
    assert cache.remove_entry("d") is True and cache.remove_entry("d") is False
    assert path.exists() and cache.entry("d") is None


def test_writers_in_parallel_lose_nothing(cache):
    managers = [CacheManager(cache.cache_dir, cache.datasets_dir) for _ in range(4)]

    def write(n: int) -> None:
        for i in range(10):
            managers[n].record_file(f"d{n}", f"d{n}/{i}.bin", size=i, hash="sha256:x")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    data = cache.load()["datasets"]
    assert {k: len(v["files"]) for k, v in data.items()} == {f"d{n}": 10 for n in range(4)}


def test_a_held_lock_is_a_try_later_error(cache):
    cache.cache_dir.mkdir(parents=True)
    quick = CacheManager(cache.cache_dir, cache.datasets_dir, lock_timeout=0.05)
    with FileLock(str(cache.cache_dir / "manifest.lock")):
        with pytest.raises(LockTimeoutError, match="locked by another process"):
            quick.mark_complete("d")
    quick.mark_complete("d")
    assert quick.entry("d")["complete"] is True


def test_the_manifest_is_replaced_whole_never_written_in_place(cache, monkeypatch):
    """Every write goes to a temp file that is fsynced, renamed over the manifest, then the
    folder fsynced: a reader (or a power cut) sees the old manifest or the new one, never half
    of one. A reader holding the old file keeps reading the old, whole version."""
    path = _file(cache, "d/a.bin", b"abc")
    cache.record_file("d", path, size=3, hash="sha256:x")
    with open(cache.manifest_path, "rb") as old_reader:
        before = os.fstat(old_reader.fileno()).st_ino
        log = SyncLog(monkeypatch)
        cache.record_file("d", _file(cache, "d/b.bin", b"defg"), size=4, hash="sha256:y")
        assert set(json.loads(old_reader.read())["datasets"]["d"]["files"]) == {"d/a.bin"}
    assert cache.manifest_path.stat().st_ino != before
    assert set(cache.entry("d")["files"]) == {"d/a.bin", "d/b.bin"}
    log.assert_durable_rename(cache.manifest_path, writes_seen=False)


@pytest.mark.parametrize("text", [b"{ not json", b"\xff\xfe not utf-8", b"[1, 2]",
                                  b'{"datasets": {"d": {"files": {"a": 1}}}}'])
def test_any_kind_of_damage_is_set_aside_whole(cache, text):
    cache.cache_dir.mkdir(parents=True)
    cache.manifest_path.write_bytes(text)
    assert cache.load() == {"version": 1, "datasets": {}}
    assert cache.damaged is not None and cache.damaged.read_bytes() == text
    assert re.fullmatch(r"manifest\.json\.damaged-\d{8}-\d{6}", cache.damaged.name)
    assert cache.damaged.parent == cache.cache_dir
    assert json.loads(cache.manifest_path.read_text()) == {"version": 1, "datasets": {}}


def test_unpacked_members_are_recorded_in_one_write_and_forgotten(cache):
    members = [_file(cache, f"d/m{i}.wav", b"x" * (i + 1)) for i in range(3)]
    cache.record_failure("d", members[0], "hash mismatch")
    cache.record_files("d", [{"path": str(p), "size": i + 1, "hash": f"sha256:{i}"}
                             for i, p in enumerate(members)])
    entry = cache.entry("d")
    assert set(entry["files"]) == {"d/m0.wav", "d/m1.wav", "d/m2.wav"}
    assert entry["files"]["d/m2.wav"]["size"] == 3 and "time" in entry["files"]["d/m2.wav"]
    assert entry["failed"] == {}  # recorded again: no longer failed
    cache.forget_files("d", members[:2])
    assert set(cache.entry("d")["files"]) == {"d/m2.wav"}
    cache.forget_files("nothing", members)  # an unknown dataset: nothing to forget, no error
    assert set(cache.entry("d")["files"]) == {"d/m2.wav"}


def test_is_cached_needs_files_and_each_of_them_present(cache):
    cache.mark_complete("empty")
    assert not cache.is_cached("empty")  # complete, yet nothing recorded
    path = _file(cache, "d/a.bin", b"abc")
    cache.record_file("d", path, size=3, hash="sha256:x")
    cache.mark_complete("d")
    path.unlink()
    assert not cache.is_cached("d")


def test_a_failed_file_is_reported_by_every_verify_until_it_is_fetched_again(cache):
    good = _file(cache, "d/a.bin", b"abc")
    cache.add_entry("d", good)
    cache.record_failure("d", good, "deep check failed")  # the bytes still match the hash
    rows = cache.verify_files("d")
    assert [(r["ok"], r["problem"]) for r in rows] == [(False, "deep check failed")]
    assert rows[0]["expected"] == rows[0]["actual"]  # the same facts as the first check
    lost = _file(cache, "d/b.bin", b"xyz")
    cache.record_failure("d", lost, "connection lost")  # no record ever written for it
    rows = {Path(r["path"]).name: r for r in cache.verify_files("d")}
    assert (rows["b.bin"]["ok"], rows["b.bin"]["problem"], rows["b.bin"]["size"]) == (
        False, "connection lost", None)
    cache.record_file("d", good, size=3, hash=rows["a.bin"]["expected"])  # fetched again
    assert [r["ok"] for r in cache.verify_files("d") if r["path"] == str(good)] == [True]


def test_verify_integrity_records_a_size_change_and_a_missing_file_is_not_ok(cache):
    path = _file(cache, "d/a.bin", b"abc")
    cache.add_entry("d", path)
    path.write_bytes(b"abcdef")
    assert not cache.verify_integrity("d")
    assert cache.entry("d")["failed"]["d/a.bin"]["reason"] == "size 6, expected 3"
    path.unlink()
    rows = cache.verify_files("d")
    assert [(r["ok"], r["problem"]) for r in rows] == [(False, "missing")]
    assert not cache.verify_integrity("d")
    assert cache.remove_entry("d") and not cache.remove_entry("d")


def test_the_manifest_on_disk_has_the_documented_shape(cache, tmp_path):
    """The manifest is the user's record of what they have, read by every later version: its
    keys and values are asserted whole (times masked)."""
    archive = _file(cache, "d/a.zip", b"zip")
    member = _file(cache, "d/x.wav", b"wave")
    cache.record_file("d", archive, size=3, hash="sha256:aa", source="http://h/a.zip",
                      validator='"etag"', catalog_hash="sha256:aa", extra={"archive": True})
    cache.record_files("d", [{"path": str(member), "size": 4, "hash": "sha256:bb",
                              "member_of": "d/a.zip"}])
    cache.mark_removed("d", archive)
    cache.mark_complete("d", metadata={"version": "1.0"})
    cache.record_failure("e", tmp_path / "datasets" / "e" / "f.bin", "connection lost")
    on_disk = json.loads(cache.manifest_path.read_text())

    def masked(value):
        if isinstance(value, dict):
            return {k: "<time>" if k in ("time", "updated") else masked(v)
                    for k, v in value.items()}
        return value

    assert masked(on_disk) == {"version": 1, "datasets": {
        "d": {"complete": True, "updated": "<time>", "metadata": {"version": "1.0"}, "files": {
            "d/a.zip": {"size": 3, "hash": "sha256:aa", "source": "http://h/a.zip",
                        "validator": '"etag"', "catalog_hash": "sha256:aa", "time": "<time>",
                        "archive": True, "removed": True},
            "d/x.wav": {"size": 4, "hash": "sha256:bb", "member_of": "d/a.zip",
                        "time": "<time>"}}},
        "e": {"complete": False, "files": {}, "failed": {
            "e/f.bin": {"reason": "connection lost", "time": "<time>"}}}}}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", on_disk["datasets"]["d"]["updated"])
    cache.mark_complete("d", False)
    assert cache.entry("d")["complete"] is False and cache.entry("d")["metadata"] == {
        "version": "1.0"}


def test_verify_rows_say_the_same_facts_in_the_same_shape(cache):
    good = _file(cache, "d/a.bin", b"abc")
    cut = _file(cache, "d/b.bin", b"defg")
    rotten = _file(cache, "d/c.bin", b"hij")
    for path in (good, cut, rotten):
        cache.add_entry("d", path)
    cut.write_bytes(b"de")
    rotten.write_bytes(b"xyz")
    gone = _file(cache, "d/d.bin", b"k")
    cache.add_entry("d", gone)
    gone.unlink()
    cache.record_failure("d", cache.datasets_dir / "d" / "e.bin", "connection lost")
    sha = {p.name: "sha256:" + hashlib.sha256(d).hexdigest()
           for p, d in ((good, b"abc"), (cut, b"defg"), (rotten, b"hij"), (gone, b"k"))}
    base = cache.datasets_dir / "d"
    assert cache.verify_files("d") == [
        {"dataset": "d", "path": str(base / "a.bin"), "size": 3, "expected": sha["a.bin"],
         "actual": sha["a.bin"], "ok": True, "problem": ""},
        {"dataset": "d", "path": str(base / "b.bin"), "size": 4, "expected": sha["b.bin"],
         "actual": None, "ok": False, "problem": "size 2, expected 4"},
        {"dataset": "d", "path": str(base / "c.bin"), "size": 3, "expected": sha["c.bin"],
         "actual": "sha256:" + hashlib.sha256(b"xyz").hexdigest(), "ok": False,
         "problem": "hash mismatch"},
        {"dataset": "d", "path": str(base / "d.bin"), "size": 1, "expected": sha["d.bin"],
         "actual": None, "ok": False, "problem": "missing"},
        {"dataset": "d", "path": str(base / "e.bin"), "size": None, "expected": None,
         "actual": None, "ok": False, "problem": "connection lost"},
    ]


def test_a_failure_recorded_for_another_file_keeps_the_dataset_from_cached(cache):
    path = _file(cache, "d/a.bin", b"abc")
    cache.record_file("d", path, size=3, hash="sha256:x")
    cache.record_failure("d", cache.datasets_dir / "d" / "other.bin", "connection lost")
    cache.mark_complete("d")
    assert not cache.is_cached("d")


def test_a_removed_archive_listed_first_does_not_hide_a_missing_member(cache):
    archive = _file(cache, "d/a.zip", b"zip")
    member = _file(cache, "d/x.wav", b"wav")
    cache.record_file("d", archive, size=3, hash="sha256:x")
    cache.mark_removed("d", archive)
    cache.record_file("d", member, size=3, hash="sha256:y")
    cache.mark_complete("d")
    assert cache.is_cached("d")
    member.unlink()
    assert not cache.is_cached("d")


def test_members_recorded_into_a_new_dataset_start_it_incomplete(cache):
    member = _file(cache, "n/x.wav", b"wav")
    cache.record_files("n", [{"path": str(member), "size": 3, "hash": "sha256:y"}])
    entry = cache.entry("n")
    assert entry["complete"] is False and set(entry["files"]) == {"n/x.wav"}


def test_metadata_given_by_hand_is_kept_on_the_files_record(cache, tmp_path):
    path = _file(cache, "d/a.bin", b"abc")
    cache.add_entry("d", path, metadata={"version": "2"}, complete=False)
    record = cache.entry("d")["files"]["d/a.bin"]
    assert record["metadata"] == {"version": "2"} and record["source"] == "added by hand"
    assert "metadata" not in cache.entry("d") and cache.entry("d")["complete"] is False
    cache.add_entry("e", _file(cache, "e/b.bin", b"b"))
    assert "metadata" not in cache.entry("e")["files"]["e/b.bin"]


def test_an_entry_without_files_is_handled_by_every_change(cache):
    """A valid manifest may hold a dataset entry with no "files" table (written by hand, or
    by an older version): no change to it may fail."""
    cache.cache_dir.mkdir(parents=True)
    cache.manifest_path.write_text(json.dumps({"version": 1, "datasets": {
        "d": {"complete": True}, "e": {"complete": True}}}))
    path = cache.datasets_dir / "d" / "a.bin"
    assert not cache.is_cached("d") and cache.verify_files("d") == []
    cache.forget_files("d", [path])
    cache.mark_removed("d", path)
    cache.record_failure("e", path, "connection lost")
    assert cache.entry("e")["failed"]["d/a.bin"]["reason"] == "connection lost"
    cache.record_file("d", _file(cache, "d/a.bin", b"abc"), size=3, hash="sha256:x")
    assert set(cache.entry("d")["files"]) == {"d/a.bin"}
    assert cache.damaged is None


def test_the_default_places_are_the_seeds(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = CacheManager()
    assert cache.cache_dir == tmp_path / ".easy-oww" / ".cache"
    assert cache.datasets_dir == tmp_path / ".easy-oww" / "datasets"
    assert cache.manifest_path == cache.cache_dir / "manifest.json"
    assert cache.lock_timeout == 60.0 and cache.damaged is None
    cache.record_failure("d", cache.datasets_dir / "d" / "a.bin", "connection lost")
    assert set(json.loads(cache.manifest_path.read_text())["datasets"]) == {"d"}


def test_times_are_utc_whatever_the_local_zone(monkeypatch):
    from datetime import datetime, timezone

    from easy_oww.datasets.cache import utc_now

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        before = datetime.now(timezone.utc).replace(microsecond=0)
        stamp = datetime.strptime(utc_now(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        after = datetime.now(timezone.utc)
        assert before <= stamp <= after
    finally:
        monkeypatch.undo()
        time.tzset()


def test_reading_a_good_manifest_never_writes_it(cache):
    path = _file(cache, "d/a.bin", b"abc")
    cache.record_file("d", path, size=3, hash="sha256:x")
    before = cache.manifest_path.stat()
    assert set(cache.load()["datasets"]) == {"d"}
    assert cache.entry("d")["files"]["d/a.bin"]["size"] == 3
    after = cache.manifest_path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    snapshot = {"datasets": {"d": {"complete": True, "files": {}}}}
    assert cache.entry("d", snapshot) == {"complete": True, "files": {}}  # the one given


def test_a_file_recorded_again_is_no_longer_failed_and_a_failure_keeps_its_record(cache):
    path = _file(cache, "d/a.bin", b"abc")
    cache.add_entry("d", path)
    record = cache.entry("d")["files"]["d/a.bin"]
    cache.record_failure("d", path, "hash mismatch")
    cache.record_failure("d", path, "deep check failed")  # again: the record stays with it
    failed = cache.entry("d")["failed"]["d/a.bin"]
    assert failed["reason"] == "deep check failed" and failed["record"] == record
    cache.record_file("d", path, size=3, hash=record["hash"])
    assert cache.entry("d")["failed"] == {}


def test_marks_on_unknown_datasets_and_files(cache):
    cache.mark_removed("nothing", cache.datasets_dir / "x.zip")  # no error, nothing created
    assert cache.load()["datasets"] == {}
    cache.mark_complete("new")
    entry = cache.entry("new")
    assert set(entry) == {"complete", "files", "updated"} and entry["files"] == {}
    assert entry["complete"] is True


def test_a_missing_file_is_reported_but_not_recorded_as_failed(cache):
    kept = _file(cache, "d/a.bin", b"abc")
    lost = _file(cache, "d/b.bin", b"def")
    cache.add_entry("d", kept)
    cache.add_entry("d", lost)
    lost.unlink()
    assert not cache.verify_integrity("d")
    assert cache.entry("d").get("failed", {}) == {}  # download fetches it again as missing
    assert set(cache.entry("d")["files"]) == {"d/a.bin", "d/b.bin"}


def test_members_left_out_on_purpose_are_kept_apart_from_the_files(cache):
    assert cache.entry("fma") is None
    cache.record_unreadable("fma", [])  # nothing left out: no entry is made
    assert cache.entry("fma") is None
    before = time.strftime("%Y-%m-%dT%H:%M", time.gmtime())
    cache.record_unreadable("fma", [
        {"path": cache.datasets_dir / "fma" / "099134.wav", "member": "fma_small/099/099134.mp3",
         "reason": "listed as silent (no audio)", "source": "fma/fma_small.zip"},
        {"path": "fma/108925.wav", "member": "fma_small/108/108925.mp3", "reason": "silent too",
         "source": "fma/fma_small.zip"}])
    entry = cache.entry("fma")
    assert entry["complete"] is False and entry["files"] == {}
    assert sorted(entry["unreadable"]) == ["fma/099134.wav", "fma/108925.wav"]
    record = entry["unreadable"]["fma/099134.wav"]
    assert {k: v for k, v in record.items() if k != "time"} == {
        "member": "fma_small/099/099134.mp3", "reason": "listed as silent (no audio)",
        "source": "fma/fma_small.zip"}
    assert record["time"] >= before and record["time"].endswith("Z")
    # A later call adds to the list, and the files recorded meanwhile are left as they are.
    cache.record_file("fma", "fma/000002.wav", size=3, hash="sha256:" + "0" * 64)
    cache.record_unreadable("fma", [{"path": "fma/133297.wav", "member": "m", "reason": "r",
                                     "source": "s"}])
    entry = cache.entry("fma")
    assert sorted(entry["unreadable"]) == ["fma/099134.wav", "fma/108925.wav", "fma/133297.wav"]
    assert list(entry["files"]) == ["fma/000002.wav"]
    # Not files: verify looks only for the one recorded file.
    assert [Path(r["path"]).name for r in cache.verify_files("fma")] == ["000002.wav"]
