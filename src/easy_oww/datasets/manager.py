"""`DatasetManager`, the seed's central class: the engine (status, download, verify) plus
the per-dataset downloader faces (`manager.acav100m`, `manager.rir`, `manager.fsd50k`)."""

from __future__ import annotations

from easy_oww.datasets.acav100m_features import ACAV100MDownloader
from easy_oww.datasets.engine import (
    GB,
    DatasetEngine,
    DatasetStatus,
    DownloadReport,
    FileOutcome,
)
from easy_oww.datasets.fsd50k import FSD50kDownloader
from easy_oww.datasets.rir import RIRDownloader

__all__ = ["GB", "DatasetManager", "DatasetStatus", "DownloadReport", "FileOutcome"]


class DatasetManager(DatasetEngine):
    """Central orchestrator for the datasets (the seed's ``DatasetManager``).

    The workspace is the parent of `datasets_dir`; without arguments the workspace is
    resolved as the CLI does (``EASY_OWW_WORKSPACE``, the folder remembered by ``init``,
    ``~/.easy-oww``). Quiet unless a `progress` display is passed.
    """

    @property
    def acav100m(self) -> ACAV100MDownloader:
        return ACAV100MDownloader(manager=self)

    @property
    def rir(self) -> RIRDownloader:
        return RIRDownloader(manager=self)

    @property
    def fsd50k(self) -> FSD50kDownloader:
        return FSD50kDownloader(manager=self)
