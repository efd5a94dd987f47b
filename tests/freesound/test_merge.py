"""Issue 9: `freesound merge SOURCE` (a library folder or a JSON lines export): a union that
does not depend on order or repeats, the newer metadata winning; bad sources refused in one
line with nothing written."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from easy_oww.freesound import FreesoundLibrary, GrowOptions, grow, grow_lock
from easy_oww.freesound.export import JSONL_FORMAT, PRIVATE_NOTICE, export_library
from easy_oww.freesound.merge import merge_library
from easy_oww.freesound.schema import DB_NAME
from tests.freesound.conftest import KEY, make_sound, run_cli
from tests.freesound.test_edges import _as_nobody, _tree, world_dir  # noqa: F401 (a fixture)


def _grow(fs, folder, samples, *queries):
    grow(folder, KEY, GrowOptions(samples=samples, queries=queries, expand_every=3),
         base_url=fs.base_url, per_minute=100000, handle_signals=False)


def _jsonl(folder: Path, target: Path) -> bytes:
    with FreesoundLibrary(folder) as lib:
        export_library(lib, target, "jsonl")
    return target.read_bytes()


def _merge(target: Path, source: Path, *extra):
    out = run_cli(["freesound", "--library", target, "merge", source, "--json", *extra])
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def two_libraries(fs, tmp_path):
    """Two libraries grown from different searches of the same stand-in: they overlap in
    samples, and each holds edges waiting for samples only the other stored."""
    a, b = tmp_path / "a", tmp_path / "b"
    _grow(fs, a, 40, "rain")
    _grow(fs, b, 40, "street", "rain")
    with FreesoundLibrary(a) as lib_a, FreesoundLibrary(b) as lib_b:
        assert lib_a.stored_ids() & lib_b.stored_ids()
        assert lib_a.stored_ids() != lib_b.stored_ids()
        assert lib_a.stats().pending_edges and lib_a.stats().seen
        # B stores a few samples A only links to (as a teammate's crawl would)
        waiting = lib_a._read("SELECT DISTINCT target FROM pending_edges ORDER BY target")
        for (sound_id,) in waiting[:3]:
            assert lib_b.add_sample(make_sound(sound_id)).added
    return a, b


def test_merge_order_does_not_matter_and_twice_is_once(two_libraries, tmp_path):
    a, b = two_libraries
    a2, b2 = tmp_path / "a2", tmp_path / "b2"
    shutil.copytree(a, a2)
    shutil.copytree(b, b2)
    a_jsonl = _jsonl(a, tmp_path / "a.jsonl")
    assert _jsonl(a2, tmp_path / "a2.jsonl") == a_jsonl  # the same library, the same bytes
    with FreesoundLibrary(a) as lib_a, FreesoundLibrary(b) as lib_b:
        only_b = lib_b.stored_ids() - lib_a.stored_ids()
        union = lib_a.stored_ids() | lib_b.stored_ids()
        waiting_in_a = lib_a._read("SELECT source, target FROM pending_edges")

    first = _merge(a, b)  # A + B, from B's folder
    assert first["source_kind"] == "library" and first["samples"] == len(only_b)
    _merge(b2, tmp_path / "a.jsonl")  # B + A, from A's export
    ab, ba = _jsonl(a, tmp_path / "ab.jsonl"), _jsonl(b2, tmp_path / "ba.jsonl")
    assert ab == ba

    again = _merge(a, b)  # twice is once
    assert {k: again[k] for k in ("samples", "updated", "edges", "seen", "expanded")} == dict(
        samples=0, updated=0, edges=0, seen=0, expanded=0)
    assert _jsonl(a, tmp_path / "ab2.jsonl") == ab
    again = _merge(a, tmp_path / "ba.jsonl")  # the merged library's own export: nothing new
    assert again["samples"] == again["edges"] == again["seen"] == 0
    assert _jsonl(a, tmp_path / "ab3.jsonl") == ab

    with FreesoundLibrary(a) as lib:
        assert lib.stored_ids() == union
        assert lib.verify() == []
        # edges that waited in A for a sample only B stored are edges now
        now_edges = {(s, t) for s, t in lib._read("SELECT source, target FROM edges")}
        landed = [(s, t) for s, t in waiting_in_a if s in union and t in union]
        assert landed and all(pair in now_edges for pair in landed)
        assert lib.history()[-1]["status"] == "merged"
    # expansion marks: every sample expanded in either library is expanded in the merge
    marks = {}
    for line in (tmp_path / "a2.jsonl").read_text().splitlines()[1:] + \
            (tmp_path / "ba.jsonl").read_text().splitlines()[1:]:
        record = json.loads(line)
        if record["type"] == "sample" and record["expanded"]:
            marks[record["id"]] = record["expanded"]
    with FreesoundLibrary(a) as lib:
        assert all(lib.get(i)["_expanded"] for i, mark in marks.items() if mark == 1)


def test_merge_three_ways_in_any_grouping(fs, tmp_path):
    libs = [tmp_path / name for name in "xyz"]
    for folder, query in zip(libs, ("rain", "room", "crowd"), strict=True):
        _grow(fs, folder, 15, query)
    exports = [tmp_path / f"{folder.name}.jsonl" for folder in libs]
    for folder, target in zip(libs, exports, strict=True):
        _jsonl(folder, target)
    results = []
    for order in ((0, 1, 2), (2, 0, 1), (1, 2, 0)):
        target = tmp_path / f"m{''.join(map(str, order))}"
        shutil.copytree(libs[order[0]], target)
        for i in order[1:]:
            merge_library(target, exports[i])
        results.append(_jsonl(target, tmp_path / f"{target.name}.jsonl"))
    # exports joined with `cat` (each keeps its header) merge as the three did one by one
    joined = tmp_path / "joined.jsonl"
    joined.write_bytes(b"".join(path.read_bytes() for path in exports))
    merge_library(tmp_path / "fresh", joined)
    results.append(_jsonl(tmp_path / "fresh", tmp_path / "fresh.jsonl"))
    assert results[0] == results[1] == results[2] == results[3]


def _record(sound_id, added_at, downloads, **marks):
    data = make_sound(sound_id, downloads=downloads)
    return {"type": "sample", "id": sound_id, "added_at": added_at,
            "expanded": marks.get("expanded", 0), "deleted": marks.get("deleted", 0),
            "note": marks.get("note"), "data": data}


def _write_jsonl(path: Path, *records) -> Path:
    header = {"type": "header", "format": JSONL_FORMAT, "version": 2}
    path.write_text("".join(json.dumps(r) + "\n" for r in (header, *records)))
    return path


def test_the_newer_metadata_wins_whichever_comes_first(tmp_path):
    old = _write_jsonl(tmp_path / "old.jsonl", _record(7, "2026-01-01T00:00:00Z", 5,
                                                       expanded=1),
                       _record(8, "2026-03-01T00:00:00Z", 80))
    new = _write_jsonl(tmp_path / "new.jsonl", _record(7, "2026-02-01T00:00:00Z", 99),
                       _record(8, "2026-02-01T00:00:00Z", 1, note="kept"))
    exports = []
    for first, second in ((old, new), (new, old)):
        target = tmp_path / f"lib-{first.stem}"
        merge_library(target, first)
        result, _ = merge_library(target, second)
        assert result.samples == 0
        with FreesoundLibrary(target) as lib:
            assert lib.get(7)["num_downloads"] == 99  # February's answer beats January's
            assert lib.get(8)["num_downloads"] == 80  # March's beats February's
            assert lib.get(7)["_expanded"]  # the mark stays, whoever had it
            assert lib._read("SELECT note FROM samples WHERE id = 8") == [("kept",)]
        exports.append(_jsonl(target, tmp_path / f"{target.name}.jsonl"))
    assert exports[0] == exports[1]
    result, _ = merge_library(tmp_path / "lib-old", new)
    assert result.updated == 0  # already the newer one


def test_merge_from_the_first_jsonl_shape_one_raw_sample_a_line(tmp_path):
    source = tmp_path / "samples.jsonl"
    source.write_text("".join(json.dumps(make_sound(i)) + "\n" for i in (3, 4, 5)))
    out = run_cli(["freesound", "--library", tmp_path / "lib", "merge", source])
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"Merged {source}: added 3 samples (0 updated with newer metadata), 0 edges, "
        "0 seen ids and 0 expansion marks.",
        f"The library has 3 samples and 0 edges ({tmp_path / 'lib'}).",
        PRIVATE_NOTICE,
    ]
    with FreesoundLibrary(tmp_path / "lib") as lib:
        assert lib.stored_ids() == {3, 4, 5} and lib.verify() == []
    # any dated copy of a sample is newer than one from the undated shape
    dated = _write_jsonl(tmp_path / "dated.jsonl", _record(4, "2026-01-01T00:00:00Z", 777))
    assert _merge(tmp_path / "lib", dated)["updated"] == 1
    assert _merge(tmp_path / "lib", source)["updated"] == 0


def _bad_sources(tmp_path: Path, good: Path) -> dict[str, tuple[Path, str]]:
    lines = good.read_text().splitlines()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "text.txt").write_text("hello\n")
    (bad / "cut.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:40] + "\n")
    (bad / "foreign.jsonl").write_text('{"type": "header", "format": "other", "version": 1}\n')
    (bad / "newer.jsonl").write_text(json.dumps(
        {"type": "header", "format": JSONL_FORMAT, "version": 99}) + "\n")
    (bad / "doc.json").write_text(json.dumps({"nodes": [], "edges": []}, indent=1))
    edge = json.loads(lines[1])
    (bad / "wrong.jsonl").write_text(lines[0] + "\n" + json.dumps(
        {**edge, "type": "sample", "data": {"id": "x"}}) + "\n")
    (bad / "empty_folder").mkdir()
    (bad / "damaged").mkdir()
    (bad / "damaged" / DB_NAME).write_bytes(b"this is not a database" * 500)
    return {
        "text": (bad / "text.txt", "line 1: not JSON"),
        "cut": (bad / "cut.jsonl", "line 4: not JSON"),
        "foreign": (bad / "foreign.jsonl", "line 1: a header of format 'other'"),
        "newer": (bad / "newer.jsonl", "line 1: version 99 is newer than this easy-oww reads"),
        "doc": (bad / "doc.json", "line 1: not JSON"),
        "wrong": (bad / "wrong.jsonl", "line 2: a sample whose data is not an object with "
                                       "its id"),
        "sqlite file": (tmp_path / "lib" / DB_NAME, "is an SQLite file; name the library "
                                                    "folder that holds it"),
        "empty folder": (bad / "empty_folder", "holds no Freesound library"),
        "damaged": (bad / "damaged",
                    "its library is damaged (not an SQLite database (bad header))"),
        "missing": (bad / "nothing-here", "does not exist"),
    }


def test_a_damaged_or_foreign_source_is_one_line_exit_2_and_nothing_written(fs, tmp_path):
    library = tmp_path / "lib"
    _grow(fs, library, 10, "rain")
    good = tmp_path / "good.jsonl"
    _jsonl(library, good)
    before = _tree(library)
    for name, (source, words) in _bad_sources(tmp_path, good).items():
        out = run_cli(["freesound", "--library", library, "merge", source])
        assert out.returncode == 2, (name, out.stderr)
        assert out.stderr.startswith("Error: ") and out.stderr.count("\n") == 1, (name,
                                                                                 out.stderr)
        assert words in out.stderr, (name, out.stderr)
        assert out.stdout == ""
        assert _tree(library) == before, name
    # a library that was not there is not made by a refused merge
    out = run_cli(["freesound", "--library", tmp_path / "new", "merge", tmp_path / "bad" /
                   "text.txt"])
    assert out.returncode == 2 and not (tmp_path / "new").exists()


def test_merge_holds_the_grow_lock(fs, tmp_path):
    library = tmp_path / "lib"
    _grow(fs, library, 5, "rain")
    source = _write_jsonl(tmp_path / "one.jsonl", _record(9, "2026-01-01T00:00:00Z", 3))
    with grow_lock(library):
        out = run_cli(["freesound", "--library", library, "merge", source])
    assert out.returncode == 75, out.stderr
    assert "is using the library" in out.stderr and out.stderr.count("\n") == 1
    with FreesoundLibrary(library) as lib:
        assert not lib.has(9)


def test_a_read_only_library_refuses_merge_like_every_writing_command(fs, world_dir,  # noqa: F811
                                                                      tmp_path):
    library = world_dir / "library"
    config = world_dir / "config"
    config.mkdir()
    config.chmod(0o777)
    _grow(fs, library, 5, "rain")
    source = _write_jsonl(world_dir / "one.jsonl", _record(9, "2026-01-01T00:00:00Z", 3))
    source.chmod(0o644)
    for path in library.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    library.chmod(0o555)
    before = _tree(library)
    out = _as_nobody(["freesound", "merge", source, "--library", library],
                     {"EASY_OWW_CONFIG_DIR": str(config), "HOME": str(config),
                      "EASY_OWW_WORKSPACE": str(world_dir / "ws")})
    assert out.returncode == 1, out.stderr
    assert out.stderr == (
        f"Error: the Freesound library folder {library} is read-only and this command "
        "writes to it; make it writable, or copy the library to a writable folder\n")
    assert _tree(library) == before


def test_a_failure_inside_the_merge_leaves_the_library_as_it_was(fs, tmp_path):
    """One transaction: here the last statement fails (a trigger standing in for a kill or a
    full disk at the end), and nothing of the merge remains."""
    library = tmp_path / "lib"
    _grow(fs, library, 10, "rain")
    source = tmp_path / "src"
    _grow(fs, source, 20, "street")
    before = _jsonl(library, tmp_path / "before.jsonl")
    with FreesoundLibrary(library) as lib:
        runs = len(lib.history())
    conn = sqlite3.connect(library / DB_NAME)
    conn.execute("CREATE TRIGGER fail_at_the_end BEFORE UPDATE OF finished_at ON runs "
                 "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    conn.commit()
    conn.close()
    with pytest.raises(sqlite3.IntegrityError, match="disk full"):
        merge_library(library, source)
    assert _jsonl(library, tmp_path / "after.jsonl") == before
    with FreesoundLibrary(library) as lib:
        assert len(lib.history()) == runs


@pytest.mark.parametrize("line", [
    '{"type":"edge","source":1,"target":2,"kind":"similar","weight":0.875,"rank":3}',
    '{"type":"pending","source":10,"target":2,"kind":"similar","weight":null,"rank":null}',
    '{"type":"edge","source":1,"target":2,"kind":"similar","weight":1.5e-07,"rank":-1}',
    '{"type":"edge","source":7,"target":8,"kind":"similar","weight":12.0,"rank":150}',
])
def test_edge_lines_read_without_the_json_parser_read_as_with_it(line):
    from easy_oww.freesound.merge import MergeResult, _fast_edge, _parse_record

    fast = _fast_edge(line.encode() + b"\n")
    assert fast is not None
    assert fast == _parse_record(json.loads(line), MergeResult("x", "jsonl"))


def test_a_kill_in_the_middle_of_the_merge_leaves_the_library_as_it_was(fs, tmp_path):
    """SIGKILL once the merge's transaction has written part of its pages (the WAL grows past
    SQLite's page cache while the transaction is open): the library reads as before."""
    import os
    import signal
    import subprocess
    import sys

    library = tmp_path / "lib"
    _grow(fs, library, 10, "rain")
    source = tmp_path / "big"
    with FreesoundLibrary(source) as lib:  # big enough that its transaction spills pages
        lib.bulk_add((make_sound(i) for i in range(1_000_000, 1_030_000)),
                     [(i, i + 1, "similar", 0.5, 1) for i in range(1_000_000, 1_029_999)])
    before = _jsonl(library, tmp_path / "before.jsonl")
    wal = library / f"{DB_NAME}-wal"
    baseline = wal.stat().st_size if wal.exists() else 0
    proc = subprocess.Popen([sys.executable, "-m", "easy_oww", "freesound", "--library",
                             str(library), "merge", str(source)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = False
    while proc.poll() is None:
        if wal.exists() and wal.stat().st_size > baseline + 4_000_000:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
    proc.wait()
    assert killed, "the merge finished before its transaction was seen writing"
    assert proc.returncode == -signal.SIGKILL
    assert _jsonl(library, tmp_path / "after.jsonl") == before
    with FreesoundLibrary(library) as lib:
        assert lib.verify() == []
        assert lib.stats().samples == 10
    with grow_lock(library):  # the dead process's lock went with it
        pass
