"""Zip archives built record by record from struct-packed bytes, for the layouts (and damage)
that ``zip -s`` does not make on demand: a zip64 end record on an earlier volume, a header cut
by a volume's end, stray signatures, nameless entries, counts that disagree."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

STORED, DEFLATED = 0, 8


@dataclass
class Entry:
    name: bytes
    data: bytes
    method: int = STORED
    flags: int = 0
    local_extra: bytes = b""  # the local header's extra field (zip writes timestamps there)


@dataclass
class Crafted:
    volumes: list[bytes]
    at: dict[str, int]  # where each record starts in the volumes laid end to end


def craft(entries: list[Entry], *, cuts: Sequence[int] = (), comment: bytes = b"",
          zip64: bool = False, count: int | None = None) -> Crafted:
    """The archive's bytes cut into volumes at the offsets `cuts` (positions in the whole,
    the volumes laid end to end). With `zip64`, the end record holds only 0xFFFF..
    placeholders, so the values must come from the zip64 end record. `count` overrides the
    number of entries the end records state."""
    cuts = sorted(cuts)

    def place(offset: int) -> tuple[int, int]:
        disk = sum(1 for cut in cuts if cut <= offset)
        return disk, offset - (cuts[disk - 1] if disk else 0)

    body = bytearray()
    at: dict[str, int] = {}
    directory = bytearray()
    for i, entry in enumerate(entries):
        packed = entry.data
        if entry.method == DEFLATED:
            squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
            packed = squeeze.compress(entry.data) + squeeze.flush()
        crc = zlib.crc32(entry.data)
        at[f"header {i}"] = len(body)
        disk, offset = place(len(body))
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, entry.flags, entry.method, 0, 0,
                            crc, len(packed), len(entry.data), len(entry.name),
                            len(entry.local_extra))
        body += entry.name + entry.local_extra
        at[f"data {i}"] = len(body)
        body += packed
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 0x031E, 20, entry.flags,
                                 entry.method, 0, 0, crc, len(packed), len(entry.data),
                                 len(entry.name), 0, 0, disk, 0, 0o100644 << 16, offset)
        directory += entry.name
    at["directory"] = len(body)
    cd_disk, cd_offset = place(len(body))
    body += directory
    last = len(cuts)
    n = len(entries) if count is None else count
    if zip64:
        at["zip64 end"] = len(body)
        z64_disk, z64_offset = place(len(body))
        body += struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, last, cd_disk, n, n,
                            len(directory), cd_offset)
        at["locator"] = len(body)
        body += struct.pack("<4sLQL", b"PK\x06\x07", z64_disk, z64_offset, last + 1)
        fields = (0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    else:
        fields = (last, cd_disk, n, n, len(directory), cd_offset)
    at["end"] = len(body)
    body += struct.pack("<4s4H2LH", b"PK\x05\x06", *fields, len(comment)) + comment
    bounds = [0, *cuts, len(body)]
    return Crafted([bytes(body[a:b]) for a, b in pairwise(bounds)], at)


def write_volumes(folder: Path, stem: str, volumes: list[bytes]) -> list[Path]:
    """The volumes under Info-ZIP's names (stem.z01 …, stem.zip last)."""
    names = [f"{stem}.z{i:02d}" for i in range(1, len(volumes))] + [f"{stem}.zip"]
    paths = []
    for name, data in zip(names, volumes, strict=True):
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths
