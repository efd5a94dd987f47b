"""datasets/unpacking.py in-process: what is recorded, what is removed, when an earlier unpack
counts as done, the lock between processes, and the rate a user gets. (The CLI's end-to-end
unpacks are in test_unpack_download.py and test_convert_unpack.py.)"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from easy_oww.archives.extract import ArchiveError, temp_dir
from easy_oww.archives.splitzip import ArchiveVolumeError
from easy_oww.audio import AudioDecodeError
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
from easy_oww.errors import LockTimeoutError
from tests.datasets.helpers import write_catalog


def tar_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


TARS = {"arch/one.tar": {"top/a.txt": b"alpha\n", "top/sub/b.txt": b"bravo!\n"},
        "arch/two.tar": {"top/c.txt": b"charlie\n"}}


def dataset_of(tmp_path: Path, unpack: list[dict], key: str = "ds", **extra) -> Dataset:
    files = [{"url": f"http://127.0.0.1:9/{p}", "path": p} for p in TARS]
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
    assert members_intact(cache, dataset, entry, "shards/0.parquet")  # not its route: no claim
    entry["files"]["wav16k/v1.wav"]["size"] = 9
    assert not members_intact(cache, routed, entry, "shards/0.parquet")


def test_owned_by_others_names_other_archives_files_in_the_folder_only(tmp_path):
    manifest = {"datasets": {
        "ds": {"files": {
            "out/a.txt": {"member": True, "source": "arch/one.tar", "hash": "sha256:aa"},
            "out/b.txt": {"member": True, "source": "arch/two.tar", "hash": "sha256:bb"},
            "out/c.txt": {"source": "arch/one.tar", "hash": "sha256:cc"},  # not a member
            "out/d.txt": {"member": True, "source": "arch/one.tar", "hash": "md5:dd"},
            "outer/e.txt": {"member": True, "source": "arch/one.tar", "hash": "sha256:ee"},
            "out/f.txt": {"member": True, "hash": "sha256:ff"}}},  # no source recorded
        "other": {"files": {
            "out/sub/g.txt": {"member": True, "source": "o/x.zip", "hash": "sha256:99"}}}}}
    assert owned_by_others(manifest, "out/", "arch/two.tar") == {
        "a.txt": ("arch/one.tar", "aa"), "sub/g.txt": ("o/x.zip", "99")}
    assert owned_by_others(manifest, "out", "arch/one.tar") == {
        "b.txt": ("arch/two.tar", "bb"), "sub/g.txt": ("o/x.zip", "99")}
    assert owned_by_others({}, "out", "arch/one.tar") == {}


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
    assert entry["files"]["wav/readme.txt"]["member"] is True
    assert not (cache.datasets_dir / "wav" / "000123.wav").exists()
