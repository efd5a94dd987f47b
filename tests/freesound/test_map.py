"""The map (`freesound visualize`), opened in real headless Chromium with software WebGL:
what a user sees (a drawing that fills the page, a legend, search, hover, a click panel with
a player), that it needs no network, and that a grow keeps every sample where it was."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from easy_oww.freesound import FreesoundLibrary, GrowOptions, grow
from easy_oww.freesound.layout import full_layout, update_layout
from tests.chromium import Chromium, decode_png
from tests.freesound.conftest import KEY, run_cli, sql

WIDTH, HEIGHT = 1280, 800
BACKGROUND = np.array([0xFB, 0xFB, 0xFD])


@pytest.fixture(scope="module")
def library(standin_session, tmp_path_factory):
    """300 samples grown from the stand-in (a new user's first library), shared read-only by
    the page tests below."""
    folder = tmp_path_factory.mktemp("map") / "library"
    standin_session.set_limits(None, None)
    grow(folder, KEY, GrowOptions(samples=300), base_url=standin_session.base_url,
         per_minute=100000, handle_signals=False)
    with FreesoundLibrary(folder) as lib:
        return folder, lib.stats()


@pytest.fixture(scope="module")
def page_file(library):
    folder, _ = library
    page = folder.parent / "map.html"
    out = run_cli(["freesound", "visualize", page, "--library", folder])
    assert out.returncode == 0, out.stderr
    return page, out.stdout


@pytest.fixture
def browser():
    with Chromium() as chromium:
        yield chromium


def _open(browser, page_file):
    page = browser.open(page_file.as_uri(), width=WIDTH, height=HEIGHT)
    page.wait_for("document.body.dataset.drawn")
    return page


def _drawn_share(png: bytes, top: int) -> tuple[float, float, float]:
    """(share of the graph area inside the drawing's bounding box, share of 40x40-pixel cells
    with something drawn in them, share of pixels drawn) below the header."""
    pixels = decode_png(png)[top:, :, :3].astype(int)
    drawn = np.abs(pixels - BACKGROUND).sum(axis=2) > 30
    height, width = drawn.shape
    rows, cols = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
    if not len(rows):
        return 0.0, 0.0, 0.0
    box = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1) / (height * width)
    cells = drawn[: height // 40 * 40, : width // 40 * 40]
    cells = cells.reshape(height // 40, 40, width // 40, 40).any(axis=(1, 3))
    return float(box), float(cells.mean()), float(drawn.mean())


def test_map_is_one_offline_file_with_the_licences_and_says_what_it_drew(library, page_file):
    folder, stats = library
    page, stdout = page_file
    text = page.read_text()
    assert not re.search(r"<script[^>]*\bsrc=", text)  # no CDN: the script is inside
    assert not re.search(r"<link[^>]*\bhref=", text)
    assert "Permission is hereby granted" in text and "sigma 3.0.3" in text  # the licences
    assert KEY not in text
    assert stdout.startswith(f"Wrote {page}: {stats.samples} samples, ")
    assert f"{stats.samples} samples laid out afresh" in stdout
    assert "positions stored in the library" in stdout and "private" in stdout
    assert sql(folder, "SELECT count(*) FROM positions")[0][0] == stats.samples


def test_map_draws_in_chromium_filling_the_page_without_errors_or_requests(
        library, page_file, browser):
    _, stats = library
    page = _open(browser, page_file[0])
    nodes, edges = map(int, page.evaluate("document.body.dataset.drawn").split())
    assert nodes == stats.samples and 0 < edges <= stats.edges
    assert page.evaluate("document.getElementById('status').textContent") == (
        f"{stats.samples} samples, {edges:,} edges")
    legend = page.evaluate("[...document.querySelectorAll('#legend-items li span')]"
                           ".map(e => e.textContent)")
    assert 2 <= len(legend) <= 13 and legend[-1] == "other"  # the top users, then the rest
    # The drawing alone (header, legend hidden): not blank, and spread over the page.
    page.evaluate("for (const id of ['legend', 'matches']) "
                  "document.getElementById(id).style.display = 'none'")
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    top = page.evaluate("Math.ceil(document.getElementById('graph')"
                        ".getBoundingClientRect().top)")
    box, cells, ink = _drawn_share(page.screenshot(), top)
    assert box >= 0.85, box  # the picture reaches across the page
    assert cells >= 0.5, cells  # ... and fills it (the old page left about 70 % empty)
    assert 0.02 <= ink <= 0.9, ink  # drawn, not a flood of one colour
    assert page.errors == []
    assert [url for url in page.requests if not url.startswith("file:")] == []


def test_search_finds_a_named_sample_and_zooms_to_it(library, page_file, browser):
    folder, _ = library
    sound_id, name = sql(folder, "SELECT id, name FROM samples ORDER BY id LIMIT 1 OFFSET 7")[0]
    page = _open(browser, page_file[0])
    page.evaluate("document.getElementById('search').focus()")
    page.key(name)
    page.press_enter()
    found = page.wait_for("document.body.dataset.matches")
    assert str(sound_id) in found.split()
    matches = page.evaluate("document.getElementById('search-status').textContent")
    assert re.fullmatch(r"\d+ match(es)?", matches), matches
    listed = page.evaluate("[...document.querySelectorAll('#matches li')]"
                           ".map(e => e.textContent)")
    assert any(item.startswith(name) for item in listed)
    # the camera moves in to the match (sigma's ratio < 1 is zoomed in)
    page.wait_for("window.easyOwwMap.renderer.getCamera().ratio < 0.9")
    index = page.evaluate(f"window.easyOwwMap.data.id.indexOf({sound_id})")
    shown = page.evaluate(f"window.easyOwwMap.renderer.getNodeDisplayData('{index}')")
    assert shown["highlighted"] is True
    assert page.errors == []


def test_hover_shows_details_and_click_opens_a_panel_with_the_preview_player(
        library, page_file, browser, fs):
    folder, _ = library
    page = _open(browser, page_file[0])
    sound_id, name, user = sql(folder, "SELECT id, name, username FROM samples "
                                       "ORDER BY num_downloads DESC, id LIMIT 1")[0]
    index = page.evaluate(f"window.easyOwwMap.data.id.indexOf({sound_id})")
    x, y = page.evaluate(
        f"(() => {{ const m = window.easyOwwMap, a = m.graph.getNodeAttributes('{index}');"
        "const p = m.renderer.graphToViewport(a);"
        "const r = document.getElementById('graph').getBoundingClientRect();"
        "return [p.x + r.left, p.y + r.top]; })()")
    page.mouse("mouseMoved", x, y)
    tip = page.wait_for("document.getElementById('tip').style.display === 'block' && "
                        "document.getElementById('tip').textContent")
    assert tip.startswith(f"{name} — {user}")
    page.click(x, y)
    page.wait_for("!document.getElementById('panel').hidden")
    panel = page.evaluate("({name: document.getElementById('p-name').textContent,"
                          " user: document.getElementById('p-user').textContent,"
                          " link: document.getElementById('p-link').href,"
                          " src: document.getElementById('player').src,"
                          " preload: document.getElementById('player').preload})")
    assert panel["name"] == name and panel["user"] == user
    assert panel["link"] == f"https://freesound.org/s/{sound_id}/"
    assert panel["src"].startswith(fs.base_url.split("/apiv2")[0]) and panel["src"].endswith(
        "-hq.mp3")
    assert panel["preload"] == "none"
    assert [u for u in page.requests if u == panel["src"]] == []  # nothing fetched unasked
    before = fs.stats["previews"]
    page.evaluate("document.getElementById('player').play().then(() => 1, () => 0)")
    page.wait_until(lambda: panel["src"] in page.requests)  # pressing play fetches it
    page.wait_until(lambda: fs.stats["previews"] > before)
    assert page.errors == []


def test_grow_keeps_every_placed_sample_where_it_was_and_places_new_ones_beside_neighbours(
        fs, env, tmp_path):
    page = tmp_path / "map.html"
    first = run_cli(["freesound", "grow", "--api-url", fs.base_url, "--samples", "80",
                     "--per-minute", "100000", "--visualize", page])
    assert first.returncode == 0, first.stderr
    assert f"Map: {page} (80 samples, 80 placed now" in first.stdout
    before = dict((i, (x, y)) for i, x, y in sql(env["library"], "SELECT id, x, y FROM positions"))
    assert len(before) == 80
    grown = run_cli(["freesound", "grow", "--api-url", fs.base_url, "--samples", "30",
                     "--per-minute", "100000", "--visualize", page])
    assert grown.returncode == 0, grown.stderr
    assert f"Map: {page} (110 samples, 30 placed now" in grown.stdout
    after = dict((i, (x, y)) for i, x, y in sql(env["library"], "SELECT id, x, y FROM positions"))
    assert {i: after[i] for i in before} == before  # exactly where they were
    new = set(after) - set(before)
    assert len(new) == 30
    # beside their neighbours: closer to a linked sample than a typical pair of samples is
    points = np.array(list(after.values()))
    typical = np.median(np.hypot(*(points[:, None, :] - points[None, :, :]).T))
    links = sql(env["library"], "SELECT source, target FROM edges")
    near = 0
    for sound_id in new:
        others = [t if s == sound_id else s for s, t in links if sound_id in (s, t)]
        if others:
            gap = min(np.hypot(*np.subtract(after[sound_id], after[o])) for o in others)
            near += gap < typical / 2
    assert near >= 0.8 * sum(1 for i in new if any(i in link for link in links))
    # the page draws the kept samples where the last one did
    again = run_cli(["freesound", "visualize", page])
    assert "110 samples kept where they were" in again.stdout, again.stdout
    relaid = run_cli(["freesound", "visualize", page, "--relayout"])
    assert "110 samples laid out afresh" in relaid.stdout, relaid.stdout


def test_color_by_license_and_size_by_degree_reach_the_page_and_its_legend(
        fs, env, tmp_path, browser):
    grow(env["library"], KEY, GrowOptions(samples=60), base_url=fs.base_url,
         per_minute=100000, handle_signals=False)
    page_file = tmp_path / "map.html"
    out = run_cli(["freesound", "visualize", page_file, "--color-by", "license",
                   "--size-by", "degree"])
    assert out.returncode == 0, out.stderr
    page = _open(browser, page_file)
    assert page.evaluate("[document.getElementById('color-by').value,"
                         " document.getElementById('size-by').value]") == ["license", "degree"]
    legend = page.evaluate("[...document.querySelectorAll('#legend-items li span')]"
                           ".map(e => e.textContent)")
    licences = {row[0] for row in sql(env["library"], "SELECT DISTINCT license FROM samples")}
    names = {"CC0" if "zero" in u else "CC BY-NC" if "by-nc" in u else "CC BY" if "/by/" in u
             else "Sampling+" for u in licences}
    assert set(legend) == names
    # the biggest node is the one with the most links
    sizes = page.evaluate("(() => { const m = window.easyOwwMap; return m.graph.nodes()"
                          ".map(n => [m.graph.degree(n), m.graph.getNodeAttribute(n, 'size')])"
                          "})()")
    assert max(sizes, key=lambda s: s[1])[0] == max(s[0] for s in sizes)
    assert page.errors == []
    bad = run_cli(["freesound", "visualize", page_file, "--color-by", "mood"])
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "'mood' is not one of" in bad.stderr


def test_max_nodes_draws_only_the_best_connected(fs, env, tmp_path, browser):
    """The option the README documents: a cap on what is drawn (by default there is none)."""
    grow(env["library"], KEY, GrowOptions(samples=120), base_url=fs.base_url,
         per_minute=100000, handle_signals=False)
    with FreesoundLibrary(env["library"]) as lib:
        stats = lib.stats()
    page_file = tmp_path / "library.html"
    out = run_cli(["freesound", "visualize", page_file, "--max-nodes", "80"])
    assert out.returncode == 0, out.stderr
    assert f"(the 80 best connected of {stats.samples})" in out.stdout
    page = _open(browser, page_file)
    nodes, edges = map(int, page.evaluate("document.body.dataset.drawn").split())
    assert nodes == 80 and 0 < edges <= stats.edges
    status = page.evaluate("document.getElementById('status').textContent")
    assert f"the 80 best connected of {stats.samples}" in status
    assert page.errors == []
    # the whole library was laid out, so an uncapped map later keeps these places
    assert sql(env["library"], "SELECT count(*) FROM positions")[0][0] == stats.samples


# ------------------------------------------------------------------ the layout on its own
def _clusters(sizes, rng):
    edges, start = [], 0
    for size in sizes:
        nodes = np.arange(start, start + size)
        for node in nodes:
            for other in rng.choice(nodes, size=min(3, size - 1), replace=False):
                if other != node:
                    edges.append((node, other))
        start += size
    return start, np.array(edges, dtype=np.int64).reshape(-1, 2)


def test_full_layout_packs_components_without_overlap_into_a_page_shape():
    rng = np.random.default_rng(3)
    sizes = [400, 60, 30, 12, 5, 3, 2, 2] + [1] * 40
    count, edges = _clusters(sizes, rng)
    positions = full_layout(count, edges)
    assert positions.shape == (count, 2) and np.isfinite(positions).all()
    boxes, start = [], 0
    for size in sizes[:8]:  # the components (the loners share one block)
        part = positions[start:start + size]
        boxes.append((part.min(axis=0), part.max(axis=0)))
        start += size
    for i, (low_a, high_a) in enumerate(boxes):
        for low_b, high_b in boxes[i + 1:]:
            overlap = np.minimum(high_a, high_b) - np.maximum(low_a, low_b)
            assert (overlap < 0).any(), "two components drawn on top of each other"
    span = positions.max(axis=0) - positions.min(axis=0)
    assert 1.2 <= span[0] / span[1] <= 2.0  # about the page's 1.6


def test_update_layout_keeps_known_positions_bit_for_bit():
    rng = np.random.default_rng(5)
    count, edges = _clusters([300, 40], rng)
    first = full_layout(count, edges)
    known = np.ones(count, dtype=bool)
    known[rng.choice(count, size=25, replace=False)] = False
    result = update_layout(count, edges, known, first)
    assert result.placed == 25 and not result.fresh
    assert np.array_equal(result.positions[known], first[known])
    assert np.isfinite(result.positions).all()
    # more new than kept: laid out afresh instead of crowding round a few
    few = np.zeros(count, dtype=bool)
    few[:10] = True
    assert update_layout(count, edges, few, first).fresh


def test_map_data_stays_small_enough_for_a_large_library(tmp_path):
    """The page's data per sample (the B11 budget is 10 MB at 20,000 samples)."""
    from bench.b11_map import generate
    from easy_oww.freesound.visualize import map_data

    generate(tmp_path / "lib", 1, 2000, 2000)
    with FreesoundLibrary(tmp_path / "lib") as lib:
        data, done = map_data(lib)
    size = len(json.dumps(data, separators=(",", ":")))
    assert done["nodes"] == 2000 and size / 2000 < 400, size


def test_a_large_component_is_drawn_community_by_community_apart_from_each_other():
    rng = np.random.default_rng(11)
    groups, size = 20, 500
    count, edges = _clusters([size] * groups, rng)  # planted clusters, and a link in four
    noise = np.stack([rng.integers(0, count, count), rng.integers(0, count, count)], axis=1)
    positions = full_layout(count, np.vstack([edges, noise]))  # ... to anywhere
    group = np.repeat(np.arange(groups), size)
    centres = np.array([positions[group == g].mean(axis=0) for g in range(groups)])
    inside = np.mean([np.hypot(*(positions[group == g] - centres[g]).T).mean()
                      for g in range(groups)])
    between = np.median([np.hypot(*(centres[a] - centres[b]))
                         for a in range(groups) for b in range(a + 1, groups)])
    # 4.3 here; one force layout of the whole gives 2.5 (the clusters blur into one disc)
    assert between > 3.5 * inside


def test_markup_in_a_name_stays_text_and_derived_links_are_drawn(env, tmp_path, browser, sound):
    """A sample named like markup cannot end the page's data early or run as script."""
    with FreesoundLibrary(env["library"]) as lib:
        for sound_id in range(1, 7):
            lib.add_sample(sound(sound_id, user="same", pack=5 if sound_id < 4 else None))
        odd = sound(99, user="alone")
        odd["name"] = "</script><script>document.title='owned'</script><b>x"
        lib.add_sample(odd)
        lib.add_edge(1, 2, "similar", 0.9)
        lib.add_edge(2, 99, "similar", 0.8)
    page_file = tmp_path / "map.html"
    out = run_cli(["freesound", "visualize", page_file, "--derived"])
    assert out.returncode == 0, out.stderr
    page = _open(browser, page_file)
    assert page.evaluate("document.title") == "Freesound library"
    nodes, edges = map(int, page.evaluate("document.body.dataset.drawn").split())
    assert nodes == 7 and edges > 2  # the two similar links and the same-user / pack chain
    assert page.evaluate("window.easyOwwMap.data.derived.length") > 0
    page.evaluate("window.easyOwwMap.search('owned')")
    assert page.evaluate("document.body.dataset.matches") == "99"
    index = page.evaluate("window.easyOwwMap.data.id.indexOf(99)")
    page.evaluate(f"window.easyOwwMap.select({index})")
    assert page.evaluate("document.getElementById('p-name').textContent") == odd["name"]
    assert page.evaluate("document.getElementById('player').src") == (
        "https://cdn.freesound.org/99-hq.mp3")
    assert page.errors == []


def test_preview_urls_keep_their_file_name_when_all_share_a_folder():
    """The page stores the folder the previews share once; a library of one sample (whose
    URL is all of the shared part) still gets its player."""
    from easy_oww.freesound.visualize import _common_prefix

    assert _common_prefix(["https://cdn.example/p/1/1_2-hq.mp3"]) == "https://cdn.example/p/1/"
    assert _common_prefix(["https://cdn.example/p/1/1-hq.mp3", "https://cdn.example/p/2/2-hq.mp3",
                           ""]) == "https://cdn.example/p/"
