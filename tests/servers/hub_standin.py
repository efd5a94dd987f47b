"""A Hugging Face Hub stand-in on loopback: the tree API, ``/resolve/`` and a signed-URL CDN.

Point ``HF_ENDPOINT`` at :attr:`HubStandin.endpoint` and the client talks to this server as
it would to https://huggingface.co (shapes as read from ``huggingface_hub``'s ``HfApi``:
``list_repo_tree`` → ``RepoFile``/``RepoFolder``, ``utils._pagination``; and from
REFERENCE.md §2)::

    with HubStandin(page_size=50, require_token="hf_xxx") as hub:
        hub.add_file("davidscripka/MIT_environmental_impulse_responses", "16khz/a.wav", data)
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)     # "http://127.0.0.1:PORT"
        ...
        hub.bytes_sent("davidscripka/MIT_environmental_impulse_responses", "16khz/a.wav")
        assert hub.cdn_saw_authorization == 0               # the token never reached the CDN

Endpoints (``{repo_type}`` is ``models``, ``datasets`` or ``spaces``; ``{repo}`` is
``owner/name``; ``{revision}`` is one URL segment, so ``refs/pr/1`` arrives as
``refs%2Fpr%2F1``; a commit sha works as a revision too, and every commit stays readable
by its sha after its branch moves on, as in git: replacing a file on ``main`` makes a new
commit while the old sha still serves the old bytes and listing, which is what a pinned
revision relies on):

- ``GET /api/{repo_type}/{repo}/revision/{revision}`` — the repository at that revision, as
  huggingface_hub's ``HfApi.dataset_info(repo_id, revision=...)`` /
  ``model_info`` / ``space_info`` request it (``f"{endpoint}/api/datasets/{repo_id}/revision/
  {quote(revision, safe='')}"``) and ``DatasetInfo.__init__`` reads it
  (huggingface/huggingface_hub, ``src/huggingface_hub/hf_api.py``): ``{"id", "author",
  "sha" (the commit the revision names), "lastModified", "private", "gated", "disabled",
  "siblings": [{"rfilename"}]}``; errors as the tree API's.

- ``GET /api/{repo_type}/{repo}/tree/{revision}[/{folder}]?recursive=true`` — a JSON list,
  sorted by path, of ``{"type": "file", "oid", "size", "path"}`` with, for LFS files, an
  ``"lfs": {"oid": <sha256>, "size", "pointerSize"}`` (then ``oid`` is the git blob sha1 of
  the LFS pointer file and ``size`` the real size); for other files ``oid`` is the git blob
  sha1 of the content, ``sha1(b"blob %d\\0" % size + data)``. Directories are
  ``{"type": "directory", "oid", "size": 0, "path"}``. Without ``recursive=true`` only the
  direct children. At most ``page_size`` items a page; when more remain the answer carries
  ``Link: <absolute url>; rel="next"``, the same query plus an opaque ``cursor`` (base64 of
  ``{"file_name": <last path>}``).
- ``GET|HEAD /datasets/{repo}/resolve/{revision}/{path}`` (``/spaces/...``; models have no
  prefix) — an LFS file answers ``302`` with ``Location`` = a signed CDN URL on
  ``cdn_host`` (default ``localhost``, a different host name from the endpoint's
  ``127.0.0.1``, as the real CDN is another host), ``X-Linked-Size``, ``X-Linked-Etag`` and
  ``ETag`` (both ``"<sha256>"``), ``X-Repo-Commit``. A non-LFS file is answered directly
  (``200``/``206``, ``ETag: "<git blob sha1>"``, ``X-Repo-Commit``).
- ``GET|HEAD /cdn/<token>/<sha256>?Expires=..`` — the bytes, with ``Range`` (one range),
  ``If-Range`` (strong ETag or exact date), ``ETag`` (``"<md5>"``, like an S3 single-part
  object: not the sha256), ``Last-Modified``, ``Accept-Ranges: bytes``. A token serves
  ``cdn_token_uses`` requests (None: any number) for ``cdn_token_ttl`` seconds of the
  stand-in's clock (:meth:`advance` moves it; :meth:`expire_cdn_tokens` ends them all);
  after that, or for an unknown token, ``403`` with an S3-style XML ``AccessDenied`` body.
  Like the real CDN (REFERENCE.md §2), a ranged request that offers ``Accept-Encoding:
  gzip`` is answered ``200`` with the whole file (``cdn_gzip_ignores_range``).
- Token rule: with ``require_token`` set, the tree API and ``/resolve/`` answer ``401``
  without ``Authorization: Bearer <token>`` (and ``401`` for a wrong token); the CDN never
  needs it. :attr:`cdn_saw_authorization` counts CDN requests that carried an
  ``Authorization`` header anyway.
- With ``resolve_cache=True`` a non-LFS file is not served on ``/resolve/`` but redirected
  with a **relative** ``Location: /api/resolve-cache/{repo_type}/{repo}/{commit}/{path}``
  (``307``), which then serves the bytes: small files get such redirects on the real Hub
  (REFERENCE §6).
- Every ``/resolve/`` answer carries the rate-limit headers of the IETF draft the Hub uses
  (huggingface.co/docs/hub/rate-limits): ``RateLimit: "resolvers";r=<left>;t=<seconds>`` and
  ``RateLimit-Policy``; with ``resolve_limit`` set, a client past it gets ``429``.
- Errors carry ``X-Error-Code`` as the Hub's do: ``RepoNotFound`` (``401`` unauthenticated,
  ``404`` with a valid token), ``RevisionNotFound`` and ``EntryNotFound`` (``404``).
- ``GET /__stats`` — the accounting as JSON.

Faults, for download tests: :meth:`set_fault` (per file: a status on ``/resolve/``,
``drop_after`` / ``ignore_range`` on the leg that sends the bytes) and
:meth:`fail_tree_next`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import secrets
import socket
import time
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from easy_oww.demo.ranges import UNSATISFIABLE, if_range_matches, parse_range
from easy_oww.demo.threaded import QuietHTTPServer, ThreadedServer

STATS_PATH = "/__stats"
_CHUNK = 1 << 20
_LAST_MODIFIED_BASE = int(time.time()) - 30 * 86400
_versions = itertools.count(1)
REPO_TYPES = {"models": "models", "model": "models", "datasets": "datasets",
              "dataset": "datasets", "spaces": "spaces", "space": "spaces"}


# -- shared machinery (also used by zenodo_standin) -------------------------------------------


@dataclass(frozen=True)
class Blob:
    """Immutable content: bytes in memory or a file on disk, with its digests."""

    data: bytes | None
    file: Path | None
    size: int
    sha256: str
    md5: str
    git_sha1: str
    last_modified: str

    @classmethod
    def make(cls, data: bytes | bytearray | memoryview | Path | str) -> Blob:
        sha256, md5 = hashlib.sha256(), hashlib.md5()
        if isinstance(data, (str, Path)):
            path = Path(data)
            size = path.stat().st_size
            git = hashlib.sha1(b"blob %d\0" % size)
            with path.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    sha256.update(chunk)
                    md5.update(chunk)
                    git.update(chunk)
            content, file = None, path
        else:
            content, file = bytes(data), None
            size = len(content)
            git = hashlib.sha1(b"blob %d\0" % size + content)
            sha256.update(content)
            md5.update(content)
        return cls(content, file, size, sha256.hexdigest(), md5.hexdigest(), git.hexdigest(),
                   formatdate(_LAST_MODIFIED_BASE + next(_versions), usegmt=True))

    def read(self, start: int = 0, length: int | None = None) -> bytes:
        length = self.size - start if length is None else length
        if self.data is not None:
            return self.data[start:start + length]
        assert self.file is not None
        with self.file.open("rb") as fh:
            fh.seek(start)
            return fh.read(length)


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob: what the Hub lists as ``oid`` for a non-LFS file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file committed in place of an LFS file."""
    return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\n"
            f"size {size}\n").encode()


@dataclass
class Fault:
    """Misbehaviour for one file, applied to the next ``times`` requests it affects."""

    status: int | None = None  # answer this status instead (on /resolve/ or the file URL)
    status_headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None  # send this many body bytes, then close the connection
    ignore_range: bool = False  # answer a ranged GET with 200 and the whole body
    times: int | None = 1  # None: always
    fired: int = 0

    @property
    def active(self) -> bool:
        return self.times is None or self.fired < self.times


@dataclass
class RequestRecord:
    """One request as the server saw and answered it.  Header names are lower-case."""

    method: str
    target: str  # the raw request target, query included
    kind: str  # "tree", "revision", "resolve", "cdn", "record", "file", "stats", "other"
    headers: dict[str, str]
    status: int = 0
    range: str | None = None
    file: str | None = None  # the accounting key of the file concerned, if any
    bytes_sent: int = 0

    @property
    def authorization(self) -> bool:
        return "authorization" in self.headers


class _Abort(Exception):
    """Stop answering and close the connection."""


class LoopbackServer(ThreadedServer):
    """Start/stop, request log, per-file byte accounting; subclasses implement ``_route``."""

    name = "loopback"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._init_threaded(host, port)
        self.thread_name = self.name
        self._log: list[RequestRecord] = []
        self._bytes: dict[str, int] = {}
        self._faults: dict[str, list[Fault]] = {}
        self.pace = 0.0  # seconds between 1 MiB chunks of a body: a slow link, so bodies overlap

    def _make_server(self) -> QuietHTTPServer:
        return QuietHTTPServer((self.host, self._requested_port), self, _Handler)

    # -- accounting -------------------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def requests_of(self, kind: str, method: str | None = None) -> list[RequestRecord]:
        return [r for r in self.requests
                if r.kind == kind and (method is None or r.method == method)]

    def total_bytes_sent(self) -> int:
        with self._lock:
            return sum(self._bytes.values())

    def reset_counters(self) -> None:
        with self._lock:
            self._log.clear()
            self._bytes.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"bytes_sent": dict(self._bytes),
                    "requests": [{k: v for k, v in asdict(r).items() if k != "headers"}
                                 for r in self._log]}

    def _add_fault(self, key: str, fault: Fault) -> Fault:
        with self._lock:
            self._faults.setdefault(key, []).append(fault)
        return fault

    def _take_fault(self, key: str, want: str) -> Fault | None:
        """The first active fault of `key` that sets `want`; counted as fired.  Lock held."""
        for fault in self._faults.get(key, []):
            if fault.active and getattr(fault, want):
                fault.fired += 1
                return fault
        return None

    # -- handler side -----------------------------------------------------------------------
    def _route(self, h: _Handler, method: str, record: RequestRecord) -> None:
        raise NotImplementedError

    def _handle(self, h: _Handler, method: str) -> None:
        headers = {k.lower(): v for k, v in h.headers.items()}
        record = RequestRecord(method, h.path, "other", headers, range=headers.get("range"))
        with self._lock:
            self._log.append(record)
        if urlsplit(h.path).path == STATS_PATH:
            record.kind = "stats"
            small(h, method, record, 200, json.dumps(self.stats()).encode())
            return
        if method not in ("GET", "HEAD"):
            small(h, method, record, 405, b'{"error": "method not allowed"}',
                  {"Allow": "GET, HEAD"})
            return
        self._route(h, method, record)

    def serve_blob(self, h: _Handler, method: str, record: RequestRecord, blob: Blob,
                   key: str, etag: str | None, headers: dict[str, str] | None = None, *,
                   ignore_range: bool = False) -> None:
        """Answer with `blob` honouring HEAD, one Range and If-Range; count bytes to `key`."""
        record.file = key
        with self._lock:
            drop = self._take_fault(key, "drop_after") if method == "GET" else None
            if record.range is not None and method == "GET" and self._take_fault(
                    key, "ignore_range"):
                ignore_range = True
        out = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes",
               "Last-Modified": blob.last_modified}
        if etag is not None:
            out["ETag"] = etag
        out.update(headers or {})
        span: tuple[int, int] | str | None = None
        if record.range is not None and not ignore_range:
            if_range = h.headers.get("If-Range")
            if if_range is None or if_range_matches(if_range, etag, blob.last_modified):
                span = parse_range(record.range, blob.size)
        if span == UNSATISFIABLE:
            out["Content-Range"] = f"bytes */{blob.size}"
            small(h, method, record, 416, b'{"error": "range not satisfiable"}', out)
            return
        if isinstance(span, tuple):
            start, end = span
            status, length = 206, end - start + 1
            out["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
        else:
            status, start, length = 200, 0, blob.size
        out["Content-Length"] = str(length)
        record.status = status
        send_head(h, status, out)
        if method == "HEAD":
            return
        limit = length if drop is None or drop.drop_after is None else min(length,
                                                                            drop.drop_after)
        self._send_body(h, record, blob, key, start, limit)
        if limit < length:
            raise _Abort

    def _send_body(self, h: _Handler, record: RequestRecord, blob: Blob, key: str,
                   start: int, length: int) -> None:
        sock = h.connection
        sent = 0
        fh = None if blob.file is None else blob.file.open("rb")
        try:
            if fh is not None:
                fh.seek(start)
            while sent < length:
                if self._stop.is_set():
                    raise _Abort
                n = min(_CHUNK, length - sent)
                if blob.data is not None:
                    view = memoryview(blob.data)[start + sent:start + sent + n]
                else:
                    assert fh is not None
                    view = memoryview(fh.read(n))
                    if len(view) < n:
                        raise _Abort
                # Count before writing, so a client that has read the last byte never sees a
                # stale count; bytes that fail to go out are taken back.
                with self._lock:
                    self._bytes[key] = self._bytes.get(key, 0) + n
                    record.bytes_sent += n
                done = 0
                try:
                    while done < n:
                        done += sock.send(view[done:])
                except BaseException:
                    with self._lock:
                        self._bytes[key] -= n - done
                        record.bytes_sent -= n - done
                    raise
                sent += n
                if self.pace and sent < length:
                    self._stop.wait(self.pace)
        finally:
            if fh is not None:
                fh.close()


def send_head(h: _Handler, status: int, headers: dict[str, str]) -> None:
    h.send_response(status)
    for name, value in headers.items():
        h.send_header(name, value)
    h.end_headers()


def small(h: _Handler, method: str, record: RequestRecord, status: int, body: bytes,
          headers: dict[str, str] | None = None,
          content_type: str = "application/json; charset=utf-8") -> None:
    """A complete small answer (JSON unless told otherwise); HEAD gets the headers only."""
    record.status = status
    out = {"Content-Type": content_type}
    out.update(headers or {})
    out["Content-Length"] = str(len(body))
    send_head(h, status, out)
    if method != "HEAD" and body:
        h.wfile.write(body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "StandinHTTP/1.0"
    server: QuietHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.owner._lock:
            self.server.owner._conns.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            with self.server.owner._lock:
                self.server.owner._conns.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _guarded(self, method: str) -> None:
        try:
            self.server.owner._handle(self, method)
        except (_Abort, OSError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._guarded("GET")

    def do_HEAD(self) -> None:
        self._guarded("HEAD")

    def do_POST(self) -> None:
        self._guarded("POST")

    def do_PUT(self) -> None:
        self._guarded("PUT")

    def do_DELETE(self) -> None:
        self._guarded("DELETE")


# -- the Hub ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubFile:
    path: str
    blob: Blob
    lfs: bool
    pointer: bytes | None  # the LFS pointer file, for LFS files

    @property
    def oid(self) -> str:
        return git_blob_sha1(self.pointer) if self.pointer is not None else self.blob.git_sha1

    def tree_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": self.oid, "size": self.blob.size}
        if self.pointer is not None:
            entry["lfs"] = {"oid": self.blob.sha256, "size": self.blob.size,
                            "pointerSize": len(self.pointer)}
        entry["path"] = self.path
        return entry


@dataclass
class _Token:
    file_key: str
    blob: Blob
    uses_left: int | None
    expires: float | None


class HubStandin(LoopbackServer):
    """See the module docstring."""

    name = "hub-standin"

    def __init__(self, *, page_size: int = 50, require_token: str | None = None,
                 cdn_host: str = "localhost", cdn_token_uses: int | None = None,
                 cdn_token_ttl: float | None = 3600.0, cdn_gzip_ignores_range: bool = True,
                 resolve_cache: bool = False, resolve_limit: int = 3000,
                 resolve_window: int = 300, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.page_size = page_size
        self.require_token = require_token
        self.cdn_host = cdn_host
        self.cdn_token_uses = cdn_token_uses
        self.cdn_token_ttl = cdn_token_ttl
        self.cdn_gzip_ignores_range = cdn_gzip_ignores_range
        self.resolve_cache = resolve_cache
        # 3,000 resolves per 5 minutes for an anonymous user (huggingface.co/docs/hub/rate-limits)
        self.resolve_limit, self.resolve_window = resolve_limit, resolve_window
        self.resolves = 0
        # (repo_type, repo, branch) -> {path: HubFile}
        self._repos: dict[tuple[str, str, str], dict[str, HubFile]] = {}
        # (repo_type, repo) -> {commit: {path: HubFile}}: every commit a branch has left
        self._history: dict[tuple[str, str], dict[str, dict[str, HubFile]]] = {}
        self._tokens: dict[str, _Token] = {}
        self._clock_offset = 0.0
        self._tree_failures: list[int] = []
        self.cdn_saw_authorization = 0
        self.cdn_tokens_issued = 0

    @property
    def endpoint(self) -> str:
        """The value for ``HF_ENDPOINT``."""
        return self.base_url

    # -- content ----------------------------------------------------------------------------
    def add_file(self, repo: str, path: str, data: bytes | Path | str, *,
                 revision: str = "main", repo_type: str = "datasets",
                 lfs: bool = True) -> HubFile:
        """Commit `data` (bytes, or a local file given as a Path) at `path` on `revision`.

        Replacing a file makes a new commit (``X-Repo-Commit`` changes) and the branch moves
        on to it; the commit before stays readable by its sha (:meth:`commit` before the
        change). CDN tokens already issued keep serving the bytes they were issued for, as a
        signed URL would.
        """
        rt = _repo_type(repo_type)
        path = path.strip("/")
        if not path or "/" not in repo.strip("/"):
            raise ValueError("repo is 'owner/name' and path is not empty")
        if isinstance(data, str):
            data = Path(data)
        blob = Blob.make(data)
        item = HubFile(path, blob, lfs, lfs_pointer(blob.sha256, blob.size) if lfs else None)
        with self._lock:
            key = (rt, repo.strip("/"), revision)
            self._keep_commit(key)
            self._repos.setdefault(key, {})[path] = item
        return item

    def remove_file(self, repo: str, path: str, *, revision: str = "main",
                    repo_type: str = "datasets") -> None:
        with self._lock:
            key = (_repo_type(repo_type), repo, revision)
            self._keep_commit(key)
            self._repos.get(key, {}).pop(path.strip("/"), None)

    def forget_commit(self, repo: str, commit: str, *, repo_type: str = "datasets") -> None:
        """Make an old commit unreachable, as a history squash does (huggingface_hub's
        ``HfApi.super_squash_history``: "the old commits are no longer reachable"): its tree
        and its files then answer ``404 RevisionNotFound`` like any unknown revision."""
        with self._lock:
            self._history.get((_repo_type(repo_type), repo), {}).pop(commit, None)

    def file(self, repo: str, path: str, *, revision: str = "main",
             repo_type: str = "datasets") -> HubFile:
        with self._lock:
            return self._repos[(_repo_type(repo_type), repo, revision)][path.strip("/")]

    def commit(self, repo: str, *, revision: str = "main", repo_type: str = "datasets") -> str:
        """The commit sha ``revision`` points at (``X-Repo-Commit``)."""
        with self._lock:
            return self._commit_of((_repo_type(repo_type), repo, revision))

    def resolve_url(self, repo: str, path: str, *, revision: str = "main",
                    repo_type: str = "datasets") -> str:
        rt = _repo_type(repo_type)
        prefix = "" if rt == "models" else f"/{rt}"
        return (f"{self.endpoint}{prefix}/{repo}/resolve/{quote(revision, safe='')}/"
                f"{quote(path.strip('/'))}")

    def tree_url(self, repo: str, folder: str = "", *, revision: str = "main",
                 repo_type: str = "datasets", recursive: bool = True) -> str:
        folder = folder.strip("/")
        url = (f"{self.endpoint}/api/{_repo_type(repo_type)}/{repo}/tree/"
               f"{quote(revision, safe='')}" + (f"/{quote(folder)}" if folder else ""))
        return url + ("?recursive=true" if recursive else "")

    # -- accounting and control -------------------------------------------------------------
    def bytes_sent(self, repo: str, path: str, *, repo_type: str = "datasets") -> int:
        """Body bytes of this file sent by the Hub and the CDN together, all revisions."""
        with self._lock:
            return self._bytes.get(_file_key(_repo_type(repo_type), repo, path), 0)

    def set_fault(self, repo: str, path: str, *, repo_type: str = "datasets",
                  **kwargs: Any) -> Fault:
        """Add a :class:`Fault` for one file: ``status`` answers ``/resolve/`` with that
        status; ``drop_after`` and ``ignore_range`` act where the bytes are sent (the CDN for
        an LFS file, ``/resolve/`` itself otherwise)."""
        return self._add_fault(_file_key(_repo_type(repo_type), repo, path), Fault(**kwargs))

    def fail_tree_next(self, n: int = 1, status: int = 500) -> None:
        """The next `n` tree-API requests answer `status`."""
        with self._lock:
            self._tree_failures.extend([status] * n)

    def advance(self, seconds: float) -> None:
        """Move the stand-in's clock (CDN token expiry) forward without sleeping."""
        with self._lock:
            self._clock_offset += seconds

    def expire_cdn_tokens(self) -> int:
        """End every CDN token issued so far; returns how many there were."""
        with self._lock:
            n = len(self._tokens)
            self._tokens.clear()
            return n

    def _now(self) -> float:
        return time.monotonic() + self._clock_offset

    def _commit_of(self, key: tuple[str, str, str]) -> str:
        files = self._repos.get(key, {})
        digest = hashlib.sha1(f"{key[0]}/{key[1]}@{key[2]}".encode())
        for path in sorted(files):
            digest.update(f"\0{path}\0{files[path].oid}".encode())
        return digest.hexdigest()

    def _keep_commit(self, key: tuple[str, str, str]) -> None:
        """Before branch `key` changes: keep its commit readable by its sha.  Lock held."""
        files = self._repos.get(key)
        if files:
            self._history.setdefault(key[:2], {})[self._commit_of(key)] = dict(files)

    def _find_revision(self, rt: str, repo: str, revision: str
                       ) -> tuple[dict[str, HubFile] | None, str, bool]:
        """(the files at `revision`, its commit, whether the repo exists at all): a branch
        name, a branch's current commit, or a commit a branch has left.  Lock held."""
        if (rt, repo, revision) in self._repos:
            return self._repos[(rt, repo, revision)], self._commit_of((rt, repo, revision)), True
        exists = False
        for key in self._repos:
            if key[:2] == (rt, repo):
                exists = True
                if self._commit_of(key) == revision:
                    return self._repos[key], revision, True
        old = self._history.get((rt, repo), {})
        if revision in old:
            return old[revision], revision, True
        return None, "", exists or bool(old)

    # -- routing ----------------------------------------------------------------------------
    def _route(self, h: _Handler, method: str, record: RequestRecord) -> None:
        split = urlsplit(h.path)
        segments = [unquote(s) for s in split.path.split("/")[1:]]
        if segments and segments[0] == "cdn":
            record.kind = "cdn"
            self._cdn(h, method, record, segments)
            return
        if len(segments) >= 5 and segments[0] == "api" and segments[1] in REPO_TYPES \
                and segments[4] == "tree":
            record.kind = "tree"
            if len(segments) < 6 or not segments[5]:
                self._hub_error(h, method, record, 404, "EntryNotFound", "Not found")
                return
            self._tree(h, method, record, REPO_TYPES[segments[1]],
                       f"{segments[2]}/{segments[3]}", segments[5], "/".join(segments[6:]),
                       dict(parse_qsl(split.query, keep_blank_values=True)), split.path)
            return
        if len(segments) >= 6 and segments[0] == "api" and segments[1] in REPO_TYPES \
                and segments[4] == "revision" and segments[5]:
            record.kind = "revision"
            self._revision(h, method, record, REPO_TYPES[segments[1]],
                           f"{segments[2]}/{segments[3]}", "/".join(segments[5:]))
            return
        if len(segments) >= 7 and segments[:2] == ["api", "resolve-cache"]:
            record.kind = "resolve-cache"
            self._resolve_cache(h, method, record, REPO_TYPES.get(segments[2], ""),
                                f"{segments[3]}/{segments[4]}", segments[5],
                                "/".join(segments[6:]))
            return
        rest, rt = segments, "models"
        if segments and segments[0] in ("datasets", "spaces"):
            rest, rt = segments[1:], segments[0]
        if len(rest) >= 5 and rest[2] == "resolve" and rest[-1]:
            record.kind = "resolve"
            self._resolve(h, method, record, rt, f"{rest[0]}/{rest[1]}", rest[3],
                          "/".join(rest[4:]))
            return
        small(h, method, record, 404, b"Not Found", content_type="text/plain; charset=utf-8")

    def _hub_error(self, h: _Handler, method: str, record: RequestRecord, status: int,
                   code: str | None, message: str) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        small(h, method, record, status, json.dumps({"error": message}).encode(), headers)

    def _auth_failure(self, h: _Handler, method: str, record: RequestRecord) -> bool:
        """Answer 401 and return True when the token rule refuses the request."""
        if self.require_token is None:
            return False
        value = record.headers.get("authorization")
        if value is None:
            self._hub_error(h, method, record, 401, "RepoNotFound",
                            "Invalid username or password.")
            return True
        if value != f"Bearer {self.require_token}":
            self._hub_error(h, method, record, 401, None,
                            "Invalid credentials in Authorization header")
            return True
        return False

    def _missing_repo(self, h: _Handler, method: str, record: RequestRecord,
                      exists: bool, revision: str) -> None:
        if exists:
            self._hub_error(h, method, record, 404, "RevisionNotFound",
                            f"Invalid rev id: {revision}")
        else:
            status = 404 if "authorization" in record.headers else 401
            self._hub_error(h, method, record, status, "RepoNotFound",
                            "Repository not found")

    # -- tree API ---------------------------------------------------------------------------
    def _tree(self, h: _Handler, method: str, record: RequestRecord, rt: str, repo: str,
              revision: str, folder: str, params: dict[str, str], raw_path: str) -> None:
        if self._auth_failure(h, method, record):
            return
        with self._lock:
            failure = self._tree_failures.pop(0) if self._tree_failures else None
            found, commit, exists = self._find_revision(rt, repo, revision)
            files = dict(found or {})
        if failure is not None:
            self._hub_error(h, method, record, failure, None, f"injected status {failure}")
            return
        if found is None:
            self._missing_repo(h, method, record, exists, revision)
            return
        folder = folder.strip("/")
        recursive = params.get("recursive", "").lower() in ("true", "1")
        entries = _tree_entries(files, folder, recursive, commit)
        if entries is None:
            self._hub_error(h, method, record, 404, "EntryNotFound",
                            f"{folder} does not exist on \"{revision}\"")
            return
        start = 0
        cursor = params.pop("cursor", None)
        if cursor is not None:
            after = _decode_cursor(cursor)
            if after is None:
                self._hub_error(h, method, record, 400, None, "Invalid cursor")
                return
            start = next((i for i, e in enumerate(entries) if e["path"] > after), len(entries))
        page = entries[start:start + self.page_size]
        headers: dict[str, str] = {}
        if start + self.page_size < len(entries):
            params["cursor"] = _encode_cursor(page[-1]["path"])
            headers["Link"] = f'<{self.endpoint}{raw_path}?{urlencode(params)}>; rel="next"'
        small(h, method, record, 200, json.dumps(page).encode(), headers)

    # -- the repository at a revision ---------------------------------------------------------
    def _revision(self, h: _Handler, method: str, record: RequestRecord, rt: str, repo: str,
                  revision: str) -> None:
        if self._auth_failure(h, method, record):
            return
        with self._lock:
            files, commit, exists = self._find_revision(rt, repo, revision)
            paths = sorted(files or {})
        if files is None:
            self._missing_repo(h, method, record, exists, revision)
            return
        body = {"_id": hashlib.sha1(repo.encode()).hexdigest()[:24], "id": repo,
                "author": repo.split("/")[0], "sha": commit,
                "lastModified": "2024-01-01T00:00:00.000Z", "private": False, "gated": False,
                "disabled": False, "siblings": [{"rfilename": p} for p in paths]}
        small(h, method, record, 200, json.dumps(body).encode())

    # -- /resolve/ --------------------------------------------------------------------------
    def _rate_headers(self) -> dict[str, str]:
        with self._lock:
            self.resolves += 1
            left = max(0, self.resolve_limit - self.resolves)
        return {"RateLimit": f'"resolvers";r={left};t={self.resolve_window}',
                "RateLimit-Policy": f'"fixed window";"resolvers";q={self.resolve_limit};'
                                    f"w={self.resolve_window}"}

    def _resolve_cache(self, h: _Handler, method: str, record: RequestRecord, rt: str,
                       repo: str, commit: str, path: str) -> None:
        with self._lock:
            at_commit, _, _ = self._find_revision(rt, repo, commit)
            item = (at_commit or {}).get(path) or next(
                (files.get(path) for (t, r, _), files in self._repos.items()
                 if t == rt and r == repo and files.get(path) is not None), None)
        if item is None:
            self._hub_error(h, method, record, 404, "EntryNotFound", "Entry not found")
            return
        self.serve_blob(h, method, record, item.blob, _file_key(rt, repo, path),
                        f'"{item.blob.git_sha1}"', {"X-Repo-Commit": commit})

    def _resolve(self, h: _Handler, method: str, record: RequestRecord, rt: str, repo: str,
                 revision: str, path: str) -> None:
        if self._auth_failure(h, method, record):
            return
        limits = self._rate_headers()
        if self.resolves > self.resolve_limit:
            small(h, method, record, 429, b"Too Many Requests", {
                **limits, "Retry-After": str(self.resolve_window)},
                content_type="text/plain; charset=utf-8")
            return
        file_key = _file_key(rt, repo, path)
        record.file = file_key
        with self._lock:
            files, commit, exists = self._find_revision(rt, repo, revision)
            item = files.get(path) if files is not None else None
            fault = self._take_fault(file_key, "status") if item is not None else None
            token = None
            if item is not None and item.lfs and fault is None:
                token = secrets.token_urlsafe(16)
                expires = None if self.cdn_token_ttl is None else self._now() + self.cdn_token_ttl
                self._tokens[token] = _Token(file_key, item.blob, self.cdn_token_uses, expires)
                self.cdn_tokens_issued += 1
        if files is None:
            self._missing_repo(h, method, record, exists, revision)
            return
        if item is None:
            self._hub_error(h, method, record, 404, "EntryNotFound", "Entry not found")
            return
        if fault is not None:
            assert fault.status is not None
            small(h, method, record, fault.status,
                  json.dumps({"error": f"injected status {fault.status}"}).encode(),
                  fault.status_headers)
            return
        if token is not None:
            blob = item.blob
            expires_at = int(time.time() + (self.cdn_token_ttl or 86400))
            location = (f"http://{self.cdn_host}:{self.port}/cdn/{token}/{blob.sha256}?"
                        + urlencode({"response-content-disposition":
                                     f'attachment; filename="{path.rsplit("/", 1)[-1]}"',
                                     "Expires": expires_at, "Signature": token}))
            small(h, method, record, 302, f"Found. Redirecting to {location}".encode(), {
                "Location": location, "X-Linked-Size": str(blob.size),
                "X-Linked-Etag": f'"{blob.sha256}"', "ETag": f'"{blob.sha256}"',
                "X-Repo-Commit": commit, "Accept-Ranges": "bytes",
                "Vary": "Origin, Accept", **limits}, content_type="text/plain; charset=utf-8")
            return
        if self.resolve_cache:
            location = f"/api/resolve-cache/{rt}/{quote(repo)}/{commit}/{quote(path)}"
            small(h, method, record, 307, f"Temporary Redirect. Redirecting to {location}"
                  .encode(), {"Location": location, "X-Repo-Commit": commit, **limits},
                  content_type="text/plain; charset=utf-8")
            return
        self.serve_blob(h, method, record, item.blob, file_key, f'"{item.blob.git_sha1}"',
                        {"X-Repo-Commit": commit, "Vary": "Origin, Accept", **limits})

    # -- the CDN ----------------------------------------------------------------------------
    def _cdn(self, h: _Handler, method: str, record: RequestRecord,
             segments: list[str]) -> None:
        token_id = segments[1] if len(segments) > 1 else ""
        with self._lock:
            if record.authorization:
                self.cdn_saw_authorization += 1
            token = self._tokens.get(token_id)
            refusal = None
            if token is None:
                refusal = "Invalid signature"
            elif token.expires is not None and self._now() > token.expires:
                refusal = "Request has expired"
            elif token.uses_left is not None and token.uses_left <= 0:
                refusal = "Request has expired"
            else:
                if token.uses_left is not None:
                    token.uses_left -= 1
        if refusal is not None or token is None:
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                    f"<Message>{refusal}</Message></Error>").encode()
            small(h, method, record, 403, body, content_type="application/xml")
            return
        ignore = (self.cdn_gzip_ignores_range
                  and "gzip" in record.headers.get("accept-encoding", "").lower())
        self.serve_blob(h, method, record, token.blob, token.file_key, f'"{token.blob.md5}"',
                        {"Cache-Control": "public, max-age=604800, immutable",
                         "Content-Disposition": "attachment"}, ignore_range=ignore)


def _repo_type(value: str) -> str:
    try:
        return REPO_TYPES[value]
    except KeyError:
        raise ValueError(f"repo_type is models, datasets or spaces, not {value!r}") from None


def _file_key(rt: str, repo: str, path: str) -> str:
    return f"{rt}/{repo.strip('/')}/{path.strip('/')}"


def _tree_entries(files: dict[str, HubFile], folder: str, recursive: bool, commit: str
                  ) -> list[dict[str, Any]] | None:
    """The listing of `folder`, sorted by path; None when the folder does not exist."""
    prefix = f"{folder}/" if folder else ""
    entries: dict[str, dict[str, Any]] = {}
    found = not folder
    for path, item in files.items():
        if not path.startswith(prefix):
            continue
        found = True
        parts = path[len(prefix):].split("/")
        depth = len(parts) if recursive else 1
        for i in range(1, min(depth, len(parts) - 1) + 1):
            directory = prefix + "/".join(parts[:i])
            oid = hashlib.sha1(f"tree {commit} {directory}".encode()).hexdigest()
            entries[directory] = {"type": "directory", "oid": oid, "size": 0,
                                  "path": directory}
        if recursive or len(parts) == 1:
            entries[path] = item.tree_entry()
    if not found:
        return None
    return [entries[p] for p in sorted(entries)]


def _encode_cursor(last_path: str) -> str:
    raw = json.dumps({"file_name": last_path}, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode()


def _decode_cursor(cursor: str) -> str | None:
    try:
        value = json.loads(base64.b64decode(cursor.encode(), validate=True))
    except (binascii.Error, ValueError):
        return None
    name = value.get("file_name") if isinstance(value, dict) else None
    return name if isinstance(name, str) else None


__all__ = ["Blob", "Fault", "HubFile", "HubStandin", "LoopbackServer", "RequestRecord",
           "git_blob_sha1", "lfs_pointer"]
