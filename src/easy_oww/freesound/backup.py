"""Backups of the library: consistent SQLite snapshots, gzip-compressed, newest N kept.

Names follow the seed: ``freesound_library_backup_{nodes}nodes_{YYYYmmdd_HHMMSS}.db.gz`` in
``<library>/backups/``. A snapshot is taken with the SQLite online backup API, so it is
consistent even while ``grow`` writes; it is compressed into a temp file, fsynced and renamed,
so a half-written backup never carries a backup's name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import os
import shutil
import tempfile
from pathlib import Path

from easy_oww.atomic import fsync_dir
from easy_oww.freesound.backup_files import (
    BACKUP_RE,
    BackupInfo,
    backups_dir,
    check_backup,
    find_backup,
    list_backups,
    newest_good_backup,
)
from easy_oww.freesound.errors import BackupError
from easy_oww.freesound.schema import DB_NAME
from easy_oww.freesound.store import FreesoundLibrary, fold_wal

__all__ = [
    "BACKUP_RE", "DEFAULT_EVERY", "DEFAULT_KEEP", "BackupInfo", "backups_dir", "check_backup",
    "create_backup", "find_backup", "list_backups", "newest_good_backup", "prune_backups",
    "remove_partial_backups", "restore_backup",
]

DEFAULT_KEEP = 5
DEFAULT_EVERY = 100


def create_backup(library: FreesoundLibrary, *, keep: int | None = DEFAULT_KEEP) -> BackupInfo:
    """Snapshot `library` now; prune to the newest `keep` (None: keep all)."""
    directory = backups_dir(library.folder)
    directory.mkdir(parents=True, exist_ok=True)
    nodes = library.stats().samples
    stamp = dt.datetime.now(dt.timezone.utc)
    base = f"freesound_library_backup_{nodes}nodes_{stamp:%Y%m%d_%H%M%S}"
    target = directory / f"{base}.db.gz"
    serial = 1
    while target.exists():  # two backups in one second
        target = directory / f"{base}_{serial}.db.gz"
        serial += 1
    fd, raw_tmp = tempfile.mkstemp(prefix=".snapshot.", suffix=".db", dir=directory)
    os.close(fd)
    gz_tmp = Path(str(target) + ".tmp")
    try:
        library.backup_to(Path(raw_tmp))
        with open(raw_tmp, "rb") as source, open(gz_tmp, "wb") as raw_out:
            with gzip.GzipFile(filename="freesound_library.db", mode="wb", fileobj=raw_out,
                               compresslevel=6, mtime=0) as out:
                shutil.copyfileobj(source, out, 1 << 20)
            raw_out.flush()
            os.fsync(raw_out.fileno())
        os.replace(gz_tmp, target)
        fsync_dir(directory)
    finally:
        for leftover in (raw_tmp, gz_tmp):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
    info = BackupInfo(target, nodes, stamp.replace(microsecond=0))
    if keep is not None:
        prune_backups(library.folder, keep)
    return info


def remove_partial_backups(folder: Path) -> list[Path]:
    """Temp files that a killed backup, check or restore left behind: in the backups folder,
    and beside the library, where a restore decompresses and stages the backup (so that its
    last rename stays on one filesystem). Call only under the grow lock (a restore holds it)."""
    directory = backups_dir(folder)
    doomed = [path for path in (directory.iterdir() if directory.is_dir() else ())
              if path.name.startswith((".snapshot.", ".check.")) or path.name.endswith(".gz.tmp")]
    doomed += Path(folder).glob(".check.*")
    doomed.append(Path(folder) / f".{DB_NAME}.restoring")
    removed = []
    for path in doomed:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def prune_backups(folder: Path, keep: int = DEFAULT_KEEP) -> list[BackupInfo]:
    """Delete all but the newest `keep` backups; returns the deleted ones."""
    if keep < 1:
        raise BackupError(f"keep must be at least 1, not {keep}")
    doomed = list_backups(folder)[keep:]
    for info in doomed:
        with contextlib.suppress(FileNotFoundError):
            info.path.unlink()
    return doomed


def _second_name(path: Path, other: Path) -> None:
    """`other` names the same bytes as `path`, which keeps its name."""
    try:
        os.link(path, other)
    except OSError:  # FAT32 and exFAT drives have no hard links: a synced copy instead
        with open(path, "rb") as src, open(other, "wb") as dst:
            shutil.copyfileobj(src, dst)
            dst.flush()
            os.fsync(dst.fileno())


def restore_backup(folder: Path, name: str) -> Path | None:
    """Replace the library with a checked backup; returns where the old file was kept aside.

    The caller holds the library's grow lock. The backup is decompressed and checked
    (integrity, schema) before anything is touched; the replaced database (and its WAL) is
    kept as ``freesound_library.db.replaced-YYYYmmdd_HHMMSS``, never deleted.

    The library's name holds a whole database at every moment: the old file gets its second
    name first (a hard link, or a copy where the drive has none), then the restored file is
    renamed over it, so a kill anywhere leaves the old library or the new one, never none.
    """
    folder = Path(folder)
    info = find_backup(folder, name)
    db = folder / DB_NAME
    staged = folder / f".{DB_NAME}.restoring"
    problem = check_backup(info.path, into=staged)
    if problem:
        raise BackupError(f"backup {info.name} is not usable: {problem}; nothing was replaced")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d_%H%M%S")
    aside = folder / f"{DB_NAME}.replaced-{stamp}"
    serial = 1
    while aside.exists() or Path(f"{aside}-wal").exists():  # two restores in one second
        serial += 1
        aside = folder / f"{DB_NAME}.replaced-{stamp}-{serial}"
    existed = db.exists()
    for suffix in ("", "-wal"):
        side = Path(f"{db}{suffix}")
        if side.exists():
            _second_name(side, Path(f"{aside}{suffix}"))
    if existed:
        # Its last commits into the file itself: a kill before the rename below leaves the
        # library whole without its WAL. (A damaged file may refuse; SQLite may then delete
        # the WAL's name: its second name above keeps it.)
        fold_wal(db)
    for suffix in ("-wal", "-shm"):
        # Left beside the restored file, a WAL would be replayed into it.
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    os.replace(staged, db)
    fsync_dir(folder)
    return aside if existed else None
