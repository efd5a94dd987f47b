"""Finding and checking the library's backups: the part the store needs to name a good backup
when its file is damaged. Taking, pruning and restoring backups is in backup.py, which uses
the store; this module does not, so the imports go one way."""

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

from easy_oww.freesound.errors import BackupError
from easy_oww.freesound.schema import BACKUPS_DIR, SCHEMA_VERSION

BACKUP_RE = re.compile(r"^freesound_library_backup_(\d+)nodes_(\d{8}_\d{6})(?:_(\d+))?\.db\.gz$")


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
    return Path(folder) / BACKUPS_DIR


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


def check_backup(path: Path, into: Path | None = None) -> str | None:
    """Problem with a backup (None: good). With `into`, leave the decompressed copy there."""
    directory = Path(into).parent if into else Path(path).parent
    fd, tmp = tempfile.mkstemp(prefix=".check.", suffix=".db", dir=directory)
    os.close(fd)
    try:
        try:
            with gzip.open(path, "rb") as source, open(tmp, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
                if into is not None:  # it becomes the library: on disk before it is renamed
                    out.flush()
                    os.fsync(out.fileno())
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
