"""Freesound APIv2 client: one urllib3 pool, explicit timeouts, a shared request budget.

The key travels only in the ``Authorization: Token …`` header. It is never written anywhere:
the budget file is named after a fingerprint (a salted sha256 prefix), and that fingerprint is
all the library remembers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import filelock
import urllib3

from easy_oww.atomic import atomic_write_text
from easy_oww.freesound.errors import (
    ApiUnavailableError,
    ApiUnreachableError,
    BudgetExhaustedError,
    KeyRefusedError,
    MalformedAnswerError,
    MissingKeyError,
    SoundNotFoundError,
)
from easy_oww.transfer.retry import (
    TRANSPORT_ERRORS,
    RetryableError,
    RetryPolicy,
    ServerBusy,
    Unreachable,
    parse_retry_after,
    server_busy,
    transport_error,
)
from easy_oww.workspace import state_dir

DEFAULT_API_URL = "https://freesound.org/apiv2"
ENV_API_URL = "FREESOUND_API_URL"
ENV_API_KEY = "FREESOUND_API_KEY"
KEY_APPLY_URL = "https://freesound.org/apiv2/apply/"
DEFAULT_PER_MINUTE = 60
DEFAULT_PER_DAY = 2000
MAX_PAGE_SIZE = 150

# Every field the library keeps, asked for in each list answer so that metadata never costs
# one request per sample.
FIELDS = (
    "id,url,name,tags,description,category,subcategory,geotag,created,license,type,channels,"
    "filesize,bitrate,bitdepth,duration,samplerate,md5,username,pack,pack_name,previews,images,"
    "num_downloads,avg_rating,num_ratings,num_comments,is_explicit"
)

LICENSES = {
    "cc0": "Creative Commons 0",
    "by": "Attribution",
    "by-nc": "Attribution NonCommercial",
    "sampling+": "Sampling+",
}

Log = Callable[[str], None]


def key_fingerprint(api_key: str) -> str:
    """A name for the key that cannot be turned back into it (budget file, library meta)."""
    return hashlib.sha256(b"easy-oww/freesound-key\0" + api_key.encode("utf-8")).hexdigest()[:16]


def read_api_key(key_file: str | os.PathLike[str] | None = None) -> str:
    """The key from `key_file` or $FREESOUND_API_KEY; MissingKeyError when neither has one
    (``key_file`` on the error says which was asked for)."""
    if key_file:
        try:
            key = Path(key_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise MissingKeyError(
                f"cannot read the API key file {key_file} ({exc.strerror}); check the path"
            ) from None
        if not key:
            raise MissingKeyError(f"the API key file {key_file} is empty; put the key in it")
        return key
    key = os.environ.get(ENV_API_KEY, "").strip()
    if not key:
        raise MissingKeyError(
            f"no Freesound API key: set {ENV_API_KEY} (get a key at {KEY_APPLY_URL})"
        )
    return key


def next_utc_midnight(now: float | None = None) -> dt.datetime:
    moment = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.timezone.utc)
    return (moment + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def iso_z(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class RateBudget:
    """Per-minute rate limit and daily request budget for one API key, shared by processes.

    Kept in ``<state dir>/freesound_budget_<fingerprint>.json`` (written atomically under a
    file lock), so every run and every library using the key draw from the same budget. The
    day is the UTC day, as Freesound counts it.
    """

    def __init__(
        self,
        fingerprint: str,
        *,
        per_minute: int = DEFAULT_PER_MINUTE,
        per_day: int = DEFAULT_PER_DAY,
        folder: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if per_minute < 1 or per_day < 1:
            raise ValueError("per_minute and per_day must be at least 1")
        self.fingerprint = fingerprint
        self.per_minute = per_minute
        self.per_day = per_day
        self.folder = Path(folder) if folder else state_dir()
        self.path = self.folder / f"freesound_budget_{fingerprint}.json"
        self._file_lock = filelock.FileLock(str(self.path) + ".lock")
        self._thread_lock = threading.Lock()
        self._clock = clock

    @classmethod
    def for_key(cls, api_key: str, **kwargs: Any) -> RateBudget:
        return cls(key_fingerprint(api_key), **kwargs)

    # -- state file
    def _today(self, now: float) -> str:
        return dt.datetime.fromtimestamp(now, dt.timezone.utc).strftime("%Y-%m-%d")

    def _load(self, now: float) -> dict[str, Any]:
        state: dict[str, Any] = {}
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(state, dict):
                state = {}
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            state = {}
        today = self._today(now)
        if state.get("day") != today:
            state = {"day": today, "used": 0, "exhausted": False, "recent": []}
        recent = [t for t in state.get("recent", []) if isinstance(t, (int, float))]
        state["recent"] = [t for t in recent if now - t < 60.0]
        state.setdefault("used", 0)
        state.setdefault("exhausted", False)
        return state

    def _save(self, state: dict[str, Any]) -> None:
        state["fingerprint"] = self.fingerprint
        state["daily_budget"] = self.per_day
        atomic_write_text(self.path, json.dumps(state, sort_keys=True))

    def _locked(self) -> filelock.BaseFileLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self._file_lock

    # -- public
    def resets_at(self, now: float | None = None) -> str:
        return iso_z(next_utc_midnight(self._clock() if now is None else now))

    def _exhausted_error(self, now: float, state: dict[str, Any]) -> BudgetExhaustedError:
        reset = next_utc_midnight(now)
        wait = reset - dt.datetime.fromtimestamp(now, dt.timezone.utc)
        hours, rest = divmod(int(wait.total_seconds()), 3600)
        used = int(state["used"])
        if state["exhausted"]:  # Freesound said so: the rest were spent elsewhere
            counts = (f"Freesound says this key's daily limit is reached; "
                      f"{used} {'request' if used == 1 else 'requests'} from here today")
        else:
            counts = f"{used}/{self.per_day} today for this key"
        return BudgetExhaustedError(
            f"daily Freesound request budget used up ({counts}); it comes back at "
            f"{iso_z(reset)} (in {hours} h {rest // 60} min); everything so far is saved, "
            "run again then",
            resets_at=iso_z(reset),
        )

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Take one request from the budget, waiting for the per-minute window if needed.

        Returns False if `stop` was set while waiting. Raises BudgetExhaustedError when the
        day's budget is spent (by us or, as the server said, by anyone using the key).
        """
        while True:
            with self._thread_lock, self._locked():
                now = self._clock()
                state = self._load(now)
                if state["exhausted"] or state["used"] >= self.per_day:
                    raise self._exhausted_error(now, state)
                recent = state["recent"]
                if len(recent) < self.per_minute:
                    recent.append(now)
                    state["used"] += 1
                    self._save(state)
                    return True
                wait = max(0.01, min(recent) + 60.0 - now)
            if stop is not None:
                if stop.wait(wait):
                    return False
            else:
                time.sleep(wait)

    def refund(self) -> None:
        """Give back a request that never reached the server (no connection was made), so an
        offline run does not spend the day's budget."""
        with self._thread_lock, self._locked():
            state = self._load(self._clock())
            if state["used"] > 0:  # 0 after a new UTC day began meanwhile: nothing to give
                state["used"] -= 1
                if state["recent"]:
                    state["recent"].remove(max(state["recent"]))
                self._save(state)

    def exhaust(self) -> BudgetExhaustedError:
        """The server said the daily limit is reached: remember it for every process."""
        with self._thread_lock, self._locked():
            now = self._clock()
            state = self._load(now)
            state["exhausted"] = True
            self._save(state)
            return self._exhausted_error(now, state)

    def status(self) -> dict[str, Any]:
        now = self._clock()
        try:
            with self._thread_lock, self._locked():
                state = self._load(now)
        except OSError:
            state = {"used": 0, "exhausted": False}
        used = int(state["used"])
        left = 0 if state["exhausted"] else max(0, self.per_day - used)
        return {"requests_today": used, "daily_budget": self.per_day, "budget_left": left,
                "budget_resets_at": self.resets_at(now)}


def budget_status(fingerprint: str | None, *, folder: Path | None = None) -> dict[str, Any]:
    """Today's use of the daily budget (requests_today, daily_budget, budget_resets_at),
    without taking a request: of the key in $FREESOUND_API_KEY if set, else of the key with
    `fingerprint` (the one a library remembers), with the daily budget its last run saved."""
    key = os.environ.get(ENV_API_KEY, "").strip()
    fingerprint = key_fingerprint(key) if key else fingerprint
    if not fingerprint:
        return {"requests_today": 0, "daily_budget": DEFAULT_PER_DAY,
                "budget_resets_at": iso_z(next_utc_midnight())}
    budget = RateBudget(fingerprint, folder=folder)
    try:
        saved = json.loads(budget.path.read_text(encoding="utf-8")).get("daily_budget")
        if isinstance(saved, int) and saved > 0:
            budget = RateBudget(fingerprint, per_day=saved, folder=folder)
    except (OSError, ValueError, AttributeError):
        pass
    status = budget.status()
    return {name: status[name] for name in ("requests_today", "daily_budget", "budget_resets_at")}


class ApiRequestError(ApiUnavailableError):
    """A 4xx other than 401/403/404/429: the request itself was not accepted."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# Freesound's per-minute 429 has no Retry-After: back off this many times before saying the
# API keeps throttling (with the default backoff, about half an hour).
THROTTLED_LIMIT = 30


class FreesoundClient:
    """Freesound APIv2 over one urllib3 PoolManager.

    Retries 5xx, timeouts and connection errors with the shared retry policy
    (easy_oww.transfer.retry: the same backoff as the downloads, an unreachable host given up
    after `RetryPolicy.offline_attempts`); backs off and goes on after a per-minute 429; stops
    (BudgetExhaustedError) after a daily 429 or when the local budget is spent;
    KeyRefusedError for 401/403; SoundNotFoundError for 404; MalformedAnswerError for a body
    that is not the documented JSON. Each retry is one line to `notice` (what failed and
    when the next try is); `stop` set ends the loop at once with InterruptedError.
    """

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        http: urllib3.PoolManager | None = None,
        budget: RateBudget | None = None,
        timeout: urllib3.Timeout | float = urllib3.Timeout(connect=10.0, read=60.0),
        retries: int = 5,
        backoff: float = 1.0,
        backoff_max: float = 60.0,
        stop: threading.Event | None = None,
        log: Log | None = None,
        notice: Log | None = None,
    ) -> None:
        if not api_key:
            raise MissingKeyError(f"no Freesound API key: set {ENV_API_KEY}")
        self._headers = {"Authorization": f"Token {api_key}", "Accept": "application/json",
                         "User-Agent": "easy-oww"}
        self.base_url = (base_url or os.environ.get(ENV_API_URL) or DEFAULT_API_URL).rstrip("/")
        self.http = http or urllib3.PoolManager(num_pools=4, maxsize=2)
        self.budget = budget or RateBudget.for_key(api_key)
        self.timeout = timeout
        self.retries = retries
        self.policy = RetryPolicy(attempts=retries + 1, backoff_base=backoff,
                                  backoff_max=backoff_max)
        self.stop = stop or threading.Event()
        self.log = log or (lambda message: None)
        self.notice = notice or self.log
        self.requests = 0  # requests this client sent (every attempt counts against the budget)

    # -- transport
    def _wait_to_retry(self, error: RetryableError, failures: int) -> None:
        """Say what failed and when the next try is, then wait; InterruptedError at once when
        `stop` is set (Ctrl-C), so no further request goes out."""
        delay = self.policy.delay(failures, error)
        self.notice(f"Freesound API: {error}; retrying in {delay:.1f} s")
        if self.stop.wait(delay):
            raise InterruptedError("stopped while waiting to retry a request")

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = f"{self.base_url}/{path.lstrip('/')}"
        if query:
            url += "?" + urlencode(query)
        failures = 0
        throttled = 0
        while True:
            if self.stop.is_set():
                raise InterruptedError("stopped before a request")
            if not self.budget.acquire(self.stop):
                raise InterruptedError("stopped while waiting for the per-minute rate limit")
            self.requests += 1
            self.log(f"GET {url}")
            try:
                response = self.http.request(
                    "GET", url, headers=self._headers, timeout=self.timeout, retries=False,
                    redirect=True,
                )
            except TRANSPORT_ERRORS as exc:
                error = transport_error(exc, url)
                if isinstance(error, Unreachable):
                    # never connected: it did not count at Freesound and must not count here
                    self.budget.refund()
                    self.requests -= 1
                failures += 1
                if failures >= self.policy.limit_for(error):
                    raise ApiUnreachableError(
                        f"cannot reach the Freesound API at {self.base_url} after {failures} "
                        f"tries ({error}); check the network", self.base_url
                    ) from None
                self._wait_to_retry(error, failures)
                continue
            status = response.status
            body = response.data
            if status == 200:
                try:
                    data = json.loads(body)
                except (ValueError, UnicodeDecodeError):
                    raise MalformedAnswerError(
                        f"GET {path}: the answer is not JSON ({body[:60]!r})"
                    ) from None
                if not isinstance(data, dict):
                    raise MalformedAnswerError(f"GET {path}: the answer is not a JSON object")
                return data
            detail = _detail(body)
            if status in (401, 403):
                # Where the key came from is the caller's to say (a file, the environment).
                raise KeyRefusedError(
                    f"Freesound refused the API key (HTTP {status}: {detail}) at {self.base_url}"
                )
            if status == 404:
                raise SoundNotFoundError(f"GET {path}: not found (HTTP 404: {detail})")
            if status == 429:
                if "/day" in detail or "day)" in detail:
                    raise self.budget.exhaust()
                throttled += 1
                if throttled > THROTTLED_LIMIT:
                    raise ApiUnavailableError(
                        f"the Freesound API kept throttling ({detail}); try again later"
                    )
                busy = ServerBusy(f"HTTP 429 ({detail})", status=429, retry_after=parse_retry_after(
                    response.headers.get("Retry-After")))
                self._wait_to_retry(busy, min(throttled, 7))
                continue
            if status >= 500:
                failures += 1
                if failures >= self.policy.attempts:
                    raise ApiUnavailableError(
                        f"the Freesound API at {self.base_url} answered HTTP {status} "
                        f"{failures} times; try again later"
                    )
                self._wait_to_retry(
                    server_busy(status, url, response.headers.get("Retry-After")), failures)
                continue
            raise ApiRequestError(f"GET {path}: HTTP {status} ({detail})", status)

    # -- endpoints
    def search(
        self,
        query: str = "",
        *,
        filter: str | None = None,
        sort: str | None = None,
        fields: str = FIELDS,
        page: int = 1,
        page_size: int = MAX_PAGE_SIZE,
        similar_to: int | None = None,
        similarity_space: str | None = None,
    ) -> dict[str, Any]:
        params = {
            "query": query, "filter": filter or None, "sort": sort, "fields": fields,
            "page": page, "page_size": min(page_size, MAX_PAGE_SIZE),
            "similar_to": similar_to, "similarity_space": similarity_space,
        }
        return _check_page(self.get("/search/", params), "search")

    def similar(
        self,
        sound_id: int,
        *,
        filter: str | None = None,
        similarity_space: str | None = None,
        fields: str = FIELDS,
        page_size: int = MAX_PAGE_SIZE,
    ) -> dict[str, Any]:
        """Sounds similar to `sound_id`, best first: search `similar_to`, else `/similar/`."""
        try:
            return self.search("", filter=filter, fields=fields, page_size=page_size,
                               similar_to=sound_id, similarity_space=similarity_space)
        except ApiRequestError as exc:
            if exc.status not in (400, 405, 501):
                raise
            self.log(f"  search similar_to refused ({exc}); using /sounds/{sound_id}/similar/")
        params = {"fields": fields, "page_size": min(page_size, MAX_PAGE_SIZE),
                  "similarity_space": similarity_space}
        return _check_page(self.get(f"/sounds/{sound_id}/similar/", params), "similar")

    def sound(self, sound_id: int, *, fields: str | None = None) -> dict[str, Any]:
        return self.get(f"/sounds/{sound_id}/", {"fields": fields})


def _detail(body: bytes) -> str:
    try:
        data = json.loads(body)
        if isinstance(data, dict) and "detail" in data:
            return str(data["detail"])[:200]
    except (ValueError, UnicodeDecodeError):
        pass
    return body[:200].decode("utf-8", "replace").strip() or "no detail"


def _check_page(data: dict[str, Any], what: str) -> dict[str, Any]:
    results = data.get("results")
    if not isinstance(results, list):
        raise MalformedAnswerError(f"{what}: the answer has no 'results' list")
    return data
