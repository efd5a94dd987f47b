"""SplitZipReader against archives made by the real Info-ZIP ``zip -s``."""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from easy_oww.archives.splitzip import (
    CHUNK,
    ArchiveError,
    ArchiveVolumeError,
    ChecksumError,
    MemberStream,
    SplitZipReader,
    UnsupportedArchiveError,
    record_length,
)
from easy_oww.errors import EXIT_FAILED, EasyOwwError
from tests.archives.crafted import DEFLATED, Entry, craft, write_volumes

# -- helpers shared with test_unpack ---------------------------------------------------------


def make_wavs(folder: Path, count: int, *, seconds: float = 1.0, rate: int = 44100,
              seed: int = 0) -> list[Path]:
    """Noise WAVs (compress poorly, like real audio), 16-bit mono."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        n = int(rate * seconds * rng.uniform(0.5, 1.5))
        data = (rng.standard_normal(n) * 3000).astype(np.int16)
        path = folder / f"clip{i:03d}.wav"
        sf.write(path, data, rate, subtype="PCM_16")
        paths.append(path)
    return paths


def zip_split(workdir: Path, archive: str, names: list[str], *, split: str = "64k",
              args: tuple[str, ...] = ()) -> list[Path]:
    """Run the real ``zip -s`` in ``workdir``; return the volumes in order, the .zip last."""
    subprocess.run(["zip", "-q", "-r", "-s", split, *args, archive, *names], cwd=workdir,
                   check=True)
    stem = archive[:-4]
    parts = sorted(workdir.glob(f"{stem}.z[0-9][0-9]"))
    return [*parts, workdir / archive]


def source_tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def wav_tree(tmp_path: Path) -> Path:
    make_wavs(tmp_path / "clips" / "a", 4, seed=1)
    make_wavs(tmp_path / "clips" / "b", 3, seed=2)
    (tmp_path / "clips" / "notes.txt").write_text("hello\n" * 5000)
    (tmp_path / "clips" / "empty.txt").write_bytes(b"")
    return tmp_path


def read_all(volumes: list[Path] | Path) -> dict[str, bytes]:
    with SplitZipReader(volumes) as reader:
        return {m.name: reader.read(m) for m in reader.members() if not m.is_dir}


# -- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [(), ("-0",), ("-fz",)], ids=["deflate", "stored", "zip64"])
def test_split_archive_reads_back_every_member(wav_tree: Path, args: tuple[str, ...]) -> None:
    volumes = zip_split(wav_tree, "clips.zip", ["clips"], args=args)
    assert len(volumes) >= 4
    assert volumes[0].read_bytes()[:4] == b"PK\x07\x08"  # zip -s's spanning marker
    expected = {f"clips/{k}": v for k, v in source_tree(wav_tree / "clips").items()}
    assert read_all(volumes) == expected


def test_member_spanning_volumes_is_streamed_across(wav_tree: Path) -> None:
    volumes = zip_split(wav_tree, "clips.zip", ["clips"], args=("-0",))
    size = volumes[0].stat().st_size
    with SplitZipReader(volumes) as reader:
        big = [m for m in reader.members() if m.compress_size > size]
        assert big, "a stored member larger than a volume must span volumes"
        for m in big:
            chunks = list(reader.iter_data(m))
            assert b"".join(chunks) == (wav_tree / m.name).read_bytes()
            assert max(map(len, chunks)) <= 1 << 20


def test_zip64_records_are_parsed(wav_tree: Path) -> None:
    volumes = zip_split(wav_tree, "clips.zip", ["clips"], args=("-fz",))
    assert b"PK\x06\x06" in volumes[-1].read_bytes()  # zip64 end record really there
    cd = volumes[-1].read_bytes()
    at = cd.find(b"PK\x01\x02")
    csize, usize = struct.unpack_from("<LL", cd, at + 20)
    assert 0xFFFFFFFF in (csize, usize)  # sizes really live in the zip64 extra field
    with SplitZipReader(volumes) as reader:
        assert len(reader.members()) == 12  # 3 folders, 7 clips, 2 texts


def test_members_metadata(wav_tree: Path) -> None:
    volumes = zip_split(wav_tree, "clips.zip", ["clips"])
    with SplitZipReader(volumes) as reader:
        members = {m.name: m for m in reader.members()}
    assert members["clips/a/"].is_dir and not members["clips/a/"].is_symlink
    note = members["clips/notes.txt"]
    data = (wav_tree / "clips/notes.txt").read_bytes()
    assert (note.file_size, note.crc, note.method_name) == (len(data), zlib.crc32(data),
                                                            "deflate")
    assert note.compress_size < note.file_size
    assert members["clips/empty.txt"].file_size == 0
    assert reader.compressed_bytes == sum(v.stat().st_size for v in volumes)


def test_passing_only_the_last_volume_finds_the_others(wav_tree: Path) -> None:
    volumes = zip_split(wav_tree, "clips.zip", ["clips"])
    assert read_all(volumes[-1]) == read_all(volumes)


def test_ordinary_zip_is_the_one_volume_case(tmp_path: Path) -> None:
    path = tmp_path / "plain.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x/stored.bin", os.urandom(5000), compress_type=zipfile.ZIP_STORED)
        z.writestr("x/deflated.txt", b"abc" * 100000, compress_type=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(path) as z:
        expected = {n: z.read(n) for n in z.namelist()}
    assert read_all(path) == expected


def test_member_stream_reads_in_pieces(wav_tree: Path) -> None:
    volumes = zip_split(wav_tree, "clips.zip", ["clips"])
    with SplitZipReader(volumes) as reader:
        m = next(m for m in reader.members() if m.name == "clips/notes.txt")
        stream = reader.open(m)
        head = stream.read(7)
        rest = stream.read()
    assert head + rest == (wav_tree / "clips/notes.txt").read_bytes()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(0, 150_000), min_size=1, max_size=6),
    compressible=st.lists(st.booleans(), min_size=6, max_size=6),
    stored=st.booleans(),
)
def test_any_member_sizes_round_trip(tmp_path_factory: pytest.TempPathFactory,
                                     sizes: list[int], compressible: list[bool],
                                     stored: bool) -> None:
    work = tmp_path_factory.mktemp("prop")
    files = work / "f"
    files.mkdir()
    for i, size in enumerate(sizes):
        data = b"z" * size if compressible[i] else os.urandom(size)
        (files / f"m{i}.bin").write_bytes(data)
    volumes = zip_split(work, "p.zip", ["f"], args=("-0",) if stored else ())
    expected = {f"f/{k}": v for k, v in source_tree(files).items()}
    assert read_all(volumes) == expected


def noise_files(work: Path, sizes: list[int]) -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    (work / "f").mkdir()
    for i, size in enumerate(sizes):
        (work / "f" / f"m{i}.bin").write_bytes(rng.bytes(size))
    return {f"f/{k}": v for k, v in source_tree(work / "f").items()}


def test_volume_cut_short_before_an_unsplit_header(tmp_path: Path) -> None:
    # zip -s moves a central-directory entry that does not fit whole to the next volume,
    # leaving an inner volume short: that is its layout, not a truncation.
    expected = noise_files(tmp_path, [0, 0, 0, 45718, 150000])
    volumes = zip_split(tmp_path, "p.zip", ["f"])
    sizes = [v.stat().st_size for v in volumes]
    assert len(volumes) == 4 and sizes[0] == sizes[1] == 65536 and sizes[2] < 65536 - 46
    assert read_all(volumes) == read_all(volumes[-1]) == expected
    with open(volumes[2], "r+b") as handle:  # a real cut in that volume is still named
        handle.truncate(sizes[2] - 200)
    with pytest.raises(ArchiveVolumeError,
                       match=r"^p\.z03 is truncated \([\d,]+ bytes\): download it again$"):
        read_all(volumes)


def test_end_record_alone_in_the_last_volume(tmp_path: Path) -> None:
    # When only the 22-byte end record spills over, Info-ZIP numbers its volume as the one
    # before (unzip itself then fails); the reader counts the volumes right.
    expected = noise_files(tmp_path, [0, 0, 0, 45700, 150000])
    volumes = zip_split(tmp_path, "p.zip", ["f"])
    assert len(volumes) == 4 and volumes[-1].stat().st_size == 22
    assert read_all(volumes) == read_all(volumes[-1]) == expected
    with pytest.raises(ArchiveVolumeError, match="list every volume"):
        SplitZipReader(volumes[1:])


def test_end_record_alone_after_a_single_volume(tmp_path: Path) -> None:
    # The same quirk when everything else fits in p.z01: the end record says "volume 0 of 1".
    rng = np.random.default_rng(3)
    for size in range(65150, 65450, 3):  # find the size where only the end record spills
        work = tmp_path / str(size)
        (work / "f").mkdir(parents=True)
        (work / "f" / "m0.bin").write_bytes(data := rng.bytes(size))
        volumes = zip_split(work, "p.zip", ["f"])
        if len(volumes) == 2 and volumes[-1].stat().st_size == 22:
            break
    else:
        raise AssertionError("zip -s never left the end record alone in this range")
    assert read_all(volumes) == read_all(volumes[-1]) == {"f/m0.bin": data}


def test_a_header_that_ends_exactly_at_a_volumes_end(tmp_path: Path) -> None:
    # zip -s keeps a header whole: when it fills its volume to the last byte, the member's
    # data opens the next volume at offset 0. Reading on from a volume's exact end is valid;
    # an off-by-one there refuses a good archive as truncated.
    rng = np.random.default_rng(5)
    for size in range(65300, 65500):  # find the first member size that gives that layout
        work = tmp_path / str(size)
        (work / "f").mkdir(parents=True)
        (work / "f" / "m0.bin").write_bytes(first := rng.bytes(size))
        (work / "f" / "m1.bin").write_bytes(second := rng.bytes(30000))
        volumes = zip_split(work, "p.zip", ["f"], args=("-0",))
        if volumes[0].stat().st_size == 65536 and volumes[1].read_bytes()[:64] == second[:64]:
            break
    else:
        raise AssertionError("zip -s never ended a header at a volume's end in this range")
    with SplitZipReader(volumes) as reader:
        member = next(m for m in reader.members() if m.name == "f/m1.bin")
        assert member.disk == 0  # its header is in the first volume, its data in the second
    assert read_all(volumes) == read_all(volumes[-1]) == {"f/m0.bin": first, "f/m1.bin": second}


def head(signature: bytes, size: int, fields: dict[int, tuple[str, int]]) -> bytes:
    """`size` bytes opening with `signature`, with `fields` (offset: (struct format, value))."""
    data = bytearray(size)
    data[:4] = signature
    for offset, (fmt, value) in fields.items():
        struct.pack_into(fmt, data, offset, value)
    return bytes(data)


@pytest.mark.parametrize("opening, length", [
    (head(b"PK\x03\x04", 46, {26: ("<H", 7), 28: ("<H", 40000)}), 30 + 7 + 40000),  # local
    (head(b"PK\x03\x04", 30, {26: ("<H", 40000), 28: ("<H", 3)}), 30 + 40000 + 3),  # just fits
    (head(b"PK\x03\x04", 29, {}), 0),  # cut inside the fixed part: not a record
    (head(b"PK\x01\x02", 46, {28: ("<H", 5), 30: ("<H", 7), 32: ("<H", 40000)}),
     46 + 5 + 7 + 40000),  # central directory entry
    (head(b"PK\x01\x02", 45, {}), 0),
    (head(b"PK\x07\x08", 46, {}), 24),  # data descriptor
    (head(b"PK\x05\x06", 22, {20: ("<H", 40000)}), 22 + 40000),  # end record and comment
    (head(b"PK\x05\x06", 21, {}), 0),
    (head(b"PK\x06\x06", 12, {4: ("<Q", 2**63 + 44)}), 12 + 2**63 + 44),  # zip64 end record
    (head(b"PK\x06\x06", 11, {}), 0),
    (head(b"PK\x06\x07", 46, {}), 20),  # zip64 locator
    (b"\x00" * 46, 0),
])
def test_the_length_of_the_record_that_opens_a_volume(opening: bytes, length: int) -> None:
    # zip -s never splits a record: a volume left short is fine only when the record opening
    # the next one is too long for the room left. Each kind's length, from its own fields.
    assert record_length(opening) == length


def test_member_stream_reads_any_sizes_and_the_rest() -> None:
    stream = MemberStream(iter([b"ab", b"", b"cde", b"f", b"ghij"]))
    assert stream.readable()
    assert stream.read(0) == b""
    assert stream.read(1) == b"a"
    assert stream.read(3) == b"bcd"
    assert stream.read(2) == b"ef"
    assert stream.read() == b"ghij"
    assert stream.read(5) == b"" and stream.read() == b""
    rest = MemberStream(iter([b"ab", b"cd"]))
    assert rest.read(1) == b"a" and rest.read(None) == b"bcd"  # type: ignore[arg-type]
    one = MemberStream(iter([b"abcdef"]))
    assert [one.read(2), one.read(2), one.read(2), one.read(2)] == [b"ab", b"cd", b"ef", b""]
    assert MemberStream(iter([b"ab"])).read(5) == b"ab"  # asked past the end: what there is
    pulled: list[bytes] = []

    def chunks():
        for chunk in (b"ab", b"cd", b"ef"):
            pulled.append(chunk)
            yield chunk

    lazy = MemberStream(chunks())  # memory stays flat: a chunk is pulled when it is needed
    assert lazy.read(2) == b"ab" and pulled == [b"ab"]
    assert lazy.read(1) == b"c" and pulled == [b"ab", b"cd"]
    drained = MemberStream(iter([b"ab", b"cd"]))
    drained.read(1)
    drained.drain()
    assert drained.read() == b"" and drained.read(3) == b""


@pytest.mark.parametrize("size", [24 << 20, CHUNK + 5])
def test_a_highly_compressed_member_is_inflated_in_bounded_pieces(tmp_path: Path,
                                                                  size: int) -> None:
    # CHUNK + 5 zeros: the first 1 MiB step uses up all the input with 5 bytes still held
    # back; they come out when the input has run out.
    path = write_volumes(tmp_path, "zeros", craft([
        Entry(b"zeros.bin", b"\0" * size, method=DEFLATED)]).volumes)[0]
    with SplitZipReader(path) as reader:
        sizes = [len(piece) for piece in reader.iter_data(reader.members()[0])]
    assert sum(sizes) == size and max(sizes) <= CHUNK


@pytest.mark.parametrize("split", [None, "64k"], ids=["one volume", "split"])
def test_zip64_end_record_values_replace_the_end_records_placeholders(
        tmp_path: Path, split: str | None) -> None:
    # Past 65,535 entries or 4 GiB the end record holds 0xFFFF.. placeholders and only the
    # zip64 end record the real values; `zip -fz` writes both, the placeholders are put in.
    expected = noise_files(tmp_path, [3000, 150000, 10])
    volumes = zip_split(tmp_path, "p.zip", ["f"], split=split or "0", args=("-fz", "-0")) \
        if split else [tmp_path / "p.zip"]
    if not split:
        subprocess.run(["zip", "-q", "-r", "-fz", "p.zip", "f"], cwd=tmp_path, check=True)
    data = bytearray(volumes[-1].read_bytes())
    at = data.rfind(b"PK\x05\x06")
    this_disk = struct.unpack_from("<H", data, at + 4)[0]
    struct.pack_into("<3H", data, at + 6, 0xFFFF, 0xFFFF, 0xFFFF)  # cd disk, entries x2
    struct.pack_into("<2L", data, at + 12, 0xFFFFFFFF, 0xFFFFFFFF)  # cd size, cd offset
    assert this_disk == len(volumes) - 1
    volumes[-1].write_bytes(bytes(data))
    assert read_all(volumes) == read_all(volumes[-1]) == expected


def zip64_extra(*values: tuple[str, int], before: bytes = b"") -> bytes:
    body = b"".join(struct.pack(fmt, value) for fmt, value in values)
    return before + struct.pack("<HH", 0x0001, len(body)) + body


FULL, HALF = 0xFFFFFFFF, 0xFFFF  # a saturated 32-bit and 16-bit slot


@pytest.mark.parametrize("extra, slots, expected", [
    # all four saturated: all four in the extra field, in this order
    (zip64_extra(("<Q", 2**63 + 1), ("<Q", 2**40), ("<Q", 2**33), ("<L", 70000)),
     (FULL, FULL, FULL, HALF), (2**63 + 1, 2**40, 2**33, 70000)),
    # only the saturated ones are present: here the compressed size and the offset
    (zip64_extra(("<Q", 2**40), ("<Q", 2**33)), (5, FULL, FULL, 0), (5, 2**40, 2**33, 0)),
    (zip64_extra(("<Q", 2**34)), (5, 6, FULL, 1), (5, 6, 2**34, 1)),
    # bodies that hold exactly the saturated fields (no byte to spare)
    (zip64_extra(("<Q", 2**41), ("<Q", 2**42)), (FULL, FULL, 7, 0), (2**41, 2**42, 7, 0)),
    (zip64_extra(("<Q", 2**41), ("<Q", 2**42), ("<Q", 2**43)), (FULL, FULL, FULL, 0),
     (2**41, 2**42, 2**43, 0)),
    (zip64_extra(("<Q", 2**44), ("<L", 9)), (5, 6, FULL, HALF), (5, 6, 2**44, 9)),
    (zip64_extra(("<L", 2**20)), (5, 6, 7, HALF), (5, 6, 7, 2**20)),
    # another field first (an extended timestamp), then the zip64 one
    (zip64_extra(("<Q", 2**35), before=struct.pack("<HH", 0x5455, 5) + b"\x01abcd"),
     (FULL, 6, 7, 0), (2**35, 6, 7, 0)),
    # a body too short for the saturated fields: what it holds is used, the rest stays
    (zip64_extra(("<Q", 2**36)), (FULL, FULL, 7, 0), (2**36, FULL, 7, 0)),
    (zip64_extra(("<Q", 2**36))[:-1], (FULL, 6, 7, 0), (FULL, 6, 7, 0)),
    (b"\x01\x00\x08", (FULL, 6, 7, 0), (FULL, 6, 7, 0)),  # a cut field header
    # a zip64 body declared a byte too short for its value: the byte after it is not read
    (struct.pack("<HH", 0x0001, 7) + struct.pack("<Q", 2**38), (FULL, 6, 7, 0),
     (FULL, 6, 7, 0)),
    # a field before it 32 KiB or longer: sizes are unsigned
    (zip64_extra(("<Q", 2**37), before=struct.pack("<HH", 0x9999, 0x8000) + bytes(0x8000)),
     (FULL, 6, 7, 0), (2**37, 6, 7, 0)),
    (b"", (FULL, FULL, FULL, HALF), (FULL, FULL, FULL, HALF)),
    (zip64_extra(), (FULL, FULL, FULL, HALF), (FULL, FULL, FULL, HALF)),  # an empty body
    # slots that are not saturated ignore the field, whatever it holds
    (zip64_extra(("<Q", 2**45), ("<Q", 2**46), ("<Q", 2**47), ("<L", 3)), (5, 6, 7, 8),
     (5, 6, 7, 8)),
    (zip64_extra(("<Q", 2**63 + 7), ("<Q", 2**63 + 9)), (5, FULL, FULL, 0),
     (5, 2**63 + 7, 2**63 + 9, 0)),  # unsigned
    (zip64_extra(("<L", 2**31 + 5)), (5, 6, 7, HALF), (5, 6, 7, 2**31 + 5)),
])
def test_zip64_extra_field_values_fill_the_saturated_slots(extra: bytes, slots: tuple,
                                                           expected: tuple) -> None:
    from easy_oww.archives.splitzip import _apply_zip64

    assert _apply_zip64(extra, *slots) == expected


def test_member_names_follow_the_utf8_flag(tmp_path: Path) -> None:
    path = tmp_path / "names.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("café.txt", b"utf-8 name, flagged")
        z.writestr("plain.txt", b"ascii")
    data = bytearray(path.read_bytes())
    with SplitZipReader(path) as reader:
        assert [m.name for m in reader.members()] == ["café.txt", "plain.txt"]
    for sig, flags_at in ((b"PK\x01\x02", 8), (b"PK\x03\x04", 6)):  # clear the flag
        at = data.find(sig)
        struct.pack_into("<H", data, at + flags_at,
                         struct.unpack_from("<H", data, at + flags_at)[0] & ~0x800)
    path.write_bytes(bytes(data))
    with SplitZipReader(path) as reader:  # unflagged names are cp437, as old tools wrote them
        assert [m.name for m in reader.members()] == [
            "café.txt".encode().decode("cp437"), "plain.txt"]
    bad = bytearray(data)
    at = bad.find(b"PK\x01\x02")
    struct.pack_into("<H", bad, at + 8, struct.unpack_from("<H", bad, at + 8)[0] | 0x800)
    name_at = at + 46
    bad[name_at + 3] = 0xFF  # flagged utf-8 but not valid utf-8: replaced, not an exception
    path.write_bytes(bytes(bad))
    with SplitZipReader(path) as reader:
        assert reader.members()[0].name == "caf\ufffd\ufffd.txt"


def test_symlinks_and_modes_are_read_from_unix_entries(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    target = tmp_path / "d" / "run.sh"
    target.write_bytes(b"#!/bin/sh\n")
    target.chmod(0o750)
    (tmp_path / "d" / "link").symlink_to("run.sh")
    volumes = zip_split(tmp_path, "s.zip", ["d"], args=("-y",))
    with SplitZipReader(volumes) as reader:
        members = {m.name: m for m in reader.members()}
    assert members["d/link"].is_symlink and not members["d/link"].is_dir
    assert not members["d/run.sh"].is_symlink and members["d/run.sh"].mode == 0o750
    assert members["d/"].is_dir


def test_which_files_are_inner_volumes_of_a_split_zip() -> None:
    from easy_oww.archives.splitzip import is_split_volume

    assert all(is_split_volume(Path(n)) for n in ("a.z01", "a.Z02", "dir/a.z123"))
    assert not any(is_split_volume(Path(n)) for n in ("a.zip", "a.z1", "a.zz1", "a.z01.txt",
                                                      "z01", "a.7z"))


# -- damage ----------------------------------------------------------------------------------


def test_missing_volume_is_named(wav_tree: Path) -> None:
    volumes = zip_split(wav_tree, "clips.zip", ["clips"])
    volumes[2].unlink()
    one_missing = rf"^clips\.z03 is missing: download it again into {re.escape(str(wav_tree))}$"
    with pytest.raises(ArchiveVolumeError, match=one_missing) as info:
        SplitZipReader(volumes)
    assert info.value.exit_code == EXIT_FAILED and "\n" not in str(info.value)
    with pytest.raises(ArchiveVolumeError, match=one_missing):
        SplitZipReader(volumes[-1])  # sibling discovery names it too
    volumes[4].unlink()
    with pytest.raises(ArchiveVolumeError, match=r"^clips\.z03 is missing \(and 1 more\): "):
        SplitZipReader(volumes)
    volumes[5].unlink()
    with pytest.raises(ArchiveVolumeError, match=(
            rf"^clips\.z03 is missing \(and 2 more\): download it again into "
            rf"{re.escape(str(wav_tree))}$")):
        SplitZipReader(volumes)


def test_missing_last_volume_is_named(wav_tree: Path) -> None:
    volumes = zip_split(wav_tree, "clips.zip", ["clips"])
    volumes[-1].unlink()
    with pytest.raises(ArchiveVolumeError, match=r"^clips\.zip is missing"):
        SplitZipReader(volumes)
    with pytest.raises(ArchiveVolumeError, match=r"^clips\.zip is missing"):
        SplitZipReader(volumes[-1])  # given alone
    volumes[-2].unlink()  # the .zip is named alone: without it the others are not known
    with pytest.raises(ArchiveVolumeError, match=r"^clips\.zip is missing: download"):
        SplitZipReader(volumes)


def test_wrong_volume_count_is_explained(wav_tree: Path) -> None:
    volumes = zip_split(wav_tree, "clips.zip", ["clips"])
    with pytest.raises(ArchiveVolumeError, match="list every volume"):
        SplitZipReader(volumes[1:])


@pytest.mark.parametrize("which", [0, 2])
def test_truncated_volume_is_named(wav_tree: Path, which: int) -> None:
    volumes = zip_split(wav_tree, "clips.zip", ["clips"])
    with open(volumes[which], "r+b") as handle:
        handle.truncate(volumes[which].stat().st_size - 1000)
    with pytest.raises(ArchiveVolumeError, match=rf"^clips\.z0{which + 1} is truncated"):
        read_all(volumes)


def test_truncated_first_of_two_volumes_is_named(tmp_path: Path) -> None:
    make_wavs(tmp_path / "d", 1, seconds=1.0)
    volumes = zip_split(tmp_path, "two.zip", ["d"], args=("-0",))
    assert len(volumes) == 2  # nothing to compare its size with: the layout tells
    with open(volumes[0], "r+b") as handle:
        handle.truncate(volumes[0].stat().st_size - 300)
    with pytest.raises(ArchiveVolumeError, match=r"^two\.z01 is truncated"):
        SplitZipReader(volumes)  # at open, before any member is read (the layout check)


def test_truncated_last_volume_is_named(wav_tree: Path) -> None:
    volumes = zip_split(wav_tree, "clips.zip", ["clips"])
    with open(volumes[-1], "r+b") as handle:
        handle.truncate(volumes[-1].stat().st_size - 10)
    with pytest.raises(ArchiveVolumeError, match=r"^clips\.zip is truncated"):
        SplitZipReader(volumes)


def flip_byte_in(volumes: list[Path], needle: bytes) -> None:
    """Flip one byte inside the stored copy of ``needle`` wherever it lies."""
    for volume in volumes:
        data = bytearray(volume.read_bytes())
        at = data.find(needle)
        if at >= 0:
            data[at + len(needle) // 2] ^= 0xFF
            volume.write_bytes(bytes(data))
            return
    raise AssertionError("needle not found")


def test_crc_error_names_the_member(wav_tree: Path) -> None:
    volumes = zip_split(wav_tree, "clips.zip", ["clips"], args=("-0",))
    victim = (wav_tree / "clips/b/clip001.wav").read_bytes()
    flip_byte_in(volumes, victim[20000:20064])
    with SplitZipReader(volumes) as reader:
        member = next(m for m in reader.members() if m.name == "clips/b/clip001.wav")
        with pytest.raises(ChecksumError, match=r"^clips/b/clip001\.wav in clips\.zip: CRC "):
            reader.read(member)
        ok = next(m for m in reader.members() if m.name == "clips/a/clip000.wav")
        assert reader.read(ok) == (wav_tree / ok.name).read_bytes()


def test_a_damaged_deflate_stream_is_named_not_a_traceback(tmp_path: Path) -> None:
    # Bytes flipped inside the compressed data make zlib meet an invalid code or distance.
    rng = np.random.default_rng(4)
    text = rng.integers(0, 16, 200_000).astype(np.uint8).tobytes()  # compresses by half
    path = write_volumes(tmp_path, "c", craft([Entry(b"a.bin", text, method=DEFLATED),
                                               Entry(b"b.txt", b"fine")]).volumes)[0]
    data = bytearray(path.read_bytes())
    for at in range(200, 2000, 7):
        data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    with SplitZipReader(path) as reader:
        damaged, fine = reader.members()
        with pytest.raises(ChecksumError, match=r"^a\.bin in c\.zip: deflate stream is damaged "
                                                r"\(Error -3 .*\): the archive is damaged; "
                                                r"download it again$"):
            reader.read(damaged)
        assert reader.read(fine) == b"fine"


def test_lying_sizes_cannot_inflate_past_declared(tmp_path: Path) -> None:
    path = tmp_path / "lie.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.bin", b"\0" * 3_000_000)
    data = bytearray(path.read_bytes())
    cd = data.find(b"PK\x01\x02")
    struct.pack_into("<L", data, cd + 24, 1000)  # central directory: uncompressed size
    struct.pack_into("<L", data, 22, 1000)  # local header too
    path.write_bytes(bytes(data))
    with SplitZipReader(path) as reader, pytest.raises(ChecksumError, match="inflates past"):
        reader.read(reader.members()[0])


@pytest.mark.parametrize("field, change, message", [
    (24, +1, r"3,000,000 bytes, expected 3,000,001"),  # declared size larger than the data
    (20, -10, r"^big\.bin in short\.zip: deflate stream ends early \(CRC error\): the archive "
              r"is damaged; download it again$"),  # the compressed data cut short
])
def test_a_member_shorter_than_declared_is_refused(tmp_path: Path, field: int, change: int,
                                                    message: str) -> None:
    path = tmp_path / "short.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("big.bin", os.urandom(1000) * 3000)
    data = bytearray(path.read_bytes())
    cd = data.find(b"PK\x01\x02")
    value = struct.unpack_from("<L", data, cd + field)[0]
    struct.pack_into("<L", data, cd + field, value + change)  # the central directory's size
    path.write_bytes(bytes(data))
    with SplitZipReader(path) as reader, pytest.raises(ChecksumError, match=message):
        reader.read(reader.members()[0])


def two_member_zip(path: Path) -> tuple[bytearray, list[int]]:
    """A stored zip of two members; its bytes and where each central directory entry starts."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a.bin", os.urandom(5000))
        z.writestr("b.bin", os.urandom(5000))
    data = bytearray(path.read_bytes())
    first = data.find(b"PK\x01\x02")
    return data, [first, data.find(b"PK\x01\x02", first + 4)]


@pytest.mark.parametrize("damage", ["short directory", "broken entry"])
def test_a_central_directory_missing_an_entry_is_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "cd.zip"
    data, entries = two_member_zip(path)
    if damage == "short directory":  # the end record's directory size stops inside entry 2
        end = data.rfind(b"PK\x05\x06")
        struct.pack_into("<L", data, end + 12, entries[1] - entries[0] + 30)
    else:
        data[entries[1]:entries[1] + 4] = b"PK\x09\x09"
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="central directory lists 1 of 2 entries"):
        SplitZipReader(path)


def test_member_comments_do_not_shift_the_entries_after_them(tmp_path: Path) -> None:
    path = tmp_path / "comments.zip"
    with zipfile.ZipFile(path, "w") as z:
        for name, comment in (("a.txt", b"first member's comment"), ("b.txt", b"x" * 300)):
            info = zipfile.ZipInfo(name)
            info.comment = comment
            z.writestr(info, name.encode() * 10)
    assert read_all(path) == {"a.txt": b"a.txt" * 10, "b.txt": b"b.txt" * 10}


def test_an_archive_comment_that_looks_like_an_end_record_is_not_one(tmp_path: Path) -> None:
    path = tmp_path / "comment.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.txt", b"alpha")
        z.comment = b"see PK\x05\x06" + b"\xff" * 30  # the end record's signature, and junk
    assert read_all(path) == {"a.txt": b"alpha"}


def test_members_sharing_bytes_are_refused_as_an_overlapping_bomb(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    data, entries = two_member_zip(path)
    struct.pack_into("<L", data, entries[1] + 42, 0)  # b's header offset: a's header
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="overlapping zip bomb"):
        SplitZipReader(path)


def test_a_member_whose_header_lies_past_the_volume_is_a_truncated_volume(tmp_path: Path) -> None:
    path = tmp_path / "cut.zip"
    data, entries = two_member_zip(path)
    struct.pack_into("<L", data, entries[1] + 42, len(data) - 10)  # b's header: 10 bytes left
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveVolumeError, match=r"^cut\.zip is truncated"):
        SplitZipReader(path)


def test_unsupported_method_and_encryption_are_refused(tmp_path: Path) -> None:
    # bzip2 is read now (test_bzip2.py); lzma stands for the methods still refused.
    path = tmp_path / "xz.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_LZMA) as z:
        z.writestr("a.txt", b"abc" * 1000)
    with SplitZipReader(path) as reader, pytest.raises(
        UnsupportedArchiveError,
        match=r"^a\.txt in xz\.zip uses lzma compression: only stored, deflate and bzip2 are "
              r"supported; unpack it with 7z$",
    ):
        reader.read(reader.members()[0])
    (tmp_path / "s.txt").write_text("secret")
    subprocess.run(["zip", "-q", "-P", "pw", "enc.zip", "s.txt"], cwd=tmp_path, check=True)
    with SplitZipReader(tmp_path / "enc.zip") as reader, pytest.raises(
        UnsupportedArchiveError, match="encrypted"
    ):
        reader.read(reader.members()[0])


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "junk.zip"
    path.write_bytes(os.urandom(1000).replace(b"PK", b"pk"))
    with pytest.raises(EasyOwwError, match=r"^junk\.zip is truncated or not a zip"):
        SplitZipReader(path)


def test_data_descriptors_from_a_streamed_zip(tmp_path: Path) -> None:
    class Unseekable(io.RawIOBase):
        def __init__(self, handle: io.BufferedWriter) -> None:
            self.handle = handle

        def writable(self) -> bool:
            return True

        def write(self, data: bytes) -> int:  # type: ignore[override]
            return self.handle.write(data)

    path = tmp_path / "streamed.zip"
    payload = {"a.bin": os.urandom(70_000), "b.txt": b"xyz" * 50_000}
    with open(path, "wb") as raw, zipfile.ZipFile(Unseekable(raw), "w",
                                                  zipfile.ZIP_DEFLATED) as z:
        for name, data in payload.items():
            z.writestr(name, data)
    with SplitZipReader(path) as reader:
        assert all(m.flags & 0x08 for m in reader.members())  # sizes came after the data
        assert {m.name: reader.read(m) for m in reader.members()} == payload


# -- layouts built record by record (tests/archives/crafted.py) ---------------------------------


def crafted_read(volumes: list[Path] | Path) -> dict[bytes, bytes]:
    return {m.name.encode(): data for m, data in _members_and_data(volumes)}


def _members_and_data(volumes: list[Path] | Path) -> list[tuple]:
    with SplitZipReader(volumes) as reader:
        return [(m, reader.read(m)) for m in reader.members()]


def test_a_zip64_end_record_on_an_earlier_volume_is_read_from_there(tmp_path: Path) -> None:
    # The end record holds only placeholders: the real values are in the zip64 end record,
    # which the locator places on the first volume; the last volume is the locator and the
    # end record alone (the locator at offset 0 of the searched tail).
    entries = [Entry(b"a.bin", os.urandom(3000)), Entry(b"b.txt", b"b" * 500)]
    at = craft(entries, zip64=True).at
    volumes = write_volumes(tmp_path, "c", craft(entries, zip64=True,
                                                 cuts=[at["locator"]]).volumes)
    expected = {e.name: e.data for e in entries}
    assert crafted_read(volumes) == crafted_read(volumes[-1]) == expected
    first = bytearray(volumes[0].read_bytes())
    first[at["zip64 end"]] ^= 0xFF  # its signature damaged
    volumes[0].write_bytes(bytes(first))
    with pytest.raises(ArchiveError, match=r"^c\.zip: zip64 end record not found: damaged"):
        SplitZipReader(volumes)


STRAY_END = b"PK\x05\x06" + bytes(18)  # an end record's signature: 0 entries, 0 bytes


@pytest.mark.parametrize("alone", [False, True], ids=["one volume", "end record alone"])
def test_end_record_signatures_in_a_member_and_in_the_comment_are_not_the_end(
        tmp_path: Path, alone: bool) -> None:
    # Stored data can hold any bytes; a comment can hold a signature whose own "comment" would
    # run 10 bytes past the end. Taking either for the end record reads an empty archive.
    entries = [Entry(b"a.bin", os.urandom(100) + STRAY_END + os.urandom(100))]
    comment = b"note " + b"PK\x05\x06" + bytes(16) + struct.pack("<H", 10)
    cuts = [craft(entries, comment=comment).at["end"]] if alone else []
    volumes = write_volumes(tmp_path, "c", craft(entries, comment=comment, cuts=cuts).volumes)
    assert crafted_read(volumes) == {b"a.bin": entries[0].data}


@pytest.mark.parametrize("zip64", [False, True])
def test_the_longest_archive_comment_is_searched_past(tmp_path: Path, zip64: bool) -> None:
    # The end record is found within its 22 bytes + a 65,535-byte comment (+ the zip64
    # locator's 20) of the end: the search window is exactly that long.
    entries = [Entry(b"a.bin", os.urandom(2000))]
    path = write_volumes(tmp_path, "c", craft(entries, comment=b"c" * 0xFFFF,
                                              zip64=zip64).volumes)[0]
    assert crafted_read(path) == {b"a.bin": entries[0].data}


def test_a_signature_farther_back_than_the_longest_end_record_is_not_one(tmp_path: Path) -> None:
    path = tmp_path / "c.zip"
    path.write_bytes(STRAY_END + bytes(22 + 0xFFFF + 20 + 1 - len(STRAY_END)))
    with pytest.raises(ArchiveVolumeError, match=r"^c\.zip is truncated or not a zip archive"):
        SplitZipReader(path)


@pytest.mark.parametrize("size", [131131, 131132, 131133])
def test_a_one_volume_zip_is_one_volume_wherever_its_end_record_falls(tmp_path: Path,
                                                                      size: int) -> None:
    # At 131,132 bytes the end record lies as far into the search window as the window lies
    # into the file: an arithmetic slip there counts it as Info-ZIP's end-record-alone volume.
    overhead = len(craft([Entry(b"a", b"")]).volumes[0])
    entries = [Entry(b"a", os.urandom(size - overhead))]
    path = write_volumes(tmp_path, "c", craft(entries).volumes)[0]
    assert path.stat().st_size == size
    assert crafted_read(path) == {b"a": entries[0].data}


BYTE_EDGES = [Entry(b"one", b"x"), Entry(b"over", os.urandom(CHUNK + 1)),
              Entry(b"starts", os.urandom(5000)), Entry(b"spans", os.urandom(7000)),
              Entry(b"after", os.urandom(300))]


@pytest.mark.parametrize("cut", [None, ("data 0", 0), ("data 2", 1), ("data 3", 6999)],
                         ids=["one volume", "a one-byte member opens a volume",
                              "data starts on a volume's last byte",
                              "the last byte opens the next volume"])
def test_stored_members_whose_last_read_is_a_single_byte(tmp_path: Path,
                                                          cut: tuple[str, int] | None) -> None:
    # No extra fields: each member's data runs right up to the next header, so a byte lost or
    # gained at a volume's edge is a refusal or a wrong byte. Stored reads stay within 1 MiB.
    at = craft(BYTE_EDGES).at
    cuts = [at[cut[0]] + cut[1]] if cut else []
    volumes = write_volumes(tmp_path, "c", craft(BYTE_EDGES, cuts=cuts).volumes)
    assert crafted_read(volumes) == crafted_read(volumes[-1]) == {e.name: e.data
                                                                  for e in BYTE_EDGES}
    with SplitZipReader(volumes) as reader:
        over = next(m for m in reader.members() if m.name == "over")
        assert [len(c) for c in reader.iter_data(over)] == [CHUNK, 1]


def test_a_first_volume_one_byte_short_is_named_at_open(tmp_path: Path) -> None:
    # "spans" starts far into the first volume and spills one byte into the next: its extent
    # must be counted from where it starts, or the missing byte is only found when it is read.
    at = craft(BYTE_EDGES).at
    volumes = write_volumes(tmp_path, "c", craft(BYTE_EDGES, cuts=[at["data 3"] + 6999]).volumes)
    with open(volumes[0], "r+b") as handle:
        handle.truncate(volumes[0].stat().st_size - 1)
    with pytest.raises(ArchiveVolumeError, match=r"^c\.z01 is truncated"):
        SplitZipReader(volumes)


def test_a_nameless_entry_whose_header_ends_at_a_volumes_end(tmp_path: Path) -> None:
    # The shortest records there are: a 30-byte local header and a 46-byte directory entry,
    # the header filling its volume to the last byte and the entry ending the directory.
    entries = [Entry(b"a.bin", os.urandom(500)), Entry(b"", os.urandom(800))]
    at = craft(entries).at
    volumes = write_volumes(tmp_path, "c", craft(entries, cuts=[at["data 1"]]).volumes)
    assert crafted_read(volumes) == {b"a.bin": entries[0].data, b"": entries[1].data}


def test_an_end_record_counting_fewer_entries_than_the_directory_holds_is_refused(
        tmp_path: Path) -> None:
    # Reading only as many entries as counted would leave members out without a word.
    entries = [Entry(b"a.txt", b"a"), Entry(b"b.txt", b"b"), Entry(b"c.txt", b"c")]
    path = write_volumes(tmp_path, "c", craft(entries, count=2).volumes)[0]
    with pytest.raises(ArchiveError, match=r"^c\.zip: central directory lists 3 of 2 entries"):
        SplitZipReader(path)


def test_an_encrypted_members_name_follows_the_utf8_flag_alone(tmp_path: Path) -> None:
    # Flag bit 0 (encrypted) is not the UTF-8 flag (bit 11): the name stays cp437.
    entries = [Entry("caf\u00e9.txt".encode("cp437"), b"secret", flags=0x1)]
    path = write_volumes(tmp_path, "c", craft(entries).volumes)[0]
    with SplitZipReader(path) as reader, pytest.raises(
            UnsupportedArchiveError, match="^caf\u00e9\\.txt in c\\.zip is encrypted"):
        reader.read(reader.members()[0])


def patch_end_record(volume: Path, offset: int, fmt: str, value: int) -> None:
    data = bytearray(volume.read_bytes())
    struct.pack_into(fmt, data, data.rfind(b"PK\x05\x06") + offset, value)
    volume.write_bytes(bytes(data))


@pytest.mark.parametrize("field, value", [
    ((6, "<H"), 2),  # the directory on volume 3 of 2
    ((16, "<L"), 10**6),  # the directory's offset past its volume's end
    ((12, "<L"), 10**6),  # the directory's size running past the last volume
])
def test_an_end_record_pointing_past_the_volumes_names_the_last_one(
        tmp_path: Path, field: tuple[int, str], value: int) -> None:
    entries = [Entry(b"a.bin", os.urandom(3000))]
    at = craft(entries).at
    volumes = write_volumes(tmp_path, "c", craft(entries, cuts=[at["data 0"] + 100]).volumes)
    patch_end_record(volumes[-1], field[0], field[1], value)
    with pytest.raises(ArchiveVolumeError, match=r"^c\.zip is truncated \([\d,]+ bytes\)"):
        SplitZipReader(volumes)


def test_a_volume_cut_while_it_is_read_is_named(tmp_path: Path) -> None:
    entries = [Entry(b"a.bin", os.urandom(3000))]
    at = craft(entries).at
    volumes = write_volumes(tmp_path, "c", craft(entries, cuts=[at["directory"]]).volumes)
    with SplitZipReader(volumes) as reader:
        with open(volumes[0], "r+b") as handle:  # after the reader took its size
            handle.truncate(1000)
        with pytest.raises(ArchiveVolumeError, match=r"^c\.z01 is truncated"):
            reader.read(reader.members()[0])


def test_a_member_said_to_start_past_the_last_volume_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.zip"
    data, entries = two_member_zip(path)
    struct.pack_into("<H", data, entries[1] + 34, 1)  # b's disk: volume 2 of 1
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=r"^b\.bin in c\.zip starts on volume 2 of 1"):
        SplitZipReader(path)


def test_a_member_running_one_byte_into_the_next_header_is_refused_at_open(
        tmp_path: Path) -> None:
    entries = [Entry(b"a.bin", os.urandom(5000)), Entry(b"b.bin", os.urandom(5000))]
    path = write_volumes(tmp_path, "c", craft(entries).volumes)[0]
    data = bytearray(path.read_bytes())
    first = data.find(b"PK\x01\x02")
    struct.pack_into("<L", data, first + 20, 5001)  # a's compressed size
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="overlapping zip bomb"):
        SplitZipReader(path)


def test_an_inner_volume_short_by_the_record_that_opens_the_next_is_named_at_open(
        tmp_path: Path) -> None:
    # zip -s moves a record that does not fit to the next volume, leaving the one before
    # short; a volume short by no more than the next volume's first record would have held
    # it: it was cut. Here a's 100-byte extra field hides the cut from the layout check.
    entries = [Entry(b"a", os.urandom(1000), local_extra=b"\0" * 100),
               Entry(b"b", os.urandom(3000))]
    at = craft(entries).at
    size = at["header 1"]
    volumes = write_volumes(tmp_path, "c", craft(entries, cuts=[size, 2 * size]).volumes)
    assert [v.stat().st_size for v in volumes[:2]] == [size, size]
    assert crafted_read(volumes) == {e.name: e.data for e in entries}
    with open(volumes[0], "r+b") as handle:
        handle.truncate(size - (30 + 1))  # as short as b's header is long
    with pytest.raises(ArchiveVolumeError, match=r"^c\.z01 is truncated"):
        SplitZipReader(volumes)
