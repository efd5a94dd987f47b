"""A plain URL (``url``): one download, sized and hashed by the catalog when it says so."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from easy_oww.datasets.sources.base import (
    FileEntry,
    ListingSlot,
    ResolvedFile,
    Source,
    SourceEntryError,
)
from easy_oww.datasets.sources.huggingface import effective_url, hf_auth_headers, hf_endpoint


@dataclass(frozen=True)
class PlainUrl(Source):
    kind: ClassVar[str] = "url"
    naming_key: ClassVar[str] = "url"
    keys: ClassVar[Mapping[str, type]] = {"url": str}
    hint: ClassVar[str] = "url"

    url: str

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> PlainUrl:
        url = table.get("url")
        if url is None:
            raise SourceEntryError("url", "missing: the http(s) URL of the file")
        if not url.startswith(("http://", "https://")):
            raise SourceEntryError("url", f"{url!r} is not an http(s) URL")
        return cls(url)

    def auth_headers(self) -> dict[str, str]:
        return hf_auth_headers()

    def resolve(self, entry: FileEntry, dataset: str, listing: ListingSlot, *, online: bool
                ) -> list[ResolvedFile]:
        url = effective_url(self.url)
        # A Hub URL gets HF_TOKEN (gated repos), sent to the Hub host only.
        hub = url.startswith(hf_endpoint() + "/")
        return [ResolvedFile(dataset, entry.path, url, entry.size, entry.hash, entry,
                             auth_host=urlsplit(url).hostname if hub else None)]
