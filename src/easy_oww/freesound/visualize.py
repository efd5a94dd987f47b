"""An HTML page of the similarity graph that works offline: one file, no CDN, no server.

The layout (Fruchterman-Reingold, numpy) is computed here, so the page only draws: a canvas,
nodes sized by downloads and coloured by user, hover for a sample's details, click to open it
on Freesound. The seed's page loaded sigma.js from a CDN and broke without a network.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from easy_oww.atomic import atomic_write_text
from easy_oww.freesound.export import PRIVATE_NOTICE
from easy_oww.freesound.store import FreesoundLibrary

DEFAULT_MAX_NODES = 1500


def spring_layout(count: int, sources: np.ndarray, targets: np.ndarray, *,
                  iterations: int = 80, seed: int = 0) -> np.ndarray:
    """Positions in [0, 1]^2 for `count` nodes (dense Fruchterman-Reingold; count <= a few k)."""
    rng = np.random.default_rng(seed)
    pos = rng.random((count, 2))
    if count < 2:
        return pos
    k = 1.0 / np.sqrt(count)
    temperature = 0.1
    cooling = temperature / (iterations + 1)
    for _ in range(iterations):
        delta = pos[:, None, :] - pos[None, :, :]
        dist2 = np.maximum((delta ** 2).sum(-1), 1e-6)
        disp = (delta * (k * k / dist2)[:, :, None]).sum(axis=1)
        if len(sources):
            d = pos[sources] - pos[targets]
            length = np.maximum(np.linalg.norm(d, axis=1), 1e-3)
            pull = d * (length / k)[:, None]
            np.add.at(disp, sources, -pull)
            np.add.at(disp, targets, pull)
        length = np.maximum(np.linalg.norm(disp, axis=1), 1e-6)
        pos += disp / length[:, None] * np.minimum(length, temperature)[:, None]
        temperature -= cooling
    pos -= pos.min(axis=0)
    pos /= np.maximum(pos.max(axis=0), 1e-9)
    return pos


def graph_data(library: FreesoundLibrary, max_nodes: int = DEFAULT_MAX_NODES,
               derived: bool = False) -> dict[str, Any]:
    graph = library.graph(derived=derived)
    # The best-connected samples, then the most downloaded, when the library is large.
    chosen = sorted(graph.nodes, key=lambda n: (-graph.degree(n),
                                                -(graph.nodes[n].get("downloads") or 0), n))
    chosen = chosen[:max_nodes]
    index = {n: i for i, n in enumerate(chosen)}
    edges = [(index[u], index[v], d.get("kind", "similar")) for u, v, d in graph.edges(data=True)
             if u in index and v in index]
    src = np.array([e[0] for e in edges], dtype=np.int64)
    dst = np.array([e[1] for e in edges], dtype=np.int64)
    pos = spring_layout(len(chosen), src, dst)
    nodes = []
    for i, n in enumerate(chosen):
        attrs = graph.nodes[n]
        nodes.append({"id": n, "x": round(float(pos[i, 0]), 4), "y": round(float(pos[i, 1]), 4),
                      "name": attrs.get("name"), "user": attrs.get("username"),
                      "downloads": attrs.get("downloads") or 0,
                      "duration": attrs.get("duration"), "license": attrs.get("license")})
    return {"nodes": nodes, "edges": edges, "total_samples": graph.number_of_nodes(),
            "total_edges": graph.number_of_edges(), "notice": PRIVATE_NOTICE}


def write_visualization(library: FreesoundLibrary, path: str | Path, *,
                        max_nodes: int = DEFAULT_MAX_NODES, derived: bool = False,
                        title: str = "Freesound library") -> dict[str, Any]:
    data = graph_data(library, max_nodes, derived)
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    page = PAGE.replace("__TITLE__", html.escape(title)).replace("__DATA__", payload)
    atomic_write_text(Path(path), page)
    return {"nodes": len(data["nodes"]), "edges": len(data["edges"]), "path": str(path)}


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
 body { margin: 0; font: 14px system-ui, sans-serif; background: #111; color: #ddd; }
 header { padding: 6px 10px; background: #222; }
 #tip { position: fixed; pointer-events: none; background: #000d; padding: 6px 8px;
        border-radius: 4px; display: none; max-width: 360px; }
 canvas { display: block; }
 small { color: #999; }
</style></head>
<body>
<header><b>__TITLE__</b> &middot; <span id="status">drawing…</span>
 <small id="notice"></small></header>
<canvas id="graph"></canvas><div id="tip"></div>
<script type="application/json" id="data">__DATA__</script>
<script>
"use strict";
const data = JSON.parse(document.getElementById("data").textContent);
const canvas = document.getElementById("graph"), ctx = canvas.getContext("2d");
const tip = document.getElementById("tip");
document.getElementById("notice").textContent = data.notice;
function hue(text) {
  let h = 0; for (const c of String(text)) h = (h * 31 + c.charCodeAt(0)) % 360; return h;
}
function radius(n) { return 2 + Math.log10(1 + n.downloads); }
let scale = 1, offX = 0, offY = 0;
function screen(n) { return [20 + n.x * (canvas.width - 40) * scale + offX,
                             20 + n.y * (canvas.height - 40) * scale + offY]; }
function draw() {
  canvas.width = window.innerWidth || 1000; canvas.height = (window.innerHeight || 800) - 32;
  ctx.fillStyle = "#111"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.lineWidth = 0.5;
  let drawnEdges = 0;
  for (const [a, b, kind] of data.edges) {
    const [x1, y1] = screen(data.nodes[a]), [x2, y2] = screen(data.nodes[b]);
    ctx.strokeStyle = kind === "similar" ? "#4a90d955" : "#d9904a55";
    ctx.beginPath(); ctx.moveTo(x1, y1); ctx.lineTo(x2, y2); ctx.stroke(); drawnEdges++;
  }
  for (const n of data.nodes) {
    const [x, y] = screen(n);
    ctx.fillStyle = `hsl(${hue(n.user)},70%,60%)`;
    ctx.beginPath(); ctx.arc(x, y, radius(n), 0, 2 * Math.PI); ctx.fill();
  }
  const shown = data.nodes.length < data.total_samples ?
    ` (the ${data.nodes.length} best connected of ${data.total_samples})` : "";
  document.getElementById("status").textContent =
    `${data.nodes.length} samples, ${drawnEdges} edges${shown}`;
  document.body.dataset.drawn = `${data.nodes.length} ${drawnEdges}`;
}
function nearest(ev) {
  let best = null, bestD = 64;
  for (const n of data.nodes) {
    const [x, y] = screen(n), d = (x - ev.offsetX) ** 2 + (y - ev.offsetY) ** 2;
    if (d < bestD) { best = n; bestD = d; }
  }
  return best;
}
canvas.addEventListener("mousemove", ev => {
  const n = nearest(ev);
  if (!n) { tip.style.display = "none"; return; }
  tip.style.display = "block"; tip.style.left = (ev.clientX + 12) + "px";
  tip.style.top = (ev.clientY + 12) + "px";
  tip.textContent = `${n.name} — ${n.user}, ${n.duration ? n.duration.toFixed(1) + " s" : ""}` +
    `, ${n.downloads} downloads (id ${n.id})`;
});
canvas.addEventListener("click", ev => {
  const n = nearest(ev);
  if (n) window.open(`https://freesound.org/s/${n.id}/`, "_blank");
});
canvas.addEventListener("wheel", ev => {
  ev.preventDefault(); const f = ev.deltaY < 0 ? 1.2 : 1 / 1.2;
  offX = ev.offsetX - (ev.offsetX - offX) * f; offY = ev.offsetY - (ev.offsetY - offY) * f;
  scale *= f; draw();
}, { passive: false });
window.addEventListener("resize", draw);
draw();
</script></body></html>
"""
