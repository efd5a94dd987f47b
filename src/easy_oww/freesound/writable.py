"""Whether a library folder can take writes: a read-only folder (a read-only mount, its
permissions) is said in one line before anything tries to write, rather than surfacing as
SQLite's "unable to open database file"."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from easy_oww.freesound.errors import LibraryReadOnlyError
from easy_oww.freesound.schema import DB_NAME


def read_only_error(folder: Path) -> LibraryReadOnlyError:
    return LibraryReadOnlyError(
        f"the Freesound library folder {folder} is read-only and this command writes to it; "
        "make it writable, or copy the library to a writable folder", folder)


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def folder_writable(folder: Path) -> bool:
    """The folder (or, not made yet, the folder that would hold it) takes new files, and the
    library file in it, if any, takes writes."""
    folder = Path(folder)
    if not os.access(_nearest_existing(folder), os.W_OK | os.X_OK):
        return False
    db = folder / DB_NAME
    return not db.exists() or os.access(db, os.W_OK)


def require_writable(folder: Path, *inside: str) -> None:
    """LibraryReadOnlyError unless `folder` (and each existing subfolder named in `inside`)
    can take writes."""
    folder = Path(folder)
    if not folder_writable(folder):
        raise read_only_error(folder)
    for name in inside:
        sub = folder / name
        if sub.exists() and not os.access(sub, os.W_OK | os.X_OK):
            raise read_only_error(folder)


def is_read_only_failure(exc: sqlite3.Error) -> bool:
    """SQLite's words for "cannot write here" (the file or its folder, for -wal / -shm)."""
    text = str(exc).lower()
    return "readonly" in text or "read-only" in text or "unable to open database file" in text
