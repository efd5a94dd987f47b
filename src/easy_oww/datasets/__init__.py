"""Datasets for openWakeWord training: catalog, sources, manifest, manager and the seed's faces.

Names are loaded on first use (PEP 562), so importing one submodule — as the CLI does on
every start — does not pay for numpy and the audio stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {
    "ACAV100MDownloader": "easy_oww.datasets.acav100m_features",
    "CacheEntryError": "easy_oww.datasets.cache",
    "CacheManager": "easy_oww.datasets.cache",
    "Catalog": "easy_oww.datasets.catalog",
    "Dataset": "easy_oww.datasets.catalog",
    "FileEntry": "easy_oww.datasets.catalog",
    "Fetcher": "easy_oww.transfer.fetch",
    "FetchOptions": "easy_oww.transfer.fetch",
    "FetchRequest": "easy_oww.transfer.fetch",
    "FetchResult": "easy_oww.transfer.fetch",
    "FSD50kDownloader": "easy_oww.datasets.fsd50k",
    "DatasetEngine": "easy_oww.datasets.engine",
    "DatasetManager": "easy_oww.datasets.manager",
    "DatasetStatus": "easy_oww.datasets.manager",
    "DownloadReport": "easy_oww.datasets.manager",
    "NotDownloadedError": "easy_oww.datasets.reading",
    "iter_clips": "easy_oww.datasets.reading",
    "open_features": "easy_oww.datasets.reading",
    "RIRDownloader": "easy_oww.datasets.rir",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
