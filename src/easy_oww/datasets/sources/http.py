"""GET a listing's JSON (a Hub tree page, a Zenodo record), or HEAD a URL without following
its redirect, under the shared retry policy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import urllib3

from easy_oww.errors import DownloadError, NetworkError, NotFoundError
from easy_oww.transfer.retry import (
    TRANSPORT_ERRORS,
    RetryPolicy,
    call_with_retries,
    is_busy_status,
    server_busy,
    transport_error,
)

# One try per call: call_with_retries does the retrying. Redirects are still followed (a
# mirror may move its API), and a failure comes back as what caused it.
_ONE_TRY = urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5)
LISTING_POLICY = RetryPolicy(attempts=5)  # a listing is one small request: give up sooner


class ListingUnavailable(NetworkError):
    """The listing's server could not be reached (offline?)."""


class JsonClient:
    """The one HTTP client of every listing; `get_json` is the `JsonGetter` sources use."""

    def __init__(self, pool: urllib3.PoolManager | None = None, timeout: float = 30.0,
                 policy: RetryPolicy = LISTING_POLICY) -> None:
        self.pool = pool or urllib3.PoolManager(retries=_ONE_TRY)
        self.timeout = timeout
        self.policy = policy

    def get_json(self, url: str, headers: Mapping[str, str]) -> tuple[Any, str | None]:
        """The JSON body of a GET and its ``Link`` header; busy answers and lost
        connections are retried, an unreachable host is ListingUnavailable."""
        try:
            response = call_with_retries(lambda: self._get(url, headers), policy=self.policy,
                                         what=f"cannot list {url}")
        except NetworkError as exc:  # give_up_error's type for "nothing answered"
            raise ListingUnavailable(str(exc)) from None
        if response.status != 200:
            error = NotFoundError if response.status in (404, 410) else DownloadError
            raise error(f"listing {url} failed with HTTP {response.status}; check the "
                        "catalog entry (repository, revision, folder or record)",
                        status=response.status)
        try:
            return json.loads(response.data), response.headers.get("Link")
        except ValueError:
            raise DownloadError(f"listing {url} did not return JSON") from None

    def head_status(self, url: str, headers: Mapping[str, str]) -> int:
        """The status a HEAD of `url` answers, its redirect not followed (so `headers`, a
        token, reach that host only); busy answers are retried, an unreachable host is
        ListingUnavailable."""
        try:
            response = call_with_retries(
                lambda: self._get(url, headers, method="HEAD", redirect=False),
                policy=self.policy, what=f"cannot ask {url}")
        except NetworkError as exc:
            raise ListingUnavailable(str(exc)) from None
        return response.status

    def _get(self, url: str, headers: Mapping[str, str], *, method: str = "GET",
             redirect: bool = True) -> urllib3.BaseHTTPResponse:
        try:
            response = self.pool.request(method, url, headers=dict(headers),
                                         timeout=self.timeout, retries=_ONE_TRY,
                                         redirect=redirect)
        except TRANSPORT_ERRORS as exc:
            cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
            raise transport_error(cause or exc, url) from None
        if is_busy_status(response.status):
            raise server_busy(response.status, url, response.headers.get("Retry-After"))
        return response
