"""`RIRDownloader`: MIT room impulse responses, 16 kHz mono WAVs (the seed's names)."""

from __future__ import annotations

from pathlib import Path

from easy_oww.datasets.faces import DatasetFace

KEY = "mit_rir"


class RIRDownloader(DatasetFace):
    def is_cached(self) -> bool:
        return self.manager.is_cached(KEY)

    def download(self) -> Path:
        return self._download(KEY)

    def get_rir_path(self) -> Path:
        return self.manager.path_of(KEY)
