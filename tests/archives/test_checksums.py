"""An FMA-style archive: bzip2 tracks and a ``checksums`` list written by the real sha1sum."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from easy_oww.archives.checksums import (
    ChecksumListError,
    describe_failures,
    read_checksums,
    verify_checksums,
)
from easy_oww.archives.extract import extract
from tests.archives.test_splitzip import make_wavs

TRACKS = ["000/000002.wav", "000/000005.wav", "099/099134.wav", "133/133297.wav"]
SILENT = {"099/099134.wav", "133/133297.wav"}  # as FMA's tracks with no audio (mdeff/fma#44)


def fma_like(root: Path, *, after_listing: dict[str, bytes] | None = None) -> Path:
    """fma_small/ with tracks and a `checksums` list, zipped with bzip2 members; tracks in
    ``after_listing`` are rewritten after the list was made (so their sha1 no longer fits)."""
    top = root / "fma_small"
    for rel in TRACKS:
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
    made = make_wavs(root / "gen", len(TRACKS), seconds=0.3)
    for rel, wav in zip(TRACKS, made, strict=True):
        (top / rel).write_bytes(wav.read_bytes())
    (top / "133/133297.wav").write_bytes(b"")  # a silent track: nothing in it
    listing = subprocess.run(["sha1sum", *TRACKS], cwd=top, check=True, capture_output=True,
                             text=True).stdout
    (top / "checksums").write_text(listing)
    for rel, data in (after_listing or {}).items():
        (top / rel).write_bytes(data)
    subprocess.run(["zip", "-q", "-r", "-Z", "bzip2", "fma_small.zip", "fma_small"], cwd=root,
                   check=True)
    return root / "fma_small.zip"


def by_name(results: list) -> dict[str, str]:
    return {r.name: r.status for r in results}


def test_every_track_of_a_good_archive_checks_out(tmp_path: Path) -> None:
    archive = fma_like(tmp_path)
    extract(archive, tmp_path / "out")
    folder = tmp_path / "out" / "fma_small"
    results = verify_checksums(folder, folder / "checksums", silent=SILENT)
    assert [r.name for r in results] == TRACKS  # the list's order
    assert by_name(results) == {"000/000002.wav": "ok", "000/000005.wav": "ok",
                                "099/099134.wav": "silent", "133/133297.wav": "silent"}
    assert not any(r.failed for r in results)
    assert describe_failures(results, "fma_small/checksums") is None
    empty_sha1 = hashlib.sha1(b"").hexdigest()
    assert next(r for r in results if r.name == "133/133297.wav").actual == empty_sha1


def test_a_track_whose_sha1_differs_from_the_list_is_named(tmp_path: Path) -> None:
    archive = fma_like(tmp_path, after_listing={"000/000005.wav": b"RIFF not the track"})
    extract(archive, tmp_path / "out")  # the zip's own CRC32 is fine: the list is what catches it
    folder = tmp_path / "out" / "fma_small"
    results = verify_checksums(folder, folder / "checksums", silent=SILENT)
    assert by_name(results)["000/000005.wav"] == "mismatch"
    assert [r.name for r in results if r.failed] == ["000/000005.wav"]
    bad = next(r for r in results if r.name == "000/000005.wav")
    assert bad.actual == hashlib.sha1(b"RIFF not the track").hexdigest() != bad.expected
    assert describe_failures(results, "fma_small/checksums") == (
        "1 of 4 files listed in fma_small/checksums fail their sha1: 000/000005.wav (mismatch); "
        "download the archive again")


def test_a_silent_track_is_reported_as_silent_not_as_a_failure(tmp_path: Path) -> None:
    # The silent track's bytes changed after the list was made: without the silent set it is a
    # mismatch; with it, it is reported as silent and nothing fails.
    archive = fma_like(tmp_path, after_listing={"099/099134.wav": b""})
    extract(archive, tmp_path / "out")
    folder = tmp_path / "out" / "fma_small"
    plain = verify_checksums(folder, folder / "checksums")
    assert {r.name for r in plain if r.failed} == {"099/099134.wav"}
    told = verify_checksums(folder, folder / "checksums", silent=SILENT)
    assert by_name(told)["099/099134.wav"] == "silent"
    assert not any(r.failed for r in told)


def test_a_listed_track_missing_on_disk_is_named(tmp_path: Path) -> None:
    archive = fma_like(tmp_path)
    extract(archive, tmp_path / "out")
    folder = tmp_path / "out" / "fma_small"
    (folder / "000/000002.wav").unlink()
    results = verify_checksums(folder, folder / "checksums", silent=SILENT)
    missing = next(r for r in results if r.name == "000/000002.wav")
    assert missing.status == "missing" and missing.failed and missing.actual is None
    assert "000/000002.wav (missing)" in (describe_failures(results, "checksums") or "")


def test_the_list_reads_both_sha1sum_modes_and_skips_blank_lines(tmp_path: Path) -> None:
    text = f"{'a' * 40}  x/one.mp3\n\n{'B' * 40} *two words.mp3\n"
    (tmp_path / "checksums").write_text(text)
    assert read_checksums(tmp_path / "checksums") == {"x/one.mp3": "a" * 40,
                                                      "two words.mp3": "b" * 40}


@pytest.mark.parametrize("line, message", [
    ("not a checksum line", r"checksums:2: not a sha1sum line"),
    (f"{'a' * 40}  ../../etc/passwd", r"checksums:2: \.\./\.\./etc/passwd is outside"),
    (f"{'a' * 40}  /etc/passwd", r"checksums:2: /etc/passwd is outside"),
])
def test_a_bad_line_in_the_list_is_a_one_line_error_naming_it(tmp_path: Path, line: str,
                                                              message: str) -> None:
    (tmp_path / "checksums").write_text(f"{'c' * 40}  fine.mp3\n{line}\n")
    with pytest.raises(ChecksumListError, match=message) as info:
        verify_checksums(tmp_path, tmp_path / "checksums")
    assert "\n" not in str(info.value) and info.value.exit_code != 0


def test_a_missing_list_is_named(tmp_path: Path) -> None:
    with pytest.raises(ChecksumListError, match=r"checksums is missing"):
        verify_checksums(tmp_path, tmp_path / "checksums")
