"""The cache manifest: what was downloaded, where, how big, with which hash, checked when.

``<workspace>/.cache/manifest.json``, written atomically (temp, fsync, rename) under a file
lock with read-merge-write, so two processes on one workspace lose nothing. Paths are
relative to the datasets folder, so a drive mounted somewhere else still works. A damaged
manifest is set aside (``manifest.json.damaged-<time>``) and rebuilt: the dataset manager
re-adopts files already on disk by hashing them, so nothing is downloaded twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from easy_oww.atomic import atomic_write_text
from easy_oww.errors import EasyOwwError, LockTimeoutError
from easy_oww.hashes import KnownHash, file_hash

MANIFEST_VERSION = 1


class CacheEntryError(EasyOwwError):
    """An entry cannot be added (its file does not exist, or its checksum is malformed)."""


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class CacheManager:
    """Manifest-based tracking of downloaded datasets (the seed's ``CacheManager``)."""

    def __init__(self, cache_dir: str | Path = "~/.easy-oww/.cache",
                 datasets_dir: str | Path | None = None, lock_timeout: float = 60.0) -> None:
        self.cache_dir = Path(cache_dir).expanduser().absolute()
        self.datasets_dir = (Path(datasets_dir).expanduser().absolute() if datasets_dir
                             else self.cache_dir.parent / "datasets")
        self.manifest_path = self.cache_dir / "manifest.json"
        self.lock_timeout = lock_timeout
        self.damaged: Path | None = None  # where a damaged manifest was set aside, if one was

    # -- storage -----------------------------------------------------------------------------
    def _lock(self) -> FileLock:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.cache_dir / "manifest.lock"), timeout=self.lock_timeout)

    def _parse(self) -> dict[str, Any] | None:
        """The manifest on disk (empty when there is none); None when it is damaged."""
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"version": MANIFEST_VERSION, "datasets": {}}
        except ValueError:  # not JSON, or not even UTF-8 (UnicodeDecodeError is a ValueError)
            return None
        if not isinstance(data, dict) or not isinstance(data.get("datasets"), dict):
            return None
        for entry in data["datasets"].values():  # hand-edited or half-written: damaged
            if not isinstance(entry, dict) or not isinstance(entry.get("files", {}), dict) or \
                    not all(isinstance(r, dict) for r in entry.get("files", {}).values()):
                return None
        return data

    def _read(self) -> dict[str, Any]:
        """Under the lock: the manifest, or a fresh one after setting a damaged one aside."""
        data = self._parse()
        return data if data is not None else self._set_aside()

    def _set_aside(self) -> dict[str, Any]:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.manifest_path.with_name(f"manifest.json.damaged-{stamp}")
        try:
            self.manifest_path.replace(aside)
            self.damaged = aside
        except FileNotFoundError:
            pass
        return {"version": MANIFEST_VERSION, "datasets": {}}

    def load(self) -> dict[str, Any]:
        """A snapshot of the manifest. Writes are atomic renames, so no lock is needed to
        read; a damaged manifest is set aside under the lock."""
        data = self._parse()
        return data if data is not None else self.update(lambda data: None)

    def update(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Lock, re-read, apply `change`, write atomically: concurrent writers merge."""
        try:
            with self._lock():
                data = self._read()
                change(data)
                atomic_write_text(self.manifest_path, json.dumps(data, indent=1, sort_keys=True))
                return data
        except Timeout:
            raise LockTimeoutError(
                f"the manifest {self.manifest_path} is locked by another process; try again "
                "when it finishes") from None

    # -- paths -----------------------------------------------------------------------------
    def relative(self, path: str | Path) -> str:
        path = Path(path).expanduser()
        path = path if path.is_absolute() else self.datasets_dir / path
        try:
            return path.relative_to(self.datasets_dir).as_posix()
        except ValueError:
            return str(path)  # outside the datasets folder: keep it absolute

    def absolute(self, rel: str) -> Path:
        path = Path(rel)
        return path if path.is_absolute() else self.datasets_dir / path

    # -- records used by the dataset manager -------------------------------------------------
    def entry(self, dataset: str, data: dict[str, Any] | None = None) -> dict[str, Any] | None:
        data = data if data is not None else self.load()
        return data["datasets"].get(dataset)

    def record_file(self, dataset: str, path: str | Path, *, size: int, hash: str,
                    source: str | None = None, validator: str | None = None,
                    catalog_hash: str | None = None, extra: dict[str, Any] | None = None
                    ) -> None:
        rel = self.relative(path)

        def change(data: dict[str, Any]) -> None:
            entry = data["datasets"].setdefault(dataset, {"complete": False, "files": {}})
            entry.setdefault("files", {})[rel] = {
                "size": size, "hash": hash, "source": source, "validator": validator,
                "catalog_hash": catalog_hash, "time": utc_now(), **(extra or {}),
            }
            entry.get("failed", {}).pop(rel, None)

        self.update(change)

    def record_files(self, dataset: str, records: list[dict[str, Any]]) -> None:
        """Many files in one manifest write (unpacked members)."""
        def change(data: dict[str, Any]) -> None:
            entry = data["datasets"].setdefault(dataset, {"complete": False, "files": {}})
            files = entry.setdefault("files", {})
            for record in records:
                record = dict(record)
                rel = self.relative(record.pop("path"))
                files[rel] = {"time": utc_now(), **record}
                entry.get("failed", {}).pop(rel, None)

        self.update(change)

    def record_unreadable(self, dataset: str, records: list[dict[str, Any]]) -> None:
        """Members left out on purpose (tracks known to hold no audio), under "unreadable":
        not files, so status and verify do not look for them; kept so a user can see why."""
        if not records:
            return

        def change(data: dict[str, Any]) -> None:
            entry = data["datasets"].setdefault(dataset, {"complete": False, "files": {}})
            unreadable = entry.setdefault("unreadable", {})
            for record in records:
                record = dict(record)
                rel = self.relative(record.pop("path"))
                unreadable[rel] = {"time": utc_now(), **record}

        self.update(change)

    def forget_files(self, dataset: str, paths: list[str | Path]) -> None:
        rels = [self.relative(p) for p in paths]

        def change(data: dict[str, Any]) -> None:
            entry = data["datasets"].get(dataset)
            for rel in rels:
                if entry:
                    entry.get("files", {}).pop(rel, None)

        self.update(change)

    def mark_removed(self, dataset: str, path: str | Path) -> None:
        """An archive deleted after a verified extraction: keep its record, flagged."""
        rel = self.relative(path)

        def change(data: dict[str, Any]) -> None:
            record = data["datasets"].get(dataset, {}).get("files", {}).get(rel)
            if record is not None:
                record["removed"] = True

        self.update(change)

    def record_failure(self, dataset: str, path: str | Path, reason: str) -> None:
        rel = self.relative(path)

        def change(data: dict[str, Any]) -> None:
            entry = data["datasets"].setdefault(dataset, {"complete": False, "files": {}})
            entry["complete"] = False
            failed = entry.setdefault("failed", {})
            # The file's record (size, hash) moves along, so every later `verify` reports
            # the same facts as the one that found the fault.
            record = entry.get("files", {}).pop(rel, None) or (failed.get(rel) or {}).get(
                "record")
            failed[rel] = {"reason": reason, "time": utc_now(),
                           **({"record": record} if record else {})}

        self.update(change)

    def mark_complete(self, dataset: str, complete: bool = True,
                      metadata: dict[str, Any] | None = None) -> None:
        def change(data: dict[str, Any]) -> None:
            entry = data["datasets"].setdefault(dataset, {"complete": False, "files": {}})
            entry["complete"] = complete
            entry["updated"] = utc_now()
            if metadata:
                entry.setdefault("metadata", {}).update(metadata)

        self.update(change)

    # -- the seed's API ----------------------------------------------------------------------
    def is_cached(self, dataset_name: str) -> bool:
        """Fast: the manifest says complete and every file is present with its recorded size."""
        entry = self.entry(dataset_name)
        if not entry or not entry.get("complete") or entry.get("failed"):
            return False
        files = entry.get("files", {})
        if not files:
            return False
        for rel, record in files.items():
            if record.get("removed"):
                continue
            try:
                if self.absolute(rel).stat().st_size != record.get("size"):
                    return False
            except OSError:
                return False
        return True

    def add_entry(self, dataset_name: str, filepath: str | Path, checksum: str | None = None,
                  metadata: dict[str, Any] | None = None, *, complete: bool = True) -> None:
        """Record a file you placed yourself. The file must exist; a checksum given as
        ``sha256:<hex>``, ``md5:<hex>`` or bare hex is checked; without one, sha256 is
        computed so `verify_integrity` can later tell if the file rotted."""
        path = Path(filepath).expanduser().absolute()
        if not path.is_file():
            raise CacheEntryError(
                f"cannot add {dataset_name!r} to the cache: {path} does not exist (download "
                "or copy the file there first)")
        if checksum:
            try:
                known = KnownHash.parse(checksum)
            except ValueError as exc:
                raise CacheEntryError(f"cannot add {dataset_name!r}: checksum {exc}") from None
            actual = file_hash(path, known.algorithm)
            if actual != str(known):
                raise CacheEntryError(
                    f"cannot add {dataset_name!r}: {path} has {actual}, not the given {known}")
        else:
            actual = file_hash(path, "sha256")
        self.record_file(dataset_name, path, size=path.stat().st_size, hash=actual,
                         source="added by hand", extra={"metadata": metadata} if metadata else None)
        if complete:
            self.mark_complete(dataset_name, True, metadata)

    def verify_files(self, dataset_name: str) -> list[dict[str, Any]]:
        """Re-hash every recorded file: one row per file with ok / problem. A file that failed
        a check before is checked again against its record: the same facts every run."""
        entry = self.entry(dataset_name) or {}
        rows = []
        files = entry.get("files", {})
        for rel, record in sorted(files.items()):
            if record.get("removed"):
                continue  # an archive deleted after its members were checked
            rows.append(self._check(dataset_name, rel, record))
        for rel, failure in sorted(entry.get("failed", {}).items()):
            if rel in files:
                continue  # one row per file: its record was written after the failure
            reason = failure.get("reason", "failed a check")
            record = failure.get("record")
            if not isinstance(record, dict):  # recorded before failures kept the record
                rows.append({"dataset": dataset_name, "path": str(self.absolute(rel)),
                             "size": None, "expected": None, "actual": None, "ok": False,
                             "problem": reason})
                continue
            row = self._check(dataset_name, rel, record)
            if row["ok"]:  # the bytes match now, yet a check failed (a deep one, say)
                row["ok"], row["problem"] = False, reason
            rows.append(row)
        return rows

    def _check(self, dataset_name: str, rel: str, record: dict[str, Any]) -> dict[str, Any]:
        """One verify row: the file at `rel` against its record's size and hash."""
        path = self.absolute(rel)
        row = {"dataset": dataset_name, "path": str(path), "size": record.get("size"),
               "expected": record.get("hash"), "actual": None, "ok": False, "problem": ""}
        if not path.is_file():
            row["problem"] = "missing"
        elif path.stat().st_size != record.get("size"):
            row["problem"] = f"size {path.stat().st_size:,}, expected {record.get('size'):,}"
        else:
            algorithm = str(record.get("hash", "sha256:")).partition(":")[0] or "sha256"
            row["actual"] = file_hash(path, algorithm)
            row["ok"] = row["actual"] == record.get("hash")
            row["problem"] = "" if row["ok"] else "hash mismatch"
        return row

    def verify_integrity(self, dataset_name: str) -> bool:
        """Full re-hash of every file of the dataset; a failure is recorded in the manifest."""
        rows = self.verify_files(dataset_name)
        for row in rows:
            if not row["ok"] and row["problem"] in ("hash mismatch",) or row["problem"].startswith(
                    "size "):
                self.record_failure(dataset_name, row["path"], row["problem"])
        return bool(rows) and all(row["ok"] for row in rows)

    def remove_entry(self, dataset_name: str) -> bool:
        """Forget a dataset (its files stay on disk). Returns whether there was an entry."""
        found = False

        def change(data: dict[str, Any]) -> None:
            nonlocal found
            found = data["datasets"].pop(dataset_name, None) is not None

        self.update(change)
        return found

    def list_cached(self) -> list[str]:
        data = self.load()
        return sorted(name for name in data["datasets"] if self.is_cached(name))
