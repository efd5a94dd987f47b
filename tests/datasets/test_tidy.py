"""`clean` and `remove_dataset`, called directly on a real workspace in tmp_path."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from filelock import FileLock

from easy_oww.datasets.catalog import Catalog
from easy_oww.datasets.manager import DatasetManager
from easy_oww.datasets.tidy import BUSY_SECONDS, STALE_PART_DAYS, clean, remove_dataset
from easy_oww.datasets.unpacking import extraction_lock
from easy_oww.transfer.fetch import lock_path

CATALOG = """include_builtin = false
[datasets.noise]
[[datasets.noise.files]]
url = "http://127.0.0.1:9/a.wav"
path = "noise/a.wav"
[[datasets.noise.files]]
url = "http://127.0.0.1:9/b.wav"
path = "noise/b.wav"
[datasets.rooms]
path = "rooms"
[[datasets.rooms.files]]
hf_repo = "o/r"
hf_folder = "16khz"
path = "rooms"
"""


def _manager(tmp_path: Path) -> DatasetManager:
    (tmp_path / "c.toml").write_text(CATALOG)
    ws = tmp_path / "ws"
    return DatasetManager(datasets_dir=ws / "datasets", cache_dir=ws / ".cache",
                          catalog=Catalog.load(None, tmp_path / "c.toml"))


def _put(manager: DatasetManager, rel: str, data: bytes = b"x", age_days: float = 0) -> Path:
    path = manager.datasets_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age_days:
        old = time.time() - age_days * 86400
        os.utime(path, (old, old))
    return path


def test_clean_removes_unwanted_and_stale_parts_and_keeps_the_rest(tmp_path):
    manager = _manager(tmp_path)
    unwanted = _put(manager, "noise/old.wav.part", b"12345")
    sidecar = _put(manager, "noise/old.wav.part.json")
    wanted = _put(manager, "noise/a.wav.part")
    stale = _put(manager, "noise/b.wav.part", age_days=STALE_PART_DAYS + 1)
    unlisted = _put(manager, "rooms/r1.wav.part")  # its folder's listing was never fetched
    held = _put(manager, "noise/busy.wav.part")
    with FileLock(str(lock_path(manager.cache_dir / "locks", held.with_suffix("")))):
        planned = clean(manager, dry_run=True)
        assert all(p.exists() for p in (unwanted, sidecar, stale))  # a dry run deletes nothing
        done = clean(manager)
    reasons = {r.path: r.reason for r in done}
    assert [(r.path, r.reason) for r in planned] == [(r.path, r.reason) for r in done]
    assert reasons == {unwanted: "partial download, no catalog entry wants it",
                       sidecar: "its resume record",
                       stale: "partial download, untouched for 30 days"}
    assert {r.bytes for r in done if r.path == unwanted} == {5}
    assert not unwanted.exists() and not sidecar.exists() and not stale.exists()
    assert wanted.exists() and unlisted.exists() and held.exists()


def test_clean_removes_orphan_unpack_temps_but_not_fresh_ones(tmp_path):
    manager = _manager(tmp_path)
    orphan = _put(manager, "noise/.easy-oww-unpack-tmp.1/member.wav", age_days=1).parent
    os.utime(orphan, (time.time() - 2 * BUSY_SECONDS,) * 2)
    fresh = _put(manager, "noise/.easy-oww-unpack-tmp.2/member.wav").parent
    done = clean(manager)
    assert [(r.path, r.reason) for r in done] == [
        (orphan, "orphan temporary folder of an extraction")]
    assert not orphan.exists() and fresh.exists()


def test_clean_removes_extracted_archives_and_flags_them_in_the_manifest(tmp_path):
    manager = _manager(tmp_path)
    archive = _put(manager, "noise/a.wav", b"pretend zip")
    manager.cache.record_file("noise", archive, size=11, hash="sha256:x", extra={"archive": True})
    assert clean(manager) == []  # the dataset is not complete yet: the archive is still needed
    manager.cache.mark_complete("noise")
    (removal,) = clean(manager)
    assert (removal.path, removal.reason, removal.bytes) == (
        archive, "noise: archive already extracted", 11)
    assert not archive.exists()
    assert manager.cache.entry("noise")["files"]["noise/a.wav"]["removed"] is True


def test_remove_dataset_deletes_its_files_and_entry_but_not_the_users_own(tmp_path):
    manager = _manager(tmp_path)
    done = _put(manager, "noise/a.wav", b"aaa")
    manager.cache.record_file("noise", done, size=3, hash="sha256:x")
    part = _put(manager, "noise/b.wav.part", b"bb")
    resume = _put(manager, "noise/b.wav.part.json")
    mine = _put(manager, "noise/keep-me.txt")
    other = _put(manager, "rooms/r.wav")
    removed = remove_dataset(manager, "noise")
    assert sorted(r.path for r in removed) == sorted([done, part, resume])
    assert sum(r.bytes for r in removed) == 6
    assert not done.exists() and not part.exists() and not resume.exists()
    assert mine.exists() and other.exists()  # the folder is kept: it is not empty
    assert manager.cache.entry("noise") is None
    mine.unlink()
    _put(manager, "noise/a.wav")
    remove_dataset(manager, "noise")
    assert not (manager.datasets_dir / "noise").exists()  # empty now: the folder goes too


def test_a_part_with_a_resume_record_is_kept_until_stale_and_counted_by_its_blocks(tmp_path):
    manager = _manager(tmp_path)
    part = manager.datasets_dir / "elsewhere" / "big.bin.part"
    part.parent.mkdir(parents=True)
    with part.open("wb") as f:  # what several connections leave: sparse, 64 MiB long
        f.truncate(64 << 20)
        f.write(b"y" * 100_000)
    record = _put(manager, "elsewhere/big.bin.part.json", json.dumps(
        {"url": "http://127.0.0.1:9/big.bin", "size": 64 << 20, "done": [[0, 100_000]],
         "written": [[0, 100_000]]}).encode())
    (kept,) = clean(manager)
    assert kept.kept and kept.path == part and f"{STALE_PART_DAYS} days" in kept.reason
    assert 100_000 <= kept.bytes < 1 << 20  # the blocks written, not the 64 MiB length
    assert part.exists() and record.exists()
    old = time.time() - (STALE_PART_DAYS + 1) * 86400
    os.utime(part, (old, old))
    done = clean(manager)
    assert [(r.path, r.reason, r.kept) for r in done] == [
        (part, f"partial download, untouched for {STALE_PART_DAYS} days", False),
        (record, "its resume record", False)]
    assert not part.exists() and not record.exists()


def test_remove_keeps_a_temp_folder_an_extraction_in_progress_holds(tmp_path):
    (tmp_path / "c.toml").write_text("""include_builtin = false
[datasets.zipped]
[[datasets.zipped.files]]
url = "http://127.0.0.1:9/z.zip"
path = "zipped/z.zip"
[[datasets.zipped.unpack]]
format = "zip"
files = ["zipped/z.zip"]
into = "zipped/out"
""")
    ws = tmp_path / "ws"
    manager = DatasetManager(datasets_dir=ws / "datasets", cache_dir=ws / ".cache",
                             catalog=Catalog.load(None, tmp_path / "c.toml"))
    busy = _put(manager, "zipped/out/.easy-oww-unpack-tmp.1/member.wav").parent
    idle = _put(manager, "zipped/out/.easy-oww-unpack-tmp.2/member.wav").parent
    lock = extraction_lock(manager.cache_dir / "locks", busy)
    lock.acquire(timeout=0)  # as the extracting process holds it
    try:
        done = remove_dataset(manager, "zipped")
    finally:
        lock.release()
    assert busy.exists() and not idle.exists()
    assert [(r.path, r.kept) for r in done if r.path in (busy, idle)] == [
        (busy, True), (idle, False)]


def test_a_part_of_a_download_from_a_bucket_is_kept_while_its_file_is_wanted(tmp_path):
    """``x.s3.part`` (with its record) is a resumable download of ``x`` from an s3:// mirror:
    kept while the catalog wants ``x``; deleted with its record when nothing does."""
    manager = _manager(tmp_path)
    wanted = _put(manager, "noise/a.wav.s3.part", b"12345")
    wanted_record = _put(manager, "noise/a.wav.s3.part.json", json.dumps(
        {"url": "s3://b/p/datasets/noise/a.wav", "etag": '"e"', "size": 9,
         "written": []}).encode())
    unwanted = _put(manager, "noise/gone.wav.s3.part", b"12345")
    unwanted_record = _put(manager, "noise/gone.wav.s3.part.json", b"{}")
    plan = clean(manager)
    assert {r.path for r in plan} == {unwanted, unwanted_record}  # the wanted one: not even
    assert not any(r.kept for r in plan)  # "kept" as someone else's progress
    assert wanted.exists() and wanted_record.exists()
    assert not unwanted.exists() and not unwanted_record.exists()
