"""Reading the data, for trainers: features as a checked read-only memory map, clips as
float32 mono arrays at the rate the model wants."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from easy_oww.audio import read_clip
from easy_oww.datasets.manager import DatasetManager
from easy_oww.errors import EasyOwwError
from easy_oww.validate import check_npy


class NotDownloadedError(EasyOwwError):
    pass


def _cached_path(key: str, manager: DatasetManager | None) -> tuple[DatasetManager, Path]:
    manager = manager or DatasetManager()
    row = manager.status([key])[0]
    if row.status != "cached":
        raise NotDownloadedError(f"dataset {key!r} is {row.status}, not ready to read; run "
                                 f"`easy-oww download --dataset {key}`")
    return manager, Path(row.path)


def open_features(key: str = "acav100m_train", *, manager: DatasetManager | None = None
                  ) -> np.memmap:
    """The features file as a read-only memory map (how openWakeWord's trainer reads it),
    after checking its header against the catalog's shape and dtype."""
    manager, path = _cached_path(key, manager)
    entry = manager.catalog.get(key).files[0]
    info = check_npy(path, shape=entry.shape, dtype=entry.dtype)
    features = np.load(path, mmap_mode="r")
    assert tuple(features.shape) == tuple(info.shape)
    return features


def iter_clips(key: str = "mit_rir", sample_rate: int = 16000, *,
               manager: DatasetManager | None = None, split: str | None = None
               ) -> Iterator[tuple[Path, np.ndarray]]:
    """``(path, float32 mono array at sample_rate)`` for every WAV of a dataset, in order."""
    _, folder = _cached_path(key, manager)
    if split:
        folder = folder / split
    for path in sorted(folder.rglob("*.wav")):
        yield path, read_clip(path, sample_rate)
