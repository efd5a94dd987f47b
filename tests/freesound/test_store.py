"""The SQLite store, on real files: samples, edges, pending links, threads, readers, damage."""

from __future__ import annotations

import contextlib
import gzip
import sqlite3
import subprocess
import sys
import threading

import pytest

from easy_oww.freesound.backup import (
    create_backup,
    list_backups,
    prune_backups,
    restore_backup,
)
from easy_oww.freesound.errors import (
    BackupError,
    LibraryDamagedError,
    LibraryVersionError,
)
from easy_oww.freesound.store import (
    DB_NAME,
    SCHEMA_VERSION,
    FreesoundLibrary,
    MalformedSampleError,
)
from tests.freesound.conftest import make_sound


def test_new_library_is_wal_durable_and_versioned(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        assert lib.path == library_dir / DB_NAME
        assert lib.schema_version == SCHEMA_VERSION
        assert lib._read("PRAGMA journal_mode")[0][0] == "wal"
        assert lib._read("PRAGMA synchronous")[0][0] == 2  # FULL
        assert lib.stats().samples == 0


def test_add_get_roundtrip_keeps_every_field(library_dir):
    data = make_sound(10, pack=7)
    with FreesoundLibrary(library_dir) as lib:
        result = lib.add_sample(data)
        assert result.added and result.edges == 0
        again = lib.add_sample(data)
        assert not again.added
    with FreesoundLibrary(library_dir) as lib:  # reopened: it was committed
        got = lib.get(10)
        assert {k: got[k] for k in data} == data
        assert got["_expanded"] is False
        assert lib.get(11) is None
        row = lib._read("SELECT pack_id, username, previews FROM samples WHERE id = 10")[0]
        assert row[0] == 7 and row[1] == data["username"] and "hq-mp3" in row[2]


@pytest.mark.parametrize(
    "bad",
    [{}, {"id": "12"}, {"id": -1}, {"id": True}, {"id": 5, "duration": "long"},
     {"id": 5, "tags": "a,b"}, {"id": 5, "num_downloads": 1.5}, {"id": 5, "previews": []}],
)
def test_malformed_samples_are_refused_and_nothing_stored(library_dir, bad):
    with FreesoundLibrary(library_dir) as lib:
        with pytest.raises(MalformedSampleError):
            lib.add_sample(bad)
        assert lib.stats().samples == 0


def test_edges_wait_for_their_target_and_materialise_once(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(1))
        assert lib.add_edge(1, 2, "similar", 0.9, rank=1) is False  # 2 not stored: pending
        assert lib.add_edge(1, 2, "similar", 0.9, rank=1) is False  # duplicate pending
        assert lib.add_edge(3, 1, "similar", 0.5, rank=4) is False  # source missing
        stats = lib.stats()
        assert (stats.edges, stats.pending_edges, stats.seen) == (0, 2, 2)
        assert lib.best_candidates() == []  # ids only: nothing to store without a request
        result = lib.add_sample(make_sound(2))
        assert result.edges == 1
        assert lib.edges_of(2) == [(1, 2, "similar", 0.9, 1)]
        assert lib.add_sample(make_sound(3)).edges == 1
        assert lib.add_edge(1, 2, "similar", 0.9) is False  # already there
        assert lib.add_edge(2, 3, "similar", 0.1) is True
        stats = lib.stats()
        assert (stats.samples, stats.edges, stats.pending_edges, stats.seen) == (3, 3, 0, 0)
        assert lib.verify() == []


def test_seen_candidates_rank_linked_first_then_popular(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(1))
        lib.remember_seen(make_sound(50, downloads=900), 50)
        lib.remember_seen(make_sound(51, downloads=10), 51)
        lib.add_edge(1, 51, "similar", 0.8, rank=3)
        order = [c[0] for c in lib.best_candidates()]
        assert order == [51, 50]
        lib.mark_seen_bad(50, "deleted", "404")
        assert [c[0] for c in lib.best_candidates()] == [51]


def test_many_threads_adding_at_once(library_dir):
    lib = FreesoundLibrary(library_dir)
    errors: list[BaseException] = []

    def worker(start: int) -> None:
        try:
            for sound_id in range(start, start + 150):
                lib.add_sample(make_sound(sound_id))
                lib.add_edge(sound_id, sound_id - 1, "similar", 0.5, rank=1)
                lib.add_edge(sound_id, sound_id + 1, "similar", 0.5, rank=2)
                lib.stats()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(1 + 150 * i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stats = lib.stats()
    assert stats.samples == 1200
    # every i -> i-1 and i -> i+1 inside 1..1200 is an edge; the two outside ends wait
    assert stats.edges == 2 * 1200 - 2
    assert stats.pending_edges == 2
    assert lib.verify() == []
    lib.close()


def test_other_process_reads_a_consistent_snapshot_while_a_write_is_open(library_dir):
    lib = FreesoundLibrary(library_dir)
    for sound_id in range(1, 21):
        lib.add_sample(make_sound(sound_id))
    code = (
        "import sys; from easy_oww.freesound.store import FreesoundLibrary\n"
        "lib = FreesoundLibrary(sys.argv[1], create=False); print(lib.stats().samples)"
    )
    with lib.transaction():
        for sound_id in range(21, 31):
            lib.add_sample(make_sound(sound_id))
        out = subprocess.run([sys.executable, "-c", code, str(library_dir)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "20"  # the open transaction is invisible
    out = subprocess.run([sys.executable, "-c", code, str(library_dir)],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "30"
    lib.close()


def test_failed_transaction_leaves_nothing(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        with pytest.raises(RuntimeError):
            with lib.transaction():
                lib.add_sample(make_sound(1))
                raise RuntimeError("boom")
        assert lib.stats().samples == 0


def test_graph_plain_and_derived(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        for sound_id in range(1, 7):
            lib.add_sample(make_sound(sound_id, user="alice" if sound_id <= 3 else "bob",
                                      pack=9 if sound_id in (4, 5) else None))
        lib.add_edge(1, 2, "similar", 0.9, rank=1)
        lib.add_edge(2, 6, "similar", 0.8, rank=2)
        graph = lib.graph()
        assert graph.number_of_nodes() == 6 and graph.number_of_edges() == 2
        assert graph.edges[1, 2]["kind"] == "similar" and graph.nodes[1]["username"] == "alice"
        derived = lib.graph(derived=True)
        kinds = {(u, v): d["kind"] for u, v, d in derived.edges(data=True)}
        assert kinds[(1, 2)] == "similar"  # the similar edge is kept
        assert kinds[(2, 1)] == "same_user" and kinds[(3, 2)] == "same_user"
        assert (1, 3) not in kinds  # a chain, not a clique
        assert kinds[(4, 5)] in ("same_user", "same_pack")
        # same_* edges are computed, never stored
        assert lib.stats().edges == 2


def test_verify_reports_dangling_edges(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(1))
        assert lib.verify() == []
    with sqlite3.connect(library_dir / DB_NAME) as conn:
        conn.execute("INSERT INTO edges VALUES (1, 99, 'similar', 1.0, 1)")
    with FreesoundLibrary(library_dir) as lib:
        assert lib.verify() == ["1 edges whose target is not stored"]


def test_migration_from_empty_and_refusal_of_newer_schema(library_dir):
    library_dir.mkdir(parents=True)
    sqlite3.connect(library_dir / DB_NAME).close()  # an empty (version 0) file
    with FreesoundLibrary(library_dir) as lib:
        assert lib.schema_version == SCHEMA_VERSION
    with sqlite3.connect(library_dir / DB_NAME) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(LibraryVersionError, match="upgrade easy-oww"):
        FreesoundLibrary(library_dir)


def test_version_1_library_and_its_backups_upgrade_in_place(library_dir, tmp_path):
    """A library made before the audio table (schema 1) keeps every sample on upgrade, and
    its old backups still restore."""
    from easy_oww.freesound.store import MIGRATIONS

    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(7))
        lib.add_sample(make_sound(8))
        lib.add_edge(7, 8, "similar", 0.5)
    # back to what version 1 wrote; closed, so the change is in the file, not only its WAL
    with contextlib.closing(sqlite3.connect(library_dir / DB_NAME)) as conn, conn:
        conn.execute("DROP TABLE audio")
        conn.execute("PRAGMA user_version = 1")
    assert "CREATE TABLE audio" not in MIGRATIONS[0]
    old_backup = library_dir / "backups" / "freesound_library_backup_2nodes_20261101_120000.db.gz"
    old_backup.parent.mkdir()
    old_backup.write_bytes(gzip.compress((library_dir / DB_NAME).read_bytes()))
    unpacked = tmp_path / "old.db"
    unpacked.write_bytes(gzip.decompress(old_backup.read_bytes()))
    with contextlib.closing(sqlite3.connect(unpacked)) as probe:  # the backup is version 1
        assert probe.execute("PRAGMA user_version").fetchone()[0] == 1
    with FreesoundLibrary(library_dir) as lib:
        assert lib.schema_version == SCHEMA_VERSION == 3
        assert lib.stored_ids() == {7, 8} and lib.stats().edges == 1
        assert lib.stats().audio == 0 and lib.verify() == []
    restore_backup(library_dir, old_backup.name)
    with FreesoundLibrary(library_dir) as lib:
        assert lib.schema_version == SCHEMA_VERSION and lib.stored_ids() == {7, 8}


def _fill(library_dir, count):
    with FreesoundLibrary(library_dir) as lib:
        for sound_id in range(1, count + 1):
            lib.add_sample(make_sound(sound_id))
        lib._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_damaged_file_names_newest_good_backup_and_is_left_untouched(library_dir, damage):
    _fill(library_dir, 300)
    with FreesoundLibrary(library_dir) as lib:
        good = create_backup(lib)
    db = library_dir / DB_NAME
    data = db.read_bytes()
    if damage == "garbage":
        db.write_bytes(b"this is not a database" * 500)
    elif damage == "truncated":
        db.write_bytes(data[: len(data) // 2])
    else:
        db.write_bytes(b"")
    before = db.read_bytes()
    with pytest.raises(LibraryDamagedError) as info:
        FreesoundLibrary(library_dir)
    message = str(info.value)
    assert good.name in message
    # the facts travel on the error; the CLI adds its restore command (test_grow checks the
    # line users see), the library names no CLI flag
    assert info.value.good_backup == good.name and info.value.folder == library_dir.absolute()
    assert info.value.path == db.absolute() and info.value.problem in message
    assert "--" not in message and "easy-oww" not in message
    assert "\n" not in message
    assert db.read_bytes() == before
    # and the advice works
    restore_backup(library_dir, good.name)
    with FreesoundLibrary(library_dir) as lib:
        assert lib.stats().samples == 300 and lib.verify() == []


def test_backups_create_list_prune_restore(library_dir):
    with FreesoundLibrary(library_dir) as lib:
        infos = []
        for round_ in range(7):
            lib.add_sample(make_sound(round_ + 1))
            infos.append(create_backup(lib, keep=None))
        listed = list_backups(library_dir)
        assert [i.nodes for i in listed] == [7, 6, 5, 4, 3, 2, 1]
        assert all(i.name.startswith("freesound_library_backup_") for i in listed)
        assert all(i.name.endswith(".db.gz") for i in listed)
        deleted = prune_backups(library_dir, 5)
        assert [i.nodes for i in deleted] == [2, 1]
        assert len(list_backups(library_dir)) == 5
        lib.add_sample(make_sound(100))
    three = next(i for i in list_backups(library_dir) if i.nodes == 3)
    aside = restore_backup(library_dir, three.name)
    assert aside is not None and aside.exists()
    with FreesoundLibrary(library_dir) as lib:
        assert lib.stats().samples == 3
    kept = sqlite3.connect(aside)
    assert kept.execute("SELECT count(*) FROM samples").fetchone()[0] == 8
    kept.close()


def test_restore_refuses_a_bad_backup_and_changes_nothing(library_dir):
    _fill(library_dir, 5)
    with FreesoundLibrary(library_dir) as lib:
        info = create_backup(lib)
    info.path.write_bytes(gzip.compress(b"not sqlite at all" * 100))
    before = (library_dir / DB_NAME).read_bytes()
    with pytest.raises(BackupError, match="nothing was replaced"):
        restore_backup(library_dir, info.name)
    assert (library_dir / DB_NAME).read_bytes() == before
    with pytest.raises(BackupError, match="no backup named"):
        restore_backup(library_dir, "freesound_library_backup_1nodes_20000101_000000.db.gz")


def test_bulk_add_matches_one_by_one(library_dir, tmp_path):
    edges = [(i, i + 1, "similar", 0.5, 1) for i in range(1, 60)] + [(1, 999, "similar", 0.1, 2)]
    with FreesoundLibrary(library_dir) as lib:
        lib.add_sample(make_sound(1))
        assert lib.bulk_add([make_sound(i) for i in range(1, 51)], edges) == 49
        stats = lib.stats()
        assert (stats.samples, stats.edges, stats.pending_edges) == (50, 49, 11)
        assert lib.add_sample(make_sound(51)).edges == 1  # 50 -> 51; 51 -> 52 waits
        assert lib.verify() == []
