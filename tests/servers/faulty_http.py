"""A loopback HTTP/1.1 file server that is correct by default and misbehaves on request.

It honours ``HEAD``, ``Range`` (one range: ``a-b``, ``a-``, ``-n``), ``If-Range`` (strong ETag
or exact ``Last-Modified`` date), sends strong ETags, ``Last-Modified``, ``Accept-Ranges`` and
``Content-Length``, keeps connections alive, and never compresses.  Misbehaviour is set per
path with fault rules (:class:`Faults`); see :meth:`FaultyServer.set_faults`.

In-process use::

    with FaultyServer() as server:
        server.set_file("a.bin", b"...")
        server.set_faults("a.bin", drop_after=1000, times=2)
        url = server.url("a.bin")

As a separate process (for SIGKILL chaos tests)::

    python -m tests.servers.faulty_http --file big.bin=/tmp/big.bin --rate 5000000
    # first stdout line: "PORT <n>"; serves until SIGTERM/SIGINT/SIGKILL.
    # GET /__stats returns JSON: {"bytes_sent": {"/big.bin": n}, "requests": [...]}

``--fault NAME=JSON`` adds a fault rule, e.g. ``--fault 'big.bin={"drop_after": 1000000}'``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import secrets
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from easy_oww.demo.ranges import UNSATISFIABLE, if_range_matches, parse_range
from easy_oww.demo.threaded import QuietHTTPServer, ThreadedServer

STATS_PATH = "/__stats"
CDN_PREFIX = "/cdn/"

_MEMORY_CHUNK = 4 << 20
_SENDFILE_CHUNK = 8 << 20
_RATE_SLICES_PER_SECOND = 50

# Every resource version gets its own Last-Modified second, so date-based If-Range can tell
# two versions apart even when they are set within the same wall-clock second.
_LAST_MODIFIED_BASE = int(time.time()) - 30 * 86400
_versions = itertools.count(1)


def _norm(path: str) -> str:
    return "/" + path.lstrip("/")


@dataclass(frozen=True)
class _Resource:
    """One immutable version of a served file; replaced as a whole, never edited."""

    data: bytes | None
    file: Path | None
    size: int
    etag: str | None
    last_modified: str

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.file is not None
        return self.file.read_bytes()


@dataclass
class Faults:
    """One misbehaviour rule for one path.

    ``times`` (default: always) is how many requests the rule may affect; a request counts
    when at least one of the rule's faults actually changed the answer.  Several rules can be
    stacked on a path (:meth:`FaultyServer.add_faults`), each with its own ``times``; when two
    rules set the same fault the earlier rule wins.
    """

    # Send this many body bytes of a response, then close the connection (FIN, or RST when
    # drop_rst: with RST the kernel may discard unsent bytes, so the client can get fewer).
    drop_after: int | None = None
    drop_rst: bool = False
    # Answer 200 with the whole body to ranged requests (still claims Accept-Ranges: bytes).
    ignore_range: bool = False
    # An int (every request, subject to times) or a list consumed from the front, one item
    # per request; an item is a status or (status, {header: value}).
    status: int | list[int | tuple[int, dict[str, str]]] | None = None
    status_headers: dict[str, str] = field(default_factory=dict)
    status_body: bytes | None = None
    # After this many body bytes of the path were sent (counted from when the rule was set,
    # over all responses), replace the content with new_data (new ETag, new Last-Modified).
    # Fires once.  The response in flight keeps sending the old version unless
    # change_in_place, which switches it to the new bytes at the same offset (as if the file
    # were overwritten in place); if the new version is shorter the response is cut short.
    change_after_bytes: int | None = None
    new_data: bytes | None = None
    new_etag: str | None = None
    change_in_place: bool = False
    # Send this many body bytes, then send nothing for stall_seconds (ends early on stop()),
    # then send the rest.
    stall_after: int | None = None
    stall_seconds: float = 30.0
    # Throttle each response body to this many bytes per second.
    rate: float | None = None
    # Announce a Content-Length this many bytes larger than the body, send the body, close.
    wrong_length: int | None = None
    # Answer a ranged request from this many bytes before the requested start (not before 0),
    # saying so truthfully in Content-Range: a caching proxy that serves a range from an
    # aligned block it holds (some squid and CDN setups answer from the block start), or a
    # mirror that restarted the body. A client that writes such bytes at the offset it asked
    # for puts them at the wrong place.
    range_start_shift: int = 0
    # HEAD answers 405.
    no_head: bool = False
    # "none": send Accept-Ranges: none and ignore Range.
    accept_ranges: str = "bytes"
    # GET/HEAD on the path answer 302 to /cdn/<token>/<path>; a token serves cdn_token_uses
    # requests within cdn_token_ttl seconds (None: no expiry), then answers 403.
    redirect_to_cdn: bool = False
    cdn_token_uses: int = 1
    cdn_token_ttl: float | None = None
    cdn_host: str = "127.0.0.1"
    extra_headers: dict[str, str] = field(default_factory=dict)
    # Add X-Linked-Size / X-Linked-Etag of the current version to the redirect (as HF does).
    linked_headers: bool = False
    times: int | None = None
    # The rule affects only requests that carry a Range header (a resume, a segment).
    ranged_only: bool = False
    # Send no Content-Length (HEAD and GET): the body ends when the connection closes, as
    # HTTP/1.1 allows (RFC 9112 §6.3, rule 8) and streaming proxies and CGI scripts do; a
    # drop then looks like the body's end.
    no_length: bool = False
    # Headers added to the file's own answers (200, 206), e.g. Apache's default
    # `AddEncoding x-gzip .gz .tgz` (mod_mime docs), which labels a .tar.gz "Content-Encoding:
    # x-gzip" although the client asked for identity.
    body_headers: dict[str, str] = field(default_factory=dict)
    # Headers left out of the file's own answers, e.g. Accept-Ranges, which CDNs often omit
    # (RFC 9110 §14.3: a client may ask for ranges without having seen it).
    drop_headers: tuple[str, ...] = ()
    # Bookkeeping, read-only for users.
    fired: int = 0
    _change_counted: int = field(default=0, repr=False)
    _changed: bool = field(default=False, repr=False)

    @property
    def active(self) -> bool:
        return self.times is None or self.fired < self.times

    def _pending_status(self) -> tuple[int, dict[str, str]] | None:
        if self.status is None:
            return None
        if isinstance(self.status, int):
            return self.status, dict(self.status_headers)
        if not self.status:
            return None
        item = self.status[0]
        if isinstance(item, tuple):
            return item[0], {**self.status_headers, **item[1]}
        return item, dict(self.status_headers)

    def _pending_change(self) -> bool:
        return self.change_after_bytes is not None and not self._changed


@dataclass
class RequestRecord:
    """One request as the server saw and answered it.  Header names are lower-case."""

    method: str
    path: str
    resource: str
    headers: dict[str, str]
    status: int = 0
    range: str | None = None
    bytes_sent: int = 0
    cdn: bool = False


@dataclass
class _Plan:
    drop_after: int | None = None
    drop_rst: bool = False
    stall_after: int | None = None
    stall_seconds: float = 0.0
    rate: float | None = None
    wrong_length: int = 0
    range_start_shift: int = 0
    change_rules: list[Faults] = field(default_factory=list)


class _Abort(Exception):
    """Stop answering and close the connection."""


class FaultyServer(ThreadedServer):
    """See the module docstring.  Thread-safe; start() serves from a daemon thread."""

    thread_name = "faulty-http"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._init_threaded(host, port)
        self._resources: dict[str, _Resource] = {}
        self._rules: dict[str, list[Faults]] = {}
        self._tokens: dict[str, list[Any]] = {}
        self._bytes: dict[str, int] = {}
        self._records: list[RequestRecord] = []

    def _make_server(self) -> QuietHTTPServer:
        return QuietHTTPServer((self.host, self._requested_port), self, _Handler)

    def url(self, path: str) -> str:
        return self.base_url + _norm(path)

    # -- content ---------------------------------------------------------------------------

    def set_file(
        self,
        path: str,
        data: bytes | None = None,
        *,
        file: Path | str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        use_etag: bool = True,
    ) -> str | None:
        """Serve ``data`` (or the file on disk) at ``path``; safe while requests run.

        Returns the ETag: ``etag`` if given, else the quoted sha1 of ``data``, or for a file a
        quoted sha1 of its path, size, mtime and a version counter; None when not use_etag.
        """
        resource = self._make_resource(data, file, etag, last_modified, use_etag)
        with self._lock:
            self._resources[_norm(path)] = resource
        return resource.etag

    def remove_file(self, path: str) -> None:
        with self._lock:
            self._resources.pop(_norm(path), None)

    def etag(self, path: str) -> str | None:
        with self._lock:
            return self._resources[_norm(path)].etag

    def last_modified(self, path: str) -> str:
        with self._lock:
            return self._resources[_norm(path)].last_modified

    def content(self, path: str) -> bytes:
        """The bytes currently served at ``path``."""
        with self._lock:
            resource = self._resources[_norm(path)]
        return resource.read()

    @staticmethod
    def _make_resource(
        data: bytes | None,
        file: Path | str | None,
        etag: str | None,
        last_modified: str | None,
        use_etag: bool,
    ) -> _Resource:
        if (data is None) == (file is None):
            raise ValueError("give exactly one of data or file")
        version = next(_versions)
        if data is not None:
            data = bytes(data)
            size = len(data)
            digest = hashlib.sha1(data).hexdigest()
            path = None
        else:
            path = Path(file)  # type: ignore[arg-type]
            st = path.stat()
            size = st.st_size
            ident = f"{path.resolve()}:{size}:{st.st_mtime_ns}:{version}"
            digest = hashlib.sha1(ident.encode()).hexdigest()
        if etag is not None and not etag.startswith(('"', "W/")):
            etag = f'"{etag}"'
        return _Resource(
            data=data,
            file=path,
            size=size,
            etag=(etag or f'"{digest}"') if use_etag else None,
            last_modified=last_modified or formatdate(_LAST_MODIFIED_BASE + version, usegmt=True),
        )

    # -- faults ----------------------------------------------------------------------------

    def faults(self, path: str) -> Faults:
        """The first fault rule of ``path`` (created empty if none); mutate it freely."""
        with self._lock:
            rules = self._rules.setdefault(_norm(path), [])
            if not rules:
                rules.append(Faults())
            return rules[0]

    def set_faults(self, path: str, **kwargs: Any) -> Faults:
        """Replace all fault rules of ``path`` with one ``Faults(**kwargs)``."""
        rule = Faults(**kwargs)
        with self._lock:
            self._rules[_norm(path)] = [rule]
        return rule

    def add_faults(self, path: str, **kwargs: Any) -> Faults:
        """Append a fault rule to ``path``; earlier rules take precedence."""
        rule = Faults(**kwargs)
        with self._lock:
            self._rules.setdefault(_norm(path), []).append(rule)
        return rule

    def clear_faults(self, path: str | None = None) -> None:
        with self._lock:
            if path is None:
                self._rules.clear()
            else:
                self._rules.pop(_norm(path), None)

    # -- accounting ------------------------------------------------------------------------

    def bytes_sent(self, path: str) -> int:
        """Body bytes written to sockets for ``path`` (CDN legs included), all responses."""
        with self._lock:
            return self._bytes.get(_norm(path), 0)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def requests_for(self, path: str, method: str | None = None) -> list[RequestRecord]:
        path = _norm(path)
        return [
            r
            for r in self.requests
            if r.resource == path and (method is None or r.method == method)
        ]

    def reset_counters(self) -> None:
        with self._lock:
            self._bytes.clear()
            self._records.clear()

    def reset(self) -> None:
        """Forget every file, fault rule, CDN token and count: as if just started (one server
        shared by many quick tests saves each its start and stop)."""
        with self._lock:
            self._resources.clear()
            self._rules.clear()
            self._tokens.clear()
            self._bytes.clear()
            self._records.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "bytes_sent": dict(self._bytes),
                "requests": [
                    {k: v for k, v in asdict(r).items() if k != "headers"} for r in self._records
                ],
            }

    # -- internals used by the handler ----------------------------------------------------

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _uncount(self, record: RequestRecord, n: int) -> None:
        with self._lock:
            self._bytes[record.resource] -= n
            record.bytes_sent -= n

    def _account(self, record: RequestRecord, n: int, plan: _Plan) -> _Resource | None:
        """Count n bytes about to be sent; fire change_after_bytes rules.  Returns the new
        version if a change_in_place rule installed one (it applies after these n bytes)."""
        replaced = None
        with self._lock:
            path = record.resource
            self._bytes[path] = self._bytes.get(path, 0) + n
            record.bytes_sent += n
            for rule in plan.change_rules:
                if rule._changed:
                    continue
                rule._change_counted += n
                if rule._change_counted >= (rule.change_after_bytes or 0):
                    rule._changed = True
                    rule.fired += 1
                    old = self._resources.get(path)
                    new_data = rule.new_data
                    if new_data is None:
                        base = old.read() if old is not None else b""
                        new_data = bytes(b ^ 0xFF for b in base[:64]) + base[64:]
                    use_etag = old is None or old.etag is not None
                    resource = self._make_resource(new_data, None, rule.new_etag, None, use_etag)
                    self._resources[path] = resource
                    if rule.change_in_place:
                        replaced = resource
        return replaced

    @staticmethod
    def _bytes_until_change(plan: _Plan) -> int | None:
        left = [
            (r.change_after_bytes or 0) - r._change_counted
            for r in plan.change_rules
            if not r._changed
        ]
        return max(1, min(left)) if left else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FaultyHTTP/1.0"
    server: QuietHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.owner._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._guarded("GET")

    def do_HEAD(self) -> None:
        self._guarded("HEAD")

    def _guarded(self, method: str) -> None:
        try:
            self._serve(method)
        except (_Abort, OSError):
            self.close_connection = True

    # -- response helpers ------------------------------------------------------------------

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _small(
        self,
        method: str,
        record: RequestRecord | None,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        if record is not None:
            record.status = status
        all_headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        all_headers.update(headers or {})
        self._head(status, all_headers)
        if method != "HEAD" and body:
            self.wfile.write(body)

    # -- the request -----------------------------------------------------------------------

    def _serve(self, method: str) -> None:
        owner = self.server.owner
        path = unquote(urlsplit(self.path).path)
        if path == STATS_PATH:
            body = json.dumps(owner.stats()).encode()
            self._small(method, None, 200, body)
            return

        headers = {k.lower(): v for k, v in self.headers.items()}
        range_header = headers.get("range")
        record = RequestRecord(method, path, path, headers, range=range_header)
        cdn = path.startswith(CDN_PREFIX)
        resource: _Resource | None
        plan = _Plan()
        fired: dict[int, Faults] = {}

        with owner._lock:
            owner._records.append(record)
            if cdn:
                token, _, rest = path[len(CDN_PREFIX) :].partition("/")
                entry = owner._tokens.get(token)
                record.cdn = True
                record.resource = _norm(rest)
                if (
                    entry is None
                    or entry[0] != record.resource
                    or entry[1] <= 0
                    or (entry[2] is not None and time.monotonic() > entry[2])
                ):
                    refusal: tuple[int, bytes] | None = (
                        403,
                        b'{"error": "CDN token expired or already used"}',
                    )
                else:
                    entry[1] -= 1
                    refusal = None
            else:
                refusal = None
            rules = [r for r in owner._rules.get(record.resource, [])
                     if r.active and (range_header is not None or not r.ranged_only)]
            resource = owner._resources.get(record.resource)

            status_reply = None
            status_rule: Faults | None = None
            redirect: dict[str, str] | None = None
            if refusal is None and not cdn:
                for rule in rules:
                    pending = rule._pending_status()
                    if pending is not None:
                        status_reply, status_rule = pending, rule
                        fired[id(rule)] = rule
                        if isinstance(rule.status, list):
                            rule.status.pop(0)
                        break
                if status_reply is None:
                    for rule in rules:
                        if rule.redirect_to_cdn:
                            redirect = self._issue_token(owner, rule, record.resource, resource)
                            fired[id(rule)] = rule
                            break
            if (
                refusal is None
                and status_reply is None
                and redirect is None
                and resource is not None
            ):
                if_range = self.headers.get("If-Range")
                self._plan(method, rules, resource, range_header, if_range, plan, fired)
            for rule in fired.values():
                rule.fired += 1

        if refusal is not None:
            self._small(method, record, *refusal)
            return
        if status_reply is not None:
            status, extra = status_reply
            assert status_rule is not None
            body = (
                status_rule.status_body
                or json.dumps({"error": f"injected status {status}"}).encode()
            )
            self._small(method, record, status, body, extra)
            return
        if redirect is not None:
            self._small(method, record, 302, b"", redirect, content_type="text/plain")
            return
        if resource is None:
            self._small(method, record, 404, b'{"error": "not found"}')
            return
        if method == "HEAD" and any(r.no_head and id(r) in fired for r in rules):
            self._small(method, record, 405, b'{"error": "HEAD not allowed"}', {"Allow": "GET"})
            return
        self._send_resource(method, record, resource, rules, range_header, plan, fired)

    @staticmethod
    def _issue_token(
        owner: FaultyServer, rule: Faults, path: str, resource: _Resource | None
    ) -> dict[str, str]:
        token = secrets.token_urlsafe(12)
        expires = None if rule.cdn_token_ttl is None else time.monotonic() + rule.cdn_token_ttl
        owner._tokens[token] = [path, rule.cdn_token_uses, expires]
        headers = {"Location": f"http://{rule.cdn_host}:{owner.port}{CDN_PREFIX}{token}{path}"}
        if rule.linked_headers and resource is not None:
            headers["X-Linked-Size"] = str(resource.size)
            if resource.etag is not None:
                headers["X-Linked-Etag"] = resource.etag
        headers.update(rule.extra_headers)
        return headers

    @staticmethod
    def _plan(
        method: str,
        rules: list[Faults],
        resource: _Resource,
        range_header: str | None,
        if_range: str | None,
        plan: _Plan,
        fired: dict[int, Faults],
    ) -> None:
        """Decide, under the server lock, which faults this request gets."""
        if method == "HEAD":
            for rule in rules:
                if rule.no_head:
                    fired[id(rule)] = rule
                    return
        if range_header is not None:
            for rule in rules:
                if rule.accept_ranges == "none" or rule.ignore_range:
                    fired[id(rule)] = rule
                    break
        if method != "GET":
            return
        body_len = _body_length(resource, range_header, if_range, rules)
        span = _effective_range(resource, range_header, if_range, rules)
        if isinstance(span, tuple) and span[0] > 0:
            for rule in rules:
                if rule.range_start_shift:
                    plan.range_start_shift = rule.range_start_shift
                    fired[id(rule)] = rule
                    break
        for rule in rules:
            if rule.drop_after is not None and rule.drop_after < body_len:
                plan.drop_after, plan.drop_rst = rule.drop_after, rule.drop_rst
                fired[id(rule)] = rule
                break
        for rule in rules:
            if rule.stall_after is not None and rule.stall_after < body_len:
                plan.stall_after, plan.stall_seconds = rule.stall_after, rule.stall_seconds
                fired[id(rule)] = rule
                break
        for rule in rules:
            if rule.rate and body_len > 0:
                plan.rate = float(rule.rate)
                fired[id(rule)] = rule
                break
        for rule in rules:
            if rule.wrong_length:
                plan.wrong_length = rule.wrong_length
                fired[id(rule)] = rule
                break
        plan.change_rules = [r for r in rules if r._pending_change()]

    def _send_resource(
        self,
        method: str,
        record: RequestRecord,
        resource: _Resource,
        rules: list[Faults],
        range_header: str | None,
        plan: _Plan,
        fired: dict[int, Faults],
    ) -> None:
        accept_none = any(r.accept_ranges == "none" for r in rules)
        headers = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "none" if accept_none else "bytes",
            "Last-Modified": resource.last_modified,
        }
        if resource.etag is not None:
            headers["ETag"] = resource.etag
        span = _effective_range(resource, range_header, self.headers.get("If-Range"), rules)
        if span == UNSATISFIABLE:
            body = b'{"error": "range not satisfiable"}'
            headers["Content-Range"] = f"bytes */{resource.size}"
            headers["Content-Length"] = str(len(body))
            headers["Content-Type"] = "application/json"
            record.status = 416
            self._head(416, headers)
            if method == "GET":
                self.wfile.write(body)
            return
        if span is None:
            status, start, length = 200, 0, resource.size
        else:
            start, end = span
            start = max(0, start - plan.range_start_shift)
            status, length = 206, end - start + 1
            headers["Content-Range"] = f"bytes {start}-{end}/{resource.size}"
        headers["Content-Length"] = str(length + plan.wrong_length)
        for rule in rules:
            headers.update(rule.body_headers)
            for name in rule.drop_headers:
                headers.pop(name, None)
        if any(r.no_length for r in rules):
            del headers["Content-Length"]
            headers["Connection"] = "close"
            self.close_connection = True
        record.status = status
        self._head(status, headers)
        if method != "GET":
            return
        self._send_body(record, resource, start, length, plan)
        if plan.wrong_length:
            raise _Abort

    def _send_body(
        self, record: RequestRecord, resource: _Resource, start: int, length: int, plan: _Plan
    ) -> None:
        owner = self.server.owner
        stop = owner._stop
        sock = self.connection
        sent = 0
        stalled = False
        t0 = time.monotonic()
        fd = None
        source = resource
        try:
            while sent < length:
                if stop.is_set():
                    raise _Abort
                if plan.drop_after is not None and sent >= plan.drop_after:
                    self._drop(plan.drop_rst)
                if plan.stall_after is not None and not stalled and sent >= plan.stall_after:
                    stalled = True
                    began = time.monotonic()
                    if stop.wait(plan.stall_seconds):
                        raise _Abort
                    t0 += time.monotonic() - began
                limit = length - sent
                if plan.drop_after is not None:
                    limit = min(limit, plan.drop_after - sent)
                if plan.stall_after is not None and not stalled:
                    limit = min(limit, plan.stall_after - sent)
                if plan.rate:
                    limit = min(limit, max(1, int(plan.rate / _RATE_SLICES_PER_SECOND)))
                until_change = owner._bytes_until_change(plan)
                if until_change is not None:
                    limit = min(limit, until_change)
                offset = start + sent
                if source.size - offset <= 0:
                    raise _Abort  # an in-place change made the file shorter
                limit = min(limit, source.size - offset)
                limit = min(limit, _MEMORY_CHUNK if source.data is not None else _SENDFILE_CHUNK)
                # Count before writing, so a client that has read the last byte never sees a
                # stale count; bytes that fail to go out are taken back below.
                replaced = owner._account(record, limit, plan)
                done = 0
                try:
                    while done < limit:
                        if source.data is not None:
                            view = memoryview(source.data)[offset + done : offset + limit]
                            done += sock.send(view)
                        else:
                            if fd is None:
                                assert source.file is not None
                                fd = os.open(source.file, os.O_RDONLY)
                            n = os.sendfile(sock.fileno(), fd, offset + done, limit - done)
                            if n == 0:
                                raise _Abort  # the file shrank on disk
                            done += n
                except BaseException:
                    owner._uncount(record, limit - done)
                    raise
                sent += limit
                if replaced is not None:
                    source = replaced
                    if fd is not None:
                        os.close(fd)
                        fd = None
                if plan.rate:
                    delay = t0 + sent / plan.rate - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        raise _Abort
        finally:
            if fd is not None:
                os.close(fd)

    def _drop(self, rst: bool) -> None:
        if rst:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        raise _Abort


def _ranges_ignored(rules: list[Faults]) -> bool:
    return any(r.accept_ranges == "none" or r.ignore_range for r in rules)


def _effective_range(
    resource: _Resource, range_header: str | None, if_range: str | None, rules: list[Faults]
) -> tuple[int, int] | str | None:
    if range_header is None or _ranges_ignored(rules):
        return None
    if if_range is not None and not if_range_matches(if_range, resource.etag,
                                                     resource.last_modified):
        return None
    return parse_range(range_header, resource.size)


def _body_length(
    resource: _Resource, range_header: str | None, if_range: str | None, rules: list[Faults]
) -> int:
    span = _effective_range(resource, range_header, if_range, rules)
    if span is None:
        return resource.size
    if isinstance(span, str):
        return 0
    return span[1] - span[0] + 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.servers.faulty_http",
        description="Serve local files over loopback HTTP, optionally misbehaving. Prints "
        "'PORT <n>' first; GET /__stats returns bytes sent per path as JSON.",
    )
    parser.add_argument("--file", action="append", default=[], metavar="NAME=LOCALPATH")
    parser.add_argument("--rate", type=float, help="bytes per second per response")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help='fault rule for NAME, e.g. big.bin=\'{"drop_after": 1000, "times": 2}\'',
    )
    args = parser.parse_args(argv)

    server = FaultyServer(port=args.port)
    for spec in args.file:
        name, sep, local = spec.partition("=")
        if not sep:
            parser.error(f"--file wants NAME=LOCALPATH, got {spec!r}")
        server.set_file(name, file=Path(local))
    for spec in args.fault:
        name, sep, text = spec.partition("=")
        if not sep:
            parser.error(f"--fault wants NAME=JSON, got {spec!r}")
        server.add_faults(name, **json.loads(text))
    if args.rate:
        for spec in args.file:
            server.add_faults(spec.partition("=")[0], rate=args.rate)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server.start()
    print(f"PORT {server.port}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
