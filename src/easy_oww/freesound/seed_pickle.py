"""Carry a library over from the seed project's ``freesound_library.pkl``.

That file is the whole state ``{graph, processed_ids, metadata, sound_cache}`` written with
``joblib.dump(..., compress=3)``: a zlib-compressed pickle. Unpickling runs whatever code
the file names, and these files travel between team members (Git LFS, shared drives), so we
never hand one to ``pickle.load``: the unpickler here resolves only plain containers and
networkx's graph classes, and refuses the file at the first anything else, before any of it
is used. joblib is not needed to read it.
"""

from __future__ import annotations

import bz2
import contextlib
import datetime as dt
import gzip
import io
import lzma
import pickle
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from easy_oww.errors import BadInputError
from easy_oww.freesound.lock import grow_lock
from easy_oww.freesound.schema import SIMILAR
from easy_oww.freesound.store import (
    FreesoundLibrary,
    LibraryStats,
    MalformedSampleError,
    normalise_sample,
)

# Decompressed size allowed per compressed byte: the seed's state compresses about 5-10x;
# this stops a small hostile file from filling memory.
MAX_RATIO = 200

_SAFE_GLOBALS = {
    ("builtins", name) for name in (
        "dict", "list", "set", "frozenset", "tuple", "object", "int", "float", "str", "bytes",
        "bool", "complex", "bytearray",
    )
} | {
    ("copyreg", "_reconstructor"),
    ("collections", "OrderedDict"), ("collections", "defaultdict"), ("collections", "deque"),
    ("datetime", "datetime"), ("datetime", "date"), ("datetime", "time"),
    ("datetime", "timedelta"), ("datetime", "timezone"),
}
# networkx pickles a graph as its class plus plain dicts, and the views it caches.
_SAFE_MODULES = {
    "networkx.classes.graph", "networkx.classes.digraph", "networkx.classes.multigraph",
    "networkx.classes.multidigraph", "networkx.classes.reportviews",
    "networkx.classes.coreviews",
}


class _DataOnlyUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, source: Path) -> None:
        super().__init__(io.BytesIO(data))
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        if module in _SAFE_MODULES and not name.startswith("_"):
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise BadInputError(
            f"{self.source} asks to load {module}.{name}, which is neither plain data nor a "
            "networkx graph: refused (nothing was run or imported); if the file is yours, "
            "re-save its state from the seed project as plain dicts and a graph")


def _decompress(path: Path) -> bytes:
    raw = path.read_bytes()
    limit = max(len(raw) * MAX_RATIO, 64 << 20)
    head = raw[:6]
    if head[:1] == b"\x80":  # an uncompressed pickle (joblib.dump without compress)
        return raw
    try:
        if head[:1] == b"\x78":  # joblib's compress=N default: a zlib stream
            inflater = zlib.decompressobj()
            out = inflater.decompress(raw, limit)
            if inflater.unconsumed_tail:
                raise _TooBig()
            if not inflater.eof:
                raise EOFError("the compressed stream ends early")
            return out
        opener = {b"\x1f\x8b": gzip.open, b"BZ": bz2.open}.get(head[:2])
        if opener is None and head == b"\xfd7zXZ\x00":
            opener = lzma.open
        if opener is None:
            raise BadInputError(f"{path} is not a joblib or pickle file (it starts with "
                                f"{head!r}); pass the seed's freesound_library.pkl")
        with opener(io.BytesIO(raw)) as stream:
            out = stream.read(limit + 1)
        if len(out) > limit:
            raise _TooBig()
        return out
    except _TooBig:
        raise BadInputError(f"{path} decompresses to more than {MAX_RATIO} times its size: "
                            "refused as a decompression bomb") from None
    except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
        raise BadInputError(f"{path} is damaged ({exc}); try an older backup "
                            "(freesound_library_backup_*.pkl)") from None


class _TooBig(Exception):
    pass


def load_seed_state(path: str | Path) -> dict[str, Any]:
    """The seed's state dict, read without running anything the file names."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path} does not exist; pass the seed's freesound_library.pkl")
    data = _decompress(path)
    try:
        state = _DataOnlyUnpickler(data, path).load()
    except BadInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise BadInputError(f"{path} is not a readable pickle ({exc.__class__.__name__}: "
                            f"{exc})") from None
    graph = state.get("graph") if isinstance(state, dict) else None
    if graph is None or not hasattr(graph, "nodes") or not hasattr(graph, "edges"):
        raise BadInputError(f"{path} is not a seed library: expected a dict with graph, "
                            "processed_ids, metadata and sound_cache")
    return state


@dataclass
class SeedImport:
    samples: int = 0  # newly stored
    already: int = 0  # stored before (an import run twice adds nothing)
    seen: int = 0  # sound_cache entries kept as seen (stored later without a request)
    edges: int = 0  # similar edges stored
    expanded: int = 0  # samples the seed had processed, not expanded again
    skipped: dict[str, int] = field(default_factory=dict)  # what was left out, and why

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def import_seed_pickle_run(folder: str | Path, path: str | Path,
                           state: dict[str, Any] | None = None) -> tuple[SeedImport, LibraryStats]:
    """`import_seed_pickle` into the library in `folder` (created if need be) under its grow
    lock, recorded in its history as a run ("imported", or "failed" if it raised); returns
    what was imported and the library's figures afterwards."""
    folder = Path(folder).expanduser().absolute()
    with grow_lock(folder), FreesoundLibrary(folder) as library:
        run = library.start_run()
        result = None
        try:
            result = import_seed_pickle(library, path, state)
        finally:
            library.update_run(run, samples_added=result.samples if result else 0, requests=0,
                               status="imported" if result else "failed", finished=True)
        return result, library.stats()


def import_seed_pickle(library: FreesoundLibrary, path: str | Path,
                       state: dict[str, Any] | None = None) -> SeedImport:
    """Add the seed's samples, similar edges, processed marks and sound cache to `library`,
    in one transaction (all or nothing). The seed's derived edge kinds (by_same_user,
    in_same_pack) are computed by `graph(derived=True)` here, and its similar_tags edges
    (all pairs, quadratic) are left out; both are counted in `skipped`. `state`: the file
    already read with `load_seed_state`."""
    state = state if state is not None else load_seed_state(path)
    graph = state["graph"]
    cache = state.get("sound_cache") or {}
    processed = state.get("processed_ids") or set()
    if not isinstance(cache, Mapping):
        raise BadInputError(f"{path}: sound_cache is a {type(cache).__name__}, not a dict")
    result = SeedImport()

    def skip(reason: str) -> None:
        result.skipped[reason] = result.skipped.get(reason, 0) + 1

    samples: dict[int, dict[str, Any]] = {}
    for node, attrs in graph.nodes(data=True):
        sound_id = _as_id(node)
        if sound_id is None:
            skip("nodes whose id is not a positive integer")
            continue
        data = dict(attrs)
        data.update(cache.get(node) or cache.get(sound_id) or cache.get(str(sound_id)) or {})
        data["id"] = sound_id
        samples[sound_id] = _jsonable(data)
    edges = []
    for source, target, attrs in graph.edges(data=True):
        kind = attrs.get("type") or attrs.get("kind") or SIMILAR
        ends = _as_id(source), _as_id(target)
        if kind != SIMILAR:
            skip(f"{kind} edges (derived here, not stored)" if kind in (
                "by_same_user", "in_same_pack") else f"{kind} edges")
            continue
        if None in ends or ends[0] == ends[1]:
            skip("edges with a bad end")
            continue
        weight = attrs.get("weight")
        weight = float(weight) if isinstance(weight, (int, float)) else None
        edges.append((ends[0], ends[1], SIMILAR, weight, None))

    with library.transaction():
        stored = library.stored_ids()
        good = []
        for sound_id, data in samples.items():
            if sound_id in stored:
                result.already += 1
                continue
            try:
                normalise_sample(data)
            except MalformedSampleError:
                skip("samples with malformed fields")
                continue
            good.append(data)
        edges_before = library.stats().edges
        result.samples = library.bulk_add(good, edges)
        result.edges = library.stats().edges - edges_before
        stored, seen = library.stored_ids(), library.seen_ids()
        for key, data in cache.items():
            sound_id = _as_id(key)
            if sound_id is None or sound_id in stored or not isinstance(data, Mapping):
                continue
            library.remember_seen(_jsonable(data), sound_id)
            result.seen += sound_id not in seen
        new_ids = {data["id"] for data in good}
        for key in processed:
            sound_id = _as_id(key)
            if sound_id in new_ids:  # the seed fetched its similar sounds: not again
                library.mark_expanded(sound_id)
                result.expanded += 1
    return result


def _jsonable(value: Any) -> Any:
    """The value as JSON can hold it: the seed's code may have kept sets, tuples or
    datetimes in node attributes, which the store keeps as raw JSON."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _as_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = int(value)
    return value if isinstance(value, int) and value > 0 else None
