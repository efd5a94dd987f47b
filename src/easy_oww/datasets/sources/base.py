"""What every source kind is: the catalog keys it reads, and how it becomes downloads.

A kind is one subclass of :class:`Source` in its own module, registered in
``easy_oww.datasets.sources``. The catalog picks the kind of an entry (its ``kind`` key, or
the one key that names a kind), hands the entry's table to :meth:`Source.from_table`, and
keeps the result in :attr:`FileEntry.source`; the resolver asks it for its downloads.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from easy_oww.atomic import atomic_write_text
from easy_oww.hashes import KnownHash

KeyTypes = Mapping[str, "type | tuple[type, ...]"]


class SourceEntryError(ValueError):
    """A source's keys are wrong. `key` is relative to the entry ('' for the entry itself);
    the catalog adds the file and dataset to make the one-line message."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key, self.problem = key, problem


@dataclass(frozen=True)
class FileEntry:
    """One catalog file: where it comes from (`source`), where it lands, what it must be."""

    path: str  # relative to the datasets folder; a folder when the source lands in one
    source: Source
    size: int | None = None
    hash: KnownHash | None = None
    format: str | None = None
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    sample_rate: int | None = None
    channels: int | None = None

    @property
    def kind(self) -> str:
        return self.source.kind

    @property
    def lands_in_folder(self) -> bool:
        return self.source.lands_in_folder


@dataclass(frozen=True)
class ResolvedFile:
    """One concrete download: where from, where to (relative to datasets/), size, hash."""

    dataset: str
    path: str
    url: str
    size: int | None
    hash: KnownHash | None
    entry: FileEntry
    auth_host: str | None = None  # the one host that gets `auth_headers()` (not a CDN)
    host_connections: int | None = None  # the service's cap on connections to its host
    fallback_urls: tuple[str, ...] = ()  # other routes to the same bytes, tried in order

    @property
    def catalog_hash(self) -> str | None:
        return str(self.hash) if self.hash else None

    def auth_headers(self) -> dict[str, str]:
        """The credentials for `auth_host` (read when needed, never kept in the object)."""
        return self.entry.source.auth_headers() if self.auth_host else {}


class JsonGetter(Protocol):
    def get_json(self, url: str, headers: Mapping[str, str]) -> tuple[Any, str | None]:
        """The JSON body of a GET and its ``Link`` header."""
        ...


class ListingSlot:
    """The cached listing of one catalog entry, ``<listings>/<dataset>.<index>.json``:
    fetched and saved when online, read back when offline (so ``--status`` works offline)."""

    def __init__(self, path: Path, http: JsonGetter) -> None:
        self.path, self.http = path, http

    def get(self, source_id: str, fetch: Callable[[JsonGetter], Any], *, online: bool
            ) -> Any | None:
        """The listing; None offline when none was saved for `source_id` (the entry changed)."""
        if online:
            listing = fetch(self.http)
            atomic_write_text(self.path, json.dumps({"source": source_id, "listing": listing}))
            return listing
        try:
            cached = json.loads(self.path.read_text(encoding="utf-8"))
            return cached["listing"] if cached.get("source") == source_id else None
        except (OSError, ValueError, KeyError, AttributeError):  # absent, damaged, hand-edited
            return None


class Source(ABC):
    """One kind of place files come from. Subclasses are frozen dataclasses of their keys."""

    kind: ClassVar[str]  # its name in the registry and in a catalog's ``kind = "..."``
    naming_key: ClassVar[str]  # the key whose presence alone says an entry is of this kind
    keys: ClassVar[KeyTypes]  # its own catalog keys (naming key included) and their types
    hint: ClassVar[str]  # how the catalog error lists it: "hf_repo (+ hf_folder)"
    lands_in_folder: ClassVar[bool] = False  # `path` is a folder that receives many files

    @classmethod
    @abstractmethod
    def from_table(cls, table: Mapping[str, Any]) -> Source:
        """The source of a catalog entry whose keys are already type-checked; raises
        SourceEntryError for a missing or bad value."""

    @abstractmethod
    def resolve(self, entry: FileEntry, dataset: str, listing: ListingSlot, *, online: bool
                ) -> list[ResolvedFile] | None:
        """The downloads of `entry`; None when a listing is needed but not known (offline)."""

    def auth_headers(self) -> dict[str, str]:
        """Credentials for the `auth_host` of its downloads (none unless a kind says so)."""
        return {}


class DatasetFiles(Protocol):
    """What the resolver needs of a catalog dataset (the catalog imports this package)."""

    @property
    def key(self) -> str: ...

    @property
    def files(self) -> Sequence[FileEntry]: ...
