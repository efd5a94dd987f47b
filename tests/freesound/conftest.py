"""Fixtures for the Freesound library tests: real SQLite files, the real stand-in on loopback."""

from __future__ import annotations

import random
from pathlib import Path

import pytest


def make_sound(sound_id: int, *, user: str | None = None, pack: int | None = None,
               downloads: int | None = None) -> dict:
    """A sound dict shaped like the API's answer with every field the crawl asks for."""
    rng = random.Random(sound_id)
    return {
        "id": sound_id,
        "url": f"https://freesound.org/people/u/sounds/{sound_id}/",
        "name": f"sound {sound_id}.wav",
        "tags": ["field-recording", rng.choice(["rain", "street", "room"])],
        "description": "a test sound",
        "created": "2020-01-02T03:04:05",
        "license": "http://creativecommons.org/publicdomain/zero/1.0/",
        "type": "wav",
        "channels": 2,
        "filesize": 1000 + sound_id,
        "bitrate": 1411,
        "bitdepth": 16,
        "duration": 1.5 + sound_id % 7,
        "samplerate": 44100,
        "username": user or f"user{sound_id % 13}",
        "pack": f"https://freesound.org/apiv2/packs/{pack}/" if pack else None,
        "pack_name": f"pack {pack}" if pack else None,
        "previews": {"preview-hq-mp3": f"https://cdn.freesound.org/{sound_id}-hq.mp3"},
        "images": {"waveform_m": f"https://cdn.freesound.org/{sound_id}-w.png"},
        "num_downloads": downloads if downloads is not None else rng.randrange(1000),
        "avg_rating": 4.0,
        "num_ratings": 3,
        "num_comments": 1,
    }


@pytest.fixture
def sound():
    return make_sound


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    return tmp_path / "ws" / "freesound_library"
