"""`freesound merge`: join another library (its folder, or its JSON lines export) into this one.

Several people grow libraries with their own API keys; a merge unions their samples, similar
edges (and the edges still waiting for an end), seen ids and expansion marks. The join rules
(store.py, after the FreesoundLibrary class) make it commutative, associative and idempotent:
merging twice equals merging once and the order of merges does not change the result. Where
both hold a sample, the newer metadata wins: the later ``added_at`` (when that library stored
it, from an API answer fetched then).

The source is read whole into a scratch SQLite file first (a damaged or foreign source stops
there, with the library untouched); then one transaction, under the grow lock, joins it in:
a kill part way leaves the library as it was.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from easy_oww.errors import EasyOwwError
from easy_oww.freesound.errors import BadInputError, LibraryDamagedError
from easy_oww.freesound.export import DERIVED_KINDS, JSONL_FORMAT, JSONL_VERSION
from easy_oww.freesound.lock import grow_lock
from easy_oww.freesound.schema import DB_NAME
from easy_oww.freesound.store import (
    SAMPLE_COLUMNS,
    FreesoundLibrary,
    LibraryStats,
    MalformedSampleError,
    create_staging,
    normalise_sample,
    stage_rows,
)
from easy_oww.freesound.writable import require_writable

_BATCH = 5000
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass
class MergeResult:
    source: str
    source_kind: str  # "library", "jsonl" or "jsonl-samples" (the old one-sample-a-line export)
    samples: int = 0  # samples new to this library
    updated: int = 0  # samples already here whose metadata the source had newer
    edges: int = 0
    seen: int = 0  # ids new to this library's seen list
    expanded: int = 0  # samples newly marked expanded (or not expandable)
    pending_edges: int = 0
    left_out: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Rejected(Exception):
    """A line of the source that is not what an easy-oww export writes."""


def merge_library(folder: str | Path, source: str | Path) -> tuple[MergeResult, LibraryStats]:
    """Merge `source` (a library folder, or a file written by ``export --format jsonl``) into
    the library in `folder` (created if need be). BadInputError, with nothing written, for a
    source that is missing, damaged or not an easy-oww library; LibraryReadOnlyError and
    LibraryLockedError as for grow."""
    folder = Path(folder).expanduser().absolute()
    source_path = Path(source).expanduser().absolute()
    require_writable(folder)
    if not source_path.exists():
        raise BadInputError(f"merge source {source} does not exist; name a library folder or a "
                            "file written by `easy-oww freesound export --format jsonl`")
    with tempfile.TemporaryDirectory(prefix="easy-oww-merge-") as scratch:
        staging_path = Path(scratch) / "staged.db"
        staging = create_staging(staging_path)
        try:
            if source_path.is_dir():
                result = MergeResult(str(source), "library")
                _stage_library(source_path, staging, result)
            else:
                result = MergeResult(str(source), "jsonl")
                _stage_jsonl(source_path, staging, result)
            staging.execute("COMMIT")
        except OSError as exc:  # a file that cannot be read (permissions, an I/O error)
            raise BadInputError(f"cannot read merge source {source}: "
                                f"{exc.strerror or exc}; nothing was merged") from None
        finally:
            staging.close()
        with grow_lock(folder), FreesoundLibrary(folder) as library:
            counts = library.merge_staged(staging_path)
            stats = library.stats()
    for key, value in counts.items():
        setattr(result, key, value)
    return result, stats


# ------------------------------------------------------------------ a library folder
def _stage_library(source: Path, staging: sqlite3.Connection, result: MergeResult) -> None:
    if not (source / DB_NAME).exists():
        raise BadInputError(f"merge source {source} holds no Freesound library ({DB_NAME}); "
                            "name a library folder or a JSON lines export")
    try:
        with FreesoundLibrary(source, create=False, read_only=True) as library:
            _stage_records(staging, _library_records(library), result)
    except BadInputError:
        raise
    except _Rejected as exc:
        raise BadInputError(f"merge source {source}: {exc}; nothing was merged") from None
    except LibraryDamagedError as exc:
        raise BadInputError(
            f"merge source {source}: its library is damaged ({exc.problem}); nothing was "
            f"merged; see `easy-oww freesound verify --library {source}` and its backups"
        ) from None
    except EasyOwwError as exc:  # damaged, newer schema, unreadable: said as the source's
        raise BadInputError(f"merge source: {exc}; nothing was merged") from None


def _library_records(library: FreesoundLibrary) -> Iterator[tuple[str, tuple[Any, ...]]]:
    for kind, row in library.interchange():
        if kind == "sample":
            sound_id, added_at, expanded, deleted, note, raw = row
            yield kind, _sample_row(json.loads(raw), added_at, expanded, deleted, note)
        elif kind == "seen":
            sound_id, status, first_seen, note, raw = row
            yield kind, _seen_row(sound_id, status, first_seen, note,
                                  json.loads(raw) if raw is not None else None)
        else:
            yield kind, row


# ------------------------------------------------------------------ a JSON lines export
def _stage_jsonl(source: Path, staging: sqlite3.Connection, result: MergeResult) -> None:
    with open(source, "rb") as handle:
        if handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC:
            raise BadInputError(f"merge source {source} is an SQLite file; name the library "
                                "folder that holds it")
        handle.seek(0)
        line = _LineCounter()
        try:
            _stage_records(staging, _jsonl_records(handle, result, line), result)
        except _Rejected as exc:
            raise BadInputError(
                f"merge source {source} line {line.number}: {exc}; expected a file "
                "written by `easy-oww freesound export --format jsonl`; nothing was merged"
            ) from None


class _LineCounter:
    """The line being read, for the error that names it."""

    def __init__(self) -> None:
        self.number = 0


def _jsonl_records(lines: Iterable[bytes], result: MergeResult,
                   counter: _LineCounter) -> Iterator[tuple[str, tuple[Any, ...]]]:
    versioned = None
    for raw_line in lines:
        counter.number += 1
        if not raw_line.strip():
            continue
        if versioned:
            edge = _fast_edge(raw_line)
            if edge is not None:
                yield edge
                continue
        try:
            record = json.loads(raw_line)
        except (ValueError, UnicodeDecodeError):
            raise _Rejected("not JSON") from None
        if not isinstance(record, dict):
            raise _Rejected(f"a JSON {type(record).__name__}, not an object")
        if versioned is None:
            versioned = record.get("type") == "header"
            if versioned:
                _check_header(record)
                continue
            result.source_kind = "jsonl-samples"
        if not versioned:  # the first export's shape: one raw API sample a line
            yield "sample", _sample_row(record, "", 0, 0, None)
            continue
        if record.get("type") == "header":  # exports joined with `cat`: each has its header
            _check_header(record)
            continue
        yield _parse_record(record, result)


# An edge line exactly as export writes it: read without the JSON parser, which would take
# most of a merge's time at a million edges. Anything else takes the full path below.
_EDGE_LINE = re.compile(rb'\{"type":"(edge|pending)","source":([1-9][0-9]*),'
                        rb'"target":([1-9][0-9]*),"kind":"(similar)","weight":'
                        rb'(null|-?[0-9]+\.[0-9]+(?:e[+-]?[0-9]+)?),"rank":(null|-?[0-9]+)\}\r?\n?')


def _fast_edge(line: bytes) -> tuple[str, tuple[Any, ...]] | None:
    match = _EDGE_LINE.fullmatch(line)
    if match is None:
        return None
    kind, source, target, edge_kind, weight, rank = match.groups()
    if source == target:
        return None  # the full path says what is wrong with it
    return kind.decode(), (int(source), int(target), edge_kind.decode(),
                           None if weight == b"null" else float(weight),
                           None if rank == b"null" else int(rank))


def _check_header(record: dict[str, Any]) -> None:
    if record.get("format") != JSONL_FORMAT:
        raise _Rejected(f"a header of format {record.get('format')!r}, not {JSONL_FORMAT!r}")
    version = record.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _Rejected(f"a header of version {version!r}")
    if version > JSONL_VERSION:
        raise _Rejected(f"version {version} is newer than this easy-oww reads "
                        f"({JSONL_VERSION}); upgrade easy-oww")


def _parse_record(record: dict[str, Any], result: MergeResult) -> tuple[str, tuple[Any, ...]]:
    kind = record.get("type")
    if kind == "sample":
        data = record.get("data")
        if not isinstance(data, dict) or data.get("id") != record.get("id"):
            raise _Rejected("a sample whose data is not an object with its id")
        expanded, deleted = record.get("expanded"), record.get("deleted")
        if expanded not in (0, 1, 2) or deleted not in (0, 1):
            raise _Rejected("a sample with expanded/deleted marks out of range")
        return kind, _sample_row(data, _text(record, "added_at"), expanded, deleted,
                                 _text(record, "note", optional=True))
    if kind in ("edge", "pending"):
        source, target = _positive(record, "source"), _positive(record, "target")
        edge_kind = _text(record, "kind")
        weight, rank = record.get("weight"), record.get("rank")
        if source == target:
            raise _Rejected("an edge from a sample to itself")
        if weight is not None and (isinstance(weight, bool)
                                   or not isinstance(weight, (int, float))):
            raise _Rejected(f"an edge weight {weight!r}")
        if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int)):
            raise _Rejected(f"an edge rank {rank!r}")
        if edge_kind in DERIVED_KINDS:
            return "left out", (f"{edge_kind} edges (computed from the samples, not stored)",)
        return kind, (source, target, edge_kind,
                      float(weight) if weight is not None else None, rank)
    if kind == "seen":
        data = record.get("data")
        if data is not None and not isinstance(data, dict):
            raise _Rejected("a seen id whose data is not an object")
        return kind, _seen_row(_positive(record, "id"), _text(record, "status"),
                               _text(record, "first_seen"), _text(record, "note", optional=True),
                               data)
    raise _Rejected(f"a line of type {kind!r}")


def _positive(record: dict[str, Any], key: str) -> int:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _Rejected(f"{key} {value!r} is not a positive integer")
    return value


def _text(record: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    value = record.get(key)
    if not isinstance(value, str) and not (optional and value is None):
        raise _Rejected(f"{key} {value!r} is not text")
    return value


# ------------------------------------------------------------------ rows for the staging file
def _sample_row(data: dict[str, Any], added_at: str, expanded: int, deleted: int,
                note: str | None) -> tuple[Any, ...]:
    try:
        columns = normalise_sample(data)
    except MalformedSampleError as exc:
        raise _Rejected(str(exc)) from None
    raw = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return (*(columns[name] for name in SAMPLE_COLUMNS), raw, added_at, expanded, deleted, note)


def _seen_row(sound_id: int, status: str, first_seen: str, note: str | None,
              data: dict[str, Any] | None) -> tuple[Any, ...]:
    downloads = data.get("num_downloads") if data else None
    if not isinstance(downloads, int) or isinstance(downloads, bool):
        downloads = None
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")) if data else None
    return sound_id, status, downloads, raw, first_seen, note


def _stage_records(staging: sqlite3.Connection, records: Iterable[tuple[str, tuple[Any, ...]]],
                   result: MergeResult) -> None:
    batches: dict[str, list[tuple[Any, ...]]] = {"sample": [], "edge": [], "pending": [],
                                                  "seen": []}
    for kind, row in records:
        if kind == "left out":
            result.left_out[row[0]] = result.left_out.get(row[0], 0) + 1
            continue
        batch = batches[kind]
        batch.append(row)
        if len(batch) >= _BATCH:
            stage_rows(staging, kind, batch)
            batch.clear()
    for kind, batch in batches.items():
        stage_rows(staging, kind, batch)
