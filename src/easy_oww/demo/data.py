"""The demo's datasets: small, generated, and of the real ones' shapes, plus the catalog that
points at them.

Each stands in for a dataset of the built-in catalog under the same key, so every command
(`oww-config` too) treats it as it treats the real one:

- ``acav100m_train``: openWakeWord features, a ``.npy`` of float16, shape (N, 16, 96);
- ``acav100m_val``: the validation features, the same shape with fewer rows;
- ``mit_rir``: room impulse responses, 16 kHz mono 16-bit WAVs (a decaying noise burst);
- ``fsd50k``: clips at 44.1 kHz in split zips named like FSD50K's on Zenodo
  (``FSD50K.dev_audio.z01`` … ``.zip``, members under ``FSD50K.dev_audio/``), unpacked and
  resampled to 16 kHz by ``download --sample-rate 16000``;
- ``freesound_background``: made here by ``easy-oww freesound background``, as built in.

Everything is seeded, so a second run makes the same bytes (and a workspace from an earlier
run is still cached under the same hashes).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from easy_oww.audio import pcm16_wav_header
from easy_oww.demo.zipwrite import write_split_zip

FEATURES_ROWS = 4000  # 12.3 MB: big enough to watch, small enough to take a few seconds
VALIDATION_ROWS = 1000
RIR_COUNT = 6
DEV_CLIPS, EVAL_CLIPS = 16, 6
CLIP_RATE = 44100  # FSD50K's clips are 44.1 kHz
VOLUME_SIZE = 512 * 1024  # dev: three volumes (.z01, .z02, .zip); eval: two (.z01, .zip)
FEATURES_PATH = "acav100m/openwakeword_features_ACAV100M_2000_hrs_16bit.npy"
VALIDATION_PATH = "acav100m/validation_set_features.npy"
# The room types of MIT's survey (its file names are like h001_Bedroom_65txts.wav).
_ROOMS = ("Bedroom", "Kitchen", "Office", "Hallway", "Bathroom", "Car")


@dataclass(frozen=True)
class OriginFile:
    """One file the demo's server serves: its path under the origin folder (and in the URL),
    and the facts the catalog states."""

    path: str
    size: int
    sha256: str


def _save(origin: Path, rel: str, data: bytes) -> OriginFile:
    target = origin / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return OriginFile(rel, len(data), hashlib.sha256(data).hexdigest())


def _npy(rows: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((rows, 16, 96), dtype=np.float32).astype(np.float16)
    buffer = io.BytesIO()
    np.save(buffer, features)
    return buffer.getvalue()


def _wav(samples: np.ndarray, rate: int) -> bytes:
    pcm = np.clip(samples * 32767, -32768, 32767).astype("<i2")
    return pcm16_wav_header(len(pcm), rate) + pcm.tobytes()


def _impulse_response(rng: np.random.Generator) -> bytes:
    seconds = rng.uniform(0.25, 0.6)
    t = np.arange(int(seconds * 16000)) / 16000
    decay = np.exp(-t / rng.uniform(0.03, 0.12))
    return _wav(0.9 * decay * rng.standard_normal(len(t)), 16000)


def _clip(rng: np.random.Generator) -> bytes:
    seconds = rng.uniform(0.6, 1.6)
    t = np.arange(int(seconds * CLIP_RATE)) / CLIP_RATE
    tone = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
    return _wav(tone + 0.05 * rng.standard_normal(len(t)), CLIP_RATE)


def make_origin(origin: Path) -> list[OriginFile]:
    """Write every demo dataset file under `origin` (the server's folder); their facts."""
    rng = np.random.default_rng(2024)
    files = [_save(origin, FEATURES_PATH, _npy(FEATURES_ROWS, 1)),
             _save(origin, VALIDATION_PATH, _npy(VALIDATION_ROWS, 2))]
    for n in range(RIR_COUNT):
        name = f"mit_rir/h{n + 1:03d}_{_ROOMS[n % len(_ROOMS)]}_{n + 2}txts.wav"
        files.append(_save(origin, name, _impulse_response(rng)))
    archive = origin / "fsd50k"
    archive.mkdir(parents=True, exist_ok=True)
    clip_id = 1000
    for split, count in (("dev", DEV_CLIPS), ("eval", EVAL_CLIPS)):
        members = []
        for _ in range(count):
            clip_id += int(rng.integers(1, 900))
            members.append((f"FSD50K.{split}_audio/{clip_id}.wav", _clip(rng)))
        for volume in write_split_zip(archive / f"FSD50K.{split}_audio.zip", members,
                                      VOLUME_SIZE):
            data = volume.read_bytes()
            files.append(OriginFile(f"fsd50k/{volume.name}", len(data),
                                    hashlib.sha256(data).hexdigest()))
    return files


def _toml(value: object) -> str:
    return json.dumps(value)  # a JSON string or list of strings is a valid TOML value


def catalog_text(files: list[OriginFile], base_url: str) -> str:
    """The demo's catalog: the built-in keys, every file at `base_url`, with its real size
    and sha256; `include_builtin = false`, so nothing else is asked for."""
    by_path = {f.path: f for f in files}

    def entry(key: str, origin_path: str, dest: str, checks: str = "") -> str:
        f = by_path[origin_path]
        return (f"[[datasets.{key}.files]]\nurl = {_toml(f'{base_url}/{origin_path}')}\n"
                f"path = {_toml(dest)}\nsize = {f.size}\nhash = \"sha256:{f.sha256}\"\n"
                + checks)

    lines = [
        "# The catalog of `easy-oww demo`: small generated stand-ins for the real datasets,",
        "# under the real keys, served by the demo on loopback while it runs. Sizes and hashes",
        "# are the files' own. `include_builtin = false`: nothing else is known here.",
        "include_builtin = false",
        "",
        '[datasets.acav100m_train]\nname = "ACAV100M Training (demo)"\npriority = "critical"',
        f'description = "{FEATURES_ROWS:,} generated feature windows, shape of the real 5,625,000"',
        entry("acav100m_train", FEATURES_PATH, FEATURES_PATH,
              f'format = "npy"\nshape = [{FEATURES_ROWS}, 16, 96]\ndtype = "float16"\n'),
        '[datasets.acav100m_val]\nname = "ACAV100M Validation (demo)"\npriority = "critical"',
        entry("acav100m_val", VALIDATION_PATH, VALIDATION_PATH,
              f'format = "npy"\nshape = [{VALIDATION_ROWS}, 16, 96]\ndtype = "float16"\n'),
        '[datasets.mit_rir]\nname = "MIT RIR (demo)"\npriority = "recommended"\n'
        'path = "mit_rir"',
    ]
    lines += [entry("mit_rir", f.path, f.path, 'format = "wav"\nsample_rate = 16000\n'
                    "channels = 1\n") for f in files if f.path.startswith("mit_rir/")]
    lines.append('[datasets.fsd50k]\nname = "FSD50K (demo)"\npriority = "optional"\n'
                 'path = "fsd50k"')
    volumes: dict[str, list[str]] = {"dev": [], "eval": []}
    for f in files:
        if f.path.startswith("fsd50k/"):
            dest = f"fsd50k/archive/{f.path.removeprefix('fsd50k/')}"
            lines.append(entry("fsd50k", f.path, dest))
            volumes["dev" if ".dev_audio." in f.path else "eval"].append(dest)
    for split, paths in volumes.items():
        lines.append(f'[[datasets.fsd50k.unpack]]\nformat = "zip"\nfiles = {_toml(paths)}\n'
                     f'into = "fsd50k/{split}"\nstrip_components = 1\nsplit = "{split}"\n'
                     "audio = true\n")
    lines.append(
        '[datasets.freesound_background]\nname = "Freesound background"\npriority = "optional"\n'
        'path = "freesound_background"\n[[datasets.freesound_background.files]]\n'
        'made_by = "easy-oww freesound background"\npath = "freesound_background"\n'
        'format = "wav"\nsample_rate = 16000\nchannels = 1\n')
    return "\n".join(lines)
