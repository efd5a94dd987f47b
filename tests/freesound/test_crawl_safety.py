"""The crawl's unit of work: an expansion's edges and its `expanded` mark commit together.

A kill between two commits is the chaos test's business; this one reads every statement the
library's connection runs (sqlite3's trace callback: the real SQL, as executed) and checks
what each COMMIT covers. Were the mark committed before the edges it stands for, a kill in
between would lose those edges for good: a sample marked expanded is never asked about again.
"""

from __future__ import annotations

import re
import sqlite3
from collections import defaultdict

from easy_oww.freesound import GrowOptions, grow
from tests.freesound.conftest import KEY, sql

MARK = re.compile(r"UPDATE samples SET expanded = 1\b.* WHERE id = (\d+)$", re.S)
EDGE = re.compile(r"INSERT OR IGNORE INTO (?:pending_)?edges VALUES \((\d+), \d+, 'similar'")


def test_each_expansion_commits_its_edges_with_its_mark(fs, env, monkeypatch):
    statements: dict[int, list[str]] = defaultdict(list)
    real_connect = sqlite3.connect

    def traced(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(statements[id(conn)].append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    grow(env["library"], KEY, GrowOptions(samples=80), base_url=fs.base_url,
         per_minute=100000, backoff=0.001, handle_signals=False)
    monkeypatch.undo()

    transactions: list[list[str]] = []
    for log in statements.values():
        current: list[str] | None = None
        for statement in log:
            if statement.startswith("BEGIN"):
                current = []
            elif statement in ("COMMIT", "ROLLBACK"):
                if current is not None and statement == "COMMIT":
                    transactions.append(current)
                current = None
            elif current is not None:
                current.append(statement)
    marked: dict[int, list[str]] = {}
    for tx in transactions:
        for statement in tx:
            if match := MARK.match(statement):
                marked[int(match.group(1))] = tx
    assert len(marked) >= 3  # the crawl expanded samples
    for sound_id, tx in marked.items():
        edges = [s for s in tx if (m := EDGE.match(s)) and int(m.group(1)) == sound_id]
        assert edges, f"sample {sound_id} was marked expanded in a commit without its edges"
    for sound_id in marked:  # and they are there now (stored, or waiting for their target)
        rows = sql(env["library"], "SELECT (SELECT count(*) FROM edges WHERE source = ?1) + "
                   "(SELECT count(*) FROM pending_edges WHERE source = ?1)", (sound_id,))
        assert rows[0][0] > 0


def test_a_sample_is_reported_only_once_another_process_can_read_it(fs, env):
    """"Printed means stored": each batch handed to on_commit is already committed, seen by a
    separate read-only connection (as `freesound status` in another process would)."""
    from tests.freesound.conftest import sql

    reported: list[int] = []

    def on_commit(batch: list[tuple[int, int]]) -> None:
        ids = [sound_id for sound_id, _ in batch]
        marks = ",".join("?" * len(ids))
        found = sql(env["library"], f"SELECT id FROM samples WHERE id IN ({marks})", ids)
        assert sorted(row[0] for row in found) == sorted(ids)
        reported.extend(ids)

    grow(env["library"], KEY, GrowOptions(samples=30, checkpoint_interval=7),
         base_url=fs.base_url, per_minute=100000, backoff=0.001, on_commit=on_commit,
         handle_signals=False)
    assert len(reported) == 30 and len(set(reported)) == 30
