"""`easy-oww freesound import-pickle`: the seed's joblib file carried over, and hostile
pickles refused before anything in them runs."""

from __future__ import annotations

import datetime
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
