"""Exports. (The map, `visualize`, is tested in real headless Chromium in test_map.py.)"""

from __future__ import annotations

import json

import networkx as nx

from easy_oww.freesound import FreesoundLibrary, GrowOptions, grow
from tests.freesound.conftest import KEY, files_containing, run_cli


def _grow(fs, env, samples=120):
    grow(env["library"], KEY, GrowOptions(samples=samples), base_url=fs.base_url,
         per_minute=100000, handle_signals=False)
    with FreesoundLibrary(env["library"]) as lib:
        return lib.stats()


def test_exports_json_jsonl_graphml(fs, env, tmp_path):
    stats = _grow(fs, env)
    for fmt in ("json", "jsonl", "graphml"):
        out = run_cli(["freesound", "export", tmp_path / f"lib.{fmt}", "--format", fmt])
        assert out.returncode == 0, out.stderr
        assert "private" in out.stdout
    doc = json.loads((tmp_path / "lib.json").read_text())
    assert len(doc["nodes"]) == stats.samples and len(doc["edges"]) == stats.edges
    lines = [json.loads(x) for x in (tmp_path / "lib.jsonl").read_text().splitlines()]
    samples = [line["data"] for line in lines if line["type"] == "sample"]
    assert len(samples) == stats.samples and all("previews" in x for x in samples)
    assert sum(line["type"] == "edge" for line in lines) == stats.edges
    graph = nx.read_graphml(tmp_path / "lib.graphml")
    assert graph.number_of_edges() == stats.edges
    assert files_containing([tmp_path], KEY.encode()) == []
