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
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import escape

from easy_oww.atomic import atomic_write_bytes, atomic_writer
from easy_oww.freesound.errors import BadInputError
from easy_oww.freesound.schema import SAME_PACK, SAME_USER
from easy_oww.freesound.store import FreesoundLibrary

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


_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class _Lines:
    """Text written to an atomic file in batches (an export of 1M edges is ~1M lines)."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.buffer: list[str] = []

    def write(self, text: str) -> None:
        self.buffer.append(text)
        if len(self.buffer) >= 5000:
            self.flush()

    def flush(self) -> None:
        self.handle.write("".join(self.buffer).encode("utf-8"))
        self.buffer = []


def _graph(library: FreesoundLibrary, derived: bool) -> tuple[list[tuple[Any, ...]],
                                                              Iterator[tuple[Any, ...]]]:
    """The nodes (a list: 100k small tuples) and the edges (streamed), in export order."""
    rows = library.graph_rows(derived=derived)
    nodes: list[tuple[Any, ...]] = []
    for kind, row in rows:
        if kind == "node":
            nodes.append(row)
            continue
        return nodes, itertools.chain([row], (edge for _, edge in rows))
    return nodes, iter(())


def write_json(library: FreesoundLibrary, path: Path, options: ExportOptions) -> dict[str, int]:
    """{"notice", "nodes", "edges"}: each node {"id", *NODE_FIELDS}, each edge {"source",
    "target", *EDGE_FIELDS}, keys sorted, compact."""
    nodes, edges = _graph(library, options.derived)
    counts = {"samples": len(nodes), "edges": 0}
    dumps = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode
    with atomic_writer(path) as handle:
        out = _Lines(handle)
        out.write('{"notice":' + dumps(PRIVATE_NOTICE) + ',"nodes":[')
        for i, row in enumerate(nodes):
            out.write(("," if i else "") + dumps(dict(zip(("id", *NODE_FIELDS), row,
                                                          strict=True))))
        out.write('],"edges":[')
        for row in edges:
            out.write(("," if counts["edges"] else "") + dumps(dict(zip(
                ("source", "target", *EDGE_FIELDS), row, strict=True))))
            counts["edges"] += 1
        out.write("]}")
        out.flush()
    return counts


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
    return [row for kind, row in library.graph_rows(derived=True)
            if kind == "edge" and row[2] in DERIVED_KINDS]


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


# The graph formats' attribute types, by field (the values graph() gives them).
_NODE_TYPES = ("string", "string", "long", "long", "double", "string", "boolean")
_EDGE_TYPES = ("string", "double", "long")


# Quotes for attribute values; line ends and tabs as references, which XML parsers keep (a
# literal one in an attribute would be read back as a space).
_XML_ENTITIES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, float) else str(value)
    return escape(_INVALID_XML.sub("", text), _XML_ENTITIES)


def write_graphml(library: FreesoundLibrary, path: Path,
                  options: ExportOptions) -> dict[str, int]:
    """GraphML as networkx writes and reads it (typed keys; a missing value is left out, as
    GraphML has no null), streamed: Gephi, yEd and networkx.read_graphml open it."""
    nodes, edges = _graph(library, options.derived)
    counts = {"samples": len(nodes), "edges": 0}
    with atomic_writer(path) as handle:
        out = _Lines(handle)
        out.write("<?xml version='1.0' encoding='utf-8'?>\n"
                  '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
                  'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                  'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
                  'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n')
        out.write('  <key id="notice" for="graph" attr.name="notice" attr.type="string" />\n')
        for i, (name, kind) in enumerate(zip(NODE_FIELDS, _NODE_TYPES, strict=True)):
            out.write(f'  <key id="n{i}" for="node" attr.name="{name}" attr.type="{kind}" />\n')
        for i, (name, kind) in enumerate(zip(EDGE_FIELDS, _EDGE_TYPES, strict=True)):
            out.write(f'  <key id="e{i}" for="edge" attr.name="{name}" attr.type="{kind}" />\n')
        out.write('  <graph edgedefault="directed">\n'
                  f'    <data key="notice">{_xml_text(PRIVATE_NOTICE)}</data>\n')
        for row in nodes:
            data = "".join(f'<data key="n{i}">{_xml_text(v)}</data>'
                           for i, v in enumerate(row[1:]) if v is not None)
            out.write(f'    <node id="{row[0]}">{data}</node>\n')
        for row in edges:
            data = "".join(f'<data key="e{i}">{_xml_text(v)}</data>'
                           for i, v in enumerate(row[2:]) if v is not None)
            out.write(f'    <edge source="{row[0]}" target="{row[1]}">{data}</edge>\n')
            counts["edges"] += 1
        out.write("  </graph>\n</graphml>\n")
        out.flush()
    return counts


def write_gexf(library: FreesoundLibrary, path: Path, options: ExportOptions) -> dict[str, int]:
    """GEXF 1.2 (Gephi's own format), streamed: a node's label is the sample's name; an
    edge's weight is GEXF's edge weight; dated by the library's newest sample, so the same
    library gives the same bytes; the notice is the file's description."""
    nodes, edges = _graph(library, options.derived)
    counts = {"samples": len(nodes), "edges": 0}
    day = (library.last_added() or "1970-01-01")[:10]
    with atomic_writer(path) as handle:
        out = _Lines(handle)
        out.write("<?xml version='1.0' encoding='utf-8'?>\n"
                  '<gexf xmlns="http://www.gexf.net/1.2draft" '
                  'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                  'xsi:schemaLocation="http://www.gexf.net/1.2draft '
                  'http://www.gexf.net/1.2draft/gexf.xsd" version="1.2">\n'
                  f'  <meta lastmodifieddate="{day}">\n'
                  "    <creator>easy-oww</creator>\n"
                  f"    <description>{_xml_text(PRIVATE_NOTICE)}</description>\n"
                  "  </meta>\n"
                  '  <graph defaultedgetype="directed" mode="static" name="">\n'
                  '    <attributes mode="static" class="node">\n')
        for i, (name, kind) in enumerate(zip(NODE_FIELDS, _NODE_TYPES, strict=True)):
            out.write(f'      <attribute id="n{i}" title="{name}" type="{kind}" />\n')
        out.write('    </attributes>\n    <attributes mode="static" class="edge">\n')
        for i, (name, kind) in enumerate(zip(EDGE_FIELDS, _EDGE_TYPES, strict=True)):
            if name != "weight":  # GEXF's own edge weight carries it
                out.write(f'      <attribute id="e{i}" title="{name}" type="{kind}" />\n')
        out.write("    </attributes>\n    <nodes>\n")
        for row in nodes:
            label = _xml_text(row[1] if row[1] is not None else row[0])
            values = "".join(f'<attvalue for="n{i}" value="{_xml_text(v)}" />'
                             for i, v in enumerate(row[1:]) if v is not None)
            out.write(f'      <node id="{row[0]}" label="{label}"><attvalues>{values}'
                      "</attvalues></node>\n")
        out.write("    </nodes>\n    <edges>\n")
        for row in edges:
            source, target, kind, weight, rank = row
            weight_attr = f' weight="{weight!r}"' if weight is not None else ""
            values = f'<attvalue for="e0" value="{_xml_text(kind)}" />' + (
                f'<attvalue for="e2" value="{rank}" />' if rank is not None else "")
            out.write(f'      <edge id="{counts["edges"]}" source="{source}" target="{target}"'
                      f"{weight_attr}><attvalues>{values}</attvalues></edge>\n")
            counts["edges"] += 1
        out.write("    </edges>\n  </graph>\n</gexf>\n")
        out.flush()
    return counts


CSV_NODES, CSV_EDGES, CSV_NOTICE = "nodes.csv", "edges.csv", "NOTICE.txt"


def _write_csv_file(path: Path, header: tuple[str, ...],
                    rows: Iterable[tuple[Any, ...]]) -> int:
    count = 0
    with atomic_writer(path) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
        text.flush()
        text.detach()  # the atomic writer closes the file itself
    return count


def write_csv(library: FreesoundLibrary, path: Path, options: ExportOptions) -> dict[str, int]:
    """Into the folder `path`: nodes.csv (id and NODE_FIELDS), edges.csv (source, target and
    EDGE_FIELDS) and NOTICE.txt (CSV has no place for it); an empty cell is a missing value,
    so `pandas.read_csv` reads them as NaN."""
    nodes, edges = _graph(library, options.derived)
    path.mkdir(parents=True, exist_ok=True)
    _write_csv_file(path / CSV_NODES, ("id", *NODE_FIELDS), nodes)
    count = _write_csv_file(path / CSV_EDGES, ("source", "target", *EDGE_FIELDS), edges)
    atomic_write_bytes(path / CSV_NOTICE, (PRIVATE_NOTICE + "\n").encode("utf-8"))
    return {"samples": len(nodes), "edges": count}


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
