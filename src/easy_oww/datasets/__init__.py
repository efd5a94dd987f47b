"""Datasets for openWakeWord training: catalog, fetch engine, manifest and the seed's faces.

Names are loaded on first use (PEP 562), so importing one submodule — as the CLI does on
every start — does not pay for numpy and the audio stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {
    "ACAV100MDownloader": "acav100m_features",
    "CacheEntryError": "cache",
    "CacheManager": "cache",
    "Catalog": "catalog",
    "Dataset": "catalog",
    "FileEntry": "catalog",
    "Fetcher": "fetch",
    "FetchOptions": "fetch",
    "FetchRequest": "fetch",
    "FetchResult": "fetch",
    "FSD50kDownloader": "fsd50k",
    "DatasetManager": "manager",
    "DatasetStatus": "manager",
    "DownloadReport": "manager",
    "NotDownloadedError": "reading",
    "iter_clips": "reading",
    "open_features": "reading",
    "RIRDownloader": "rir",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
