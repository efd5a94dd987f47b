"""Header checks for .npy and WAV files, and the deep decode."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from easy_oww.errors import EXIT_FAILED
from easy_oww.validate import (
    FormatError,
    check_file,
    check_npy,
    check_wav,
    parse_wav_header,
    read_npy_header,
)

# -- .npy ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_npy_header_versions(tmp_path: Path, version: tuple[int, int]) -> None:
    path = tmp_path / "f.npy"
    array = np.zeros((7, 16, 96), dtype=np.float16)
    with open(path, "wb") as handle:
        np.lib.format.write_array(handle, array, version=version)
    info = check_npy(path, shape=[7, 16, 96], dtype="float16")
    assert info.version == version and info.shape == (7, 16, 96) and info.dtype == "float16"
    assert info.expected_file_size == path.stat().st_size
    assert not info.fortran_order and info.itemsize == 2


def test_npy_fortran_order_and_structured_dtype(tmp_path: Path) -> None:
    path = tmp_path / "f.npy"
    np.save(path, np.asfortranarray(np.ones((3, 4), dtype=">i4")))
    assert read_npy_header(path).fortran_order
    path2 = tmp_path / "s.npy"
    np.save(path2, np.zeros(5, dtype=[("a", "<f4"), ("b", "<i2")]))
    assert check_npy(path2).itemsize == 6


def test_npy_dtype_names_compare_by_meaning(tmp_path: Path) -> None:
    path = tmp_path / "f.npy"
    np.save(path, np.zeros((2, 96), dtype=np.float32))
    check_npy(path, dtype="<f4")
    check_npy(path, dtype="float32")
    with pytest.raises(FormatError, match=r"f\.npy: dtype float32, expected float16") as info:
        check_npy(path, dtype="float16")
    assert (info.value.expected, info.value.found) == ("float16", "float32")
    assert info.value.exit_code == EXIT_FAILED


def test_npy_shape_pin(tmp_path: Path) -> None:
    path = tmp_path / "f.npy"
    np.save(path, np.zeros((4, 16, 96), dtype=np.float16))
    with pytest.raises(FormatError, match=r"shape \(4, 16, 96\), expected \(5625000, 16, 96\)"):
        check_npy(path, shape=(5625000, 16, 96))


def test_npy_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "f.npy"
    np.save(path, np.zeros((100, 96), dtype=np.float16))
    full = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(full - 1000)
    with pytest.raises(FormatError, match=rf"size {full - 1000:,} bytes, expected {full:,} .*"
                                          "truncated") as info:
        check_npy(path)
    assert (info.value.expected, info.value.found) == (full, full - 1000)


def test_npy_lying_header(tmp_path: Path) -> None:
    path = tmp_path / "f.npy"
    np.save(path, np.zeros((100, 96), dtype=np.float16))
    raw = path.read_bytes()
    lie = raw.replace(b"(100, 96)", b"(900, 96)")  # same length: the header still parses
    assert lie != raw
    path.write_bytes(lie)
    with pytest.raises(FormatError, match=r"expected 172,928 for shape \(900, 96\) float16"):
        check_npy(path)


def _npy_v1(header: bytes) -> bytes:
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"PK\x03\x04 not numpy at all", "not a .npy file"),
        (b"\x93NUMPY\x09\x00\x10\x00", "version 9.0 is not known"),
        (b"\x93NUMPY\x01\x00\xff\x00{'descr'", "cut short"),
        (_npy_v1(b"{'descr': <f2}\n"), "not a readable dict"),
        (_npy_v1(b"{'descr': '<f2', 'x': 1}\n"), "exactly descr"),
        (_npy_v1(b"{'descr': '<f2', 'fortran_order': False, 'shape': (-1,)}\n"), "bad shape"),
        (_npy_v1(b"{'descr': '<f2', 'fortran_order': 0, 'shape': (1,)}\n"), "non-boolean"),
        (_npy_v1(b"{'descr': 'zz9', 'fortran_order': False, 'shape': (1,)}\n"), "unknown dtype"),
    ],
)
def test_npy_broken_headers(tmp_path: Path, data: bytes, pattern: str) -> None:
    path = tmp_path / "bad.npy"
    path.write_bytes(data)
    with pytest.raises(FormatError, match=pattern):
        check_npy(path)


def test_npy_object_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FormatError, match="Python objects"):
        check_npy(path)


def test_npy_data_is_not_loaded(tmp_path: Path) -> None:
    # A header that promises 1 TB over a tiny file: the check must answer from the header.
    path = tmp_path / "huge.npy"
    header = "{'descr': '<f2', 'fortran_order': False, 'shape': (5625000000, 96), }"
    header = header.ljust(117) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    with pytest.raises(FormatError, match="truncated"):
        check_npy(path)


# -- WAV -------------------------------------------------------------------------------------


def write_wav(path: Path, *, rate: int = 16000, channels: int = 1, subtype: str = "PCM_16",
              fmt: str = "WAV", frames: int = 1600) -> Path:
    data = np.zeros((frames, channels), dtype=np.float32)
    sf.write(path, data, rate, subtype=subtype, format=fmt)
    return path


@pytest.mark.parametrize(
    ("subtype", "fmt", "tag", "bits"),
    [("PCM_16", "WAV", 1, 16), ("PCM_24", "WAV", 1, 24), ("FLOAT", "WAV", 3, 32),
     ("PCM_16", "WAVEX", 1, 16), ("PCM_U8", "WAV", 1, 8)],
)
def test_wav_headers(tmp_path: Path, subtype: str, fmt: str, tag: int, bits: int) -> None:
    path = write_wav(tmp_path / "a.wav", subtype=subtype, fmt=fmt, channels=2, rate=44100)
    info = check_wav(path, sample_rate=44100, channels=2, deep=True)
    assert (info.format_tag, info.bits_per_sample, info.frames) == (tag, bits, 1600)
    assert info.extensible == (fmt == "WAVEX")


def test_wav_pins(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "rir.wav", rate=32000)
    with pytest.raises(FormatError, match=r"rir\.wav: sample rate 32000 Hz, expected 16000 Hz"):
        check_wav(path, sample_rate=16000)
    with pytest.raises(FormatError, match="1 channels, expected 2") as info:
        check_wav(path, channels=2)
    assert (info.value.expected, info.value.found) == (2, 1)


def test_wav_truncated(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "t.wav")
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - 100)
    with pytest.raises(FormatError, match="ends 100 bytes short .* truncated"):
        check_wav(path)


def _chunks(*parts: tuple[bytes, bytes], riff: bytes = b"RIFF") -> bytes:
    body = b"WAVE" + b"".join(cid + struct.pack("<I", len(data)) + data for cid, data in parts)
    return riff + struct.pack("<I", len(body)) + body


FMT_OK = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        (b"OggS" + b"\0" * 40, "not a WAV file"),
        (_chunks((b"data", b"\0\0")), "data chunk comes before any fmt"),
        (_chunks((b"fmt ", FMT_OK[:12])), "fmt chunk is 12 bytes"),
        (_chunks((b"fmt ", struct.pack("<HHIIHH", 1, 1, 16000, 32000, 4, 16)),
                 (b"data", b"\0\0")), "block align 4, expected 2"),
        (_chunks((b"fmt ", struct.pack("<HHIIHH", 1, 1, 16000, 1000, 2, 16)),
                 (b"data", b"\0\0")), "byte rate 1000, expected 32000"),
        (_chunks((b"fmt ", struct.pack("<HHIIHH", 1, 0, 16000, 0, 0, 16)),
                 (b"data", b"")), "0 channels"),
        (_chunks((b"fmt ", FMT_OK), (b"data", b"\0\0\0")), "not a whole number"),
        (_chunks((b"fmt ", FMT_OK)), "cut short"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "cut short"),
    ],
)
def test_broken_wav_headers(tmp_path: Path, data: bytes, pattern: str) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(data)
    with pytest.raises(FormatError, match=pattern) as info:
        check_wav(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_deep_decode_catches_what_the_header_cannot(tmp_path: Path) -> None:
    # A header saying MPEG layer 3 (tag 0x55) over junk: fine for the header check.
    fmt = struct.pack("<HHIIHH", 0x55, 1, 16000, 2000, 1, 0)
    path = tmp_path / "junk.wav"
    path.write_bytes(_chunks((b"fmt ", fmt), (b"data", bytes(range(256)) * 8)))
    check_wav(path)
    with pytest.raises(FormatError, match="cannot be decoded"):
        check_wav(path, deep=True)


def test_header_parser_reads_forward_only() -> None:
    buf = io.BytesIO()
    sf.write(buf, np.zeros(100, dtype=np.float32), 22050, format="WAV", subtype="PCM_16")
    data = buf.getvalue()

    class Pipe:
        pos = 0

        def read(self, n: int) -> bytes:
            out = data[self.pos : self.pos + n]
            self.pos += len(out)
            return out

    pipe = Pipe()
    info = parse_wav_header(pipe.read)
    assert pipe.pos == info.data_offset and info.data_size == 200 and info.sample_rate == 22050


def test_check_file_reports_instead_of_raising(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "ok.wav")
    assert check_file(wav, "wav", sample_rate=16000, channels=1, deep=True).ok
    bad = check_file(wav, "wav", sample_rate=44100)
    assert not bad.ok and bad.expected == 44100 and bad.found == 16000
    assert bad.message == f"{wav}: sample rate 16000 Hz, expected 44100 Hz"
    missing = check_file(tmp_path / "nope.npy", "npy", shape=None)
    assert not missing.ok and "is missing" in missing.message
    assert not check_file(wav, "flac").ok


# -- property: damage gives FormatError, never a crash or a pass ----------------------------


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=299), flip=st.integers(min_value=0, max_value=43),
       kind=st.sampled_from(["wav", "npy"]))
def test_damaged_headers_never_pass_silently(tmp_path: Path, cut: int, flip: int,
                                             kind: str) -> None:
    path = tmp_path / f"x.{kind}"
    if kind == "wav":
        write_wav(path, frames=150)
    else:
        np.save(path, np.zeros((150,), dtype=np.int16))
    good = path.read_bytes()
    damaged = bytearray(good[: len(good) - cut]) if cut else bytearray(good)
    if not cut:
        damaged[flip] ^= 0xFF
    path.write_bytes(bytes(damaged))
    result = check_file(path, kind)
    if cut:
        assert not result.ok, "a truncated file must fail"
    if not result.ok:
        assert result.message.startswith(str(path)) and "\n" not in result.message
