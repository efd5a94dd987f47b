"""GET a listing's JSON (a Hub tree page, a Zenodo record), with retries."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import urllib3

from easy_oww.errors import DownloadError, NetworkError


class ListingUnavailable(NetworkError):
    """The listing's server could not be reached (offline?)."""


class JsonClient:
    """The one HTTP client of every listing; `get_json` is the `JsonGetter` sources use."""

    def __init__(self, pool: urllib3.PoolManager | None = None, timeout: float = 30.0) -> None:
        # TODO(seams): retry policy — use easy_oww.transfer.retry once it lands.
        self.pool = pool or urllib3.PoolManager(retries=urllib3.Retry(
            total=4, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504)))
        self.timeout = timeout

    def get_json(self, url: str, headers: Mapping[str, str]) -> tuple[Any, str | None]:
        try:
            response = self.pool.request("GET", url, headers=dict(headers), timeout=self.timeout)
        except urllib3.exceptions.HTTPError as exc:
            host = urlsplit(url).netloc
            raise ListingUnavailable(f"cannot list {url}: {host} unreachable (offline?): "
                                     f"{exc.__class__.__name__}") from None
        if response.status != 200:
            raise DownloadError(f"listing {url} failed with HTTP {response.status}; check the "
                                "catalog entry (repository, revision, folder or record)",
                                status=response.status)
        try:
            return json.loads(response.data), response.headers.get("Link")
        except ValueError:
            raise DownloadError(f"listing {url} did not return JSON") from None
