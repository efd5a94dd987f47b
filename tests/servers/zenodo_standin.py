"""A Zenodo stand-in on loopback: the records API and the file URLs.

Point ``ZENODO_ENDPOINT`` at :attr:`ZenodoStandin.endpoint`::

    with ZenodoStandin() as zen:
        zen.add_file(4060432, "FSD50K.dev_audio.z01", data)
        monkeypatch.setenv("ZENODO_ENDPOINT", zen.endpoint)   # "http://127.0.0.1:PORT"
        ...
        zen.bytes_sent(4060432, "FSD50K.dev_audio.z01")

Endpoints (shapes of zenodo.org since its move to InvenioRDM, as served to
``Accept: application/json``):

- ``GET /api/records/<id>`` — the record: ``id`` (int), ``recid``, ``conceptrecid``,
  ``doi``, ``conceptdoi``, ``doi_url``, ``metadata``, ``title``, ``links``, ``created``,
  ``modified``, ``updated``, ``revision``, ``swh``, ``owners``, ``status``, ``stats``,
  ``state``, ``submitted`` and ``files``: a list of ``{"id", "key", "size", "checksum":
  "md5:<hex>", "links": {"self": "<endpoint>/api/records/<id>/files/<key>/content"}}``.
  Unknown record: ``404 {"status": 404, "message": "The persistent identifier does not
  exist."}``.
- ``GET /api/records/<id>/files`` — the InvenioRDM file list ``{"enabled": true,
  "entries": [...], ...}``; ``GET /api/records/<id>/files/<key>`` — one entry.
- ``GET|HEAD /records/<id>/files/<key>`` (``?download=1`` makes it an attachment) and
  ``/records/<id>/files/<key>/content`` — the bytes, with ``Range`` (one range),
  ``If-Range``, ``ETag: "md5:<hex>"`` (invenio-files-rest uses the checksum as ETag),
  ``Content-MD5``, ``Last-Modified``, ``Accept-Ranges: bytes`` (the download route honours
  ranges: galaxyproject/galaxy#15296).
- ``GET|HEAD /api/records/<id>/files/<key>/content`` — the record API's ``links.self``: the
  same headers, but the body **ignores** ``Range`` and is always the whole file with ``200``
  (zenodo/zenodo#2593, January 2026; fsspec fails on it, #2575; Invenio leaves ranges to the
  storage layer, invenio-files-rest#71).
  The old ``/record/<id>/...`` form answers ``301`` to ``/records/<id>/...``.
- ``GET /__stats`` — the accounting as JSON.

Limits, as reported: file downloads carry ``X-RateLimit-Limit``/``-Remaining``/``-Reset``
(guests: 60 requests a minute, developers.zenodo.org) and a 429 carries ``Retry-After: 60``
(galaxyproject/galaxy#15296, zenodo-rdm#1286); users are blocked with more than two downloads
at once (karel-brinda/Phylign#236), so a third concurrent body is answered ``429``
(``parallel_limit``, 2 by default). :attr:`peak_parallel` is the most bodies sent at once.

Faults: :meth:`set_fault` (``status``, ``drop_after``, ``ignore_range`` on a file's URLs)
and :meth:`fail_record_next` (the next record-API answers).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from tests.servers.hub_standin import (
    Blob,
    Fault,
    LoopbackServer,
    RequestRecord,
    _Handler,
    small,
)

_CREATED = "2020-10-02T10:54:01.418957+00:00"
_UPDATED = "2024-05-14T09:21:44.208763+00:00"


@dataclass(frozen=True)
class ZenodoFile:
    record: int
    key: str
    blob: Blob
    file_id: str

    @property
    def checksum(self) -> str:
        return f"md5:{self.blob.md5}"


class ZenodoStandin(LoopbackServer):
    """See the module docstring."""

    name = "zenodo-standin"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 parallel_limit: int | None = 2, per_minute: int = 60,
                 retry_after: int = 60, window: int = 60) -> None:
        super().__init__(host, port)
        self._table: dict[int, dict[str, ZenodoFile]] = {}
        self._record_failures: list[int] = []
        self._titles: dict[int, str] = {}
        self.parallel_limit, self.per_minute, self.retry_after = (parallel_limit, per_minute,
                                                                  retry_after)
        self._active = 0
        self.peak_parallel = 0
        self.window = window  # seconds; a test shortens "a minute" instead of waiting one
        self.download_route_status: int | None = None  # e.g. 404: the web route retired
        self._window: tuple[int, int] = (0, 0)  # (window number, requests in it)

    @property
    def endpoint(self) -> str:
        """The value for ``ZENODO_ENDPOINT``."""
        return self.base_url

    # -- content ----------------------------------------------------------------------------
    def add_file(self, record: int | str, key: str, data: bytes | Path | str, *,
                 title: str | None = None) -> ZenodoFile:
        """Publish `data` (bytes, or a local file given as a Path) as `key` of `record`."""
        rec = int(record)
        if not key or "/" in key:
            raise ValueError("a Zenodo file key is a plain name")
        if isinstance(data, str):
            data = Path(data)
        item = ZenodoFile(rec, key, Blob.make(data),
                          str(uuid.UUID(hashlib.md5(f"{rec}/{key}".encode()).hexdigest())))
        with self._lock:
            self._table.setdefault(rec, {})[key] = item
            if title is not None:
                self._titles[rec] = title
        return item

    def remove_file(self, record: int | str, key: str) -> None:
        with self._lock:
            self._table.get(int(record), {}).pop(key, None)

    def file(self, record: int | str, key: str) -> ZenodoFile:
        with self._lock:
            return self._table[int(record)][key]

    def record_url(self, record: int | str) -> str:
        return f"{self.endpoint}/api/records/{int(record)}"

    def content_url(self, record: int | str, key: str) -> str:
        """``links.self`` of the file in the record JSON."""
        return f"{self.endpoint}/api/records/{int(record)}/files/{quote(key)}/content"

    def download_url(self, record: int | str, key: str) -> str:
        """The web form, as in REFERENCE.md §1."""
        return f"{self.endpoint}/records/{int(record)}/files/{quote(key)}?download=1"

    # -- accounting and control -------------------------------------------------------------
    def bytes_sent(self, record: int | str, key: str) -> int:
        with self._lock:
            return self._bytes.get(_file_key(int(record), key), 0)

    def set_fault(self, record: int | str, key: str, **kwargs: Any) -> Fault:
        """Add a :class:`~tests.servers.hub_standin.Fault` to every URL of one file."""
        return self._add_fault(_file_key(int(record), key), Fault(**kwargs))

    def fail_record_next(self, n: int = 1, status: int = 500) -> None:
        """The next `n` record-API requests (``/api/records/...`` JSON) answer `status`."""
        with self._lock:
            self._record_failures.extend([status] * n)

    # -- shapes -----------------------------------------------------------------------------
    def _file_json(self, item: ZenodoFile) -> dict[str, Any]:
        return {"id": item.file_id, "key": item.key, "size": item.blob.size,
                "checksum": item.checksum,
                "links": {"self": self.content_url(item.record, item.key)}}

    def _entry_json(self, item: ZenodoFile) -> dict[str, Any]:
        base = f"{self.endpoint}/api/records/{item.record}/files/{quote(item.key)}"
        return {"created": _CREATED, "updated": _CREATED, "mimetype": _mimetype(item.key),
                "version_id": str(uuid.uuid5(uuid.NAMESPACE_URL, base + "#v")),
                "file_id": item.file_id,
                "bucket_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bucket/{item.record}")),
                "metadata": None, "access": {"hidden": False}, "links": {
                    "self": base, "content": f"{base}/content"},
                "key": item.key, "transfer": {"type": "L"}, "status": "completed",
                "size": item.blob.size, "checksum": item.checksum, "storage_class": "L"}

    def _record_json(self, rec: int, files: list[ZenodoFile]) -> dict[str, Any]:
        ep = self.endpoint
        concept = rec - 1
        title = self._titles.get(rec, f"Stand-in record {rec}")
        doi = f"10.5281/zenodo.{rec}"
        return {
            "created": _CREATED, "modified": _UPDATED, "id": rec,
            "conceptrecid": str(concept), "doi": doi,
            "conceptdoi": f"10.5281/zenodo.{concept}", "doi_url": f"https://doi.org/{doi}",
            "metadata": {
                "title": title, "doi": doi, "publication_date": _CREATED[:10],
                "description": "<p>Served by the easy-oww test stand-in.</p>",
                "access_right": "open",
                "creators": [{"name": "Stand-in, Test", "affiliation": None}],
                "resource_type": {"title": "Dataset", "type": "dataset"},
                "license": {"id": "cc-by-4.0"},
                "relations": {"version": [{"index": 0, "is_last": True,
                                           "parent": {"pid_type": "recid",
                                                      "pid_value": str(concept)}}]},
            },
            "title": title,
            "links": {
                "self": f"{ep}/api/records/{rec}", "self_html": f"{ep}/records/{rec}",
                "doi": f"https://doi.org/{doi}", "self_doi": f"https://doi.org/{doi}",
                "parent": f"{ep}/api/records/{concept}",
                "parent_html": f"{ep}/records/{concept}",
                "latest": f"{ep}/api/records/{rec}/versions/latest",
                "latest_html": f"{ep}/records/{rec}/latest",
                "files": f"{ep}/api/records/{rec}/files",
                "archive": f"{ep}/api/records/{rec}/files-archive",
            },
            "updated": _UPDATED, "recid": str(rec), "revision": 4,
            "files": [self._file_json(f) for f in files],
            "swh": {}, "owners": [{"id": "1"}], "status": "published",
            "stats": {"downloads": 0, "unique_downloads": 0, "views": 0, "unique_views": 0,
                      "version_downloads": 0, "version_unique_downloads": 0,
                      "version_unique_views": 0, "version_views": 0},
            "state": "done", "submitted": True,
        }

    # -- routing ----------------------------------------------------------------------------
    def _route(self, h: _Handler, method: str, record: RequestRecord) -> None:
        split = urlsplit(h.path)
        raw = split.path.split("/")[1:]
        segments = [unquote(s) for s in raw]
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        if len(segments) >= 2 and segments[0] == "record" and segments[1].isdigit():
            record.kind = "file"
            location = "/records/" + "/".join(raw[1:]) + (f"?{split.query}" if split.query
                                                           else "")
            small(h, method, record, 301, b"", {"Location": location},
                  content_type="text/html; charset=utf-8")
            return
        if len(segments) >= 3 and segments[:2] == ["api", "records"]:
            self._api(h, method, record, segments[2:])
            return
        if (len(segments) in (4, 5) and segments[0] == "records" and segments[2] == "files"
                and segments[1].isdigit() and (len(segments) == 4 or segments[4] == "content")):
            if self.download_route_status is not None:
                record.kind = "file"
                small(h, method, record, self.download_route_status, json.dumps(
                    {"status": self.download_route_status, "message": "gone"}).encode())
                return
            attach = query.get("download") == "1" or len(segments) == 5
            self._content(h, method, record, int(segments[1]), segments[3], attach)
            return
        self._not_found(h, method, record)

    def _not_found(self, h: _Handler, method: str, record: RequestRecord,
                   message: str = "The requested URL was not found on the server.") -> None:
        small(h, method, record, 404, json.dumps({"status": 404, "message": message}).encode())

    def _api(self, h: _Handler, method: str, record: RequestRecord,
             rest: list[str]) -> None:
        if not rest[0].isdigit():
            self._not_found(h, method, record, "The persistent identifier does not exist.")
            return
        rec = int(rest[0])
        if len(rest) == 4 and rest[1] == "files" and rest[3] == "content":
            # The API route ignores Range (zenodo/zenodo#2593): whole file, 200, every time.
            self._content(h, method, record, rec, rest[2], True, ranges=False)
            return
        record.kind = "record"
        with self._lock:
            failure = self._record_failures.pop(0) if self._record_failures else None
            files = dict(self._table[rec]) if rec in self._table else None
        if failure is not None:
            small(h, method, record, failure, json.dumps(
                {"status": failure, "message": f"injected status {failure}"}).encode())
            return
        if files is None:
            self._not_found(h, method, record, "The persistent identifier does not exist.")
            return
        ordered = [files[k] for k in sorted(files)]
        if len(rest) == 1:
            body: Any = self._record_json(rec, ordered)
        elif len(rest) == 2 and rest[1] == "files":
            body = {"enabled": True, "links": {"self": f"{self.endpoint}/api/records/{rec}/files",
                                               "archive": f"{self.endpoint}/api/records/{rec}/"
                                                          "files-archive"},
                    "entries": [self._entry_json(f) for f in ordered], "default_preview": None,
                    "order": []}
        elif len(rest) == 3 and rest[1] == "files" and rest[2] in files:
            body = self._entry_json(files[rest[2]])
        else:
            self._not_found(h, method, record)
            return
        small(h, method, record, 200, json.dumps(body).encode())

    def _content(self, h: _Handler, method: str, record: RequestRecord, rec: int, key: str,
                 attachment: bool, *, ranges: bool = True) -> None:
        record.kind = "file"
        file_key = _file_key(rec, key)
        record.file = file_key
        with self._lock:
            item = self._table.get(rec, {}).get(key)
            fault = self._take_fault(file_key, "status") if item is not None else None
        if item is None:
            self._not_found(h, method, record)
            return
        if fault is not None:
            assert fault.status is not None
            small(h, method, record, fault.status, json.dumps(
                {"status": fault.status, "message": f"injected status {fault.status}"}
            ).encode(), fault.status_headers)
            return
        disposition = f"attachment; filename={quote(key)}" if attachment else "inline"
        limits, refused = self._admit(method)
        if refused:
            small(h, method, record, 429, json.dumps(
                {"status": 429, "message": "Too many requests"}).encode(),
                {**limits, "Retry-After": str(self.retry_after)})
            return
        try:
            self.serve_blob(h, method, record, item.blob, file_key, f'"{item.checksum}"', {
                "Content-Type": _mimetype(key), "Content-Disposition": disposition,
                "Content-MD5": item.blob.md5, "Cache-Control": "public, max-age=43200",
                **limits}, ignore_range=not ranges)
        finally:
            if method == "GET":
                with self._lock:
                    self._active -= 1

    def _admit(self, method: str) -> tuple[dict[str, str], bool]:
        """Count a file request against the minute's limit and, for a GET, the bodies in
        flight; returns the X-RateLimit headers and whether it is refused."""
        minute = int(time.time() // self.window)
        with self._lock:
            start, used = self._window
            used = used + 1 if start == minute else 1
            self._window = (minute, used)
            refused = used > self.per_minute or method == "GET" and (
                self.parallel_limit is not None and self._active >= self.parallel_limit)
            if method == "GET" and not refused:
                self._active += 1
                self.peak_parallel = max(self.peak_parallel, self._active)
        headers = {"X-RateLimit-Limit": str(self.per_minute),
                   "X-RateLimit-Remaining": str(max(0, self.per_minute - used)),
                   "X-RateLimit-Reset": str((minute + 1) * self.window)}
        return headers, refused


def _file_key(rec: int, key: str) -> str:
    return f"records/{rec}/{key}"


def _mimetype(key: str) -> str:
    if key.endswith(".zip"):
        return "application/zip"
    if key.endswith(".json"):
        return "application/json"
    return "application/octet-stream"


__all__ = ["ZenodoFile", "ZenodoStandin"]
