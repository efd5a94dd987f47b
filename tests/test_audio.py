"""16 kHz mono conversion with soxr, streamed; read_clip for trainers."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from easy_oww.audio import (
    AudioConverter,
    AudioDecodeError,
    WavResampler,
    convert_files,
    output_frames,
    read_clip,
    resample_wav,
)
from easy_oww.validate import FormatError, check_wav


def tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * freq * t)
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64)))
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.mark.parametrize(
    ("rate", "channels", "subtype"),
    [(44100, 1, "PCM_16"), (44100, 2, "PCM_24"), (48000, 2, "FLOAT"), (22050, 1, "PCM_U8"),
     (32000, 3, "PCM_32"), (96000, 1, "DOUBLE")],
)
def test_resample_to_16k_mono_pcm16(tmp_path: Path, rate: int, channels: int,
                                    subtype: str) -> None:
    src = tmp_path / "in.wav"
    sf.write(src, tone(2.0, rate, channels=channels), rate, subtype=subtype)
    result = resample_wav(src, tmp_path / "out.wav")
    info = check_wav(result.path, sample_rate=16000, channels=1, deep=True)
    assert info.bits_per_sample == 16
    assert info.frames == result.frames == output_frames(int(2.0 * rate), rate, 16000)
    data, out_rate = sf.read(result.path, dtype="float32")
    assert out_rate == 16000 and abs(peak_hz(data, 16000) - 440) < 2
    assert 0.25 < np.abs(data[100:-100]).max() < 0.35
    assert result.size == result.path.stat().st_size
    assert result.settings["resampler"].startswith("soxr") and result.settings["channels"] == 1
    assert list(tmp_path.glob(".*.tmp")) == []


def test_streaming_matches_one_shot_soxr(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(44100 * 3 + 17) * 3000).astype(np.int16)
    src = io.BytesIO()
    sf.write(src, x, 44100, format="WAV", subtype="PCM_16")
    reference = soxr.resample(x, 44100, 16000, quality="HQ")
    for block in (1000, 4096, 1 << 16):  # block boundaries must not show in the output
        out = io.BytesIO()
        WavResampler(16000, block_frames=block)(io.BytesIO(src.getvalue()), out)
        got, _ = sf.read(io.BytesIO(out.getvalue()), dtype="int16")
        assert len(got) == output_frames(len(x), 44100, 16000)
        n = min(len(got), len(reference))
        diff = np.abs(got[:n].astype(int) - reference[:n].astype(int))
        assert diff.max() <= 2 and diff.mean() < 0.6  # int16 rounding inside libsoxr


def test_same_rate_mono_16bit_is_copied_exactly(tmp_path: Path) -> None:
    x = (np.random.default_rng(1).standard_normal(16000) * 1000).astype(np.int16)
    src = tmp_path / "a.wav"
    sf.write(src, x, 16000, subtype="PCM_16")
    out = resample_wav(src, tmp_path / "b.wav")
    got, _ = sf.read(out.path, dtype="int16")
    assert np.array_equal(got, x)


def test_forward_only_stream_and_trailing_chunks(tmp_path: Path) -> None:
    buf = io.BytesIO()
    sf.write(buf, tone(1.0, 44100), 44100, format="WAV", subtype="PCM_16")
    data = buf.getvalue() + b"LIST\x04\x00\x00\x00abcd"  # a chunk after the data: left unread

    class Pipe:
        def __init__(self) -> None:
            self.pos = 0

        def read(self, n: int = -1) -> bytes:
            out = data[self.pos :] if n < 0 else data[self.pos : self.pos + n]
            self.pos += len(out)
            return out

    pipe = Pipe()
    out = io.BytesIO()
    frames = WavResampler()(pipe, out)
    assert frames == 16000 and pipe.pos == len(buf.getvalue())
    assert sf.info(io.BytesIO(out.getvalue())).frames == 16000


def test_truncated_input_leaves_nothing(tmp_path: Path) -> None:
    src = tmp_path / "cut.wav"
    sf.write(src, tone(1.0, 44100), 44100, subtype="PCM_16")
    src.write_bytes(src.read_bytes()[:-1001])
    with pytest.raises(FormatError, match="WAV data cut short"):
        resample_wav(src, tmp_path / "out.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.wav"]


def test_unsupported_sample_format(tmp_path: Path) -> None:
    src = tmp_path / "alaw.wav"
    sf.write(src, tone(0.5, 8000), 8000, subtype="ALAW")
    with pytest.raises(FormatError, match="A-law"):
        resample_wav(src, tmp_path / "out.wav")


def test_convert_files_in_parallel(tmp_path: Path) -> None:
    pairs = []
    for i in range(6):
        src = tmp_path / f"in{i}.wav"
        sf.write(src, tone(1.0 + i / 10, 44100, freq=300 + 100 * i), 44100, subtype="PCM_16")
        pairs.append((src, tmp_path / "out" / f"o{i}.wav"))
    results = convert_files(pairs, workers=2)
    for i, result in enumerate(results):
        data, rate = sf.read(result.path, dtype="float32")
        assert rate == 16000 and abs(peak_hz(data, rate) - (300 + 100 * i)) < 2


def test_read_clip(tmp_path: Path) -> None:
    path = tmp_path / "st.wav"
    sf.write(path, tone(1.5, 44100, channels=2), 44100, subtype="PCM_16")
    clip = read_clip(path)
    assert clip.dtype == np.float32 and clip.ndim == 1 and len(clip) == 24000
    assert abs(peak_hz(clip, 16000) - 440) < 2
    native = read_clip(path, sample_rate=44100)
    assert len(native) == int(1.5 * 44100)


@pytest.mark.parametrize("fmt, subtype, suffix", [
    ("FLAC", "PCM_24", ".flac"), ("MP3", None, ".mp3"), ("OGG", "VORBIS", ".ogg"),
    ("AIFF", "PCM_16", ".aiff"),
])
def test_the_converter_decodes_what_libsndfile_reads(fmt: str, subtype: str | None,
                                                       suffix: str) -> None:
    rate = 48000 if fmt != "MP3" else 44100
    source = io.BytesIO()
    sf.write(source, tone(1.0, rate, 1000.0, channels=2), rate, format=fmt, subtype=subtype)
    converter = AudioConverter(16000)
    out = io.BytesIO()
    frames = converter(io.BytesIO(source.getvalue()), out, f"clips/x{suffix}")
    data, got_rate = sf.read(io.BytesIO(out.getvalue()), dtype="float32")
    assert (got_rate, data.ndim, sf.info(io.BytesIO(out.getvalue())).subtype) == (
        16000, 1, "PCM_16")
    assert len(data) == frames and abs(frames - 16000) <= 16000 * 0.08  # MP3 pads a frame
    assert abs(peak_hz(data, 16000) - 1000.0) <= 2.0
    assert converter.target(f"clips/x{suffix}") == ("clips/x.wav", converter.decoded_settings)


def test_the_converter_averages_channels_and_leaves_non_audio_alone() -> None:
    left, right = tone(0.5, 16000, 440.0)[:, 0], tone(0.5, 16000, 880.0)[:, 0] * 0.5
    source = io.BytesIO()
    sf.write(source, np.stack([left, right, np.zeros_like(left)], 1), 16000, format="FLAC",
             subtype="PCM_24")
    out = io.BytesIO()
    AudioConverter(16000)(io.BytesIO(source.getvalue()), out, "x.flac")
    data, _ = sf.read(io.BytesIO(out.getvalue()), dtype="float32")
    assert np.abs(data - (left + right) / 3).max() < 2 / 32768  # 16-bit rounding only
    converter = AudioConverter(16000)
    assert converter.target("fma_small/checksums") is None
    assert converter.target("README.txt") is None
    assert converter.target("a/b.WAV") == ("a/b.wav", WavResampler(16000).settings)


@pytest.mark.parametrize("payload, needle", [
    (b"", "cannot be decoded (Format not recognised)"),
    (b"ID3\x04\x00 not really an mp3", "cannot be decoded"),
])
def test_an_undecodable_member_is_an_audio_decode_error_naming_it(payload: bytes,
                                                                  needle: str) -> None:
    with pytest.raises(AudioDecodeError) as caught:
        AudioConverter(16000)(io.BytesIO(payload), io.BytesIO(), "fma_small/099/099134.mp3")
    assert str(caught.value).startswith("fma_small/099/099134.mp3: ")
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_a_file_with_a_header_and_no_frames_holds_no_audio() -> None:
    with sf.SoundFile(empty := io.BytesIO(), "w", 44100, 2, format="OGG"):
        pass  # a valid Ogg Vorbis stream of zero frames
    with pytest.raises(AudioDecodeError, match=r"x\.ogg: holds no audio \(0 frames decoded\)"):
        AudioConverter(16000)(io.BytesIO(empty.getvalue()), io.BytesIO(), "x.ogg")
