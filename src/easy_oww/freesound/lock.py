"""The library's grow lock: one writer that changes the library's shape at a time (grow,
restore, import-pickle); released by the OS if the process dies."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import filelock

from easy_oww.freesound.errors import LibraryLockedError
from easy_oww.freesound.schema import LOCK_NAME
from easy_oww.freesound.writable import require_writable


@contextlib.contextmanager
def grow_lock(folder: Path) -> Iterator[None]:
    """Hold the library's lock for the block; LibraryLockedError at once if another has it,
    LibraryReadOnlyError if the folder cannot be written (every holder writes)."""
    require_writable(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(folder / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LibraryLockedError(
            f"another `easy-oww freesound grow` (or restore) is using the library {folder}; "
            "wait for it to finish, then run again"
        ) from None
    try:
        yield
    finally:
        lock.release()
