"""Names on disk and the SQLite schema of the library: shared by the store and the backups,
so neither has to import the other for them. Table notes are in store.py's docstring."""

from __future__ import annotations

DB_NAME = "freesound_library.db"
BACKUPS_DIR = "backups"
LOCK_NAME = ".grow.lock"

SIMILAR = "similar"
SAME_USER = "same_user"
SAME_PACK = "same_pack"

MIGRATIONS: list[str] = [
    # version 1
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE samples (
        id INTEGER PRIMARY KEY,
        name TEXT, tags TEXT, description TEXT, duration REAL, username TEXT,
        license TEXT, pack_id INTEGER, pack TEXT, pack_name TEXT, created TEXT,
        channels INTEGER, filesize INTEGER, bitrate REAL, bitdepth INTEGER, samplerate REAL,
        num_downloads INTEGER, avg_rating REAL, num_ratings INTEGER, num_comments INTEGER,
        previews TEXT, images TEXT,
        raw TEXT NOT NULL,
        added_at TEXT NOT NULL,
        run_id INTEGER,
        expanded INTEGER NOT NULL DEFAULT 0,
        deleted INTEGER NOT NULL DEFAULT 0,
        note TEXT
    );
    CREATE INDEX samples_frontier ON samples (expanded, num_downloads DESC, id);
    CREATE TABLE edges (
        source INTEGER NOT NULL, target INTEGER NOT NULL, kind TEXT NOT NULL,
        weight REAL, rank INTEGER,
        PRIMARY KEY (source, target, kind)
    ) WITHOUT ROWID;
    CREATE TABLE seen (
        id INTEGER PRIMARY KEY,
        status TEXT NOT NULL DEFAULT 'known',
        links INTEGER NOT NULL DEFAULT 0,
        best_rank INTEGER,
        downloads INTEGER,
        raw TEXT,
        first_seen TEXT NOT NULL,
        note TEXT
    );
    CREATE INDEX seen_priority ON seen (status, links DESC, best_rank, downloads DESC, id);
    CREATE TABLE pending_edges (
        source INTEGER NOT NULL, target INTEGER NOT NULL, kind TEXT NOT NULL,
        weight REAL, rank INTEGER,
        PRIMARY KEY (source, target, kind)
    ) WITHOUT ROWID;
    CREATE INDEX pending_target ON pending_edges (target);
    CREATE TABLE seeds (
        key TEXT PRIMARY KEY, query TEXT NOT NULL, filter TEXT, sort TEXT,
        next_page INTEGER NOT NULL DEFAULT 1, exhausted INTEGER NOT NULL DEFAULT 0,
        stored INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, status TEXT,
        samples_added INTEGER NOT NULL DEFAULT 0, requests INTEGER NOT NULL DEFAULT 0,
        samples_total INTEGER, edges_total INTEGER, seen_total INTEGER, db_bytes INTEGER
    );
    CREATE TABLE problems (
        id INTEGER PRIMARY KEY, at TEXT NOT NULL, run_id INTEGER, sound_id INTEGER,
        what TEXT NOT NULL
    );
    """,
    # version 2
    """
    CREATE TABLE audio (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        quality TEXT NOT NULL,
        sample_rate INTEGER,
        fetched_at TEXT NOT NULL
    );
    """,
    # version 3: where the map (`freesound visualize`) drew each sample, kept so that a later
    # map places only the new samples and leaves the rest where the user last saw them
    """
    CREATE TABLE IF NOT EXISTS positions (
        id INTEGER PRIMARY KEY,
        x REAL NOT NULL,
        y REAL NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
