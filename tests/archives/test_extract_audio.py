"""extract()'s options for audio datasets, in-process: the archive's own sha1 list, members
excused by `tolerate`, outputs other archives own, and members too large to buffer (read and
converted as a stream). The CLI's end-to-end runs are in tests/datasets/test_convert_unpack.py."""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from easy_oww.archives.checksums import ChecksumListError
from easy_oww.archives.extract import (
    BUFFER_LIMIT,
    IN_FLIGHT_BYTES,
    ArchiveError,
    MemberChecksumError,
    Owner,
    UnsafeArchiveError,
    extract,
    journal_path,
)
from easy_oww.audio import AudioConverter, AudioDecodeError, FormatError


def wav(rate: int = 44100, seconds: float = 0.25, freq: float = 440.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    out = io.BytesIO()
    sf.write(out, 0.3 * np.sin(2 * np.pi * freq * t), rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def a_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def a_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


TRACKS = {"fma_small/000/000002.mp3": b"track two" * 50,
          "fma_small/000/000005.mp3": b"track five" * 50,
          "fma_small/011/011683.mp3": b"track 11683" * 50}


def listed(tracks: dict[str, bytes], wrong: str | None = None) -> bytes:
    """FMA's `fma_small/checksums`: `<sha1>  <path relative to fma_small/>` per track."""
    lines = [f"{sha1(b'other') if name == wrong else sha1(data)}  "
             f"{name.removeprefix('fma_small/')}" for name, data in tracks.items()]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("maker", [a_zip, a_tar], ids=["zip", "tar"])
def test_every_listed_member_is_checked_against_the_archives_sha1_list(tmp_path, maker):
    members = {"fma_small/checksums": listed(TRACKS), **TRACKS,
               "fma_small/README.txt": b"not listed, copied as it is\n"}
    archive = maker(tmp_path / f"fma.{maker.__name__[2:]}", members)
    results = extract(archive, tmp_path / "out", fmt=maker.__name__[2:],
                      checksums="fma_small/checksums")
    written = {r.name: r.path.read_bytes() for r in results if r.kind == "file"}
    assert written == members


@pytest.mark.parametrize("maker", [a_zip, a_tar], ids=["zip", "tar"])
def test_a_member_that_differs_from_the_list_is_named_and_not_written(tmp_path, maker):
    bad = "fma_small/000/000005.mp3"
    archive = maker(tmp_path / "fma.a", {"fma_small/checksums": listed(TRACKS, wrong=bad),
                                         **TRACKS})
    with pytest.raises(MemberChecksumError) as caught:
        extract(archive, tmp_path / "out", fmt=maker.__name__[2:],
                checksums="fma_small/checksums", workers=1)
    assert str(caught.value) == (
        f"{bad} in fma.a does not match its sha1 in fma_small/checksums (sha1 "
        f"{sha1(TRACKS[bad])}, listed {sha1(b'other')}): the archive is damaged; download it "
        "again")
    assert not (tmp_path / "out" / bad).exists()


@pytest.mark.parametrize(("absent", "named"), [
    (4, "fma_small/000/000002.mp3, fma_small/000/000005.mp3, fma_small/000/000007.mp3 and 1 more"),
    (5, "fma_small/000/000002.mp3, fma_small/000/000005.mp3, fma_small/000/000007.mp3 and 2 more"),
    (3, "fma_small/000/000002.mp3, fma_small/000/000005.mp3, fma_small/000/000007.mp3;"),
])
def test_listed_members_the_archive_lacks_are_counted_and_the_first_three_named(
        tmp_path, absent, named):
    tracks = {f"fma_small/000/{n:06d}.mp3": bytes([n]) * 10 for n in (2, 5, 7, 9, 11)}
    names = sorted(tracks)
    present = {name: tracks[name] for name in names[absent:]}
    archive = a_zip(tmp_path / "fma.zip", {"fma_small/checksums": listed(
        {name: tracks[name] for name in names}), **present})
    with pytest.raises(MemberChecksumError) as caught:
        extract(archive, tmp_path / "out", checksums="fma_small/checksums")
    assert str(caught.value).startswith(
        f"{absent} member(s) listed in fma_small/checksums are not in fma.zip: {named}")


def test_a_bad_line_in_the_archives_list_names_the_list_and_the_archive(tmp_path):
    archive = a_zip(tmp_path / "fma.zip", {"fma_small/checksums": b"not a sha1 line\n",
                                           **TRACKS})
    with pytest.raises(ChecksumListError) as caught:
        extract(archive, tmp_path / "out", checksums="fma_small/checksums")
    assert "fma_small/checksums in fma.zip" in str(caught.value)


def test_a_listed_member_the_archive_lacks_is_an_error_after_the_others(tmp_path):
    present = dict(list(TRACKS.items())[:2])
    archive = a_zip(tmp_path / "fma.zip", {"fma_small/checksums": listed(TRACKS), **present})
    with pytest.raises(MemberChecksumError, match="fma_small/011/011683.mp3") as caught:
        extract(archive, tmp_path / "out", checksums="fma_small/checksums")
    assert "fma.zip" in str(caught.value)
    for name, data in present.items():  # the members there were checked and kept
        assert (tmp_path / "out" / name).read_bytes() == data


def test_the_list_is_found_through_a_dot_slash_and_its_paths_are_relative_to_it(tmp_path):
    members = {"./fma_small/checksums": listed(TRACKS),
               **{f"./{name}": data for name, data in TRACKS.items()}}
    archive = a_tar(tmp_path / "dotted.tar", members)
    results = extract(archive, tmp_path / "out", fmt="tar", checksums="fma_small/checksums")
    assert sum(r.kind == "file" for r in results) == 4


@pytest.mark.parametrize(("members", "problem"), [
    ({"fma_small/000/000002.mp3": b"x"}, "fma.zip holds no checksums list fma_small/checksums"),
    ({"fma_small/checksums": b"\xff\xfe not text"},
     "fma_small/checksums in fma.zip is not a text checksums list"),
])
def test_a_list_missing_or_not_text_is_named(tmp_path, members, problem):
    archive = a_zip(tmp_path / "fma.zip", members)
    with pytest.raises(ChecksumListError) as caught:
        extract(archive, tmp_path / "out", checksums="fma_small/checksums")
    assert str(caught.value).startswith(problem)


def test_a_tar_list_that_is_a_folder_is_not_read_as_the_list(tmp_path):
    archive = tmp_path / "odd.tar"
    with tarfile.open(archive, "w") as tar:  # a regular member first: it must not be taken
        info = tarfile.TarInfo("fma_small/000/000002.mp3")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
        tar.addfile(_dir_info("fma_small/checksums"))
    with pytest.raises(ChecksumListError, match="holds no checksums list"):
        extract(archive, tmp_path / "out", fmt="tar", checksums="fma_small/checksums")


def _dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


# -- members the transform cannot convert ------------------------------------------------------

@pytest.mark.parametrize("maker", [a_zip, a_tar], ids=["zip", "tar"])
def test_an_excused_member_is_recorded_unreadable_not_written_and_not_retried(tmp_path, maker):
    archive = maker(tmp_path / "t.tar", {"t/000123.mp3": b"not audio" * 64,
                                         "t/ok.wav": wav()})
    fmt = maker.__name__[2:]
    into = tmp_path / "out"
    asked: list[str] = []

    def tolerate(name: str, error: Exception) -> str | None:
        asked.append(name)
        return f"excused: {type(error).__name__}" if isinstance(error, AudioDecodeError) else None

    results = extract(archive, into, fmt=fmt, transform=AudioConverter(16000), flatten=True,
                      tolerate=tolerate)
    (skipped,) = [r for r in results if r.kind == "unreadable"]
    assert (skipped.name, skipped.path, skipped.size, skipped.sha256, skipped.reason) == (
        "t/000123.mp3", into / "000123.wav", 0, None, "excused: AudioDecodeError")
    assert skipped.settings == AudioConverter(16000).decoded_settings
    assert skipped.source_size == len(b"not audio" * 64)
    assert not (into / "000123.wav").exists() and (into / "ok.wav").is_file()
    assert asked == ["t/000123.mp3"]
    rows = [line for line in journal_path(into, "t.tar").read_text().splitlines()
            if '"unreadable"' in line]
    assert len(rows) == 1 and '"path":"000123.wav"' in rows[0]
    # Again with the same settings: taken from the journal, not tried again.
    again = extract(archive, into, fmt=fmt, transform=AudioConverter(16000), flatten=True,
                    tolerate=tolerate)
    assert asked == ["t/000123.mp3"]
    assert [r.kind for r in again] == [r.kind for r in results] and all(r.skipped for r in again)
    # Other settings: tried again (and excused again).
    extract(archive, into, fmt=fmt, transform=AudioConverter(8000), flatten=True,
            tolerate=tolerate)
    assert asked == ["t/000123.mp3", "t/000123.mp3"]


def test_a_failure_tolerate_does_not_excuse_stops_the_run(tmp_path):
    archive = a_tar(tmp_path / "t.tar", {"t/000123.mp3": b"not audio" * 64})
    with pytest.raises(AudioDecodeError, match="000123.mp3"):
        extract(archive, tmp_path / "out", fmt="tar", transform=AudioConverter(16000),
                tolerate=lambda name, error: None)


def test_a_damaged_wav_is_not_excused_as_silent(tmp_path):
    archive = a_zip(tmp_path / "w.zip", {"w/1.wav": b"RIFF" + bytes(60)})
    with pytest.raises(FormatError):
        extract(archive, tmp_path / "out", transform=AudioConverter(16000),
                tolerate=lambda name, e: "x" if isinstance(e, AudioDecodeError) else None)


# -- outputs other archives own ----------------------------------------------------------------

def test_an_owned_output_is_replaced_only_by_the_same_bytes(tmp_path):
    into = tmp_path / "out"
    first = a_zip(tmp_path / "one.zip", {"x.txt": b"one\n", "same.txt": b"shared\n"})
    results = {r.name: r for r in extract(first, into)}
    owned = {name: Owner("a/one.zip", r.sha256 or "") for name, r in results.items()}
    second = a_zip(tmp_path / "two.zip", {"same.txt": b"shared\n", "x.txt": b"two\n",
                                          "y.txt": b"y\n"})
    with pytest.raises(ArchiveError) as caught:
        extract(second, into, owned=owned, workers=1)
    assert str(caught.value) == ("x.txt in two.zip would replace x.txt, unpacked from "
                                 "a/one.zip with other bytes; unpack the two archives into two "
                                 "folders")
    assert (into / "x.txt").read_bytes() == b"one\n"
    # The same bytes under an owned name are no conflict.
    third = a_zip(tmp_path / "three.zip", {"same.txt": b"shared\n"})
    (same,) = extract(third, into, owned=owned)
    assert same.sha256 == owned["same.txt"].sha256
    # Without the claim the same archive goes in (the check is the claim's, not the name's).
    extract(second, into)
    assert (into / "x.txt").read_bytes() == b"two\n"


# -- members too large to buffer ---------------------------------------------------------------

@pytest.mark.parametrize("maker", [a_zip, a_tar], ids=["zip", "tar"])
def test_a_member_larger_than_the_buffer_is_streamed_whole(tmp_path, maker):
    block = np.random.default_rng(5).integers(0, 256, 4099, dtype=np.uint8).tobytes()
    data = (block * (BUFFER_LIMIT // len(block) + 2))[:BUFFER_LIMIT + 4099]  # quick to deflate
    archive = maker(tmp_path / "big.a", {"big.bin": data, "small.bin": b"small"})
    into = tmp_path / "out"
    results = {r.name: r for r in extract(archive, into, fmt=maker.__name__[2:])}
    out = results["big.bin"]
    assert (out.size, out.source_size) == (len(data), len(data))
    assert out.sha256 == hashlib.sha256(data).hexdigest()
    assert (into / "big.bin").read_bytes() == data
    assert (into / "small.bin").read_bytes() == b"small"


def test_a_wav_larger_than_the_buffer_is_converted_as_a_stream(tmp_path):
    rate = 48000
    frames = BUFFER_LIMIT // 4 + rate  # stereo 16-bit: a little over the buffer
    t = np.arange(frames) / rate
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1)
    raw = io.BytesIO()
    sf.write(raw, stereo, rate, format="WAV", subtype="PCM_16")
    assert raw.getbuffer().nbytes > BUFFER_LIMIT
    archive = a_tar(tmp_path / "long.tar", {"long.wav": raw.getvalue()})
    (out,) = extract(archive, tmp_path / "out", fmt="tar", transform=AudioConverter(16000))
    info = sf.info(out.path)
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert abs(info.frames - frames // 3) <= 1
    assert out.sha256 == hashlib.sha256(out.path.read_bytes()).hexdigest()
    assert out.settings == AudioConverter(16000).settings


@pytest.mark.timeout(30)  # a throttle that never lets go hangs: a failure, not a wait
def test_members_adding_up_past_the_in_flight_cap_all_come_out(tmp_path):
    """Small members are buffered while a worker writes them, at most IN_FLIGHT_BYTES at
    once; the count must go down as they are written, or the reader waits for ever."""
    count = IN_FLIGHT_BYTES // (8 << 20) + 4
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(count):
            z.writestr(f"m{i:03d}.bin", bytes([i]) * (8 << 20))
    results = extract(archive, tmp_path / "out", durable=False, max_ratio=5000)
    assert len(results) == count and sum(r.size for r in results) > IN_FLIGHT_BYTES
    assert (tmp_path / "out" / f"m{count - 1:03d}.bin").read_bytes()[:3] == bytes([count - 1]) * 3


def test_a_run_longer_than_a_second_syncs_its_journal_on_the_way_and_finishes(tmp_path):
    """The journal is fsynced at most once a second while members come out; a run must get
    past those syncs (they were reached by no test shorter than a second)."""
    archive = a_zip(tmp_path / "slow.zip", {f"m{i}.txt": b"%d\n" % i for i in range(4)})
    seen: list[str] = []

    def on_member(result) -> None:
        seen.append(result.name)
        if len(seen) == 1:
            time.sleep(1.1)  # time passing, not synchronisation: the sync is once a second

    results = extract(archive, tmp_path / "out", on_member=on_member, workers=1)
    assert [r.name for r in results] == sorted(seen) == [f"m{i}.txt" for i in range(4)]
    lines = journal_path(tmp_path / "out", "slow.zip").read_text().splitlines()
    assert len(lines) == 4


# -- flatten and renamed outputs ----------------------------------------------------------------

def test_flatten_puts_every_file_of_every_folder_in_the_target_itself(tmp_path):
    archive = tmp_path / "f.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in [("top/", None), ("top/a/", None), ("top/a/x.txt", b"x"),
                           ("top/b/", None), ("top/b/deep/y.txt", b"y")]:
            info = tarfile.TarInfo(name.rstrip("/"))
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    into = tmp_path / "out"
    results = extract(archive, into, fmt="tar", flatten=True)
    assert sorted(p.name for p in into.iterdir() if not p.name.startswith(".")) == [
        "x.txt", "y.txt"]  # no folders, nothing left behind the first one
    assert {r.name: r.path for r in results} == {"top/a/x.txt": into / "x.txt",
                                                 "top/b/deep/y.txt": into / "y.txt"}


def test_flatten_refuses_a_link_and_two_members_with_one_base_name(tmp_path):
    linked = tmp_path / "l.tar"
    with tarfile.open(linked, "w") as tar:
        info = tarfile.TarInfo("d/link")
        info.type, info.linkname = tarfile.SYMTYPE, "x.txt"
        tar.addfile(info)
    with pytest.raises(ArchiveError) as caught:
        extract(linked, tmp_path / "out", fmt="tar", flatten=True)
    assert str(caught.value) == ("d/link in l.tar is a link: a flattened unpack keeps files "
                                 "only; unpack it without flatten")
    twice = a_zip(tmp_path / "t.zip", {"a/x.txt": b"1", "b/x.txt": b"2"})
    with pytest.raises(ArchiveError, match="a/x.txt and b/x.txt in t.zip would both be written "
                                           "to x.txt"):
        extract(twice, tmp_path / "out2", flatten=True)


def test_a_conversion_landing_on_another_members_name_is_refused(tmp_path):
    clash = a_zip(tmp_path / "c.zip", {"x.wav": wav(), "x.flac": b"fLaC"})
    with pytest.raises(ArchiveError, match="x.wav and x.flac in c.zip would both be written "
                                           "to x.wav"):
        extract(clash, tmp_path / "out", transform=AudioConverter(16000))


def test_members_stripped_to_one_path_without_a_rename_are_written_in_turn_as_tar_does(
        tmp_path):
    archive = a_tar(tmp_path / "s.tar", {"a/x.wav": wav(freq=300.0), "b/x.wav": wav()})
    results = extract(archive, tmp_path / "out", fmt="tar", strip_components=1,
                      transform=AudioConverter(16000), workers=1)
    assert [r.path.name for r in results] == ["x.wav", "x.wav"]


# -- names --------------------------------------------------------------------------------------

def test_refusals_name_the_member_and_the_archive(tmp_path):
    cases = {
        "climb.tar": ([("ok/../../x", tarfile.REGTYPE, "")], "ok/../../x in climb.tar climbs"),
        "sym.tar": ([("s", tarfile.SYMTYPE, "../../etc")], "s in sym.tar links to '../../etc'"),
        "hard.tar": ([("h", tarfile.LNKTYPE, "../x")], "../x in hard.tar climbs out with '..'"),
        "under.tar": ([("s", tarfile.SYMTYPE, "d"), ("d/", tarfile.DIRTYPE, ""),
                       ("s/x", tarfile.REGTYPE, "")], "s/x in under.tar lies under the symlink"),
        "deeper.tar": ([("a/", tarfile.DIRTYPE, ""), ("a/s", tarfile.SYMTYPE, "d"),
                        ("a/s/x", tarfile.REGTYPE, "")],
                       "a/s/x in deeper.tar lies under the symlink"),
        "emptylink.tar": ([("h", tarfile.LNKTYPE, "")], "h in emptylink.tar hard-links to ''"),
        "through.tar": ([("d/", tarfile.DIRTYPE, ""), ("s", tarfile.SYMTYPE, "d"),
                         ("h", tarfile.LNKTYPE, "s/x")], "h in through.tar links through"),
    }
    for name, (members, said) in cases.items():
        with tarfile.open(tmp_path / name, "w") as tar:
            for member, kind, target in members:
                info = tarfile.TarInfo(member)
                info.type, info.linkname = kind, target
                tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
        with pytest.raises(UnsafeArchiveError) as caught:
            extract(tmp_path / name, tmp_path / f"o-{name}", fmt="tar")
        assert str(caught.value).startswith(said), (name, str(caught.value))


@pytest.mark.parametrize("spell", [lambda n: n.replace("/", "\\"),
                                   lambda n: n.replace("/000/", "//000/")],
                         ids=["backslashes", "double-slash"])
def test_a_listed_member_spelled_otherwise_is_still_checked_against_the_list(tmp_path, spell):
    members = {"fma_small/checksums": listed(TRACKS),
               **{spell(name): data for name, data in TRACKS.items()}}
    archive = a_zip(tmp_path / "win.zip", members)
    results = extract(archive, tmp_path / "out", checksums="fma_small/checksums")
    assert sum(r.kind == "file" for r in results) == 4
    bad = "fma_small/000/000005.mp3"
    damaged = a_zip(tmp_path / "bad.zip", {"fma_small/checksums": listed(TRACKS, wrong=bad),
                                           **{spell(n): d for n, d in TRACKS.items()}})
    with pytest.raises(MemberChecksumError, match="does not match its sha1"):
        extract(damaged, tmp_path / "out2", checksums="fma_small/checksums")


@pytest.mark.parametrize("excused", [True, False], ids=["excused", "not-excused"])
def test_a_member_too_large_to_buffer_that_does_not_decode(tmp_path, excused):
    block = np.random.default_rng(9).integers(0, 256, 4099, dtype=np.uint8).tobytes()
    junk = (block * (BUFFER_LIMIT // len(block) + 2))[:BUFFER_LIMIT + 4099]  # not audio
    archive = a_zip(tmp_path / "j.zip", {"big/000777.mp3": junk, "ok.txt": b"ok"})
    into = tmp_path / "out"
    excuse = (lambda name, error: "no audio") if excused else (lambda name, error: None)
    if excused:
        results = {r.name: r for r in extract(archive, into, transform=AudioConverter(16000),
                                               tolerate=excuse, workers=1)}
        skipped = results["big/000777.mp3"]
        assert (skipped.kind, skipped.reason, skipped.path, skipped.source_size) == (
            "unreadable", "no audio", into / "big" / "000777.wav", len(junk))
    else:
        with pytest.raises(AudioDecodeError, match="000777.mp3"):
            extract(archive, into, transform=AudioConverter(16000), tolerate=excuse, workers=1)
    assert not (into / "big" / "000777.wav").exists()
    assert not [p for p in into.rglob("*") if p.is_file() and ".easy-oww-unpack-tmp" in str(p)]


def test_a_folder_in_the_target_that_is_a_link_out_is_not_written_through(tmp_path):
    """Belt and braces behind the name checks: a link someone put in the target since."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    into = tmp_path / "out"
    into.mkdir()
    (into / "d").symlink_to(outside)
    archive = a_zip(tmp_path / "a.zip", {"d/x.txt": b"x"})
    with pytest.raises(UnsafeArchiveError) as caught:
        extract(archive, into)
    assert str(caught.value) == (f"d/x.txt in a.zip would be written to {outside}, outside "
                                 "the target: refused")
    assert list(outside.iterdir()) == []


def test_a_plain_function_transform_is_recorded_by_its_name_and_redone_when_it_changes(
        tmp_path):
    def upper(src, dst, name):
        dst.write(src.read().upper())

    def lower(src, dst, name):
        dst.write(src.read().lower())

    archive = a_zip(tmp_path / "t.zip", {"a.txt": b"Hello"})
    into = tmp_path / "deep" / "er" / "out"  # made with its parents
    (first,) = extract(archive, into, transform=upper)
    assert (first.settings, (into / "a.txt").read_bytes()) == ({"transform": "upper"}, b"HELLO")
    (again,) = extract(archive, into, transform=upper)
    assert again.skipped and again.settings == {"transform": "upper"}
    (other,) = extract(archive, into, transform=lower)
    assert not other.skipped and (into / "a.txt").read_bytes() == b"hello"
    assert other.settings == {"transform": "lower"}
    (plain,) = extract(archive, into)  # no transform: the bytes as they are, no settings
    assert not plain.skipped and plain.settings is None
    assert (into / "a.txt").read_bytes() == b"Hello"



def test_a_member_with_no_name_left_after_strip_does_not_stop_the_rest(tmp_path):
    archive = a_tar(tmp_path / "s.tar", {"README": b"top level", "top/x.txt": b"x"})
    results = extract(archive, tmp_path / "out", fmt="tar", strip_components=1)
    assert [r.name for r in results] == ["top/x.txt"]
    assert (tmp_path / "out" / "x.txt").read_bytes() == b"x"


def test_a_callable_transform_without_settings_is_recorded_by_its_repr(tmp_path):
    class Upper:
        def __call__(self, src, dst, name):
            dst.write(src.read().upper())

        def __repr__(self) -> str:
            return "Upper()"

    archive = a_zip(tmp_path / "t.zip", {"a.txt": b"Hello"})
    (out,) = extract(archive, tmp_path / "out", transform=Upper())
    assert out.settings == {"transform": "Upper()"}
    (again,) = extract(archive, tmp_path / "out", transform=Upper())
    assert again.skipped
