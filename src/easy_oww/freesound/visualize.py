"""The map of the library: one HTML file that works offline, drawn with WebGL (sigma.js).

The page holds its data and its JavaScript (map.js, built from web/ by web/build.py; the
licences of what it bundles are in map-licenses.txt and at the head of the bundle), so it
makes no request when opened; the only ones are the previews a user chooses to play. The
seed's page loaded sigma.js from a CDN and broke without a network.

The positions come from freesound/layout.py and are stored in the library, so the next map
keeps every sample where it was and places only the new ones (``relayout=True``: all afresh).
The data goes into the page as columns, with user, license, pack and tag names in tables
indexed by number, which keeps a 20,000-sample map within a few megabytes.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from easy_oww.atomic import atomic_write_text
from easy_oww.freesound.export import PRIVATE_NOTICE
from easy_oww.freesound.layout import full_layout, index_edges, update_layout
from easy_oww.freesound.store import FreesoundLibrary

COLOR_BY = ("user", "license", "tag", "pack")
SIZE_BY = ("downloads", "degree")
DEFAULT_COLOR_BY = "user"
DEFAULT_SIZE_BY = "downloads"

_LICENSE_NAMES = (  # a part of Freesound's license URL -> the name the legend shows
    ("publicdomain/zero", "CC0"),
    ("licenses/by-nc/", "CC BY-NC"),
    ("licenses/by/", "CC BY"),
    ("sampling+", "Sampling+"),
)
_PREVIEWS = ("preview-hq-mp3", "preview-lq-mp3", "preview-hq-ogg", "preview-lq-ogg")


@dataclass
class MapSummary:
    path: str
    nodes: int  # samples drawn
    edges: int  # edges drawn (both directions of a link count once)
    samples: int  # samples in the library
    placed: int  # samples whose position was computed now
    kept: int  # samples drawn where the last map had them
    fresh: bool  # everything laid out afresh
    saved: bool  # positions stored in the library (False: it is read-only)
    bytes: int
    layout_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def license_name(url: str | None) -> str:
    text = (url or "").lower()
    for part, name in _LICENSE_NAMES:
        if part in text:
            return name
    return url or "unknown"


class _Table:
    """Strings as small numbers: the page looks each one up once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.values: list[str] = []

    def __call__(self, value: str) -> int:
        found = self.index.get(value)
        if found is None:
            found = self.index[value] = len(self.values)
            self.values.append(value)
        return found


def _preview(previews_json: str | None) -> str:
    if not previews_json:
        return ""
    previews = json.loads(previews_json)
    for key in _PREVIEWS:
        if isinstance(previews.get(key), str):
            return previews[key]
    return ""


def _common_prefix(texts: list[str]) -> str:
    """The folder part the URLs share (up to a "/"), so each keeps at least its file name."""
    present = [t for t in texts if t]
    if not present:
        return ""
    low, high = min(present), max(present)
    size = 0
    while size < min(len(low), len(high)) and low[size] == high[size]:
        size += 1
    return low[: low.rfind("/", 0, size) + 1]


def _best_connected(ids: list[int], pairs: list[tuple[int, int]], downloads: list[int],
                    limit: int) -> set[int]:
    """The `limit` samples with the most links, then the most downloads (--max-nodes)."""
    degree: dict[int, int] = dict.fromkeys(ids, 0)
    for source, target in pairs:
        if source in degree and target in degree:
            degree[source] += 1
            degree[target] += 1
    ranked = sorted(zip(ids, downloads, strict=True),
                    key=lambda item: (-degree[item[0]], -item[1], item[0]))
    return {sound_id for sound_id, _ in ranked[:limit]}


def _derived_pairs(library: FreesoundLibrary) -> list[tuple[int, int]]:
    graph = library.graph(derived=True)
    return [(u, v) for u, v, kind in graph.edges(data="kind") if kind != "similar"]


def _undirected(indexed: np.ndarray) -> np.ndarray:
    """Each link once, (low, high), sorted: A->B and B->A draw as one line."""
    if not len(indexed):
        return indexed
    pairs = np.sort(indexed, axis=1)
    return np.unique(pairs, axis=0)


def map_data(library: FreesoundLibrary, *, relayout: bool = False, derived: bool = False,
             max_nodes: int | None = None, color_by: str = DEFAULT_COLOR_BY,
             size_by: str = DEFAULT_SIZE_BY, save: bool = True,
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The page's data and what was done (placed, kept, fresh, saved, layout seconds)."""
    rows = library.map_rows()
    pairs = library.edge_pairs()
    all_ids = [row[0] for row in rows]
    if max_nodes is not None and max_nodes < len(rows):
        chosen = _best_connected(all_ids, pairs, [row[7] or 0 for row in rows], max_nodes)
        rows = [row for row in rows if row[0] in chosen]
    ids = [row[0] for row in rows]
    count = len(ids)

    # The layout is of the whole library, so a capped map shows the same places as a full one.
    started = time.perf_counter()
    layout_edges = index_edges(all_ids, pairs)
    stored = {} if relayout else library.positions()
    known = np.array([i in stored for i in all_ids], dtype=bool)
    kept = np.array([stored.get(i, (0.0, 0.0)) for i in all_ids], dtype=float).reshape(-1, 2)
    if relayout or not known.any():
        positions, placed, fresh = full_layout(len(all_ids), layout_edges), len(all_ids), True
    else:
        result = update_layout(len(all_ids), layout_edges, known, kept)
        positions, placed, fresh = result.positions, result.placed, result.fresh
    layout_seconds = time.perf_counter() - started
    saved = False
    if save and placed:
        changed = range(len(all_ids)) if fresh else np.flatnonzero(~known)
        library.save_positions(
            ((all_ids[i], float(positions[i, 0]), float(positions[i, 1])) for i in changed),
            replace_all=fresh)
        saved = True
    at = {sound_id: i for i, sound_id in enumerate(all_ids)}
    xy = positions[[at[i] for i in ids]] if count else np.zeros((0, 2))

    users, licenses, packs, tags = _Table(), _Table(), _Table(), _Table()
    previews = [_preview(row[9]) for row in rows]
    prefix = _common_prefix(previews)
    similar = _undirected(index_edges(ids, pairs))
    drawn_derived = (_undirected(index_edges(ids, _derived_pairs(library))) if derived
                     else np.zeros((0, 2), dtype=np.int64))
    if len(drawn_derived) and len(similar):  # a pair linked both ways is drawn as similar
        similar_set = {tuple(p) for p in similar.tolist()}
        drawn_derived = np.array([p for p in drawn_derived.tolist()
                                  if tuple(p) not in similar_set], dtype=np.int64).reshape(-1, 2)
    # Coordinates as integers on a 0..100000 scale: six characters each, and the page needs
    # no more precision than that.
    if count:
        low = xy.min(axis=0)
        span = float(max((xy.max(axis=0) - low).max(), 1e-9))
        grid = np.rint((xy - low) / span * 100000).astype(np.int64)
    else:
        grid = np.zeros((0, 2), dtype=np.int64)
    data = {
        "title": None,
        "notice": PRIVATE_NOTICE,
        "colorBy": color_by,
        "sizeBy": size_by,
        "total": len(all_ids),
        "id": ids,
        # the page's y axis points up, the layout's down (as the packing stacks shelves)
        "x": grid[:, 0].tolist(),
        "y": (100000 - grid[:, 1]).tolist(),
        "name": [row[1] or f"sound {row[0]}" for row in rows],
        "user": [users(row[2] or "(unknown)") for row in rows],
        "license": [licenses(license_name(row[3])) for row in rows],
        "pack": [packs(row[5] or f"pack {row[4]}") if row[4] is not None else -1 for row in rows],
        "tags": [[tags(t) for t in json.loads(row[6] or "[]")] for row in rows],
        "downloads": [row[7] or 0 for row in rows],
        "duration": [round(row[8], 1) if row[8] is not None else None for row in rows],
        "previewPrefix": prefix,
        "preview": [p[len(prefix):] if p else "" for p in previews],
        "edges": similar.reshape(-1).tolist(),
        "derived": drawn_derived.reshape(-1).tolist(),
    }
    data.update(users=users.values, licenses=licenses.values, packs=packs.values,
                tagNames=tags.values)
    done = {"nodes": count, "edges": int(len(similar) + len(drawn_derived)),
            "samples": len(all_ids), "placed": placed, "kept": len(all_ids) - placed,
            "fresh": fresh, "saved": saved, "layout_seconds": layout_seconds}
    return data, done


def _asset(name: str) -> str:
    return resources.files("easy_oww.freesound").joinpath(name).read_text(encoding="utf-8")


def render_page(data: dict[str, Any], title: str) -> str:
    data = dict(data, title=title)
    # "</" would end the <script> element early; JSON allows "<\/" for it.
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")
    script = _asset("map.js")
    page = _asset("map.html").replace("__TITLE__", html.escape(title))
    head, rest = page.split("__DATA__")
    middle, tail = rest.split("__SCRIPT__")
    return head + payload + middle + script + tail


def write_visualization(library: FreesoundLibrary, path: str | Path, *,
                        relayout: bool = False, derived: bool = False,
                        max_nodes: int | None = None, color_by: str = DEFAULT_COLOR_BY,
                        size_by: str = DEFAULT_SIZE_BY, title: str = "Freesound library",
                        ) -> MapSummary:
    """Write the map of `library` to `path` (atomically). Positions are stored in the library
    unless it was opened read-only (then they are computed for this page only)."""
    if color_by not in COLOR_BY:
        raise ValueError(f"color_by must be one of {', '.join(COLOR_BY)}, not {color_by!r}")
    if size_by not in SIZE_BY:
        raise ValueError(f"size_by must be one of {', '.join(SIZE_BY)}, not {size_by!r}")
    data, done = map_data(library, relayout=relayout, derived=derived, max_nodes=max_nodes,
                          color_by=color_by, size_by=size_by, save=not library.read_only)
    page = render_page(data, title)
    atomic_write_text(Path(path), page)
    return MapSummary(path=str(path), bytes=len(page.encode("utf-8")), **done)
