"""Datasets for openWakeWord training: catalog, fetch engine, manifest and the seed's faces."""

from easy_oww.datasets.acav100m_features import ACAV100MDownloader
from easy_oww.datasets.cache import CacheEntryError, CacheManager
from easy_oww.datasets.catalog import Catalog, Dataset, FileEntry
from easy_oww.datasets.fetch import Fetcher, FetchOptions, FetchRequest, FetchResult
from easy_oww.datasets.fsd50k import FSD50kDownloader
from easy_oww.datasets.manager import DatasetManager, DatasetStatus, DownloadReport
from easy_oww.datasets.reading import NotDownloadedError, iter_clips, open_features
from easy_oww.datasets.rir import RIRDownloader

__all__ = [
    "ACAV100MDownloader", "CacheEntryError", "CacheManager", "Catalog", "Dataset",
    "DatasetManager", "DatasetStatus", "DownloadReport", "FSD50kDownloader", "FetchOptions",
    "FetchRequest", "FetchResult", "Fetcher", "FileEntry", "NotDownloadedError",
    "RIRDownloader", "iter_clips", "open_features",
]
