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
from easy_oww.freesound.store import FreesoundLibrary

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


def restore_backup(folder: Path, name: str) -> Path | None:
    """Replace the library with a checked backup; returns where the old file was kept aside.

    The caller holds the library's grow lock. The backup is decompressed and checked
    (integrity, schema) before anything is touched; the replaced database (and its WAL) is
    renamed to ``freesound_library.db.replaced-YYYYmmdd_HHMMSS``, never deleted.
    """
    folder = Path(folder)
    info = find_backup(folder, name)
    db = folder / DB_NAME
    staged = folder / f".{DB_NAME}.restoring"
    problem = check_backup(info.path, into=staged)
    if problem:
        raise BackupError(f"backup {info.name} is not usable: {problem}; nothing was replaced")
    aside = None
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d_%H%M%S")
    if db.exists():
        aside = folder / f"{DB_NAME}.replaced-{stamp}"
        os.replace(db, aside)
    for suffix in ("-wal", "-shm"):
        side = Path(f"{db}{suffix}")
        if side.exists():
            # A WAL left beside the restored file would be replayed into it: keep it aside too.
            os.replace(side, folder / f"{DB_NAME}.replaced-{stamp}{suffix}")
    os.replace(staged, db)
    fsync_dir(folder)
    return aside
