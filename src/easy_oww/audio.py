"""Audio conversion for ``--sample-rate 16000`` (and unpacks with ``sample_rate``) and clip
reading for trainers.

The resampler is libsoxr (through the ``soxr`` package), quality "HQ", streamed in blocks so
memory stays flat for any clip length. Output is 16-bit PCM mono WAV. The converter reads a
forward-only stream, so it can take a member straight out of an archive; it knows the output
length from the WAV header before it starts, so the output header is written first and the
output is hashed as it is written, with no second pass.

``AudioConverter`` adds the other formats libsndfile reads (FLAC, MP3, OGG, AIFF): such a
member is buffered whole (archive streams cannot seek; the clips are seconds long), decoded
with soundfile, downmixed, resampled with libsoxr and written as the same 16-bit mono WAV.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Protocol

import numpy as np
import soxr

from easy_oww.atomic import atomic_writer
from easy_oww.hashes import HashingWriter
from easy_oww.validate import (
    WAVE_FORMAT_IEEE_FLOAT,
    WAVE_FORMAT_PCM,
    FormatError,
    WavInfo,
    parse_wav_header,
)

DEFAULT_SAMPLE_RATE = 16000
WAV_SUFFIXES = frozenset({".wav", ".wave"})
# What libsndfile 1.2 decodes (MP3 since 1.1); anything else in an archive is not audio.
AUDIO_SUFFIXES = WAV_SUFFIXES | {".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff"}
BLOCK_FRAMES = 1 << 16  # ~1.5 s at 44.1 kHz per step


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int | None: ...


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def resampler_name() -> str:
    return f"soxr {soxr.__version__} (libsoxr)"


def pcm16_wav_header(frames: int, sample_rate: int, channels: int = 1) -> bytes:
    """The canonical 44-byte header of a 16-bit PCM WAV holding ``frames`` frames."""
    align = 2 * channels
    data = frames * align
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data, b"WAVE", b"fmt ", 16, WAVE_FORMAT_PCM,
        channels, sample_rate, sample_rate * align, align, 16, b"data", data,
    )


def output_frames(frames: int, in_rate: int, out_rate: int) -> int:
    """Frames after resampling: round(frames × out/in), what libsoxr yields for a whole stream."""
    return (frames * out_rate + in_rate // 2) // in_rate


class WavResampler:
    """Convert a WAV byte stream to 16-bit PCM mono WAV at ``sample_rate``.

    Callable as ``resampler(src, dst, name)``: ``src`` needs only ``read(n)`` (an archive member
    stream will do), ``dst`` only ``write(bytes)``, written strictly in order. Reads exactly
    the header and the data chunk of ``src``; whatever follows the data is left unread.
    """

    def __init__(self, sample_rate: int = DEFAULT_SAMPLE_RATE, *, quality: str = "HQ",
                 block_frames: int = BLOCK_FRAMES) -> None:
        self.sample_rate = sample_rate
        self.quality = quality
        self.block_frames = block_frames

    @property
    def settings(self) -> dict[str, Any]:
        """What the manifest records about a converted file."""
        return {"sample_rate": self.sample_rate, "channels": 1, "subtype": "PCM_16",
                "resampler": resampler_name(), "quality": self.quality}

    def __call__(self, src: _Readable, dst: _Writable, name: Path | str = "<stream>") -> int:
        info = parse_wav_header(src.read, name)
        if info.format_tag not in (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT):
            raise FormatError(name, f"WAV sample format {info.format_name} cannot be "
                                    "converted (expected PCM or IEEE float)",
                              expected="PCM or IEEE float", found=info.format_name)
        n_out = output_frames(info.frames, info.sample_rate, self.sample_rate)
        dst.write(pcm16_wav_header(n_out, self.sample_rate))
        fast = info.format_tag == WAVE_FORMAT_PCM and info.bits_per_sample == 16 \
            and info.channels == 1  # FSD50K's shape: stay in int16 end to end
        same_rate = info.sample_rate == self.sample_rate
        stream = None if same_rate else soxr.ResampleStream(
            info.sample_rate, self.sample_rate, 1,
            dtype="int16" if fast else "float32", quality=self.quality,
        )
        written = 0
        remaining = info.frames * info.block_align
        step = self.block_frames * info.block_align
        while remaining > 0 or stream is not None:
            if remaining > 0:
                raw = src.read(min(step, remaining))
                if len(raw) < min(step, remaining) or len(raw) % info.block_align:
                    raise FormatError(
                        name, f"WAV data cut short: {info.data_size - remaining + len(raw):,} "
                              f"of {info.data_size:,} bytes",
                        expected=info.data_size, found=info.data_size - remaining + len(raw))
                remaining -= len(raw)
                block = _decode(raw, info, keep_int16=fast)
                last = remaining == 0
            else:
                block, last = np.zeros(0, np.int16 if fast else np.float32), True
            out = block if stream is None else stream.resample_chunk(block, last=last)
            if out.dtype != np.int16:
                out = _float_to_int16(out)
            out = out[: max(0, n_out - written)]
            dst.write(out.astype("<i2", copy=False).tobytes())
            written += len(out)
            if last:
                break
        if written < n_out:  # libsoxr's rounding may differ by a frame: keep the header honest
            dst.write(b"\x00\x00" * (n_out - written))
        return n_out


class AudioDecodeError(FormatError):
    """An audio member or file that libsndfile cannot decode, or that holds no audio."""


class AudioConverter:
    """Convert any audio libsndfile reads to 16-bit PCM mono WAV at ``sample_rate``.

    An extraction transform (``archives.extract``): ``target(rel)`` says which members it
    converts (by suffix) and what they become (``<stem>.wav`` and the settings recorded with
    them); a member it does not convert is copied as it is. WAV members take
    ``WavResampler``'s streaming path with its settings; the others are decoded whole.
    """

    def __init__(self, sample_rate: int = DEFAULT_SAMPLE_RATE, *,
                 quality: str = "HQ") -> None:
        self.sample_rate = sample_rate
        self.quality = quality
        self.wav = WavResampler(sample_rate, quality=quality)

    @property
    def settings(self) -> dict[str, Any]:
        """The settings of a WAV member: exactly ``WavResampler``'s."""
        return self.wav.settings

    @property
    def decoded_settings(self) -> dict[str, Any]:
        """The settings of a member decoded by libsndfile."""
        import soundfile as sf  # loads libsndfile through cffi: only when there is audio

        return {**self.wav.settings, "decoder": f"libsndfile {sf.__libsndfile_version__}"}

    def target(self, rel: str) -> tuple[str, dict[str, Any]] | None:
        """(output path, settings) for an audio member; None for one copied as it is."""
        path = PurePosixPath(rel)
        suffix = path.suffix.lower()
        if suffix not in AUDIO_SUFFIXES:
            return None
        settings = self.settings if suffix in WAV_SUFFIXES else self.decoded_settings
        return str(path.with_suffix(".wav")), settings

    def __call__(self, src: _Readable, dst: _Writable, name: Path | str = "<stream>") -> int:
        if PurePosixPath(str(name)).suffix.lower() in WAV_SUFFIXES:
            return self.wav(src, dst, name)
        return self.convert_bytes(src.read(), dst, name)

    def convert_bytes(self, data: bytes, dst: _Writable, name: Path | str = "<bytes>") -> int:
        """Decode one whole encoded file and write it to ``dst`` as 16-bit mono WAV."""
        import soundfile as sf  # loads libsndfile through cffi: only when there is audio

        try:
            with sf.SoundFile(io.BytesIO(data)) as handle:
                rate = handle.samplerate
                frames = handle.read(dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError, ValueError) as exc:
            reason = getattr(exc, "error_string", None) or str(exc)
            raise AudioDecodeError(name, f"cannot be decoded ({reason.rstrip('.')})",
                                   found=reason) from None
        if len(frames) == 0:
            raise AudioDecodeError(name, "holds no audio (0 frames decoded)", found=0)
        mono = _downmix(frames)
        if rate != self.sample_rate:
            mono = soxr.resample(mono, rate, self.sample_rate, quality=self.quality)
        out = _float_to_int16(mono)
        dst.write(pcm16_wav_header(len(out), self.sample_rate))
        dst.write(out.astype("<i2", copy=False).tobytes())
        return len(out)


def _decode(raw: bytes, info: WavInfo, *, keep_int16: bool) -> np.ndarray:
    """Raw little-endian frames to a mono array (int16 if asked and possible, else float32)."""
    bits, tag = info.bits_per_sample, info.format_tag
    if keep_int16:
        return np.frombuffer(raw, "<i2")
    if tag == WAVE_FORMAT_IEEE_FLOAT and bits in (32, 64):
        x = np.frombuffer(raw, "<f4" if bits == 32 else "<f8").astype(np.float32)
    elif tag == WAVE_FORMAT_PCM and bits == 16:
        x = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif tag == WAVE_FORMAT_PCM and bits == 8:  # 8-bit WAV is unsigned
        x = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif tag == WAVE_FORMAT_PCM and bits == 24:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8  # sign-extend
        x = v.astype(np.float32) / float(1 << 23)
    elif tag == WAVE_FORMAT_PCM and bits == 32:
        x = np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31)
    else:
        raise FormatError("<stream>", f"{bits}-bit {info.format_name} WAV is not supported",
                          found=(bits, info.format_name))
    if info.channels > 1:
        x = x.reshape(-1, info.channels).mean(axis=1, dtype=np.float32)
    return x


def _downmix(frames: np.ndarray) -> np.ndarray:
    """The mean of the channels of a (frames, channels) float32 array, as float32.

    Channel by channel: numpy's mean(axis=1) over 2 columns is ~10x slower, and a matrix
    product goes through BLAS, whose threads spin against the converter's own on 2 cores.
    """
    channels = frames.shape[1]
    if channels == 1:
        return frames[:, 0]
    mono = frames[:, 0].copy()
    for channel in range(1, channels):
        mono += frames[:, channel]
    mono *= np.float32(1 / channels)
    return mono


def _float_to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)


@dataclass(frozen=True)
class ConvertedFile:
    path: Path
    size: int
    sha256: str
    frames: int
    settings: dict[str, Any]


def resample_wav(src: Path | BinaryIO, dst: Path, *, sample_rate: int = DEFAULT_SAMPLE_RATE,
                 quality: str = "HQ", durable: bool = True) -> ConvertedFile:
    """Convert one WAV (a path or an open binary stream) to 16-bit mono ``dst``, atomically.

    The output goes to a temp file beside ``dst``, is fsynced (unless ``durable`` is off) and
    renamed into place, so ``dst`` is either absent or complete.
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    converter = WavResampler(sample_rate, quality=quality)
    with atomic_writer(dst, durable=durable) as handle:
        writer = HashingWriter(handle)
        if isinstance(src, (str, Path)):
            with open(src, "rb") as source:
                frames = converter(source, writer, src)
        else:
            frames = converter(src, writer, getattr(src, "name", "<stream>"))
    return ConvertedFile(dst, writer.size, writer.hexdigest(), frames, converter.settings)


def convert_files(pairs: Iterable[tuple[Path, Path]], *, sample_rate: int = DEFAULT_SAMPLE_RATE,
                  workers: int | None = None, quality: str = "HQ",
                  durable: bool = True) -> list[ConvertedFile]:
    """Convert many files, ``workers`` at a time (default: one per core).

    Threads suffice: libsoxr, numpy and file I/O release the GIL.
    """
    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(resample_wav, src, dst, sample_rate=sample_rate, quality=quality,
                        durable=durable)
            for src, dst in pairs
        ]
        return [future.result() for future in futures]


def read_clip(path: Path, sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """A clip as float32 mono in [-1, 1) at ``sample_rate`` (resampled with soxr if needed)."""
    import soundfile as sf  # loads libsndfile through cffi: only when a clip is read

    data, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32,
                                                                           copy=False)
    return np.ascontiguousarray(mono, dtype=np.float32)
