"""Exports of the library: JSON (nodes + edges), JSON lines (one raw sample a line), GraphML.

Stored API data is private under Freesound's API terms: exports are for you and your team.
Every export is written atomically (temp file, fsync, rename).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from easy_oww.atomic import atomic_write_bytes
from easy_oww.freesound.errors import BadInputError
from easy_oww.freesound.store import FreesoundLibrary

FORMATS = ("json", "jsonl", "graphml")
PRIVATE_NOTICE = (
    "Freesound API data: private to you and your team under Freesound's API terms; "
    "do not publish."
)


def export_library(library: FreesoundLibrary, path: str | Path, fmt: str = "json", *,
                   derived: bool = False) -> dict[str, Any]:
    """Write the library to `path`; returns {"samples": n, "edges": m, "path": ...}."""
    if fmt not in FORMATS:
        raise BadInputError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    path = Path(path)
    if fmt == "jsonl":
        out = io.StringIO()
        count = 0
        for raw in library.raw_samples():
            out.write(raw + "\n")
            count += 1
        atomic_write_bytes(path, out.getvalue().encode("utf-8"))
        return {"samples": count, "edges": 0, "path": str(path)}
    graph = library.graph(derived=derived)
    if fmt == "json":
        doc = {
            "notice": PRIVATE_NOTICE,
            "nodes": [{"id": n, **attrs} for n, attrs in graph.nodes(data=True)],
            "edges": [{"source": u, "target": v, **attrs} for u, v, attrs in
                      graph.edges(data=True)],
        }
        atomic_write_bytes(path, json.dumps(doc, separators=(",", ":")).encode("utf-8"))
    else:
        import networkx as nx

        # GraphML has no null: drop missing attribute values.
        for _, attrs in graph.nodes(data=True):
            for key in [k for k, v in attrs.items() if v is None]:
                del attrs[key]
        for _, _, attrs in graph.edges(data=True):
            for key in [k for k, v in attrs.items() if v is None]:
                del attrs[key]
        buffer = io.BytesIO()
        nx.write_graphml(graph, buffer)
        atomic_write_bytes(path, buffer.getvalue())
    return {"samples": graph.number_of_nodes(), "edges": graph.number_of_edges(),
            "path": str(path)}
