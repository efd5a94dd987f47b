"""Exports and the offline HTML page (rendered in real headless Chromium)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

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


def test_visualization_is_self_contained_and_draws_in_headless_chromium(fs, env, tmp_path):
    stats = _grow(fs, env)
    page = tmp_path / "library.html"
    out = run_cli(["freesound", "visualize", page, "--max-nodes", "80"])
    assert out.returncode == 0, out.stderr
    text = page.read_text()
    # no CDN, no external script or stylesheet: the page works offline
    assert not re.search(r"<script[^>]*\bsrc=", text)
    assert not re.search(r"<link[^>]*\bhref=", text)
    assert KEY not in text
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "headless Chromium is needed for this test (apt-get install chromium)"
    dom = subprocess.run(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
         "--proxy-server=127.0.0.1:9",  # any network access would fail
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    drawn = re.search(r'data-drawn="(\d+) (\d+)"', dom)
    assert drawn, dom[:500]
    nodes, edges = int(drawn.group(1)), int(drawn.group(2))
    assert nodes == 80 and 0 < edges <= stats.edges
    assert f"the 80 best connected of {stats.samples}" in dom
