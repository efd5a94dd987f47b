"""datasets/unpacking.py in-process: what is recorded, what is removed, when an earlier unpack
counts as done, the lock between processes, and the rate a user gets. (The CLI's end-to-end
unpacks are in test_unpack_download.py and test_convert_unpack.py.)"""

from __future__ import annotations

import hashlib
import io
import random
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from easy_oww.archives.extract import (
    ArchiveError,
    MemberChecksumError,
    ZipBombError,
    temp_dir,
)
from easy_oww.archives.splitzip import ArchiveVolumeError
from easy_oww.audio import AudioDecodeError, FormatError
from easy_oww.datasets.cache import CacheManager
from easy_oww.datasets.catalog import Dataset, parse_file
from easy_oww.datasets.unpacking import (
    UnpackOptions,
    conversion_rate,
    extraction_lock,
    members_intact,
    owned_by_others,
    unpack_dataset,
)
from easy_oww.demo.zipwrite import write_split_zip
from easy_oww.errors import LockTimeoutError
from tests.datasets.helpers import tar_bytes, write_catalog

TARS = {"arch/one.tar": {"top/a.txt": b"alpha\n", "top/sub/b.txt": b"bravo!\n"},
        "arch/two.tar": {"top/c.txt": b"charlie\n"}}


def dataset_of(tmp_path: Path, unpack: list[dict], key: str = "ds", paths=tuple(TARS),
               **extra) -> Dataset:
    files = [{"url": f"http://127.0.0.1:9/{p}", "path": p} for p in paths]
    catalog = write_catalog(tmp_path / f"{key}.toml", {key: {
        "priority": "critical", "files": files, "unpack": unpack, **extra}})
    _, (dataset,) = parse_file(catalog)
    return dataset


def workspace(tmp_path: Path) -> CacheManager:
    cache = CacheManager(tmp_path / "ws" / ".cache")
    for rel, members in TARS.items():
        path = cache.datasets_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tar_bytes(members))
        cache.record_file("ds", rel, size=path.stat().st_size,
                          hash="sha256:" + hashlib.sha256(path.read_bytes()).hexdigest())
    return cache


TWO_INTO_ONE = [{"format": "tar", "files": ["arch/one.tar"], "into": "out",
                 "strip_components": 1},
                {"format": "tar", "files": ["arch/two.tar"], "into": "out",
                 "strip_components": 1}]


def run(dataset: Dataset, cache: CacheManager, options: UnpackOptions | None = None,
        timeout: float = 5.0) -> list[str]:
    said: list[str] = []
    unpack_dataset(dataset, options or UnpackOptions(), cache, lock_dir=cache.cache_dir / "locks",
                   lock_timeout=timeout, log=said.append)
    return said


def test_members_are_recorded_with_their_archive_and_the_archives_removed(tmp_path):
    cache = workspace(tmp_path)
    dataset = dataset_of(tmp_path, TWO_INTO_ONE)
    assert run(dataset, cache) == []
    files = cache.entry("ds")["files"]
    out = cache.datasets_dir / "out"
    expected = {"out/a.txt": (b"alpha\n", "arch/one.tar"),
                "out/sub/b.txt": (b"bravo!\n", "arch/one.tar"),
                "out/c.txt": (b"charlie\n", "arch/two.tar")}
    for rel, (data, source) in expected.items():
        record = files[rel]
        assert (record["size"], record["hash"], record["member"], record["source"]) == (
            len(data), "sha256:" + hashlib.sha256(data).hexdigest(), True, source)
        assert "settings" not in record  # nothing was converted
        assert (cache.datasets_dir / rel).read_bytes() == data
    for rel in TARS:
        assert files[rel]["removed"] is True
        assert not (cache.datasets_dir / rel).exists()
    assert sorted(p.name for p in out.iterdir()) == [  # the journals a re-run reads, no temp
        ".easy-oww-unpack.one.tar.jsonl", ".easy-oww-unpack.two.tar.jsonl", "a.txt", "c.txt",
        "sub"]
    # A second run finds both archives gone and their members intact: nothing to do.
    assert run(dataset, cache) == []
    assert (out / "a.txt").read_bytes() == b"alpha\n"


def test_keep_archives_leaves_them_in_place_and_unmarked(tmp_path):
    cache = workspace(tmp_path)
    run(dataset_of(tmp_path, TWO_INTO_ONE), cache, UnpackOptions(keep_archives=True))
    files = cache.entry("ds")["files"]
    for rel in TARS:
        assert (cache.datasets_dir / rel).is_file()
        assert "removed" not in files[rel]
    assert files["out/c.txt"]["member"] is True


def test_an_archive_gone_while_its_members_are_not_intact_is_not_taken_as_done(tmp_path):
    cache = workspace(tmp_path)
    dataset = dataset_of(tmp_path, TWO_INTO_ONE)
    run(dataset, cache)
    entry = cache.entry("ds")
    assert members_intact(cache, dataset, entry, "arch/one.tar")
    (cache.datasets_dir / "out" / "sub" / "b.txt").write_bytes(b"bravo")  # one byte short
    assert not members_intact(cache, dataset, cache.entry("ds"), "arch/one.tar")
    assert members_intact(cache, dataset, cache.entry("ds"), "arch/two.tar")  # its own only
    # The archive being gone, a re-run has to extract it again and says it is missing (the
    # engine fetches a removed archive again when its members are not intact).
    with pytest.raises(ArchiveVolumeError, match="one.tar is missing: download it again"):
        run(dataset, cache)
    (cache.datasets_dir / "out" / "c.txt").unlink()
    assert not members_intact(cache, dataset, cache.entry("ds"), "arch/two.tar")


def test_a_failed_file_in_the_folder_or_no_members_at_all_is_not_intact(tmp_path):
    cache = workspace(tmp_path)
    dataset = dataset_of(tmp_path, TWO_INTO_ONE)
    assert not members_intact(cache, dataset, cache.entry("ds"), "arch/one.tar")  # none yet
    run(dataset, cache)
    cache.record_failure("ds", "out/elsewhere.txt", "hash mismatch")
    assert not members_intact(cache, dataset, cache.entry("ds"), "arch/one.tar")
    cache2 = workspace(tmp_path / "b")
    run(dataset, cache2)
    cache2.record_failure("ds", "outside/x.txt", "hash mismatch")  # not under `out/`
    assert members_intact(cache2, dataset, cache2.entry("ds"), "arch/one.tar")


def test_a_file_no_unpack_names_is_intact_by_definition(tmp_path):
    cache = workspace(tmp_path)
    dataset = dataset_of(tmp_path, TWO_INTO_ONE[:1])
    assert members_intact(cache, dataset, cache.entry("ds"), "arch/two.tar")


def test_a_fallback_shard_is_intact_when_its_converted_rows_are(tmp_path):
    cache = workspace(tmp_path)
    catalog = tmp_path / "fallback.toml"
    catalog.write_text("\n".join([
        "include_builtin = false", "[datasets.ds]", 'priority = "critical"',
        "[[datasets.ds.files]]", 'url = "http://127.0.0.1:9/one.tar"', 'path = "arch/one.tar"',
        "[[datasets.ds.unpack]]", 'format = "tar"', 'files = ["arch/one.tar"]',
        'into = "wav16k"', "sample_rate = 16000", "[datasets.ds.fallback]",
        'hf_repo = "someone/audio"', 'hf_folder = "data"', 'path = "shards"',
        'format = "parquet"', 'audio_column = "audio"', 'name_column = "video_id"', ""]))
    _, (dataset,) = parse_file(catalog)
    routed = dataset.via_fallback()
    assert not members_intact(cache, routed, {"files": {}}, "shards/0.parquet")
    row = cache.datasets_dir / "wav16k" / "v1.wav"
    row.parent.mkdir(parents=True)
    row.write_bytes(b"RIFF....")
    entry = {"files": {"wav16k/v1.wav": {"member": True, "source": "shards/0.parquet",
                                         "size": 8}}}
    assert members_intact(cache, routed, entry, "shards/0.parquet")
    entry["files"]["wav16k/v1.wav"]["size"] = 9
    assert not members_intact(cache, routed, entry, "shards/0.parquet")
    # The tars' route makes no claim about a shard: not its archive.
    assert members_intact(cache, dataset, entry, "shards/0.parquet")
    assert not members_intact(cache, dataset, {}, "arch/one.tar")  # no "files" table: none


def test_owned_by_others_names_other_archives_files_in_the_folder_only(tmp_path):
    manifest = {"datasets": {
        "ds": {"files": {
            "out/a.txt": {"member": True, "source": "arch/one.tar", "hash": "sha256:aa"},
            "out/b.txt": {"member": True, "source": "arch/two.tar", "hash": "sha256:bb"},
            "out/c.txt": {"source": "arch/one.tar", "hash": "sha256:cc"},  # not a member
            "out/d.txt": {"member": True, "source": "arch/one.tar", "hash": "md5:dd"},
            "outer/e.txt": {"member": True, "source": "arch/one.tar", "hash": "sha256:ee"},
            "out/f.txt": {"member": True, "hash": "sha256:ff"},  # no source recorded
            "out/h.txt": {"member": True, "source": "arch/one.tar"}}},  # no hash recorded
        "other": {"files": {
            "out/sub/g.txt": {"member": True, "source": "o/x.zip", "hash": "sha256:99"}}}}}
    assert owned_by_others(manifest, "out", "arch/two.tar") == {
        "a.txt": ("arch/one.tar", "aa"), "sub/g.txt": ("o/x.zip", "99")}
    assert owned_by_others(manifest, "out", "arch/one.tar") == {
        "b.txt": ("arch/two.tar", "bb"), "sub/g.txt": ("o/x.zip", "99")}
    assert owned_by_others({}, "out", "arch/one.tar") == {}
    # An entry written before members were recorded has no "files" table.
    assert owned_by_others({"datasets": {"old": {"complete": True}}}, "out", "a.tar") == {}


def test_a_second_archive_with_other_bytes_under_a_taken_name_is_refused(tmp_path):
    cache = workspace(tmp_path)
    two = cache.datasets_dir / "arch" / "two.tar"
    two.write_bytes(tar_bytes({"top/a.txt": b"not alpha\n"}))
    with pytest.raises(ArchiveError, match="would replace a.txt, unpacked from arch/one.tar"):
        run(dataset_of(tmp_path, TWO_INTO_ONE), cache)
    assert (cache.datasets_dir / "out" / "a.txt").read_bytes() == b"alpha\n"
    assert cache.entry("ds")["files"]["out/a.txt"]["source"] == "arch/one.tar"
    assert two.is_file()  # nothing removed when the unpack did not finish


def test_another_process_extracting_is_waited_for_then_named(tmp_path):
    cache = workspace(tmp_path)
    dataset = dataset_of(tmp_path, TWO_INTO_ONE)
    held = extraction_lock(cache.cache_dir / "locks",
                           temp_dir(cache.datasets_dir / "out", "one.tar"))
    assert Path(held.lock_file).parent == cache.cache_dir / "locks"
    other = extraction_lock(cache.cache_dir / "locks",
                            temp_dir(cache.datasets_dir / "out", "two.tar"))
    assert other.lock_file != held.lock_file  # one lock per archive, not one for all
    held.acquire()
    try:
        said: list[str] = []
        with pytest.raises(LockTimeoutError) as caught:
            unpack_dataset(dataset, UnpackOptions(), cache, lock_dir=cache.cache_dir / "locks",
                           lock_timeout=0.05, log=said.append)
    finally:
        held.release()
    assert said == ["ds: another easy-oww process is extracting one.tar; waiting"]
    assert str(caught.value) == ("ds: another easy-oww process is still extracting one.tar "
                                 "after 0 s; try again when it has finished")
    assert not (cache.datasets_dir / "out").exists()
    assert run(dataset, cache) == []  # released: the next run unpacks
    # The lock is free again after a run (released even on the early "already done" path).
    again = extraction_lock(cache.cache_dir / "locks",
                            temp_dir(cache.datasets_dir / "out", "one.tar"))
    again.acquire(timeout=0)
    again.release()


def test_the_rate_a_user_names_wins_and_is_what_the_manifest_records(tmp_path):
    audio = dataset_of(tmp_path, [{"format": "tar", "files": ["arch/one.tar"], "into": "o",
                                   "sample_rate": 16000}], key="a")
    (spec,) = audio.unpack
    assert UnpackOptions().rate_of(spec) == 16000
    assert UnpackOptions(sample_rate=22050).rate_of(spec) == 22050
    assert conversion_rate(audio, UnpackOptions()) == 16000
    assert conversion_rate(audio, UnpackOptions(sample_rate=8000)) == 8000
    plain = dataset_of(tmp_path, TWO_INTO_ONE, key="p")
    assert UnpackOptions(sample_rate=22050).rate_of(plain.unpack[0]) is None
    assert conversion_rate(plain, UnpackOptions()) is None
    assert conversion_rate(plain, UnpackOptions(sample_rate=8000)) == 8000  # as recorded before
    files_only = dataset_of(tmp_path, [], key="f")
    assert conversion_rate(files_only, UnpackOptions(sample_rate=8000)) is None
    # Two steps converting to two rates: no one rate to record.
    mixed = dataset_of(tmp_path, [
        {"format": "tar", "files": ["arch/one.tar"], "into": "o", "sample_rate": 16000},
        {"format": "tar", "files": ["arch/two.tar"], "into": "p", "sample_rate": 8000}], key="m")
    assert conversion_rate(mixed, UnpackOptions()) is None


def test_a_split_is_chosen_only_when_the_dataset_has_it(tmp_path):
    split = dataset_of(tmp_path, [
        {"format": "tar", "files": ["arch/one.tar"], "into": "dev", "split": "dev"},
        {"format": "tar", "files": ["arch/two.tar"], "into": "eval", "split": "eval"}], key="s")
    assert UnpackOptions(splits={"s": "dev"}).split_of(split) == "dev"
    assert UnpackOptions(splits={"s": "test"}).split_of(split) is None
    assert UnpackOptions(splits={"other": "dev"}).split_of(split) is None
    assert UnpackOptions().split_of(split) is None
    # The rate recorded is the chosen split's, not one the other split would have given.
    rated = dataset_of(tmp_path, [
        {"format": "tar", "files": ["arch/one.tar"], "into": "dev", "split": "dev",
         "sample_rate": 16000},
        {"format": "tar", "files": ["arch/two.tar"], "into": "eval", "split": "eval",
         "sample_rate": 8000}], key="s")
    assert conversion_rate(rated, UnpackOptions(splits={"s": "eval"})) == 8000
    assert conversion_rate(rated, UnpackOptions()) is None  # both: no one rate
    cache = workspace(tmp_path)
    run(split, cache, UnpackOptions(splits={"s": "eval"}))
    assert (cache.datasets_dir / "eval" / "top" / "c.txt").is_file()
    assert not (cache.datasets_dir / "dev").exists()
    assert (cache.datasets_dir / "arch" / "one.tar").is_file()  # the other split's, kept


def test_an_undecodable_member_is_named_with_its_archive_unless_listed_silent(tmp_path):
    cache = CacheManager(tmp_path / "ws" / ".cache")
    rel = "arch/one.tar"
    path = cache.datasets_dir / rel
    path.parent.mkdir(parents=True)
    path.write_bytes(tar_bytes({"t/000123.mp3": b"not audio at all" * 64,
                                "t/readme.txt": b"hello\n"}))
    unpack = [{"format": "tar", "files": [rel], "into": "wav", "sample_rate": 16000,
               "flatten": True}]
    with pytest.raises(AudioDecodeError) as caught:
        run(dataset_of(tmp_path, unpack, key="ds"), cache)
    assert str(caught.value).startswith("t/000123.mp3 in one.tar: ")
    assert "if this track is known to hold no audio, list its name in the unpack's `silent`" in (
        str(caught.value))
    silent = dataset_of(tmp_path, [{**unpack[0], "silent": ["000123"]}], key="ds")
    said = run(silent, cache)
    assert len(said) == 1 and said[0].startswith(
        "ds: t/000123.mp3: skipped, listed as silent (no audio): ")
    entry = cache.entry("ds")
    assert entry["unreadable"]["wav/000123.wav"]["member"] == "t/000123.mp3"
    assert entry["unreadable"]["wav/000123.wav"]["source"] == rel
    assert entry["unreadable"]["wav/000123.wav"]["reason"].startswith(
        "listed as silent (no audio): cannot be decoded")
    assert entry["files"]["wav/readme.txt"]["member"] is True
    assert not (cache.datasets_dir / "wav" / "000123.wav").exists()


def test_a_waiting_unpack_says_so_at_once_then_goes_on_when_the_other_finishes(tmp_path):
    cache = workspace(tmp_path)
    dataset = dataset_of(tmp_path, TWO_INTO_ONE)
    held = extraction_lock(cache.cache_dir / "locks",
                           temp_dir(cache.datasets_dir / "out", "one.tar"))
    held.acquire()
    told = threading.Event()
    said: list[str] = []
    failure: list[BaseException] = []

    def log(line: str) -> None:
        said.append(line)
        told.set()

    def unpack() -> None:
        try:
            unpack_dataset(dataset, UnpackOptions(), cache, lock_dir=cache.cache_dir / "locks",
                           lock_timeout=60, log=log)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failure.append(exc)

    worker = threading.Thread(target=unpack)
    worker.start()
    try:
        # The first try does not wait: the user reads why nothing moves straight away.
        assert told.wait(0.8), "no 'waiting' line within 0.8 s"
    finally:
        held.release()
    worker.join(30)
    assert not worker.is_alive() and failure == []
    assert said == ["ds: another easy-oww process is extracting one.tar; waiting"]
    assert (cache.datasets_dir / "out" / "c.txt").read_bytes() == b"charlie\n"


def test_an_archive_done_earlier_does_not_stop_the_ones_after_it(tmp_path):
    cache = workspace(tmp_path)
    run(dataset_of(tmp_path, TWO_INTO_ONE[:1]), cache)  # one.tar out and removed
    assert not (cache.datasets_dir / "arch" / "one.tar").exists()
    run(dataset_of(tmp_path, TWO_INTO_ONE), cache)
    assert (cache.datasets_dir / "out" / "c.txt").read_bytes() == b"charlie\n"
    assert cache.entry("ds")["files"]["arch/two.tar"]["removed"] is True


def wav_bytes(rate: int, seconds: float = 0.5, subtype: str = "PCM_16") -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    out = io.BytesIO()
    sf.write(out, 0.3 * np.sin(2 * np.pi * 440 * t), rate, format="WAV", subtype=subtype)
    return out.getvalue()


def one_archive(cache: CacheManager, rel: str, data: bytes) -> None:
    path = cache.datasets_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_audio_is_converted_to_the_rate_asked_and_the_settings_recorded(tmp_path):
    cache = CacheManager(tmp_path / "ws" / ".cache")
    clip = wav_bytes(44100)
    one_archive(cache, "arch/one.tar", tar_bytes({"t/clip.wav": clip}))
    plain = [{"format": "tar", "files": ["arch/one.tar"], "into": "raw"}]
    run(dataset_of(tmp_path, plain), cache, UnpackOptions(keep_archives=True))
    assert (cache.datasets_dir / "raw" / "t" / "clip.wav").read_bytes() == clip  # as it was
    assert "settings" not in cache.entry("ds")["files"]["raw/t/clip.wav"]
    converting = [{"format": "tar", "files": ["arch/one.tar"], "into": "wav",
                   "sample_rate": 16000, "flatten": True}]
    run(dataset_of(tmp_path, converting), cache, UnpackOptions(keep_archives=True))
    out = cache.datasets_dir / "wav" / "clip.wav"
    assert (sf.info(out).samplerate, sf.info(out).frames) == (16000, 8000)
    record = cache.entry("ds")["files"]["wav/clip.wav"]
    assert record["settings"]["sample_rate"] == 16000
    assert record["settings"]["subtype"] == "PCM_16"
    # The same archive again at the rate the user names: its own files are replaced (they are
    # this archive's, not another's), at the new rate.
    run(dataset_of(tmp_path, converting), cache, UnpackOptions(sample_rate=8000))
    assert (sf.info(out).samplerate, sf.info(out).frames) == (8000, 4000)
    assert cache.entry("ds")["files"]["wav/clip.wav"]["settings"]["sample_rate"] == 8000


@pytest.mark.parametrize(("count", "size"), [(2, 40_000), (4, 50_000)])
def test_a_split_zip_is_read_across_its_volumes(tmp_path, count, size):
    cache = CacheManager(tmp_path / "ws" / ".cache")
    members = [(f"clips/{i}.bin", random.Random(i).randbytes(size)) for i in range(count)]
    (cache.datasets_dir / "z").mkdir(parents=True)
    volumes = write_split_zip(cache.datasets_dir / "z" / "set.zip", members, 64 * 1024)
    assert len(volumes) == count  # two: the smallest split, a .z01 and the .zip
    rels = [v.relative_to(cache.datasets_dir).as_posix() for v in volumes]
    unpack = [{"format": "zip", "files": rels, "into": "out"}]
    run(dataset_of(tmp_path, unpack, key="z", paths=rels), cache)
    for name, data in members:
        assert (cache.datasets_dir / "out" / name).read_bytes() == data


def test_the_catalogs_checksums_list_and_ratio_limit_are_applied(tmp_path):
    cache = CacheManager(tmp_path / "ws" / ".cache")
    good, bad = b"first track\n", b"second track\n"
    sums = (f"{hashlib.sha1(good).hexdigest()}  a.bin\n"
            f"{hashlib.sha1(b'something else').hexdigest()}  b.bin\n").encode()
    one_archive(cache, "arch/one.tar", tar_bytes({"s/checksums": sums, "s/a.bin": good,
                                                  "s/b.bin": bad}))
    listed = [{"format": "tar", "files": ["arch/one.tar"], "into": "out",
               "checksums": "s/checksums"}]
    with pytest.raises(MemberChecksumError, match="s/b.bin in one.tar does not match its sha1"):
        run(dataset_of(tmp_path, listed), cache)
    assert not (cache.datasets_dir / "out" / "s" / "b.bin").exists()
    # A limit the catalog sets on how far members may inflate is the one applied.
    rng = random.Random(7)
    text = bytes(rng.choice(b"acgt") for _ in range(3 << 20))  # about 4:1 under deflate
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("genome.txt", text)
    one_archive(cache, "arch/g.zip", packed.getvalue())
    limited = [{"format": "zip", "files": ["arch/g.zip"], "into": "g", "max_ratio": 2.0}]
    with pytest.raises(ZipBombError):
        run(dataset_of(tmp_path, limited, key="g", paths=["arch/g.zip"]), cache)
    run(dataset_of(tmp_path, [{**limited[0], "max_ratio": 8.0}], key="g", paths=["arch/g.zip"]),
        cache)
    assert (cache.datasets_dir / "g" / "genome.txt").read_bytes() == text


def test_silent_excuses_only_audio_that_does_not_decode_not_a_damaged_wav(tmp_path):
    cache = CacheManager(tmp_path / "ws" / ".cache")
    one_archive(cache, "arch/one.tar", tar_bytes({"t/000777.wav": b"RIFF" + b"\0" * 60}))
    unpack = [{"format": "tar", "files": ["arch/one.tar"], "into": "wav",
               "sample_rate": 16000, "flatten": True, "silent": ["000777"]}]
    with pytest.raises(FormatError) as caught:
        run(dataset_of(tmp_path, unpack), cache)
    assert not isinstance(caught.value, AudioDecodeError)
    assert "unreadable" not in (cache.entry("ds") or {})


def test_an_archive_another_process_removed_meanwhile_is_still_marked_removed(tmp_path):
    cache = CacheManager(tmp_path / "ws" / ".cache")
    archive = cache.datasets_dir / "arch" / "one.tar"
    one_archive(cache, "arch/one.tar", tar_bytes({"t/000123.mp3": b"not audio" * 64}))
    cache.record_file("ds", "arch/one.tar", size=archive.stat().st_size, hash="sha256:0")
    unpack = [{"format": "tar", "files": ["arch/one.tar"], "into": "wav",
               "sample_rate": 16000, "flatten": True, "silent": ["000123"]}]

    def log(line: str) -> None:  # as a second `download` finishing the same unpack would
        archive.unlink()

    unpack_dataset(dataset_of(tmp_path, unpack), UnpackOptions(), cache,
                   lock_dir=cache.cache_dir / "locks", lock_timeout=5, log=log)
    assert not archive.exists()
    assert cache.entry("ds")["files"]["arch/one.tar"]["removed"] is True
