"""The Freesound library on disk: one SQLite file in WAL mode, one transaction per sample.

Why SQLite and not the seed's pickle: re-pickling the whole state on every checkpoint costs
time linear in the library (4.9 s at 20,000 samples), so per-sample checkpoints made growth
quadratic. A SQLite commit of one sample and its edges costs the same at 1k and 100k samples,
is durable on commit (``synchronous=FULL``), and readers in other processes (``status``) see a
consistent snapshot while ``grow`` writes.

Tables (schema version in ``PRAGMA user_version``, migrations in ``MIGRATIONS``):

- ``samples``: every stored sample, the fields the seed lists as columns plus the raw JSON.
  ``expanded`` is 0 while the sample waits in the crawl frontier, 1 once its similar sounds
  were fetched, 2 when it cannot be expanded (deleted on Freesound, malformed answer).
- ``edges``: (source, target, kind) unique, only between stored samples. Deliberately no
  index on ``target`` (nor on username / pack): each one adds a random page to every commit,
  and a per-sample commit must stay flat as the library grows; the queries that would use
  them (graph, derived edges, verify) read whole tables anyway.
- ``seen``: ids known but not stored, with the list-answer metadata when we have it (the seed's
  "sound cache": storing a seen sample later costs no request) and ``links``, how many stored
  samples point at it.
- ``pending_edges``: edges waiting for an endpoint to be stored; materialised in the same
  transaction that stores it.
- ``seeds``: progress through each text search; ``runs``: history; ``problems``: skipped items.
- ``audio`` (version 2): the preview fetched for a sample (``freesound audio``): its path
  relative to the library folder, size, sha256 and the settings it was made with.
- ``positions`` (version 3): where the map drew each sample (``freesound visualize``), reused
  so a later map moves no sample the user has seen; the map places the new ones.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import heapq
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from easy_oww.freesound.backup_files import list_backups, newest_good_backup
from easy_oww.freesound.errors import (
    LibraryDamagedError,
    LibraryMissingError,
    LibraryReadOnlyError,
    LibraryVersionError,
)
from easy_oww.freesound.schema import (
    DB_NAME,
    MIGRATIONS,
    SAME_PACK,
    SAME_USER,
    SCHEMA_VERSION,
    SIMILAR,
)
from easy_oww.freesound.writable import (
    folder_writable,
    is_read_only_failure,
    read_only_error,
    require_writable,
)

if TYPE_CHECKING:  # networkx costs ~0.3 s to import; only graph() needs it
    import networkx as nx


# Columns copied out of the API's JSON. Everything else stays reachable in `raw`.
_INT_FIELDS = ("channels", "filesize", "bitdepth", "num_downloads", "num_ratings", "num_comments")
_FLOAT_FIELDS = ("duration", "bitrate", "samplerate", "avg_rating")
_TEXT_FIELDS = ("name", "description", "username", "license", "pack_name", "created")
_JSON_FIELDS = ("tags", "previews", "images")
SAMPLE_COLUMNS = (
    ("id",) + _TEXT_FIELDS + _INT_FIELDS + _FLOAT_FIELDS + _JSON_FIELDS + ("pack", "pack_id")
)


class MalformedSampleError(ValueError):
    """A sample dict without a usable id, or with a field of the wrong type."""


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pack_id(value: Any) -> int | None:
    """Freesound gives `pack` as a URL (".../packs/1234/") or an id; we keep the number."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MalformedSampleError(f"pack {value!r} is not a pack")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        digits = [part for part in value.rstrip("/").split("/") if part.isdigit()]
        if digits:
            return int(digits[-1])
    raise MalformedSampleError(f"pack {value!r} is not a pack URL or id")


def normalise_sample(data: Mapping[str, Any]) -> dict[str, Any]:
    """Columns for one sample from an API result; raises MalformedSampleError."""
    if not isinstance(data, Mapping):
        raise MalformedSampleError(f"a sample must be a JSON object, not {type(data).__name__}")
    sound_id = data.get("id")
    if isinstance(sound_id, bool) or not isinstance(sound_id, int) or sound_id <= 0:
        raise MalformedSampleError(f"sample id {sound_id!r} is not a positive integer")
    row: dict[str, Any] = {"id": sound_id}
    for name in _TEXT_FIELDS:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise MalformedSampleError(f"sample {sound_id}: {name} {value!r} is not text")
        row[name] = value
    for name in _INT_FIELDS:
        value = data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise MalformedSampleError(f"sample {sound_id}: {name} {value!r} is not an integer")
        row[name] = value
    for name in _FLOAT_FIELDS:
        value = data.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise MalformedSampleError(f"sample {sound_id}: {name} {value!r} is not a number")
        row[name] = float(value) if value is not None else None
    tags = data.get("tags")
    if tags is not None and (
        not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags)
    ):
        raise MalformedSampleError(f"sample {sound_id}: tags {tags!r} is not a list of text")
    for name in _JSON_FIELDS:
        value = data.get(name)
        if name != "tags" and value is not None and not isinstance(value, Mapping):
            raise MalformedSampleError(f"sample {sound_id}: {name} {value!r} is not an object")
        row[name] = json.dumps(value, sort_keys=True) if value is not None else None
    pack = data.get("pack")
    row["pack_id"] = _pack_id(pack)
    row["pack"] = str(pack) if pack is not None else None
    return row


@dataclass
class AddResult:
    id: int
    added: bool  # False when the id was already stored (nothing changed)
    edges: int  # edges materialised by this sample (pending links, both directions)


@dataclass
class LibraryStats:
    samples: int
    edges: int
    expanded: int
    frontier: int
    seen: int
    pending_edges: int
    deleted: int
    problems: int
    db_bytes: int
    runs: int
    last_run: str | None
    audio: int = 0  # samples with a fetched audio file
    audio_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class AudioFile:
    """A sample's audio on disk; ``path`` is relative to the library folder."""

    id: int
    path: str
    bytes: int
    sha256: str
    quality: str  # the preview it came from: hq-mp3, hq-ogg, lq-mp3, lq-ogg
    sample_rate: int | None  # None: the preview as served; else 16-bit mono WAV at this rate


def _sqlite_header_problem(path: Path) -> str | None:
    """A cheap look at the file header: garbage or an obviously truncated file."""
    size = path.stat().st_size
    if size == 0:
        return None
    with open(path, "rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return "not an SQLite database (bad header)"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    valid = header[24:28] == header[92:96]
    if valid and pages and size < pages * page_size:
        return f"truncated ({size} bytes, the header says {pages * page_size})"
    return None


def fold_wal(path: Path) -> bool:
    """Write a closed library's WAL into its database file and remove it, as SQLite does when
    the last connection closes; False when SQLite cannot open it. A file that is not a
    database is no refusal: SQLite checkpoints nothing and may delete the WAL, so a caller
    that must keep it gives it a second name first (restore_backup does)."""
    try:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.DatabaseError:
        return False
    return True


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return any(
        word in text
        for word in ("malformed", "not a database", "file is encrypted", "disk image", "corrupt")
    )


def library_exists(folder: str | os.PathLike[str]) -> bool:
    """Whether `folder` holds a library file (``FreesoundLibrary(folder, create=False)`` opens)."""
    return (Path(folder).expanduser() / DB_NAME).exists()


class FreesoundLibrary:
    """A persistent, crash-safe Freesound sample library in `folder`.

    Safe for many threads (one connection, one re-entrant lock: SQLite serialises writers
    anyway) and for readers in other processes (WAL). Use as a context manager or call
    :meth:`close`.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        create: bool = True,
        durable: bool = True,
        read_only: bool = False,
    ) -> None:
        """`read_only`: open for reading only (SQLite's ``mode=ro``), which works in a folder
        that cannot be written; every writing method then fails. Otherwise a folder that
        cannot be written is LibraryReadOnlyError before anything is touched."""
        self.folder = Path(folder).expanduser().absolute()
        self.path = self.folder / DB_NAME
        self.read_only = read_only
        self._lock = threading.RLock()
        self._depth = 0
        if not self.path.exists():
            if not create or read_only:
                raise LibraryMissingError(f"no Freesound library at {self.folder}", self.folder)
            require_writable(self.folder)
            self.folder.mkdir(parents=True, exist_ok=True)
        else:
            if not read_only:
                require_writable(self.folder)
            self._check_file()
        if read_only:
            self._conn = self._connect_read_only()
            return
        try:
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
        except sqlite3.DatabaseError as exc:
            if is_read_only_failure(exc):
                raise read_only_error(self.folder) from None
            raise self._damaged(str(exc)) from None
        try:
            self._setup(durable)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            if _is_damage(exc):
                raise self._damaged(str(exc)) from None
            if isinstance(exc, sqlite3.OperationalError) and is_read_only_failure(exc):
                raise read_only_error(self.folder) from None
            raise

    def _connect_read_only(self) -> sqlite3.Connection:
        """A ``mode=ro`` connection; where the folder cannot take the WAL's -shm file (no
        writer has it open), ``immutable=1``: SQLite then reads the file as it is, which is
        the whole library since the last writer checkpointed on close."""
        last: sqlite3.Error | None = None
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(f"{self.path.as_uri()}?{flags}", uri=True,
                                       isolation_level=None, check_same_thread=False,
                                       timeout=30)
            except sqlite3.Error as exc:
                last = exc
                continue
            try:
                self._setup_read_only(conn)
                return conn
            except LibraryVersionError:
                conn.close()
                raise
            except sqlite3.DatabaseError as exc:
                conn.close()
                if _is_damage(exc):
                    raise self._damaged(str(exc)) from None
                last = exc
        raise LibraryReadOnlyError(
            f"cannot open the Freesound library {self.path} for reading ({last})", self.folder)

    def _setup_read_only(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA busy_timeout = 30000")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if version > SCHEMA_VERSION:
            raise self._newer(version)
        if version < SCHEMA_VERSION:
            if not folder_writable(self.folder):
                raise LibraryVersionError(
                    f"{self.path} has schema version {version} and must be upgraded to "
                    f"{SCHEMA_VERSION} before it can be read, which needs its folder writable "
                    "once; make it writable (or copy the library to a writable folder)"
                )
            with FreesoundLibrary(self.folder, create=False):  # upgrades it, then closes
                pass

    def _newer(self, version: int) -> LibraryVersionError:
        return LibraryVersionError(
            f"{self.path} has schema version {version}, this easy-oww knows up to "
            f"{SCHEMA_VERSION}; upgrade easy-oww"
        )

    # ----------------------------------------------------------------- opening, schema
    def _check_file(self) -> None:
        problem = _sqlite_header_problem(self.path)
        if problem is None and self.path.stat().st_size == 0:
            if list_backups(self.folder) and not Path(f"{self.path}-wal").exists():
                problem = "empty file, although backups exist"
        if problem and problem.startswith("truncated"):
            # SQLite reads past the end as zeros, so confirm before calling it damaged.
            try:
                with contextlib.closing(sqlite3.connect(self.path)) as conn:
                    verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
                if verdict == "ok":
                    problem = None
            except sqlite3.DatabaseError:
                pass
        if problem:
            raise self._damaged(problem)

    def _damaged(self, what: str) -> LibraryDamagedError:
        good = newest_good_backup(self.folder)
        if good is None:
            advice = "no good backup exists; move the file aside to start a new library"
        else:
            advice = (f"newest good backup: {good.name} in {self.folder / 'backups'}; "
                      "restore it (restore_backup)")
        return LibraryDamagedError(
            f"Freesound library {self.path} is damaged ({what}); it was left untouched; {advice}",
            path=self.path, problem=what, good_backup=good.name if good else None,
        )

    def _setup(self, durable: bool) -> None:
        conn = self._conn
        conn.execute("PRAGMA busy_timeout = 30000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise LibraryDamagedError(f"{self.path}: cannot switch to WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys = OFF")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if version > SCHEMA_VERSION:
            raise self._newer(version)
        if version < SCHEMA_VERSION:
            self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-read under the write lock: another process may have migrated meanwhile.
                version = self._conn.execute("PRAGMA user_version").fetchone()[0]
                for number in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[number].split(";"):
                        if statement.strip():
                            self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version = {number + 1}")
                if version == 0:
                    self._conn.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('created_at', ?)", (utc_now(),)
                    )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        return self._read("PRAGMA user_version")[0][0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> FreesoundLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- transactions
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic, durable unit of work; nests (only the outermost commits)."""
        with self._lock:
            outer = self._depth == 0
            try:
                if outer:
                    self._conn.execute("BEGIN IMMEDIATE")
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                if outer:
                    self._conn.execute("COMMIT")
            except BaseException as exc:
                if outer and self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError) and _is_damage(exc):
                    raise self._damaged(str(exc)) from None
                raise

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.DatabaseError as exc:
                if _is_damage(exc):
                    raise self._damaged(str(exc)) from None
                raise

    # ----------------------------------------------------------------- meta
    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # ----------------------------------------------------------------- samples and edges
    def has(self, sound_id: int) -> bool:
        return bool(self._read("SELECT 1 FROM samples WHERE id = ?", (sound_id,)))

    def seen_ids(self) -> set[int]:
        return {row[0] for row in self._read("SELECT id FROM seen")}

    def stored_ids(self) -> set[int]:
        return {row[0] for row in self._read("SELECT id FROM samples")}

    def add_sample(self, data: Mapping[str, Any], *, run_id: int | None = None) -> AddResult:
        """Store one sample (an API result dict) and materialise the links waiting for it.

        Idempotent: a sample already stored is left as it is (``added=False``).
        """
        row = normalise_sample(data)
        raw = json.dumps(dict(data), sort_keys=True, separators=(",", ":"))
        sound_id = row["id"]
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM samples WHERE id = ?", (sound_id,)).fetchone():
                return AddResult(sound_id, False, 0)
            columns = list(SAMPLE_COLUMNS) + ["raw", "added_at", "run_id"]
            values = [row[name] for name in SAMPLE_COLUMNS] + [raw, utc_now(), run_id]
            conn.execute(
                f"INSERT INTO samples ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' * len(columns))})",
                values,
            )
            conn.execute("DELETE FROM seen WHERE id = ?", (sound_id,))
            edges = self._materialise(conn, sound_id)
        return AddResult(sound_id, True, edges)

    def _materialise(self, conn: sqlite3.Connection, sound_id: int) -> int:
        waiting = conn.execute(
            "SELECT source, target, kind, weight, rank FROM pending_edges "
            "WHERE source = ?1 OR target = ?1",
            (sound_id,),
        ).fetchall()
        added = 0
        for source, target, kind, weight, rank in waiting:
            other = target if source == sound_id else source
            if other != sound_id and not conn.execute(
                "SELECT 1 FROM samples WHERE id = ?", (other,)
            ).fetchone():
                continue  # the other end is not stored yet: keep waiting
            cur = conn.execute(
                "INSERT OR IGNORE INTO edges VALUES (?, ?, ?, ?, ?)",
                (source, target, kind, weight, rank),
            )
            added += cur.rowcount
            conn.execute(
                "DELETE FROM pending_edges WHERE source = ? AND target = ? AND kind = ?",
                (source, target, kind),
            )
        return added

    def bulk_add(
        self,
        samples: Iterable[Mapping[str, Any]],
        edges: Iterable[tuple[int, int, str, float | None, int | None]] = (),
        *,
        run_id: int | None = None,
    ) -> int:
        """Many samples and edges in one transaction (imports, benchmarks); returns samples added.

        Samples already stored are skipped; edges whose ends are not both stored afterwards
        wait in the pending table, and their ends not stored join the seen list with their
        links counted, exactly as with add_edge.
        """
        columns = list(SAMPLE_COLUMNS) + ["raw", "added_at", "run_id"]
        insert = (f"INSERT OR IGNORE INTO samples ({', '.join(columns)}) "
                  f"VALUES ({', '.join('?' * len(columns))})")
        now = utc_now()
        with self.transaction() as conn:
            before = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
            rows = []
            for data in samples:
                row = normalise_sample(data)
                raw = json.dumps(dict(data), sort_keys=True, separators=(",", ":"))
                rows.append([row[name] for name in SAMPLE_COLUMNS] + [raw, now, run_id])
                if len(rows) >= 5000:
                    conn.executemany(insert, rows)
                    rows = []
            conn.executemany(insert, rows)
            conn.execute(
                "DELETE FROM seen WHERE EXISTS (SELECT 1 FROM samples WHERE samples.id = seen.id)"
            )
            conn.executemany(
                "INSERT OR IGNORE INTO pending_edges VALUES (?, ?, ?, ?, ?)", edges
            )
            both_stored = (
                "EXISTS (SELECT 1 FROM samples a WHERE a.id = pending_edges.source) AND "
                "EXISTS (SELECT 1 FROM samples b WHERE b.id = pending_edges.target)"
            )
            conn.execute(f"INSERT OR IGNORE INTO edges SELECT * FROM pending_edges "
                         f"WHERE {both_stored}")
            conn.execute(f"DELETE FROM pending_edges WHERE {both_stored}")
            # As add_edge: an end not stored is a seen id, and a seen id counts the stored
            # samples that link to it (links and best_rank order the crawl's candidates).
            conn.execute(
                "INSERT OR IGNORE INTO seen (id, first_seen) SELECT ends.id, ? FROM "
                "(SELECT source AS id FROM pending_edges UNION SELECT target FROM pending_edges)"
                " ends WHERE NOT EXISTS (SELECT 1 FROM samples s WHERE s.id = ends.id)", (now,))
            linking = ("FROM pending_edges p WHERE p.target = seen.id AND EXISTS "
                       "(SELECT 1 FROM samples s WHERE s.id = p.source)")
            conn.execute(f"UPDATE seen SET links = (SELECT count(*) {linking}), "
                         f"best_rank = (SELECT min(coalesce(p.rank, {1 << 30})) {linking}) "
                         "WHERE id IN (SELECT target FROM pending_edges)")
            after = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
        return after - before

    def add_edge(
        self, src: int, dst: int, kind: str = SIMILAR, weight: float | None = None,
        rank: int | None = None,
    ) -> bool:
        """Add an edge; True if stored now. An edge to an id not stored yet waits (pending)."""
        if src == dst:
            return False
        with self.transaction() as conn:
            stored = {
                row[0]
                for row in conn.execute("SELECT id FROM samples WHERE id IN (?, ?)", (src, dst))
            }
            if src in stored and dst in stored:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO edges VALUES (?, ?, ?, ?, ?)",
                    (src, dst, kind, weight, rank),
                )
                return cur.rowcount == 1
            cur = conn.execute(
                "INSERT OR IGNORE INTO pending_edges VALUES (?, ?, ?, ?, ?)",
                (src, dst, kind, weight, rank),
            )
            now = utc_now()
            for missing in (src, dst):
                if missing not in stored:
                    conn.execute(
                        "INSERT OR IGNORE INTO seen (id, first_seen) VALUES (?, ?)", (missing, now)
                    )
            if cur.rowcount == 1 and src in stored:
                conn.execute(
                    "UPDATE seen SET links = links + 1, "
                    "best_rank = min(coalesce(best_rank, ?1), ?1) WHERE id = ?2",
                    (rank if rank is not None else 1 << 30, dst),
                )
            return False

    def get(self, sound_id: int) -> dict[str, Any] | None:
        """The sample as the API returned it, plus `expanded`/`deleted`/`added_at`."""
        rows = self._read(
            "SELECT raw, expanded, deleted, added_at FROM samples WHERE id = ?", (sound_id,)
        )
        if not rows:
            return None
        raw, expanded, deleted, added_at = rows[0]
        data = json.loads(raw)
        data["_expanded"] = expanded == 1
        data["_deleted"] = bool(deleted)
        data["_added_at"] = added_at
        return data

    def raw_samples(self) -> list[str]:
        """Every stored sample's JSON as the API returned it, in id order."""
        return [row[0] for row in self._read("SELECT raw FROM samples ORDER BY id")]

    def edges_of(self, sound_id: int) -> list[tuple[int, int, str, float | None, int | None]]:
        return self._read(
            "SELECT source, target, kind, weight, rank FROM edges "
            "WHERE source = ?1 OR target = ?1 ORDER BY source, target, kind",
            (sound_id,),
        )

    # ----------------------------------------------------------------- audio
    def audio_wanted(self, quality: str, sample_rate: int | None,
                     limit: int | None = None) -> list[tuple[int, dict[str, Any]]]:
        """(id, previews) of stored samples with no audio made with these settings."""
        rows = self._read(
            "SELECT s.id, s.previews FROM samples s LEFT JOIN audio a ON a.id = s.id "
            "WHERE s.deleted = 0 AND (a.id IS NULL OR a.quality != ?1 "
            "OR a.sample_rate IS NOT ?2) ORDER BY s.id LIMIT ?3",
            (quality, sample_rate, -1 if limit is None else limit),
        )
        return [(sound_id, json.loads(previews) if previews else {}) for sound_id, previews
                in rows]

    def audio_of(self, sound_id: int) -> AudioFile | None:
        rows = self._read("SELECT id, path, bytes, sha256, quality, sample_rate FROM audio "
                          "WHERE id = ?", (sound_id,))
        return AudioFile(*rows[0]) if rows else None

    def audio_files(self) -> list[AudioFile]:
        return [AudioFile(*row) for row in self._read(
            "SELECT id, path, bytes, sha256, quality, sample_rate FROM audio ORDER BY id")]

    def record_audio(self, audio: AudioFile) -> None:
        """Remember a sample's audio file (one durable transaction; replaces an older one)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO audio VALUES (?, ?, ?, ?, ?, ?, ?)",
                (audio.id, audio.path, audio.bytes, audio.sha256, audio.quality,
                 audio.sample_rate, utc_now()),
            )

    def forget_audio(self, sound_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM audio WHERE id = ?", (sound_id,))

    # ----------------------------------------------------------------- crawl state
    def remember_seen(
        self, data: Mapping[str, Any] | None, sound_id: int, *, status: str = "candidate",
        note: str | None = None,
    ) -> None:
        """Remember an id we met but do not store now, with its list-answer metadata."""
        raw = json.dumps(dict(data), sort_keys=True, separators=(",", ":")) if data else None
        downloads = data.get("num_downloads") if data else None
        if not isinstance(downloads, int) or isinstance(downloads, bool):
            downloads = None
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM samples WHERE id = ?", (sound_id,)).fetchone():
                return
            conn.execute(
                "INSERT INTO seen (id, status, downloads, raw, first_seen, note) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "status = CASE WHEN seen.status IN ('deleted', 'malformed') THEN seen.status "
                "ELSE excluded.status END, "
                "downloads = coalesce(excluded.downloads, seen.downloads), "
                "raw = coalesce(excluded.raw, seen.raw), note = coalesce(excluded.note, seen.note)",
                (sound_id, status if raw or status != "candidate" else "known", downloads, raw,
                 utc_now(), note),
            )

    def best_candidates(self, limit: int = 200) -> list[tuple[int, int, dict[str, Any]]]:
        """Seen samples we can store without a request: (id, links, metadata), best first."""
        rows = self._read(
            "SELECT id, links, raw FROM seen WHERE status = 'candidate' "
            "ORDER BY links DESC, best_rank, downloads DESC, id LIMIT ?",
            (limit,),
        )
        return [(row[0], row[1], json.loads(row[2])) for row in rows]

    def seed_candidates(self, query: str, limit: int = 50) -> list[tuple[int, dict[str, Any]]]:
        """Remembered results of the seed search `query`: (id, metadata), most downloaded first."""
        rows = self._read(
            "SELECT id, raw FROM seen WHERE status = 'candidate' AND note = ? "
            "ORDER BY downloads DESC, id LIMIT ?", (f"seed:{query}", limit)
        )
        return [(sound_id, json.loads(raw)) for sound_id, raw in rows]

    def candidate_links(self, limit: int = 200) -> list[tuple[int, int]]:
        """(id, links) of the best seen samples, as best_candidates orders them, without their
        metadata: the crawl parses the JSON only of the one it takes."""
        return [(row[0], row[1]) for row in self._read(
            "SELECT id, links FROM seen WHERE status = 'candidate' "
            "ORDER BY links DESC, best_rank, downloads DESC, id LIMIT ?", (limit,)
        )]

    def seen_metadata(self, sound_id: int) -> dict[str, Any] | None:
        """The list-answer metadata remembered for a seen id (None: none remembered)."""
        rows = self._read("SELECT raw FROM seen WHERE id = ?", (sound_id,))
        return json.loads(rows[0][0]) if rows and rows[0][0] is not None else None

    def next_to_expand(self) -> int | None:
        """The most popular stored sample whose similar sounds were never fetched."""
        rows = self._read(
            "SELECT id FROM samples WHERE expanded = 0 "
            "ORDER BY num_downloads DESC, id LIMIT 1"
        )
        return rows[0][0] if rows else None

    def mark_expanded(self, sound_id: int, *, state: int = 1, note: str | None = None,
                      deleted: bool = False) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE samples SET expanded = ?, note = coalesce(?, note), "
                "deleted = max(deleted, ?) WHERE id = ?",
                (state, note, int(deleted), sound_id),
            )

    def mark_deleted(self, sound_id: int, note: str) -> None:
        """Deleted on Freesound: kept with its links, no longer asked about."""
        with self.transaction() as conn:
            conn.execute("UPDATE samples SET deleted = 1, note = ? WHERE id = ?",
                         (note, sound_id))

    def mark_seen_bad(self, sound_id: int, status: str, note: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO seen (id, status, first_seen, note) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET status = excluded.status, note = excluded.note",
                (sound_id, status, utc_now(), note),
            )

    def record_problem(self, what: str, *, sound_id: int | None = None,
                       run_id: int | None = None) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO problems (at, run_id, sound_id, what) VALUES (?, ?, ?, ?)",
                (utc_now(), run_id, sound_id, what[:2000]),
            )

    def problems(self, limit: int = 100) -> list[tuple[Any, ...]]:
        return self._read(
            "SELECT at, run_id, sound_id, what FROM problems ORDER BY id DESC LIMIT ?", (limit,)
        )

    def seed_state(self, key: str) -> tuple[int, bool, int] | None:
        rows = self._read("SELECT next_page, exhausted, stored FROM seeds WHERE key = ?", (key,))
        return (rows[0][0], bool(rows[0][1]), rows[0][2]) if rows else None

    def set_seed_state(self, key: str, query: str, filter_: str | None, sort: str | None,
                       next_page: int, exhausted: bool) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO seeds (key, query, filter, sort, next_page, exhausted) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "next_page = excluded.next_page, exhausted = excluded.exhausted",
                (key, query, filter_, sort, next_page, int(exhausted)),
            )

    # ----------------------------------------------------------------- runs
    def start_run(self) -> int:
        """Record a new run. Only `grow` calls this, under the grow lock: a run still marked
        running belonged to a process that died (SIGKILL, power cut)."""
        with self.transaction() as conn:
            conn.execute("UPDATE runs SET status = 'killed' WHERE status = 'running'")
            cur = conn.execute(
                "INSERT INTO runs (started_at, status) VALUES (?, 'running')", (utc_now(),)
            )
            return int(cur.lastrowid or 0)

    def update_run(self, run_id: int, *, samples_added: int, requests: int,
                   status: str | None = None, finished: bool = False) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET samples_added = ?, requests = ?, status = coalesce(?, status) "
                "WHERE id = ?",
                (samples_added, requests, status, run_id),
            )
            if finished:
                counts = self._counts(conn)
                conn.execute(
                    "UPDATE runs SET finished_at = ?, samples_total = ?, edges_total = ?, "
                    "seen_total = ?, db_bytes = ? WHERE id = ?",
                    (utc_now(), counts["samples"], counts["edges"], counts["seen"],
                     self.db_bytes(), run_id),
                )

    def history(self) -> list[dict[str, Any]]:
        rows = self._read(
            "SELECT id, started_at, finished_at, status, samples_added, requests, samples_total, "
            "edges_total, seen_total, db_bytes FROM runs ORDER BY id"
        )
        keys = ("run", "started_at", "finished_at", "status", "samples_added", "requests",
                "samples", "edges", "seen", "db_bytes")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # ----------------------------------------------------------------- figures
    def db_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.stat(f"{self.path}{suffix}").st_size
            except FileNotFoundError:
                pass
        return total

    def _counts(self, conn: sqlite3.Connection) -> dict[str, int]:
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "samples": one("SELECT count(*) FROM samples"),
            "edges": one("SELECT count(*) FROM edges"),
            "expanded": one("SELECT count(*) FROM samples WHERE expanded != 0"),
            "frontier": one("SELECT count(*) FROM samples WHERE expanded = 0"),
            "seen": one("SELECT count(*) FROM seen"),
            "pending_edges": one("SELECT count(*) FROM pending_edges"),
            "deleted": one("SELECT count(*) FROM samples WHERE deleted != 0"),
            "problems": one("SELECT count(*) FROM problems"),
            "audio": one("SELECT count(*) FROM audio"),
            "audio_bytes": one("SELECT coalesce(sum(bytes), 0) FROM audio"),
        }

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One read transaction, so several queries see the same state."""
        with self._lock:
            own = not self._conn.in_transaction
            try:
                if own:
                    self._conn.execute("BEGIN")
                try:
                    yield self._conn
                finally:
                    if own:
                        self._conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                if _is_damage(exc):
                    raise self._damaged(str(exc)) from None
                raise

    def stats(self) -> LibraryStats:
        with self._snapshot() as conn:
            counts = self._counts(conn)
            runs = conn.execute(
                "SELECT count(*), max(coalesce(finished_at, started_at)) FROM runs"
            ).fetchone()
        return LibraryStats(**counts, db_bytes=self.db_bytes(), runs=runs[0], last_run=runs[1])

    def verify(self) -> list[str]:
        """Every problem found (empty list: all good): integrity, dangling edges, counts."""
        problems: list[str] = []
        rows = self._read("PRAGMA integrity_check")
        if [r[0] for r in rows] != ["ok"]:
            problems += [f"integrity: {r[0]}" for r in rows[:20]]
        checks = {
            "edges whose source is not stored":
                "SELECT count(*) FROM edges e WHERE NOT EXISTS "
                "(SELECT 1 FROM samples s WHERE s.id = e.source)",
            "edges whose target is not stored":
                "SELECT count(*) FROM edges e WHERE NOT EXISTS "
                "(SELECT 1 FROM samples s WHERE s.id = e.target)",
            "self-loops": "SELECT count(*) FROM edges WHERE source = target",
            "ids both stored and seen":
                "SELECT count(*) FROM seen "
                "WHERE EXISTS (SELECT 1 FROM samples s WHERE s.id = seen.id)",
            "pending edges whose ends are both stored":
                "SELECT count(*) FROM pending_edges p "
                "WHERE EXISTS (SELECT 1 FROM samples s WHERE s.id = p.source) "
                "AND EXISTS (SELECT 1 FROM samples s WHERE s.id = p.target)",
            "samples whose raw JSON does not parse":
                "SELECT count(*) FROM samples WHERE json_valid(raw) = 0",
            "samples whose raw id differs":
                "SELECT count(*) FROM samples WHERE json_valid(raw) AND json_extract(raw, '$.id') != id",  # noqa: E501 (one literal: mutmut's names stay)
            "audio files of samples not stored":
                "SELECT count(*) FROM audio a WHERE NOT EXISTS "
                "(SELECT 1 FROM samples s WHERE s.id = a.id)",
        }
        for label, sql in checks.items():
            count = self._read(sql)[0][0]
            if count:
                problems.append(f"{count} {label}")
        if self.schema_version != SCHEMA_VERSION:
            problems.append(f"schema version {self.schema_version}, expected {SCHEMA_VERSION}")
        return problems

    # ----------------------------------------------------------------- graph
    def graph(self, derived: bool = False) -> nx.DiGraph:
        """The library as a networkx DiGraph: nodes are sample ids with a few attributes.

        ``derived=True`` adds ``same_user`` and ``same_pack`` edges computed from the fields:
        each sample is linked (both ways) to the next sample of the same user / pack in id
        order -- a chain, O(N) edges with the same connectivity as the seed's all-pairs
        cliques, which grow quadratically with a prolific user. An existing ``similar`` edge
        between two samples is kept as it is.
        """
        import networkx as nx  # ~0.3 s to import: only graph() needs it

        graph = nx.DiGraph()
        # A million small dicts and no cycles among them: the cyclic GC would only rescan the
        # growing heap again and again (about 40% of the time at 1M edges).
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._fill_graph(graph, derived)
        finally:
            if collecting:
                gc.enable()
        return graph

    def _fill_graph(self, graph: nx.DiGraph, derived: bool) -> None:
        with self._snapshot() as conn:
            cur = conn.execute(
                "SELECT id, name, username, pack_id, num_downloads, duration, license, "
                "expanded FROM samples"
            )
            graph.add_nodes_from(
                (r[0], {"name": r[1], "username": r[2], "pack": r[3], "downloads": r[4],
                        "duration": r[5], "license": r[6], "expanded": r[7] == 1})
                for r in cur
            )
            cur = conn.execute("SELECT source, target, kind, weight, rank FROM edges")
            # Filled straight into networkx's adjacency dicts, not through add_edges_from: the
            # public call copies every edge's attribute dict and checks both ends again, 15-25%
            # slower for the whole graph() (20k samples, 272k edges: 0.38 s here, 0.48 s with
            # add_edges_from); B7 allows 5%.
            succ, pred = graph._succ, graph._pred
            for source, target, kind, weight, rank in cur:
                if source not in succ or target not in succ:  # not in a verified library
                    graph.add_nodes_from((source, target))
                data = {"kind": kind, "weight": weight, "rank": rank}
                succ[source][target] = data
                pred[target][source] = data
            if derived:
                for kind, column in ((SAME_USER, "username"), (SAME_PACK, "pack_id")):
                    cur = conn.execute(
                        f"SELECT {column}, id FROM samples WHERE {column} IS NOT NULL "
                        f"ORDER BY {column}, id"
                    )
                    previous_key, previous_id = None, None
                    for key, sound_id in cur:
                        if key == previous_key:
                            for a, b in ((previous_id, sound_id), (sound_id, previous_id)):
                                if not graph.has_edge(a, b):
                                    graph.add_edge(a, b, kind=kind, weight=1.0, rank=None)
                        previous_key, previous_id = key, sound_id

    # ----------------------------------------------------------------- the map
    def map_rows(self) -> list[tuple[Any, ...]]:
        """What the map shows of every sample, in id order: (id, name, username, license,
        pack_id, pack_name, tags JSON, num_downloads, duration, previews JSON)."""
        return self._read(
            "SELECT id, name, username, license, pack_id, pack_name, tags, num_downloads, "
            "duration, previews FROM samples ORDER BY id"
        )

    def edge_pairs(self) -> list[tuple[int, int]]:
        """(source, target) of every stored edge, in key order."""
        return self._read("SELECT source, target FROM edges ORDER BY source, target, kind")

    def positions(self) -> dict[int, tuple[float, float]]:
        """The map's stored position of every sample that has one."""
        return {row[0]: (row[1], row[2]) for row in self._read(
            "SELECT p.id, p.x, p.y FROM positions p JOIN samples s ON s.id = p.id")}

    def save_positions(self, rows: Iterable[tuple[int, float, float]], *,
                       replace_all: bool = False) -> None:
        """Store map positions in one transaction; `replace_all` forgets every other one."""
        with self.transaction() as conn:
            if replace_all:
                conn.execute("DELETE FROM positions")
            conn.executemany("INSERT OR REPLACE INTO positions VALUES (?, ?, ?)", rows)

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file (skipped quietly while readers hold it)."""
        with self._lock:
            if not self._conn.in_transaction:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    # ----------------------------------------------------------------- backup support
    def backup_to(self, target: Path) -> None:
        """A consistent snapshot via the SQLite online backup API (readers and writers go on)."""
        with self._lock:
            dest = sqlite3.connect(target)
            try:
                self._conn.backup(dest)
                dest.execute("PRAGMA journal_mode = DELETE")
            finally:
                dest.close()

    # ----------------------------------------------------------------- export and merge
    def interchange(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """Everything a merge needs, from one snapshot, in a stable order: ("sample", (id,
        added_at, expanded, deleted, note, raw)) by id, then ("edge", (source, target, kind,
        weight, rank)) and ("pending", ...) by (source, target, kind), then ("seen", (id,
        status, first_seen, note, raw)) by id. ``links``, ``best_rank`` and ``downloads`` of
        the seen ids are left out: a merge computes them again from the rest."""
        with self._snapshot() as conn:
            queries = (
                ("sample", "SELECT id, added_at, expanded, deleted, note, raw FROM samples "
                           "ORDER BY id"),
                ("edge", "SELECT source, target, kind, weight, rank FROM edges "
                         "ORDER BY source, target, kind"),
                ("pending", "SELECT source, target, kind, weight, rank FROM pending_edges "
                            "ORDER BY source, target, kind"),
                ("seen", "SELECT id, status, first_seen, note, raw FROM seen ORDER BY id"),
            )
            for kind, query in queries:
                for row in conn.execute(query):
                    yield kind, row

    def graph_rows(self, derived: bool = False) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """graph()'s nodes and edges as rows, streamed from one snapshot (no networkx: an
        export of 100k samples and 1M edges stays well under a GB): ("node", (id, name,
        username, pack, downloads, duration, license, expanded)) by id, then ("edge",
        (source, target, kind, weight, rank)) by (source, target, kind), the derived ones
        (``derived=True``) chosen exactly as graph() chooses them."""
        with self._snapshot() as conn:
            for row in conn.execute(
                "SELECT id, name, username, pack_id, num_downloads, duration, license, "
                "expanded = 1 FROM samples ORDER BY id"
            ):
                yield "node", (*row[:7], bool(row[7]))
            stored = conn.execute("SELECT source, target, kind, weight, rank FROM edges "
                                  "ORDER BY source, target, kind")
            if not derived:
                for row in stored:
                    yield "edge", row
                return
            extra = sorted(self._derived_rows(conn))
            for row in heapq.merge(stored, extra, key=lambda r: (r[0], r[1], r[2])):
                yield "edge", row

    def _derived_rows(self, conn: sqlite3.Connection) -> Iterator[tuple[Any, ...]]:
        """graph(derived=True)'s same_user / same_pack chains: one edge per ordered pair, a
        pair that has a stored edge (or an earlier derived one) skipped."""
        taken: set[tuple[int, int]] = set()
        has_stored = "SELECT 1 FROM edges WHERE source = ? AND target = ? LIMIT 1"
        for kind, column in ((SAME_USER, "username"), (SAME_PACK, "pack_id")):
            cur = conn.execute(f"SELECT {column}, id FROM samples WHERE {column} IS NOT NULL "
                               f"ORDER BY {column}, id")
            previous_key, previous_id = None, None
            for key, sound_id in cur.fetchall():
                if key == previous_key:
                    for pair in ((previous_id, sound_id), (sound_id, previous_id)):
                        if pair not in taken and not conn.execute(has_stored, pair).fetchone():
                            taken.add(pair)
                            yield (*pair, kind, 1.0, None)
                previous_key, previous_id = key, sound_id

    def last_added(self) -> str | None:
        """When the newest sample was stored (UTC, ISO 8601); None for an empty library."""
        return self._read("SELECT max(added_at) FROM samples")[0][0]

    def merge_staged(self, staging: Path) -> dict[str, int]:
        """Join the staged library in the SQLite file `staging` (made by `create_staging` and
        `stage_rows`) into this one, in one transaction recorded as a "merged" run; returns
        the counts added. The join is commutative, associative and idempotent (the rules are
        `_sample_join`'s, `_EDGE_JOIN`'s and `_seen_join`'s), so merge order and repeats do
        not change the result."""
        with self._lock:
            self._conn.execute("ATTACH DATABASE ? AS staged", (str(staging),))
            try:
                with self.transaction() as conn:
                    return self._merge_attached(conn)
            finally:
                self._conn.execute("DETACH DATABASE staged")

    def _merge_attached(self, conn: sqlite3.Connection) -> dict[str, int]:
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        before = self._counts(conn)
        added = one("SELECT count(*) FROM staged.samples s WHERE NOT EXISTS "
                    "(SELECT 1 FROM main.samples t WHERE t.id = s.id)")
        updated = one("SELECT count(*) FROM staged.samples s JOIN main.samples t ON t.id = s.id "
                      "WHERE (s.added_at, s.raw) > (t.added_at, t.raw) AND s.raw != t.raw")
        new_seen = one("SELECT count(*) FROM staged.seen s WHERE NOT EXISTS "
                       "(SELECT 1 FROM main.samples t WHERE t.id = s.id) AND NOT EXISTS "
                       "(SELECT 1 FROM main.seen t WHERE t.id = s.id) AND NOT EXISTS "
                       "(SELECT 1 FROM staged.samples t WHERE t.id = s.id)")
        run_id = self.start_run()
        columns = [*SAMPLE_COLUMNS, "raw", "added_at", "expanded", "deleted", "note"]
        conn.execute(
            f"INSERT INTO main.samples ({', '.join(columns)}, run_id) "
            f"SELECT {', '.join(columns)}, ? FROM staged.samples WHERE true "
            f"{_sample_join('samples')}",
            (run_id,))
        conn.execute("DELETE FROM main.seen WHERE EXISTS "
                     "(SELECT 1 FROM main.samples s WHERE s.id = seen.id)")
        conn.execute(
            "INSERT INTO main.seen (id, status, downloads, raw, first_seen, note) "
            "SELECT id, status, downloads, raw, first_seen, note FROM staged.seen s "
            f"WHERE NOT EXISTS (SELECT 1 FROM main.samples t WHERE t.id = s.id) "
            f"{_seen_join('seen')}")
        # The source's edges (and pending edges) go where they belong now: between two stored
        # samples, an edge; else pending. Then this library's pending edges whose ends the
        # source stored become edges. (Routing them all through pending costs a delete per edge.)
        for table in ("edges", "pending"):
            ends = (f"EXISTS (SELECT 1 FROM main.samples a WHERE a.id = staged.{table}.source) "
                    f"AND EXISTS (SELECT 1 FROM main.samples b WHERE b.id = "
                    f"staged.{table}.target)")
            conn.execute(f"INSERT INTO main.edges SELECT * FROM staged.{table} WHERE {ends} "
                         f"{_EDGE_JOIN.format(table='edges')}")
            conn.execute(f"INSERT INTO main.pending_edges SELECT * FROM staged.{table} "
                         f"WHERE NOT ({ends}) {_EDGE_JOIN.format(table='pending_edges')}")
        both_stored = (
            "EXISTS (SELECT 1 FROM main.samples a WHERE a.id = pending_edges.source) AND "
            "EXISTS (SELECT 1 FROM main.samples b WHERE b.id = pending_edges.target)"
        )
        conn.execute(f"INSERT INTO main.edges SELECT * FROM main.pending_edges "
                     f"WHERE {both_stored} {_EDGE_JOIN.format(table='edges')}")
        conn.execute(f"DELETE FROM main.pending_edges WHERE {both_stored}")
        # A seen id's links and best rank follow from the pending edges stored samples hold to
        # it (add_edge keeps them so one edge at a time); counted again for all, they are a
        # function of the merged tables, whichever library they came from.
        linking = ("FROM main.pending_edges p WHERE p.target = seen.id AND EXISTS "
                   "(SELECT 1 FROM main.samples s WHERE s.id = p.source)")
        conn.execute(f"UPDATE main.seen SET links = (SELECT count(*) {linking}), "
                     f"best_rank = (SELECT min(coalesce(p.rank, {1 << 30})) {linking})")
        after = self._counts(conn)
        self.update_run(run_id, samples_added=added, requests=0, status="merged",
                        finished=True)
        return {"samples": added, "updated": updated, "edges": after["edges"] - before["edges"],
                "seen": new_seen, "expanded": after["expanded"] - before["expanded"],
                "pending_edges": after["pending_edges"] - before["pending_edges"]}


# ----------------------------------------------------------------- merge: the join rules
# Each rule is an upsert clause whose result does not depend on which row came first, so a
# merge is commutative, associative and idempotent. Samples: the newer metadata wins, newer
# meaning the later ``added_at`` (when a library stored it, from an answer fetched then; the
# raw JSON breaks a tie); expansion and deletion marks are kept (the larger); a note is kept
# (where both have one, the greater text).
def _either(column: str, table: str, pick: str) -> str:
    return (f"CASE WHEN {table}.{column} IS NULL THEN excluded.{column} "
            f"WHEN excluded.{column} IS NULL THEN {table}.{column} "
            f"ELSE {pick}({table}.{column}, excluded.{column}) END")


def _sample_join(table: str) -> str:
    newer = f"(excluded.added_at, excluded.raw) > ({table}.added_at, {table}.raw)"
    metadata = [c for c in SAMPLE_COLUMNS if c != "id"] + ["raw", "added_at"]
    sets = [f"{c} = CASE WHEN {newer} THEN excluded.{c} ELSE {table}.{c} END" for c in metadata]
    sets += [f"expanded = max({table}.expanded, excluded.expanded)",
             f"deleted = max({table}.deleted, excluded.deleted)",
             f"note = {_either('note', table, 'max')}"]
    return "ON CONFLICT (id) DO UPDATE SET " + ", ".join(sets)


# Edges (and pending edges): one per (source, target, kind); the best rank and the highest
# weight either library saw.
_EDGE_JOIN = (
    "ON CONFLICT (source, target, kind) DO UPDATE SET "
    "weight = CASE WHEN {table}.weight IS NULL THEN excluded.weight "
    "WHEN excluded.weight IS NULL THEN {table}.weight "
    "ELSE max({table}.weight, excluded.weight) END, "
    "rank = CASE WHEN {table}.rank IS NULL THEN excluded.rank "
    "WHEN excluded.rank IS NULL THEN {table}.rank ELSE min({table}.rank, excluded.rank) END"
)


def _status_rank(value: str) -> str:
    return f"CASE {value} WHEN 'known' THEN 0 WHEN 'candidate' THEN 1 ELSE 2 END"


def _seen_join(table: str) -> str:
    """Seen ids: the strongest status (a deleted or malformed mark stays, as in
    remember_seen; then candidate, then known); the list answer with more downloads (a count
    that only grows, so the later answer); the first first_seen; a note as for samples."""
    stronger = (f"({_status_rank('excluded.status')}, excluded.status) > "
                f"({_status_rank(table + '.status')}, {table}.status)")
    newer = (f"(coalesce(excluded.downloads, -1), coalesce(excluded.raw, '')) > "
             f"(coalesce({table}.downloads, -1), coalesce({table}.raw, ''))")
    return ("ON CONFLICT (id) DO UPDATE SET "
            f"status = CASE WHEN {stronger} THEN excluded.status ELSE {table}.status END, "
            f"downloads = CASE WHEN {newer} THEN excluded.downloads ELSE {table}.downloads END, "
            f"raw = CASE WHEN {newer} THEN excluded.raw ELSE {table}.raw END, "
            f"first_seen = min({table}.first_seen, excluded.first_seen), "
            f"note = {_either('note', table, 'max')}")


_STAGING_SCHEMA = f"""
    CREATE TABLE samples (id INTEGER PRIMARY KEY, {', '.join(SAMPLE_COLUMNS[1:])},
        raw TEXT NOT NULL, added_at TEXT NOT NULL, expanded INTEGER NOT NULL,
        deleted INTEGER NOT NULL, note TEXT);
    CREATE TABLE edges (source INTEGER NOT NULL, target INTEGER NOT NULL, kind TEXT NOT NULL,
        weight REAL, rank INTEGER, PRIMARY KEY (source, target, kind)) WITHOUT ROWID;
    CREATE TABLE pending (source INTEGER NOT NULL, target INTEGER NOT NULL, kind TEXT NOT NULL,
        weight REAL, rank INTEGER, PRIMARY KEY (source, target, kind)) WITHOUT ROWID;
    CREATE TABLE seen (id INTEGER PRIMARY KEY, status TEXT NOT NULL, downloads INTEGER,
        raw TEXT, first_seen TEXT NOT NULL, note TEXT);
"""

def _stage_sql(kind: str) -> str:
    """The statement that adds a row of `kind` to a staging file, joined by the merge's rules.
    Built when used, not at import: the rules are then the code's as it runs (mutation tests
    switch a mutant on after import), and building them costs microseconds."""
    if kind == "sample":
        return (f"INSERT INTO samples ({', '.join(SAMPLE_COLUMNS)}, raw, added_at, expanded, "
                f"deleted, note) VALUES ({', '.join('?' * (len(SAMPLE_COLUMNS) + 5))}) "
                f"{_sample_join('samples')}")
    if kind == "seen":
        return f"INSERT INTO seen VALUES (?, ?, ?, ?, ?, ?) {_seen_join('seen')}"
    table = {"edge": "edges", "pending": "pending"}[kind]
    return f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?) {_EDGE_JOIN.format(table=table)}"


def create_staging(path: Path) -> sqlite3.Connection:
    """A scratch SQLite file to gather a merge source in (no durability: it is thrown away)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    for statement in _STAGING_SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    return conn


def stage_rows(conn: sqlite3.Connection, kind: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """Add rows of one kind to a staging file; an id or edge met twice is joined by the same
    rules as the merge. Sample rows: SAMPLE_COLUMNS' values, raw, added_at, expanded, deleted,
    note; seen rows: id, status, downloads, raw, first_seen, note."""
    conn.executemany(_stage_sql(kind), rows)
