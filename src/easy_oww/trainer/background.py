"""``freesound_background``: the Freesound library's audio as a dataset of the manifest.

It needs both halves, the library (``freesound/``) and the manifest and catalog
(``datasets/``), which do not import each other; so it lives above them.
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
from easy_oww.validate import FormatError, check_wav

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

        def not_made(item: _Wanted, intact: bool) -> None:
            """A file not (re)made this run: an older one of the same sound, intact and
            recorded, stays (still attributed); anything else at its name goes, so the folder,
            the manifest and ATTRIBUTION.csv always agree."""
            dest = folder / item.file
            if intact:
                made_ok.append(item)
                return
            dest.unlink(missing_ok=True)
            if cache.relative(dest) in recorded:
                cache.forget_files(BACKGROUND, [dest])

        try:
            budget = options.limit
            for item in wanted:
                dest = folder / item.file
                record = recorded.get(cache.relative(dest))
                intact = record is not None and _size(dest) == record.get("size")
                if intact and record.get("from_sha256") == item.audio.sha256:
                    result.kept += 1
                    made_ok.append(item)
                    continue
                if budget is not None and budget <= 0:
                    result.waiting += 1
                    not_made(item, intact)
                    continue
                source = library.folder / item.audio.path
                try:
                    if _size(source) != item.audio.bytes:
                        raise FormatError(source, "is missing or changed since it was fetched; "
                                                  f"run `{MAKE_AUDIO}`")
                    if _is_ready_wav(source):
                        _link_or_copy(source, dest)
                    else:
                        _convert(source, dest)
                except (EasyOwwError, OSError) as exc:
                    message = str(exc) if isinstance(exc, EasyOwwError) else (
                        f"{exc.filename or dest}: {exc.strerror or exc}")
                    result.failed.append((item.audio.id, message))
                    not_made(item, intact)
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
