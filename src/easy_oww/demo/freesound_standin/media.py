"""The bytes behind preview and image URLs: audio decodable like the real previews, a tiny PNG,
all deterministic per seed."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np


def _ogg_crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_CRC = _ogg_crc_table()


def ogg_with_serial(data: bytes, serial: int) -> bytes:
    """libvorbis picks a random stream serial; pin it (and fix each page CRC)."""
    out = bytearray(data)
    pos = 0
    while pos + 27 <= len(out) and out[pos:pos + 4] == b"OggS":
        nseg = out[pos + 26]
        end = pos + 27 + nseg + sum(out[pos + 27:pos + 27 + nseg])
        struct.pack_into("<I", out, pos + 14, serial)
        struct.pack_into("<I", out, pos + 22, 0)
        crc = 0
        for byte in out[pos:end]:
            crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) ^ byte) & 0xFF]
        struct.pack_into("<I", out, pos + 22, crc)
        pos = end
    return bytes(out)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def preview_audio(s: dict, seed: int, seconds: float, quality: str, ext: str) -> bytes:
    """A preview of sound `s`: a tone with a little noise, at most `seconds` long, MP3 or Ogg
    Vorbis (``ext``), ``hq`` or ``lq`` (``quality``)."""
    import soundfile as sf  # a project dependency; only needed when previews are fetched

    sr = 44100
    n = max(1, int(min(s["duration"], seconds) * sr))
    rng = np.random.default_rng([seed, s["id"]])
    t = np.arange(n) / sr
    f0 = 110.0 * 2 ** ((s["id"] % 36) / 12)
    x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.standard_normal(n)
    fade = min(n // 2, 441)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        x[:fade] *= ramp
        x[-fade:] *= ramp[::-1]
    data = np.repeat(x[:, None], s["channels"], axis=1).astype(np.float32)
    buf = io.BytesIO()
    level = 0.2 if quality == "hq" else 0.8
    if ext == "mp3":
        sf.write(buf, data, sr, format="MP3", subtype="MPEG_LAYER_III",
                 compression_level=level)
        return buf.getvalue()
    sf.write(buf, data, sr, format="OGG", subtype="VORBIS", compression_level=level)
    return ogg_with_serial(buf.getvalue(), s["id"] & 0x7FFFFFFF)
