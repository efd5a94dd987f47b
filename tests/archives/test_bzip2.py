"""bzip2 members (FMA's fma_*.zip) in archives made by the real Info-ZIP ``zip -Z bzip2``."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from easy_oww.archives.extract import ZipBombError, extract
from easy_oww.archives.splitzip import BZIP2, CHUNK, ChecksumError, SplitZipReader
from easy_oww.errors import EXIT_FAILED
from tests.archives.test_splitzip import make_wavs, read_all, source_tree, zip_split


def zip_bzip2(workdir: Path, archive: str, names: list[str], *args: str) -> Path:
    subprocess.run(["zip", "-q", "-r", "-Z", "bzip2", *args, archive, *names], cwd=workdir,
                   check=True)
    return workdir / archive


@pytest.fixture
def tracks(tmp_path: Path) -> Path:
    make_wavs(tmp_path / "fma" / "000", 3, seed=3)
    make_wavs(tmp_path / "fma" / "001", 2, seed=4)
    (tmp_path / "fma" / "notes.txt").write_text("track notes\n" * 20000)
    (tmp_path / "fma" / "empty.txt").write_bytes(b"")
    return tmp_path


def methods(volumes: list[Path] | Path) -> dict[str, int]:
    with SplitZipReader(volumes) as reader:
        return {m.name: m.compress_type for m in reader.members() if not m.is_dir}


def test_a_bzip2_zip_reads_back_every_member(tracks: Path) -> None:
    archive = zip_bzip2(tracks, "fma.zip", ["fma"])
    used = methods(archive)
    assert used["fma/000/clip000.wav"] == used["fma/notes.txt"] == BZIP2
    assert read_all(archive) == {f"fma/{k}": v for k, v in source_tree(tracks / "fma").items()}


def test_a_split_bzip2_zip_streams_members_across_volumes(tracks: Path) -> None:
    volumes = zip_split(tracks, "fma.zip", ["fma"], split="64k", args=("-Z", "bzip2"))
    assert len(volumes) > 3
    assert methods(volumes)["fma/001/clip001.wav"] == BZIP2
    assert read_all(volumes) == {f"fma/{k}": v for k, v in source_tree(tracks / "fma").items()}
    with SplitZipReader(volumes) as reader:  # one member does run on past its first volume
        assert any(m.compress_size > 64 * 1024 for m in reader.members())


def test_extract_unpacks_a_split_bzip2_zip_with_hashes(tracks: Path) -> None:
    volumes = zip_split(tracks, "fma.zip", ["fma"], split="64k", args=("-Z", "bzip2"))
    into = tracks / "out"
    results = extract(volumes, into, strip_components=1)
    files = {r.name: r for r in results if r.kind == "file"}
    assert {k: v for k, v in source_tree(into).items() if not k.startswith(".easy-oww")} == (
        source_tree(tracks / "fma"))
    for rel, data in source_tree(tracks / "fma").items():
        assert files[f"fma/{rel}"].sha256 == hashlib.sha256(data).hexdigest()


def data_span(path: Path, name: str) -> tuple[int, int]:
    """(offset, length) of a member's compressed bytes in a one-volume zip."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(name)
    raw = path.read_bytes()
    nlen, elen = struct.unpack_from("<2H", raw, info.header_offset + 26)
    return info.header_offset + 30 + nlen + elen, info.compress_size


def test_a_corrupt_bzip2_member_is_named_and_the_others_still_read(tracks: Path) -> None:
    archive = zip_bzip2(tracks, "fma.zip", ["fma"])
    start, length = data_span(archive, "fma/001/clip000.wav")
    raw = bytearray(archive.read_bytes())
    raw[start + length // 2] ^= 0xFF
    archive.write_bytes(bytes(raw))
    with SplitZipReader(archive) as reader:
        victim = next(m for m in reader.members() if m.name == "fma/001/clip000.wav")
        with pytest.raises(ChecksumError) as info:
            reader.read(victim)
        ok = next(m for m in reader.members() if m.name == "fma/000/clip002.wav")
        assert reader.read(ok) == (tracks / ok.name).read_bytes()
    message = str(info.value)
    # bzip2's own block CRC catches the flip before the zip's CRC32 would.
    assert message == ("fma/001/clip000.wav in fma.zip: bzip2 stream is damaged (Invalid data "
                       "stream): the archive is damaged; download it again")
    assert "\n" not in message and info.value.exit_code == EXIT_FAILED


def test_extract_names_the_corrupt_bzip2_member_and_keeps_the_others(tracks: Path) -> None:
    archive = zip_bzip2(tracks, "fma.zip", ["fma"])
    with SplitZipReader(archive) as reader:
        files = [m.name for m in reader.members() if m.name.endswith(".wav")]
    first, victim = files[0], files[-1]  # the one before is out and checked when it fails
    start, length = data_span(archive, victim)
    raw = bytearray(archive.read_bytes())
    raw[start + length // 2] ^= 0xFF
    archive.write_bytes(bytes(raw))
    into = tracks / "out"
    with pytest.raises(ChecksumError, match=rf"^{victim} in fma\.zip: "):
        extract(archive, into, workers=1)
    assert not (into / victim).exists()
    assert (into / first).read_bytes() == (tracks / first).read_bytes()


def test_a_bzip2_stream_cut_short_is_named(tmp_path: Path) -> None:
    path = tmp_path / "short.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as z:
        z.writestr("track.bin", os.urandom(1000) * 3000)
    data = bytearray(path.read_bytes())
    cd = data.find(b"PK\x01\x02")
    size = struct.unpack_from("<L", data, cd + 20)[0]
    struct.pack_into("<L", data, cd + 20, size - 10)  # the stream's last bytes left out
    path.write_bytes(bytes(data))
    with SplitZipReader(path) as reader, pytest.raises(
            ChecksumError,
            match=r"^track\.bin in short\.zip: bzip2 stream ends early \(CRC error\): the "
                  r"archive is damaged; download it again$"):
        reader.read(reader.members()[0])


def test_a_bzip2_member_cannot_inflate_past_its_declared_size(tmp_path: Path) -> None:
    path = tmp_path / "lie.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as z:
        z.writestr("big.bin", b"\0" * 3_000_000)
    data = bytearray(path.read_bytes())
    cd = data.find(b"PK\x01\x02")
    struct.pack_into("<L", data, cd + 24, 1000)
    struct.pack_into("<L", data, 22, 1000)
    path.write_bytes(bytes(data))
    with SplitZipReader(path) as reader, pytest.raises(ChecksumError, match="inflates past"):
        reader.read(reader.members()[0])


def test_a_highly_compressed_bzip2_member_comes_out_in_bounded_pieces(tmp_path: Path) -> None:
    path = tmp_path / "zeros.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as z:
        z.writestr("zeros.bin", b"\0" * (24 << 20))  # well under 1 KB compressed
    with SplitZipReader(path) as reader:
        member = reader.members()[0]
        sizes = [len(piece) for piece in reader.iter_data(member)]
    assert member.compress_size < 1024
    assert sum(sizes) == 24 << 20 and max(sizes) <= CHUNK


def zip_of(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def test_the_zip_bomb_guard_refuses_a_bzip2_member_by_its_declared_ratio(tmp_path: Path) -> None:
    archive = zip_of(tmp_path / "bomb.zip", {"ok.txt": b"fine", "bomb.bin": b"\0" * 20_000_000})
    into = tmp_path / "out"
    with pytest.raises(ZipBombError, match=r"^bomb\.bin in bomb\.zip would inflate .*zip bomb"):
        extract(archive, into, max_ratio=100)
    assert not (into / "bomb.bin").exists()


def test_the_zip_bomb_guard_stops_growing_bzip2_output(tmp_path: Path) -> None:
    # Each member stays under the per-member floor; together they pass the archive's ratio.
    archive = zip_of(tmp_path / "many.zip",
                     {f"m{i:02d}.bin": b"\0" * 900_000 for i in range(40)})
    into = tmp_path / "out"
    with pytest.raises(ZipBombError, match=r"output passed 200× .* at m\d\d\.bin"):
        extract(archive, into, workers=1)
    kept = sorted(p.name for p in into.glob("*.bin"))
    assert kept and len(kept) < 40
    assert all((into / n).stat().st_size == 900_000 for n in kept)


# Info-ZIP's `-1` makes 100 kB bzip2 blocks: sizes near block multiples and near CHUNK (the
# output piece size) exercise a block ending on, before and after a read boundary.
_EDGES = [100_000 * k for k in (1, 2, 3)] + [CHUNK]


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.sampled_from(_EDGES).flatmap(
        lambda edge: st.integers(edge - 64, edge + 64)), min_size=1, max_size=3),
    compressible=st.lists(st.booleans(), min_size=3, max_size=3),
    split=st.booleans(),
)
def test_bzip2_members_round_trip_around_block_boundaries(
        tmp_path_factory: pytest.TempPathFactory, sizes: list[int], compressible: list[bool],
        split: bool) -> None:
    work = tmp_path_factory.mktemp("bz")
    (work / "f").mkdir()
    for i, size in enumerate(sizes):
        data = bytes(range(256)) * (size // 256 + 1) if compressible[i] else os.urandom(size)
        (work / "f" / f"m{i}.bin").write_bytes(data[:size])
    if split:
        volumes: list[Path] | Path = zip_split(work, "p.zip", ["f"], split="256k",
                                               args=("-1", "-Z", "bzip2"))
    else:
        volumes = zip_bzip2(work, "p.zip", ["f"], "-1")
    assert set(methods(volumes).values()) == {BZIP2}
    assert read_all(volumes) == {f"f/{k}": v for k, v in source_tree(work / "f").items()}
