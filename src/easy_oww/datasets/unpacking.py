"""Unpack a downloaded dataset as its catalog says, record every output file, and remove
the archives once their members are out and checked (the manifest keeps their records,
marked removed, so a re-run does not fetch them again)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from easy_oww.datasets.cache import CacheManager
from easy_oww.datasets.catalog import DEFAULT_MAX_RATIO, Dataset, UnpackSpec
from easy_oww.errors import LockTimeoutError
from easy_oww.transfer.fetch import lock_path

if TYPE_CHECKING:
    from easy_oww.archives.extract import MemberResult


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

    def rate_of(self, spec: UnpackSpec) -> int | None:
        """The rate `spec`'s audio members are converted to, or None (kept as they are).
        --sample-rate, when given, wins over the catalog's `sample_rate`: a user who names a
        rate gets that rate (and the manifest says which)."""
        if not spec.converts:
            return None
        return self.sample_rate or spec.sample_rate


def conversion_rate(dataset: Dataset, options: UnpackOptions) -> int | None:
    """The rate a dataset's unpacked audio was converted to, for its manifest metadata."""
    if dataset.unpack and options.sample_rate:
        return options.sample_rate  # as before: --sample-rate is recorded for any unpack
    rates = {options.rate_of(spec) for spec in dataset.unpack_for(options.split_of(dataset))}
    rates.discard(None)
    return rates.pop() if len(rates) == 1 else None


def unpack_dataset(dataset: Dataset, options: UnpackOptions, cache: CacheManager, *,
                   lock_dir: Path, lock_timeout: float, log: Callable[[str], None]) -> None:
    """Extract `dataset`'s archives into the folder `cache` records, under `lock_dir`'s locks
    (waiting up to `lock_timeout` for another process), then remove the archives."""
    # Imported here: numpy and libsoxr are worth loading only when there is work for them.
    from easy_oww.archives.extract import Owner, extract, temp_dir
    from easy_oww.audio import AudioConverter, AudioDecodeError

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
            rate = options.rate_of(spec)
            transform = AudioConverter(rate) if rate else None
            silent = set(spec.silent)

            def excuse(name: str, error: Exception, silent: set[str] = silent) -> str | None:
                if isinstance(error, AudioDecodeError) and (
                        PurePosixPath(name).stem in silent):
                    return f"listed as silent (no audio): {error.problem}"
                return None

            def report(result: MemberResult, key: str = dataset.key) -> None:
                if result.kind == "unreadable":
                    log(f"{key}: {result.name}: skipped, {result.reason}")

            try:
                results = extract(volumes, into,
                                  fmt=spec.format,  # type: ignore[arg-type]
                                  strip_components=spec.strip_components, transform=transform,
                                  max_ratio=spec.max_ratio or DEFAULT_MAX_RATIO,
                                  flatten=spec.flatten, checksums=spec.checksums,
                                  tolerate=excuse, on_member=report,
                                  owned={rel: Owner(*o) for rel, o in owned_by_others(
                                      cache.load(), spec.into, spec.files[-1]).items()})
            except AudioDecodeError as exc:
                raise AudioDecodeError(
                    f"{exc.path} in {volumes[-1].name}", f"{exc.problem}; if this track is "
                    "known to hold no audio, list its name in the unpack's `silent`",
                    expected=exc.expected, found=exc.found) from None
            cache.record_files(dataset.key, [
                {"path": r.path, "size": r.size, "hash": f"sha256:{r.sha256}", "member": True,
                 "source": spec.files[-1], **({"settings": r.settings} if r.settings else {})}
                for r in results if r.kind == "file"])
            cache.record_unreadable(dataset.key, [
                {"path": r.path, "member": r.name, "reason": r.reason, "source": spec.files[-1]}
                for r in results if r.kind == "unreadable"])
        finally:
            lock.release(force=True)
        archives.extend(spec.files)
    if options.keep_archives:
        return
    for rel in dict.fromkeys(archives):
        cache.mark_removed(dataset.key, rel)
        (cache.datasets_dir / rel).unlink(missing_ok=True)


def owned_by_others(manifest: dict[str, Any], into: str, source: str) -> dict[str, tuple[str, str]]:
    """The files under ``into`` that archives other than ``source`` unpacked (any dataset's),
    by path relative to ``into`` (a catalog path: no slash at either end): (that archive,
    sha256)."""
    prefix = into + "/"
    owned: dict[str, tuple[str, str]] = {}
    for entry in manifest.get("datasets", {}).values():
        for rel, record in entry.get("files", {}).items():
            hash_ = record.get("hash")
            if (record.get("member") and rel.startswith(prefix) and isinstance(hash_, str)
                    and hash_.startswith("sha256:")
                    and record.get("source") not in (None, source)):
                owned[rel[len(prefix):]] = (str(record["source"]), hash_[len("sha256:"):])
    return owned


def members_intact(cache: CacheManager, dataset: Dataset, entry: dict[str, Any],
                   archive: str) -> bool:
    """Every member extracted from the archive group holding `archive` is still present at
    its recorded size, and none failed a check."""
    spec = next((u for u in dataset.unpack if archive in u.files), None)
    if spec is not None:
        source, folder = spec.files[-1], spec.into
    elif dataset.on_fallback and dataset.fallback is not None:
        source, folder = archive, dataset.fallback.into  # a shard of the fallback route
    else:
        return True
    members = [(rel, r) for rel, r in entry.get("files", {}).items()
               if r.get("member") and r.get("source") == source]
    into = folder + "/"  # a catalog path: no slash at either end
    if not members or any(rel.startswith(into) for rel in entry.get("failed", {})):
        return False
    for rel, record in members:
        try:
            if cache.absolute(rel).stat().st_size != record.get("size"):
                return False
        except OSError:
            return False
    return True
