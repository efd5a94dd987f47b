"""`easy-oww freesound import-pickle`: the seed's joblib file carried over, and hostile
pickles refused before anything in them runs."""

from __future__ import annotations

import collections
import datetime
import gzip
import json
import os
import pickle
import zlib

import joblib
import networkx as nx
import pytest

from easy_oww.freesound import FreesoundLibrary
from tests.freesound.conftest import make_sound, run_cli


def seed_state(n: int = 40, extra: int = 15) -> dict:
    """The seed's state as its code built it: a DiGraph of samples with a few attributes,
    typed edges, the full API dicts in sound_cache (plus sounds met but not added), the
    processed ids and some metadata."""
    graph = nx.DiGraph()
    cache = {}
    for i in range(1, n + 1):
        sound = make_sound(i, user=f"user{i % 4}")
        cache[i] = sound
        graph.add_node(i, **{k: sound[k] for k in ("name", "tags", "duration", "username")})
    for i in range(2, n + 1):
        graph.add_edge(i, i - 1, type="similar", weight=round(1 - i / 100, 3))
        if i % 4 == 0:
            graph.add_edge(i, i - 4 if i > 4 else 1, type="by_same_user", weight=1.0)
        if i % 5 == 0:
            graph.add_edge(i, 1, type="similar_tags", weight=0.5)
    for i in range(n + 1, n + extra + 1):
        cache[i] = make_sound(i)
    _ = graph.nodes[1], graph.adj  # networkx caches its views; they get pickled too
    # what the seed's code may have left in attributes: a set, a tuple, a datetime
    graph.nodes[2]["added"] = datetime.datetime(2025, 11, 10, 14, 30, 22)
    graph.nodes[2]["tag_set"] = {"rain", "field-recording"}
    cache[3]["geotag"] = (51.5, -0.12)
    return {"graph": graph, "processed_ids": set(range(1, 11)), "sound_cache": cache,
            "metadata": {"last_updated": 1731234567.5, "total_nodes": n}}


def import_cli(path, *extra):
    return run_cli(["freesound", "import-pickle", str(path), *extra])


def test_seed_library_is_carried_over_once(env, tmp_path):
    path = tmp_path / "freesound_library.pkl"
    state = seed_state()
    joblib.dump(state, path, compress=3)  # exactly how the seed saved it
    out = import_cli(path, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    similar = sum(1 for *_, d in state["graph"].edges(data=True) if d["type"] == "similar")
    assert (doc["samples"], doc["edges"], doc["seen"], doc["expanded"]) == (40, similar, 15, 10)
    assert doc["skipped"] == {"by_same_user edges (derived here, not stored)": 10,
                              "similar_tags edges": 8}
    with FreesoundLibrary(env["library"]) as lib:
        assert lib.verify() == []
        assert lib.stored_ids() == set(range(1, 41))
        sample = lib.get(7)
        assert {k: sample[k] for k in state["sound_cache"][7]} == state["sound_cache"][7]
        assert (7, 6, "similar", 0.93, None) in lib.edges_of(7)
        assert lib.stats().expanded == 10 and lib.stats().seen == 15
        assert lib.history()[-1]["status"] == "imported"
        assert lib.graph(derived=True).number_of_edges() > similar  # same_user, derived
        two, three = lib.get(2), lib.get(3)
        assert two["added"] == "2025-11-10T14:30:22"
        assert two["tag_set"] == ["field-recording", "rain"] and three["geotag"] == [51.5, -0.12]
    again = import_cli(path, "--json")
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert (doc["samples"], doc["already"], doc["edges"], doc["seen"]) == (0, 40, 0, 0)
    text = import_cli(path)
    assert "Imported 0 samples (40 already there)" in text.stdout
    assert "left out: 8 similar_tags edges" in text.stdout


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _ExecExploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('x')",))


@pytest.mark.parametrize("exploit", [_Exploit, _ExecExploit], ids=["os.system", "exec"])
def test_hostile_pickle_is_refused_before_anything_runs(env, tmp_path, exploit):
    marker = tmp_path / "pwned"
    state = seed_state(5, 0)
    state["metadata"]["x"] = exploit(marker)
    path = tmp_path / "freesound_library.pkl"
    path.write_bytes(zlib.compress(pickle.dumps(state), 3))  # joblib's container
    out = import_cli(path)
    assert out.returncode == 2
    assert not marker.exists()
    assert "which is neither plain data nor a networkx graph: refused" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not env["library"].exists()  # nothing written either


def test_networkx_functions_and_private_names_are_refused(tmp_path):
    from easy_oww.errors import BadInputError
    from easy_oww.freesound.seed_pickle import load_seed_state

    # GLOBAL 'networkx.classes.function' 'to_directed' (a function in an allowed package),
    # and a private class name in an allowed module
    for module, name in (("networkx.classes.graph", "nx"),
                         ("networkx.classes.reportviews", "_private"),
                         ("networkx.classes.function", "freeze")):
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(b"\x80\x02c" + f"{module}\n{name}\n".encode() + b")R.")
        with pytest.raises(BadInputError, match="refused"):
            load_seed_state(path)


def test_bad_files_get_one_line(env, tmp_path):
    cases = {
        "missing.pkl": None,
        "text.pkl": b"not a pickle at all",
        "cut.pkl": zlib.compress(pickle.dumps(seed_state(5, 0)), 3)[:200],
        "list.pkl": zlib.compress(pickle.dumps([1, 2, 3])),
        "bomb.pkl": zlib.compress(b"\0" * (100 << 20), 9),
    }
    messages = {"missing.pkl": "does not exist", "text.pkl": "is not a joblib or pickle file",
                "cut.pkl": "is damaged", "list.pkl": "is not a seed library",
                "bomb.pkl": "decompression bomb"}
    for name, data in cases.items():
        path = tmp_path / name
        if data is not None:
            path.write_bytes(data)
        out = import_cli(path)
        assert out.returncode == 2, (name, out.stderr)
        assert messages[name] in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert not env["library"].exists()


def test_import_during_a_grow_is_refused_with_75(env, tmp_path):
    from easy_oww.freesound.crawl import grow_lock

    path = tmp_path / "freesound_library.pkl"
    joblib.dump(seed_state(5, 0), path, compress=3)
    with grow_lock(env["library"]):  # a `grow` (or restore) running on the library
        out = import_cli(path)
    assert out.returncode == 75 and "is using the library" in out.stderr
    assert import_cli(path).returncode == 0  # and once it is done, the import goes through


def test_the_import_run_in_process_carries_everything_over_once(tmp_path):
    """The CLI's import, called as the library function it is thin over (so mutation testing
    sees which tests reach it)."""
    from easy_oww.freesound.seed_pickle import import_seed_pickle_run

    path = tmp_path / "freesound_library.pkl"
    state = seed_state()
    joblib.dump(state, path, compress=3)
    folder = tmp_path / "lib"
    result, stats = import_seed_pickle_run(folder, path)
    similar = sum(1 for *_, d in state["graph"].edges(data=True) if d["type"] == "similar")
    assert (result.samples, result.already, result.edges, result.seen, result.expanded) == (
        40, 0, similar, 15, 10)
    assert result.skipped == {"by_same_user edges (derived here, not stored)": 10,
                              "similar_tags edges": 8}
    assert (stats.samples, stats.edges, stats.seen, stats.expanded) == (40, similar, 15, 10)
    with FreesoundLibrary(folder) as lib:
        assert lib.verify() == [] and lib.history()[-1]["status"] == "imported"
        assert (7, 6, "similar", 0.93, None) in lib.edges_of(7)
        assert lib.get(3)["geotag"] == [51.5, -0.12]
        processed = {r for r in range(1, 41) if lib.get(r)["_expanded"]}
        assert processed == set(range(1, 11))
    again, _ = import_seed_pickle_run(folder, path)
    assert (again.samples, again.already, again.edges, again.seen, again.expanded) == (
        0, 40, 0, 0, 0)


@pytest.mark.parametrize("name, data, message", [
    ("missing.pkl", None, "does not exist"),
    ("text.pkl", b"not a pickle at all", "is not a joblib or pickle file"),
    ("cut.pkl", zlib.compress(pickle.dumps({"graph": 1, "x": list(range(500))}), 3)[:200],
     "is damaged"),
    ("list.pkl", zlib.compress(pickle.dumps([1, 2, 3])), "is not a seed library"),
    ("plain.pkl", pickle.dumps({"no graph": 1}), "is not a seed library"),
])
def test_bad_files_are_refused_in_process(tmp_path, name, data, message):
    from easy_oww.errors import BadInputError
    from easy_oww.freesound.seed_pickle import load_seed_state

    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(BadInputError, match=message):
        load_seed_state(path)


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3)],
                         ids=["plain", "zlib", "gzip", "bz2", "xz"])
def test_every_container_joblib_writes_is_read(tmp_path, compress):
    from easy_oww.freesound.seed_pickle import load_seed_state

    path = tmp_path / "freesound_library.pkl"
    joblib.dump(seed_state(5, 2), path, compress=compress)
    state = load_seed_state(path)
    assert sorted(state["graph"].nodes) == [1, 2, 3, 4, 5] and len(state["sound_cache"]) == 7


@pytest.fixture(scope="module")
def just_over_64_mib_of_zeros():
    """Compressed by zlib and by gzip: one byte more than a small file may unpack to."""
    zeros = b"\0" * ((64 << 20) + 1)
    return {"zlib": zlib.compress(zeros, 1), "gzip": gzip.compress(zeros, 1, mtime=0)}


@pytest.mark.parametrize("container", ["zlib", "gzip"])
def test_a_small_file_unpacking_past_64_mib_is_refused_as_a_bomb(tmp_path, container,
                                                                  just_over_64_mib_of_zeros):
    from easy_oww.errors import BadInputError
    from easy_oww.freesound.seed_pickle import load_seed_state

    path = tmp_path / "bomb.pkl"
    path.write_bytes(just_over_64_mib_of_zeros[container])
    with pytest.raises(BadInputError, match="decompression bomb"):
        load_seed_state(path)


def test_a_small_file_that_compresses_very_well_is_not_a_bomb(tmp_path):
    """Far more than 200 times its size, but within the 64 MiB every file may unpack to."""
    from easy_oww.freesound.seed_pickle import load_seed_state

    state = seed_state(3, 0)
    state["metadata"]["padding"] = b"\0" * (4 << 20)
    path = tmp_path / "freesound_library.pkl"
    path.write_bytes(zlib.compress(pickle.dumps(state), 9))
    assert path.stat().st_size * 200 < 4 << 20
    assert len(load_seed_state(path)["metadata"]["padding"]) == 4 << 20


def test_a_refused_class_is_named_with_the_file_that_asked(tmp_path):
    from easy_oww.errors import BadInputError
    from easy_oww.freesound.seed_pickle import load_seed_state

    path = tmp_path / "hostile.pkl"
    path.write_bytes(b"\x80\x02cos\nsystem\n)R.")
    with pytest.raises(BadInputError) as refused:
        load_seed_state(path)
    assert str(refused.value).startswith(f"{path} asks to load os.system, which")


def odd_seed_state() -> dict:
    """What a seed state may hold besides the usual: ids as text, bad ids, cache entries
    under text keys, an untyped edge, a kind= edge, bad ends, a weight that is not a number,
    a malformed sample, attributes JSON cannot hold. The odd ones come first, so stopping at
    one (a `break` for a `continue`) would lose the rest."""
    graph = nx.DiGraph()
    for bad in ("abc", 0, -3, True):
        graph.add_node(bad, name="bad id")
    graph.add_node(7)  # its cache entry is under "7"
    graph.add_node("8")  # its cache entry is under 8
    graph.add_node("010")  # its cache entry is under "010" only
    graph.add_node(11, name="no cache entry", tags=["x"])
    graph.add_node(12, name="malformed", duration="long")
    graph.add_node(13, name="odd attributes", blob=b"caf\xc3\xa9 \xff", mixed={3, "a", 1.5},
                   z=1 + 2j)
    graph.add_node(14, name="after the odd ones")
    graph.add_edge(7, "8")  # no type: similar
    graph.add_edge(7, 7, type="similar")  # a loop
    graph.add_edge(7, "abc", type="similar")  # a bad end
    graph.add_edge("8", 7, kind="in_same_pack")
    graph.add_edge(11, 7, type="similar", weight="high")
    graph.add_edge(14, 7, type="similar", weight=0.25)
    cache = {"7": make_sound(7), 8: make_sound(8), "010": make_sound(10), 20: make_sound(20),
             "21": {"name": "seen under a text key"}, 22: "not a dict"}
    return {"graph": graph, "processed_ids": {"7", 14, 99}, "sound_cache": cache,
            "metadata": {}}


def test_an_odd_seed_state_is_carried_over_as_far_as_it_can_be(tmp_path):
    from easy_oww.freesound.seed_pickle import import_seed_pickle

    with FreesoundLibrary(tmp_path / "lib") as lib:
        # the state already read: the path is not read again (here it does not exist)
        result = import_seed_pickle(lib, tmp_path / "absent.pkl", odd_seed_state())
        assert lib.stored_ids() == {7, 8, 10, 11, 13, 14}
        assert (result.samples, result.edges, result.seen, result.expanded) == (6, 3, 2, 2)
        assert result.skipped == {"nodes whose id is not a positive integer": 4,
                                  "samples with malformed fields": 1,
                                  "in_same_pack edges (derived here, not stored)": 1,
                                  "edges with a bad end": 2}
        for sound_id in (7, 8, 10):
            assert lib.get(sound_id)["url"] == make_sound(sound_id)["url"]
        assert (7, 8, "similar", None, None) in lib.edges_of(7)
        assert (11, 7, "similar", None, None) in lib.edges_of(11)
        assert (14, 7, "similar", 0.25, None) in lib.edges_of(14)
        odd = lib.get(13)
        assert (odd["blob"], odd["mixed"], odd["z"]) == ("café \ufffd", ["a", 1.5, 3], "(1+2j)")
        assert lib.seen_metadata(20)["url"] == make_sound(20)["url"]
        assert lib.seen_metadata(21) == {"name": "seen under a text key"}
        assert {s for s in lib.stored_ids() if lib.get(s)["_expanded"]} == {7, 14}
    assert result.as_dict() == {"samples": 6, "already": 0, "seen": 2, "edges": 3,
                                "expanded": 2, "skipped": result.skipped}  # what --json prints


def test_an_import_is_one_run_in_the_history_finished_or_failed(tmp_path):
    from easy_oww.errors import BadInputError
    from easy_oww.freesound.seed_pickle import import_seed_pickle_run

    folder = tmp_path / "lib"
    result, _ = import_seed_pickle_run(folder, tmp_path / "absent.pkl", seed_state(5, 0))
    assert result.samples == 5
    with pytest.raises(BadInputError, match="does not exist"):
        import_seed_pickle_run(folder, tmp_path / "absent.pkl")
    with FreesoundLibrary(folder) as lib:
        done, failed = lib.history()[-2:]
    assert (done["status"], done["samples_added"], done["requests"]) == ("imported", 5, 0)
    assert (failed["status"], failed["samples_added"], failed["requests"]) == ("failed", 0, 0)
    assert done["finished_at"] and failed["finished_at"] and done["samples"] == 5


@pytest.mark.parametrize("attribute", ["nodes", "edges"])
def test_a_graph_with_nodes_or_edges_but_not_both_is_not_a_seed_library(tmp_path, attribute):
    """An allowed class (OrderedDict) given one attribute by the pickle's state: read, then
    refused in one line rather than failing half way through the import."""
    from easy_oww.errors import BadInputError
    from easy_oww.freesound.seed_pickle import load_seed_state

    odd = collections.OrderedDict()
    setattr(odd, attribute, 1)
    path = tmp_path / "odd.pkl"
    path.write_bytes(pickle.dumps({"graph": odd}))
    with pytest.raises(BadInputError, match="is not a seed library"):
        load_seed_state(path)
