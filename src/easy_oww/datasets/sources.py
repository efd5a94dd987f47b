"""Turn catalog file entries into concrete downloads.

A plain ``url`` entry is one download. A Hugging Face folder (``hf_repo`` + ``hf_folder``)
is listed through the Hub's tree API (paginated with ``Link: <…>; rel="next"``), one
download per file, sized and hashed by the listing (``lfs.oid`` is a sha256; a non-LFS
file's ``oid`` is a git blob sha1). A Zenodo record file takes its size and md5 from the
record API, the catalog's hash winning where both exist. Listings are cached in the
workspace, so ``--status`` works offline once they have been fetched.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import urllib3

from easy_oww.atomic import atomic_write_text
from easy_oww.datasets.catalog import (
    Dataset,
    FileEntry,
    effective_url,
    hf_endpoint,
    zenodo_endpoint,
)
from easy_oww.errors import DownloadError, NetworkError
from easy_oww.hashes import KnownHash

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass(frozen=True)
class ResolvedFile:
    """One concrete download: where from, where to (relative to datasets/), size, hash."""

    dataset: str
    path: str
    url: str
    size: int | None
    hash: KnownHash | None
    entry: FileEntry
    auth_host: str | None = None

    @property
    def catalog_hash(self) -> str | None:
        return str(self.hash) if self.hash else None


class ListingUnavailable(NetworkError):
    pass


class SourceResolver:
    """Expands a dataset's entries; fetches listings when `online`, else uses the cache."""

    def __init__(self, listings_dir: Path, pool: urllib3.PoolManager | None = None,
                 timeout: float = 30.0) -> None:
        self.listings_dir = listings_dir
        self.pool = pool or urllib3.PoolManager(retries=urllib3.Retry(
            total=4, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504)))
        self.timeout = timeout

    def resolve(self, dataset: Dataset, *, online: bool) -> list[ResolvedFile] | None:
        """All files of `dataset`; None when a listing is needed but not known (offline)."""
        out: list[ResolvedFile] = []
        for index, entry in enumerate(dataset.files):
            if entry.kind == "url":
                assert entry.url
                url = effective_url(entry.url)
                # A Hub URL gets HF_TOKEN (gated repos), sent to the Hub host only.
                hub = url.startswith(hf_endpoint() + "/")
                out.append(ResolvedFile(dataset.key, entry.path, url, entry.size, entry.hash,
                                        entry, urlsplit(url).hostname if hub else None))
                continue
            listing = self._listing(dataset, index, entry, online)
            if listing is None:
                return None
            out.extend(listing)
        return out

    # -- listings ---------------------------------------------------------------------------
    def _cache_file(self, dataset: Dataset, index: int) -> Path:
        return self.listings_dir / f"{dataset.key}.{index}.json"

    def _listing(self, dataset: Dataset, index: int, entry: FileEntry, online: bool
                 ) -> list[ResolvedFile] | None:
        cache = self._cache_file(dataset, index)
        raw: Any = None
        if online:
            raw = self._fetch_hf(entry) if entry.kind == "hf_folder" else self._fetch_zenodo(entry)
            atomic_write_text(cache, json.dumps({"source": _source_id(entry), "listing": raw}))
        else:
            try:
                cached = json.loads(cache.read_text(encoding="utf-8"))
                if cached.get("source") == _source_id(entry):
                    raw = cached["listing"]
            except (OSError, ValueError, KeyError, AttributeError):
                raw = None
            if raw is None:
                return None
        if entry.kind == "hf_folder":
            return self._hf_files(dataset, entry, raw)
        return self._zenodo_files(dataset, entry, raw)

    def _get_json(self, url: str, headers: dict[str, str]) -> tuple[Any, str | None]:
        try:
            response = self.pool.request("GET", url, headers=headers, timeout=self.timeout)
        except urllib3.exceptions.HTTPError as exc:
            host = urlsplit(url).netloc
            raise ListingUnavailable(f"cannot list {url}: {host} unreachable (offline?): "
                                     f"{exc.__class__.__name__}") from None
        if response.status != 200:
            raise DownloadError(f"listing {url} failed with HTTP {response.status}; check the "
                                "catalog entry (repository, revision, folder or record)")
        try:
            return json.loads(response.data), response.headers.get("Link")
        except ValueError:
            raise DownloadError(f"listing {url} did not return JSON") from None

    def _fetch_hf(self, entry: FileEntry) -> list[dict[str, Any]]:
        assert entry.hf_repo and entry.hf_folder is not None
        base = hf_endpoint()
        url: str | None = (f"{base}/api/{entry.hf_repo_type}/{entry.hf_repo}/tree/"
                           f"{quote(entry.hf_revision, safe='')}/{entry.hf_folder}?recursive=true")
        items: list[dict[str, Any]] = []
        while url:
            page, link = self._get_json(url, _hf_headers())
            if not isinstance(page, list):
                raise DownloadError(f"listing {url}: expected a JSON list of files")
            items.extend(page)
            match = _LINK_NEXT.search(link or "")
            url = urljoin(url, match.group(1)) if match else None
        return items

    def _fetch_zenodo(self, entry: FileEntry) -> dict[str, Any]:
        url = f"{zenodo_endpoint()}/api/records/{entry.zenodo_record}"
        record, _ = self._get_json(url, {"Accept": "application/json"})
        files = record.get("files") if isinstance(record, dict) else None
        if not isinstance(files, list):
            raise DownloadError(f"{url}: the record has no file list")
        return {"files": [{k: f.get(k) for k in ("key", "size", "checksum", "links")}
                          for f in files if isinstance(f, dict)]}

    def _hf_files(self, dataset: Dataset, entry: FileEntry, items: list[dict[str, Any]]
                  ) -> list[ResolvedFile]:
        assert entry.hf_repo and entry.hf_folder is not None
        folder = PurePosixPath(entry.hf_folder)
        base = hf_endpoint()
        out = []
        for item in items:
            if not isinstance(item, dict) or item.get("type") != "file":
                continue
            remote_path = PurePosixPath(str(item["path"]))
            relative = remote_path.relative_to(folder)
            if ".." in relative.parts or relative.is_absolute():
                raise DownloadError(f"{dataset.key}: the listing names an unsafe path "
                                    f"{item['path']!r}; refusing it")
            lfs = item.get("lfs") or {}
            if lfs.get("oid"):
                known: KnownHash | None = KnownHash("sha256", str(lfs["oid"]))
                size = int(lfs.get("size", item.get("size", 0)))
            else:
                known = KnownHash("gitsha1", str(item["oid"])) if item.get("oid") else None
                size = int(item.get("size", 0))
            prefix = "" if entry.hf_repo_type == "models" else f"/{entry.hf_repo_type}"
            url = (f"{base}{prefix}/{entry.hf_repo}/resolve/"
                   f"{quote(entry.hf_revision, safe='')}/{quote(str(remote_path))}")
            out.append(ResolvedFile(dataset.key, str(PurePosixPath(entry.path) / relative), url,
                                    size, known, entry, auth_host=urlsplit(base).hostname))
        return sorted(out, key=lambda f: f.path)

    def _zenodo_files(self, dataset: Dataset, entry: FileEntry, record: dict[str, Any]
                      ) -> list[ResolvedFile]:
        for item in record.get("files", []):
            if item.get("key") != entry.zenodo_key:
                continue
            known = entry.hash
            checksum = item.get("checksum")
            if known is None and isinstance(checksum, str) and ":" in checksum:
                known = KnownHash.parse(checksum)
            url = ((item.get("links") or {}).get("self") or
                   f"{zenodo_endpoint()}/records/{entry.zenodo_record}/files/"
                   f"{quote(str(entry.zenodo_key))}?download=1")
            size = entry.size if entry.size is not None else item.get("size")
            return [ResolvedFile(dataset.key, entry.path, url, size, known, entry)]
        raise DownloadError(f"{dataset.key}: Zenodo record {entry.zenodo_record} has no file "
                            f"{entry.zenodo_key!r}; check the catalog")


def _source_id(entry: FileEntry) -> str:
    # Not the endpoint: a mirror (HF_ENDPOINT) serves the same repository, and --status
    # must read the cached listing whatever the environment says today.
    if entry.kind == "hf_folder":
        return f"hf:{entry.hf_repo_type}:{entry.hf_repo}:{entry.hf_revision}:{entry.hf_folder}"
    return f"zenodo:{entry.zenodo_record}"


def _hf_headers() -> dict[str, str]:
    token = os.environ.get("HF_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def hf_auth_headers() -> dict[str, str]:
    return _hf_headers()
