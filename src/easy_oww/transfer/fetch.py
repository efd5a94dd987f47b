"""The fetch engine: resumable, verified, multi-connection HTTP downloads.

A download goes to ``<final>.part`` beside the final file, with a small JSON sidecar
``<final>.part.json`` that records the URL, the server's validator (ETag, else
Last-Modified), the expected size and the byte ranges already on disk. Resumes send
``Range`` with ``If-Range``; any sign that the server's bytes are not the ones we have
(a 200 to a ranged request, a new validator, a ``Content-Range`` that does not line up)
means starting again from zero, never appending. The hash is computed while the bytes
arrive, by a thread that reads the finished front of the part file back in order; the
file moves into place only when its size and hash check out.

urllib3 is the transport: on loopback it moved a 2 GB file about twice as fast as httpx
(whose 64 KiB reads dominate), close to curl.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import glob
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urljoin, urlsplit

import urllib3
from filelock import FileLock, Timeout

from easy_oww.atomic import fsync_dir
from easy_oww.errors import (
    DownloadError,
    HashMismatchError,
    IntegrityError,
    LockTimeoutError,
    NotFoundError,
    SizeMismatchError,
)
from easy_oww.hashes import KnownHash, new_hasher
from easy_oww.progress import NullProgress, Task, human_bytes
from easy_oww.transfer.resume import RangeSet, Sidecar, plan_resume
from easy_oww.transfer.retry import (
    TRANSPORT_ERRORS,
    Cancelled,
    CancelSignal,
    ConnectionLost,
    LinkRefused,
    RetryableError,
    RetryPolicy,
    call_with_retries,
    is_busy_status,
    server_busy,
    transport_error,
)
from easy_oww.transfer.segments import Piece, Scheduler, connection_count
from easy_oww.workers import WorkerPool

__all__ = [  # Cancelled and RangeSet moved to retry.py and resume.py; importable here as before
    "Cancelled", "FetchOptions", "FetchRequest", "FetchResult", "Fetcher", "Inspection",
    "RangeSet", "Remote", "UpstreamChangedError", "label_of", "lock_path",
]

MiB = 1024 * 1024
FATAL_STATUSES = {400, 401, 403, 404, 405, 410, 451}
MAX_RESTARTS = 3
FALLBACK_STATUSES = {403, 404, 410}  # the URL is gone or refused: another route may serve it
T = TypeVar("T")


@dataclass(kw_only=True)
class FetchOptions:
    connections: int = 4
    min_segment: int = 8 * MiB  # a file smaller than two of these uses one connection
    attempts: int = 6  # consecutive failed attempts (without new bytes) before giving up
    offline_attempts: int = 2  # the same when no server answers at all ("offline")
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 300.0
    connect_timeout: float = 15.0
    read_timeout: float = 30.0  # a connection silent this long is a stall
    lock_timeout: float = 3600.0
    chunk: int = 512 * 1024  # largest single read; read1 returns what has arrived
    sidecar_interval: float = 0.5
    keep_corrupt: bool = False
    verbose: bool = False  # log each decision: resume point, connections, validator

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.attempts, offline_attempts=self.offline_attempts,
                           backoff_base=self.backoff_base, backoff_max=self.backoff_max,
                           retry_after_max=self.retry_after_max)


@dataclass
class FetchRequest:
    url: str
    dest: Path
    size: int | None = None
    hash: KnownHash | None = None
    label: str = ""
    auth_headers: dict[str, str] = field(default_factory=dict)
    auth_host: str | None = None  # auth_headers go to this host only (not to a CDN)
    # Asked after waiting for another process's lock on this file: True if that process
    # finished it, so there is nothing left to do.
    done_by_other: Callable[[], bool] | None = None
    # Called with the result while the file's lock is still held (to record it).
    on_complete: Callable[[FetchResult], None] | None = None
    # Checks the complete, hash-verified part file before it takes the final name (a format
    # check); raising an IntegrityError discards it, so nothing that failed sits there.
    check: Callable[[Path], None] | None = None
    # At most this many connections to the URL's host at once, across every file this
    # Fetcher fetches (Zenodo blocks clients with more than two: REFERENCE §6).
    host_connections: int | None = None
    # Other URLs of the same bytes, tried in order when one answers 404, 410 or 403 (Zenodo's
    # API route behind its download route); the hash still decides what is good.
    fallback_urls: tuple[str, ...] = ()


@dataclass(kw_only=True)
class FetchResult:
    path: Path
    size: int
    hash: str  # "algo:hex" as checked (the catalog's algorithm, else sha256)
    url: str
    validator: str | None
    transferred: int  # body bytes received in this call
    resumed_from: int  # bytes already on disk when this call started
    skipped: bool = False


def strong_validator(etag: str | None, last_modified: str | None) -> str | None:
    """What to send as If-Range: a strong ETag (a weak one cannot validate a byte range),
    else Last-Modified."""
    if etag and not etag.startswith("W/"):
        return etag
    return last_modified


@dataclass(kw_only=True)
class Remote:
    """What a probe learned about the server's copy."""

    url: str  # the final URL after redirects (informational: signed URLs expire)
    size: int | None
    etag: str | None
    last_modified: str | None
    accepts_ranges: bool
    linked_etag: str | None = None  # X-Linked-Etag from a redirect: the Hub's LFS sha256

    @property
    def validator(self) -> str | None:
        return strong_validator(self.etag, self.last_modified)


@dataclass(frozen=True, kw_only=True)
class Inspection:
    """What one ranged byte told about a URL (``Fetcher.inspect``), for `easy-oww doctor`."""

    status: int
    final_url: str
    size: int | None
    etag: str | None
    linked_etag: str | None
    ranges: bool  # the ranged request came back 206


class UpstreamChangedError(DownloadError):
    """The server states a hash for the file that is not the catalog's: nothing is fetched."""


class FormatCheckError(IntegrityError):
    """A download with the right bytes count and hash failed `FetchRequest.check`: it was
    discarded, never renamed to its final name."""

    def __init__(self, message: str, *, transferred: int) -> None:
        super().__init__(message)
        self.transferred = transferred  # bytes this run fetched for nothing


@dataclass(frozen=True, kw_only=True)
class Opened:
    """A response to read, with what the redirects on the way to it said."""

    response: urllib3.BaseHTTPResponse
    requested_url: str  # where the request started (the catalog's URL)
    final_url: str  # where the redirects ended
    linked_size: int | None = None  # X-Linked-Size from a redirect (Hugging Face's LFS size)
    linked_etag: str | None = None  # X-Linked-Etag from a redirect (the LFS sha256, quoted)

    @property
    def redirected(self) -> bool:
        return self.final_url != self.requested_url


class _Restart(Exception):
    """The server's bytes are not the ones on disk: start again from zero."""


class _NoRanges(Exception):
    """The server answered a ranged request with the whole file: use one connection."""


class _OrderedHasher:
    """Hashes the part file's bytes in order, in a thread of its own, as they arrive.

    One connection hands its chunks over as they are written (`feed`: no second copy);
    several connections write out of order, so the hasher reads the finished front of the
    file back (`advance_to`), and so it does for the bytes a resumed part already holds.
    Both ways keep memory flat: at most `QUEUE_BYTES` wait (hashing runs at over 1 GB/s,
    so a short queue rarely makes the receiver wait).
    """

    QUEUE_BYTES = 2 * MiB

    def __init__(self, path: Path, digest: hashlib._Hash, chunk: int = 1 * MiB) -> None:
        self.path, self.digest = path, digest
        self.hashed = 0
        self._ready = 0
        self._fed: collections.deque[tuple[int, bytes]] = collections.deque()
        self._queued = 0  # bytes in _fed
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._chunk = chunk
        self._thread = threading.Thread(target=self._run, name="hasher", daemon=True)
        self._thread.start()

    def advance_to(self, contiguous: int) -> None:
        with self._cond:
            if contiguous > self._ready:
                self._ready = contiguous
                self._cond.notify_all()

    def feed(self, offset: int, data: bytes) -> None:
        """Bytes just written in order at `offset`; blocks while the queue is full."""
        with self._cond:
            while self._queued >= self.QUEUE_BYTES and not self._closed:
                self._cond.wait()
            if self._closed:
                return
            self._fed.append((offset, data))
            self._queued += len(data)
            self._ready = max(self._ready, offset + len(data))
            self._cond.notify_all()

    def _next(self) -> tuple[int, bytes | None] | None:
        """What to hash next: a fed chunk starting where we are, else a span to read back."""
        with self._cond:
            while True:
                while self._fed and self._fed[0][0] + len(self._fed[0][1]) <= self.hashed:
                    self._queued -= len(self._fed.popleft()[1])  # covered by a read-back
                    self._cond.notify_all()
                if self._fed and self._fed[0][0] == self.hashed:
                    offset, data = self._fed.popleft()
                    self._queued -= len(data)
                    self._cond.notify_all()
                    return offset, data
                limit = self._fed[0][0] if self._fed else self._ready
                if limit > self.hashed:
                    return min(limit - self.hashed, self._chunk), None
                if self._closed:
                    return None
                self._cond.wait()

    def _run(self) -> None:
        buffer = bytearray(self._chunk)
        view = memoryview(buffer)
        try:
            with open(self.path, "rb", buffering=0) as handle:
                while (item := self._next()) is not None:
                    want, data = item
                    if data is not None:
                        self.digest.update(data)
                        n = len(data)
                    else:
                        n = os.preadv(handle.fileno(), [view[:want]], self.hashed)
                        if n <= 0:
                            raise OSError(f"{self.path} is shorter than the bytes written to it")
                        self.digest.update(view[:n])
                    with self._cond:
                        self.hashed += n
                        self._cond.notify_all()
        except BaseException as exc:  # reported to the caller in finish()
            self._error = exc
            with self._cond:
                self._closed = True  # unblock feeders
                self._cond.notify_all()

    def finish(self, size: int) -> str:
        self.advance_to(size)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        if self._error:
            raise DownloadError(f"reading back {self.path} to hash it failed: {self._error}")
        if self.hashed != size:
            raise DownloadError(f"hashed {self.hashed} bytes of {self.path}, expected {size}")
        return self.digest.hexdigest()

    def abandon(self) -> None:
        with self._cond:
            self._closed = True
            self._ready = self.hashed
            self._fed.clear()
            self._queued = 0
            self._cond.notify_all()
        self._thread.join()


def _let_go(response: urllib3.BaseHTTPResponse) -> None:
    """Return the connection to the pool only when its body was read to the end; unread
    bytes would poison the next request sent on it."""
    if getattr(response, "length_remaining", None) == 0:
        response.read()  # marks an empty (HEAD) body finished so the connection is reusable
    else:
        response.close()
    response.release_conn()


def _parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``bytes a-b/total`` → (a, b + 1, total or None)."""
    if not value or not value.startswith("bytes "):
        return None
    spec, _, total = value[6:].partition("/")
    start, _, end = spec.partition("-")
    try:
        return int(start), int(end) + 1, (None if total.strip() == "*" else int(total))
    except ValueError:
        return None


class _Download:
    """The state of one file's download while `Fetcher.fetch` runs."""

    def __init__(self, fetcher: "Fetcher", request: FetchRequest, task: Task) -> None:
        self.fetcher, self.request, self.task = fetcher, request, task
        self.part = Path(str(request.dest) + ".part")
        self.sidecar = Sidecar(Path(str(request.dest) + ".part.json"))
        self.lock = threading.Lock()
        self.done = RangeSet()
        self.size: int | None = request.size
        self.validator: str | None = None
        self.sequential = True
        self.transferred = 0
        self.hasher: _OrderedHasher | None = None
        self.fd = -1
        self.algorithm = request.hash.algorithm if request.hash else "sha256"
        self.cancel = fetcher.cancel
        self.unsaved = 0
        self.durable = RangeSet()  # what the last durable sidecar save vouched for
        self.save_every = fetcher.options.chunk  # bytes; raised per connection count
        self._saver: threading.Thread | None = None
        self._saver_stop = threading.Event()
        self._saver_wake = threading.Event()
        # One save at a time, each from its own snapshot: otherwise the saver thread's older
        # snapshot could land after a newer final save and take recorded progress back.
        self._save_lock = threading.Lock()

    # -- bookkeeping -------------------------------------------------------------------
    def open_part(self, fresh: bool, preallocate: bool) -> None:
        self.close_part()
        if fresh:
            self.done, self.durable = RangeSet(), RangeSet()
            self.part.unlink(missing_ok=True)
        self.fd = os.open(self.part, os.O_RDWR | os.O_CREAT, 0o644)
        if preallocate and self.size:
            if os.fstat(self.fd).st_size < self.size:
                os.ftruncate(self.fd, self.size)  # sparse; ranges fill it in any order
        self.save_sidecar()
        self.hasher = _OrderedHasher(self.part, new_hasher(self.algorithm, self.size))
        self.hasher.advance_to(self.done.prefix())
        self._saver_stop.clear()
        self._saver = threading.Thread(target=self._save_loop, name="sidecar", daemon=True)
        self._saver.start()

    def _save_loop(self) -> None:
        """Saves the sidecar off the receiving threads (fdatasync can take 100 ms on a slow
        disk): a quick save whenever `save_every` new bytes are in (or 0.1 s passed), so a
        killed process loses about one chunk a connection; a durable one every
        `sidecar_interval`, for power cuts."""
        interval = self.fetcher.options.sidecar_interval
        last_durable = time.monotonic()
        while not self._saver_stop.is_set():
            self._saver_wake.wait(min(0.1, interval))
            self._saver_wake.clear()
            if self._saver_stop.is_set():
                return
            durable = time.monotonic() - last_durable >= interval
            try:
                self.save_sidecar(durable=durable)
            except OSError:
                return  # disk trouble: the receiving thread reports it on its next write
            if durable:
                last_durable = time.monotonic()
            self._saver_stop.wait(0.05)  # a burst of wake-ups costs one save, not dozens

    def _stop_saver(self) -> None:
        if self._saver is not None:
            self._saver_stop.set()
            self._saver_wake.set()
            self._saver.join()
            self._saver = None

    def close_part(self) -> None:
        self._stop_saver()
        if self.hasher:
            self.hasher.abandon()
            self.hasher = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def wrote(self, start: int, data: bytes) -> None:
        """`data` is on disk at `start`: account for it, hash it, maybe wake the saver."""
        end = start + len(data)
        with self.lock:
            self.done.add(start, end)
            self.transferred += len(data)
            self.unsaved += len(data)
            prefix = self.done.prefix()
            # In-order writes with a known hash resume from the file's length: no hurry.
            trusts_length = self.sequential and self.request.hash is not None
            wake = self.unsaved >= self.save_every and not trusts_length
        assert self.hasher is not None
        if self.sequential:
            self.hasher.feed(start, data)
        else:
            self.hasher.advance_to(prefix)
        self.task.advance(len(data))
        if wake:
            self._saver_wake.set()

    def save_sidecar(self, durable: bool = True) -> None:
        """Record progress. A durable save fdatasyncs the part first, so its `done` never
        claims bytes a power cut could lose; a quick save only renames a small file."""
        with self._save_lock:
            with self.lock:
                self.unsaved = 0
                written = RangeSet(self.done.ranges)
            if durable:
                if self.fd >= 0:
                    os.fdatasync(self.fd)
                self.durable = written
            self.sidecar.save(url=self.request.url, size=self.size, validator=self.validator,
                              done=self.durable, written=written, sequential=self.sequential,
                              durable=durable)


class Fetcher:
    """Downloads files; safe to share between threads (one pool of connections)."""

    def __init__(self, options: FetchOptions | None = None, *, progress: NullProgress | None = None,
                 lock_dir: Path | None = None, pool: urllib3.PoolManager | None = None,
                 user_agent: str = "easy-oww") -> None:
        self.options = options or FetchOptions()
        self.progress = progress or NullProgress()
        self.lock_dir = lock_dir
        self.cancel = threading.Event()
        self.user_agent = user_agent
        self._host_lock = threading.Lock()
        self._host_slots: dict[str, threading.BoundedSemaphore] = {}
        self._not_before: dict[str, float] = {}  # host -> monotonic time its limit resets
        self._no_ranges: set[str] = set()  # routes seen ignoring Range
        self._announced: set[str] = set()  # hosts whose current rate-limit wait was said
        self.pool = pool or urllib3.PoolManager(
            num_pools=32, maxsize=max(16, self.options.connections * 2), retries=False,
            timeout=urllib3.Timeout(connect=self.options.connect_timeout,
                                    read=self.options.read_timeout),
        )

    # -- HTTP ---------------------------------------------------------------------------
    def _open(self, method: str, request: FetchRequest, headers: dict[str, str]) -> Opened:
        """One request, following redirects by hand from the original URL every time
        (signed CDN URLs expire) and sending credentials to `auth_host` only."""
        url = request.url
        linked_size: int | None = None
        linked_etag: str | None = None
        for _ in range(10):
            self._wait_for_rate_limit(url)
            sent = {"Accept-Encoding": "identity", "User-Agent": self.user_agent, **headers}
            if request.auth_headers and urlsplit(url).hostname == request.auth_host:
                sent.update(request.auth_headers)
            try:
                response = self.pool.request(method, url, headers=sent, redirect=False,
                                             preload_content=False, decode_content=False)
            except TRANSPORT_ERRORS as exc:
                raise transport_error(exc, url) from exc
            self._note_rate_limit(url, response.headers)
            if response.status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                location = response.headers["Location"]
                # Hugging Face puts the LFS size and sha256 on the redirect, not on the CDN's
                # answer; its Location may be relative (/api/resolve-cache/…): urljoin.
                linked = response.headers.get("X-Linked-Size", "")
                linked_size = int(linked) if linked.isdigit() else linked_size
                linked_etag = response.headers.get("X-Linked-Etag") or linked_etag
                _let_go(response)
                url = urljoin(url, location)
                continue
            return Opened(response=response, requested_url=request.url, final_url=url,
                          linked_size=linked_size, linked_etag=linked_etag)
        raise DownloadError(f"too many redirects for {request.url}")

    # -- rate limits and connections per host -----------------------------------------------
    def _note_rate_limit(self, url: str, headers: urllib3.HTTPHeaderDict) -> None:
        """Zenodo sends X-RateLimit-Remaining/-Reset (epoch seconds), the Hub the IETF
        draft's RateLimit header ("…;r=<left>;t=<seconds>"): when none is left, the host's
        next request waits for the reset instead of earning a 429."""
        wait: float | None = None
        remaining, reset = headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Reset")
        if remaining is not None and remaining.strip() == "0" and reset and reset.isdigit():
            wait = float(reset) - time.time()
        draft = headers.get("RateLimit")
        if draft and wait is None:
            params = dict(part.strip().partition("=")[::2] for part in draft.split(";"))
            if params.get("r", "").strip() == "0" and params.get("t", "").strip().isdigit():
                wait = float(params["t"])
        if wait is not None and wait > 0:
            host = urlsplit(url).netloc
            with self._host_lock:
                self._not_before[host] = time.monotonic() + min(wait, self.options.retry_after_max)
                self._announced.discard(host)

    def _wait_for_rate_limit(self, url: str) -> None:
        """Every request to a host whose limit is used up waits for its reset (several
        connections may want it); the wait is said once."""
        host = urlsplit(url).netloc
        with self._host_lock:
            until = self._not_before.get(host)
            announce = until is not None and host not in self._announced
            if announce:
                self._announced.add(host)
        delay = (until or 0.0) - time.monotonic()
        if delay <= 0:
            return
        if announce:
            self.progress.log(f"{host}: its rate limit is used up; waiting {delay:.0f} s as "
                              "it asks")
        if self.cancel.wait(delay):
            raise Cancelled()

    @contextlib.contextmanager
    def _host_slot(self, request: FetchRequest, cancel: CancelSignal) -> Iterator[None]:
        """Holds one of the `host_connections` slots of the request's host (if it has a cap)
        for one request and its body."""
        if request.host_connections is None:
            yield
            return
        host = urlsplit(request.url).netloc
        with self._host_lock:
            slots = self._host_slots.setdefault(
                host, threading.BoundedSemaphore(request.host_connections))
        while not slots.acquire(timeout=0.2):
            if cancel.is_set():
                raise Cancelled()
        try:
            yield
        finally:
            slots.release()

    @staticmethod
    def _route(url: str) -> str:
        # Per host and first path segment: Zenodo serves ranges on /records/… and ignores
        # them on /api/… (zenodo/zenodo#2593), one host.
        parts = urlsplit(url)
        return f"{parts.netloc}/{parts.path.lstrip('/').partition('/')[0]}"

    def _ignores_ranges(self, url: str) -> None:
        with self._host_lock:
            self._no_ranges.add(self._route(url))

    def _takes_ranges(self, url: str) -> bool:
        """False once a route answered a ranged request with the whole (same) file: its
        files then start on one connection, and a resume there starts from zero."""
        with self._host_lock:
            return self._route(url) not in self._no_ranges

    def connections_for(self, request: FetchRequest) -> int:
        """Connections one file of `request` may use: the option, within its host's cap."""
        return min(self.options.connections, request.host_connections or self.options.connections)

    def _check_status(self, opened: Opened, request: FetchRequest) -> None:
        response = opened.response
        status = response.status
        if is_busy_status(status):
            _let_go(response)
            raise server_busy(status, request.url, response.headers.get("Retry-After"))
        if status == 403 and opened.redirected:
            # A signed link (the Hub's CDN) that expired or was refused: resolve it again.
            _let_go(response)
            raise LinkRefused(f"{urlsplit(opened.final_url).netloc} refused the signed link "
                              f"from {urlsplit(request.url).netloc} (HTTP 403)")
        if status in FATAL_STATUSES or 400 <= status < 500 and status != 416:
            _let_go(response)
            what = {401: "needs a login or token (for Hugging Face: set HF_TOKEN)",
                    403: "is forbidden", 404: "was not found",
                    410: "is gone"}.get(status, f"was refused (HTTP {status})")
            error = NotFoundError if status in (404, 410) else DownloadError
            raise error(f"{request.url} {what} (HTTP {status}); check the URL in the "
                        "catalog or your network's proxy", status=status)

    def probe(self, request: FetchRequest) -> Remote:
        """HEAD the URL (a tiny ranged GET where HEAD is refused) to learn size and validator."""
        opened = self._open("HEAD", request, {})
        if opened.response.status in (405, 501, 400):
            _let_go(opened.response)
            opened = self._open("GET", request, {"Range": "bytes=0-0"})
        response = opened.response
        self._check_status(opened, request)
        headers = response.headers
        _let_go(response)
        size: int | None = None
        content_range = _parse_content_range(headers.get("Content-Range"))
        if response.status == 206 and content_range:
            size = content_range[2]
        elif headers.get("Content-Length", "").isdigit():
            size = int(headers["Content-Length"])
        size = opened.linked_size or size
        # No Accept-Ranges header is not a refusal (CDNs often omit it); "none" is.
        ranges = headers.get("Accept-Ranges", "").lower() != "none" or response.status == 206
        return Remote(url=opened.final_url, size=size, etag=headers.get("ETag"),
                      last_modified=headers.get("Last-Modified"), accepts_ranges=ranges,
                      linked_etag=opened.linked_etag)

    def inspect(self, request: FetchRequest) -> Inspection:
        """Ask for the file's first byte, with retries: what the server would serve, and
        whether it honours ``Range`` (a 206), without downloading the file."""
        def attempt() -> Inspection:
            with self._host_slot(request, self.cancel):
                opened = self._open("GET", request, {"Range": "bytes=0-0"})
                response = opened.response
                self._check_status(opened, request)
                headers, status = response.headers, response.status
                _let_go(response)  # a server that ignores Range sent it all: not read
            content_range = _parse_content_range(headers.get("Content-Range"))
            size = content_range[2] if status == 206 and content_range else (
                int(headers["Content-Length"]) if headers.get("Content-Length", "").isdigit()
                else None)
            return Inspection(status=status, final_url=opened.final_url,
                              size=opened.linked_size or size, etag=headers.get("ETag"),
                              linked_etag=opened.linked_etag, ranges=status == 206)

        return call_with_retries(attempt, policy=self.options.retry_policy(), what=request.url,
                                 cancel=self.cancel, log=self.progress.log)

    def _with_retries(self, attempt: Callable[[], T], job: _Download,
                      progress: Callable[[], int] = lambda: 0) -> T:
        """`attempt` under the shared retry policy, for one download (the policy is read
        from the options each time: a caller may change them between fetches)."""
        return call_with_retries(attempt, policy=self.options.retry_policy(),
                                 what=job.request.url, progress=progress, cancel=job.cancel,
                                 log=self.progress.log)

    # -- public -----------------------------------------------------------------------------
    def lock_file(self, dest: Path) -> Path:
        """The lock file `fetch` holds while it works on `dest`."""
        return lock_path(self.lock_dir or dest.parent / ".locks", dest)

    def fetch(self, request: FetchRequest) -> FetchResult:
        """Download `request.dest`, resuming what an earlier run left, trying the fallback
        URLs in turn when a URL is gone; returns once the file is in place and checked."""
        urls = [request.url, *request.fallback_urls]
        for index, url in enumerate(urls):
            try:
                return self._fetch_from(dataclasses.replace(request, url=url, fallback_urls=()))
            except DownloadError as exc:
                if index + 1 == len(urls) or exc.status not in FALLBACK_STATUSES:
                    raise
                self.progress.log(f"{request.label or request.dest.name}: {url} answered HTTP "
                                  f"{exc.status}; trying {urls[index + 1]}")
        raise AssertionError("unreachable: the loop returns or raises")

    def _fetch_from(self, request: FetchRequest) -> FetchResult:
        request.dest.parent.mkdir(parents=True, exist_ok=True)
        label = request.label or request.dest.name
        lock_file = self.lock_file(request.dest)
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_file))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self.progress.log(f"{label}: another easy-oww process is downloading it; waiting "
                              f"(up to {self.options.lock_timeout:.0f} s)")
            try:
                lock.acquire(timeout=self.options.lock_timeout)
            except Timeout:
                raise LockTimeoutError(
                    f"{request.dest} is still being downloaded by another process after "
                    f"{self.options.lock_timeout:.0f} s; try again when it has finished") from None
            if request.done_by_other is not None and request.done_by_other():
                lock.release()
                size = request.dest.stat().st_size
                return FetchResult(path=request.dest, size=size, hash=str(request.hash or ""),
                                   url=request.url, validator=None, transferred=0,
                                   resumed_from=size, skipped=True)
        try:
            result = self._fetch_locked(request, label)
            if request.on_complete is not None:
                request.on_complete(result)
            return result
        finally:
            lock.release()

    def _fetch_locked(self, request: FetchRequest, label: str) -> FetchResult:
        # A process that died mid-save left its sidecar's temp file; the lock says no one
        # else is writing this file now.
        for stale in request.dest.parent.glob(f".{glob.escape(request.dest.name)}"
                                              ".part.json.*.tmp"):
            stale.unlink(missing_ok=True)
        task = self.progress.task(label, request.size, 0)
        job = _Download(self, request, task)
        ok = False
        try:
            result = self._run(job)
            ok = True
            return result
        except OSError as exc:  # disk full, drive unplugged, permissions: not a network fault
            raise DownloadError(f"{request.dest}: {exc.strerror or exc}; what was downloaded is "
                                "kept: fix that and run again to resume") from None
        finally:
            if not ok and job.fd >= 0:
                try:
                    job.save_sidecar()  # record every byte we have, for next time
                except OSError:
                    pass  # the last periodic save stands
            job.close_part()
            task.finish(ok)

    def _probe(self, job: _Download) -> Remote:
        def attempt() -> Remote:
            with self._host_slot(job.request, job.cancel):
                return self.probe(job.request)

        remote = self._with_retries(attempt, job)
        self._check_remote_size(job.request, remote)
        self._check_linked_hash(job.request, remote)
        return remote

    def _run(self, job: _Download) -> FetchResult:
        request = job.request
        remote = self._probe(job)
        job.size = request.size if request.size is not None else remote.size
        job.validator = remote.validator
        job.task.reset(0, job.size)

        saved = job.sidecar.load()
        part_size = job.part.stat().st_size if job.part.exists() else None
        plan = plan_resume(
            saved, part_size=part_size,
            url=request.url, request_size=request.size, hash_known=request.hash is not None,
            remote_size=remote.size, validator=remote.validator,
            accepts_ranges=remote.accepts_ranges and self._takes_ranges(request.url),
            connections=self.connections_for(request),
            min_segment=self.options.min_segment)
        job.done, job.durable = plan.done, plan.durable
        resumed_from = plan.resumed_from
        if saved is not None and part_size and not resumed_from:
            kept = RangeSet(saved.written or saved.done).total()
            why = ("the server does not take byte ranges" if not remote.accepts_ranges
                   else "the file on the server is not the one the part was cut from")
            self.progress.log(f"{label_of(job)}: {why}; starting again from zero "
                              f"({human_bytes(kept)} already on disk are fetched again)")
        use_segments = plan.use_segments
        job.sequential = not use_segments
        job.task.reset(resumed_from, job.size)
        job.open_part(fresh=not resumed_from, preallocate=use_segments)
        if self.options.verbose:
            how = (f"{self.options.connections} connections" if use_segments
                   else "one connection")
            start = f"resuming at byte {resumed_from:,}" if resumed_from else "from the start"
            size = f"{remote.size:,}" if remote.size is not None else "?"
            self.progress.log(f"{label_of(job)}: {size} bytes, "
                              f"validator {remote.validator or 'none'}; {start}, {how}")

        restarts = 0
        while True:
            try:
                if use_segments:
                    self._segmented(job)
                else:
                    self._single(job)
                break
            except (_NoRanges, _Restart) as exc:
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise DownloadError(f"{request.url}: {exc} again after {MAX_RESTARTS} "
                                        "fresh starts; the server is inconsistent, try again "
                                        "later") from None
                if isinstance(exc, _NoRanges):
                    # The server ignores ranges: one connection from zero, not a retry loop;
                    # and the route's next files start that way.
                    self.progress.log(f"{label_of(job)}: the server ignores byte ranges; "
                                      "using one connection")
                    self._ignores_ranges(request.url)
                    use_segments = False
                else:
                    self.progress.log(f"{label_of(job)}: {exc}; starting again from zero "
                                      f"({human_bytes(job.done.total())} fetched again)")
                    remote = self._probe(job)
                    job.size = request.size if request.size is not None else remote.size
                    job.validator = remote.validator
                job.sequential = not use_segments
                job.open_part(fresh=True, preallocate=use_segments)
                job.task.reset(0, job.size)
                resumed_from = 0
        return self._finish(job, resumed_from)

    @staticmethod
    def _check_linked_hash(request: FetchRequest, remote: Remote) -> None:
        """The Hub states each LFS file's sha256 (X-Linked-Etag) when it resolves it: when it
        is not the catalog's, say so before fetching gigabytes that would fail the check."""
        stated = (remote.linked_etag or "").strip('"').lower()
        if (request.hash is None or request.hash.algorithm != "sha256" or len(stated) != 64
                or stated == request.hash.hexdigest):
            return
        raise UpstreamChangedError(
            f"{request.url}: the server says the file's sha256 is now {stated}, the catalog "
            f"expects {request.hash.hexdigest}; the file changed upstream, so nothing was "
            "downloaded: update the catalog entry (or pin the old revision)")

    @staticmethod
    def _check_remote_size(request: FetchRequest, remote: Remote) -> None:
        if remote.size is not None and request.size is not None and remote.size != request.size:
            raise SizeMismatchError(
                f"{request.url} has {remote.size:,} bytes on the server but the catalog says "
                f"{request.size:,}; the file changed upstream: update the catalog entry")

    def _single(self, job: _Download) -> None:
        """One connection, from the end of the contiguous front to the end of the file."""
        def attempt() -> None:
            start = job.done.prefix()
            if job.size is not None and start >= job.size:
                return
            headers: dict[str, str] = {}
            if start:
                headers["Range"] = f"bytes={start}-"
                if job.validator:
                    headers["If-Range"] = job.validator
            with self._host_slot(job.request, job.cancel):
                self._single_attempt(job, start, headers)

        self._with_retries(attempt, job, lambda: job.done.total())
        if job.size is None and job.request.hash is None:
            # A body without a length ends where its connection closed, so a cut there looks
            # like the end, and with no size or hash nothing else would tell: ask for what
            # comes after it. 416 says that was all; bytes say it was cut, and are the rest.
            while job.size is None:
                self._with_retries(lambda: self._confirm_end(job), job,
                                   lambda: job.done.total())
        if job.size is None:
            job.size = job.done.prefix()

    def _confirm_end(self, job: _Download) -> None:
        """Sets `job.size` once the end is known; fetches what follows a cut otherwise."""
        start = job.done.prefix()
        headers = {"Range": f"bytes={start}-"}
        if job.validator:
            headers["If-Range"] = job.validator
        with self._host_slot(job.request, job.cancel):
            opened = self._open("GET", job.request, headers)
            response = opened.response
            try:
                self._check_status(opened, job.request)
                if response.status != 206:
                    # 416: nothing after it, that was the whole file; 200: ranges ignored (or
                    # the file changed), nothing to compare the bytes with.
                    job.size = start
                    return
                got = _parse_content_range(response.headers.get("Content-Range"))
                if not got or got[0] != start:
                    sent = response.headers.get("Content-Range")
                    raise _Restart(f"the server sent range {sent} for a request from {start}")
                self._copy(job, response, start, got[2])
            finally:
                _let_go(response)

    def _single_attempt(self, job: _Download, start: int, headers: dict[str, str]) -> None:
        """One GET from `start` (with `headers`) on one connection, written as it arrives."""
        opened = self._open("GET", job.request, headers)
        response = opened.response
        try:
            # (A complete part never asks: `_single` checks `start >= job.size` first.)
            if response.status == 416 and job.size is not None:
                raise _Restart("the server refused the resume range")
            self._check_status(opened, job.request)
            if response.status == 200:
                if start:
                    if job.validator and job.validator == strong_validator(
                            response.headers.get("ETag"), response.headers.get("Last-Modified")):
                        self._ignores_ranges(job.request.url)  # same file, Range ignored
                    raise _Restart("the server sent the whole file instead of the rest")
                self._learn(job, response)
            elif response.status == 206:
                got = _parse_content_range(response.headers.get("Content-Range"))
                if not got or got[0] != start or (job.size and got[2] not in (None, job.size)):
                    sent = response.headers.get("Content-Range")
                    raise _Restart(f"the server sent range {sent} for a request from {start}")
            else:
                raise RetryableError(f"unexpected HTTP {response.status}")
            self._copy(job, response, start, job.size)
        finally:
            _let_go(response)

    def _learn(self, job: _Download, response: urllib3.BaseHTTPResponse) -> None:
        """A full 200 answer: adopt its validator and size (the file may have changed)."""
        if response.headers.get("Content-Encoding", "identity") not in ("identity", ""):
            raise DownloadError(f"{job.request.url}: the server compressed the body although "
                                "asked not to; cannot verify it")
        etag = response.headers.get("ETag")
        new = strong_validator(etag, response.headers.get("Last-Modified"))
        if new and new != job.validator:
            job.validator = new
            job.save_sidecar()
        length = response.headers.get("Content-Length", "")
        if job.request.size is None and length.isdigit():
            job.size = int(length)

    def _copy(self, job: _Download, response: urllib3.BaseHTTPResponse, start: int,
              end: int | None, piece: Piece | None = None) -> None:
        """Stream a body to the part file at `start`; for a piece, stop at its (moving) end."""
        pos = start
        # Several connections each hold a buffer: smaller ones keep the sum (and the heap's
        # fragmentation) small; their total throughput is the network's anyway.
        chunk = self.options.chunk if piece is None else max(64 * 1024, self.options.chunk // 4)
        try:
            while True:
                if job.cancel.is_set():
                    raise Cancelled()
                limit = piece.end if piece is not None else end
                want = chunk if limit is None else min(chunk, limit - pos)
                if want <= 0:
                    break
                # read1: whatever has arrived (up to `want`), so progress, the sidecar and a
                # slow connection's losses on a kill move in small steps, not 1 MiB ones.
                data = response.read1(want)
                if not data:
                    break
                try:
                    os.pwrite(job.fd, data, pos)
                except OSError as exc:  # disk full, drive unplugged: retrying won't help
                    raise DownloadError(f"writing {job.part} failed: {exc.strerror}; the part "
                                        "is kept, run again to resume") from None
                job.wrote(pos, data)
                pos += len(data)
                if piece is not None:
                    piece.pos = pos
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
            raise transport_error(exc, job.request.url, at=pos) from None
        limit = piece.end if piece is not None else end
        if limit is not None and pos < limit:
            raise ConnectionLost(f"connection closed at byte {pos:,} of {limit:,}")

    def _segmented(self, job: _Download) -> None:
        """Several connections, each on its own byte range, stealing work when idle."""
        assert job.size is not None
        n = connection_count(job.size, job.done.total(), self.options.connections,
                             self.options.min_segment)
        scheduler = Scheduler(job.done.missing(job.size), n,
                              min_steal=2 * max(self.options.chunk, MiB))
        errors: list[BaseException] = []

        def fetch_piece(piece: Piece) -> None:
            def attempt() -> None:
                if piece.pos >= piece.end:
                    return
                headers = {"Range": f"bytes={piece.pos}-{piece.end - 1}"}
                if job.validator:
                    headers["If-Range"] = job.validator
                with self._host_slot(job.request, job.cancel):
                    self._piece_attempt(job, piece, headers)

            self._with_retries(attempt, job, lambda: piece.pos)

        def worker() -> None:
            try:
                while not errors:
                    piece = scheduler.take()
                    if piece is None:
                        return
                    fetch_piece(piece)
                    scheduler.finished(piece)
            except BaseException as exc:
                errors.append(exc)
                stop.set()

        # A failure in one segment stops the others of this file, and only those.
        stop = threading.Event()
        outer_cancel, job.cancel = job.cancel, _LinkedEvent(job.cancel, stop)
        job.save_every = n * self.options.chunk  # a kill loses about one chunk a connection
        pool = WorkerPool(worker, n, "segment")
        try:
            pool.start().wait()
        except BaseException:  # Ctrl-C when fetch runs in the main thread (Python API)
            stop.set()
            pool.wait(5)  # the segments stop before the part file is closed under them
            raise
        finally:
            job.cancel = outer_cancel
        if errors:
            real = [e for e in errors if not isinstance(e, Cancelled)] or errors
            first = next((e for e in real if isinstance(e, (_Restart, _NoRanges))), real[0])
            raise first
        if job.done.missing(job.size):
            raise DownloadError(f"{job.request.url}: ranges still missing after all connections "
                                "finished; run again to resume")

    def _piece_attempt(self, job: _Download, piece: Piece, headers: dict[str, str]) -> None:
        """One ranged GET for `piece`, written at its offset as it arrives."""
        opened = self._open("GET", job.request, headers)
        response = opened.response
        try:
            self._check_status(opened, job.request)
            if response.status == 200:
                etag = response.headers.get("ETag")
                modified = response.headers.get("Last-Modified")
                if job.validator and job.validator not in (etag, modified):
                    raise _Restart("the file changed on the server")
                raise _NoRanges()
            got = _parse_content_range(response.headers.get("Content-Range"))
            if response.status != 206 or not got or got[0] != piece.pos or (
                    got[2] is not None and got[2] != job.size):
                raise _Restart("the server sent a range that does not line up")
            self._copy(job, response, piece.pos, None, piece)
        finally:
            _let_go(response)

    def _finish(self, job: _Download, resumed_from: int) -> FetchResult:
        request = job.request
        assert job.size is not None and job.hasher is not None
        os.fsync(job.fd)
        actual_size = os.fstat(job.fd).st_size
        if actual_size > job.size:  # an older, longer part written in order: drop its tail
            os.ftruncate(job.fd, job.size)
            actual_size = job.size
        digest = job.hasher.finish(job.size)
        job.hasher = None
        got = f"{job.algorithm}:{digest}"
        if actual_size != job.size:
            self._discard(job)
            raise SizeMismatchError(f"{request.dest.name}: expected {job.size:,} bytes, got "
                                    f"{actual_size:,}; deleted the download for safety, run "
                                    "again to fetch it anew")
        if request.hash is not None and got != str(request.hash):
            kept = self._discard(job)
            raise HashMismatchError(
                f"{request.dest.name}: {request.hash.algorithm} mismatch: expected "
                f"{request.hash.hexdigest}, got {digest}; {kept}. Run again to download it "
                "anew; if it happens again the file changed upstream: check the catalog")
        if request.check is not None:
            try:
                request.check(job.part)
            except IntegrityError as exc:
                kept = self._discard(job)
                raise FormatCheckError(f"{request.dest.name}: {exc}; {kept}",
                                       transferred=job.transferred) from None
        job.close_part()
        os.replace(job.part, request.dest)
        fsync_dir(request.dest.parent)
        job.sidecar.remove()
        return FetchResult(path=request.dest, size=job.size, hash=got, url=request.url,
                           validator=job.validator, transferred=job.transferred,
                           resumed_from=resumed_from)

    def _discard(self, job: _Download) -> str:
        job.close_part()
        job.sidecar.remove()
        if self.options.keep_corrupt:
            corrupt = Path(str(job.request.dest) + ".corrupt")
            os.replace(job.part, corrupt)
            return f"kept it as {corrupt.name}"
        job.part.unlink(missing_ok=True)
        return "deleted the download for safety"


def lock_path(lock_dir: Path, dest: Path) -> Path:
    """The lock file guarding one target file (shared by every process on the workspace)."""
    return lock_dir / (hashlib.sha1(str(dest.resolve()).encode()).hexdigest()[:16] + ".lock")


def label_of(job: _Download) -> str:
    return job.request.label or job.request.dest.name


class _LinkedEvent:
    """Set when either of two events is set; setting it sets only the second."""

    def __init__(self, outer: threading.Event, inner: threading.Event) -> None:
        self.outer, self.inner = outer, inner

    def is_set(self) -> bool:
        return self.outer.is_set() or self.inner.is_set()

    def set(self) -> None:
        self.inner.set()

    def wait(self, timeout: float | None = None) -> bool:
        deadline = time.monotonic() + (timeout or 0)
        while not self.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.inner.wait(min(left, 0.1))
        return True
