"""extract(): safety refusals, resumability, checks, and a SIGKILL chaos run."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import zipfile
import zlib
from pathlib import Path

import pytest
import soundfile as sf

from easy_oww.archives.extract import (
    RATIO_FLOOR,
    TEMP_DIR_NAME,
    ArchiveError,
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
from tests.durability import SyncLog


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
        ([("link", b"..\\..\\etc", 0o120777)], "outside the target"),  # Windows separators
        ([("link", b"C:/Windows", 0o120777)], "outside the target"),
        ([("link", b"a\x00b", 0o120777)], "outside the target"),
        # empty and "." parts are skipped, never taken as a folder to climb out of
        ([("a/link", b"..//..", 0o120777)], "outside the target"),
        ([("a/link", b".././..", 0o120777)], "outside the target"),
        ([("link", b"./../..", 0o120777)], "outside the target"),
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


# The child runs this checkout's code (or mutmut's mutated copy of it), not whichever
# easy_oww the interpreter has installed.
CHILD_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    [str(Path(__file__).resolve().parents[2] / "src"), str(Path(__file__).resolve().parents[2])]))


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
            stdout=subprocess.PIPE, text=True, env=CHILD_ENV,
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


# -- edges found by mutation testing ---------------------------------------------------------


def test_a_tar_with_files_folders_and_links_is_made_and_a_rerun_skips_it(tmp_path: Path) -> None:
    archive = tar_with(tmp_path / "t.tar", [
        _tarinfo("d", tarfile.DIRTYPE), _tarinfo("d/a.txt"),
        _tarinfo("d/s", tarfile.SYMTYPE, "a.txt"), _tarinfo("h", tarfile.LNKTYPE, "d/a.txt"),
    ], {"d/a.txt": b"alpha"})
    into = tmp_path / "out"
    results = {r.name: r for r in extract(archive, into, fmt="tar")}
    assert os.readlink(into / "d/s") == "a.txt" and (into / "d/s").read_bytes() == b"alpha"
    assert os.path.samefile(into / "h", into / "d/a.txt")
    assert (results["h"].kind, results["h"].link_target) == ("hardlink", "d/a.txt")
    assert (results["d/s"].kind, results["d/s"].link_target) == ("symlink", "a.txt")
    assert results["d/a.txt"].kind == "file" and results["d/a.txt"].crc32 is None
    again = extract(archive, into, fmt="tar")
    assert [r.name for r in again if not r.skipped] == []


def test_a_tar_member_that_changed_size_is_extracted_again(tmp_path: Path) -> None:
    # tar records no CRC: the size tells a changed member (or its output) apart.
    into = tmp_path / "out"
    tar_with(tmp_path / "t.tar", [_tarinfo("a.txt")], {"a.txt": b"x" * 10})
    extract(tmp_path / "t.tar", into, fmt="tar")
    tar_with(tmp_path / "t.tar", [_tarinfo("a.txt")], {"a.txt": b"y" * 20})
    [result] = extract(tmp_path / "t.tar", into, fmt="tar")
    assert not result.skipped and (into / "a.txt").read_bytes() == b"y" * 20


def test_tar_members_are_read_in_bounded_pieces_and_counted_whole() -> None:
    from easy_oww.archives.extract import _Entry, _tar_chunks

    data = os.urandom((3 << 20) + 5)
    entry = _Entry("big.bin", "big.bin", "file", len(data), None, None)
    pieces = list(_tar_chunks(io.BytesIO(data), entry, "t.tar"))
    assert b"".join(pieces) == data and max(map(len, pieces)) <= 1 << 20
    short = _Entry("big.bin", "big.bin", "file", len(data) + 1, None, None)
    with pytest.raises(ArchiveVolumeError, match=r"^t\.tar is truncated: big\.bin has "):
        list(_tar_chunks(io.BytesIO(data), short, "t.tar"))


def test_a_link_that_names_itself_is_made_as_written(tmp_path: Path) -> None:
    # Its walk passes only through itself (a loop the system refuses to follow): harmless.
    archive = zip_with(tmp_path / "l.zip", [("loop", b"loop", 0o120777)])
    extract(archive, tmp_path / "out")
    assert os.readlink(tmp_path / "out/loop") == "loop"


def test_results_for_folders_and_links(tmp_path: Path) -> None:
    archive = zip_with(tmp_path / "l.zip", [("d/", b"", 0o040755),
                                            ("d/real.txt", b"data", 0o100644),
                                            ("d/alias", b"real.txt", 0o120777)])
    into = tmp_path / "out"
    results = {r.name: r for r in extract(archive, into)}
    assert results["d/"] == MemberResult(name="d/", path=into / "d", kind="dir", size=0,
                                         sha256=None, crc32=0, source_size=0)
    assert results["d/alias"] == MemberResult(
        name="d/alias", path=into / "d/alias", kind="symlink", size=0, sha256=None,
        crc32=zlib.crc32(b"real.txt"), source_size=8, link_target="real.txt")
    again = {r.name: r for r in extract(archive, into)}
    assert again["d/alias"].skipped and again["d/"].skipped


def test_a_link_under_a_folder_that_leads_outside_is_refused(tmp_path: Path) -> None:
    # The target already holds d, a symlink to a folder elsewhere: a link member under d
    # would be made outside.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    into = tmp_path / "out"
    into.mkdir()
    (into / "d").symlink_to(elsewhere)
    archive = zip_with(tmp_path / "l.zip", [("d/link", b"x", 0o120777)])
    with pytest.raises(UnsafeArchiveError, match=r"^d/link in l\.zip would be written to "):
        extract(archive, into)
    assert list(elsewhere.iterdir()) == []


def test_a_hard_link_to_a_symlink_already_in_the_target_is_refused(tmp_path: Path) -> None:
    # A hard link made through it would reach the file outside that the symlink names.
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"outside")
    into = tmp_path / "out"
    into.mkdir()
    (into / "old").symlink_to(secret)
    archive = tar_with(tmp_path / "h.tar", [_tarinfo("h", tarfile.LNKTYPE, "old")], {})
    with pytest.raises(UnsafeArchiveError, match=r"^h in h\.tar hard-links to old, which is "):
        extract(archive, into, fmt="tar")
    assert not (into / "h").exists() and secret.stat().st_nlink == 1


def test_a_rerun_with_other_strip_components_writes_the_new_paths(tmp_path: Path) -> None:
    archive = zip_with(tmp_path / "s.zip", [("top/a.txt", b"alpha", None)])
    into = tmp_path / "out"
    extract(archive, into)
    [result] = extract(archive, into, strip_components=1)
    assert not result.skipped and (into / "a.txt").read_bytes() == b"alpha"


def test_a_file_that_became_a_link_with_the_same_bytes_is_made_again(tmp_path: Path) -> None:
    # The same CRC and size: only the kind tells them apart.
    archive = tmp_path / "k.zip"
    zip_with(archive, [("t.txt", b"text", None), ("l", b"t.txt", 0o100644)])
    into = tmp_path / "out"
    extract(archive, into)
    zip_with(archive, [("t.txt", b"text", None), ("l", b"t.txt", 0o120777)])
    results = {r.name: r for r in extract(archive, into)}
    assert not results["l"].skipped and os.readlink(into / "l") == "t.txt"


class Upper:
    settings = {"transform": "upper"}

    def __call__(self, src, dst, name):
        dst.write(src.read().upper())


def test_a_rerun_with_a_transform_converts_what_was_copied(tmp_path: Path) -> None:
    archive = zip_with(tmp_path / "t.zip", [("a.txt", b"alpha", None)])
    into = tmp_path / "out"
    extract(archive, into)
    [result] = extract(archive, into, transform=Upper())
    assert not result.skipped and (into / "a.txt").read_bytes() == b"ALPHA"
    assert result.settings == {"transform": "upper"}


def test_the_zip_bomb_limits_are_inclusive(tmp_path: Path) -> None:
    # 1 MiB of zeros inflates far past 200× its compressed size, but members (and archives)
    # that stay within RATIO_FLOOR pass whatever their ratio: exactly 1 MiB included.
    archive = zip_with(tmp_path / "z.zip", [("zeros.bin", b"\0" * RATIO_FLOOR, None)])
    assert archive.stat().st_size * 200 < RATIO_FLOOR
    [result] = extract(archive, tmp_path / "out")
    assert result.size == RATIO_FLOOR


class WaitsForTheNext:
    """a.txt's conversion waits until b.txt's has started: only possible if the reading
    thread goes on to b.txt while a.txt is converted and written."""

    settings = {"transform": "copy"}

    def __init__(self) -> None:
        self.started = {"a.txt": threading.Event(), "b.txt": threading.Event()}

    def __call__(self, src, dst, name):
        self.started[name].set()
        if name == "a.txt" and not self.started["b.txt"].wait(10):
            raise AssertionError("b.txt was not read while a.txt was being written")
        dst.write(src.read())


def test_reading_goes_on_while_a_member_is_written(tmp_path: Path) -> None:
    archive = zip_with(tmp_path / "o.zip", [("a.txt", b"alpha", None), ("b.txt", b"beta", None)])
    extract(archive, tmp_path / "out", transform=WaitsForTheNext(), workers=2)
    assert outputs(tmp_path / "out") == {"a.txt": b"alpha", "b.txt": b"beta"}


def test_outputs_get_the_mode_a_plain_open_gives(tmp_path: Path) -> None:
    from easy_oww.archives.extract import _file_mode

    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    expected = stat.S_IMODE(plain.stat().st_mode)
    assert _file_mode() == expected  # the umask, read and put back
    archive = zip_with(tmp_path / "m.zip", [("x.sh", b"#!/bin/sh\n", 0o100700)])
    extract(archive, tmp_path / "out")  # the member's own mode is not applied
    assert stat.S_IMODE((tmp_path / "out/x.sh").stat().st_mode) == expected
    assert _file_mode() == expected


def test_each_output_is_synced_before_its_rename_and_its_folder_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = zip_with(tmp_path / "d.zip", [("top.txt", b"top", None),
                                            ("sub/deep/a.txt", b"a" * 100, None)])
    into = tmp_path / "out"
    log = SyncLog(monkeypatch)
    extract(archive, into)  # durable unless told otherwise
    for rel in ("top.txt", "sub/deep/a.txt"):
        log.assert_durable_rename(into / rel, writes_seen=False)  # buffered writes


def test_without_durable_no_output_or_folder_is_synced(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # For benchmarks only: the outputs and their folders are left to the system's own pace.
    archive = zip_with(tmp_path / "d.zip", [("sub/a.txt", b"a", None)])
    into = tmp_path / "out"
    log = SyncLog(monkeypatch)
    extract(archive, into, durable=False)
    synced = {c.path for c in log.calls if c.op == "sync"}
    assert synced <= {str(journal_path(into, "d.zip"))}


def test_select_leaves_out_the_members_it_rejects(tmp_path: Path) -> None:
    archive = zip_with(tmp_path / "s.zip", [("a.txt", b"a", None), ("b.bin", b"b", None)])
    results = extract(archive, tmp_path / "out", select=lambda name: name.endswith(".txt"))
    assert [r.name for r in results] == ["a.txt"]
    assert outputs(tmp_path / "out") == {"a.txt": b"a"}


def test_a_cut_journal_line_in_the_middle_does_not_hide_the_lines_after_it(
        tmp_path: Path) -> None:
    # A crash cuts the last line; the next run appends after it, so the cut one ends up
    # in the middle: the lines after it still count.
    archive = zip_with(tmp_path / "j.zip", [("a.txt", b"a", None), ("b.txt", b"b", None)])
    into = tmp_path / "out"
    extract(archive, into)
    journal = journal_path(into, "j.zip")
    journal.write_text('{"name": "a.txt", "pa\n' + journal.read_text())
    assert all(r.skipped for r in extract(archive, into))


@pytest.mark.parametrize("where", ["the folder", "a parent"])
def test_a_file_where_the_archive_has_a_folder_is_named_in_one_line(tmp_path, where):
    """A folder replaced by a file since the last run: one error naming it, the file kept
    (it was a bare FileExistsError, a traceback for the user)."""
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("top/", b"")
        z.writestr("top/inner/", b"")
        z.writestr("top/inner/x.txt", b"x")
    into = tmp_path / "out"
    extract(archive, into)
    blocked = into / "top" if where == "a parent" else into / "top" / "inner"
    shutil.rmtree(blocked)
    blocked.write_bytes(b"mine")
    (into / journal_path(into, "a.zip").name).unlink()  # a fresh run: nothing to skip
    with pytest.raises(ArchiveError) as caught:
        extract(archive, into)
    assert str(caught.value).startswith(f"{into / 'top'}") and "a.zip has one there" in str(
        caught.value)
    assert blocked.read_bytes() == b"mine"


def test_an_empty_folder_that_became_a_file_is_named_on_a_rerun_that_keeps_its_journal(
        tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("top/empty/", b"")
        z.writestr("top/x.txt", b"x")
    into = tmp_path / "out"
    extract(archive, into)
    (into / "top" / "empty").rmdir()
    (into / "top" / "empty").write_bytes(b"mine")
    with pytest.raises(ArchiveError) as caught:  # the journal says done; the disk says not
        extract(archive, into)
    assert str(caught.value).startswith(f"{into / 'top' / 'empty'} is not a folder")
    assert (into / "top" / "empty").read_bytes() == b"mine"


def test_a_zip_symlink_whose_target_is_not_utf8_is_made_byte_for_byte(tmp_path):
    """Old archivers store names in the local code page: the link keeps its bytes (Latin-1
    here), as `unzip` makes it, instead of failing to decode them."""
    target = b"caf\xe9.txt"
    with zipfile.ZipFile(tmp_path / "l.zip", "w") as z:
        z.writestr(zipfile.ZipInfo("caf\u00e9.txt"), b"coffee")
        info = zipfile.ZipInfo("link")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, target)
    into = tmp_path / "out"
    results = {r.name: r for r in extract(tmp_path / "l.zip", into)}
    assert results["link"].kind == "symlink"
    assert os.readlink(os.fsencode(into / "link")) == target
