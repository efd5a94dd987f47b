"""The data handed to openWakeWord's trainer: the Freesound library's audio as the dataset
``freesound_background``, and the keys of the YAML openWakeWord's ``train.py`` reads.

It sits above both halves because it needs both: the library (``freesound/``) and the
manifest and catalog (``datasets/``), which do not import each other.

What the trainer does with the paths, and so what is checked here (openWakeWord's
``openwakeword/train.py``): every RIR folder is listed flat with ``os.scandir`` (no recursion,
no extension filter) and every entry is opened as 16 kHz audio, so a sub-folder, a ``.part``
file or a sidecar breaks a batch later ("Clip does not have the correct sample rate!");
background folders keep ``*.wav`` only and fail when there is none; feature files are memory
mapped, so a truncated ``.npy`` fails with "mmap length is greater than file size".
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import filelock

from easy_oww.atomic import atomic_write_text, atomic_writer, fsync_dir
from easy_oww.datasets.engine import DatasetEngine, made_by
from easy_oww.errors import BadInputError, EasyOwwError, LockTimeoutError, Terminated
from easy_oww.freesound.api import LICENSES
from easy_oww.freesound.crawl import LICENSE_URL_PARTS
from easy_oww.freesound.store import AudioFile, FreesoundLibrary
from easy_oww.hashes import file_hash
from easy_oww.validate import FormatError, check_npy, check_wav, read_wav_header

BACKGROUND = "freesound_background"
ATTRIBUTION = "ATTRIBUTION.csv"
ATTRIBUTION_COLUMNS = ("id", "name", "user", "license", "url", "file")
SAMPLE_RATE = 16000  # what openWakeWord trains on
# Manifest writes: each rewrites the whole manifest, so one per file is quadratic at 20,000
# files; at most one per FLUSH_SECONDS, of at least FLUSH_EVERY files, keeps a run linear and
# a killed run (SIGKILL) remaking only a few seconds' worth.
FLUSH_EVERY = 100
FLUSH_SECONDS = 2.0
MAKE_AUDIO = "easy-oww freesound audio --sample-rate 16000"
_OURS = re.compile(r"^(\d+\.wav|\.\d+\.wav\..*\.tmp|\.ATTRIBUTION\.csv\..*\.tmp)$")


class BackgroundBusyError(LockTimeoutError):
    """Another `freesound background` is making the dataset (exit 75)."""


def license_short(value: str | None) -> str | None:
    """``cc0``, ``by``, ``by-nc`` or ``sampling+`` for a Freesound license (its deed URL, as
    the API answers, or its name); None for one Freesound does not offer."""
    text = str(value or "")
    for short, name in LICENSES.items():
        if text == name or any(part in text for part in LICENSE_URL_PARTS.get(name, ())):
            return short
    return None


@dataclass
class BackgroundOptions:
    licenses: Sequence[str] = ()  # short names; empty: every license
    limit: int | None = None  # at most this many new files this run

    def check(self) -> None:
        for name in self.licenses:
            if name not in LICENSES:
                raise BadInputError(f"--license {name!r}: choose from {', '.join(LICENSES)} "
                                    "(comma-separated; cc0,by leaves out non-commercial sounds)")
        if self.limit is not None and self.limit < 0:
            raise BadInputError("--limit must be 0 or more")


@dataclass
class BackgroundResult:
    folder: str
    made: int = 0  # files converted or linked this run
    kept: int = 0  # made by an earlier run and unchanged
    removed: int = 0  # files the license choice (or the library) no longer includes
    files: int = 0  # WAVs in the dataset after the run
    bytes: int = 0
    left_out: dict[str, int] = field(default_factory=dict)  # license -> sounds left out
    no_audio: int = 0  # stored samples with no audio in the library yet
    waiting: int = 0  # wanted but not made this run (--limit, or interrupted)
    failed: list[tuple[int, str]] = field(default_factory=list)
    complete: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "made": self.made, "kept": self.kept,
                "removed": self.removed, "files": self.files, "bytes": self.bytes,
                "left_out": self.left_out, "no_audio": self.no_audio, "waiting": self.waiting,
                "failed": len(self.failed), "complete": self.complete}


@dataclass(frozen=True)
class _Wanted:
    audio: AudioFile
    sample: dict[str, Any]
    license: str

    @property
    def file(self) -> str:
        return f"{self.audio.id}.wav"


def _background_folder(engine: DatasetEngine) -> Path:
    dataset = engine.catalog.datasets.get(BACKGROUND)
    if dataset is None or made_by(dataset) is None:
        raise BadInputError(f"the loaded catalogs have no made-here dataset {BACKGROUND!r} "
                            "(a catalog with include_builtin = false leaves it out)")
    return engine.datasets_dir / dataset.location


@contextlib.contextmanager
def _background_lock(engine: DatasetEngine) -> Iterator[None]:
    locks = engine.cache_dir / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(locks / f"{BACKGROUND}.lock"), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise BackgroundBusyError(f"another `easy-oww freesound background` is making "
                                  f"{BACKGROUND}; wait for it to finish, then run again"
                                  ) from None
    try:
        yield
    finally:
        lock.release()


def _plan(library: FreesoundLibrary, options: BackgroundOptions, result: BackgroundResult
          ) -> list[_Wanted]:
    """The sounds the dataset holds with these options, in id order; counts what is left out."""
    chosen = set(options.licenses)
    with_audio = set()
    wanted: list[_Wanted] = []
    for audio in library.audio_files():
        with_audio.add(audio.id)
        sample = library.get(audio.id)
        if sample is None or sample["_deleted"]:
            continue  # gone from Freesound: no page left to attribute it to
        short = license_short(sample.get("license")) or "other"
        if chosen and short not in chosen:
            result.left_out[short] = result.left_out.get(short, 0) + 1
            continue
        wanted.append(_Wanted(audio, sample, short))
    result.no_audio = len(library.stored_ids() - with_audio)
    return wanted


def _is_ready_wav(path: Path) -> bool:
    """Already what the dataset holds (16 kHz mono 16-bit PCM WAV): linked, not converted."""
    try:
        info = check_wav(path, sample_rate=SAMPLE_RATE, channels=1)
    except (FormatError, OSError):
        return False
    return info.format_name == "PCM" and info.bits_per_sample == 16


def _link_or_copy(source: Path, dest: Path) -> None:
    """`dest` becomes `source`'s bytes atomically: a hard link (no second copy on disk; the
    library replaces its files by rename, never in place), else a copy."""
    with contextlib.suppress(OSError):
        # Linked already by a run stopped before recording it; and renaming a second link
        # of the same file over it would do nothing, leaving the temp link behind.
        if os.path.samefile(source, dest):
            return
    temp = dest.with_name(f".{dest.name}.{os.getpid()}.link.tmp")
    temp.unlink(missing_ok=True)
    try:
        os.link(source, temp)
    except OSError:  # another filesystem, or one without links (FAT32): copy
        with open(source, "rb") as src, atomic_writer(dest) as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        return
    os.replace(temp, dest)
    fsync_dir(dest.parent)


def _convert(source: Path, dest: Path) -> None:
    """Decode any audio the library holds (an MP3 or Ogg preview, a WAV at another rate) to
    16-bit mono WAV at 16 kHz, atomically."""
    import soundfile as sf  # decoding loads libsndfile: only when a file needs converting

    from easy_oww.audio import read_clip  # numpy and libsoxr: only when converting

    try:
        clip = read_clip(source, SAMPLE_RATE)
    except (sf.LibsndfileError, RuntimeError, EOFError) as exc:
        raise FormatError(source, f"does not decode ({exc}); run `{MAKE_AUDIO}` to fetch "
                                  "it again") from None
    with atomic_writer(dest) as handle:
        sf.write(handle, clip, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def _attribution(rows: list[_Wanted]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ATTRIBUTION_COLUMNS)
    for item in rows:
        sample = item.sample
        sound_id = item.audio.id
        user = sample.get("username") or ""
        url = sample.get("url") or f"https://freesound.org/people/{user}/sounds/{sound_id}/"
        writer.writerow([sound_id, sample.get("name") or "", user,
                         sample.get("license") or item.license, url, item.file])
    return out.getvalue()


def make_background(
    library: FreesoundLibrary,
    engine: DatasetEngine,
    options: BackgroundOptions | None = None,
    *,
    on_file: Callable[[int, dict[str, Any] | None, str | None], None] | None = None,
) -> BackgroundResult:
    """Make (or bring up to date) the dataset ``freesound_background`` from the library's
    audio: one 16 kHz mono 16-bit WAV per sound the license choice admits, named
    ``<id>.wav``, flat in ``<datasets>/freesound_background/``, with ``ATTRIBUTION.csv``.

    Each file is written atomically and recorded in the manifest (size, sha256, the sound and
    the library file it came from); a run makes only what is missing or changed and removes
    what the choice no longer includes, so an interrupted run resumes. ``on_file(id, record,
    error)`` is called after each file made (with its manifest record) or failed. Ctrl-C and
    SIGTERM propagate once what is made is recorded and ATTRIBUTION.csv matches it.
    """
    options = options or BackgroundOptions()
    options.check()
    folder = _background_folder(engine)
    result = BackgroundResult(folder=str(folder))
    cache = engine.cache
    with _background_lock(engine):
        folder.mkdir(parents=True, exist_ok=True)
        wanted = _plan(library, options, result)
        names = {item.file for item in wanted}
        entry = cache.entry(BACKGROUND) or {}
        recorded: dict[str, dict[str, Any]] = dict(entry.get("files", {}))
        attribution_rel = cache.relative(folder / ATTRIBUTION)
        cache.mark_complete(BACKGROUND, False)
        # What the choice no longer includes, and what a killed run left: ours only, by name.
        gone = [rel for rel in recorded if rel != attribution_rel
                and Path(rel).name not in names]
        strays = [p for p in folder.iterdir() if _OURS.match(p.name) and p.name not in names
                  and cache.relative(p) not in recorded]
        for path in [cache.absolute(rel) for rel in gone] + strays:
            path.unlink(missing_ok=True)
        if gone:
            cache.forget_files(BACKGROUND, gone)
        result.removed = len(gone)
        for rel in gone:
            recorded.pop(rel, None)

        pending: list[dict[str, Any]] = []
        made_ok: list[_Wanted] = []
        flushed = time.monotonic()

        def flush() -> None:
            nonlocal flushed
            if pending:
                cache.record_files(BACKGROUND, pending)
                pending.clear()
            flushed = time.monotonic()

        try:
            budget = options.limit
            for item in wanted:
                dest = folder / item.file
                rel = cache.relative(dest)
                record = recorded.get(rel)
                if record is not None and record.get("from_sha256") == item.audio.sha256 \
                        and _size(dest) == record.get("size"):
                    result.kept += 1
                    made_ok.append(item)
                    continue
                if budget is not None and budget <= 0:
                    result.waiting += 1
                    continue
                source = library.folder / item.audio.path
                if _size(source) != item.audio.bytes:
                    message = (f"its audio {source} is missing or changed since it was "
                               f"fetched; run `{MAKE_AUDIO}`")
                    result.failed.append((item.audio.id, message))
                    if on_file is not None:
                        on_file(item.audio.id, None, message)
                    continue
                try:
                    if _is_ready_wav(source):
                        _link_or_copy(source, dest)
                    else:
                        _convert(source, dest)
                except (EasyOwwError, OSError) as exc:
                    message = str(exc) if isinstance(exc, EasyOwwError) else (
                        f"{exc.filename or dest}: {exc.strerror or exc}")
                    result.failed.append((item.audio.id, message))
                    if on_file is not None:
                        on_file(item.audio.id, None, message)
                    continue
                record = {"path": dest, "size": dest.stat().st_size,
                          "hash": file_hash(dest, "sha256"),
                          "source": f"freesound:{item.audio.id}",
                          "validator": f"wav {SAMPLE_RATE} Hz mono 16-bit",
                          "sound_id": item.audio.id, "from_sha256": item.audio.sha256,
                          "license": item.license}
                pending.append(record)
                made_ok.append(item)
                result.made += 1
                if budget is not None:
                    budget -= 1
                if len(pending) >= FLUSH_EVERY and time.monotonic() - flushed >= FLUSH_SECONDS:
                    flush()
                if on_file is not None:
                    on_file(item.audio.id, record, None)
        except (KeyboardInterrupt, Terminated):
            result.waiting = len(wanted) - len(made_ok) - len(result.failed)
            raise
        finally:
            # Whatever stops the run, what was made is recorded and attributed.
            flush()
            made_ok.sort(key=lambda item: item.audio.id)
            attribution = folder / ATTRIBUTION
            atomic_write_text(attribution, _attribution(made_ok))
            cache.record_file(BACKGROUND, attribution, size=attribution.stat().st_size,
                              hash=file_hash(attribution, "sha256"),
                              source="made by easy-oww freesound background",
                              validator="csv")
            result.files = len(made_ok)
            result.bytes = sum(_size(folder / item.file) or 0 for item in made_ok)
        result.complete = not result.failed and not result.waiting
        if result.complete:
            cache.mark_complete(BACKGROUND, True, {
                "licenses": sorted(options.licenses) or "all", "library": str(library.folder),
                "sample_rate": SAMPLE_RATE, "files": result.files})
    return result


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


# ------------------------------------------------------------------------ openWakeWord's YAML
FEATURES_NAME = "ACAV100M_sample"  # openWakeWord's example config's name for these features
# The keys written, in openWakeWord's example order (examples/custom_model.yml).
TRAINER_KEYS = ("rir_paths", "background_paths", "background_paths_duplication_rate",
                "false_positive_validation_data_path", "feature_data_files")
# batch_n_per_class keys train.py adds itself (its generated clips), not feature files.
GENERATED_CLASSES = ("positive", "adversarial_negative")


@dataclass
class TrainerPaths:
    """What `oww-config` writes, and what would trip the trainer, one line each."""

    rir_paths: list[str] = field(default_factory=list)
    background_paths: list[str] = field(default_factory=list)
    false_positive_validation_data_path: str | None = None
    feature_data_files: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def values(self, duplication_rate: int = 1) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rir_paths": list(self.rir_paths),
            "background_paths": list(self.background_paths),
            "background_paths_duplication_rate": [duplication_rate] * len(
                self.background_paths),
        }
        if self.false_positive_validation_data_path is not None:
            out["false_positive_validation_data_path"] = self.false_positive_validation_data_path
        if self.feature_data_files:
            out["feature_data_files"] = dict(self.feature_data_files)
        return out


def _cached(engine: DatasetEngine, key: str, paths: TrainerPaths, key_for: str,
            command: str) -> Path | None:
    """The dataset's path when it is cached; else a problem line naming `command`."""
    if key not in engine.catalog.datasets:
        paths.problems.append(f"{key_for}: the loaded catalogs have no dataset {key!r}")
        return None
    row = engine.status([key])[0]
    if row.status == "cached":
        return Path(row.path)
    paths.problems.append(f"{key_for}: {key} is {row.status}; run `{command}`")
    return None


def trainer_paths(engine: DatasetEngine) -> TrainerPaths:
    """The paths openWakeWord's trainer wants, from what the manifest says is cached."""
    paths = TrainerPaths()
    rir = _cached(engine, "mit_rir", paths, "rir_paths", "easy-oww download --dataset mit_rir")
    if rir is not None:
        paths.rir_paths.append(str(rir))
    _fsd50k_folders(engine, paths)
    if BACKGROUND in engine.catalog.datasets:
        row = engine.status([BACKGROUND])[0]
        if row.status == "cached":
            paths.background_paths.append(row.path)
        elif row.status == "missing":
            paths.notes.append(f"{BACKGROUND} is not made: `easy-oww freesound background` "
                               "adds your Freesound library's sounds to background_paths")
        else:
            paths.problems.append(f"background_paths: {BACKGROUND} is {row.status}; run "
                                  "`easy-oww freesound background`")
    if not paths.background_paths and not any(
            p.startswith("background_paths") for p in paths.problems):
        paths.problems.append(
            "background_paths: no background audio is ready; run `easy-oww download --dataset "
            "fsd50k --sample-rate 16000` or `easy-oww freesound background`")
    val = _cached(engine, "acav100m_val", paths, "false_positive_validation_data_path",
                  "easy-oww download --dataset acav100m_val")
    if val is not None:
        paths.false_positive_validation_data_path = str(val)
    train = _cached(engine, "acav100m_train", paths, "feature_data_files",
                    "easy-oww download --dataset acav100m_train")
    if train is not None:
        paths.feature_data_files[FEATURES_NAME] = str(train)
    return paths


def _fsd50k_folders(engine: DatasetEngine, paths: TrainerPaths) -> None:
    """FSD50K's clip folders when it was unpacked at 16 kHz (one per split unpacked)."""
    dataset = engine.catalog.datasets.get("fsd50k")
    if dataset is None:
        return
    row = engine.status(["fsd50k"])[0]
    if row.status == "missing":
        return  # optional: freesound_background may be the background
    if row.status != "cached":
        paths.problems.append(f"background_paths: fsd50k is {row.status}; run `easy-oww "
                              "download --dataset fsd50k --sample-rate 16000`")
        return
    metadata = (engine.cache.entry("fsd50k") or {}).get("metadata") or {}
    if metadata.get("sample_rate") != SAMPLE_RATE:
        paths.notes.append(
            "fsd50k was unpacked at its original rate, not 16 kHz, so it is left out of "
            "background_paths; `easy-oww remove fsd50k --yes` then `easy-oww download "
            "--dataset fsd50k --sample-rate 16000` makes it usable")
        return
    split = metadata.get("split")
    for spec in dataset.unpack_for(None if split in (None, "both") else split):
        if spec.audio:
            paths.background_paths.append(str(engine.datasets_dir / spec.into))


# ------------------------------------------------------------------------------- the checks
def _names(entries: list[str]) -> str:
    shown = ", ".join(entries[:3])
    return shown + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")


def _ours(engine: DatasetEngine, folder: Path) -> str | None:
    """The dataset a folder or file belongs to (it lies under its location), if any."""
    for dataset in engine.catalog.datasets.values():
        where = engine.datasets_dir / dataset.location
        if folder == where or folder.is_relative_to(where):
            return dataset.key
    return None


def check_rir_folder(engine: DatasetEngine, folder: Path) -> list[str]:
    """What in a RIR folder openWakeWord would open as a 16 kHz clip and fail on."""
    if not folder.is_dir():
        return [f"rir_paths: {folder} is not a folder; point rir_paths at a folder of 16 kHz "
                "WAV files"]
    key = _ours(engine, folder)
    redo = (f"run `easy-oww download --dataset {key}` to finish it, then `easy-oww clean`"
            if key else "move them out of the folder")
    subfolders, partial, other, wrong_rate, broken = [], [], [], [], []
    wavs = 0
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_dir():
                subfolders.append(entry.name)
            elif entry.name.endswith((".part", ".part.json")) or ".part.json." in entry.name:
                partial.append(entry.name)
            elif not entry.name.lower().endswith(".wav"):
                other.append(entry.name)
            else:
                try:
                    rate = read_wav_header(Path(entry.path)).sample_rate
                except (FormatError, OSError):
                    broken.append(entry.name)
                    continue
                if rate != SAMPLE_RATE:
                    wrong_rate.append(f"{entry.name} ({rate} Hz)")
                else:
                    wavs += 1
    problems = []
    where = f"rir_paths: {folder}"
    if subfolders:
        problems.append(f"{where} holds sub-folders ({_names(subfolders)}), which openWakeWord "
                        "lists flat and opens as audio; move them out of the folder")
    if partial:
        problems.append(f"{where} holds partial downloads ({_names(partial)}); {redo}")
    if other:
        problems.append(f"{where} holds files that are not WAV ({_names(other)}); move them "
                        "out of the folder")
    if wrong_rate:
        fix = (f"run `easy-oww verify {key}` and `easy-oww download --dataset {key}`" if key
               else "resample them to 16 kHz mono (e.g. `sox in.wav -r 16000 -c 1 out.wav`)")
        problems.append(f"{where} holds WAVs that are not 16 kHz ({_names(wrong_rate)}); {fix}")
    if broken:
        fix = (f"run `easy-oww verify {key} --deep`" if key else "replace or remove them")
        problems.append(f"{where} holds WAVs whose header does not read ({_names(broken)}); "
                        f"{fix}")
    if not wavs and not problems:
        problems.append(f"{where} holds no WAV files; run `easy-oww download --dataset mit_rir`")
    return problems


def check_background_folder(engine: DatasetEngine, folder: Path) -> list[str]:
    """openWakeWord keeps ``*.wav`` only and fails on a background folder with none."""
    if not folder.is_dir():
        return [f"background_paths: {folder} is not a folder; remove it from background_paths "
                "or create it"]
    if any(folder.glob("*.wav")):
        return []
    key = _ours(engine, folder)
    fix = {BACKGROUND: "run `easy-oww freesound background`",
           "fsd50k": "run `easy-oww download --dataset fsd50k --sample-rate 16000`"}.get(
        key or "", "put 16 kHz WAV files in it (openWakeWord reads *.wav only, not MP3)")
    return [f"background_paths: {folder} holds no WAV files; {fix}"]


def check_features(engine: DatasetEngine, path: Path, what: str) -> list[str]:
    """A features file whose .npy header does not match its size (a truncated download):
    the trainer's memory map fails with "mmap length is greater than file size"."""
    key = _ours(engine, path)
    pins: dict[str, Any] = {}
    if key is not None:
        entry = next((f for f in engine.catalog.get(key).files
                      if engine.datasets_dir / f.path == path), None)
        if entry is not None:
            pins = {"shape": entry.shape, "dtype": entry.dtype}
    try:
        check_npy(path, **{k: v for k, v in pins.items() if v is not None})
    except FormatError as exc:
        fix = (f"run `easy-oww verify {key}`, then `easy-oww download --dataset {key}`" if key
               else "replace it with a complete copy")
        return [f"{what}: {exc}; {fix}"]
    except OSError as exc:
        return [f"{what}: {path}: {exc.strerror or exc}"]
    return []


def check_config(engine: DatasetEngine, config: dict[str, Any]) -> list[str]:
    """Everything in the trainer's keys of `config` that openWakeWord would trip on."""
    problems: list[str] = []
    for folder in config.get("rir_paths") or []:
        problems += check_rir_folder(engine, Path(str(folder)))
    backgrounds = list(config.get("background_paths") or [])
    for folder in backgrounds:
        problems += check_background_folder(engine, Path(str(folder)))
    rates = config.get("background_paths_duplication_rate")
    if rates is not None and len(list(rates)) != len(backgrounds):
        problems.append(f"background_paths_duplication_rate has {len(list(rates))} values for "
                        f"{len(backgrounds)} background_paths; give one per folder")
    fp = config.get("false_positive_validation_data_path")
    if fp:
        problems += check_features(engine, Path(str(fp)), "false_positive_validation_data_path")
    features = config.get("feature_data_files") or {}
    for name, path in features.items():
        problems += check_features(engine, Path(str(path)), f"feature_data_files.{name}")
    batch = config.get("batch_n_per_class")
    if isinstance(batch, dict) and features:
        missing = [n for n in features if n not in batch]
        unknown = [n for n in batch if n not in features and n not in GENERATED_CLASSES]
        if missing:
            problems.append(f"batch_n_per_class has no count for {_names(missing)} of "
                            "feature_data_files; add one (openWakeWord's example: "
                            f"{FEATURES_NAME}: 1024)")
        if unknown:
            problems.append(f"batch_n_per_class names {_names(unknown)}, which "
                            "feature_data_files does not; remove it or add its features file")
    return problems


# ------------------------------------------------------------------------------ the YAML
@dataclass
class OwwConfig:
    """The trainer's keys merged into a config (a user's, or a new one), and its checks."""

    text: str  # the whole YAML document as written
    values: dict[str, Any]  # the trainer's keys as they stand in it
    problems: list[str]
    notes: list[str]


def _load_yaml(path: Path) -> Any:
    from ruamel.yaml.error import YAMLError  # see _yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInputError(f"--into {path}: no such file; write a new one with --output "
                            "instead") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"--into {path}: cannot be read ({exc})") from None
    try:
        data = _yaml().load(text)
    except YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise BadInputError(f"--into {path}: not valid YAML{line} ({problem}); fix it or "
                            "choose another file") from None
    if data is None:
        from ruamel.yaml.comments import CommentedMap

        return CommentedMap()
    if not isinstance(data, dict):
        raise BadInputError(f"--into {path}: holds a YAML {type(data).__name__}, not the "
                            "mapping of settings openWakeWord's train.py reads")
    return data


def _yaml() -> Any:
    from ruamel.yaml import YAML  # the round-trip dumper: only for oww-config

    yaml = YAML()  # round trip: keys, order, comments and quotes stay as the user wrote them
    yaml.preserve_quotes = True
    yaml.width = 4096  # a long path stays on its line
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _inside(path: object, root: Path) -> bool:
    try:
        return Path(str(path)).expanduser().absolute().is_relative_to(root)
    except (TypeError, ValueError):
        return False


def _put(mapping: Any, key: str, value: Any) -> None:
    """Set `key` where it stands (or at the end), written the same way every run: replaced in
    place, ruamel keeps the old value's quotes on the first run and not the next."""
    if key in mapping:
        position = list(mapping).index(key)
        del mapping[key]
        mapping.insert(position, key, value)
    else:
        mapping[key] = value


def _merge_folders(config: Any, paths: list[str], root: Path, rate: int) -> None:
    """background_paths (and their rates): the user's own folders stay, with their rates and
    comments; those under the datasets folder are easy-oww's and are written anew."""
    from ruamel.yaml.comments import CommentedSeq  # see _yaml

    old = config.get("background_paths")
    old = old if isinstance(old, list) else []
    rates = config.get("background_paths_duplication_rate")
    rates = rates if isinstance(rates, list) and len(rates) == len(old) else [1] * len(old)
    kept = [(p, r) for p, r in zip(old, rates, strict=True) if not _inside(p, root)]
    folders = config.get("background_paths")
    if not isinstance(folders, list):
        folders = CommentedSeq()
        _put(config, "background_paths", folders)
    for index in reversed(range(len(folders))):
        if _inside(folders[index], root):
            del folders[index]
    folders.extend(paths)
    new_rates = [r for _, r in kept] + [rate] * len(paths)
    current = config.get("background_paths_duplication_rate")
    if isinstance(current, list):
        current[:] = new_rates
    else:
        _put(config, "background_paths_duplication_rate", new_rates)


def _merge_list(config: Any, key: str, paths: list[str], root: Path) -> None:
    from ruamel.yaml.comments import CommentedSeq  # see _yaml

    items = config.get(key)
    if not isinstance(items, list):
        items = CommentedSeq()
        _put(config, key, items)
    for index in reversed(range(len(items))):
        if _inside(items[index], root):
            del items[index]
    items.extend(p for p in paths if p not in items)


def oww_config(engine: DatasetEngine, *, into: Path | None = None,
               duplication_rate: int = 1) -> OwwConfig:
    """openWakeWord's trainer keys from what is cached, merged into the config `into` (its
    other keys, order and comments kept) or into a new document; then every path checked as
    the trainer will read it. Nothing is written: the caller writes `text`."""
    from ruamel.yaml.comments import CommentedMap  # see _yaml

    if duplication_rate < 1:
        raise BadInputError("--duplication-rate must be 1 or more")
    paths = trainer_paths(engine)
    if into is not None:
        config = _load_yaml(into)
    else:
        config = CommentedMap()
        config.yaml_set_start_comment(
            f"openWakeWord training paths, written by `easy-oww oww-config` from "
            f"{engine.datasets_dir}.\nMerge them into your training config (or run "
            "`easy-oww oww-config --into YOUR.yml`).")
    root = engine.datasets_dir
    _merge_list(config, "rir_paths", paths.rir_paths, root)
    _merge_folders(config, paths.background_paths, root, duplication_rate)
    if paths.false_positive_validation_data_path is not None:
        _put(config, "false_positive_validation_data_path",
             paths.false_positive_validation_data_path)
    if paths.feature_data_files:
        features = config.get("feature_data_files")
        if not isinstance(features, dict):
            features = CommentedMap()
            _put(config, "feature_data_files", features)
        for name in [n for n, p in features.items() if _inside(p, root)
                     and n not in paths.feature_data_files]:
            del features[name]  # easy-oww's, under a name no longer written
        for name, path in paths.feature_data_files.items():
            _put(features, name, path)
    stream = io.StringIO()
    _yaml().dump(config, stream)
    plain = {key: _plain(config[key]) for key in TRAINER_KEYS if key in config}
    problems = list(paths.problems) + check_config(engine, {
        **plain, "batch_n_per_class": _plain(config.get("batch_n_per_class"))})
    return OwwConfig(text=stream.getvalue(), values=plain, problems=problems,
                     notes=paths.notes)


def _plain(value: Any) -> Any:
    """ruamel's commented containers as plain lists and dicts (for JSON and the checks)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
