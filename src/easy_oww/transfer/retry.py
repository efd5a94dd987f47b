"""One retry policy for every HTTP client in easy-oww, with typed transport errors.

A failure worth another attempt is a `RetryableError`; its type, not its message, decides
how many attempts it gets and which error the caller sees on giving up:

- `Unreachable`: no route at all (DNS failure, connection refused). Almost always "offline",
  so it is said after `offline_attempts` tries, not after a minute of backoff, and raised as
  `NetworkError`.
- `ConnectionLost`: dropped, stalled or reset mid-request.
- `ServerBusy`: HTTP 408/425/429/5xx, maybe with a Retry-After.

`transport_error` is the one place urllib3 and OS exceptions become these types.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import urllib3

from easy_oww.errors import DownloadError, NetworkError

T = TypeVar("T")

# What a urllib3 request can raise when the network, not the caller, is at fault; pass any of
# them to transport_error.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (urllib3.exceptions.HTTPError, OSError)

# 408 Request Timeout, 425 Too Early, 429 Too Many Requests; every 5xx too (is_busy_status).
BUSY_STATUSES = frozenset({408, 425, 429})


class RetryableError(Exception):
    """A failure worth another attempt."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the server asked us to wait, if it did


class Unreachable(RetryableError):
    """No route at all: DNS failure, connection refused ("offline")."""


class ConnectionLost(RetryableError):
    """The connection dropped, stalled or was reset mid-request."""


class LinkRefused(RetryableError):
    """A host reached through a redirect answered 403: a signed CDN link that expired or
    was refused (the Hub's expire after about an hour, REFERENCE §6). Resolving again from
    the original URL gives a fresh link; a second refusal is final."""


class ServerBusy(RetryableError):
    """The server answered HTTP 408/425/429/5xx: it may well answer properly later."""

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status


class Cancelled(Exception):
    """The caller asked the work to stop (Ctrl-C, a sibling's failure)."""


class CancelSignal(Protocol):
    """What `call_with_retries` needs of a cancel flag (a `threading.Event` is one)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def is_busy_status(status: int) -> bool:
    """True for the HTTP statuses that mean "try again later"."""
    return status in BUSY_STATUSES or 500 <= status < 600


def parse_retry_after(value: str | None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) → seconds from now; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def server_busy(status: int, url: str, retry_after_header: str | None = None) -> ServerBusy:
    """The error for a busy answer, with its Retry-After parsed."""
    return ServerBusy(f"HTTP {status} from {url}", status=status,
                      retry_after=parse_retry_after(retry_after_header))


def transport_error(exc: BaseException, url: str, *, at: int | None = None) -> RetryableError:
    """Map a urllib3 or OS exception raised while talking to `url` to its retryable type.

    `at`: the body offset reached when the exception came while reading a body; the
    message then says where the connection was lost.
    """
    if isinstance(exc, RetryableError):
        return exc
    parts = urlsplit(url)
    # NameResolutionError is a NewConnectionError: the more specific test comes first.
    if isinstance(exc, urllib3.exceptions.NameResolutionError):
        return Unreachable(f"cannot resolve {parts.hostname} (offline?)")
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return Unreachable(f"cannot connect to {parts.netloc}: {exc.__class__.__name__} "
                           "(offline?)")
    if at is not None:
        return ConnectionLost(f"connection lost at byte {at:,}: {exc.__class__.__name__}")
    return ConnectionLost(f"{parts.netloc}: {exc}")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # consecutive failures without progress before giving up
    offline_attempts: int = 2  # for Unreachable: "offline" after two tries, not a minute's wait
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 300.0

    def limit_for(self, error: RetryableError) -> int:
        """How many consecutive failures like `error` (without progress) end the attempts."""
        if isinstance(error, Unreachable):
            return min(self.offline_attempts, self.attempts)
        if isinstance(error, LinkRefused):
            return min(2, self.attempts)  # once more with a fresh link, then it is a refusal
        return self.attempts

    def delay(self, failures: int, error: RetryableError) -> float:
        """Seconds to wait after the `failures`-th consecutive failure: exponential with
        jitter (many clients must not retry in step), at least the server's Retry-After
        (capped at `retry_after_max`)."""
        delay = min(self.backoff_max, self.backoff_base * 2 ** (failures - 1))
        delay *= random.uniform(0.5, 1.0)
        if error.retry_after is not None:
            delay = max(delay, min(error.retry_after, self.retry_after_max))
        return delay


def give_up_error(what: str, error: RetryableError, failures: int) -> DownloadError:
    """The error raised when the attempts are spent: NetworkError when nothing answered."""
    cls = NetworkError if isinstance(error, Unreachable) else DownloadError
    return cls(f"{what}: {error}; gave up after {failures} attempts. "
               "Run the same command again to resume.")


def call_with_retries(attempt: Callable[[], T], *, policy: RetryPolicy, what: str,
                      progress: Callable[[], int] = lambda: 0,
                      cancel: threading.Event | CancelSignal | None = None,
                      log: Callable[[str], None] | None = None) -> T:
    """Run `attempt` until it returns, retrying on `RetryableError`.

    Failures without new `progress` (a counter such as bytes on disk) count towards the
    policy's limit for the error's type, so a connection that drops every few MB still gets
    there. Gives up with `NetworkError` (Unreachable) or `DownloadError`; raises `Cancelled`
    when `cancel` is set before an attempt or during a wait.
    """
    waiter = cancel if cancel is not None else threading.Event()
    failures, seen = 0, progress()
    while True:
        if waiter.is_set():
            raise Cancelled()
        try:
            return attempt()
        except RetryableError as exc:
            now = progress()
            failures = 1 if now > seen else failures + 1
            seen = now
            if failures >= policy.limit_for(exc):
                raise give_up_error(what, exc, failures) from None
            delay = policy.delay(failures, exc)
            if log is not None:
                log(f"{what}: {exc}; retrying in {delay:.1f} s")
            if waiter.wait(delay):
                raise Cancelled() from None
