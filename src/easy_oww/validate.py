"""Format checks that read headers only: ``.npy`` and WAV, plus an optional full decode.

A failed check raises ``FormatError`` whose one-line message names the file, what was expected
and what was found; ``check_file`` returns a ``CheckResult`` instead, for status reports.
"""

from __future__ import annotations

import ast
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from easy_oww.errors import IntegrityError

NPY_MAGIC = b"\x93NUMPY"

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_ALAW = 0x0006
WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_FORMAT_NAMES = {
    WAVE_FORMAT_PCM: "PCM",
    WAVE_FORMAT_IEEE_FLOAT: "IEEE float",
    WAVE_FORMAT_ALAW: "A-law",
    WAVE_FORMAT_MULAW: "mu-law",
    WAVE_FORMAT_EXTENSIBLE: "extensible",
}


class FormatError(IntegrityError):
    """A file is not in the format its catalog entry says (exit 1)."""

    def __init__(self, path: Path | str, problem: str, *, expected: Any = None,
                 found: Any = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.expected = expected
        self.found = found
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class CheckResult:
    """Outcome of ``check_file``: ``ok`` or a one-line ``message`` with expected/found."""

    path: Path
    ok: bool
    message: str = ""
    expected: Any = None
    found: Any = None
    info: Any = None
    problem: str = ""  # the message without the path


# -- .npy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NpyInfo:
    version: tuple[int, int]
    descr: Any  # as written in the header, e.g. "<f2"
    dtype: str  # numpy's name, e.g. "float16"
    fortran_order: bool
    shape: tuple[int, ...]
    itemsize: int
    data_offset: int  # where the array data starts (header length)

    @property
    def data_bytes(self) -> int:
        return math.prod(self.shape) * self.itemsize

    @property
    def expected_file_size(self) -> int:
        return self.data_offset + self.data_bytes


def read_npy_header(path: Path) -> NpyInfo:
    """Parse a ``.npy`` header (versions 1, 2, 3) without reading the array data."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 10 or head[:6] != NPY_MAGIC:
            raise FormatError(path, f"not a .npy file (starts with {head[:6]!r}, expected "
                                    f"{NPY_MAGIC!r})", expected=NPY_MAGIC, found=head[:6])
        major, minor = head[6], head[7]
        if major == 1:
            (hlen,) = struct.unpack("<H", head[8:10])
            start = 10
        elif major in (2, 3) and len(head) >= 12:
            (hlen,) = struct.unpack("<I", head[8:12])
            start = 12
        else:
            raise FormatError(path, f".npy format version {major}.{minor} is not known "
                                    "(expected 1.0, 2.0 or 3.0)", expected="1-3", found=major)
        handle.seek(start)
        raw = handle.read(hlen)
    if len(raw) < hlen:
        raise FormatError(path, f".npy header is cut short ({len(raw)} of {hlen} bytes)",
                          expected=hlen, found=len(raw))
    try:
        header = ast.literal_eval(raw.decode("utf-8" if major == 3 else "latin1"))
    except (ValueError, SyntaxError, UnicodeDecodeError) as exc:
        raise FormatError(path, f".npy header is not a readable dict ({exc})") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise FormatError(path, ".npy header must hold exactly descr, fortran_order and shape",
                          found=header)
    shape = header["shape"]
    if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise FormatError(path, f".npy header has a bad shape {shape!r}", found=shape)
    if not isinstance(header["fortran_order"], bool):
        raise FormatError(path, ".npy header has a non-boolean fortran_order",
                          found=header["fortran_order"])
    import numpy as np  # only to interpret the dtype descriptor; no data is read

    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except (TypeError, ValueError) as exc:
        raise FormatError(path, f".npy header has an unknown dtype {header['descr']!r} "
                                f"({exc})", found=header["descr"]) from None
    if dtype.hasobject:
        raise FormatError(path, ".npy holds Python objects (pickled data): refused",
                          expected="numeric dtype", found=str(dtype))
    return NpyInfo(
        version=(major, minor), descr=header["descr"], dtype=str(dtype),
        fortran_order=header["fortran_order"], shape=shape, itemsize=dtype.itemsize,
        data_offset=start + hlen,
    )


def check_npy(path: Path, *, shape: tuple[int, ...] | list[int] | None = None,
              dtype: str | None = None) -> NpyInfo:
    """Header parsed, header + prod(shape) × itemsize == file size, optional shape/dtype pins."""
    path = Path(path)
    info = read_npy_header(path)
    size = path.stat().st_size
    if size != info.expected_file_size:
        raise FormatError(
            path,
            f"size {size:,} bytes, expected {info.expected_file_size:,} for shape "
            f"{info.shape} {info.dtype} (header {info.data_offset} + data {info.data_bytes:,})"
            + (": the file is truncated" if size < info.expected_file_size else ""),
            expected=info.expected_file_size, found=size,
        )
    if shape is not None and tuple(shape) != info.shape:
        raise FormatError(path, f"shape {info.shape}, expected {tuple(shape)}",
                          expected=tuple(shape), found=info.shape)
    if dtype is not None:
        import numpy as np  # ~0.1 s to import: only when a catalog pins a dtype

        if np.dtype(dtype) != np.dtype(info.dtype):
            raise FormatError(path, f"dtype {info.dtype}, expected {np.dtype(dtype)}",
                              expected=str(np.dtype(dtype)), found=info.dtype)
    return info


# -- WAV -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WavInfo:
    format_tag: int  # the effective tag (the sub-format's for WAVE_FORMAT_EXTENSIBLE)
    extensible: bool
    channels: int
    sample_rate: int
    bits_per_sample: int
    block_align: int
    data_offset: int
    data_size: int
    riff_size: int
    container: str = "RIFF"
    chunks: tuple[str, ...] = field(default=())

    @property
    def frames(self) -> int:
        return self.data_size // self.block_align if self.block_align else 0

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    @property
    def format_name(self) -> str:
        return _FORMAT_NAMES.get(self.format_tag, f"format 0x{self.format_tag:04x}")


def parse_wav_header(read: Callable[[int], bytes], name: Path | str = "<stream>") -> WavInfo:
    """Read a WAV header from a forward-only ``read(n)``, stopping at the start of the data.

    Works on a pipe or an archive member stream: it never seeks. After it returns, the next
    ``read`` gives the first sample byte.
    """
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        data = read(n)
        pos += len(data)
        if len(data) < n:
            raise FormatError(name, f"WAV header cut short at byte {pos}", found=pos)
        return data

    head = take(12)
    container = head[:4].decode("latin1")
    if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        raise FormatError(name, f"not a WAV file (starts with {head[:4]!r} … {head[8:12]!r}, "
                                "expected RIFF … WAVE)", expected="RIFF/WAVE", found=head[:12])
    (riff_size,) = struct.unpack("<I", head[4:8])
    fmt: tuple[int, ...] | None = None
    extensible = False
    ds64_data: int | None = None
    chunks: list[str] = []
    while True:
        chunk_id, chunk_size = struct.unpack("<4sI", take(8))
        label = chunk_id.decode("latin1")
        chunks.append(label)
        if chunk_id == b"data":
            if fmt is None:
                raise FormatError(name, "WAV data chunk comes before any fmt chunk",
                                  expected="fmt chunk", found="data")
            if chunk_size == 0xFFFFFFFF and ds64_data is not None:
                chunk_size = ds64_data
            tag, channels, rate, _byte_rate, align, bits = fmt
            return WavInfo(
                format_tag=tag, extensible=extensible, channels=channels, sample_rate=rate,
                bits_per_sample=bits, block_align=align, data_offset=pos,
                data_size=chunk_size, riff_size=riff_size, container=container,
                chunks=tuple(chunks),
            )
        body = take(chunk_size + (chunk_size & 1)) if chunk_size < (1 << 26) else None
        if body is None:
            raise FormatError(name, f"WAV chunk {label!r} claims {chunk_size:,} bytes before "
                                    "the data chunk", found=chunk_size)
        if chunk_id == b"ds64" and len(body) >= 24:
            riff_size, ds64_data = struct.unpack_from("<QQ", body, 0)
        elif chunk_id == b"fmt ":
            if chunk_size < 16:
                raise FormatError(name, f"WAV fmt chunk is {chunk_size} bytes, expected ≥ 16",
                                  expected=16, found=chunk_size)
            fmt = struct.unpack_from("<HHIIHH", body, 0)
            if fmt[0] == WAVE_FORMAT_EXTENSIBLE:
                if chunk_size < 40:
                    raise FormatError(name, "WAVE_FORMAT_EXTENSIBLE fmt chunk is "
                                            f"{chunk_size} bytes, expected 40",
                                      expected=40, found=chunk_size)
                (sub_tag,) = struct.unpack_from("<H", body, 24)  # first 2 bytes of the GUID
                fmt = (sub_tag, *fmt[1:])
                extensible = True
            _check_fmt(name, fmt)


def _check_fmt(name: Path | str, fmt: tuple[int, ...]) -> None:
    tag, channels, rate, byte_rate, align, bits = fmt
    if channels < 1 or rate < 1:
        raise FormatError(name, f"WAV fmt says {channels} channels at {rate} Hz",
                          found=(channels, rate))
    if tag in (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT):
        want_align = channels * ((bits + 7) // 8)
        if bits < 1 or align != want_align:
            raise FormatError(name, f"WAV block align {align}, expected {want_align} for "
                                    f"{channels} × {bits}-bit", expected=want_align, found=align)
        if byte_rate != rate * align:
            raise FormatError(name, f"WAV byte rate {byte_rate}, expected {rate * align}",
                              expected=rate * align, found=byte_rate)


def read_wav_header(path: Path) -> WavInfo:
    path = Path(path)
    with open(path, "rb") as handle:
        return parse_wav_header(handle.read, path)


def check_wav(path: Path, *, sample_rate: int | None = None, channels: int | None = None,
              deep: bool = False) -> WavInfo:
    """Header parsed, data chunk consistent with the file size, optional rate/channel pins.

    ``deep`` also decodes every frame with soundfile (in blocks, memory flat).
    """
    path = Path(path)
    info = read_wav_header(path)
    size = path.stat().st_size
    end = info.data_offset + info.data_size
    if end > size:
        raise FormatError(
            path, f"WAV data chunk says {info.data_size:,} bytes but the file ends "
                  f"{end - size:,} bytes short ({size:,} bytes): the file is truncated",
            expected=end, found=size)
    # +1: a writer may count the pad byte of an odd-sized last chunk it never wrote.
    if info.container == "RIFF" and info.riff_size + 8 > size + 1:
        raise FormatError(path, f"RIFF size {info.riff_size + 8:,} bytes, file is {size:,}: "
                                "the file is truncated", expected=info.riff_size + 8, found=size)
    if info.block_align and info.data_size % info.block_align:
        raise FormatError(path, f"WAV data size {info.data_size:,} is not a whole number of "
                                f"{info.block_align}-byte frames",
                          expected=info.block_align, found=info.data_size)
    if sample_rate is not None and info.sample_rate != sample_rate:
        raise FormatError(path, f"sample rate {info.sample_rate} Hz, expected {sample_rate} Hz",
                          expected=sample_rate, found=info.sample_rate)
    if channels is not None and info.channels != channels:
        raise FormatError(path, f"{info.channels} channels, expected {channels}",
                          expected=channels, found=info.channels)
    if deep:
        decode_audio(path, expected_frames=info.frames)
    return info


def decode_audio(path: Path, *, expected_frames: int | None = None,
                 block_frames: int = 1 << 16) -> int:
    """Decode every frame with soundfile; return the frame count. Raises FormatError."""
    import soundfile as sf  # loads libsndfile through cffi: only for a deep check

    path = Path(path)
    frames = 0
    try:
        with sf.SoundFile(path) as audio:
            while True:
                block = audio.read(block_frames, dtype="float32", always_2d=True)
                if not len(block):
                    break
                frames += len(block)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise FormatError(path, f"cannot be decoded: {exc}") from None
    if expected_frames is not None and frames != expected_frames:
        raise FormatError(path, f"decoded {frames:,} frames, header says {expected_frames:,}",
                          expected=expected_frames, found=frames)
    return frames


def check_file(path: Path, fmt: str, *, deep: bool = False, **expect: Any) -> CheckResult:
    """Check one file by catalog format (``npy`` or ``wav``); never raises FormatError.

    ``expect`` takes the catalog's pins: ``shape``/``dtype`` for npy, ``sample_rate``/
    ``channels`` for wav (``None`` values are ignored).
    """
    path = Path(path)
    pins = {k: v for k, v in expect.items() if v is not None}
    try:
        if not path.is_file():
            raise FormatError(path, "is missing", expected="a file", found="nothing")
        if fmt == "npy":
            info: Any = check_npy(path, **pins)
        elif fmt == "wav":
            info = check_wav(path, deep=deep, **pins)
        else:
            raise FormatError(path, f"no check for format {fmt!r} (known: npy, wav)")
    except FormatError as exc:
        return CheckResult(path, False, str(exc), exc.expected, exc.found, problem=exc.problem)
    except OSError as exc:
        return CheckResult(path, False, f"{path}: cannot be read ({exc.strerror})",
                           problem=f"cannot be read ({exc.strerror})")
    return CheckResult(path, True, info=info)


def open_wav_stream(handle: BinaryIO, name: Path | str = "<stream>") -> WavInfo:
    """Parse the header of an open binary stream, leaving it at the first sample byte."""
    return parse_wav_header(handle.read, name)
