"""The shared retry policy: typed transport errors, attempt limits by type, backoff, cancel."""

from __future__ import annotations

import socket
import threading

import pytest
import urllib3

from easy_oww.errors import DownloadError, NetworkError
from easy_oww.transfer.retry import (
    Cancelled,
    ConnectionLost,
    LinkRefused,
    RetryableError,
    RetryPolicy,
    ServerBusy,
    Unreachable,
    call_with_retries,
    is_busy_status,
    parse_retry_after,
    server_busy,
    transport_error,
)

QUICK = RetryPolicy(attempts=4, backoff_base=0.001, backoff_max=0.002)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Failing:
    """An attempt that raises the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_connection_refused_is_unreachable():
    port = closed_port()
    url = f"http://127.0.0.1:{port}/x"
    pool = urllib3.PoolManager(retries=False)
    with pytest.raises(urllib3.exceptions.HTTPError) as raised:
        pool.request("GET", url)
    error = transport_error(raised.value, url)
    assert isinstance(error, Unreachable)
    # The one line a user sees per host when offline: the host, what failed, the likely cause.
    assert str(error) == f"cannot connect to 127.0.0.1:{port}: NewConnectionError (offline?)"


def test_dns_failure_is_unreachable_naming_the_host():
    exc = urllib3.exceptions.NameResolutionError("nowhere.invalid", None, OSError("no name"))
    error = transport_error(exc, "https://nowhere.invalid/file")
    assert isinstance(error, Unreachable)
    assert str(error) == "cannot resolve nowhere.invalid (offline?)"


def test_other_transport_failures_are_connection_lost():
    error = transport_error(urllib3.exceptions.ReadTimeoutError(None, "/x", "read timed out"),
                            "http://example.org/x")
    assert isinstance(error, ConnectionLost) and not isinstance(error, Unreachable)
    assert str(error).startswith("example.org: ")
    mid_body = transport_error(ConnectionResetError(), "http://example.org/x", at=1_048_576)
    assert isinstance(mid_body, ConnectionLost)
    assert str(mid_body) == "connection lost at byte 1,048,576: ConnectionResetError"


def test_retryable_errors_pass_through_unchanged():
    busy = ServerBusy("HTTP 503", status=503)
    assert transport_error(busy, "http://x/") is busy


def test_busy_statuses_and_retry_after():
    assert all(is_busy_status(s) for s in (408, 425, 429, 500, 502, 503, 504, 599))
    assert not any(is_busy_status(s) for s in (200, 206, 400, 403, 404, 416, 600))
    busy = server_busy(429, "http://x/f", "7")
    assert busy.status == 429 and busy.retry_after == 7.0 and str(busy) == "HTTP 429 from http://x/f"
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_limit_follows_the_type():
    policy = RetryPolicy(attempts=6, offline_attempts=2)
    assert policy.limit_for(Unreachable("x")) == 2
    assert policy.limit_for(ConnectionLost("x")) == 6
    assert policy.limit_for(ServerBusy("x", status=503)) == 6
    assert RetryPolicy(attempts=1).limit_for(Unreachable("x")) == 1


def test_delay_is_jittered_exponential_capped_and_honours_retry_after():
    policy = RetryPolicy(backoff_base=0.5, backoff_max=30.0, retry_after_max=300.0)
    lost = ConnectionLost("x")
    for failures, full in [(1, 0.5), (2, 1.0), (4, 4.0), (20, 30.0)]:
        for _ in range(50):
            assert full * 0.5 <= policy.delay(failures, lost) <= full
    assert policy.delay(1, ServerBusy("x", status=429, retry_after=10.0)) == 10.0
    assert policy.delay(1, ServerBusy("x", status=429, retry_after=1e6)) == 300.0


def test_gives_up_after_the_limit_with_download_error():
    attempt = Failing(*(ServerBusy("HTTP 500 from u", status=500) for _ in range(10)))
    logged: list[str] = []
    with pytest.raises(DownloadError) as raised:
        call_with_retries(attempt, policy=QUICK, what="u", log=logged.append)
    assert not isinstance(raised.value, NetworkError)
    assert str(raised.value) == ("u: HTTP 500 from u; gave up after 4 attempts. "
                                 "Run the same command again to resume.")
    assert attempt.calls == 4
    assert len(logged) == 3 and all("; retrying in " in line for line in logged)


def test_unreachable_gives_up_after_two_attempts_as_network_error():
    attempt = Failing(*(Unreachable("cannot resolve h (offline?)") for _ in range(10)))
    with pytest.raises(NetworkError, match=r"offline\?\); gave up after 2 attempts"):
        call_with_retries(attempt, policy=QUICK, what="u")
    assert attempt.calls == 2


def test_a_refused_signed_link_is_tried_once_more_then_is_final():
    # The first refusal is followed by one attempt with a fresh link (the caller resolves the
    # original URL again); a second refusal is final, however many attempts the policy allows.
    refused = Failing(LinkRefused("cdn refused the signed link"), LinkRefused("again"))
    with pytest.raises(DownloadError, match=r"again; gave up after 2 attempts") as raised:
        call_with_retries(refused, policy=RetryPolicy(attempts=6, backoff_base=0.001),
                          what="u")
    assert not isinstance(raised.value, NetworkError) and refused.calls == 2
    fresh_link_works = Failing(LinkRefused("expired"))
    assert call_with_retries(fresh_link_works, policy=QUICK, what="u") == "ok"
    assert fresh_link_works.calls == 2
    assert RetryPolicy(attempts=1).limit_for(LinkRefused("x")) == 1


def test_after_progress_a_stalled_download_gets_the_full_attempts_again():
    # One failure without bytes, then one that got bytes in before dropping: the count starts
    # over there, so the stall after it gets QUICK.attempts (4) failures in all, as at the start.
    done = [0]
    calls = [0]

    def attempt() -> str:
        calls[0] += 1
        if calls[0] == 2:
            done[0] += 1000
        if calls[0] < 20:
            raise ConnectionLost("dropped")
        return "ok"

    with pytest.raises(DownloadError, match=r"gave up after 4 attempts"):
        call_with_retries(attempt, policy=QUICK, what="u", progress=lambda: done[0])
    assert calls[0] == 5


def test_progress_resets_the_count():
    done = [0]

    def attempt() -> str:
        done[0] += 1  # every attempt gets some bytes in before the connection drops
        if done[0] < 10:
            raise ConnectionLost("dropped")
        return "ok"

    assert call_with_retries(attempt, policy=QUICK, what="u", progress=lambda: done[0]) == "ok"
    assert done[0] == 10  # far more than QUICK.attempts


def test_success_after_failures_returns_the_value():
    attempt = Failing(ConnectionLost("a"), ServerBusy("b", status=503))
    assert call_with_retries(attempt, policy=QUICK, what="u") == "ok"
    assert attempt.calls == 3


def test_non_retryable_errors_pass_at_once():
    attempt = Failing(DownloadError("404"))
    with pytest.raises(DownloadError, match="404"):
        call_with_retries(attempt, policy=QUICK, what="u")
    assert attempt.calls == 1


def test_cancel_before_an_attempt_and_during_the_wait():
    cancel = threading.Event()
    cancel.set()
    attempt = Failing()
    with pytest.raises(Cancelled):
        call_with_retries(attempt, policy=QUICK, what="u", cancel=cancel)
    assert attempt.calls == 0

    cancel = threading.Event()
    long_wait = RetryPolicy(backoff_base=3600.0, backoff_max=3600.0)

    def fails_and_cancels() -> str:
        cancel.set()  # as Ctrl-C would, while the attempt is in flight
        raise ConnectionLost("dropped")

    with pytest.raises(Cancelled):  # returns at once, not after an hour's backoff
        call_with_retries(fails_and_cancels, policy=long_wait, what="u", cancel=cancel)


class RecordingCancel:
    """A cancel flag that is never set and records how long each wait was asked to last."""

    def __init__(self) -> None:
        self.waits: list[float | None] = []

    def is_set(self) -> bool:
        return False

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return False


def test_between_attempts_it_waits_the_policys_backoff_on_the_cancel_flag():
    # The waits are bounded (never "until cancelled") and follow the policy: jittered
    # exponential, at least a Retry-After, so a Ctrl-C during one still ends it at once.
    cancel = RecordingCancel()
    policy = RetryPolicy(attempts=4, backoff_base=0.5, backoff_max=30.0)
    attempt = Failing(ConnectionLost("a"), ConnectionLost("b"),
                      ServerBusy("c", status=429, retry_after=7.0))
    assert call_with_retries(attempt, policy=policy, what="u", cancel=cancel) == "ok"
    first, second, third = cancel.waits
    assert 0.25 <= first <= 0.5 and 0.5 <= second <= 1.0 and third == 7.0


def test_retryable_error_keyword_only_retry_after():
    error = RetryableError("x", retry_after=2.5)
    assert error.retry_after == 2.5 and str(error) == "x"
    with pytest.raises(TypeError):
        RetryableError("x", 2.5)  # type: ignore[misc]
