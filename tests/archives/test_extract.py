"""extract(): safety refusals, resumability, checks, and a SIGKILL chaos run."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import soundfile as sf

from easy_oww.archives.extract import (
    TEMP_DIR_NAME,
    MemberResult,
    UnsafeArchiveError,
    ZipBombError,
    extract,
    journal_path,
)
from easy_oww.archives.splitzip import ArchiveVolumeError, ChecksumError, SplitZipReader
from easy_oww.audio import WavResampler
from easy_oww.errors import EXIT_FAILED
from tests.archives.test_splitzip import flip_byte_in, make_wavs, source_tree, zip_split


def no_temp(into: Path) -> bool:
    return not list(into.glob(TEMP_DIR_NAME + "*"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def outputs(root: Path) -> dict[str, bytes]:
    """Files under final names (the journal and the temp folder excluded)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".easy-oww") for part in p.parts)
    }


@pytest.fixture
def split_archive(tmp_path: Path) -> tuple[list[Path], Path]:
    work = tmp_path / "src"
    make_wavs(work / "FSD" / "dev", 8, seed=3)
    (work / "FSD" / "labels.csv").write_text("fname,labels\n" + "1,Bark\n" * 2000)
    return zip_split(work, "FSD.zip", ["FSD"]), work / "FSD"


def zip_with(path: Path, entries: list[tuple[str, bytes, int | None]]) -> Path:
    """A zip whose members are (name, data, unix mode or None)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode is not None:
                info.create_system = 3
                info.external_attr = mode << 16
            z.writestr(info, data)
    return path


# -- the good path ---------------------------------------------------------------------------


def test_split_archive_extracts_with_hashes(split_archive: tuple[list[Path], Path],
                                            tmp_path: Path) -> None:
    volumes, src = split_archive
    into = tmp_path / "out"
    seen: list[str] = []
    results = extract(volumes, into, strip_components=1, on_member=lambda r: seen.append(r.name))
    assert outputs(into) == source_tree(src)
    files = [r for r in results if r.kind == "file"]
    assert len(files) == 9 and sorted(seen) == sorted(r.name for r in results)
    for r in files:
        assert r.path.is_absolute() and r.sha256 == sha256(r.path) and r.size == len(
            r.path.read_bytes())
        assert not r.skipped and r.settings is None
    assert no_temp(into)
    assert journal_path(into, "FSD.zip").is_file()
    mode = stat.S_IMODE((into / "labels.csv").stat().st_mode)
    assert mode & 0o044 == 0o044  # not mkstemp's 0600


def test_rerun_skips_what_is_done_and_redoes_what_is_not(
        split_archive: tuple[list[Path], Path], tmp_path: Path) -> None:
    volumes, src = split_archive
    into = tmp_path / "out"
    first = {r.name: r for r in extract(volumes, into)}
    again = extract(volumes, into)
    assert all(r.skipped for r in again)
    assert {r.name: (r.path, r.sha256) for r in again} == {
        n: (r.path, r.sha256) for n, r in first.items()}
    damaged = into / "FSD/dev/clip002.wav"
    damaged.write_bytes(damaged.read_bytes()[:100])
    (into / "FSD/dev/clip005.wav").unlink()
    third = {r.name: r for r in extract(volumes, into)}
    redone = sorted(n for n, r in third.items() if not r.skipped)
    assert redone == ["FSD/dev/clip002.wav", "FSD/dev/clip005.wav"]
    assert outputs(into / "FSD") == source_tree(src)


def test_select_and_strip(split_archive: tuple[list[Path], Path], tmp_path: Path) -> None:
    volumes, _ = split_archive
    results = extract(volumes, tmp_path / "dev", strip_components=2,
                      select=lambda name: name.endswith(".wav"))
    assert sorted(p.name for p in (tmp_path / "dev").glob("*.wav")) == [
        f"clip{i:03d}.wav" for i in range(8)]
    assert {r.kind for r in results} == {"file"}


def test_transform_resamples_on_the_way_out(split_archive: tuple[list[Path], Path],
                                            tmp_path: Path) -> None:
    volumes, _ = split_archive
    into = tmp_path / "dev16"
    resampler = WavResampler(16000)
    results = extract(volumes, into, transform=resampler, strip_components=2,
                      select=lambda n: n.endswith(".wav"))
    for r in results:
        info = sf.info(r.path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert r.sha256 == sha256(r.path) and r.settings == resampler.settings
        assert r.source_size > r.size
    assert all(r.skipped for r in extract(volumes, into, transform=resampler,
                                          strip_components=2,
                                          select=lambda n: n.endswith(".wav")))
    # other settings: the outputs are not what is wanted any more
    redo = extract(volumes, into, transform=WavResampler(22050), strip_components=2,
                   select=lambda n: n.endswith(".wav"))
    assert not any(r.skipped for r in redo)
    assert sf.info(redo[0].path).samplerate == 22050


def test_transform_failure_names_member_and_keeps_others(tmp_path: Path) -> None:
    good = io.BytesIO()
    sf.write(good, [0.0] * 44100, 44100, format="WAV", subtype="PCM_16")
    archive = zip_with(tmp_path / "a.zip", [("ok.wav", good.getvalue(), None),
                                            ("bad.wav", b"RIFF....WAVEjunk", None)])
    with pytest.raises(Exception, match="bad.wav") as info:
        extract(archive, tmp_path / "out", transform=WavResampler(), workers=1)
    assert info.value.exit_code == EXIT_FAILED  # type: ignore[attr-defined]
    assert (tmp_path / "out/ok.wav").is_file() and not (tmp_path / "out/bad.wav").exists()
    assert no_temp(tmp_path / "out")


def test_tar_extracts(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_wavs(src / "rir", 3)
    archive = tmp_path / "rir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "rir", arcname="rir")
    results = extract(archive, tmp_path / "out", fmt="tar")
    assert outputs(tmp_path / "out" / "rir") == source_tree(src / "rir")
    assert all(r.sha256 == sha256(r.path) for r in results if r.kind == "file")


def test_symlink_inside_the_target_is_made(tmp_path: Path) -> None:
    archive = zip_with(tmp_path / "l.zip", [
        ("d/real.txt", b"data", 0o100644),
        ("d/alias.txt", b"real.txt", 0o120777),
        ("top.txt", b"d/../d/real.txt", 0o120777),
    ])
    results = extract(archive, tmp_path / "out")
    assert (tmp_path / "out/d/alias.txt").read_bytes() == b"data"
    assert os.readlink(tmp_path / "out/top.txt") == "d/../d/real.txt"
    assert {r.kind for r in results} == {"file", "symlink"}


# -- refusals --------------------------------------------------------------------------------


def assert_refused_cleanly(tmp_path: Path, into: Path, before: set[Path]) -> None:
    after = {p for p in tmp_path.rglob("*") if into not in p.parents and p != into}
    assert after == before, "nothing may be written outside the target"
    assert no_temp(into)


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("../evil.txt", "climbs out"),
        ("ok/../../evil.txt", "climbs out"),
        ("..\\evil.txt", "climbs out"),
        ("/tmp/evil.txt", "absolute path"),
        ("C:/evil.txt", "absolute path"),
        ("C:\\evil.txt", "absolute path"),
    ],
)
def test_bad_names_are_refused_before_anything_is_written(tmp_path: Path, name: str,
                                                          pattern: str) -> None:
    archive = zip_with(tmp_path / "bad.zip", [("first.txt", b"fine", None),
                                              (name, b"pwned", None)])
    into = tmp_path / "out"
    before = set(tmp_path.rglob("*"))
    with pytest.raises(UnsafeArchiveError, match=pattern) as info:
        extract(archive, into)
    message = str(info.value)
    assert name in message and "\n" not in message and info.value.exit_code == EXIT_FAILED
    assert not (into / "first.txt").exists()  # the zip's directory is checked up front
    assert_refused_cleanly(tmp_path, into, before)


@pytest.mark.parametrize(
    ("entries", "pattern"),
    [
        ([("link", b"../../etc", 0o120777)], "outside the target"),
        ([("link", b"/etc/passwd", 0o120777)], "outside the target"),
        ([("a/link", b"../..", 0o120777)], "outside the target"),
        # each link inside on its own; together the second would climb out through the first
        ([("x/s", b"..", 0o120777), ("e", b"x/s/..", 0o120777)], "through another link"),
        ([("e", b"x/s/..", 0o120777), ("x/s", b"..", 0o120777)], "passes through"),
        ([("d", b".", 0o120777), ("d/file.txt", b"hi", 0o100644)], "under the symlink"),
        ([("d/file.txt", b"hi", 0o100644), ("d", b".", 0o120777)], "link over the folder"),
    ],
)
def test_escaping_links_are_refused(tmp_path: Path, entries: list[tuple[str, bytes, int]],
                                    pattern: str) -> None:
    archive = zip_with(tmp_path / "links.zip", entries)
    into = tmp_path / "out"
    before = set(tmp_path.rglob("*"))
    with pytest.raises(UnsafeArchiveError, match=pattern):
        extract(archive, into)
    assert_refused_cleanly(tmp_path, into, before)
    assert not any(p.is_symlink() for p in into.rglob("*"))


def tar_with(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info in members:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def _tarinfo(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    ("members", "pattern"),
    [
        ([_tarinfo("../evil")], "climbs out"),
        ([_tarinfo("/abs/evil")], "absolute path"),
        ([_tarinfo("s", tarfile.SYMTYPE, "../../x")], "outside the target"),
        ([_tarinfo("h", tarfile.LNKTYPE, "../outside")], "climbs out"),
        ([_tarinfo("h", tarfile.LNKTYPE, "/etc/passwd")], "absolute path"),
        ([_tarinfo("dev", tarfile.CHRTYPE)], "device or fifo"),
        ([_tarinfo("fifo", tarfile.FIFOTYPE)], "device or fifo"),
    ],
)
def test_tar_refusals(tmp_path: Path, members: list[tarfile.TarInfo], pattern: str) -> None:
    archive = tar_with(tmp_path / "bad.tar", [_tarinfo("fine.txt"), *members],
                       {"fine.txt": b"ok", "../evil": b"x", "/abs/evil": b"x"})
    into = tmp_path / "out"
    before = set(tmp_path.rglob("*"))
    with pytest.raises(UnsafeArchiveError, match=pattern):
        extract(archive, into, fmt="tar")
    assert_refused_cleanly(tmp_path, into, before)


def test_tar_hardlink_inside_is_made(tmp_path: Path) -> None:
    archive = tar_with(tmp_path / "h.tar",
                       [_tarinfo("d/a.txt"), _tarinfo("d/b.txt", tarfile.LNKTYPE, "d/a.txt")],
                       {"d/a.txt": b"shared"})
    extract(archive, tmp_path / "out", fmt="tar")
    assert (tmp_path / "out/d/b.txt").read_bytes() == b"shared"
    assert os.path.samefile(tmp_path / "out/d/a.txt", tmp_path / "out/d/b.txt")


def test_zip_bomb_by_declared_ratio_is_refused(tmp_path: Path) -> None:
    archive = zip_with(tmp_path / "bomb.zip", [("ok.txt", b"fine", None),
                                               ("bomb.bin", b"\0" * 20_000_000, None)])
    into = tmp_path / "out"
    with pytest.raises(ZipBombError, match=r"bomb\.bin .*zip bomb") as info:
        extract(archive, into, max_ratio=100)
    assert info.value.exit_code == EXIT_FAILED
    assert not (into / "bomb.bin").exists()


def test_zip_bomb_by_growing_output_is_stopped(tmp_path: Path) -> None:
    # Each member stays under the per-member floor; together they pass the archive's ratio.
    entries = [(f"m{i:02d}.bin", b"\0" * 900_000, None) for i in range(40)]
    archive = zip_with(tmp_path / "many.zip", entries)
    into = tmp_path / "out"
    with pytest.raises(ZipBombError, match=r"output passed 200× .* at m\d\d\.bin"):
        extract(archive, into, workers=1)
    kept = sorted(p.name for p in into.glob("*.bin"))
    assert kept and len(kept) < 40  # members out before the stop are kept
    assert all((into / n).stat().st_size == 900_000 for n in kept)
    assert no_temp(into)


def test_missing_and_truncated_volumes_are_named(split_archive: tuple[list[Path], Path],
                                                 tmp_path: Path) -> None:
    volumes, _ = split_archive
    gone = volumes[1]
    saved = gone.read_bytes()
    gone.unlink()
    with pytest.raises(ArchiveVolumeError, match=r"^FSD\.z02 is missing"):
        extract(volumes, tmp_path / "out")
    gone.write_bytes(saved[:-5000])
    with pytest.raises(ArchiveVolumeError, match=r"^FSD\.z02 is truncated"):
        extract(volumes, tmp_path / "out")


def test_crc_error_names_member_deletes_temp_keeps_others(tmp_path: Path) -> None:
    work = tmp_path / "src"
    make_wavs(work / "c", 6, seed=9)
    volumes = zip_split(work, "c.zip", ["c"], args=("-0",))
    with SplitZipReader(volumes) as reader:
        order = [m.name for m in reader.members() if not m.is_dir]
    victim = order[-2]  # members before it must be kept, the one after never started
    flip_byte_in(volumes, (work / victim).read_bytes()[30000:30064])
    into = tmp_path / "out"
    with pytest.raises(ChecksumError, match=rf"^{victim} in c\.zip: CRC error") as info:
        extract(volumes, into, workers=1)
    assert info.value.exit_code == EXIT_FAILED
    assert not (into / victim).exists()
    assert no_temp(into)
    for name in order[:-2]:  # members before it are out and checked
        assert (into / name).read_bytes() == (work / name).read_bytes()
    journal = [json.loads(line) for line in journal_path(into, "c.zip").read_text().splitlines()]
    assert victim not in {row["name"] for row in journal}
    assert len(journal) == len(order) - 2 + 1  # + the folder


# -- chaos -----------------------------------------------------------------------------------

CHILD = """
import sys
from pathlib import Path
from easy_oww.archives.extract import extract
volumes = [Path(p) for p in sys.argv[2:]]
def say(result):
    print(result.name, flush=True)
extract(volumes, Path(sys.argv[1]), on_member=say, workers=2)
print("DONE", flush=True)
"""


def test_sigkill_at_random_points_then_rerun(tmp_path: Path) -> None:
    work = tmp_path / "src"
    make_wavs(work / "c", 40, seconds=0.6, seed=11)
    volumes = zip_split(work, "c.zip", ["c"])
    expected = source_tree(work / "c")
    into = tmp_path / "out"
    rng = random.Random(1234)
    kills = 0
    for _ in range(5):
        stop_after = rng.randint(1, 30)
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(into), *map(str, volumes)],
            stdout=subprocess.PIPE, text=True,
        )
        assert child.stdout is not None
        lines = 0
        for line in child.stdout:
            if line.strip() == "DONE":
                break
            lines += 1
            if lines >= stop_after:
                child.send_signal(signal.SIGKILL)
                kills += 1
                break
        child.stdout.close()
        child.wait()
        # after any kill: every file under a final name is whole
        for rel, data in outputs(into / "c").items():
            assert data == expected[rel], f"{rel} is a half file under its final name"
    assert kills >= 3
    results = extract(volumes, into)
    assert outputs(into / "c") == expected
    for r in results:
        if r.kind == "file":
            assert r.sha256 == sha256(r.path), r.name
    assert any(r.skipped for r in results)
    assert no_temp(into)
    assert len(results) == 41


def test_result_type_is_public() -> None:
    assert MemberResult.__dataclass_fields__.keys() >= {"path", "size", "sha256"}


def test_truncated_tar_is_named(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_wavs(src / "rir", 3)
    archive = tmp_path / "rir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "rir", arcname="rir")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ArchiveVolumeError, match=r"^rir\.tar\.gz is truncated"):
        extract(archive, tmp_path / "out", fmt="tar")
    assert no_temp(tmp_path / "out")
