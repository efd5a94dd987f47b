"""Audio for the stored samples: Freesound's previews, fetched with the datasets' engine.

Freesound serves every sound's previews (MP3 and Ogg, high and low quality) from its CDN
without a key, so no token goes with these requests. Each preview goes through the same
fetcher as the datasets (``.part`` file, resume, retries, size check, atomic rename) to
``<library>/audio/<id>.mp3`` (or ``.ogg``), and is decoded once before it counts, so an error
page served with a 200 never passes as audio. With ``sample_rate`` the preview becomes a
16-bit mono WAV at that rate (what openWakeWord trains on) and the preview is dropped.

The store records each file (path, size, sha256, settings) in its own durable transaction
after the file is in place: a crash never loses a finished file, and the next run fetches
only what is missing. A file in place without its record (a crash between the two, or one
made with other settings) is fetched again rather than trusted, and the audio folder holds
nothing else: a run starts by deleting what a killed run left there.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import filelock

from easy_oww.atomic import atomic_writer
from easy_oww.errors import (
    BadInputError,
    DownloadError,
    EasyOwwError,
    NetworkError,
    Terminated,
)
from easy_oww.freesound.errors import LibraryLockedError
from easy_oww.freesound.stopped import Stopped
from easy_oww.freesound.store import AudioFile, FreesoundLibrary
from easy_oww.hashes import file_hash
from easy_oww.transfer.fetch import Cancelled, Fetcher, FetchOptions, FetchRequest
from easy_oww.workers import WorkerPool

AUDIO_DIR = "audio"
AUDIO_LOCK = ".audio.lock"
QUALITIES = ("hq-mp3", "hq-ogg", "lq-mp3", "lq-ogg")


@dataclass
class AudioOptions:
    quality: str = "hq-mp3"
    sample_rate: int | None = None  # None keeps the preview as served
    limit: int | None = None  # at most this many files this run
    jobs: int = 4

    def check(self) -> None:
        if self.quality not in QUALITIES:
            raise BadInputError(f"--quality {self.quality!r}: choose one of "
                                f"{', '.join(QUALITIES)}")
        if self.sample_rate is not None and not 8000 <= self.sample_rate <= 48000:
            raise BadInputError(f"--sample-rate {self.sample_rate}: choose a rate between "
                                "8000 and 48000 Hz (openWakeWord uses 16000)")
        if self.jobs < 1:
            raise BadInputError("--jobs must be at least 1")


@dataclass
class AudioResult:
    fetched: int = 0  # files added this run (downloaded, or converted from a preview)
    transferred: int = 0  # bytes received this run
    failed: list[tuple[int, str]] = field(default_factory=list)
    wanted: int = 0  # files this run set out to make
    files: int = 0  # audio files in the library after the run
    bytes: int = 0
    stopped: Stopped = Stopped.DONE

    def as_dict(self) -> dict[str, object]:
        return {"fetched": self.fetched, "failed": len(self.failed), "wanted": self.wanted,
                "transferred": self.transferred, "files": self.files, "bytes": self.bytes,
                "stopped": self.stopped}


def audio_path(folder: Path, sound_id: int, quality: str, sample_rate: int | None) -> Path:
    ext = "wav" if sample_rate else quality.split("-")[1]
    return Path(folder) / AUDIO_DIR / f"{sound_id}.{ext}"


@contextlib.contextmanager
def audio_lock(folder: Path):  # type: ignore[no-untyped-def]
    """One audio run per library (two would fetch the same files); `grow` may run beside it."""
    lock = filelock.FileLock(str(Path(folder) / AUDIO_LOCK), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LibraryLockedError(
            f"another `easy-oww freesound audio` is fetching into {folder}; wait for it to "
            "finish, then run again") from None
    try:
        yield
    finally:
        lock.release()


def _decode_check(path: Path) -> None:
    """Raise BadAudioError unless the file decodes (header and the first second)."""
    import soundfile as sf  # loads libsndfile through cffi: only when a preview is checked

    try:
        with sf.SoundFile(path) as audio:
            if audio.frames == 0 or audio.samplerate <= 0:
                raise BadAudioError(f"{path.name} holds no audio")
            audio.read(min(audio.frames, audio.samplerate), dtype="float32")
    except (sf.LibsndfileError, RuntimeError, EOFError) as exc:
        raise BadAudioError(f"{path.name} is not audio that decodes ({exc})") from None


def _to_wav(source: Path, dest: Path, sample_rate: int) -> None:
    """Decode any preview, write 16-bit mono WAV at `sample_rate` atomically."""
    # libsndfile, numpy and libsoxr load only when a preview is converted (--sample-rate).
    import soundfile as sf

    from easy_oww.audio import read_clip

    try:
        clip = read_clip(source, sample_rate)
    except (sf.LibsndfileError, RuntimeError, EOFError) as exc:
        raise BadAudioError(f"{source.name} is not audio that decodes ({exc})") from None
    with atomic_writer(dest) as handle:
        sf.write(handle, clip, sample_rate, subtype="PCM_16", format="WAV")


def _sha256(path: Path) -> str:
    return file_hash(path, "sha256").split(":", 1)[1]


class BadAudioError(EasyOwwError):
    """A preview that does not decode (exit 1)."""


def fetch_audio(
    library: FreesoundLibrary,
    options: AudioOptions | None = None,
    *,
    fetcher: Fetcher | None = None,
    on_file: Callable[[AudioFile | None, int, str | None], None] | None = None,
) -> AudioResult:
    """Fetch the audio of every stored sample that has none with these settings yet.

    ``on_file(audio, sound_id, error)`` is called after each file, from worker threads.
    One sample's failure (preview gone, not audio) is recorded as a problem and the run goes
    on. Ctrl-C / SIGTERM stop the workers after saving their partial files (resumable) and
    return with ``stopped`` set; every recorded file stays.
    """
    options = options or AudioOptions()
    options.check()
    folder = library.folder
    fetcher = fetcher or Fetcher(FetchOptions(connections=1),
                                 user_agent="easy-oww (freesound audio)")
    result = AudioResult()
    with audio_lock(folder):
        _sweep_strays(library)
        wanted = plan_audio(library, options)
        result.wanted = len(wanted)
        work: queue.Queue[tuple[int, dict]] = queue.Queue()
        for item in wanted:
            work.put(item)
        lock = threading.Lock()

        def worker() -> None:
            while not fetcher.cancel.is_set():
                try:
                    sound_id, previews = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    audio, transferred = _fetch_one(library, fetcher, options, sound_id,
                                                    previews)
                except Cancelled:
                    return
                except NetworkError as exc:  # offline: every other file would fail the same
                    with lock:
                        result.failed.append((sound_id, str(exc)))
                        result.stopped = Stopped.OFFLINE
                    fetcher.cancel.set()
                    return
                except (EasyOwwError, OSError) as exc:
                    message = str(exc) if isinstance(exc, EasyOwwError) else (
                        f"{getattr(exc, 'filename', '') or sound_id}: {exc.strerror or exc}")
                    if isinstance(exc, DownloadError) and exc.status in (404, 410):
                        message = (f"its preview is gone from Freesound (HTTP {exc.status}): "
                                   "marked deleted, not asked for again")
                        with contextlib.suppress(Exception):
                            library.mark_deleted(sound_id, f"preview HTTP {exc.status}")
                    with lock:
                        result.failed.append((sound_id, message))
                    with contextlib.suppress(Exception):
                        library.record_problem(f"audio: {message}", sound_id=sound_id)
                    if on_file is not None:
                        on_file(None, sound_id, message)
                    continue
                with lock:
                    result.fetched += 1
                    result.transferred += transferred
                if on_file is not None:
                    on_file(audio, sound_id, None)

        pool = WorkerPool(worker, min(options.jobs, max(1, len(wanted))), "audio").start()
        try:
            pool.wait()
        except (KeyboardInterrupt, Terminated) as exc:
            result.stopped = (Stopped.TERMINATED if isinstance(exc, Terminated)
                              else Stopped.INTERRUPTED)
            fetcher.cancel.set()  # the workers save their sidecars and stop
            pool.wait(5)  # a stalled connection notices only when its read times out
    stats = library.stats()
    result.files, result.bytes = stats.audio, stats.audio_bytes
    return result


def _fetch_one(library: FreesoundLibrary, fetcher: Fetcher, options: AudioOptions,
               sound_id: int, previews: dict) -> tuple[AudioFile, int]:
    folder = library.folder
    dest = audio_path(folder, sound_id, options.quality, options.sample_rate)
    preview = audio_path(folder, sound_id, options.quality, None)
    old = library.audio_of(sound_id)
    # Only a preview recorded with this quality (and intact) is reused, as the source of a
    # conversion; any other file at these paths is fetched again: its quality is unknown.
    reuse = (options.sample_rate is not None and old is not None and old.sample_rate is None
             and old.quality == options.quality and old.path == _relative(folder, preview)
             and _size(folder / old.path) == old.bytes)
    if old is not None and not reuse and old.path in (_relative(folder, dest),
                                                      _relative(folder, preview)):
        library.forget_audio(sound_id)  # its file is about to be replaced
        old = None
    transferred = 0
    digest = None  # sha256 of what ends at `dest`, when already known
    if not reuse:
        url = previews.get(f"preview-{options.quality}")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BadAudioError(f"no {options.quality} preview URL in the library (none came "
                                "with its metadata), so there is no audio to fetch; try "
                                "another --quality")
        try:
            fetched = fetcher.fetch(FetchRequest(url, preview, label=preview.name))
        finally:
            # One lock file a sample would pile up by the thousand; no one else can want
            # it, as the audio lock keeps other runs out.
            fetcher.lock_file(preview).unlink(missing_ok=True)
        transferred = fetched.transferred
        digest = fetched.hash.partition(":")[2] or None  # hashed as it arrived
    try:
        _decode_check(preview)
    except BadAudioError:
        preview.unlink(missing_ok=True)  # never keep what is not audio
        raise
    if options.sample_rate:
        _to_wav(preview, dest, options.sample_rate)
        digest = None
    audio = AudioFile(sound_id, _relative(folder, dest), dest.stat().st_size,
                      digest or _sha256(dest), options.quality, options.sample_rate)
    library.record_audio(audio)
    # Tidy only after the commit: a crash before it leaves a stray file, never a record
    # pointing at nothing.
    if options.sample_rate:
        preview.unlink(missing_ok=True)
    if old is not None and old.path != audio.path:
        (folder / old.path).unlink(missing_ok=True)  # made with other settings: replaced
    return audio, transferred


def _sweep_strays(library: FreesoundLibrary) -> None:
    """Delete what a killed run left in the audio folder: files no record names (a preview
    fetched but not converted, or not deleted after its conversion was recorded) and
    half-written conversions. Partial downloads stay: the next fetch resumes them. Called
    under the audio lock, so no other run is writing here."""
    audio_dir = library.folder / AUDIO_DIR
    if not audio_dir.is_dir():
        return
    recorded = {audio.path for audio in library.audio_files()}
    for path in audio_dir.iterdir():
        stray = path.suffix in (".mp3", ".ogg", ".wav") and not path.name.startswith(".") \
            and _relative(library.folder, path) not in recorded
        half_written = path.name.startswith(".") and path.name.endswith(".tmp") \
            and ".part.json." not in path.name  # sidecar temps: the fetch sweeps its own
        if path.is_file() and (stray or half_written):
            path.unlink(missing_ok=True)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def plan_audio(library: FreesoundLibrary, options: AudioOptions) -> list[tuple[int, dict]]:
    """(id, previews) of the samples a run with `options` will fetch: recorded files gone or
    changed first, then samples with no audio made with these settings."""
    wanted = _damaged(library, options) + library.audio_wanted(
        options.quality, options.sample_rate, options.limit)
    return wanted[: options.limit] if options.limit is not None else wanted


def _damaged(library: FreesoundLibrary, options: AudioOptions) -> list[tuple[int, dict]]:
    """Recorded files with these settings that are gone or changed size: fetch again."""
    damaged = []
    for audio in library.audio_files():
        if audio.quality != options.quality or audio.sample_rate != options.sample_rate:
            continue
        intact = _size(library.folder / audio.path) == audio.bytes
        sample = None if intact else library.get(audio.id)
        if sample is not None and not sample["_deleted"]:
            damaged.append((audio.id, sample.get("previews") or {}))
    return damaged


def _relative(folder: Path, path: Path) -> str:
    return path.relative_to(folder).as_posix()


def verify_audio(library: FreesoundLibrary, *, deep: bool = False) -> list[str]:
    """Problems with the recorded audio files: missing, wrong size, or (deep) wrong sha256."""
    problems = []
    for audio in library.audio_files():
        path = library.folder / audio.path
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            problems.append(f"audio of sound {audio.id} is missing ({audio.path}); run "
                            "`easy-oww freesound audio` to fetch it again")
            continue
        if size != audio.bytes:
            problems.append(f"audio of sound {audio.id} ({audio.path}) is {size:,} bytes, "
                            f"recorded {audio.bytes:,}")
        elif deep and _sha256(path) != audio.sha256:
            problems.append(f"audio of sound {audio.id} ({audio.path}) changed since it was "
                            "fetched (sha256 differs)")
    return problems
