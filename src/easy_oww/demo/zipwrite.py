"""Write a split zip (``name.z01`` … ``name.zNN``, then ``name.zip``) the way ``zip -s`` does,
in Python: the demo's FSD50K stand-in must not need the ``zip`` program, which a user may not
have.

The layout follows Info-ZIP's (the one archives/splitzip.py reads, and FSD50K's volumes have):
the first volume opens with the spanning marker ``PK\\x07\\x08``; every volume but the last is
cut at the same size, except that a header or record is never split (one that does not fit
goes whole to the next volume, leaving that volume short); a member's data runs on across
volumes; each central-directory entry names the volume its local header starts in and the
offset within that volume; the end record, in the last volume, names that volume, the one the
central directory starts in and its offset there. Deflated members, no zip64 (demo sizes).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_LOCAL = struct.Struct("<4s5H3L2H")  # local file header, 30 bytes
_CDIR = struct.Struct("<4s6H3L5H2L")  # central directory file header, 46 bytes
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory, 22 bytes
_SPANNING_MARKER = b"PK\x07\x08"
_VERSION = 20  # 2.0: deflate
_UNIX = 3 << 8  # "made by" Unix, so the mode bits below mean rw-r--r--
_FILE_MODE = 0o100644 << 16
_DOS_TIME, _DOS_DATE = 0, (2020 - 1980) << 9 | 1 << 5 | 1  # 2020-01-01 00:00: reproducible


@dataclass
class _Entry:
    name: bytes
    crc: int
    compressed: int
    size: int
    disk: int
    offset: int


class _Volumes:
    """Bytes appended across volumes of `size`; records are never split."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.done: list[bytes] = []
        self.current = bytearray()

    @property
    def position(self) -> tuple[int, int]:
        return len(self.done), len(self.current)

    def record(self, data: bytes) -> None:
        if len(self.current) + len(data) > self.size:
            self._next()
        self.current += data

    def stream(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = self.size - len(self.current)
            if room == 0:
                self._next()
                continue
            self.current += view[:room]
            view = view[room:]

    def _next(self) -> None:
        self.done.append(bytes(self.current))
        self.current = bytearray()


def write_split_zip(last: Path, members: Sequence[tuple[str, bytes]],
                    volume_size: int) -> list[Path]:
    """Write `members` (name, bytes) as a split zip whose last volume is `last` (``x.zip``),
    the others ``x.z01``, ``x.z02``… beside it; returns every volume, in order, ``.zip`` last.
    `volume_size` is zip's ``-s``: at least 64 KiB, as zip requires."""
    if volume_size < 64 * 1024:
        raise ValueError("volume_size must be at least 64 KiB (zip -s's minimum)")
    volumes = _Volumes(volume_size)
    volumes.record(_SPANNING_MARKER)
    entries: list[_Entry] = []
    for name, data in members:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        packed = packer.compress(data) + packer.flush()
        encoded = name.encode("utf-8")
        disk, offset = volumes.position
        header = _LOCAL.pack(b"PK\x03\x04", _VERSION, 0x800, 8, _DOS_TIME, _DOS_DATE,
                             zlib.crc32(data), len(packed), len(data), len(encoded), 0)
        if len(volumes.current) + len(header) + len(encoded) > volume_size:
            disk, offset = disk + 1, 0  # the header goes whole to the next volume
        volumes.record(header + encoded)
        volumes.stream(packed)
        entries.append(_Entry(encoded, zlib.crc32(data), len(packed), len(data), disk, offset))
    cd_disk, cd_offset = volumes.position
    cd_size = 0
    record_disks = []
    for number, entry in enumerate(entries):
        record = _CDIR.pack(b"PK\x01\x02", _UNIX | _VERSION, _VERSION, 0x800, 8, _DOS_TIME,
                            _DOS_DATE, entry.crc, entry.compressed, entry.size, len(entry.name),
                            0, 0, entry.disk, 0, _FILE_MODE, entry.offset) + entry.name
        if number == 0 and len(volumes.current) + len(record) > volume_size:
            cd_disk, cd_offset = cd_disk + 1, 0
        volumes.record(record)
        record_disks.append(volumes.position[0])
        cd_size += len(record)
    volumes.record(bytes(_EOCD.size))  # a placeholder: where it lands decides its numbers
    last_disk = len(volumes.done)
    here = record_disks.count(last_disk)
    volumes.current[-_EOCD.size:] = _EOCD.pack(b"PK\x05\x06", last_disk, cd_disk, here,
                                               len(entries), cd_size, cd_offset, 0)
    paths = [last.with_suffix(f".z{n:02d}") for n in range(1, last_disk + 1)] + [last]
    for path, data in zip(paths, [*volumes.done, bytes(volumes.current)], strict=True):
        path.write_bytes(data)
    return paths
