"""Issue 9: every export format deterministic; GraphML and GEXF round-trip through networkx
with their attributes; CSV as nodes.csv + edges.csv; --derived in every format."""

from __future__ import annotations

import csv
import json
import re

import networkx as nx
import pytest

from easy_oww.freesound import FreesoundLibrary, GrowOptions, grow
from easy_oww.freesound.errors import BadInputError
from easy_oww.freesound.export import (
    NODE_FIELDS,
    PRIVATE_NOTICE,
    WRITERS,
    ExportFormat,
    export_library,
    write_json,
)
from tests.freesound.conftest import KEY, make_sound, run_cli


@pytest.fixture
def grown(fs, env):
    """A library grown from the stand-in (real answers: packs missing on some samples, so
    missing attribute values too), with similar edges."""
    grow(env["library"], KEY, GrowOptions(samples=59, expand_every=4), base_url=fs.base_url,
         per_minute=100000, handle_signals=False)
    with FreesoundLibrary(env["library"]) as lib:  # and a name XML must escape
        lib.add_sample(make_sound(999_999) | {"name": 'a "b" <c> & \'d\'\nline\ttab\r'})
    return env["library"]


def _expected(graph: nx.DiGraph) -> tuple[dict, dict]:
    nodes = {n: {k: v for k, v in a.items() if v is not None} for n, a in graph.nodes(data=True)}
    edges = {(u, v): {k: x for k, x in a.items() if x is not None}
             for u, v, a in graph.edges(data=True)}
    return nodes, edges


@pytest.mark.parametrize("derived", [False, True])
def test_graphml_and_gexf_round_trip_through_networkx_with_attributes(grown, tmp_path, derived):
    with FreesoundLibrary(grown) as lib:
        graph = lib.graph(derived=derived)
        export_library(lib, tmp_path / "lib.graphml", "graphml", derived=derived)
        export_library(lib, tmp_path / "lib.gexf", "gexf", derived=derived)
    nodes, edges = _expected(graph)
    assert any("pack" not in attrs for attrs in nodes.values())  # missing values happen
    assert {a["kind"] for a in edges.values()} == (
        {"similar", "same_user", "same_pack"} if derived else {"similar"})

    back = nx.read_graphml(tmp_path / "lib.graphml", node_type=int)
    assert isinstance(back, nx.DiGraph)
    assert dict(back.nodes(data=True)) == nodes
    assert {(u, v): a for u, v, a in back.edges(data=True)} == edges
    assert back.graph["notice"] == PRIVATE_NOTICE

    back = nx.read_gexf(tmp_path / "lib.gexf", node_type=int)
    assert isinstance(back, nx.DiGraph)
    for node, attrs in back.nodes(data=True):
        label = attrs.pop("label")
        assert label == nodes[node].get("name", str(node))  # Gephi shows the sample's name
        assert attrs == nodes[node]
    assert {(u, v): {k: x for k, x in a.items() if k != "id"}
            for u, v, a in back.edges(data=True)} == edges
    assert PRIVATE_NOTICE in (tmp_path / "lib.gexf").read_text()


def test_every_format_gives_the_same_bytes_for_the_same_library(grown, tmp_path):
    def snapshot(folder):
        return {p.relative_to(folder).as_posix(): p.read_bytes()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    for run in ("first", "second"):
        for name in WRITERS:
            for derived in (False, True):
                out = run_cli(["freesound", "export", tmp_path / run / f"lib-{derived}.{name}",
                               "--format", name, *(["--derived"] if derived else [])])
                assert out.returncode == 0, out.stderr
                assert out.stdout.endswith(PRIVATE_NOTICE + "\n")
    assert snapshot(tmp_path / "first") == snapshot(tmp_path / "second")
    # stable order: nodes by id, edges by (source, target, kind)
    doc = json.loads((tmp_path / "first" / "lib-False.json").read_text())
    ids = [n["id"] for n in doc["nodes"]]
    assert ids == sorted(ids) and len(ids) == 60
    pairs = [(e["source"], e["target"], e["kind"]) for e in doc["edges"]]
    assert pairs == sorted(pairs)
    # GEXF: dated by the library's newest sample, not by the day it was written
    with FreesoundLibrary(grown) as lib:
        newest = lib.last_added()[:10]
    gexf = (tmp_path / "first" / "lib-False.gexf").read_text()
    assert re.search(r'lastmodifieddate="([\d-]+)"', gexf).group(1) == newest


def test_csv_writes_nodes_and_edges_into_a_folder(grown, tmp_path):
    target = tmp_path / "tables"
    out = run_cli(["freesound", "export", target, "--format", "csv", "--derived"])
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in target.iterdir()) == ["NOTICE.txt", "edges.csv", "nodes.csv"]
    assert (target / "NOTICE.txt").read_text() == PRIVATE_NOTICE + "\n"
    with FreesoundLibrary(grown) as lib:
        nodes, edges = _expected(lib.graph(derived=True))
    with open(target / "nodes.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", *NODE_FIELDS]
    assert [int(r["id"]) for r in rows] == sorted(nodes)
    for row in rows:
        attrs = nodes[int(row["id"])]
        assert row["name"] == attrs["name"] and row["username"] == attrs["username"]
        assert row["pack"] == (str(attrs["pack"]) if "pack" in attrs else "")  # empty: none
        assert float(row["duration"]) == attrs["duration"]
        assert row["expanded"] == str(attrs["expanded"])
    with open(target / "edges.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["source", "target", "kind", "weight", "rank"]
    assert {(int(r["source"]), int(r["target"])): r["kind"] for r in rows} == {
        pair: attrs["kind"] for pair, attrs in edges.items()}
    assert out.stdout.startswith(f"Wrote 60 samples and {len(edges)} edges to {target}.")


def test_jsonl_with_derived_carries_the_derived_edges_and_merge_leaves_them_out(grown,
                                                                                tmp_path):
    target = tmp_path / "lib.jsonl"
    out = run_cli(["freesound", "export", target, "--format", "jsonl", "--derived"])
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    with FreesoundLibrary(grown) as lib:
        _, edges = _expected(lib.graph(derived=True))
    written = {(x["source"], x["target"]): x["kind"] for x in lines if x["type"] == "edge"}
    assert written == {pair: attrs["kind"] for pair, attrs in edges.items()}
    merged = run_cli(["freesound", "merge", target, "--json"])
    assert merged.returncode == 0, merged.stderr
    doc = json.loads(merged.stdout)
    derived = sum(kind != "similar" for kind in written.values())
    assert sum(doc["left_out"].values()) == derived > 0
    assert doc["edges"] == 0  # nothing new: the derived edges are computed, never stored


def test_a_format_without_edges_would_refuse_derived_in_one_line(grown, tmp_path, monkeypatch):
    monkeypatch.setitem(WRITERS, "nodes-only", ExportFormat(write_json, "test",
                                                            takes_derived=False))
    with FreesoundLibrary(grown) as lib, pytest.raises(BadInputError) as caught:
        export_library(lib, tmp_path / "x", "nodes-only", derived=True)
    assert str(caught.value).endswith("exports; nodes-only has no edges")
    assert not (tmp_path / "x").exists()


def test_output_of_the_wrong_kind_is_one_line(grown, tmp_path):
    (tmp_path / "file.txt").write_text("x")
    out = run_cli(["freesound", "export", tmp_path / "file.txt", "--format", "csv"])
    assert out.returncode == 2
    assert out.stderr == (f"Error: {tmp_path / 'file.txt'} is a file; --format csv writes a "
                          "folder (nodes.csv, edges.csv): name a folder\n")
    out = run_cli(["freesound", "export", tmp_path, "--format", "gexf"])
    assert out.returncode == 2
    assert out.stderr == f"Error: {tmp_path} is a folder; --format gexf writes one file: " \
                         "name a file\n"
