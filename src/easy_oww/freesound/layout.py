"""Where the map draws each sample: a full layout, or new samples placed among kept ones.

A full layout (the first map, or ``--relayout``) lays out each connected component on its own
and packs the components as rectangles into a page-shaped area, so a big cluster and a crowd
of small ones fill the page instead of one squashed cluster and empty corners. A component
of up to a thousand samples gets igraph's Fruchterman-Reingold (compiled); a larger one is
drawn community by community (igraph's multilevel clustering, each community laid out on its
own, the communities arranged by the graph between them): about 5 s at 20,000 samples, where
one force layout of the whole makes a round hairball, DrL (about a minute) dense specks with
the page empty between them, and networkx's spring layout takes over ten minutes.

An update keeps every stored position exactly and places only the new samples: each one at
the middle of its already placed neighbours (repeatedly, so chains of new samples follow),
then a few steps that move only them (towards their neighbours, off any sample they cover);
new samples with no placed neighbour are laid out as components of their own and packed
beside the existing picture.

Positions are plain coordinates; the page scales them to the window.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

PAGE_ASPECT = 1.6  # width / height of the area the components are packed into (a screen)
COMMUNITIES_FROM = 1000  # components this big are laid out community by community
REFINE_ITERATIONS = 20


@dataclass
class LayoutResult:
    positions: np.ndarray  # (count, 2) float64
    placed: int  # how many were computed now (the rest were kept)
    fresh: bool  # True: everything was laid out afresh


def _graph(count: int, edges: np.ndarray):  # -> igraph.Graph
    # igraph is worth loading only when there is a layout to compute
    import igraph

    graph = igraph.Graph(n=count, edges=edges.tolist() if len(edges) else [], directed=False)
    graph.simplify(multiple=True, loops=True)
    return graph


def _seeded(seed: int):
    """igraph draws from Python's `random` module: a seeded generator of our own for the call
    (so the same library gives the same picture), the module again afterwards."""
    import igraph  # see _graph

    class _Seeded:
        def __enter__(self) -> None:
            igraph.set_random_number_generator(random.Random(seed))

        def __exit__(self, *exc: object) -> None:
            igraph.set_random_number_generator(random)

    return _Seeded()


def _component_layout(sub) -> np.ndarray:  # sub: igraph.Graph
    n = sub.vcount()
    if n == 1:
        return np.zeros((1, 2))
    if n == 2:
        return np.array([[0.0, 0.0], [1.0, 0.0]])
    if n >= COMMUNITIES_FROM:
        return _communities_layout(sub)
    return np.array(sub.layout_fruchterman_reingold(niter=500, grid="auto").coords, dtype=float)


def _communities_layout(sub) -> np.ndarray:  # sub: igraph.Graph, connected
    """A large component in two levels: its communities (igraph's multilevel modularity
    clustering) each laid out on their own, as discs whose area grows with their size, and
    the discs arranged by a layout of the graph of communities, then pushed apart until none
    overlaps. A force layout of the whole at once makes one round hairball at 20,000 samples
    (the clusters blur into each other), and DrL draws them as dense specks with the page
    between them empty; this shows each cluster as a readable patch, beside the ones it
    links to, in a few seconds."""
    membership = np.array(sub.community_multilevel().membership)
    count = int(membership.max()) + 1
    if count < 2:
        return np.array(sub.layout_fruchterman_reingold(niter=500, grid="auto").coords,
                        dtype=float)
    positions = np.zeros((sub.vcount(), 2))
    radius = np.zeros(count)
    for community in range(count):
        members = np.flatnonzero(membership == community)
        if len(members) > 2:
            inner = sub.subgraph(members.tolist())
            coords = np.array(inner.layout_fruchterman_reingold(niter=300, grid="auto").coords,
                              dtype=float)
        else:
            coords = np.array([[0.0, 0.0], [1.0, 0.0]])[: len(members)]
        coords = _normalised(coords)
        positions[members] = coords
        radius[community] = max(float(np.hypot(coords[:, 0], coords[:, 1]).max()), 0.5) + 1.0
    edges = np.array(sub.get_edgelist(), dtype=np.int64).reshape(-1, 2)
    between = membership[edges[:, 0]] != membership[edges[:, 1]]
    pairs, weight = np.unique(np.sort(membership[edges[between]], axis=1), axis=0,
                              return_counts=True)
    import igraph  # see _graph

    meta = igraph.Graph(n=count, edges=pairs.tolist(), directed=False)
    centres = np.array(meta.layout_fruchterman_reingold(
        weights=np.log1p(weight).tolist(), niter=1000, grid="nogrid").coords, dtype=float)
    centres = _apart(centres, radius, pairs)
    return positions + centres[membership]


def _apart(centres: np.ndarray, radius: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Scale the communities' centres so that linked ones touch, then push overlapping discs
    apart (a few hundred small steps; there are at most a few hundred discs)."""
    if len(pairs):
        gap = np.hypot(*(centres[pairs[:, 0]] - centres[pairs[:, 1]]).T)
        wanted = radius[pairs[:, 0]] + radius[pairs[:, 1]]
        centres = centres * float(np.median(wanted / np.maximum(gap, 1e-9)))
    reach = radius[:, None] + radius[None, :]
    for _ in range(300):
        delta = centres[:, None, :] - centres[None, :, :]
        dist = np.hypot(delta[..., 0], delta[..., 1])
        np.fill_diagonal(dist, np.inf)
        overlap = np.maximum(reach - dist, 0.0)
        if overlap.max() <= 1e-6:
            break
        push = (delta / np.maximum(dist, 1e-9)[..., None] * (0.5 * overlap)[..., None])
        centres = centres + push.sum(axis=1) * 0.5
    return centres


def _normalised(coords: np.ndarray) -> np.ndarray:
    """Centred and scaled so that every component has the same density: its spread grows with
    the square root of its size, one unit per node."""
    coords = coords - np.median(coords, axis=0)
    radius = np.hypot(coords[:, 0], coords[:, 1])
    if len(coords) >= 20:
        # A force layout leaves dangling chains far out; drawn to scale they would shrink the
        # rest of the picture, so what lies beyond 95 % of the nodes is pulled in.
        edge = float(np.quantile(radius, 0.95))
        far = radius > edge
        if edge > 0 and far.any():
            coords[far] *= ((edge + (radius[far] - edge) * 0.2) / radius[far])[:, None]
    spread = math.sqrt(float((coords ** 2).sum(axis=1).mean()))
    n = len(coords)
    if spread > 0:
        coords = coords * (0.5 * math.sqrt(n) / spread)
    return coords


def _grid(count: int) -> np.ndarray:
    """Isolated samples as one block, a square grid one unit apart."""
    side = max(1, math.ceil(math.sqrt(count)))
    idx = np.arange(count)
    return np.stack([idx % side, idx // side], axis=1).astype(float)


def pack(blocks: list[np.ndarray], *, aspect: float = PAGE_ASPECT, gap: float = 1.5,
         ) -> list[np.ndarray]:
    """Shift each block of coordinates so that, as rectangles, they fill a page of `aspect`:
    shelves of decreasing height, and inside a shelf columns of blocks stacked while they fit
    (so a tall cluster's shelf fills up with the small components beside it). Several shelf
    widths are tried; the one whose whole picture is closest to the page's shape wins."""
    boxes = []
    for coords in blocks:
        low = coords.min(axis=0)
        boxes.append((low, np.maximum(coords.max(axis=0) - low, 0.0) + gap))
    order = sorted(range(len(blocks)), key=lambda i: (-boxes[i][1][1], -boxes[i][1][0], i))
    area = sum(float(w * h) for _, (w, h) in boxes)
    widest = max(float(size[0]) for _, size in boxes)
    total = sum(float(size[0]) for _, size in boxes)
    best: tuple[float, list[np.ndarray]] | None = None
    for width in np.unique(np.clip(
            math.sqrt(area * aspect) * np.array([0.8, 0.9, 1.0, 1.1, 1.25, 1.4, 1.6, 2.0]),
            widest, max(widest, total))):
        offsets, (used_w, used_h) = _shelves(boxes, order, float(width))
        # how far from the page's shape, and how much of it is empty
        score = abs(math.log((used_w / used_h) / aspect)) + used_w * used_h / area
        if best is None or score < best[0]:
            best = (score, offsets)
    assert best is not None
    return [blocks[i] + best[1][i] for i in range(len(blocks))]


def _shelves(boxes: list[tuple[np.ndarray, np.ndarray]], order: list[int], width: float,
             ) -> tuple[list[np.ndarray], tuple[float, float]]:
    offsets: list[np.ndarray] = [np.zeros(2)] * len(boxes)
    shelf_y = 0.0
    shelf_h = float(boxes[order[0]][1][1])  # the tallest block opens the first shelf
    col_x = col_w = col_y = 0.0
    used_w = 0.0
    for i in order:
        w, h = (float(v) for v in boxes[i][1])
        if col_y + h <= shelf_h + 1e-9 and col_x + w <= width + 1e-9:
            x, y = col_x, shelf_y + col_y  # below the last block of this column
            col_y += h
            col_w = max(col_w, w)
        elif col_x + col_w + w <= width + 1e-9:
            col_x += col_w  # a new column in this shelf
            x, y = col_x, shelf_y
            col_w, col_y = w, h
        else:
            shelf_y += shelf_h  # a new shelf
            shelf_h = h
            col_x, x, y = 0.0, 0.0, shelf_y
            col_w, col_y = w, h
        used_w = max(used_w, x + w)
        offsets[i] = np.array([x, y]) - boxes[i][0]
    return offsets, (used_w, shelf_y + shelf_h)


def full_layout(count: int, edges: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Positions for `count` nodes joined by `edges` ((m, 2) indices), components packed."""
    if count == 0:
        return np.zeros((0, 2))
    graph = _graph(count, edges)
    members: list[list[int]] = []
    blocks: list[np.ndarray] = []
    loners: list[int] = []
    with _seeded(seed):
        for component in graph.connected_components():
            if len(component) == 1:
                loners.append(component[0])
                continue
            members.append(list(component))
            blocks.append(_normalised(_component_layout(graph.subgraph(component))))
    if loners:
        members.append(loners)
        blocks.append(_grid(len(loners)))
    positions = np.zeros((count, 2))
    for nodes, coords in zip(members, pack(blocks), strict=True):
        positions[nodes] = coords
    return _page_shaped(positions)


def _page_shaped(positions: np.ndarray) -> np.ndarray:
    """Stretched (up to 1.6 times along an axis) towards the page's shape: one big round
    cluster would otherwise leave the sides of a wide window empty."""
    span = positions.max(axis=0) - positions.min(axis=0)
    if span.min() <= 0:
        return positions
    stretch = min(max(PAGE_ASPECT / (span[0] / span[1]), 1 / 1.6), 1.6)
    return positions * np.array([math.sqrt(stretch), 1 / math.sqrt(stretch)])


def update_layout(count: int, edges: np.ndarray, known: np.ndarray, kept: np.ndarray, *,
                  seed: int = 0) -> LayoutResult:
    """Positions for every node, keeping those with `known[i]` at `kept[i]` exactly.

    When most nodes are new (more than the kept ones), a full layout is better than placing
    them all around a few: everything is laid out afresh then (``fresh=True``).
    """
    known = known.astype(bool)
    new_count = int(count - known.sum())
    if new_count == 0:
        return LayoutResult(kept.astype(float).copy(), 0, False)
    if new_count > known.sum():
        return LayoutResult(full_layout(count, edges, seed=seed), count, True)
    positions = np.where(known[:, None], kept, np.nan).astype(float)
    unit = _unit_length(positions, edges, known)
    rng = np.random.default_rng(seed)
    placed = known.copy()
    if len(edges):
        a, b = edges[:, 0], edges[:, 1]
        while True:  # rounds: new nodes next to placed ones, then their new neighbours
            total = np.zeros((count, 2))
            hits = np.zeros(count)
            for src, dst in ((a, b), (b, a)):
                usable = placed[src] & ~placed[dst]
                np.add.at(total, dst[usable], positions[src[usable]])
                np.add.at(hits, dst[usable], 1)
            ready = hits > 0
            if not ready.any():
                break
            jitter = rng.normal(scale=0.5 * unit, size=(int(ready.sum()), 2))
            positions[ready] = total[ready] / hits[ready, None] + jitter
            placed |= ready
    stray = np.flatnonzero(~placed)
    if len(stray):  # new components with no placed sample: packed beside the picture
        _place_beside(positions, placed, stray, edges, unit, seed)
    positions = _refine(positions, edges, known, unit, seed)
    positions[known] = kept[known]  # kept exactly, whatever the refinement's arithmetic did
    return LayoutResult(positions, new_count, False)


def _unit_length(positions: np.ndarray, edges: np.ndarray, known: np.ndarray) -> float:
    """The typical length of an edge between kept nodes (the picture's scale)."""
    if len(edges):
        both = known[edges[:, 0]] & known[edges[:, 1]]
        if both.any():
            d = positions[edges[both, 0]] - positions[edges[both, 1]]
            length = float(np.median(np.hypot(d[:, 0], d[:, 1])))
            if length > 0:
                return length
    pts = positions[known]
    if len(pts) > 1:
        span = pts.max(axis=0) - pts.min(axis=0)
        return max(float(math.sqrt(span[0] * span[1] / len(pts))), 1e-6) or 1.0
    return 1.0


def _place_beside(positions: np.ndarray, placed: np.ndarray, stray: np.ndarray,
                  edges: np.ndarray, unit: float, seed: int) -> None:
    index = {int(node): i for i, node in enumerate(stray)}
    local = [(index[int(u)], index[int(v)]) for u, v in edges
             if int(u) in index and int(v) in index] if len(edges) else []
    coords = full_layout(len(stray), np.array(local, dtype=np.int64).reshape(-1, 2), seed=seed)
    coords = coords * unit
    here = positions[placed]
    low, high = here.min(axis=0), here.max(axis=0)
    width, height = high - low
    # below the picture when it is wider than a page, else to its right
    if width >= PAGE_ASPECT * height:
        shift = np.array([low[0], high[1] + 2 * unit]) - coords.min(axis=0)
    else:
        shift = np.array([high[0] + 2 * unit, low[1]]) - coords.min(axis=0)
    positions[stray] = coords + shift
    placed[stray] = True


def _refine(positions: np.ndarray, edges: np.ndarray, known: np.ndarray, unit: float,
            seed: int) -> np.ndarray:
    """A few steps in which only the new nodes move: towards the middle of their neighbours,
    and away from any node closer than half an edge, so a new sample sits among the samples
    it is similar to without covering one of them. (A general force layout with the kept
    nodes pinned does worse here: its idea of an edge's length is not the stored picture's,
    and it pushes the new nodes out of their cluster.)"""
    moving = np.flatnonzero(~known)
    positions = positions.copy()
    if not len(moving):
        return positions
    rng = np.random.default_rng(seed)
    near = 0.5 * unit
    neighbours: list[list[int]] = [[] for _ in range(len(positions))]
    slot = {int(node): i for i, node in enumerate(moving)}
    for a, b in edges.tolist():
        if a in slot:
            neighbours[a].append(b)
        if b in slot:
            neighbours[b].append(a)
    chunk = max(1, 4_000_000 // max(len(positions), 1))  # bounded memory for the distances
    for step in range(REFINE_ITERATIONS):
        reach = 0.3 * unit * (1 - step / REFINE_ITERATIONS)  # cooling
        for start in range(0, len(moving), chunk):
            nodes = moving[start:start + chunk]
            here = positions[nodes]
            pull = np.zeros_like(here)
            for row, node in enumerate(nodes.tolist()):
                if neighbours[node]:
                    pull[row] = positions[neighbours[node]].mean(axis=0) - here[row]
            delta = here[:, None, :] - positions[None, :, :]
            dist = np.hypot(delta[..., 0], delta[..., 1])
            dist[np.arange(len(nodes)), nodes] = 2 * near  # not pushed by itself
            close = dist < near
            if close.any():
                strength = np.where(close, (near - dist) / np.maximum(dist, 1e-9), 0.0)
                push = (delta * strength[..., None]).sum(axis=1)
                stuck = close & (dist < 1e-9 * unit)  # on top of another: any direction
                if stuck.any():
                    push[stuck.any(axis=1)] += rng.normal(scale=near, size=(
                        int(stuck.any(axis=1).sum()), 2))
            else:
                push = np.zeros_like(here)
            move = 0.2 * pull + push
            length = np.maximum(np.hypot(move[:, 0], move[:, 1]), 1e-12)
            positions[nodes] = here + move * (np.minimum(length, reach) / length)[:, None]
    return positions


def index_edges(ids: Iterable[int], pairs: Iterable[tuple[int, int]]) -> np.ndarray:
    """(source, target) id pairs as (m, 2) indices into `ids`, pairs with an unknown end and
    self-loops left out."""
    index = {int(sound_id): i for i, sound_id in enumerate(ids)}
    rows = [(index[s], index[t]) for s, t in pairs if s in index and t in index and s != t]
    return np.array(rows, dtype=np.int64).reshape(-1, 2)
