"""Turn catalog file entries into concrete downloads.

Each source kind is a class in its own module (``url``, ``huggingface``, ``zenodo``),
registered here in :data:`KINDS`. A catalog entry names its kind with ``kind = "..."`` or with
the one key that names it (``url``, ``hf_repo``, ``hf_file``, ``zenodo_record``); where two
kinds are named and one reads the other's naming key (``hf_file`` reads ``hf_repo``), the
one that reads both is meant. Adding a kind is one
module, one :func:`register` line below, and its tests. Listings (a Hub folder's tree, a
Zenodo record) are cached in the workspace, so ``--status`` works offline once fetched.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import urllib3

from easy_oww.datasets.sources.base import (
    DatasetFiles,
    FileEntry,
    JsonGetter,
    ListingSlot,
    ResolvedFile,
    Source,
    SourceEntryError,
)
from easy_oww.datasets.sources.http import LISTING_POLICY, JsonClient, ListingUnavailable
from easy_oww.datasets.sources.huggingface import (
    HubSource,
    HuggingFaceFile,
    HuggingFaceFolder,
    ListingDisagrees,
    effective_url,
    hf_auth_headers,
    hf_endpoint,
    hub_commit,
)
from easy_oww.datasets.sources.local import MadeHere
from easy_oww.datasets.sources.url import PlainUrl
from easy_oww.datasets.sources.zenodo import ZenodoFile, zenodo_endpoint
from easy_oww.transfer.retry import RetryPolicy

__all__ = [
    "KINDS", "FileEntry", "HubSource", "HuggingFaceFile", "HuggingFaceFolder",
    "ListingDisagrees", "ListingUnavailable", "MadeHere", "PlainUrl", "ResolvedFile", "Source",
    "SourceEntryError", "SourceResolver", "ZenodoFile", "effective_url", "hf_auth_headers",
    "hf_endpoint", "hub_commit", "kind_of", "parse_source", "register", "source_keys",
    "zenodo_endpoint",
]

KINDS: dict[str, type[Source]] = {}  # kind name -> class, in registration order


def register(kind: type[Source]) -> type[Source]:
    """Make `kind` choosable by catalogs; its name and naming key must be new."""
    taken = {k.naming_key for k in KINDS.values()}
    if kind.kind in KINDS or kind.naming_key in taken or kind.naming_key == "kind":
        raise ValueError(f"source kind {kind.kind!r} (key {kind.naming_key!r}) is taken")
    KINDS[kind.kind] = kind
    return kind


register(PlainUrl)
register(HuggingFaceFolder)
register(HuggingFaceFile)
register(ZenodoFile)
register(MadeHere)


def source_keys() -> dict[str, type | tuple[type, ...]]:
    """Every source key any kind reads, with its type, plus ``kind``."""
    keys: dict[str, type | tuple[type, ...]] = {"kind": str}
    for kind in KINDS.values():
        keys.update(kind.keys)
    return keys


def _choices() -> str:
    hints = [kind.hint for kind in KINDS.values()]
    return ", ".join(hints[:-1]) + " or " + hints[-1] if len(hints) > 1 else hints[0]


def kind_of(table: Mapping[str, Any]) -> type[Source]:
    """The one kind a catalog entry names; SourceEntryError when it names none or several."""
    named = [kind for kind in KINDS.values() if kind.naming_key in table]
    if "kind" in table:
        chosen = KINDS.get(table["kind"])
        if chosen is None:
            raise SourceEntryError("kind", f"{table['kind']!r} is not a source kind (known: "
                                   f"{', '.join(KINDS)})")
        named = [chosen] + [kind for kind in named if kind is not chosen]
    # A kind named only by a key that another named kind reads too is not meant on its own:
    # hf_repo names a folder, but hf_repo with hf_file is one file.
    named = [kind for kind in named if kind is named[0] and "kind" in table or not any(
        other is not kind and kind.naming_key in other.keys for other in named)]
    if len(named) == 1:
        return named[0]
    if not named:
        problem = f"names no source; give exactly one source: {_choices()}"
    else:
        clash = " and ".join(repr(k.kind) for k in named)
        problem = f"names two sources ({clash}); give exactly one source: {_choices()}"
    raise SourceEntryError("", problem)


def parse_source(table: Mapping[str, Any]) -> Source:
    """The source of a catalog entry (keys already type-checked); SourceEntryError if wrong,
    including a key that belongs to another kind."""
    kind = kind_of(table)
    for key in table:
        if key in kind.keys or key == "kind":
            continue
        owner = next((k for k in KINDS.values() if key in k.keys), None)
        if owner is not None:
            raise SourceEntryError(key, f"belongs to a {owner.kind!r} source, and this entry "
                                   f"is a {kind.kind!r} source; remove it")
    return kind.from_table(table)


class SourceResolver:
    """Expands a dataset's entries; fetches listings when `online`, else uses the cache."""

    def __init__(self, listings_dir: Path, pool: urllib3.PoolManager | None = None,
                 timeout: float = 30.0, policy: RetryPolicy | None = None) -> None:
        self.listings_dir = listings_dir
        self.http = JsonClient(pool, timeout, policy or LISTING_POLICY)

    def resolve(self, dataset: DatasetFiles, *, online: bool) -> list[ResolvedFile] | None:
        """All files of `dataset`; None when a listing is needed but not known (offline)."""
        out: list[ResolvedFile] = []
        # Entries of one dataset often read one listing (ten AudioSet tars in one Hub folder,
        # ten FSD50K volumes in one Zenodo record): it is asked for once per resolve.
        http = _AskedOnce(self.http)
        for index, entry in enumerate(dataset.files):
            # The file name is kept from before kinds were classes: old caches still count.
            # A dataset's fallback route keeps its listings apart (`listing_key`).
            name = getattr(dataset, "listing_key", dataset.key)
            slot = ListingSlot(self.listings_dir / f"{name}.{index}.json", http)
            files = entry.source.resolve(entry, dataset.key, slot, online=online)
            if files is None:
                return None
            out.extend(files)
        return out


class _AskedOnce:
    """A JsonGetter that asks each URL once and answers repeats from memory."""

    def __init__(self, http: JsonGetter) -> None:
        self.http = http
        self.answers: dict[str, tuple[Any, str | None]] = {}

    def get_json(self, url: str, headers: Mapping[str, str]) -> tuple[Any, str | None]:
        if url not in self.answers:
            self.answers[url] = self.http.get_json(url, headers)
        return self.answers[url]
