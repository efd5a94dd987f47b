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


KEY = "test-key-0123456789abcdef"  # long and unusual, so a search for it in files is meaningful


@pytest.fixture(scope="session")
def standin_session():
    from easy_oww.demo.freesound_standin import FreesoundStandin

    server = FreesoundStandin(n_sounds=3000, seed=0, api_key=KEY).start()
    yield server
    server.stop()


@pytest.fixture
def fs(standin_session):
    """The shared stand-in with clean counters, no limits and no pending faults."""
    standin_session.set_limits(None, None)
    standin_session.reset_stats()
    standin_session.reset_minute_window()
    standin_session.reset_day_window()
    standin_session.preview_delay = 0.0
    standin_session.reset_deleted()  # a test's deletions do not leak into the next
    with standin_session._lock:
        standin_session._faults.clear()
        standin_session._malformed.clear()
    return standin_session


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An isolated workspace and state folder, and the key in the environment."""
    workspace = tmp_path / "ws"
    config = tmp_path / "config"
    monkeypatch.setenv("EASY_OWW_WORKSPACE", str(workspace))
    monkeypatch.setenv("EASY_OWW_CONFIG_DIR", str(config))
    monkeypatch.setenv("FREESOUND_API_KEY", KEY)
    monkeypatch.delenv("FREESOUND_API_URL", raising=False)
    return {"workspace": workspace, "config": config, "library": workspace / "freesound_library",
            "state": config / "state"}


def rest_of(proc, timeout=60):
    """The rest of a child's stdout and stderr, read through the buffered files `readline()`
    used: `communicate()` reads the raw pipes and loses lines already buffered (under load a
    first `readline()` buffers the second line too, and a test missed a printed sample)."""
    import threading

    box: dict[str, str] = {}
    reader = threading.Thread(target=lambda: box.setdefault("err", proc.stderr.read()))
    reader.start()
    out = proc.stdout.read()
    reader.join(timeout)
    proc.wait(timeout)
    return out, box.get("err", "")


def run_cli(args, env_vars=None, timeout=120):
    """`easy-oww …` in a real subprocess (signals, exit codes), stdout and stderr captured."""
    import os
    import subprocess
    import sys

    environment = dict(os.environ)
    environment.update(env_vars or {})
    return subprocess.run(
        [sys.executable, "-m", "easy_oww", *map(str, args)], capture_output=True, text=True,
        timeout=timeout, env=environment,
    )


def files_containing(roots, needle: bytes):
    """Every file under `roots` whose bytes (gunzipped too) contain `needle`."""
    import gzip
    from pathlib import Path

    hits = []
    for root in roots:
        for path in Path(root).rglob("*"):
            if not path.is_file():
                continue
            data = path.read_bytes()
            if path.suffix == ".gz":
                data += gzip.decompress(data)
            if needle in data:
                hits.append(path)
    return hits


def sql(folder, query, params=()):
    """Rows of `query` read straight from the library file (read-only): a test's own look at
    the database, independent of the store's methods."""
    import contextlib
    import sqlite3

    from easy_oww.freesound.schema import DB_NAME

    uri = f"file:{Path(folder) / DB_NAME}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        return conn.execute(query, tuple(params)).fetchall()
