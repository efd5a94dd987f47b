"""Exports of the library: JSON (nodes + edges), JSON lines (one raw sample a line), GraphML.

Stored API data is private under Freesound's API terms: exports are for you and your team.

Adding a format is one writer function and one line in `WRITERS`: the writer gets the
library, the path and the options, writes atomically (temp file, fsync, rename) and returns
the counts; the CLI's ``--format`` choices come from the table.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from easy_oww.atomic import atomic_write_bytes
from easy_oww.freesound.errors import BadInputError
from easy_oww.freesound.store import FreesoundLibrary

PRIVATE_NOTICE = (
    "Freesound API data: private to you and your team under Freesound's API terms; "
    "do not publish."
)


@dataclass(frozen=True)
class ExportOptions:
    derived: bool = False  # add the same_user / same_pack edges computed from the fields


Writer = Callable[[FreesoundLibrary, Path, ExportOptions], dict[str, int]]


@dataclass(frozen=True)
class ExportFormat:
    write: Writer
    help: str  # one line for the CLI's --format help
    takes_derived: bool  # whether ExportOptions.derived changes what is written


def write_json(library: FreesoundLibrary, path: Path, options: ExportOptions) -> dict[str, int]:
    graph = library.graph(derived=options.derived)
    doc = {
        "notice": PRIVATE_NOTICE,
        "nodes": [{"id": n, **attrs} for n, attrs in graph.nodes(data=True)],
        "edges": [{"source": u, "target": v, **attrs} for u, v, attrs in graph.edges(data=True)],
    }
    atomic_write_bytes(path, json.dumps(doc, separators=(",", ":")).encode("utf-8"))
    return {"samples": graph.number_of_nodes(), "edges": graph.number_of_edges()}


def write_jsonl(library: FreesoundLibrary, path: Path, options: ExportOptions) -> dict[str, int]:
    out = io.StringIO()
    count = 0
    for raw in library.raw_samples():
        out.write(raw + "\n")
        count += 1
    atomic_write_bytes(path, out.getvalue().encode("utf-8"))
    return {"samples": count, "edges": 0}


def write_graphml(library: FreesoundLibrary, path: Path,
                  options: ExportOptions) -> dict[str, int]:
    import networkx as nx  # ~0.3 s to import: only when a GraphML file is asked for

    graph = library.graph(derived=options.derived)
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
    return {"samples": graph.number_of_nodes(), "edges": graph.number_of_edges()}


WRITERS: dict[str, ExportFormat] = {
    "json": ExportFormat(write_json, "nodes + edges", takes_derived=True),
    "jsonl": ExportFormat(write_jsonl, "one raw API sample a line", takes_derived=False),
    "graphml": ExportFormat(write_graphml, "for Gephi", takes_derived=True),
}
FORMATS = tuple(WRITERS)


def formats_taking_derived() -> list[str]:
    return [name for name, fmt in WRITERS.items() if fmt.takes_derived]


def export_library(library: FreesoundLibrary, path: str | Path, fmt: str = "json", *,
                   derived: bool = False) -> dict[str, Any]:
    """Write the library to `path`; returns {"samples": n, "edges": m, "path": ...}.
    BadInputError for an unknown format, or derived edges asked of a format without edges."""
    chosen = WRITERS.get(fmt)
    if chosen is None:
        raise BadInputError(f"unknown export format {fmt!r}; choose from {', '.join(WRITERS)}")
    if derived and not chosen.takes_derived:
        raise BadInputError(
            f"derived edges apply only to the {' and '.join(formats_taking_derived())} "
            f"exports; {fmt} has no edges"
        )
    counts = chosen.write(library, Path(path), ExportOptions(derived=derived))
    return {**counts, "path": str(path)}
