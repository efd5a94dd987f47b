"""Read zip archives, including split ones made with ``zip -s``, without merging the volumes.

A split archive is ``name.z01`` … ``name.zNN`` followed by ``name.zip`` (the last volume, which
holds the central directory). Each central-directory entry names the volume ("disk") where its
local header starts and an offset relative to that volume, so a member can be streamed straight
out of the parts; a member's data may run on into the following volumes. The usual route
(``zip -s 0`` to merge, then unzip) needs the archive's space twice over.

A single ordinary ``.zip`` is the one-volume case. Zip64 (archives or members over 4 GiB, more
than 65,535 entries) is supported; FSD50K's dev audio is about 22 GB.
"""

from __future__ import annotations

import bz2
import re
import stat
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from easy_oww.errors import EasyOwwError

if TYPE_CHECKING:
    from typing_extensions import Self

CHUNK = 1 << 20  # read and inflate in 1 MiB steps so memory stays flat for any member size

STORED = 0
DEFLATED = 8
BZIP2 = 12  # FMA's fma_*.zip; `unzip` cannot read these members, 7z and Python's zipfile can
SUPPORTED_METHODS = (STORED, DEFLATED, BZIP2)
_METHOD_NAMES = {0: "stored", 8: "deflate", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstd"}

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory, 22 bytes
_EOCD_SIG = b"PK\x05\x06"
_Z64_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes
_Z64_LOCATOR_SIG = b"PK\x06\x07"
_Z64_EOCD = struct.Struct("<4sQ2H2L4Q")  # 56 bytes
_Z64_EOCD_SIG = b"PK\x06\x06"
_CDIR = struct.Struct("<4s6H3L5H2L")  # central directory file header, 46 bytes
_CDIR_SIG = b"PK\x01\x02"
_LOCAL = struct.Struct("<4s5H3L2H")  # local file header, 30 bytes
_LOCAL_SIG = b"PK\x03\x04"
_DESCRIPTOR_SIG = b"PK\x07\x08"  # data descriptor (also zip -s's spanning marker)


class ArchiveError(EasyOwwError):
    """An archive is damaged, unsupported or unsafe (exit 1)."""


class ArchiveVolumeError(ArchiveError):
    """A volume of the archive is missing or truncated; the message names it."""


class ChecksumError(ArchiveError):
    """A member's CRC32 or size does not match the central directory; the message names it."""


class UnsupportedArchiveError(ArchiveError):
    pass


@dataclass(frozen=True)
class ZipMember:
    """One central-directory entry."""

    name: str
    compress_size: int
    file_size: int
    crc: int
    compress_type: int
    flags: int
    external_attr: int
    create_system: int
    disk: int  # volume (0-based) where the local header starts
    header_offset: int  # offset of the local header within that volume
    index: int  # position in the central directory
    name_length: int  # the name's length in bytes, as stored

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/") or (
            self.create_system == 3 and stat.S_ISDIR(self.external_attr >> 16)
        ) or bool(self.external_attr & 0x10)

    @property
    def is_symlink(self) -> bool:
        # Unix mode in the high 16 bits, only meaningful when made on Unix (3).
        return self.create_system == 3 and stat.S_ISLNK(self.external_attr >> 16)

    @property
    def mode(self) -> int:
        return (self.external_attr >> 16) & 0o7777 if self.create_system == 3 else 0

    @property
    def method_name(self) -> str:
        return _METHOD_NAMES.get(self.compress_type, f"method {self.compress_type}")


class _Volumes:
    """The volumes as one addressable space: (disk, offset) positions, reads that run on."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self.sizes = [p.stat().st_size for p in self.paths]
        self._handles: dict[int, BinaryIO] = {}

    def _handle(self, disk: int) -> BinaryIO:
        handle = self._handles.get(disk)
        if handle is None:
            handle = open(self.paths[disk], "rb")  # noqa: SIM115 - closed in close()
            self._handles[disk] = handle
        return handle

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def truncated(self, disk: int) -> ArchiveVolumeError:
        return ArchiveVolumeError(
            f"{self.paths[disk].name} is truncated ({self.sizes[disk]:,} bytes): "
            "download it again"
        )

    def iter_range(
        self, disk: int, offset: int, length: int
    ) -> Iterator[tuple[int, int, bytes]]:
        """Yield (disk, offset after, chunk) for ``length`` bytes from (disk, offset), running
        on across volumes."""
        if disk >= len(self.paths):
            raise self.truncated(len(self.paths) - 1)
        if offset > self.sizes[disk]:
            raise self.truncated(disk)
        while length > 0:
            room = self.sizes[disk] - offset
            if room <= 0:
                if disk + 1 >= len(self.paths):
                    raise self.truncated(disk)
                disk, offset = disk + 1, 0
                continue
            handle = self._handle(disk)
            handle.seek(offset)
            data = handle.read(min(CHUNK, room, length))
            if not data:  # the file shrank since we looked at it
                raise self.truncated(disk)
            offset += len(data)
            length -= len(data)
            yield disk, offset, data

    def read(self, disk: int, offset: int, length: int) -> bytes:
        return b"".join(chunk for _, _, chunk in self.iter_range(disk, offset, length))

    def advance(self, disk: int, offset: int, length: int) -> tuple[int, int]:
        """The (disk, offset) reached after ``length`` bytes from (disk, offset)."""
        while True:
            room = self.sizes[disk] - offset
            if length <= room or disk + 1 >= len(self.paths):
                return disk, offset + length
            length -= room
            disk, offset = disk + 1, 0


def sibling_volumes(last: Path, count: int) -> list[Path]:
    """Info-ZIP's naming: name.z01 … name.z(N-1), then name.zip."""
    last = Path(last)
    stem = last.stem
    return [last.with_name(f"{stem}.z{i:02d}") for i in range(1, count)] + [last]


class SplitZipReader:
    """Members of a (split) zip archive, read straight from its volumes.

    ``volumes`` lists every volume in order, the ``.zip`` last; passing only the ``.zip`` of a
    split archive finds the ``.zNN`` siblings by Info-ZIP's naming. Missing or truncated volumes
    raise ``ArchiveVolumeError`` naming the file.
    """

    def __init__(self, volumes: Sequence[Path] | Path) -> None:
        if isinstance(volumes, (str, Path)):
            volumes = [Path(volumes)]
        paths = [Path(p) for p in volumes]
        if not paths:
            raise ArchiveError("no archive volumes given")
        _require_present(paths[-1:])
        disks, eocd = _find_end_record(paths[-1])
        if len(paths) == 1:  # one volume, or only the .zip given: the others by their names
            paths = sibling_volumes(paths[0], disks)
        elif len(paths) != disks:
            raise ArchiveVolumeError(
                f"{paths[-1].name} is the last of {disks} volumes but {len(paths)} were given: "
                "list every volume (.z01 … .zNN) in order, the .zip last"
            )
        _require_present(paths)
        self.paths = paths
        self._vol = _Volumes(paths)
        self._check_volume_sizes()
        if "z64_disk" in eocd:  # a zip64 end record: its values replace the placeholders
            record = self._vol.read(eocd["z64_disk"], eocd["z64_offset"], _Z64_EOCD.size)
            if record[:4] != _Z64_EOCD_SIG:
                raise ArchiveError(f"{self.name}: zip64 end record not found: damaged archive")
            _apply_z64_record(eocd, record)
        self._members = self._read_central_directory(eocd)
        self._check_member_starts()
        self._layout = sorted(self._members, key=lambda m: (m.disk, m.header_offset))
        self._next_start = {a.index: (b.disk, b.header_offset) for a, b in pairwise(self._layout)}
        if self._layout:
            self._next_start[self._layout[-1].index] = self._cd_start
        self._check_layout()

    # -- public ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.paths[-1].name

    @property
    def compressed_bytes(self) -> int:
        """Total size of all volumes: the base of the zip-bomb ratio."""
        return sum(self._vol.sizes)

    def members(self) -> list[ZipMember]:
        return list(self._members)

    def iter_data(self, member: ZipMember) -> Iterator[bytes]:
        """Yield the member's uncompressed bytes in chunks of at most ~1 MiB.

        Checks, as the data goes by, that the output never exceeds the declared size (a lying
        header cannot inflate past it) and at the end that size and CRC32 match; a failure
        raises ``ChecksumError`` naming the member.
        """
        if member.flags & 0x1:
            raise UnsupportedArchiveError(
                f"{member.name} in {self.name} is encrypted: easy-oww cannot unpack it"
            )
        if member.compress_type not in SUPPORTED_METHODS:
            raise UnsupportedArchiveError(
                f"{member.name} in {self.name} uses {member.method_name} compression: "
                "only stored, deflate and bzip2 are supported; unpack it with 7z"
            )
        disk, offset = self._data_start(member)
        decode = _Decoder.for_member(member, self.name)

        def pieces() -> Iterator[bytes]:
            end = (disk, offset)
            for end_disk, end_offset, chunk in self._vol.iter_range(
                disk, offset, member.compress_size
            ):
                end = (end_disk, end_offset)
                yield from decode.feed(chunk)
            self._check_end(member, end)
            yield from decode.finish()

        crc = 0
        produced = 0
        for piece in pieces():
            produced += len(piece)
            if produced > member.file_size:
                raise ChecksumError(
                    f"{member.name} in {self.name} inflates past its declared "
                    f"{member.file_size:,} bytes: the archive is damaged or hostile"
                )
            crc = zlib.crc32(piece, crc)
            yield piece
        if produced != member.file_size:
            raise ChecksumError(
                f"{member.name} in {self.name}: {produced:,} bytes, expected "
                f"{member.file_size:,}: the archive is damaged; download it again"
            )
        if crc != member.crc:
            raise ChecksumError(
                f"{member.name} in {self.name}: CRC error (crc32 {crc:08x}, expected "
                f"{member.crc:08x}): the archive is damaged; download it again"
            )

    def read(self, member: ZipMember) -> bytes:
        """The whole member, checked (for small members such as symlink targets)."""
        return b"".join(self.iter_data(member))

    def open(self, member: ZipMember) -> MemberStream:
        """A read-only stream over the member's checked bytes (``read(n)``)."""
        return MemberStream(self.iter_data(member))

    def close(self) -> None:
        self._vol.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- parsing -----------------------------------------------------------------------------

    def _read_central_directory(self, eocd: dict[str, int]) -> list[ZipMember]:
        cd_disk, cd_offset, cd_size = eocd["cd_disk"], eocd["cd_offset"], eocd["cd_size"]
        self._cd_start = (cd_disk, cd_offset)
        raw = self._vol.read(cd_disk, cd_offset, cd_size)
        members: list[ZipMember] = []
        pos = 0
        # Every entry the directory holds, not only as many as the end record counts: an end
        # record counting fewer would otherwise leave members out without a word.
        while pos + _CDIR.size <= len(raw):
            (sig, made_by, _need, flags, method, _t, _d, crc, csize, usize, nlen, elen, clen,
             disk, _iattr, eattr, hoff) = _CDIR.unpack_from(raw, pos)
            if sig != _CDIR_SIG:
                break
            name_raw = raw[pos + 46 : pos + 46 + nlen]
            extra = raw[pos + 46 + nlen : pos + 46 + nlen + elen]
            pos += 46 + nlen + elen + clen
            usize, csize, hoff, disk = _apply_zip64(extra, usize, csize, hoff, disk)
            name = name_raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
            members.append(
                ZipMember(
                    name=name, compress_size=csize, file_size=usize, crc=crc,
                    compress_type=method, flags=flags, external_attr=eattr,
                    create_system=made_by >> 8, disk=disk, header_offset=hoff,
                    index=len(members), name_length=nlen,
                )
            )
        if len(members) != eocd["entries"]:
            raise ArchiveError(
                f"{self.name}: central directory lists {len(members)} of "
                f"{eocd['entries']} entries: the archive is damaged; download it again"
            )
        return members

    def _check_volume_sizes(self) -> None:
        # zip -s cuts every volume but the last at the same size, except that it never splits
        # a header or record: one that does not fit goes whole to the next volume. So a
        # shorter volume is fine only when the next one opens with a record too long for the
        # room left; anything else means the volume was cut off.
        inner = self._vol.sizes[:-1]
        if len(inner) >= 2:
            full = max(inner)
            for disk, size in enumerate(inner):
                if size < full and size + self._record_length(disk + 1) <= full:
                    raise self._vol.truncated(disk)

    def _check_member_starts(self) -> None:
        for member in self._members:
            if member.disk >= len(self.paths):
                raise ArchiveError(
                    f"{member.name} in {self.name} starts on volume {member.disk + 1} of "
                    f"{len(self.paths)}: the archive is damaged"
                )
            if member.header_offset + _LOCAL.size > self._vol.sizes[member.disk]:
                raise self._vol.truncated(member.disk)

    def _record_length(self, disk: int) -> int:
        """Length of the zip record at the start of ``disk`` (0 if none starts there)."""
        return record_length(self._vol.read(disk, 0, min(self._vol.sizes[disk], _CDIR.size)))

    def _data_start(self, member: ZipMember) -> tuple[int, int]:
        header = self._vol.read(member.disk, member.header_offset, _LOCAL.size)
        sig, _need, _flags, _method, _t, _d, _crc, _cs, _us, nlen, elen = _LOCAL.unpack(header)
        if sig != _LOCAL_SIG:
            raise ArchiveError(
                f"{member.name} in {self.name}: no local header at volume "
                f"{self.paths[member.disk].name} offset {member.header_offset:,}: "
                "the archive is damaged or a volume is out of order"
            )
        return self._vol.advance(member.disk, member.header_offset, _LOCAL.size + nlen + elen)

    def _check_end(self, member: ZipMember, end: tuple[int, int]) -> None:
        """A member must stop before whatever starts after it.

        If one that ran on into the next volume runs over the next member's header, the volume
        it started in is shorter than when the archive was made: name that volume as truncated
        rather than report a CRC error. Members that overlap within one volume are the shape of
        an overlapping zip bomb.
        """
        nxt = self._next_start.get(member.index)
        if nxt is None or end <= nxt:
            return
        if end[0] > member.disk:
            raise self._vol.truncated(end[0] - 1)
        raise ArchiveError(
            f"{member.name} in {self.name} overlaps the next member: the archive is damaged "
            "or hostile (overlapping zip bomb); refused"
        )

    def _check_layout(self) -> None:
        # A lower bound on each member's extent (local header with the central directory's
        # name, no extra field) already tells a cut-off volume or overlapping members.
        for member in self._layout:
            # The stored length: a name that is not valid in its encoding decodes with
            # replacement characters, whose re-encoding is longer than what the archive holds.
            end = self._vol.advance(member.disk, member.header_offset,
                                    _LOCAL.size + member.name_length + member.compress_size)
            self._check_end(member, end)

class MemberStream:
    """File-like ``read(n)`` over an iterator of chunks (checks run when it is exhausted)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._pos = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = [self._buffer[self._pos :]]
            parts.extend(self._chunks)
            self._buffer, self._pos, self._done = b"", 0, True
            return b"".join(parts)
        while len(self._buffer) - self._pos < size and not self._done:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._done = True
                break
            self._buffer = self._buffer[self._pos :] + chunk
            self._pos = 0
        out = self._buffer[self._pos : self._pos + size]
        self._pos += len(out)
        return out

    def drain(self) -> None:
        """Read to the end so the size and CRC checks run."""
        for _ in self._chunks:
            pass
        self._buffer, self._pos, self._done = b"", 0, True


class _Decoder:
    """A member's bytes as they leave the archive: stored bytes pass through; compressed ones
    come out in pieces of at most CHUNK, so a highly compressed member cannot balloon memory.
    A stream that is damaged or ends early raises ``ChecksumError`` naming member and archive.
    """

    def __init__(self, member: ZipMember, archive: str) -> None:
        self.member = member
        self.archive = archive

    @staticmethod
    def for_member(member: ZipMember, archive: str) -> _Decoder:
        if member.compress_type == DEFLATED:
            return _Inflater(member, archive)
        if member.compress_type == BZIP2:
            return _Bunzipper(member, archive)
        return _Decoder(member, archive)

    def feed(self, data: bytes) -> Iterator[bytes]:
        yield data

    def finish(self) -> Iterator[bytes]:
        return iter(())

    def ends_early(self, stream: str) -> ChecksumError:
        return ChecksumError(
            f"{self.member.name} in {self.archive}: {stream} stream ends early "
            f"(CRC error): the archive is damaged; download it again"
        )

    def damaged(self, stream: str, exc: Exception) -> ChecksumError:
        return ChecksumError(
            f"{self.member.name} in {self.archive}: {stream} stream is damaged ({exc}): "
            "the archive is damaged; download it again"
        )


class _Inflater(_Decoder):
    def __init__(self, member: ZipMember, archive: str) -> None:
        super().__init__(member, archive)
        self.inflater = zlib.decompressobj(-15)

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            yield from _inflate(self.inflater, data)
        except zlib.error as exc:  # invalid codes or distances: name the member, no traceback
            raise self.damaged("deflate", exc) from None

    def finish(self) -> Iterator[bytes]:
        yield from self.feed(b"")  # the output still held back
        if not self.inflater.eof and self.member.compress_size:
            raise self.ends_early("deflate")


class _Bunzipper(_Decoder):
    def __init__(self, member: ZipMember, archive: str) -> None:
        super().__init__(member, archive)
        self.bunzip = bz2.BZ2Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        # Bytes after the end of the stream are ignored, as zlib ignores them for deflate; the
        # size and CRC32 checks still judge the output.
        if self.bunzip.eof:
            return
        try:
            piece = self.bunzip.decompress(data, CHUNK)
            while True:
                if piece:
                    yield piece
                if self.bunzip.eof or self.bunzip.needs_input:
                    return
                piece = self.bunzip.decompress(b"", CHUNK)  # drain the block, CHUNK at a time
                if not piece:  # nothing more until the next input
                    return
        except (OSError, EOFError, ValueError) as exc:
            raise self.damaged("bzip2", exc) from None

    def finish(self) -> Iterator[bytes]:
        yield from self.feed(b"")  # whatever output is still held back
        if not self.bunzip.eof and self.member.compress_size:
            raise self.ends_early("bzip2")


def _inflate(inflater: zlib._Decompress, data: bytes) -> Iterator[bytes]:
    # max_length bounds each output piece: a highly compressed member cannot balloon memory.
    # Called with b"" once the input has run out, it gives the output still held back (at most
    # one match, 258 bytes): nothing is left for a flush() to give.
    piece = inflater.decompress(data, CHUNK)
    if piece:
        yield piece
    while inflater.unconsumed_tail:
        piece = inflater.decompress(inflater.unconsumed_tail, CHUNK)
        if not piece:
            break
        yield piece


def record_length(head: bytes) -> int:
    """Length of the zip record that `head` (a volume's first bytes) opens; 0 if none does.
    A function of the bytes alone so each record kind can be tested without finding a `zip -s`
    layout that opens a volume with it."""
    sig = head[:4]
    if sig == _LOCAL_SIG and len(head) >= _LOCAL.size:
        nlen, elen = struct.unpack_from("<2H", head, 26)
        return _LOCAL.size + nlen + elen
    if sig == _CDIR_SIG and len(head) >= _CDIR.size:
        nlen, elen, clen = struct.unpack_from("<3H", head, 28)
        return _CDIR.size + nlen + elen + clen
    if sig == _DESCRIPTOR_SIG:
        return 24  # 16, or 24 with zip64 sizes: either way whole
    if sig == _EOCD_SIG and len(head) >= _EOCD.size:
        return _EOCD.size + struct.unpack_from("<H", head, 20)[0]
    if sig == _Z64_EOCD_SIG and len(head) >= 12:
        return 12 + struct.unpack_from("<Q", head, 4)[0]
    if sig == _Z64_LOCATOR_SIG:
        return _Z64_LOCATOR.size
    return 0


def _apply_zip64(extra: bytes, usize: int, csize: int, hoff: int, disk: int) -> tuple[int, ...]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if tag != 0x0001:
            continue
        # Only the fields whose 32/16-bit slot is saturated are present, in this order.
        i = 0
        if usize == 0xFFFFFFFF and i + 8 <= len(body):
            usize = struct.unpack_from("<Q", body, i)[0]
            i += 8
        if csize == 0xFFFFFFFF and i + 8 <= len(body):
            csize = struct.unpack_from("<Q", body, i)[0]
            i += 8
        if hoff == 0xFFFFFFFF and i + 8 <= len(body):
            hoff = struct.unpack_from("<Q", body, i)[0]
            i += 8
        if disk == 0xFFFF and i + 4 <= len(body):
            disk = struct.unpack_from("<L", body, i)[0]
        break
    return usize, csize, hoff, disk


def _require_present(paths: Sequence[Path]) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ArchiveVolumeError(
            f"{missing[0].name} is missing{more}: download it again into {missing[0].parent}"
        )


def _find_end_record(last: Path) -> tuple[int, dict[str, int]]:
    """Parse the (zip64) end of central directory at the tail of the last volume."""
    size = last.stat().st_size
    with open(last, "rb") as handle:
        tail_len = min(size, _EOCD.size + 0xFFFF + _Z64_LOCATOR.size)
        handle.seek(size - tail_len)
        tail = handle.read(tail_len)
    pos = tail.rfind(_EOCD_SIG)
    while pos >= 0:
        if pos + _EOCD.size <= len(tail):
            fields = _EOCD.unpack_from(tail, pos)
            if pos + _EOCD.size + fields[7] <= len(tail):  # comment fits: a real record
                break
        pos = tail.rfind(_EOCD_SIG, 0, pos)
    if pos < 0:
        raise ArchiveVolumeError(
            f"{last.name} is truncated or not a zip archive (no end of central directory): "
            "download it again"
        )
    _sig, this_disk, cd_disk, _n_here, entries, cd_size, cd_offset, _clen = fields
    eocd = {"cd_disk": cd_disk, "cd_offset": cd_offset, "cd_size": cd_size,
            "entries": entries}
    disks = this_disk + 1
    if size - len(tail) + pos == 0 and this_disk == cd_disk and cd_size:
        # Info-ZIP pushes an end record that no longer fits into a volume of its own but
        # still numbers it as the volume before: the central directory cannot end at
        # offset 0 of the file that holds it, so the .zip is one volume further on.
        disks += 1
    loc = pos - _Z64_LOCATOR.size
    if loc >= 0 and tail[loc : loc + 4] == _Z64_LOCATOR_SIG:
        _s, z64_disk, z64_offset, total_disks = _Z64_LOCATOR.unpack_from(tail, loc)
        disks = max(total_disks, 1)
        # The zip64 end record may sit on an earlier volume: read once all are known.
        eocd.update(z64_disk=z64_disk, z64_offset=z64_offset)
    return disks, eocd


def _apply_z64_record(eocd: dict[str, int], record: bytes) -> None:
    (_sig, _size, _made, _need, _this, cd_disk, _n_here, entries, cd_size,
     cd_offset) = _Z64_EOCD.unpack(record)
    eocd.update(cd_disk=cd_disk, cd_offset=cd_offset, cd_size=cd_size, entries=entries)


def is_split_volume(path: Path) -> bool:
    return re.fullmatch(r"\.z\d{2,}", Path(path).suffix.lower()) is not None
