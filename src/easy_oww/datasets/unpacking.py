"""Unpack a downloaded dataset as its catalog says, record every output file, and remove
the archives once their members are out and checked (the manifest keeps their records,
marked removed, so a re-run does not fetch them again)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from easy_oww.datasets.cache import CacheManager
from easy_oww.datasets.catalog import DEFAULT_MAX_RATIO, Dataset
from easy_oww.errors import LockTimeoutError
from easy_oww.transfer.fetch import lock_path


def extraction_lock(lock_dir: Path, temp: Path) -> FileLock:
    """Held while an archive is extracted through the temp folder `temp`: a second process
    waits instead of clearing that folder under the first, and `clean` leaves it alone."""
    return FileLock(str(lock_path(lock_dir, temp)))


@dataclass
class UnpackOptions:
    """Choices a user makes about unpacking (the CLI's --fsd50k-split, --sample-rate,
    --keep-archives)."""

    splits: dict[str, str] | None = None  # dataset key -> the one split wanted
    sample_rate: int | None = None  # resample audio members to this rate, mono 16-bit
    keep_archives: bool = False

    def split_of(self, dataset: Dataset) -> str | None:
        split = (self.splits or {}).get(dataset.key)
        return split if split in dataset.splits else None


def unpack_dataset(dataset: Dataset, options: UnpackOptions, cache: CacheManager, *,
                   lock_dir: Path, lock_timeout: float, log: Callable[[str], None]) -> None:
    """Extract `dataset`'s archives into the folder `cache` records, under `lock_dir`'s locks
    (waiting up to `lock_timeout` for another process), then remove the archives."""
    # Imported here: numpy and libsoxr are worth loading only when there is work for them.
    from easy_oww.archives.extract import extract, temp_dir
    from easy_oww.audio import WavResampler

    archives: list[str] = []
    for spec in dataset.unpack_for(options.split_of(dataset)):
        volumes = [cache.datasets_dir / p for p in spec.files]
        into = cache.datasets_dir / spec.into
        lock = extraction_lock(lock_dir, temp_dir(into, volumes[-1].name))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log(f"{dataset.key}: another easy-oww process is extracting {volumes[-1].name}; "
                "waiting")
        try:
            lock.acquire(timeout=lock_timeout)  # re-entrant: a no-op when the first try got it
        except Timeout:
            raise LockTimeoutError(
                f"{dataset.key}: another easy-oww process is still extracting "
                f"{volumes[-1].name} after {lock_timeout:.0f} s; try again when it has finished"
            ) from None
        try:
            # Read under the lock: a process we waited for may have finished this archive.
            entry = cache.entry(dataset.key) or {}
            recorded = entry.get("files", {})
            if all(recorded.get(p, {}).get("removed") for p in spec.files) and members_intact(
                    cache, dataset, entry, spec.files[0]):
                continue  # extracted by an earlier run, archives already gone
            transform = WavResampler(options.sample_rate) if (
                options.sample_rate and spec.audio) else None
            results = extract(volumes if len(volumes) > 1 else volumes[0], into,
                              fmt=spec.format,  # type: ignore[arg-type]
                              strip_components=spec.strip_components, transform=transform,
                              max_ratio=spec.max_ratio or DEFAULT_MAX_RATIO)
            cache.record_files(dataset.key, [
                {"path": r.path, "size": r.size, "hash": f"sha256:{r.sha256}", "member": True,
                 "source": spec.files[-1], **({"settings": r.settings} if r.settings else {})}
                for r in results if r.kind == "file"])
        finally:
            lock.release(force=True)
        archives.extend(spec.files)
    if options.keep_archives:
        return
    for rel in dict.fromkeys(archives):
        cache.mark_removed(dataset.key, rel)
        (cache.datasets_dir / rel).unlink(missing_ok=True)


def members_intact(cache: CacheManager, dataset: Dataset, entry: dict[str, Any],
                   archive: str) -> bool:
    """Every member extracted from the archive group holding `archive` is still present at
    its recorded size, and none failed a check."""
    spec = next((u for u in dataset.unpack if archive in u.files), None)
    if spec is None:
        return True
    members = [(rel, r) for rel, r in entry.get("files", {}).items()
               if r.get("member") and r.get("source") == spec.files[-1]]
    into = spec.into.rstrip("/") + "/"
    if not members or any(rel.startswith(into) for rel in entry.get("failed", {})):
        return False
    for rel, record in members:
        try:
            if cache.absolute(rel).stat().st_size != record.get("size"):
                return False
        except OSError:
            return False
    return True
