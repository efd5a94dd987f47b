"""The Freesound APIv2 server: routes, page shapes, auth, rate limits, fault injection and the
accounting tests assert on. See the package docstring for the protocol."""

from __future__ import annotations

import collections
import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import numpy as np

from easy_oww.demo.freesound_standin.corpus import (
    DEFAULT_SIMILARITY_SPACE,
    SIMILARITY_SPACES,
    VECTOR_DIM,
    Corpus,
)
from easy_oww.demo.freesound_standin.filters import (
    FilterError,
    compile_filter,
    compile_query,
    ids_in_filter,
)
from easy_oww.demo.freesound_standin.media import png, preview_audio
from easy_oww.demo.ranges import UNSATISFIABLE, parse_range
from easy_oww.demo.threaded import QuietHTTPServer, ThreadedServer

API_PREFIX = "/apiv2"
DEFAULT_PAGE_SIZE = 15
MAX_PAGE_SIZE = 150

# Bodies as Freesound's code writes them.
NOT_FOUND_SOUND = "Not found."  # DRF Http404 from the sound/user/pack instance views
NOT_FOUND_PAGE = "Not found"  # apiv2 NotFoundException() from search and similar views
INVALID_PAGE = "Invalid page."  # DRF PageNumberPagination (user/pack sound lists)
INVALID_TOKEN = "Invalid token"
NO_CREDENTIALS = "Authentication credentials were not provided."
THROTTLE_MSG = "Request was throttled because of exceeding a request limit rate ({rate})"
OAUTH_REQUIRED = "This resource requires OAuth2 authentication."

SORTS = {
    "score": None,
    "duration_desc": ("duration", True),
    "duration_asc": ("duration", False),
    "created_desc": ("created", True),
    "created_asc": ("created", False),
    "downloads_desc": ("num_downloads", True),
    "downloads_asc": ("num_downloads", False),
    "rating_desc": ("avg_rating", True),
    "rating_asc": ("avg_rating", False),
}

# Canonical field order (the serializer's, not the request's).
ALL_FIELDS = (
    "id", "url", "name", "tags", "description", "category", "subcategory", "category_code",
    "category_is_user_provided", "geotag", "created", "license", "type", "channels", "filesize",
    "bitrate", "bitdepth", "duration", "samplerate", "md5", "username", "pack", "pack_name",
    "download", "bookmark", "previews", "images", "num_downloads", "avg_rating", "num_ratings",
    "rate", "comments", "num_comments", "comment", "similar_sounds", "is_explicit", "score",
)
LIST_DEFAULT_FIELDS = ("id", "name", "tags", "username", "license")
DETAIL_DEFAULT_FIELDS = tuple(f for f in ALL_FIELDS if f != "score")


class ApiError(Exception):
    """An answer other than 200 from an API handler."""

    def __init__(self, status: int, detail: str, headers: tuple = ()) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def _my_quote(s: str) -> str:
    # Freesound's construct_link quoting (apiv2/forms.py my_quote)
    return quote(s, safe=",:[]*+()'")


NGINX_ERROR = ("<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>"
               "{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n"
               "</html>\r\n")
DJANGO_404 = ("<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n"
              "<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this "
              "server.</p>\n</body>\n</html>\n")


class _Response:
    __slots__ = ("status", "body", "ctype", "headers", "endpoint")

    def __init__(self, status: int, body: bytes, ctype: str = "application/json",
                 headers: tuple = (), endpoint: str = "") -> None:
        self.status = status
        self.body = body
        self.ctype = ctype
        self.headers = headers
        self.endpoint = endpoint


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server_version = "nginx"
    sys_version = ""
    timeout = 120
    server: QuietHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def do_GET(self) -> None:  # noqa: N802
        self.server.owner._handle(self, "GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self.server.owner._handle(self, "HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self.server.owner._handle(self, "POST")

    def do_OPTIONS(self) -> None:  # noqa: N802
        self.server.owner._handle(self, "OPTIONS")

    def version_string(self) -> str:
        return "nginx"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Window:
    """Sliding-window request history (DRF SimpleRateThrottle semantics)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.hist: deque[float] = deque()

    def count(self, now: float) -> int:
        while self.hist and self.hist[0] <= now - self.seconds:
            self.hist.popleft()
        return len(self.hist)


# ----------------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------------


class FreesoundStandin(ThreadedServer):
    """Freesound APIv2 on 127.0.0.1 over a generated corpus. See the package docstring.

    Args:
        n_sounds: live sounds in the corpus (ids random and unique in 1..10^6).
        seed: everything (corpus, vectors, previews) is deterministic from it.
        api_key: the valid key (a string, or an iterable of valid keys; limits are per key).
        per_minute / per_day: request limits per key; None = unlimited.
        n_deleted: extra sounds that exist only in similarity lists (404 as instances).
        clock: monotonic seconds for the rate windows (default time.monotonic); ``advance()``
            adds an offset on top of it.
        preview_seconds: length cap of the generated preview audio.
    """

    thread_name = "freesound-standin"

    def __init__(self, n_sounds: int = 3000, seed: int = 0, api_key: Any = "test-key",
                 per_minute: int | None = None, per_day: int | None = None, *,
                 n_deleted: int = 20, clock: Callable[[], float] | None = None,
                 preview_seconds: float = 2.0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.seed = seed
        self.keys = {api_key} if isinstance(api_key, str) else set(api_key)
        self.api_key = api_key if isinstance(api_key, str) else sorted(self.keys)[0]
        self.per_minute = per_minute
        self.per_day = per_day
        self.preview_seconds = preview_seconds
        self.preview_delay = 0.0  # seconds each preview/image answer waits (a slow CDN)
        self._clock = clock or time.monotonic
        self._offset = 0.0
        self._init_threaded(host, port)
        self.corpus = Corpus(n_sounds, seed, n_deleted)
        self._lock = threading.RLock()  # re-entrant as it always was; ThreadedServer makes a Lock
        self._deleted: set[int] = set(self.corpus.initially_deleted)
        self._windows: dict[str, tuple[_Window, _Window]] = {}
        self._faults: deque[tuple[str, Any]] = deque()
        self._malformed: deque[str] = deque()
        self._preview_cache: collections.OrderedDict = collections.OrderedDict()
        self.reset_stats()

    # -- lifecycle (start, stop and the context manager are ThreadedServer's) ------------------

    def _make_server(self) -> QuietHTTPServer:
        return QuietHTTPServer((self.host, self._requested_port), self, _Handler)

    @property
    def origin(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the stand-in is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API root, e.g. ``http://127.0.0.1:PORT/apiv2`` (the client's ``--api-url``)."""
        return self.origin + API_PREFIX

    # -- corpus truth for assertions -------------------------------------------------------

    def sound_ids(self) -> list[int]:
        """Live sound ids (instances answer 200), ascending."""
        with self._lock:
            return [s["id"] for s in self.corpus.sounds if s["id"] not in self._deleted]

    def deleted_ids(self) -> set[int]:
        with self._lock:
            return set(self._deleted)

    def similar_ids(self, sound_id: int, space: str = DEFAULT_SIMILARITY_SPACE) -> list[int]:
        """The similar list of a sound, in rank order (deleted sounds included)."""
        return [s["id"] for s, _ in self.corpus.similar(sound_id, space)]

    def sound(self, sound_id: int, fields: str | None = None) -> dict:
        """A sound as the instance endpoint renders it (``fields`` as the API parameter)."""
        names = _parse_fields(fields, DETAIL_DEFAULT_FIELDS)
        return self._render(self.corpus.by_id[sound_id], names)

    def preview_bytes(self, sound_id: int, kind: str = "hq-mp3") -> bytes:
        quality, ext = kind.split("-")
        return self._preview(self.corpus.by_id[sound_id], quality, ext)

    # -- control -----------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the rate-limit clock forward (e.g. ``advance(60)`` opens a new minute)."""
        with self._lock:
            self._offset += float(seconds)

    def set_limits(self, per_minute: int | None = None, per_day: int | None = None) -> None:
        with self._lock:
            self.per_minute, self.per_day = per_minute, per_day

    def reset_minute_window(self) -> None:
        """Forget the last minute's requests for every key (as if a minute had passed)."""
        with self._lock:
            for minute, _ in self._windows.values():
                minute.hist.clear()

    def reset_day_window(self) -> None:
        with self._lock:
            for minute, day in self._windows.values():
                minute.hist.clear()
                day.hist.clear()

    def exhaust_minute(self, key: str | None = None) -> None:
        self._exhaust(0, self.per_minute, key)

    def exhaust_day(self, key: str | None = None) -> None:
        """Use up the daily budget of ``key`` (default: every valid key)."""
        self._exhaust(1, self.per_day, key)

    def _exhaust(self, which: int, limit: int | None, key: str | None) -> None:
        if limit is None:
            raise ValueError("no such limit is set on this stand-in (per_minute/per_day=None)")
        with self._lock:
            now = self.now()
            for k in ([key] if key else sorted(self.keys)):
                w = self._window(k)[which]
                w.count(now)
                while len(w.hist) < limit:
                    w.hist.append(now)

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """The next ``n`` API requests answer ``status`` (500: JSON body; other 5xx: nginx HTML).

        Injected failures happen before authentication and do not count against the limits.
        """
        with self._lock:
            self._faults.extend([("status", int(status))] * n)

    def disconnect_next(self, n: int = 1) -> None:
        """The next ``n`` API requests get the connection closed without any answer."""
        with self._lock:
            self._faults.extend([("disconnect", None)] * n)

    def delay_next(self, n: int = 1, seconds: float = 1.0) -> None:
        """The next ``n`` API requests are answered after ``seconds`` (client timeout tests)."""
        with self._lock:
            self._faults.extend([("delay", float(seconds))] * n)

    def malformed_next(self, n: int = 1, kind: str = "json") -> None:
        """The next ``n`` successful API answers are malformed.

        kind: ``"json"`` (a 200 whose body is cut JSON), ``"missing_id"`` (one results item,
        or the instance, lacks ``id``), ``"null_item"`` (one results item is ``null``, as the
        real API does when its index and database disagree).
        """
        if kind not in ("json", "missing_id", "null_item"):
            raise ValueError(f"unknown malformed kind {kind!r}")
        with self._lock:
            self._malformed.extend([kind] * n)

    def delete_sound(self, sound_id: int) -> None:
        """Delete a sound now: 404 as an instance, gone from text search, still in similar lists."""
        if sound_id not in self.corpus.by_id:
            raise KeyError(sound_id)
        with self._lock:
            self._deleted.add(sound_id)

    def reset_deleted(self) -> None:
        """Only the corpus's own deleted sounds again (undo `delete_sound`)."""
        with self._lock:
            self._deleted = set(self.corpus.initially_deleted)

    # -- accounting --------------------------------------------------------------------------

    def reset_stats(self) -> None:
        with self._lock:
            self._stats: Counter = Counter()
            self._by_endpoint: Counter = Counter()
            self._by_status: Counter = Counter()
            self._requested: Counter = Counter()
            self._returned: Counter = Counter()
            self._log: list[dict] = []

    @property
    def stats(self) -> dict:
        """Snapshot: total, api, by_endpoint, by_status, token_in_url, unauthorized, throttled,
        throttled_minute, throttled_day, injected_faults, redirects, previews."""
        with self._lock:
            out = {k: self._stats.get(k, 0) for k in (
                "total", "api", "token_in_url", "unauthorized", "throttled", "throttled_minute",
                "throttled_day", "injected_faults", "malformed", "redirects", "previews")}
            out["by_endpoint"] = dict(self._by_endpoint)
            out["by_status"] = {str(k): v for k, v in self._by_status.items()}
            return out

    def requested_sound_ids(self) -> set[int]:
        """Every sound id asked about specifically: /sounds/<id>/, /sounds/<id>/similar/,
        similar_to=<id>, ids named in an ``id:`` filter (whatever the answer was)."""
        with self._lock:
            return set(self._requested)

    def requested_sound_id_counts(self) -> Counter:
        with self._lock:
            return Counter(self._requested)

    def returned_sound_ids(self) -> set[int]:
        """Every sound id that appeared in a 200 answer (lists and instances)."""
        with self._lock:
            return set(self._returned)

    def request_log(self) -> list[dict]:
        """One dict per request: method, url (absolute, as sent), path, params, headers,
        endpoint, status, t (stand-in clock)."""
        with self._lock:
            return [dict(r) for r in self._log]

    def urls_containing(self, text: str) -> list[str]:
        with self._lock:
            return [r["url"] for r in self._log if text in r["url"]]

    def stats_document(self, include_log: bool = False) -> dict:
        doc = self.stats
        with self._lock:
            doc["requested_sound_ids"] = sorted(self._requested)
            doc["requested_sound_id_counts"] = {str(k): v for k, v in self._requested.items()}
            doc["returned_sound_ids"] = sorted(self._returned)
            doc["deleted_ids"] = sorted(self._deleted)
            if include_log:
                doc["log"] = [dict(r) for r in self._log]
        return doc

    # -- request handling --------------------------------------------------------------------

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _window(self, key: str) -> tuple[_Window, _Window]:
        w = self._windows.get(key)
        if w is None:
            w = self._windows[key] = (_Window(60.0), _Window(86400.0))
        return w

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body_in = h.rfile.read(length) if length > 0 else b""
        split = urlsplit(h.path)
        path = split.path
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        url = self.origin + h.path
        record = {"method": method, "url": url, "path": path, "params": params,
                  "headers": dict(h.headers.items()), "endpoint": "", "status": 0,
                  "t": self.now()}
        internal = path.startswith("/__")
        delay = 0.0
        try:
            if internal:
                resp = self._internal(path, method, body_in)
            elif path.startswith("/previews/") or path.startswith("/displays/"):
                with self._lock:
                    self._stats["total"] += 1
                    self._log.append(record)
                resp = self._media(path, h.headers.get("Range"), method)
                delay = self.preview_delay
            else:
                with self._lock:
                    self._stats["total"] += 1
                    self._log.append(record)
                resp, delay = self._api(path, method, params, h.headers, record)
        except _Disconnect:
            record["status"] = -1
            record["endpoint"] = record["endpoint"] or "fault"
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if not internal:
            with self._lock:
                record["status"] = resp.status
                record["endpoint"] = record["endpoint"] or resp.endpoint
                self._by_endpoint[record["endpoint"]] += 1
                self._by_status[resp.status] += 1
        if delay:
            time.sleep(delay)
        try:
            h.send_response(resp.status)
            h.send_header("Content-Type", resp.ctype)
            h.send_header("Content-Length", str(len(resp.body)))
            for k, v in resp.headers:
                h.send_header(k, v)
            h.end_headers()
            if method != "HEAD":
                h.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    # internal endpoints (no auth, not counted)
    def _internal(self, path: str, method: str, body: bytes) -> _Response:
        if path == "/__stats":
            return _Response(200, _json_bytes(self.stats_document()))
        if path == "/__log":
            return _Response(200, _json_bytes(self.request_log()))
        if path == "/__control" and method == "POST":
            try:
                doc = json.loads(body or b"{}")
                action = doc.pop("action")
                if action not in CONTROL_ACTIONS:
                    raise ValueError(f"unknown action {action!r}")
                getattr(self, action)(**doc)
            except (ValueError, TypeError, KeyError) as exc:
                return _Response(400, _json_bytes({"detail": str(exc)}))
            return _Response(200, _json_bytes({"ok": True}))
        return _Response(404, DJANGO_404.encode(), "text/html")

    def _api(self, path: str, method: str, params: dict, headers: Any,
             record: dict) -> tuple[_Response, float]:
        with self._lock:
            self._stats["api"] += 1
            if "token" in params:
                self._stats["token_in_url"] += 1
        route, args = _route(path)
        record["endpoint"] = {"search_text": "search"}.get(route or "unknown", route or "unknown")
        self._note_requested_ids(route, args, params)

        # Django CommonMiddleware: APPEND_SLASH
        if route is None and not path.endswith("/") and _route(path + "/")[0] is not None:
            with self._lock:
                self._stats["redirects"] += 1
            query = urlsplit(record["url"]).query
            loc = path + "/" + ("?" + query if query else "")
            return _Response(301, b"", "text/html; charset=utf-8", (("Location", loc),),
                             "redirect"), 0.0

        delay = 0.0
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            with self._lock:
                self._stats["injected_faults"] += 1
            kind, arg = fault
            if kind == "disconnect":
                raise _Disconnect()
            if kind == "delay":
                delay = arg
            else:
                return _error_response(arg), 0.0

        if route is None:
            return _Response(404, DJANGO_404.encode(), "text/html"), delay

        # authentication (header first, then ?token=), as apiv2/authentication.py
        auth = (headers.get("Authorization") or "").split()
        if not auth and params.get("token"):
            auth = ["Token", params["token"]]
        key = None
        if auth and auth[0].lower() == "token":
            if len(auth) != 2 or auth[1] not in self.keys:
                msg = INVALID_TOKEN if len(auth) == 2 else (
                    "Invalid token header. No credentials provided." if len(auth) == 1 else
                    "Invalid token header. Token string should not contain spaces.")
                with self._lock:
                    self._stats["unauthorized"] += 1
                return _detail(401, msg, (("WWW-Authenticate", "Token"),)), delay
            key = auth[1]
        if key is None:
            with self._lock:
                self._stats["unauthorized"] += 1
            return _detail(401, NO_CREDENTIALS, (("WWW-Authenticate", "Token"),)), delay

        if method not in ("GET", "HEAD", "OPTIONS"):
            return _detail(405, f'Method "{method}" not allowed.'), delay

        # throttling: burst (minute) then sustained (day), as apiv2/throttling.py
        with self._lock:
            now = self.now()
            minute, day = self._window(key)
            if self.per_minute is not None:
                if minute.count(now) >= self.per_minute:
                    self._stats["throttled"] += 1
                    self._stats["throttled_minute"] += 1
                    return _detail(429, THROTTLE_MSG.format(rate=f"{self.per_minute}/minute")), \
                        delay
                minute.hist.append(now)
            if self.per_day is not None:
                if day.count(now) >= self.per_day:
                    self._stats["throttled"] += 1
                    self._stats["throttled_day"] += 1
                    return _detail(429, THROTTLE_MSG.format(rate=f"{self.per_day}/day")), delay
                day.hist.append(now)

        try:
            doc = getattr(self, "_ep_" + route)(params, *args)
        except ApiError as exc:
            return _detail(exc.status, exc.detail, exc.headers), delay
        except FilterError as exc:
            return _detail(400, f"Invalid filter: {exc}"), delay

        # accounting of returned ids, then maybe a malformed answer
        with self._lock:
            if isinstance(doc.get("results"), list):
                items = doc["results"]
            else:
                items = [doc] if route == "sound" else []
            for it in items:
                if isinstance(it, dict) and isinstance(it.get("id"), int):
                    self._returned[it["id"]] += 1
            kind = self._malformed.popleft() if self._malformed else None
            if kind:
                self._stats["malformed"] += 1
        body = _json_bytes(doc)
        if kind == "json":
            body = body[: max(1, len(body) // 2)]
        elif kind in ("missing_id", "null_item"):
            target = doc.get("results") if isinstance(doc.get("results"), list) else None
            if target:
                if kind == "null_item":
                    target[len(target) // 2] = None
                else:
                    target[len(target) // 2].pop("id", None)
            else:
                doc.pop("id", None)
            body = _json_bytes(doc)
        return _Response(200, body, "application/json",
                         (("Allow", "GET, HEAD, OPTIONS"), ("Vary", "Accept, Authorization"))), \
            delay

    def _note_requested_ids(self, route: str | None, args: tuple, params: dict) -> None:
        ids: list[int] = []
        if route in ("sound", "similar", "download"):
            ids.append(int(args[0]))
        if route in ("search", "search_text"):
            sim = params.get("similar_to", "").strip()
            if sim.isdigit():
                ids.append(int(sim))
            if params.get("filter"):
                ids += ids_in_filter(params["filter"])
        if ids:
            with self._lock:
                self._requested.update(ids)

    # -- endpoints ---------------------------------------------------------------------------

    def _ep_search(self, params: dict) -> dict:
        return self._search(params, "/apiv2/search/")

    def _ep_search_text(self, params: dict) -> dict:
        return self._search(params, "/apiv2/search/text/")

    def _search(self, params: dict, path: str) -> dict:
        page, page_size = _paging(params)
        query = params.get("query", "")
        filt = params.get("filter")
        if "filter" in params and not (filt or "").strip():
            raise ApiError(400, "Invalid filter.")
        sort = params.get("sort", "")
        sort_key = sort if sort in SORTS else "score"
        fields = _parse_fields(params.get("fields"), LIST_DEFAULT_FIELDS)
        pred = compile_filter(filt)[0] if filt else None
        scorer = compile_query(query)
        similar_to = params.get("similar_to", "").strip()
        space = self._space(params, bool(similar_to))

        with self._lock:
            deleted = set(self._deleted)
        cands: list[tuple[dict, float | None]]
        if similar_to:
            cands = self._similar_candidates(similar_to, space, deleted)
            if scorer is not None:
                cands = [(s, sc) for s, sc in cands if scorer(s) is not None]
        else:
            if scorer is None:
                cands = [(s, None) for s in self.corpus.sounds if s["id"] not in deleted]
            else:
                cands = []
                for s in self.corpus.sounds:
                    if s["id"] in deleted:
                        continue
                    sc = scorer(s)
                    if sc is not None:
                        cands.append((s, sc))
        if pred is not None:
            cands = [c for c in cands if pred(c[0])]
        if not similar_to:
            if SORTS[sort_key] is None:
                if scorer is not None:
                    cands.sort(key=lambda c: (-c[1], c[0]["idx"]))
            else:
                attr, desc = SORTS[sort_key]
                second = "num_ratings" if attr == "avg_rating" else None
                cands.sort(key=lambda c: (c[0][attr], c[0][second] if second else 0,
                                          -c[0]["idx"] if desc else c[0]["idx"]),
                           reverse=desc)
        extras: dict[int, dict] = {}
        group = params.get("group_by_pack") == "1"
        link_params = [("query", query)]
        if filt:
            link_params.append(("filter", filt))
        if params.get("weights") is not None:
            link_params.append(("weights", params["weights"]))
        if sort_key != "score":
            link_params.append(("sort", sort_key))
        if similar_to:
            link_params.append(("similar_to", similar_to))
            if "similarity_space" in params:
                link_params.append(("similarity_space", space))
        tail = []
        if params.get("fields"):
            tail.append(("fields", params["fields"]))
        if group:
            tail.append(("group_by_pack", "1"))
            cands, extras = self._group_by_pack(cands, link_params, page_size, params)
        return self._page(cands, page, page_size, fields, link_params, tail, path, extras,
                          with_score=scorer is not None or bool(similar_to))

    def _ep_sound(self, params: dict, sid: str) -> dict:
        s = self.corpus.by_id.get(int(sid))
        with self._lock:
            gone = s is None or s["id"] in self._deleted
        if gone:
            raise ApiError(404, NOT_FOUND_SOUND)
        return self._render(s, _parse_fields(params.get("fields"), DETAIL_DEFAULT_FIELDS))

    def _ep_similar(self, params: dict, sid: str) -> dict:
        page, page_size = _paging(params)
        s = self.corpus.by_id.get(int(sid))
        with self._lock:
            gone = s is None or s["id"] in self._deleted
        if gone:
            raise ApiError(404, NOT_FOUND_PAGE)
        space = self._space(params, True)
        fields = _parse_fields(params.get("fields"), LIST_DEFAULT_FIELDS)
        cands = self.corpus.similar(s["id"], space)
        link_params = []
        if "similarity_space" in params:
            link_params.append(("similarity_space", space))
        tail = [("fields", params["fields"])] if params.get("fields") else []
        return self._page(cands, page, page_size, fields, link_params, tail,
                          f"/apiv2/sounds/{s['id']}/similar/", {}, with_score=True)

    def _ep_download(self, params: dict, sid: str) -> dict:
        raise ApiError(401, OAUTH_REQUIRED)

    def _ep_user(self, params: dict, name: str) -> dict:
        u = self.corpus.user_by_name.get(name)
        if u is None:
            raise ApiError(404, NOT_FOUND_SOUND)
        base, origin = self.base_url, self.origin
        qname = quote(name, safe="")
        av = f"{origin}/avatars/{u['id'] // 1000}/{u['id']}_"
        with self._lock:
            n_sounds = sum(1 for i in u["sounds"] if i not in self._deleted)
        return {
            "url": f"{origin}/people/{qname}/", "username": name, "about": u["about"],
            "home_page": u["home_page"],
            "avatar": {"small": av + "S.jpg", "medium": av + "M.jpg", "large": av + "L.jpg"},
            "date_joined": u["date_joined"].isoformat(), "num_sounds": n_sounds,
            "sounds": f"{base}/users/{qname}/sounds/", "num_packs": len(u["packs"]),
            "packs": f"{base}/users/{qname}/packs/", "num_posts": u["num_posts"],
            "num_comments": u["num_comments"],
        }

    def _ep_user_sounds(self, params: dict, name: str) -> dict:
        u = self.corpus.user_by_name.get(name)
        if u is None:
            raise ApiError(404, NOT_FOUND_PAGE)
        return self._drf_list(params, u["sounds"], f"/apiv2/users/{quote(name, safe='')}/sounds/")

    def _ep_user_packs(self, params: dict, name: str) -> dict:
        u = self.corpus.user_by_name.get(name)
        if u is None:
            raise ApiError(404, NOT_FOUND_PAGE)
        return self._drf_list(params, u["packs"], f"/apiv2/users/{quote(name, safe='')}/packs/",
                              packs=True)

    def _ep_pack(self, params: dict, pid: str) -> dict:
        p = self.corpus.packs.get(int(pid))
        if p is None:
            raise ApiError(404, NOT_FOUND_SOUND)
        with self._lock:
            n_sounds = sum(1 for i in p["sounds"] if i not in self._deleted)
        return {
            "id": p["id"],
            "url": f"{self.origin}/people/{quote(p['username'], safe='')}/packs/{p['id']}/",
            "description": p["description"], "created": p["created"].isoformat(),
            "name": p["name"], "username": p["username"], "num_sounds": n_sounds,
            "sounds": f"{self.base_url}/packs/{p['id']}/sounds/",
            "num_downloads": p["num_downloads"],
        }

    def _ep_pack_sounds(self, params: dict, pid: str) -> dict:
        p = self.corpus.packs.get(int(pid))
        if p is None:
            raise ApiError(404, NOT_FOUND_PAGE)
        return self._drf_list(params, p["sounds"], f"/apiv2/packs/{p['id']}/sounds/")

    # -- endpoint helpers ------------------------------------------------------------------

    def _space(self, params: dict, needed: bool) -> str:
        space = params.get("similarity_space") or DEFAULT_SIMILARITY_SPACE
        if needed and space not in SIMILARITY_SPACES:
            raise ApiError(400, f"Invalid similarity space '{space}'. Available spaces are: "
                                + ", ".join(SIMILARITY_SPACES) + ".")
        return space

    def _similar_candidates(self, target: str, space: str,
                            deleted: set[int]) -> list[tuple[dict, float | None]]:
        if target.isdigit():
            sid = int(target)
            if sid not in self.corpus.by_id or sid in deleted:
                raise ApiError(404, NOT_FOUND_PAGE)
            return list(self.corpus.similar(sid, space))
        try:
            vec = np.array(json.loads(target if target.startswith("[") else f"[{target}]"),
                           dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise ApiError(400, "Invalid similar_to parameter.") from exc
        if vec.shape != (VECTOR_DIM,):
            raise ApiError(400, f"Invalid similar_to vector: the {space} space of this stand-in "
                                f"has {VECTOR_DIM} dimensions.")
        return self.corpus.nearest_to_vector(vec, space)

    def _group_by_pack(self, cands, link_params, page_size, params):
        kept, extras, first_of = [], {}, {}
        counts: Counter = Counter(c[0]["pack_id"] for c in cands if c[0]["pack_id"])
        for c in cands:
            pid = c[0]["pack_id"]
            if pid is None:
                kept.append(c)
            elif pid not in first_of:
                first_of[pid] = c[0]["id"]
                kept.append(c)
                if counts[pid] > 1:
                    gp = f'grouping_pack:"{pid}_{c[0]["pack_name"]}"'
                    qs = "".join(f"&{k}={_my_quote(v)}" for k, v in
                                 [(k, v) for k, v in link_params if k != "filter"]
                                 + [("filter", gp), ("page", "1")])
                    if page_size != DEFAULT_PAGE_SIZE:
                        qs += f"&page_size={page_size}"
                    if params.get("fields"):
                        qs += f"&fields={_my_quote(params['fields'])}"
                    qs += "&group_by_pack=0"
                    extras[c[0]["id"]] = {
                        "more_from_same_pack": f"{self.base_url}/search/?{qs}",
                        "n_from_same_pack": counts[pid],
                    }
        return kept, extras

    def _page(self, cands, page, page_size, fields, link_params, tail, path, extras,
              with_score: bool) -> dict:
        count = len(cands)
        num_pages = max(1, -(-count // page_size))
        if page > num_pages and count != 0:
            raise ApiError(404, NOT_FOUND_PAGE)

        def link(p: int) -> str:
            parts = list(link_params) + [("page", str(p))]
            if page_size != DEFAULT_PAGE_SIZE:
                parts.append(("page_size", str(page_size)))
            parts += tail
            return f"{self.origin}{path}?" + "".join(f"&{k}={_my_quote(v)}" for k, v in parts)

        chunk = cands[(page - 1) * page_size: page * page_size]
        results = []
        for s, sc in chunk:
            item = self._render(s, fields, score=sc if with_score else None)
            item.update(extras.get(s["id"], {}))
            results.append(item)
        return {
            "count": count,
            "previous": link(page - 1) if page > 1 and count else None,
            "next": link(page + 1) if page < num_pages and count else None,
            "results": results,
        }

    def _drf_list(self, params: dict, ids: list[int], path: str, packs: bool = False) -> dict:
        with self._lock:
            if packs:
                live = [self.corpus.packs[i] for i in ids]
            else:
                live = [self.corpus.by_id[i] for i in ids if i not in self._deleted]
        live.sort(key=lambda s: (s["created"], s["id"]), reverse=True)
        try:
            page = int(params.get("page", "1"))
        except ValueError:
            raise ApiError(404, INVALID_PAGE) from None
        try:
            page_size = min(int(params.get("page_size", DEFAULT_PAGE_SIZE)), MAX_PAGE_SIZE)
        except ValueError:
            page_size = DEFAULT_PAGE_SIZE
        if page_size < 1:
            page_size = DEFAULT_PAGE_SIZE
        num_pages = max(1, -(-len(live) // page_size))
        if page < 1 or page > num_pages:
            raise ApiError(404, INVALID_PAGE)
        keep = [(k, v) for k, v in params.items() if k not in ("page", "token")]

        def link(p: int) -> str:
            q = keep + ([("page", str(p))] if p > 1 else [])
            return f"{self.origin}{path}" + ("?" + urlencode(q) if q else "")

        fields = _parse_fields(params.get("fields"), LIST_DEFAULT_FIELDS)
        chunk = live[(page - 1) * page_size: page * page_size]
        return {
            "count": len(live),
            "next": link(page + 1) if page < num_pages else None,
            "previous": link(page - 1) if page > 1 else None,
            "results": [self._ep_pack({}, str(s["id"])) if packs else self._render(s, fields)
                        for s in chunk],
        }

    def _render(self, s: dict, fields: tuple[str, ...], score: float | None = None) -> dict:
        base, origin = self.base_url, self.origin
        sid, uid = s["id"], s["user_id"]
        folder = sid // 1000
        out: dict[str, Any] = {}
        for f in fields:
            if f == "url":
                v: Any = f"{origin}/people/{quote(s['username'], safe='')}/sounds/{sid}/"
            elif f == "category":
                v = [s["category"], s["subcategory"]]
            elif f == "created":
                v = s["created"].isoformat()
            elif f == "pack":
                v = f"{base}/packs/{s['pack_id']}/" if s["pack_id"] else None
            elif f == "download":
                v = f"{base}/sounds/{sid}/download/"
            elif f == "bookmark":
                v = f"{base}/sounds/{sid}/bookmark/"
            elif f == "rate":
                v = f"{base}/sounds/{sid}/rate/"
            elif f == "comments":
                v = f"{base}/sounds/{sid}/comments/"
            elif f == "comment":
                v = f"{base}/sounds/{sid}/comment/"
            elif f == "similar_sounds":
                v = f"{base}/sounds/{sid}/similar/"
            elif f == "previews":
                p = f"{origin}/previews/{folder}/{sid}_{uid}"
                v = {"preview-hq-mp3": p + "-hq.mp3", "preview-hq-ogg": p + "-hq.ogg",
                     "preview-lq-mp3": p + "-lq.mp3", "preview-lq-ogg": p + "-lq.ogg"}
            elif f == "images":
                p = f"{origin}/displays/{folder}/{sid}_{uid}"
                v = {"waveform_m": p + "_wave_M.png", "waveform_l": p + "_wave_L.png",
                     "spectral_m": p + "_spec_M.jpg", "spectral_l": p + "_spec_L.jpg",
                     "waveform_bw_m": p + "_wave_bw_M.png", "waveform_bw_l": p + "_wave_bw_L.png",
                     "spectral_bw_m": p + "_spec_bw_M.jpg", "spectral_bw_l": p + "_spec_bw_L.jpg"}
            elif f == "score":
                v = score
            elif f == "tags":
                v = list(s["tags"])
            else:
                v = s[f]
            out[f] = v
        return out

    # -- previews and images (no key, like the CDN) --------------------------------------------

    _PREVIEW = re.compile(r"^/previews/(\d+)/(\d+)_(\d+)-(hq|lq)\.(mp3|ogg)$")
    _DISPLAY = re.compile(r"^/displays/(\d+)/(\d+)_(\d+)_(wave|spec)(?:_bw)?_([LM])\.(png|jpg)$")

    def _media(self, path: str, range_header: str | None, method: str) -> _Response:
        m = self._PREVIEW.match(path)
        kind = "preview"
        if not m:
            m = self._DISPLAY.match(path)
            kind = "image"
        if m:
            folder, sid, uid = int(m.group(1)), int(m.group(2)), int(m.group(3))
            s = self.corpus.by_id.get(sid)
            with self._lock:
                ok = (s is not None and s["id"] not in self._deleted
                      and folder == sid // 1000 and uid == s["user_id"])
                if kind == "preview":
                    self._stats["previews"] += 1
        else:
            ok = False
        if not ok:
            return _Response(404, NGINX_ERROR.format(code=404, reason="Not Found").encode(),
                             "text/html", endpoint=kind if m else "unknown")
        if kind == "preview":
            data = self._preview(s, m.group(4), m.group(5))
            ctype = "audio/mpeg" if m.group(5) == "mp3" else "audio/ogg"
        else:
            data = png(4 if m.group(5) == "M" else 8, 2, (sid % 256, uid % 256, 128))
            ctype = "image/png" if m.group(6) == "png" else "image/jpeg"
        etag = '"' + hashlib.md5(data).hexdigest() + '"'
        headers = [("ETag", etag), ("Accept-Ranges", "bytes"),
                   ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")]
        # If-Range is not looked at: a preview's bytes never change, so nginx's answer to it
        # would only differ for a client holding some other file's validator.
        span = (parse_range(range_header, len(data), inverted_unsatisfiable=True,
                            exact_syntax=True) if range_header else None)
        if span == UNSATISFIABLE:
            return _Response(416, b"", ctype, (("Content-Range", f"bytes */{len(data)}"),),
                             endpoint=kind)
        if isinstance(span, tuple):
            start, end = span
            headers.append(("Content-Range", f"bytes {start}-{end}/{len(data)}"))
            return _Response(206, data[start:end + 1], ctype, tuple(headers), endpoint=kind)
        return _Response(200, data, ctype, tuple(headers), endpoint=kind)

    def _preview(self, s: dict, quality: str, ext: str) -> bytes:
        key = (s["id"], quality, ext)
        with self._lock:
            if key in self._preview_cache:
                self._preview_cache.move_to_end(key)
                return self._preview_cache[key]
        out = preview_audio(s, self.seed, self.preview_seconds, quality, ext)
        with self._lock:
            self._preview_cache[key] = out
            while len(self._preview_cache) > 256:
                self._preview_cache.popitem(last=False)
        return out


CONTROL_ACTIONS = ("fail_next", "malformed_next", "disconnect_next", "delay_next",
                   "delete_sound", "reset_minute_window", "reset_day_window", "exhaust_minute",
                   "exhaust_day", "advance", "set_limits", "reset_stats")


class _Disconnect(Exception):
    pass


_ROUTES = (
    ("search", re.compile(r"^/apiv2/search/$")),
    ("search_text", re.compile(r"^/apiv2/search/text/$")),
    ("sound", re.compile(r"^/apiv2/sounds/(\d+)/$")),
    ("similar", re.compile(r"^/apiv2/sounds/(\d+)/similar/$")),
    ("download", re.compile(r"^/apiv2/sounds/(\d+)/download/$")),
    ("user", re.compile(r"^/apiv2/users/([^/]+)/$")),
    ("user_sounds", re.compile(r"^/apiv2/users/([^/]+)/sounds/$")),
    ("user_packs", re.compile(r"^/apiv2/users/([^/]+)/packs/$")),
    ("pack", re.compile(r"^/apiv2/packs/(\d+)/$")),
    ("pack_sounds", re.compile(r"^/apiv2/packs/(\d+)/sounds/$")),
)


def _route(path: str) -> tuple[str | None, tuple]:
    for name, rx in _ROUTES:
        m = rx.match(path)
        if m:
            args = tuple(unquote(g) for g in m.groups())
            return name, args
    return None, ()


def _paging(params: dict) -> tuple[int, int]:
    """page/page_size as apiv2/forms.py cleans them."""
    try:
        page = int(params.get("page", ""))
    except ValueError:
        page = 1
    try:
        page_size = min(int(params.get("page_size", "")), MAX_PAGE_SIZE)
    except ValueError:
        page_size = DEFAULT_PAGE_SIZE
    if page < 1 or page_size < 1:
        raise ApiError(404, NOT_FOUND_PAGE)
    return page, page_size


def _parse_fields(raw: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if not raw:
        return default
    if raw.strip() == "*":
        return ALL_FIELDS
    wanted = {f.strip() for f in raw.split(",")}
    return tuple(f for f in ALL_FIELDS if f in wanted)


def _detail(status: int, detail: str, headers: tuple = ()) -> _Response:
    return _Response(status, _json_bytes({"detail": detail}), "application/json", headers)


def _error_response(status: int) -> _Response:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    if status == 500:
        return _detail(500, "Server error")
    return _Response(status, NGINX_ERROR.format(code=status, reason=reason).encode(),
                     "text/html")
