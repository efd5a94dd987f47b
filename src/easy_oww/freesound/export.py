"""Exports of the library: JSON lines (the whole library, line by line: the merge format),
JSON (nodes + edges), GraphML and GEXF (for Gephi), CSV (nodes.csv + edges.csv, for pandas).

Every export is deterministic: the same library gives the same bytes (nodes by id, edges by
(source, target, kind), keys in a fixed order), so an export kept in git changes line by line.
Stored API data is private under Freesound's API terms: exports are for you and your team;
each carries PRIVATE_NOTICE where its format has room for it (CSV: a NOTICE.txt beside it).

Adding a format is one writer function and one line in `WRITERS`: the writer gets the
library, the path and the options, writes atomically (temp file, fsync, rename) and returns
the counts; the CLI's ``--format`` choices come from the table.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import SubElement

from easy_oww.atomic import atomic_write_bytes, atomic_writer
from easy_oww.freesound.errors import BadInputError
from easy_oww.freesound.schema import SAME_PACK, SAME_USER
from easy_oww.freesound.store import FreesoundLibrary

if TYPE_CHECKING:  # networkx costs ~0.3 s to import; only the graph formats need it
    import networkx as nx

PRIVATE_NOTICE = (
    "Freesound API data: private to you and your team under Freesound's API terms; "
    "do not publish."
)

# The JSON lines export: its first line names the format and version, so a merge knows it.
JSONL_FORMAT = "easy-oww freesound library"
JSONL_VERSION = 2
DERIVED_KINDS = (SAME_USER, SAME_PACK)

# The node attributes of the graph formats, in this order (library.graph()'s names).
NODE_FIELDS = ("name", "username", "pack", "downloads", "duration", "license", "expanded")
EDGE_FIELDS = ("kind", "weight", "rank")


@dataclass(frozen=True)
class ExportOptions:
    derived: bool = False  # add the same_user / same_pack edges computed from the fields


Writer = Callable[[FreesoundLibrary, Path, ExportOptions], dict[str, int]]


@dataclass(frozen=True)
class ExportFormat:
    write: Writer
    help: str  # one line for the CLI's --format help
    takes_derived: bool  # whether ExportOptions.derived changes what is written
    folder: bool = False  # OUTPUT is a folder the writer fills (else a file)


def _sorted_graph(library: FreesoundLibrary, derived: bool) -> nx.DiGraph:
    """library.graph() rebuilt with nodes by id and edges by (source, target, kind), so the
    writers' output (and the attribute keys they number by first use) is stable."""
    import networkx as nx  # ~0.3 s to import: only when a graph format is asked for

    graph = library.graph(derived=derived)
    ordered = nx.DiGraph()
    ordered.add_nodes_from(sorted(graph.nodes(data=True)))
    ordered.add_edges_from(sorted(graph.edges(data=True),
                                  key=lambda e: (e[0], e[1], e[2].get("kind") or "")))
    return ordered


def _without_none(attrs: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in attrs.items() if value is not None}


def write_json(library: FreesoundLibrary, path: Path, options: ExportOptions) -> dict[str, int]:
    graph = _sorted_graph(library, options.derived)
    doc = {
        "notice": PRIVATE_NOTICE,
        "nodes": [{"id": n, **attrs} for n, attrs in graph.nodes(data=True)],
        "edges": [{"source": u, "target": v, **attrs} for u, v, attrs in graph.edges(data=True)],
    }
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
    atomic_write_bytes(path, text.encode("utf-8"))
    return {"samples": graph.number_of_nodes(), "edges": graph.number_of_edges()}


def _jsonl_lines(library: FreesoundLibrary, derived: bool,
                 counts: dict[str, int]) -> Iterator[str]:
    """The JSON lines export: a header, then one line per sample, edge, pending edge and seen
    id (merge.py reads them back). Raw API JSON is stored with sorted keys and goes out as
    stored, so nothing is parsed on the way."""
    dumps = json.dumps
    yield dumps({"type": "header", "format": JSONL_FORMAT, "version": JSONL_VERSION,
                 "notice": PRIVATE_NOTICE}, separators=(",", ":"))
    derived_edges = _derived_edges(library) if derived else []

    def flush_derived() -> Iterator[str]:
        """The derived edges: a block of their own right after the stored edges."""
        counts["edges"] += len(derived_edges)
        yield from (_edge_line("edge", edge) for edge in derived_edges)
        derived_edges.clear()

    for kind, row in library.interchange():
        if kind not in ("sample", "edge") and derived_edges:
            yield from flush_derived()
        if kind == "sample":
            sound_id, added_at, expanded, deleted, note, raw = row
            counts["samples"] += 1
            yield (f'{{"type":"sample","id":{sound_id},"added_at":{dumps(added_at)},'
                   f'"expanded":{expanded},"deleted":{deleted},"note":{dumps(note)},'
                   f'"data":{raw}}}')
        elif kind in ("edge", "pending"):
            counts["edges" if kind == "edge" else "pending_edges"] += 1
            yield _edge_line(kind, row)
        else:
            sound_id, status, first_seen, note, raw = row
            counts["seen"] += 1
            yield (f'{{"type":"seen","id":{sound_id},"status":{dumps(status)},'
                   f'"first_seen":{dumps(first_seen)},"note":{dumps(note)},'
                   f'"data":{raw if raw is not None else "null"}}}')
    yield from flush_derived()


def _edge_line(kind: str, row: tuple[Any, ...]) -> str:
    source, target, edge_kind, weight, rank = row
    return (f'{{"type":"{kind}","source":{source},"target":{target},'
            f'"kind":{json.dumps(edge_kind)},"weight":{json.dumps(weight)},'
            f'"rank":{json.dumps(rank)}}}')


def _derived_edges(library: FreesoundLibrary) -> list[tuple[Any, ...]]:
    graph = library.graph(derived=True)
    return sorted((u, v, a["kind"], a["weight"], a["rank"])
                  for u, v, a in graph.edges(data=True) if a["kind"] in DERIVED_KINDS)


def write_jsonl(library: FreesoundLibrary, path: Path, options: ExportOptions) -> dict[str, int]:
    counts = {"samples": 0, "edges": 0, "pending_edges": 0, "seen": 0}
    with atomic_writer(path) as handle:
        buffer: list[str] = []
        for line in _jsonl_lines(library, options.derived, counts):
            buffer.append(line)
            if len(buffer) >= 5000:
                handle.write(("\n".join(buffer) + "\n").encode("utf-8"))
                buffer = []
        handle.write("".join(line + "\n" for line in buffer).encode("utf-8"))
    return counts


def write_graphml(library: FreesoundLibrary, path: Path,
                  options: ExportOptions) -> dict[str, int]:
    import networkx as nx  # ~0.3 s to import: only when a GraphML file is asked for

    graph = _sorted_graph(library, options.derived)
    # GraphML has no null: a missing value is an attribute left out.
    for _, attrs in graph.nodes(data=True):
        for key in [k for k, v in attrs.items() if v is None]:
            del attrs[key]
    for _, _, attrs in graph.edges(data=True):
        for key in [k for k, v in attrs.items() if v is None]:
            del attrs[key]
    graph.graph["notice"] = PRIVATE_NOTICE
    buffer = io.BytesIO()
    nx.write_graphml(graph, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return {"samples": graph.number_of_nodes(), "edges": graph.number_of_edges()}


def write_gexf(library: FreesoundLibrary, path: Path, options: ExportOptions) -> dict[str, int]:
    from networkx.readwrite.gexf import GEXFWriter  # ~0.3 s to import: only for a GEXF file

    graph = _sorted_graph(library, options.derived)
    for node, attrs in graph.nodes(data=True):
        clean = _without_none(attrs)
        attrs.clear()
        # Gephi shows a node's label: the sample's name (its id when it has none).
        attrs.update(clean, label=clean.get("name") or str(node))
    for _, _, attrs in graph.edges(data=True):
        clean = _without_none(attrs)
        attrs.clear()
        attrs.update(clean)
    writer = GEXFWriter(encoding="utf-8", prettyprint=True)
    meta = writer.xml.find("meta")
    assert meta is not None  # GEXFWriter always makes it
    # networkx dates the file today; the library's last change keeps the bytes stable.
    meta.set("lastmodifieddate", (library.last_added() or "1970-01-01")[:10])
    SubElement(meta, "description").text = PRIVATE_NOTICE
    writer.add_graph(graph)
    buffer = io.BytesIO()
    writer.write(buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return {"samples": graph.number_of_nodes(), "edges": graph.number_of_edges()}


def _csv_bytes(header: tuple[str, ...], rows: Iterator[tuple[Any, ...]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


CSV_NODES, CSV_EDGES, CSV_NOTICE = "nodes.csv", "edges.csv", "NOTICE.txt"


def write_csv(library: FreesoundLibrary, path: Path, options: ExportOptions) -> dict[str, int]:
    """Into the folder `path`: nodes.csv (id and NODE_FIELDS), edges.csv (source, target and
    EDGE_FIELDS) and NOTICE.txt (CSV has no place for it); an empty cell is a missing value."""
    graph = _sorted_graph(library, options.derived)
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path / CSV_NODES, _csv_bytes(
        ("id", *NODE_FIELDS),
        ((node, *(attrs.get(f) for f in NODE_FIELDS)) for node, attrs in graph.nodes(data=True)),
    ))
    atomic_write_bytes(path / CSV_EDGES, _csv_bytes(
        ("source", "target", *EDGE_FIELDS),
        ((u, v, *(a.get(f) for f in EDGE_FIELDS)) for u, v, a in graph.edges(data=True)),
    ))
    atomic_write_bytes(path / CSV_NOTICE, (PRIVATE_NOTICE + "\n").encode("utf-8"))
    return {"samples": graph.number_of_nodes(), "edges": graph.number_of_edges()}


WRITERS: dict[str, ExportFormat] = {
    "json": ExportFormat(write_json, "nodes + edges", takes_derived=True),
    "jsonl": ExportFormat(write_jsonl, "the whole library a line at a time, for git and "
                                       "`freesound merge`", takes_derived=True),
    "graphml": ExportFormat(write_graphml, "for Gephi", takes_derived=True),
    "gexf": ExportFormat(write_gexf, "for Gephi", takes_derived=True),
    "csv": ExportFormat(write_csv, "OUTPUT is a folder: nodes.csv + edges.csv, for pandas",
                        takes_derived=True, folder=True),
}
FORMATS = tuple(WRITERS)


def formats_taking_derived() -> list[str]:
    return [name for name, fmt in WRITERS.items() if fmt.takes_derived]


def export_library(library: FreesoundLibrary, path: str | Path, fmt: str = "json", *,
                   derived: bool = False) -> dict[str, Any]:
    """Write the library to `path`; returns {"samples": n, "edges": m, "path": ...} (JSON
    lines also "pending_edges" and "seen"). BadInputError for an unknown format, derived edges
    asked of a format without edges, a folder where a file is wanted or the other way round."""
    chosen = WRITERS.get(fmt)
    if chosen is None:
        raise BadInputError(f"unknown export format {fmt!r}; choose from {', '.join(WRITERS)}")
    if derived and not chosen.takes_derived:
        raise BadInputError(
            f"derived edges apply only to the {' and '.join(formats_taking_derived())} "
            f"exports; {fmt} has no edges"
        )
    path = Path(path)
    if chosen.folder and path.exists() and not path.is_dir():
        raise BadInputError(f"{path} is a file; --format {fmt} writes a folder "
                            f"({CSV_NODES}, {CSV_EDGES}): name a folder")
    if not chosen.folder and path.is_dir():
        raise BadInputError(f"{path} is a folder; --format {fmt} writes one file: name a file")
    counts = chosen.write(library, path, ExportOptions(derived=derived))
    return {**counts, "path": str(path)}
