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
import re
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from easy_oww.atomic import fsync_dir
from easy_oww.freesound.errors import BackupError

if TYPE_CHECKING:
    from easy_oww.freesound.store import FreesoundLibrary

BACKUP_RE = re.compile(r"^freesound_library_backup_(\d+)nodes_(\d{8}_\d{6})(?:_(\d+))?\.db\.gz$")
DEFAULT_KEEP = 5
DEFAULT_EVERY = 100


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    nodes: int
    taken_at: dt.datetime

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def backups_dir(folder: Path) -> Path:
    return Path(folder) / "backups"


def list_backups(folder: Path) -> list[BackupInfo]:
    """Backups in `folder`/backups, newest first."""
    found = []
    directory = backups_dir(folder)
    if not directory.is_dir():
        return []
    for path in directory.iterdir():
        match = BACKUP_RE.match(path.name)
        if not match:
            continue
        stamp = dt.datetime.strptime(match.group(2), "%Y%m%d_%H%M%S").replace(
            tzinfo=dt.timezone.utc
        )
        found.append((stamp, int(match.group(3) or 0), BackupInfo(path, int(match.group(1)),
                                                                 stamp)))
    found.sort(key=lambda item: (item[0], item[2].nodes, item[1]), reverse=True)
    return [item[2] for item in found]


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
    """Temp files of backups a killed process left behind. Call only under the grow lock."""
    directory = backups_dir(folder)
    removed = []
    if directory.is_dir():
        for path in directory.iterdir():
            if path.name.startswith((".snapshot.", ".check.")) or path.name.endswith(".gz.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


def prune_backups(folder: Path, keep: int = DEFAULT_KEEP) -> list[BackupInfo]:
    """Delete all but the newest `keep` backups; returns the deleted ones."""
    if keep < 1:
        raise BackupError(f"--keep-backups must be at least 1, not {keep}")
    doomed = list_backups(folder)[keep:]
    for info in doomed:
        with contextlib.suppress(FileNotFoundError):
            info.path.unlink()
    return doomed


def check_backup(path: Path, into: Path | None = None) -> str | None:
    """Problem with a backup (None: good). With `into`, leave the decompressed copy there."""
    from easy_oww.freesound.store import SCHEMA_VERSION

    directory = Path(into).parent if into else Path(path).parent
    fd, tmp = tempfile.mkstemp(prefix=".check.", suffix=".db", dir=directory)
    os.close(fd)
    try:
        try:
            with gzip.open(path, "rb") as source, open(tmp, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            return f"cannot decompress ({exc})"
        try:
            with contextlib.closing(sqlite3.connect(tmp)) as conn:
                verdict = [row[0] for row in conn.execute("PRAGMA integrity_check")]
                if verdict != ["ok"]:
                    return f"integrity check failed ({verdict[0]})"
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = {row[0] for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            return f"not a readable database ({exc})"
        if not 1 <= version <= SCHEMA_VERSION or not {"samples", "edges"} <= tables:
            return f"not a Freesound library of a known schema (version {version})"
        if into is not None:
            os.replace(tmp, into)
        return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def newest_good_backup(folder: Path) -> BackupInfo | None:
    for info in list_backups(folder):
        if check_backup(info.path) is None:
            return info
    return None


def find_backup(folder: Path, name: str) -> BackupInfo:
    for info in list_backups(folder):
        if info.name == name or info.path.name == Path(name).name:
            return info
    names = ", ".join(i.name for i in list_backups(folder)[:3]) or "none"
    raise BackupError(
        f"no backup named {name!r} in {backups_dir(folder)} (newest: {names}); "
        "see `easy-oww freesound backups list`"
    )


def restore_backup(folder: Path, name: str) -> Path | None:
    """Replace the library with a checked backup; returns where the old file was kept aside.

    The caller holds the library's grow lock. The backup is decompressed and checked
    (integrity, schema) before anything is touched; the replaced database (and its WAL) is
    renamed to ``freesound_library.db.replaced-YYYYmmdd_HHMMSS``, never deleted.
    """
    from easy_oww.freesound.store import DB_NAME

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
