"""The store's answers checked exactly, on real SQLite files: what verify reports, the graph's
edges and attributes, the seen list, a damaged file's diagnosis, batch imports. Each test
pins a behaviour that a surviving mutant of store.py changed (docs/mutation.md)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import gc
import json
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from easy_oww.freesound.backup import create_backup
from easy_oww.freesound.errors import BadInputError, LibraryDamagedError, LibraryVersionError
from easy_oww.freesound.merge import merge_library
from easy_oww.freesound.store import (
    DB_NAME,
    SAMPLE_COLUMNS,
    SCHEMA_VERSION,
    AudioFile,
    FreesoundLibrary,
    _is_damage,
    fold_wal,
    library_exists,
)
from tests.freesound.conftest import make_sound, sql


def _raw_sql(library_dir, *statements):
    """Damage written straight into the file, as another program or a bad disk would."""
    with sqlite3.connect(library_dir / DB_NAME) as conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


def _compact(data):
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


# ----------------------------------------------------------------------------- verify
def test_verify_names_each_kind_of_damage_with_its_count(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.bulk_add([make_sound(i) for i in range(1, 6)], [(1, 2, "similar", 0.5, 1)])
        assert lib.verify() == []
    _raw_sql(
        library_dir,
        "INSERT INTO edges VALUES (90, 1, 'similar', 1.0, 1)",
        "INSERT INTO edges VALUES (91, 1, 'similar', 1.0, 1)",
        "INSERT INTO edges VALUES (2, 92, 'similar', 1.0, 1)",
        "INSERT INTO edges VALUES (3, 3, 'similar', 1.0, 1)",
        "INSERT INTO seen (id, first_seen) VALUES (4, '2020-01-01T00:00:00Z')",
        "INSERT INTO pending_edges VALUES (4, 5, 'similar', 1.0, 1)",
        "UPDATE samples SET raw = json_set(raw, '$.id', 77) WHERE id = 5",
        "INSERT INTO audio VALUES (93, 'a/93.flac', 10, 'ab', 'hq', 16000, 'now')",
    )
    with FreesoundLibrary(library_dir) as lib:
        assert lib.verify() == [
            "2 edges whose source is not stored",
            "1 edges whose target is not stored",
            "1 self-loops",
            "1 ids both stored and seen",
            "1 pending edges whose ends are both stored",
            "1 samples whose raw id differs",
            "1 audio files of samples not stored",
        ]


def test_verify_names_raw_json_that_does_not_parse(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(1))
        lib.add_sample(make_sound(2))
    _raw_sql(library_dir, "UPDATE samples SET raw = '{\"id\": 2' WHERE id = 2")
    with FreesoundLibrary(library_dir) as lib:
        # one bad row, not a damaged file (the raw-id check used to fail on it, and verify
        # then told the user to restore a backup or move the whole library aside)
        assert lib.verify() == ["1 samples whose raw JSON does not parse"]


def test_verify_reports_a_schema_version_behind_the_code(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
        assert lib.verify() == [f"schema version {SCHEMA_VERSION - 1}, expected {SCHEMA_VERSION}"]


def test_verify_reports_damaged_pages_and_nothing_else(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.bulk_add([make_sound(i) for i in range(1, 30)])
        lib._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        first = lib._read("PRAGMA page_count")[0][0]
        for number in range(300):  # the problems table's own pages, which no other check reads
            lib.record_problem("x" * 200 + str(number))
        lib._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        last = lib._read("PRAGMA page_count")[0][0]
    db = library_dir / DB_NAME
    data = bytearray(db.read_bytes())
    for page in range(first + 1, last - 1):
        start = (page - 1) * 4096
        data[start + 8:start + 4096] = b"\xff" * (4096 - 8)
    db.write_bytes(bytes(data))
    with FreesoundLibrary(library_dir) as lib:  # the header and the size are right: it opens
        problems = lib.verify()
    assert len(problems) == 1, problems
    assert problems[0].startswith("integrity: *** in database main ***")


# ----------------------------------------------------------------------------- a damaged file
def _library_file(library_dir, count=300, page_size=None):
    with FreesoundLibrary(library_dir) as lib:
        if page_size:
            lib._conn.execute(f"PRAGMA page_size = {page_size}")
            lib._conn.execute("PRAGMA journal_mode = DELETE")
            lib._conn.execute("VACUUM")
            lib._conn.execute("PRAGMA journal_mode = WAL")
        lib.bulk_add([make_sound(i) for i in range(1, count + 1)])
        lib._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return library_dir / DB_NAME


def _problem_opening(library_dir):
    with pytest.raises(LibraryDamagedError) as info:
        FreesoundLibrary(library_dir)
    return info.value.problem


@pytest.mark.parametrize("content", [b"this is not a database" * 50, b"SQLite format 3\x00" * 3])
def test_a_file_without_the_sqlite_header_is_named_as_such(library_dir, content):
    db = _library_file(library_dir, count=1)
    db.write_bytes(content)
    assert _problem_opening(library_dir) == "not an SQLite database (bad header)"
    assert db.read_bytes() == content


@pytest.mark.parametrize("page_size", [4096, 65536])
def test_a_truncated_file_is_named_with_its_size_and_the_headers(library_dir, page_size):
    db = _library_file(library_dir, page_size=page_size)
    data = db.read_bytes()
    assert int.from_bytes(data[16:18], "big") == (1 if page_size == 65536 else page_size)
    pages = int.from_bytes(data[28:32], "big")
    assert pages * page_size == len(data) and pages >= 3
    kept = (pages // 2) * page_size + 100
    db.write_bytes(data[:kept])
    assert _problem_opening(library_dir) == (
        f"truncated ({kept} bytes, the header says {pages * page_size})")


def test_a_full_length_file_is_not_called_truncated(library_dir):
    """A whole file whose interior is damaged opens (verify reports it), not refused as cut."""
    db = _library_file(library_dir)
    data = bytearray(db.read_bytes())
    data[-4096 + 8:] = b"\xff" * (4096 - 8)
    db.write_bytes(bytes(data))
    with FreesoundLibrary(library_dir) as lib:
        assert lib.path == db


def test_a_header_whose_page_count_is_stale_is_not_trusted(library_dir):
    """SQLite before 3.7.0 did not keep the page count: a header whose 'version-valid-for'
    differs from its change counter has a count to ignore (SQLite ignores it too)."""
    db = _library_file(library_dir, count=50)
    data = bytearray(db.read_bytes())
    data[28:32] = (10 * int.from_bytes(data[28:32], "big")).to_bytes(4, "big")
    data[92:96] = (int.from_bytes(data[24:28], "big") + 1).to_bytes(4, "big")
    db.write_bytes(bytes(data))
    with FreesoundLibrary(library_dir) as lib:
        assert lib.stats().samples == 50


# ----------------------------------------------------------------------------- the graph
def test_the_graph_holds_every_stored_edge_with_its_weight_rank_and_node_fields(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        sounds = [make_sound(1, user="ann", pack=4, downloads=11),
                  make_sound(2, user="bob", downloads=22), make_sound(3, user="cy", pack=4)]
        for data in sounds:
            lib.add_sample(data)
        lib.mark_expanded(1)
        lib.mark_expanded(3, state=2)  # expanded, but not fully (a later state)
        lib.add_edge(1, 2, "similar", 0.75, rank=3)
        lib.add_edge(2, 1, "similar", None, rank=None)
        lib.add_edge(3, 1, "similar", 0.5, rank=1)
        graph = lib.graph()
        assert sorted(graph.edges(data=True)) == [
            (1, 2, {"kind": "similar", "weight": 0.75, "rank": 3}),
            (2, 1, {"kind": "similar", "weight": None, "rank": None}),
            (3, 1, {"kind": "similar", "weight": 0.5, "rank": 1}),
        ]
        assert graph.pred[1][3] == {"kind": "similar", "weight": 0.5, "rank": 1}
        for data in sounds:
            assert graph.nodes[data["id"]] == {
                "name": data["name"], "username": data["username"],
                "pack": 4 if data["pack"] else None, "downloads": data["num_downloads"],
                "duration": data["duration"], "license": data["license"],
                "expanded": data["id"] == 1,
            }


def test_the_graph_keeps_an_edge_whose_ends_are_not_stored(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(1))
    _raw_sql(library_dir, "INSERT INTO edges VALUES (1, 50, 'similar', 0.5, 2)",
             "INSERT INTO edges VALUES (60, 1, 'similar', 0.25, 4)")
    with FreesoundLibrary(library_dir) as lib:
        graph = lib.graph()
    assert set(graph.nodes) == {1, 50, 60}
    assert graph.edges[1, 50]["weight"] == 0.5 and graph.edges[60, 1]["rank"] == 4
    assert dict(graph.pred[50]) == {1: {"kind": "similar", "weight": 0.5, "rank": 2}}


def test_derived_edges_chain_same_user_and_same_pack_with_weight_one(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(1, user="ann"))
        lib.add_sample(make_sound(2, user="ann", pack=8))
        lib.add_sample(make_sound(3, user="bob", pack=8))
        lib.add_sample(make_sound(4, user="cy"))
        lib.add_edge(1, 2, "similar", 0.25, rank=5)
        derived = lib.graph(derived=True)
    assert sorted(derived.edges(data=True)) == [
        (1, 2, {"kind": "similar", "weight": 0.25, "rank": 5}),
        (2, 1, {"kind": "same_user", "weight": 1.0, "rank": None}),
        (2, 3, {"kind": "same_pack", "weight": 1.0, "rank": None}),
        (3, 2, {"kind": "same_pack", "weight": 1.0, "rank": None}),
    ]


# ----------------------------------------------------------------------------- seen and links
def test_seen_metadata_is_remembered_compactly_and_read_back(library_dir):
    data = {"num_downloads": 40, "id": 7, "name": "rain é", "tags": ["b", "a"]}
    with FreesoundLibrary(library_dir) as lib:
        lib.remember_seen(data, 7)
        assert lib.seen_metadata(7) == data
        assert lib.best_candidates() == [(7, 0, data)]
    assert sql(library_dir, "SELECT status, downloads, raw FROM seen") == [
        ("candidate", 40, _compact(data))]


@pytest.mark.parametrize("downloads", [None, True, "12", 1.5])
def test_seen_downloads_that_are_not_a_count_are_not_stored(library_dir, downloads):
    data = {"id": 7, "num_downloads": downloads}
    with FreesoundLibrary(library_dir) as lib:
        lib.remember_seen(data, 7)
    assert sql(library_dir, "SELECT downloads FROM seen") == [(None,)]


def test_seen_candidates_order_by_their_download_counts(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.remember_seen({"id": 5, "num_downloads": 3}, 5)
        lib.remember_seen({"id": 6, "num_downloads": 900}, 6)
        lib.remember_seen({"id": 4, "num_downloads": 50}, 4)
        assert [row[0] for row in lib.best_candidates()] == [6, 4, 5]


def test_an_id_seen_without_metadata_is_known_not_a_candidate_and_keeps_what_it_had(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.remember_seen(None, 8)
        lib.remember_seen({}, 9)
        assert sql(library_dir, "SELECT id, status, downloads, raw FROM seen ORDER BY id") == [
            (8, "known", None, None), (9, "known", None, None)]
        assert lib.best_candidates() == [] and lib.seen_metadata(8) is None
        lib.remember_seen({"id": 8, "num_downloads": 5}, 8, note="seed:rain")
        lib.remember_seen(None, 8)  # met again in a link: what the list answer said stays
        assert sql(library_dir, "SELECT status, downloads, raw, note FROM seen WHERE id = 8") == [
            ("known", 5, _compact({"id": 8, "num_downloads": 5}), "seed:rain")]
        lib.remember_seen(None, 9, status="deleted", note="404")
        assert sql(library_dir, "SELECT status, note FROM seen WHERE id = 9") == [
            ("deleted", "404")]


@pytest.mark.parametrize("mark", ["deleted", "malformed"])
def test_a_deleted_or_malformed_mark_outlives_a_later_sighting(library_dir, mark):
    with FreesoundLibrary(library_dir) as lib:
        lib.remember_seen({"id": 3, "num_downloads": 1}, 3, status=mark, note="gone")
        lib.remember_seen({"id": 3, "num_downloads": 2}, 3)
        assert sql(library_dir, "SELECT status, downloads FROM seen") == [(mark, 2)]
        assert lib.best_candidates() == []


def test_a_stored_sample_is_never_remembered_as_seen(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(3))
        lib.remember_seen({"id": 3, "num_downloads": 2}, 3)
        assert lib.verify() == [] and lib.stats().seen == 0


def test_a_self_link_is_refused_and_a_link_between_unstored_ids_counts_for_neither(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(1))
        assert lib.add_edge(1, 1) is False
        assert lib.stats().edges == 0 and lib.stats().pending_edges == 0
        assert lib.add_edge(20, 21, "similar", 0.5, rank=1) is False
        assert sql(library_dir, "SELECT id, links FROM seen ORDER BY id") == [(20, 0), (21, 0)]
        assert lib.add_edge(1, 21, "similar", 0.5, rank=2) is False
        assert lib.add_edge(1, 21, "similar", 0.5, rank=2) is False  # the same link again
        assert sql(library_dir, "SELECT id, links FROM seen ORDER BY id") == [(20, 0), (21, 1)]


def test_a_rank_beats_an_unranked_link_among_equally_linked_candidates(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(1))
        lib.remember_seen({"id": 30, "num_downloads": 5}, 30)
        lib.remember_seen({"id": 31, "num_downloads": 500}, 31)  # more popular, but unranked
        lib.remember_seen({"id": 32, "num_downloads": 50}, 32)
        lib.add_edge(1, 30, "similar", 0.5, rank=5)
        lib.add_edge(1, 31, "similar", 0.5, rank=None)
        lib.add_edge(1, 32, "similar", 0.5, rank=2)
        assert lib.candidate_links() == [(32, 1), (30, 1), (31, 1)]


# ----------------------------------------------------------------------------- counts, batches
def test_stats_counts_each_table_apart(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.bulk_add([make_sound(i) for i in range(1, 8)],
                     [(1, 2, "similar", 0.5, 1), (2, 3, "similar", 0.5, 1),
                      (1, 3, "similar", 0.5, 1)])
        lib.add_edge(1, 100, "similar", 0.5, rank=1)  # waits, and 100 is seen
        lib.add_edge(2, 101, "similar", 0.5, rank=1)
        lib.mark_expanded(1)
        lib.mark_expanded(2, state=2)
        lib.mark_deleted(3, "gone")
        lib.mark_expanded(4, deleted=True)
        for number in range(6):
            lib.record_problem(f"problem {number}")
        lib.remember_seen({"id": 200}, 200)
        lib.record_audio(AudioFile(1, "a/1.flac", 1000, "aa", "hq", 16000))
        lib.record_audio(AudioFile(2, "a/2.flac", 234, "bb", "hq", 16000))
        counts = lib.stats().as_dict()
    assert {key: counts[key] for key in (
        "samples", "edges", "expanded", "frontier", "seen", "pending_edges", "deleted",
        "problems", "audio", "audio_bytes")} == {
        "samples": 7, "edges": 3, "expanded": 3, "frontier": 4, "seen": 3, "pending_edges": 2,
        "deleted": 2, "problems": 6, "audio": 2, "audio_bytes": 1234}


def test_bulk_add_stores_more_than_one_batch_and_the_raw_answer_as_add_sample(tmp_path):
    sounds = [make_sound(i) for i in range(1, 5003)]
    with FreesoundLibrary(tmp_path / "bulk") as lib:
        assert lib.bulk_add(sounds) == 5002
        assert lib.stats().samples == 5002 and lib.get(5002)["name"] == "sound 5002.wav"
        bulk = lib.raw_samples()
    with FreesoundLibrary(tmp_path / "one") as lib:
        for data in sounds[:3]:
            lib.add_sample(data)
        assert lib.raw_samples() == bulk[:3]
    assert bulk[0] == _compact(sounds[0])


def test_an_empty_file_beside_backups_is_named_as_such(library_dir):
    _library_file(library_dir, count=3)
    with FreesoundLibrary(library_dir) as lib:
        create_backup(lib)
    (library_dir / DB_NAME).write_bytes(b"")
    assert _problem_opening(library_dir) == "empty file, although backups exist"


def test_times_are_stored_in_utc_whatever_the_local_zone(library_dir, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kathmandu")  # +05:45: no clock shows the UTC time there
    time.tzset()
    try:
        before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        with FreesoundLibrary(library_dir) as lib:
            lib.add_sample(make_sound(1))
            added_at = lib.get(1)["_added_at"]
        after = dt.datetime.now(dt.timezone.utc)
    finally:
        monkeypatch.undo()
        time.tzset()
    stored = dt.datetime.strptime(added_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    assert before <= stored <= after


# ----------------------------------------------------------------------------- merge
_SAMPLE_FIELDS = ", ".join((*SAMPLE_COLUMNS, "raw", "added_at", "expanded", "deleted", "note"))


def _contents(folder):
    """Everything a merge joins, read straight from the file (run ids and run rows apart)."""
    return {
        "samples": sql(folder, f"SELECT {_SAMPLE_FIELDS} FROM samples ORDER BY id"),
        "edges": sql(folder, "SELECT * FROM edges ORDER BY source, target, kind"),
        "pending": sql(folder, "SELECT * FROM pending_edges ORDER BY source, target, kind"),
        "seen": sql(folder, "SELECT * FROM seen ORDER BY id"),
    }


def _two_libraries(tmp_path):
    """Two libraries that overlap in every way the join rules decide: the same sample stored
    by both (newer in one, newer in the other), marks and notes on either side, the same edge
    with other weights and ranks, links waiting for a sample the other one stored, the same
    seen id with other statuses, download counts, notes and first sightings."""
    a, b = tmp_path / "a", tmp_path / "b"
    with FreesoundLibrary(a) as lib:
        for sound_id, downloads in ((1, 10), (3, 30), (4, 40)):
            lib.add_sample(make_sound(sound_id, downloads=downloads))
        lib.add_edge(1, 3, "similar", 0.5, rank=2)
        lib.add_edge(3, 4, "similar", 0.2, rank=5)
        lib.add_edge(1, 2, "similar", 0.9, rank=1)  # 2 is stored only in b
        lib.add_edge(1, 100, "similar", 0.3, rank=4)  # stored in neither
        lib.mark_expanded(3)
        lib.remember_seen(None, 300)
        lib.mark_seen_bad(400, "deleted", "gone")
        lib.remember_seen(make_sound(500, downloads=50), 500, note="seed:rain")
    _raw_sql(a, "UPDATE samples SET added_at = '2026-01-01T00:00:00Z', note = 'only-a' "
                "WHERE id = 3",
             "UPDATE samples SET added_at = '2026-03-01T00:00:00Z', note = 'apple' WHERE id = 4",
             "UPDATE seen SET first_seen = '2025-01-01T00:00:00Z' WHERE id = 500")
    with FreesoundLibrary(b) as lib:
        for sound_id, downloads in ((2, 20), (3, 333), (4, 444)):
            lib.add_sample(make_sound(sound_id, downloads=downloads))
        lib.add_edge(2, 3, "similar", 0.6, rank=3)
        lib.add_edge(3, 4, "similar", 0.7)
        lib.add_edge(2, 1, "similar", 0.4, rank=7)  # 1 is stored only in a
        lib.add_edge(2, 200, "similar", 0.8, rank=6)
        lib.add_edge(2, 201, "similar", 0.1)  # unranked: ranked after every ranked link
        lib.mark_expanded(2)
        lib.mark_deleted(4, "banana")
        lib.remember_seen(make_sound(300, downloads=7), 300)
        lib.remember_seen(make_sound(400, downloads=9), 400)
        lib.remember_seen(make_sound(500, downloads=20), 500, note="seed:wind")
    _raw_sql(b, "UPDATE samples SET added_at = '2026-02-01T00:00:00Z' WHERE id IN (3, 4)",
             "UPDATE seen SET first_seen = '2026-06-01T00:00:00Z' WHERE id = 500")
    return a, b


def _sample(folder, sound_id):
    columns = ("num_downloads", "raw", "added_at", "expanded", "deleted", "note")
    return dict(zip(columns, sql(folder, f"SELECT {', '.join(columns)} FROM samples WHERE id = ?",
                                 (sound_id,))[0], strict=True))


def test_a_merge_joins_every_sample_edge_and_seen_id_by_the_documented_rules(tmp_path):
    a, b = _two_libraries(tmp_path)
    raw_b3 = sql(b, "SELECT raw FROM samples WHERE id = 3")[0][0]
    raw_a4 = sql(a, "SELECT raw FROM samples WHERE id = 4")[0][0]
    result, stats = merge_library(a, b)
    assert (result.samples, result.updated, result.edges, result.seen, result.expanded,
            result.pending_edges) == (1, 1, 3, 2, 1, 1)
    assert sql(a, "SELECT id FROM samples ORDER BY id") == [(1,), (2,), (3,), (4,)]
    # 3: b's answer is newer (February against January): its metadata; a's mark and note stay
    assert _sample(a, 3) == {"num_downloads": 333, "raw": raw_b3,
                             "added_at": "2026-02-01T00:00:00Z", "expanded": 1, "deleted": 0,
                             "note": "only-a"}
    # 4: a's answer is newer (March); b's deletion mark stays; of two notes the greater
    assert _sample(a, 4) == {"num_downloads": 40, "raw": raw_a4,
                             "added_at": "2026-03-01T00:00:00Z", "expanded": 0, "deleted": 1,
                             "note": "banana"}
    assert _sample(a, 2)["expanded"] == 1 and _sample(a, 2)["num_downloads"] == 20
    assert sql(a, "SELECT id, name, pack_id, tags FROM samples WHERE id = 3") == sql(
        b, "SELECT id, name, pack_id, tags FROM samples WHERE id = 3")
    assert _contents(a)["edges"] == [
        (1, 2, "similar", 0.9, 1),  # a's link waited for 2, which b stored
        (1, 3, "similar", 0.5, 2),
        (2, 1, "similar", 0.4, 7),  # b's link waited for 1, which a stored
        (2, 3, "similar", 0.6, 3),
        (3, 4, "similar", 0.7, 5),  # the highest weight and the best rank either saw
    ]
    assert _contents(a)["pending"] == [(1, 100, "similar", 0.3, 4), (2, 200, "similar", 0.8, 6),
                                       (2, 201, "similar", 0.1, None)]
    seen = {row[0]: row for row in sql(a, "SELECT id, status, links, best_rank, downloads, "
                                          "first_seen, note FROM seen")}
    assert set(seen) == {100, 200, 201, 300, 400, 500}  # 1 and 2 are stored: no longer seen
    assert seen[100][1:5] == ("known", 1, 4, None)
    assert seen[200][1:5] == ("known", 1, 6, None)  # linked from 2, stored now
    assert seen[201][1:5] == ("known", 1, 1 << 30, None)  # as add_edge ranks an unranked link
    assert seen[300][1:5] == ("candidate", 0, None, 7)  # b's metadata beats none
    assert seen[400][1:5] == ("deleted", 0, None, 9) and seen[400][6] == "gone"
    assert seen[500][1:] == ("candidate", 0, None, 50, "2025-01-01T00:00:00Z", "seed:wind")
    assert sql(a, "SELECT raw FROM seen WHERE id = 500") == [(_compact(make_sound(500,
                                                                                  downloads=50)),)]
    assert stats.samples == 4 and stats.edges == 5
    with FreesoundLibrary(a) as lib:
        assert lib.verify() == []
        run = lib.history()[-1]
    assert {key: run[key] for key in ("status", "samples_added", "requests", "samples", "edges",
                                      "seen")} == {
        "status": "merged", "samples_added": 1, "requests": 0, "samples": 4, "edges": 5,
        "seen": 6}
    assert run["finished_at"] is not None and run["db_bytes"] > 0
    assert sql(a, "SELECT run_id FROM samples WHERE id = 2") == [(run["run"],)]


def test_a_merge_is_the_same_either_way_round_and_a_second_time_adds_nothing(tmp_path):
    a, b = _two_libraries(tmp_path)
    a2, b2 = tmp_path / "a2", tmp_path / "b2"
    shutil.copytree(a, a2)
    shutil.copytree(b, b2)
    merge_library(a, b)
    merge_library(b2, a2)
    assert _contents(a) == _contents(b2)
    before = _contents(a)
    again, _ = merge_library(a, b)
    assert (again.samples, again.updated, again.edges, again.seen, again.expanded,
            again.pending_edges) == (0, 0, 0, 0, 0, 0)
    assert _contents(a) == before


def test_a_source_of_a_newer_schema_is_refused_and_nothing_is_written(tmp_path):
    a, b = _two_libraries(tmp_path)
    _raw_sql(b, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = _contents(a)
    with pytest.raises(BadInputError, match=f"schema version {SCHEMA_VERSION + 1}"):
        merge_library(a, b)
    assert _contents(a) == before
    assert sql(a, "SELECT count(*) FROM runs") == [(0,)]


# ----------------------------------------------------------------------------- history, runs
def test_history_lists_every_run_in_order_with_its_figures(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        first = lib.start_run()
        lib.add_sample(make_sound(1))
        lib.add_edge(1, 9, "similar", 0.5, rank=1)
        lib.update_run(first, samples_added=1, requests=4, status="done", finished=True)
        second = lib.start_run()
        lib.update_run(second, samples_added=0, requests=2)
        size = lib.db_bytes()
        history = lib.history()
    assert [run["run"] for run in history] == [first, second] and first < second
    finished = history[0].pop("finished_at")
    started = history[0].pop("started_at")
    assert started <= finished and finished.endswith("Z")
    assert 0 < history[0].pop("db_bytes") <= size
    assert history[0] == {"run": first, "status": "done", "samples_added": 1, "requests": 4,
                          "samples": 1, "edges": 0, "seen": 1}
    assert history[1].pop("started_at").endswith("Z")
    assert history[1] == {"run": second, "finished_at": None, "status": "running",
                          "samples_added": 0, "requests": 2, "samples": None, "edges": None,
                          "seen": None, "db_bytes": None}


# ----------------------------------------------------------------------------- read-only
@pytest.fixture
def read_only_mount(tmp_path):
    """A folder on a file system mounted read-only, made writable while the test fills it:
    no permission stops root, a read-only mount stops every user."""
    mount = tmp_path / "drive"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)

    def freeze():
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)

    yield mount, freeze
    # lazy: a connection a failing test left open must not leave the mount behind
    subprocess.run(["umount", "--lazy", str(mount)], check=True)


def _tree(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_library_on_a_read_only_mount_is_read_whole(read_only_mount):
    mount, freeze = read_only_mount
    folder = mount / "library"
    with FreesoundLibrary(folder) as lib:
        lib.bulk_add([make_sound(i) for i in range(1, 6)], [(1, 2, "similar", 0.5, 1)])
        lib.remember_seen(make_sound(77), 77)
    freeze()
    before = _tree(folder)
    with FreesoundLibrary(folder, read_only=True) as lib:
        assert lib.stats().samples == 5 and lib.edges_of(1) == [(1, 2, "similar", 0.5, 1)]
        assert lib.seen_ids() == {77}
        # the store is shared by threads (grow's workers, the map): so is a read-only one
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            assert pool.submit(lib.stored_ids).result() == {1, 2, 3, 4, 5}
    assert _tree(folder) == before


def test_a_killed_writers_library_on_a_read_only_mount_is_read_as_last_checkpointed(
        read_only_mount, library_dir):
    """Its WAL cannot be replayed without writing the -shm file, so SQLite's read-only mode
    refuses it; the library is then read as the file holds it (the WAL's commits unseen),
    never written."""
    mount, freeze = read_only_mount
    folder = mount / "library"
    _wal_copy(library_dir, folder)  # 3 samples checkpointed, 5 more only in the WAL
    freeze()
    before = _tree(folder)
    with FreesoundLibrary(folder, read_only=True) as lib:
        assert lib.stored_ids() == {1, 2, 3}
    assert _tree(folder) == before


def test_an_old_library_on_a_read_only_mount_says_it_needs_one_upgrade(read_only_mount):
    mount, freeze = read_only_mount
    folder = mount / "library"
    with FreesoundLibrary(folder) as lib:
        lib.add_sample(make_sound(1))
        lib._conn.execute("DROP TABLE positions")
        lib._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    freeze()
    with pytest.raises(LibraryVersionError, match=(
            f"schema version {SCHEMA_VERSION - 1} and must be upgraded to {SCHEMA_VERSION}")):
        FreesoundLibrary(folder, read_only=True)


def test_an_old_library_in_a_writable_folder_is_upgraded_then_read(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(1))
        lib._conn.execute("DROP TABLE positions")
        lib._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    with FreesoundLibrary(library_dir, read_only=True) as lib:
        assert lib.schema_version == SCHEMA_VERSION and lib.positions() == {}
        assert lib.stored_ids() == {1}


def test_a_read_only_library_in_a_writable_folder_refuses_writes_and_keeps_its_bytes(
        library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.bulk_add([make_sound(i) for i in range(1, 4)])
    before = (library_dir / DB_NAME).read_bytes()
    with FreesoundLibrary(library_dir, read_only=True) as lib:
        assert lib.stored_ids() == {1, 2, 3}
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            lib.add_sample(make_sound(4))
    assert (library_dir / DB_NAME).read_bytes() == before
    assert Path(f"{library_dir / DB_NAME}-wal").stat().st_size == 0
    assert sql(library_dir, "SELECT count(*) FROM samples") == [(3,)]


def _damage_schema_page(library_dir):
    """Page 1 past the header overwritten: the header is fine, the schema is not."""
    with FreesoundLibrary(library_dir) as lib:
        lib.bulk_add([make_sound(i) for i in range(1, 30)])
        lib._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db = library_dir / DB_NAME
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\x55" * (4096 - 100)
    db.write_bytes(bytes(data))


def test_a_damaged_library_opened_read_only_is_called_damaged(library_dir):
    _damage_schema_page(library_dir)
    with pytest.raises(LibraryDamagedError) as info:
        FreesoundLibrary(library_dir, read_only=True)
    assert info.value.problem == "database disk image is malformed"
    assert info.value.good_backup is None
    assert str(info.value).endswith(
        "no good backup exists; move the file aside to start a new library")


def test_a_damaged_library_names_its_newest_good_backup(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(1))
        backup = create_backup(lib)
    _damage_schema_page(library_dir)
    with pytest.raises(LibraryDamagedError) as info:
        FreesoundLibrary(library_dir)
    assert info.value.good_backup == backup.name
    assert str(info.value).endswith(
        f"newest good backup: {backup.name} in {library_dir / 'backups'}; "
        "restore it (restore_backup)")


# SQLite's words for a damaged file (sqlite3ErrStr, and older releases' "file is encrypted or
# is not a database"; "corrupt" in the extended codes' texts) against those for a busy,
# read-only or missing one, which must not send the user to restore a backup.
@pytest.mark.parametrize("message, damage", [
    ("database disk image is malformed", True),
    ("malformed database schema (samples) - near \"x\": syntax error", True),
    ("file is not a database", True),
    ("file is encrypted or is not a database", True),
    ("file is encrypted", True),
    ("database corruption at line 71234", True),
    ("Database Disk Image Is Malformed", True),
    ("database is locked", False),
    ("database table is locked", False),
    ("attempt to write a readonly database", False),
    ("unable to open database file", False),
    ("disk I/O error", False),
])
def test_which_sqlite_errors_mean_a_damaged_file(message, damage):
    assert _is_damage(sqlite3.DatabaseError(message)) is damage


def test_a_real_damaged_page_is_damage_and_a_lock_is_not(library_dir):
    _damage_schema_page(library_dir)
    with pytest.raises(sqlite3.DatabaseError) as damaged:
        with contextlib.closing(sqlite3.connect(library_dir / DB_NAME)) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
    assert _is_damage(damaged.value)
    other = library_dir.parent / "other"
    with FreesoundLibrary(other) as lib, contextlib.closing(
            sqlite3.connect(other / DB_NAME, timeout=0)) as second:
        lib._conn.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as busy:
            second.execute("BEGIN IMMEDIATE")
        lib._conn.execute("ROLLBACK")
    assert not _is_damage(busy.value)


# ----------------------------------------------------------------------------- fold_wal
def _wal_copy(library_dir, target):
    """A copy of the library and its WAL taken while a writer holds them open (a kill)."""
    with FreesoundLibrary(library_dir) as lib:
        lib.bulk_add([make_sound(i) for i in range(1, 4)])
        lib._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        lib.bulk_add([make_sound(i) for i in range(4, 9)])
        target.mkdir()
        for suffix in ("", "-wal"):
            shutil.copyfile(f"{lib.path}{suffix}", target / f"{DB_NAME}{suffix}")
    return target / DB_NAME


def test_fold_wal_writes_the_wal_into_the_file(library_dir, tmp_path):
    db = _wal_copy(library_dir, tmp_path / "copy")
    assert Path(f"{db}-wal").stat().st_size > 0
    assert fold_wal(db) is True
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0
    Path(f"{db}-wal").unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(f"file:{db}?immutable=1", uri=True)) as conn:
        assert conn.execute("SELECT count(*) FROM samples").fetchone() == (8,)


def test_fold_wal_says_false_when_sqlite_cannot_open_the_file(tmp_path):
    folder_in_its_place = tmp_path / DB_NAME
    folder_in_its_place.mkdir()
    assert fold_wal(folder_in_its_place) is False


# ----------------------------------------------------------------------------- reads
def test_get_says_whether_a_sample_was_deleted(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.bulk_add([make_sound(1), make_sound(2)])
        lib.mark_deleted(2, "gone from Freesound")
        assert lib.get(1)["_deleted"] is False and lib.get(2)["_deleted"] is True
        assert lib.get(2)["name"] == "sound 2.wav"
        assert lib.get(3) is None
    assert sql(library_dir, "SELECT deleted, note FROM samples WHERE id = 2") == [
        (1, "gone from Freesound")]


def test_library_exists_names_a_folder_holding_the_file(library_dir, tmp_path):
    assert library_exists(library_dir) is False
    with FreesoundLibrary(library_dir):
        pass
    assert library_exists(library_dir) is True
    assert library_exists(str(library_dir)) is True
    assert library_exists(tmp_path) is False


def test_audio_records_are_kept_replaced_listed_and_forgotten(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.bulk_add([make_sound(i) for i in range(1, 5)])
        lib.add_sample({**make_sound(5), "previews": None})
        lib.mark_deleted(4, "gone")
        first = AudioFile(1, "audio/1.wav", 100, "aa", "hq-mp3", 16000)
        lib.record_audio(first)
        lib.record_audio(AudioFile(2, "audio/2.mp3", 200, "bb", "lq-ogg", None))
        wanted = lib.audio_wanted("hq-mp3", 16000)
        assert [sound_id for sound_id, _ in wanted] == [2, 3, 5]  # 1 has it; 4 is deleted
        assert wanted[0][1] == make_sound(2)["previews"] and wanted[2][1] == {}
        assert [i for i, _ in lib.audio_wanted("lq-ogg", None)] == [1, 3, 5]
        assert [i for i, _ in lib.audio_wanted("hq-mp3", 16000, limit=2)] == [2, 3]
        assert lib.audio_of(1) == first and lib.audio_of(3) is None
        replaced = AudioFile(1, "audio/1b.wav", 150, "cc", "hq-mp3", 22050)
        lib.record_audio(replaced)
        assert lib.audio_files() == [replaced, AudioFile(2, "audio/2.mp3", 200, "bb", "lq-ogg",
                                                         None)]
        lib.forget_audio(2)
        assert lib.audio_files() == [replaced] and lib.audio_of(2) is None


def test_problems_are_listed_newest_first(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        for number in range(4):
            lib.record_problem(f"problem {number}", sound_id=number, run_id=7)
        listed = lib.problems(limit=3)
        assert [row[1:] for row in listed] == [(7, 3, "problem 3"), (7, 2, "problem 2"),
                                               (7, 1, "problem 1")]
        assert all(row[0].endswith("Z") for row in listed)
        assert len(lib.problems()) == 4
        for number in range(4, 101):
            lib.record_problem(f"problem {number}")
        assert len(lib.problems()) == 100 and lib.problems()[0][3] == "problem 100"


def test_best_candidates_gives_two_hundred_unless_asked(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        for sound_id in range(1000, 1201):
            lib.remember_seen(make_sound(sound_id), sound_id)
        assert len(lib.best_candidates()) == 200 and len(lib.candidate_links()) == 200
        assert len(lib.best_candidates(limit=201)) == 201


def test_positions_are_stored_read_and_replaced(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.bulk_add([make_sound(i) for i in range(1, 4)])
        lib.save_positions([(1, 0.5, -1.5), (2, 2.0, 3.0), (99, 1.0, 1.0)])
        assert lib.positions() == {1: (0.5, -1.5), 2: (2.0, 3.0)}  # 99 is not stored
        lib.save_positions([(3, 7.0, 8.0)])
        assert lib.positions() == {1: (0.5, -1.5), 2: (2.0, 3.0), 3: (7.0, 8.0)}
        lib.save_positions([(2, 4.0, 5.0)], replace_all=True)
        assert lib.positions() == {2: (4.0, 5.0)}


# ----------------------------------------------------------------------------- graph rows
def _graph_library(library_dir):
    """Same-user and same-pack neighbours, stored links among them and one to an id not
    stored: derived links fall before, between and after the stored ones."""
    with FreesoundLibrary(library_dir) as lib:
        lib.bulk_add([make_sound(1, user="ann", pack=5), make_sound(2, user="bob", pack=5),
                      make_sound(3, user="ann", pack=6), make_sound(4, user="ann", pack=6),
                      make_sound(6, user="cid")],
                     [(1, 2, "similar", 0.5, 1), (3, 4, "similar", 0.25, None),
                      (4, 6, "similar", 0.75, 2)])
        lib.mark_expanded(3)
    _raw_sql(library_dir, "INSERT INTO edges VALUES (9, 1, 'similar', 0.1, 3)")


def test_graph_rows_stream_every_node_and_stored_edge_in_order(library_dir):
    _graph_library(library_dir)
    with FreesoundLibrary(library_dir) as lib:
        rows = list(lib.graph_rows())
    nodes = [row for kind, row in rows if kind == "node"]
    assert [kind for kind, _ in rows] == ["node"] * 5 + ["edge"] * 4
    assert nodes[2] == (3, "sound 3.wav", "ann", 6, make_sound(3)["num_downloads"],
                        make_sound(3)["duration"], make_sound(3)["license"], True)
    assert [row[0] for row in nodes] == [1, 2, 3, 4, 6] and nodes[0][7] is False
    assert [row for kind, row in rows if kind == "edge"] == [
        (1, 2, "similar", 0.5, 1), (3, 4, "similar", 0.25, None), (4, 6, "similar", 0.75, 2),
        (9, 1, "similar", 0.1, 3)]


def test_graph_rows_with_derived_links_interleave_them_in_key_order(library_dir):
    _graph_library(library_dir)
    with FreesoundLibrary(library_dir) as lib:
        edges = [row for kind, row in lib.graph_rows(derived=True) if kind == "edge"]
        graph = lib.graph(derived=True)
    assert edges == [
        (1, 2, "similar", 0.5, 1),
        (1, 3, "same_user", 1.0, None),
        (2, 1, "same_pack", 1.0, None),  # 1 -> 2 is stored; the pack's other way is not
        (3, 1, "same_user", 1.0, None),
        (3, 4, "similar", 0.25, None),  # same user and pack: the stored link stands for both
        (4, 3, "same_user", 1.0, None),  # same user and pack: one derived link, not two
        (4, 6, "similar", 0.75, 2),
        (9, 1, "similar", 0.1, 3),
    ]
    assert sorted((s, t, d["kind"], d["weight"], d["rank"])
                  for s, t, d in graph.edges(data=True)) == edges


def test_graph_leaves_the_garbage_collector_as_it_found_it(library_dir):
    _graph_library(library_dir)
    with FreesoundLibrary(library_dir) as lib:
        assert gc.isenabled()
        lib.graph()
        assert gc.isenabled()
        gc.disable()
        try:
            lib.graph()
            assert not gc.isenabled()
        finally:
            gc.enable()


# ----------------------------------------------------------------------------- bulk_add
def test_bulk_add_leaves_the_seen_list_add_edge_leaves(tmp_path):
    """The ends of a batch's links that are not stored become seen ids counting the stored
    samples that link to them, as add_edge makes them one by one (the crawl takes its next
    candidates from there; bulk_add used to leave them out: imports lost their frontier)."""
    samples = [make_sound(i) for i in (1, 2, 3)]
    edges = [(1, 50, "similar", 0.5, 3), (2, 50, "similar", 0.4, None), (3, 51, "similar", 0.3, 2),
             (60, 61, "similar", 0.2, 1), (62, 1, "similar", 0.1, 4), (1, 2, "similar", 0.9, 1)]
    with FreesoundLibrary(tmp_path / "bulk") as lib:
        lib.remember_seen(make_sound(51, downloads=5), 51)
        assert lib.bulk_add(samples, edges) == 3
        bulk = sql(lib.folder, "SELECT id, status, links, best_rank, downloads FROM seen "
                   "ORDER BY id")
        assert lib.candidate_links() == [(51, 1)]
        assert lib.verify() == []
    with FreesoundLibrary(tmp_path / "one") as lib:
        lib.remember_seen(make_sound(51, downloads=5), 51)
        for data in samples:
            lib.add_sample(data)
        for edge in edges:
            lib.add_edge(*edge)
        one = sql(lib.folder, "SELECT id, status, links, best_rank, downloads FROM seen "
                   "ORDER BY id")
    assert bulk == one == [(50, "known", 2, 3, None), (51, "candidate", 1, 2, 5),
                           (60, "known", 0, None, None), (61, "known", 0, None, None),
                           (62, "known", 0, None, None)]


# ----------------------------------------------------------------------------- meta, problems
def test_meta_values_are_kept_and_a_new_library_knows_when_it_was_made(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        created = lib.get_meta("created_at")
        assert created is not None and created.endswith("Z")
        assert lib.get_meta("nothing such") is None
        lib.set_meta("note", "one")
        lib.set_meta("note", "two")
    with FreesoundLibrary(library_dir) as lib:
        assert lib.get_meta("note") == "two" and lib.get_meta("created_at") == created


def test_a_long_problem_is_kept_to_its_first_2000_characters(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.record_problem("x" * 1999 + "yz" + "w" * 500, sound_id=5)
        assert lib.problems()[0][3] == "x" * 1999 + "y"


# ----------------------------------------------------------------------------- crawl state
def test_seed_progress_is_kept_per_search_and_moved_on(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        assert lib.seed_state("rain") is None
        lib.set_seed_state("rain", "rain", "duration:[0 TO 5]", "downloads_desc", 3, False)
        lib.set_seed_state("wind", "wind", None, None, 1, True)
        lib.set_seed_state("rain", "ignored", "ignored", "ignored", 4, True)
        assert lib.seed_state("rain") == (4, True, 0) and lib.seed_state("wind") == (1, True, 0)
        lib._conn.execute("UPDATE seeds SET stored = 9 WHERE key = 'wind'")
        lib.set_seed_state("wind", "wind", None, None, 2, False)
        assert lib.seed_state("wind") == (2, False, 9)
    assert sql(library_dir, "SELECT key, query, filter, sort FROM seeds ORDER BY key") == [
        ("rain", "rain", "duration:[0 TO 5]", "downloads_desc"), ("wind", "wind", None, None)]


def test_the_next_to_expand_is_the_most_downloaded_unexpanded_one(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        assert lib.next_to_expand() is None
        lib.bulk_add([make_sound(1, downloads=5), make_sound(2, downloads=50),
                      make_sound(3, downloads=50), make_sound(4, downloads=9)])
        assert lib.next_to_expand() == 2
        lib.mark_expanded(2)
        assert lib.next_to_expand() == 3
        lib.mark_expanded(3, state=2, note="gone", deleted=True)
        assert lib.next_to_expand() == 4
        lib.mark_expanded(4, note=None)
        lib.mark_expanded(1)
        assert lib.next_to_expand() is None
    assert sql(library_dir, "SELECT id, expanded, deleted, note FROM samples ORDER BY id") == [
        (1, 1, 0, None), (2, 1, 0, None), (3, 2, 1, "gone"), (4, 1, 0, None)]


def test_seed_candidates_are_a_searchs_remembered_results_most_downloaded_first(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        for sound_id in range(100, 152):
            lib.remember_seen(make_sound(sound_id, downloads=sound_id % 7), sound_id,
                              note="seed:rain")
        lib.remember_seen(make_sound(99, downloads=1000), 99, note="seed:wind")
        lib.add_sample(make_sound(100))  # stored now: no longer a candidate
        found = lib.seed_candidates("rain")
        assert len(found) == 50 and len(lib.seed_candidates("rain", limit=60)) == 51
        assert [sound_id for sound_id, _ in found[:3]] == [104, 111, 118]
        assert found[0][1] == make_sound(104, downloads=6)
        assert [sound_id for sound_id, _ in lib.seed_candidates("wind")] == [99]
        assert lib.seen_metadata(99) == make_sound(99, downloads=1000)
        assert lib.seen_metadata(12345) is None
        lib.remember_seen(None, 777)
        assert lib.seen_metadata(777) is None


def test_a_checkpoint_empties_the_wal_outside_a_transaction(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.bulk_add([make_sound(i) for i in range(1, 30)])
        wal = Path(f"{lib.path}-wal")
        assert wal.stat().st_size > 0
        with lib.transaction():
            lib.checkpoint()  # skipped: a checkpoint cannot run inside the write
            assert wal.stat().st_size > 0
        lib.checkpoint()
        assert wal.stat().st_size == 0
        assert lib.db_bytes() == lib.path.stat().st_size


def test_a_run_left_running_by_a_dead_process_is_marked_killed_by_the_next(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        first = lib.start_run()  # its process dies: never updated
        second = lib.start_run()
        statuses = {run["run"]: run["status"] for run in lib.history()}
    assert statuses == {first: "killed", second: "running"}


def test_has_says_which_ids_are_stored(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(1))
        lib.remember_seen(make_sound(2), 2)
        assert lib.has(1) is True and lib.has(2) is False and lib.has(3) is False


def test_a_truncated_file_of_a_library_past_2_24_pages_is_named_with_the_headers_size(
        library_dir):
    """The page count is the header's four bytes at 28: a library of 2^24 pages or more (64 GiB
    at 4 KiB) has its count's top byte set."""
    db = _library_file(library_dir)
    data = bytearray(db.read_bytes())
    pages = int.from_bytes(data[28:32], "big")
    data[28:32] = (pages + (1 << 24)).to_bytes(4, "big")
    kept = (pages // 2) * 4096 + 100
    db.write_bytes(bytes(data[:kept]))
    assert _problem_opening(library_dir) == (
        f"truncated ({kept} bytes, the header says {(pages + (1 << 24)) * 4096})")
