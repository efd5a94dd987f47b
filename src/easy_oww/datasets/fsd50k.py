"""`FSD50kDownloader`: FSD50K clips from Zenodo's split zips (the seed's names)."""

from __future__ import annotations

from pathlib import Path

from easy_oww.datasets.faces import DatasetFace

KEY = "fsd50k"


class FSD50kDownloader(DatasetFace):
    def is_cached(self) -> bool:
        return self.manager.is_cached(KEY)

    def download(self) -> Path:
        return self._download(KEY)

    def get_sounds_path(self, split: str = "dev") -> Path:
        if split not in ("dev", "eval"):
            raise ValueError(f"split must be 'dev' or 'eval', got {split!r}")
        return self.manager.path_of(KEY) / split
