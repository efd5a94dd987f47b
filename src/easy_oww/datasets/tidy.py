"""`clean` and `remove`: give disk space back without touching anything in use."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from easy_oww.datasets.manager import DatasetManager
from easy_oww.datasets.unpacking import extraction_lock
from easy_oww.errors import BadInputError
from easy_oww.transfer.fetch import lock_path

STALE_PART_DAYS = 30
BUSY_SECONDS = 120  # a temp folder touched this recently may belong to a running extraction


@dataclass
class Removal:
    """A path `clean` or `remove` deletes, or (`kept`) looked at and keeps, and why."""

    path: Path
    bytes: int
    reason: str
    kept: bool = False


def _size(path: Path) -> int:
    """Bytes the path takes on disk: a part file is sparse (sized to the whole download
    up front, filled by several connections in any order), so its length says nothing of
    what deleting it frees; its allocated blocks do, capped at the length (a 5-byte file
    takes a whole block). Allocated blocks, not its resume record: they are true even when
    the record is missing, damaged, or a moment behind the writes."""
    if path.is_dir():
        return sum(_size(p) for p in path.rglob("*") if p.is_file())
    try:
        stat = path.stat()
    except OSError:
        return 0
    blocks = getattr(stat, "st_blocks", None)  # not on Windows
    return stat.st_size if blocks is None else min(stat.st_size, blocks * 512)


def _part_of(part: Path) -> Path:
    """The file a part becomes: ``x.part`` (the fetcher's) or ``x.s3.part`` (a download from
    a bucket, resumable too: transfer/s3.py)."""
    dest = part.with_suffix("")
    return dest.with_suffix("") if dest.suffix == ".s3" else dest


def _resume_record(part: Path) -> bool:
    """Whether `part` has a resume record the fetcher can resume from: someone's progress."""
    try:
        data = json.loads(Path(str(part) + ".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "url" in data and ("done" in data or "written" in data)


def named_parts(manager: DatasetManager, paths: Iterable[str | Path]) -> set[Path]:
    """The part files the user named (`clean --partial`): the ``.part`` itself or the file it
    becomes, relative to the current folder or absolute; each must be a part file there."""
    out = set()
    for given in paths:
        path = Path(given).expanduser().absolute()
        part = path if path.name.endswith(".part") else Path(str(path) + ".part")
        if not part.is_file() or not part.is_relative_to(manager.datasets_dir):
            raise BadInputError(
                f"--partial {given}: there is no partial download {part} in "
                f"{manager.datasets_dir}; `easy-oww clean --dry-run` lists the ones it keeps")
        out.add(part)
    return out


def _held(lock: FileLock) -> bool:
    """Whether a running process holds `lock` (tried without waiting)."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def _in_use(manager: DatasetManager, dest: Path) -> bool:
    return _held(FileLock(str(lock_path(manager.cache_dir / "locks", dest))))


def _extracting(manager: DatasetManager, temp: Path) -> bool:
    return _held(extraction_lock(manager.cache_dir / "locks", temp))


def plan_clean(manager: DatasetManager, partials: Iterable[Path] = ()) -> list[Removal]:
    """What `clean` would delete: abandoned parts, orphan temp folders, extracted archives;
    and (`kept`) the parts no loaded catalog wants that it keeps, because their resume record
    says they are someone's progress (another --catalog's download). `partials` are part
    files the user named: they go whatever they are."""
    partials = set(partials)
    root = manager.datasets_dir
    if not root.exists():
        return []
    wanted: set[Path] = set()
    for dataset in manager.catalog.ordered():
        files = manager.files_of(dataset)
        if files is None:  # listing not fetched yet: keep everything under its folder
            wanted.update(p.with_suffix("") for p in (root / dataset.location).rglob("*.part"))
            continue
        wanted.update(root / f.path for f in files)
    now = time.time()
    out: list[Removal] = []
    for part in sorted(root.rglob("*.part")):
        dest = _part_of(part)
        if _in_use(manager, dest):
            continue
        old = now - part.stat().st_mtime > STALE_PART_DAYS * 86400
        if old:
            reason = f"untouched for {STALE_PART_DAYS} days"
        elif part in partials:
            reason = "named with --partial"
        elif dest in wanted:
            continue
        elif _resume_record(part):
            out.append(Removal(
                part, _size(part), "partial download no loaded catalog wants, with a resume "
                "record (another --catalog's?); kept until untouched for "
                f"{STALE_PART_DAYS} days, or `easy-oww clean --partial {part}`", kept=True))
            continue
        else:
            reason = "no catalog entry wants it"
        out.append(Removal(part, _size(part), f"partial download, {reason}"))
        sidecar = Path(str(part) + ".json")
        if sidecar.exists():
            out.append(Removal(sidecar, _size(sidecar), "its resume record"))
    for stale in sorted(root.rglob(".*.part.json.*.tmp")):
        dest = stale.with_name(stale.name[1:].split(".part.json.")[0])
        if not _in_use(manager, dest):
            out.append(Removal(stale, _size(stale), "temp file of an interrupted save"))
    for temp in sorted(root.rglob(".easy-oww-unpack-tmp.*")):
        if not temp.is_dir() or _extracting(manager, temp):
            continue
        # Unlocked, yet touched lately: maybe an extraction run from Python without a manager.
        newest = max([p.stat().st_mtime for p in temp.rglob("*")] + [temp.stat().st_mtime])
        if now - newest > BUSY_SECONDS:
            out.append(Removal(temp, _size(temp), "orphan temporary folder of an extraction"))
    manifest = manager.cache.load()
    for key, entry in manifest["datasets"].items():
        if not entry.get("complete"):
            continue
        for rel, record in entry.get("files", {}).items():
            path = manager.cache.absolute(rel)
            if record.get("archive") and not record.get("removed") and path.exists():
                out.append(Removal(path, _size(path), f"{key}: archive already extracted"))
    return out


def clean(manager: DatasetManager, dry_run: bool = False, partials: Iterable[Path] = ()
          ) -> list[Removal]:
    """Delete what `plan_clean` plans (nothing when `dry_run`); returns the plan, the parts
    it keeps included (`kept`)."""
    removals = plan_clean(manager, partials)
    if dry_run:
        return removals
    manifest = manager.cache.load()
    for item in removals:
        if item.kept:
            continue
        if item.reason.endswith("archive already extracted"):
            key = item.reason.split(":", 1)[0]
            if key in manifest["datasets"]:
                manager.cache.mark_removed(key, item.path)
        if item.path.is_dir():
            shutil.rmtree(item.path, ignore_errors=True)
        else:
            item.path.unlink(missing_ok=True)
    return removals


def remove_dataset(manager: DatasetManager, key: str) -> list[Removal]:
    """Delete a dataset's files (downloaded, unpacked, partial) and its manifest entry. A file
    another dataset's manifest entry records too is kept (`kept`): it is that one's data."""
    dataset = manager.catalog.get(key)
    root = manager.datasets_dir
    manifest = manager.cache.load()
    entry = manager.cache.entry(key, manifest) or {}
    others = {manager.cache.absolute(rel): other
              for other, their in manifest["datasets"].items() if other != key
              for rel in [*their.get("files", {}), *their.get("failed", {})]}
    # A file that failed a check (its record moved to "failed") is still this dataset's.
    paths = {manager.cache.absolute(rel) for rel in [*entry.get("files", {}),
                                                     *entry.get("failed", {})]}
    for item in manager.files_of(dataset) or []:
        dest = root / item.path
        paths.update({dest, Path(str(dest) + ".part"), Path(str(dest) + ".part.json")})
    for spec in dataset.unpack:  # extraction journals and temp folders
        paths.update((root / spec.into).glob(".easy-oww-unpack*"))
    removed = []
    for path in sorted(paths):
        if path.is_dir():
            if _extracting(manager, path):  # another process is extracting through it
                removed.append(Removal(path, _size(path), "an extraction in progress uses it",
                                       kept=True))
                continue
            removed.append(Removal(path, _size(path), "removed"))
            shutil.rmtree(path, ignore_errors=True)
            continue
        if path.is_file():
            if _in_use(manager, path):
                continue
            if path in others:
                removed.append(Removal(path, _size(path), f"{others[path]} records it too",
                                       kept=True))
                continue
            removed.append(Removal(path, _size(path), "removed"))
            path.unlink()
    location = root / dataset.location
    folders = {p.parent for p in paths} | {root / u.into for u in dataset.unpack}
    if location.is_dir():
        folders.add(location)
    for folder in sorted(folders,
                         key=lambda p: len(p.parts), reverse=True):
        try:
            if folder != root and folder.is_relative_to(root):
                folder.rmdir()  # only when empty: never a user's own files
        except OSError:
            pass
    manager.cache.remove_entry(key)
    return removed
