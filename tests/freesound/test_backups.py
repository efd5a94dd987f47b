"""Backups on their own: what counts as one, what a bad one is told apart by, what is swept."""

from __future__ import annotations

import contextlib
import datetime
import gzip
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

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
    restore_backup,
)
from easy_oww.freesound.errors import BackupError
from easy_oww.freesound.schema import DB_NAME
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


def test_a_backup_killed_at_its_sync_leaves_only_what_the_sweep_removes(library, monkeypatch):
    """The names a backup writes under before it takes its own are the names the sweep after a
    kill removes, and they are in the backups folder, where the sweep looks."""
    folder = backups_dir(library.folder)
    seen: set[str] = set()
    real_fsync = os.fsync

    def fsync_and_look(fd):  # what a kill at this moment would leave behind
        seen.update(path.name for path in folder.iterdir())
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_and_look)
    info = create_backup(library)
    monkeypatch.undo()
    temps = sorted(seen - {info.name})
    assert len(temps) == 2  # the snapshot and its compressed copy
    for name in temps:
        (folder / name).write_bytes(b"half")
    assert sorted(path.name for path in remove_partial_backups(library.folder)) == temps
    assert [path.name for path in folder.iterdir()] == [info.name]


def test_the_gzip_header_names_the_library_file_and_holds_no_time(library):
    """`gunzip -N` gives the library's file name; no time inside, so the same library gives
    the same bytes whatever the second."""
    head = create_backup(library).path.read_bytes()[:64]
    assert head[:3] == b"\x1f\x8b\x08"  # gzip, deflate
    flags, mtime = head[3], int.from_bytes(head[4:8], "little")
    assert flags == 0x08 and mtime == 0  # a file name, nothing else; no time stamp
    assert head[10:head.index(b"\0", 10)] == DB_NAME.encode()


def test_prune_to_one_keeps_only_the_newest(library):
    made = [create_backup(library, keep=None)]
    for sound_id in (4, 5):
        library.add_sample(make_sound(sound_id))
        made.append(create_backup(library, keep=None))
    assert prune_backups(library.folder, 1) == [made[1], made[0]]
    assert list_backups(library.folder) == [made[2]]


def _deleted_by_someone_else_first(monkeypatch):
    """Path.unlink as when another process (a second prune, a user's rm) deleted the file
    between our listing it and our unlinking it."""
    real_unlink = Path.unlink

    def unlink(self, missing_ok=False):
        real_unlink(self)
        return real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)


def test_a_backup_another_prune_deleted_meanwhile_is_no_error(library, monkeypatch):
    """`backups create` may run during `grow` (both prune): one gets there first."""
    made = [create_backup(library, keep=None) for _ in range(2)]
    _deleted_by_someone_else_first(monkeypatch)
    assert prune_backups(library.folder, 1) == [made[0]]
    monkeypatch.undo()
    assert len(list_backups(library.folder)) == 1


def test_a_temp_file_gone_before_the_sweep_reaches_it_is_no_error(library, monkeypatch):
    folder = backups_dir(library.folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".snapshot.abc.db").write_bytes(b"half")
    _deleted_by_someone_else_first(monkeypatch)
    remove_partial_backups(library.folder)
    monkeypatch.undo()
    assert list(folder.iterdir()) == []


class _ClockEastOfUTC:
    """A datetime module whose clock stands still on a machine five hours east of UTC."""

    timezone = datetime.timezone

    class datetime(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            utc = datetime.datetime(2026, 11, 26, 12, 0, 0, tzinfo=datetime.timezone.utc)
            if tz is None:
                return cls(2026, 11, 26, 17, 0, 0)  # the machine's local time
            return cls.fromtimestamp(utc.timestamp(), tz)


def _library_with_backup(library_dir, count=3):
    with FreesoundLibrary(library_dir) as lib:
        for sound_id in range(1, count + 1):
            lib.add_sample(make_sound(sound_id))
        info = create_backup(lib)
        lib.add_sample(make_sound(100))
    return info


def test_the_replaced_library_is_kept_under_a_utc_stamp(library_dir, monkeypatch):
    """The name the docs show (`freesound_library.db.replaced-YYYYmmdd_HHMMSS`), in UTC like
    the backups' names, whatever the machine's zone."""
    info = _library_with_backup(library_dir)
    monkeypatch.setattr("easy_oww.freesound.backup.dt", _ClockEastOfUTC)
    aside = restore_backup(library_dir, info.name)
    assert aside == library_dir / f"{DB_NAME}.replaced-20261126_120000"
    with sqlite3.connect(aside) as kept:
        assert kept.execute("SELECT count(*) FROM samples").fetchone()[0] == 4
    kept.close()


def test_a_restore_with_no_library_file_replaces_nothing_and_says_so(library_dir):
    """The damaged file moved away by hand: the restore puts the backup in its place and
    returns None (the CLI then names no replaced file)."""
    info = _library_with_backup(library_dir)
    (library_dir / DB_NAME).unlink()
    assert restore_backup(library_dir, info.name) is None
    with FreesoundLibrary(library_dir) as lib:
        assert lib.stats().samples == 3 and lib.verify() == []


def test_a_restore_sets_the_replaced_wal_aside_with_its_library(library_dir, tmp_path):
    """A process killed while writing leaves its last commits in the WAL beside the library.
    Restored beside it, that WAL would be replayed into the backup's file: its commits are
    folded into the database they belong to, which is kept aside and opens with every one."""
    info = _library_with_backup(library_dir)
    db = library_dir / DB_NAME
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    with FreesoundLibrary(library_dir) as lib:
        lib._conn.execute("PRAGMA wal_autocheckpoint = 0")
        for sound_id in range(200, 210):
            lib.add_sample(make_sound(sound_id))
        for suffix in ("", "-wal", "-shm"):  # the files as a kill -9 now would leave them
            shutil.copy(f"{db}{suffix}", crashed / f"{DB_NAME}{suffix}")
    for suffix in ("", "-wal", "-shm"):
        shutil.copy(crashed / f"{DB_NAME}{suffix}", f"{db}{suffix}")
    aside = restore_backup(library_dir, info.name)
    beside = sorted(p.name for p in library_dir.iterdir() if p.name.startswith(DB_NAME))
    assert beside == sorted([DB_NAME, aside.name, f"{aside.name}-wal"])
    assert Path(f"{aside}-wal").stat().st_size == 0  # folded into the kept file, nothing left
    with FreesoundLibrary(library_dir) as lib:
        assert lib.stats().samples == 3 and lib.verify() == []
    kept = sqlite3.connect(aside)
    assert kept.execute("SELECT count(*) FROM samples").fetchone()[0] == 14
    kept.close()


def test_nothing_goes_through_the_system_temp_folder(library, monkeypatch, tmp_path):
    """The library-sized copies are made beside where they end up, never in the system temp
    folder (often a small RAM disk): here it does not exist."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-system-temp"))
    info = create_backup(library)
    assert check_backup(info.path) is None and newest_good_backup(library.folder) == info
    library.close()
    restore_backup(library.folder, info.name)
    with FreesoundLibrary(library.folder) as lib:
        assert lib.stats().samples == 3


@pytest.fixture
def other_drive(tmp_path):
    """A real tmpfs: a filesystem of its own, as a second drive."""
    mount = tmp_path / "drive"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_backups_on_another_drive_restore(library_dir, other_drive):
    """`backups/` a link to another drive: the restore's decompressed copy is made in the
    library's folder, so the rename that makes it the library stays on one filesystem."""
    library_dir.mkdir(parents=True)
    (other_drive / "backups").mkdir()
    (library_dir / "backups").symlink_to(other_drive / "backups")
    info = _library_with_backup(library_dir)
    assert info.path.resolve().parent == other_drive / "backups"
    restore_backup(library_dir, info.name)
    with FreesoundLibrary(library_dir) as lib:
        assert lib.stats().samples == 3


def test_backups_list_newest_first_by_time_then_samples_then_serial(library_dir):
    """After a restore to an older backup the next one has fewer samples and is still the
    newest; in one second, more samples first (the docs' example), then the later serial."""
    folder = backups_dir(library_dir)
    folder.mkdir(parents=True)
    newest_first = ["freesound_library_backup_5nodes_20261126_120005.db.gz",
                    "freesound_library_backup_10nodes_20261126_120000.db.gz"]
    for nodes in range(8, 0, -1):
        stem = f"freesound_library_backup_{nodes}nodes_20261126_110000"
        newest_first += [f"{stem}_1.db.gz", f"{stem}.db.gz"]
    # each pair created in both orders, among other files: the folder's order decides nothing
    for name in newest_first[:2]:
        (folder / name).write_bytes(b"")
    for index in range(2, len(newest_first), 2):
        pair = newest_first[index:index + 2]
        for name in (pair if index % 4 == 0 else reversed(pair)):
            (folder / name).write_bytes(b"")
    for other in ("notes.txt", ".snapshot.abc.db", "x.db.gz.tmp",
                  "freesound_library_backup_x.db.gz"):
        (folder / other).write_bytes(b"")
    listed = list_backups(library_dir)
    assert [info.name for info in listed] == newest_first
    assert (listed[0].nodes, listed[0].taken_at) == (
        5, datetime.datetime(2026, 11, 26, 12, 0, 5, tzinfo=datetime.timezone.utc))


def test_a_backup_that_reads_but_is_not_whole_is_refused_with_its_first_problem(tmp_path):
    """An index that disagrees with its table (what bit rot in a page does): SQLite opens it,
    the integrity check does not pass it."""
    db = tmp_path / "rotten.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript("CREATE TABLE samples (x); CREATE TABLE edges (y); "
                           "CREATE TABLE t (a TEXT); CREATE INDEX i ON t(a); "
                           "INSERT INTO t VALUES ('x'), ('y'); PRAGMA user_version = 3;")
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET sql = 'CREATE INDEX i ON t(a DESC)' "
                     "WHERE name = 'i'")
        conn.commit()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        first = conn.execute("PRAGMA integrity_check").fetchone()[0]
    assert first != "ok"
    assert check_backup(gz(tmp_path / "b.db.gz", db.read_bytes())) == (
        f"integrity check failed ({first})")


def test_a_name_not_found_is_told_with_the_three_newest(library_dir):
    with pytest.raises(BackupError) as none:
        find_backup(library_dir, "nope")
    assert "(newest: none); see `easy-oww freesound backups list`" in str(none.value)
    folder = backups_dir(library_dir)
    folder.mkdir(parents=True)
    names = [f"freesound_library_backup_{n}nodes_20261126_12000{n}.db.gz" for n in range(1, 5)]
    for name in names:
        (folder / name).write_bytes(b"")
    with pytest.raises(BackupError) as some:
        find_backup(library_dir, "nope")
    assert f"(newest: {names[3]}, {names[2]}, {names[1]}); see" in str(some.value)


def test_a_check_killed_while_it_reads_leaves_only_what_the_sweep_removes(library, monkeypatch):
    info = create_backup(library)
    folder = backups_dir(library.folder)
    seen: set[str] = set()
    real_connect = sqlite3.connect

    def connect_and_look(*args, **kwargs):  # what a kill at this moment would leave behind
        seen.update(path.name for path in folder.iterdir())
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect_and_look)
    assert check_backup(info.path) is None
    monkeypatch.undo()
    temps = sorted(seen - {info.name})
    assert len(temps) == 1  # the decompressed copy
    (folder / temps[0]).write_bytes(b"half")
    assert [path.name for path in remove_partial_backups(library.folder)] == temps
    assert [path.name for path in folder.iterdir()] == [info.name]


def test_a_restore_killed_at_its_sync_leaves_only_what_the_sweep_removes(library_dir,
                                                                          monkeypatch):
    """A restore decompresses and stages the backup beside the library (one filesystem for
    the rename): a kill there must not leave a library-sized file that nothing removes."""
    info = _library_with_backup(library_dir)
    seen: set[str] = set()

    def looking_first(real):  # at each sync and rename: what a kill then would leave behind
        def call(*args):
            seen.update(path.name for path in library_dir.iterdir())
            return real(*args)
        return call

    monkeypatch.setattr(os, "fsync", looking_first(os.fsync))
    monkeypatch.setattr(os, "replace", looking_first(os.replace))
    aside = restore_backup(library_dir, info.name)
    monkeypatch.undo()
    before = sorted(path.name for path in library_dir.iterdir())
    temps = sorted(seen - set(before))
    assert len(temps) == 2  # the decompressed copy, under its temp name, then staged
    for name in temps:
        (library_dir / name).write_bytes(b"half")
    assert sorted(path.name for path in remove_partial_backups(library_dir)) == temps
    assert sorted(path.name for path in library_dir.iterdir()) == before
    assert aside.name in before


def test_the_sweep_of_a_library_never_backed_up_finds_nothing(library_dir):
    """The first `grow` of a new library sweeps before any backups folder exists."""
    with FreesoundLibrary(library_dir):
        pass
    before = sorted(library_dir.iterdir())
    assert remove_partial_backups(library_dir) == []
    assert sorted(library_dir.iterdir()) == before


def _samples_at(db):
    """The sample count of the database at `db` now, read without touching its files."""
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM samples").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize("links", [True, False], ids=["hard-links", "no-hard-links"])
def test_a_kill_at_any_step_of_a_restore_leaves_a_whole_library_at_its_name(
        library_dir, monkeypatch, links):
    """Before each rename, link and sync of a restore (where a kill could land), the library's
    name holds a whole database: the old one (4 samples) or the restored one (3). The old file
    kept aside first and renamed over second, there was a moment with no library at all."""
    info = _library_with_backup(library_dir)
    db = library_dir / DB_NAME
    seen = []

    def looking_first(real):
        def call(*args, **kwargs):
            seen.append(_samples_at(db) if db.exists() else None)
            return real(*args, **kwargs)
        return call

    def no_links(*args, **kwargs):  # a FAT32 or exFAT drive
        raise OSError(1, "Operation not permitted")

    for name in ("replace", "fsync", "rename"):
        monkeypatch.setattr(os, name, looking_first(getattr(os, name)))
    monkeypatch.setattr(os, "link", looking_first(os.link if links else no_links))
    aside = restore_backup(library_dir, info.name)
    monkeypatch.undo()
    assert None not in seen  # never a moment without a library
    assert seen[0] == 4 and seen[-1] == 3 and seen == sorted(seen, reverse=True)
    assert _samples_at(db) == 3 and _samples_at(aside) == 4


def test_a_damaged_librarys_wal_goes_aside_with_it_unread(library_dir):
    """A database that refuses the checkpoint (what a restore is for) keeps its WAL beside its
    kept-aside copy, never beside the restored file."""
    info = _library_with_backup(library_dir)
    db = library_dir / DB_NAME
    db.write_bytes(b"not a database" * 100)
    Path(f"{db}-wal").write_bytes(b"w" * 4096)
    aside = restore_backup(library_dir, info.name)
    beside = sorted(p.name for p in library_dir.iterdir() if p.name.startswith(DB_NAME))
    assert beside == sorted([DB_NAME, aside.name, f"{aside.name}-wal"])
    assert Path(f"{aside}-wal").read_bytes() == b"w" * 4096
    assert _samples_at(db) == 3


def test_two_restores_in_one_second_keep_both_replaced_libraries(library_dir, monkeypatch):
    info = _library_with_backup(library_dir)
    monkeypatch.setattr("easy_oww.freesound.backup.dt", _ClockEastOfUTC)
    first = restore_backup(library_dir, info.name)
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(300))
        lib.add_sample(make_sound(301))
    second = restore_backup(library_dir, info.name)
    assert first != second and second.name == f"{first.name}-2"
    assert _samples_at(first) == 4 and _samples_at(second) == 5


def test_a_wal_another_connection_keeps_open_is_not_left_beside_the_restored_file(library_dir):
    """With a reader still connected, folding the WAL does not remove it (SQLite removes it
    only with its last connection): the restore removes it, or it would be replayed into the
    restored file."""
    info = _library_with_backup(library_dir)
    db = library_dir / DB_NAME
    reader = sqlite3.connect(db)
    try:
        reader.execute("SELECT count(*) FROM samples").fetchone()
        with FreesoundLibrary(library_dir) as lib:
            lib._conn.execute("PRAGMA wal_autocheckpoint = 0")
            lib.add_sample(make_sound(500))
        assert Path(f"{db}-wal").exists() and Path(f"{db}-shm").exists()
        restore_backup(library_dir, info.name)
        assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()
    finally:
        reader.close()
    with FreesoundLibrary(library_dir) as lib:
        assert lib.stats().samples == 3 and lib.verify() == []
