"""A Zenodo record file (``zenodo_record`` + ``zenodo_key``): one download.

Its size and md5 come from the record API, the catalog's hash winning where both exist.
The bytes come from the record's download route, ``/records/<id>/files/<key>?download=1``,
which honours ``Range``; the API's ``links.self`` (``/api/records/<id>/files/<key>/content``)
ignores it (zenodo/zenodo#2593), so a dropped connection there costs the whole file: it is
kept as the fallback, for when the download route answers 404.
``ZENODO_ENDPOINT`` points it at a mirror.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

from easy_oww.datasets.sources.base import (
    FileEntry,
    JsonGetter,
    ListingSlot,
    ResolvedFile,
    Source,
    SourceEntryError,
)
from easy_oww.errors import DownloadError
from easy_oww.hashes import KnownHash

ZENODO_DEFAULT_ENDPOINT = "https://zenodo.org"
# Zenodo blocks clients with more than two downloads at once (karel-brinda/Phylign#236; its
# guest limits are 60 requests a minute, developers.zenodo.org): two connections in all.
ZENODO_CONNECTIONS = 2


def zenodo_endpoint() -> str:
    return os.environ.get("ZENODO_ENDPOINT", ZENODO_DEFAULT_ENDPOINT).rstrip("/")


@dataclass(frozen=True)
class ZenodoFile(Source):
    kind: ClassVar[str] = "zenodo"
    naming_key: ClassVar[str] = "zenodo_record"
    keys: ClassVar[Mapping[str, type | tuple[type, ...]]] = {
        "zenodo_record": (int, str), "zenodo_key": str}
    hint: ClassVar[str] = "zenodo_record (+ zenodo_key)"

    record: str
    key: str

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> ZenodoFile:
        if "zenodo_record" not in table:
            raise SourceEntryError("zenodo_record", "missing: the record number")
        if "zenodo_key" not in table:
            raise SourceEntryError("zenodo_key", "missing: the file name in the record")
        return cls(record=str(table["zenodo_record"]), key=table["zenodo_key"])

    @property
    def listing_id(self) -> str:
        return f"zenodo:{self.record}"  # not the endpoint: see HuggingFaceFolder.listing_id

    def resolve(self, entry: FileEntry, dataset: str, listing: ListingSlot, *, online: bool
                ) -> list[ResolvedFile] | None:
        record = listing.get(self.listing_id, self.fetch, online=online)
        return None if record is None else [self.file(entry, dataset, record)]

    def fetch(self, http: JsonGetter) -> dict[str, Any]:
        """The record's file list, trimmed to what `file` reads."""
        url = f"{zenodo_endpoint()}/api/records/{self.record}"
        record, _ = http.get_json(url, {"Accept": "application/json"})
        files = record.get("files") if isinstance(record, dict) else None
        if not isinstance(files, list):
            raise DownloadError(f"{url}: the record has no file list")
        return {"files": [{k: f.get(k) for k in ("key", "size", "checksum", "links")}
                          for f in files if isinstance(f, dict)]}

    def file(self, entry: FileEntry, dataset: str, record: dict[str, Any]) -> ResolvedFile:
        for item in record.get("files", []):
            if not isinstance(item, dict) or item.get("key") != self.key:
                continue
            known = entry.hash
            checksum = item.get("checksum")
            if known is None and isinstance(checksum, str) and ":" in checksum:
                try:
                    known = KnownHash.parse(checksum)
                except ValueError as exc:
                    raise DownloadError(f"{dataset}: Zenodo record {self.record} gives "
                                        f"{self.key!r} a checksum it cannot be checked with: "
                                        f"{exc}") from None
            url = (f"{zenodo_endpoint()}/records/{self.record}/files/"
                   f"{quote(self.key)}?download=1")
            size = entry.size if entry.size is not None else item.get("size")
            api_route = (item.get("links") or {}).get("self")
            return ResolvedFile(dataset, entry.path, url, size, known, entry,
                                host_connections=ZENODO_CONNECTIONS,
                                fallback_urls=(api_route,) if api_route else ())
        raise DownloadError(f"{dataset}: Zenodo record {self.record} has no file "
                            f"{self.key!r}; check the catalog")
