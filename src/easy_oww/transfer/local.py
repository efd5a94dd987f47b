"""A file copied from a local folder (a USB drive, another workspace) through the same checks
as a download: the per-file lock, the size, the known hash computed while the bytes are read,
the format check, fsync, rename, fsync the folder, and the caller's `on_complete` under the
lock. A copy that fails any check is deleted and never takes the final name.

The copy goes to ``<final>.copy.part`` (not the download's ``<final>.part``), so a resumable
download of the same file that an earlier run left is not overwritten; an interrupted copy
starts again (`easy-oww clean` deletes a left-over one as a partial download nothing wants).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from filelock import FileLock, Timeout

from easy_oww.atomic import fsync_dir
from easy_oww.errors import (
    DownloadError,
    HashMismatchError,
    IntegrityError,
    LockTimeoutError,
    SizeMismatchError,
)
from easy_oww.hashes import new_hasher
from easy_oww.progress import NullProgress
from easy_oww.transfer.fetch import FetchRequest, FetchResult, FormatCheckError, lock_path
from easy_oww.transfer.retry import Cancelled

CHUNK = 1024 * 1024


def copy_part_path(dest: Path) -> Path:
    """Where a local copy of `dest` is written until it checks out."""
    return Path(str(dest) + ".copy.part")


def copy_verified(request: FetchRequest, source: Path, *, lock_dir: Path | None = None,
                  lock_timeout: float = 3600.0, cancel: threading.Event | None = None,
                  progress: NullProgress | None = None) -> FetchResult:
    """Copy `source` to `request.dest` when its bytes have `request.hash` (required: a local
    file is never taken on trust) and `request.size` (when known)."""
    if request.hash is None:
        raise DownloadError(f"{source}: no known hash to check a local copy against")
    progress = progress or NullProgress()
    cancel = cancel or threading.Event()
    dest = request.dest
    try:
        size = source.stat().st_size
    except OSError as exc:
        raise DownloadError(f"{source}: {exc.strerror or exc}") from None
    if request.size is not None and size != request.size:
        raise SizeMismatchError(f"{source} has {size:,} bytes, the catalog says "
                                f"{request.size:,}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    lock_file = lock_path(lock_dir or dest.parent / ".locks", dest)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_file))
    try:
        lock.acquire(timeout=lock_timeout)
    except Timeout:
        raise LockTimeoutError(f"{dest} is still being written by another process after "
                               f"{lock_timeout:.0f} s; try again when it has finished") from None
    try:
        if request.done_by_other is not None and request.done_by_other():
            return FetchResult(path=dest, size=dest.stat().st_size, hash=str(request.hash),
                               url=str(source), validator=None, transferred=0,
                               resumed_from=dest.stat().st_size, skipped=True)
        result = _copy_locked(request, source, size, cancel, progress)
        if request.on_complete is not None:
            request.on_complete(result)
        return result
    finally:
        lock.release()


def _copy_locked(request: FetchRequest, source: Path, size: int, cancel: threading.Event,
                 progress: NullProgress) -> FetchResult:
    assert request.hash is not None
    dest = request.dest
    part = copy_part_path(dest)
    digest = new_hasher(request.hash.algorithm, size)
    task = progress.task(request.label or dest.name, size, 0)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    copied = 0
    ok = False
    try:
        with open(source, "rb", buffering=0) as reader, open(part, "wb", buffering=0) as writer:
            while n := reader.readinto(buffer):
                if cancel.is_set():
                    raise Cancelled()
                digest.update(view[:n])
                written = 0
                while written < n:
                    written += writer.write(view[written:n])
                copied += n
                task.advance(n)
            os.fsync(writer.fileno())
        got = f"{request.hash.algorithm}:{digest.hexdigest()}"
        if copied != size:
            raise SizeMismatchError(f"{source} changed while it was copied ({copied:,} bytes "
                                    f"read, {size:,} expected); deleted the copy")
        if got != str(request.hash):
            raise HashMismatchError(f"{source}: {request.hash.algorithm} mismatch: expected "
                                    f"{request.hash.hexdigest}, got {digest.hexdigest()}; "
                                    "deleted the copy")
        if request.check is not None:
            try:
                request.check(part)
            except IntegrityError as exc:
                raise FormatCheckError(f"{dest.name}: {exc}; deleted the copy",
                                       transferred=copied) from None
        os.replace(part, dest)
        fsync_dir(dest.parent)
        ok = True
        return FetchResult(path=dest, size=size, hash=got, url=str(source), validator=None,
                           transferred=copied, resumed_from=0)
    except OSError as exc:  # the source drive unplugged, the target disk full
        raise DownloadError(f"copying {source} to {dest}: {exc.strerror or exc}") from None
    finally:
        if not ok:
            part.unlink(missing_ok=True)
        task.finish(ok)
