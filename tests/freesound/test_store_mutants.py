"""The store's answers checked exactly, on real SQLite files: what verify reports, the graph's
edges and attributes, the seen list, a damaged file's diagnosis, batch imports. Each test
pins a behaviour that a surviving mutant of store.py changed (docs/mutation.md)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time

import pytest

from easy_oww.freesound.backup import create_backup
from easy_oww.freesound.errors import LibraryDamagedError
from easy_oww.freesound.store import DB_NAME, SCHEMA_VERSION, AudioFile, FreesoundLibrary
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
