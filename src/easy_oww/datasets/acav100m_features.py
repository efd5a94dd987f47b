"""`ACAV100MDownloader`: the precomputed openWakeWord features (the seed's names)."""

from __future__ import annotations

from pathlib import Path

from easy_oww.datasets.engine import DatasetEngine
from easy_oww.datasets.faces import DatasetFace

TRAIN, VALIDATION = "acav100m_train", "acav100m_val"


class ACAV100MDownloader(DatasetFace):
    """Training (17.3 GB) and validation (185 MB) features, each checked by sha256."""

    def __init__(self, datasets_dir: str | Path | None = None, *,
                 manager: DatasetEngine | None = None, **manager_options: object) -> None:
        super().__init__(datasets_dir, manager=manager, **manager_options)

    def is_training_cached(self) -> bool:
        return self.manager.is_cached(TRAIN)

    def is_validation_cached(self) -> bool:
        return self.manager.is_cached(VALIDATION)

    def download_training(self) -> Path:
        return self._download(TRAIN)

    def download_validation(self) -> Path:
        return self._download(VALIDATION)

    def get_training_path(self) -> Path:
        return self.manager.path_of(TRAIN)

    def get_validation_path(self) -> Path:
        return self.manager.path_of(VALIDATION)
