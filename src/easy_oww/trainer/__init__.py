"""The data handed to openWakeWord's trainer: the Freesound library's audio as the dataset
``freesound_background`` (background.py), and the YAML keys of openWakeWord's ``train.py``
from what is cached, checked as the trainer reads them (oww_config.py).

It sits above both halves (beside ``easy_oww.doctor``) because the background needs both:
the library and the manifest, which do not import each other.
"""

from __future__ import annotations

from easy_oww.trainer.background import (
    ATTRIBUTION,
    BACKGROUND,
    BackgroundOptions,
    BackgroundResult,
    license_short,
    make_background,
)
from easy_oww.trainer.oww_config import (
    TRAINER_KEYS,
    OwwConfig,
    TrainerPaths,
    check_config,
    oww_config,
    trainer_paths,
)

__all__ = [
    "ATTRIBUTION", "BACKGROUND", "TRAINER_KEYS", "BackgroundOptions", "BackgroundResult",
    "OwwConfig", "TrainerPaths", "check_config", "license_short", "make_background",
    "oww_config", "trainer_paths",
]
