"""Backups on their own: what counts as one, what a bad one is told apart by, what is swept."""

from __future__ import annotations

import datetime
import gzip
import sqlite3

import pytest

from easy_oww.freesound.backup import (
    backups_dir,
    check_backup,
    create_backup,
    find_backup,
    list_backups,
    newest_good_backup,
    prune_backups,
    remove_partial_backups,
)
from easy_oww.freesound.errors import BackupError
from easy_oww.freesound.store import FreesoundLibrary
from tests.freesound.conftest import make_sound


@pytest.fixture
def library(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        for i in range(1, 4):
            lib.add_sample(make_sound(i))
        yield lib


def gz(path, data: bytes):
    path.write_bytes(gzip.compress(data))
    return path


def sqlite_bytes(tmp_path, sql: str) -> bytes:
    db = tmp_path / "x.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(sql)
    conn.close()
    return db.read_bytes()


def test_a_backup_is_a_checked_snapshot_found_by_name_or_path(library):
    info = create_backup(library)
    assert info.nodes == 3 and info.size == info.path.stat().st_size > 0
    assert check_backup(info.path) is None
    assert find_backup(library.folder, info.name) == info
    assert find_backup(library.folder, str(info.path)) == info
    with pytest.raises(BackupError, match="no backup named 'nope'"):
        find_backup(library.folder, "nope")


def test_other_files_in_the_backups_folder_are_not_backups(library):
    info = create_backup(library)
    (backups_dir(library.folder) / "notes.txt").write_text("mine")
    (backups_dir(library.folder) / "freesound_library_backup_x.db.gz").write_text("odd")
    assert list_backups(library.folder) == [info]


def test_what_a_bad_backup_is_told_apart_by(library, tmp_path):
    folder = backups_dir(library.folder)
    folder.mkdir(parents=True, exist_ok=True)
    not_gzip = folder / "a.db.gz"
    not_gzip.write_bytes(b"plain bytes")
    assert check_backup(not_gzip).startswith("cannot decompress")
    not_sqlite = gz(folder / "b.db.gz", b"not sqlite at all" * 100)
    assert check_backup(not_sqlite).startswith("not a readable database")
    foreign = gz(folder / "c.db.gz", sqlite_bytes(tmp_path, "CREATE TABLE t (x);"))
    assert check_backup(foreign).startswith("not a Freesound library")
    newer = gz(folder / "d.db.gz", sqlite_bytes(
        tmp_path, "CREATE TABLE samples (x); CREATE TABLE edges (y); PRAGMA user_version = 99;"))
    assert check_backup(newer).startswith("not a Freesound library")
    assert sorted(p.name for p in folder.iterdir()) == ["a.db.gz", "b.db.gz", "c.db.gz",
                                                        "d.db.gz"]  # checks leave no temp file


def test_the_newest_good_backup_skips_damaged_ones(library):
    good = create_backup(library, keep=None)
    library.add_sample(make_sound(4))
    damaged = create_backup(library, keep=None)
    assert list_backups(library.folder)[0] == damaged
    data = bytearray(damaged.path.read_bytes())
    damaged.path.write_bytes(bytes(data[: len(data) // 2]))  # cut short
    assert newest_good_backup(library.folder) == good


def test_a_killed_backups_temp_files_are_swept_and_backups_kept(library):
    info = create_backup(library)
    folder = backups_dir(library.folder)
    leftovers = [folder / ".snapshot.abc.db", folder / ".check.def.db",
                 folder / (info.name + ".tmp")]
    for path in leftovers:
        path.write_bytes(b"half")
    assert sorted(remove_partial_backups(library.folder)) == sorted(leftovers)
    assert sorted(p.name for p in folder.iterdir()) == [info.name]


def test_prune_keeps_at_least_one(library):
    with pytest.raises(BackupError, match="at least 1"):
        prune_backups(library.folder, 0)


class _FrozenClock:
    """Stands in for the datetime module with a clock that stands still: every backup
    lands in the same second."""

    timezone = datetime.timezone

    class datetime(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 11, 26, 12, 0, 0, tzinfo=tz)


def test_backups_in_the_same_second_get_their_own_names(library, monkeypatch):
    monkeypatch.setattr("easy_oww.freesound.backup.dt", _FrozenClock)
    made = [create_backup(library, keep=None) for _ in range(3)]
    names = [info.name for info in made]
    stem = "freesound_library_backup_3nodes_20261126_120000"
    assert names == [f"{stem}.db.gz", f"{stem}_1.db.gz", f"{stem}_2.db.gz"]
    assert all(check_backup(info.path) is None for info in made)


def test_the_same_library_backs_up_to_the_same_bytes(library):
    # No timestamp inside the gzip stream: identical snapshots are identical files.
    first = create_backup(library, keep=None)
    second = create_backup(library, keep=None)
    assert first.path.read_bytes() == second.path.read_bytes()


def test_create_keeps_the_newest_it_is_told_to(library, monkeypatch):
    monkeypatch.setattr("easy_oww.freesound.backup.dt", _FrozenClock)
    for _ in range(3):
        newest = create_backup(library, keep=2)
    assert len(list_backups(library.folder)) == 2
    assert newest in list_backups(library.folder)
