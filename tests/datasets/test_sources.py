"""Source kinds, called directly against the loopback Hub and Zenodo stand-ins."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from easy_oww.datasets import sources
from easy_oww.datasets.catalog import Catalog, parse_file
from easy_oww.datasets.sources import (
    KINDS,
    FileEntry,
    HuggingFaceFile,
    HuggingFaceFolder,
    ListingDisagrees,
    ListingUnavailable,
    MadeHere,
    PlainUrl,
    ResolvedFile,
    Source,
    SourceResolver,
    ZenodoFile,
    effective_url,
    hf_auth_headers,
    hf_endpoint,
)
from easy_oww.datasets.sources.base import ListingSlot
from easy_oww.errors import CatalogError, DownloadError
from easy_oww.hashes import KnownHash
from easy_oww.transfer.retry import RetryPolicy
from tests.servers.hub_standin import HubStandin, git_blob_sha1
from tests.servers.zenodo_standin import ZenodoStandin

REPO = "owner/rooms"


@dataclass(frozen=True)
class Dataset:
    """The two things the resolver reads of a catalog dataset."""

    key: str
    files: tuple[FileEntry, ...]


def _resolver(tmp_path: Path) -> SourceResolver:
    # The shared policy without its backoff: injected failures are retried at once.
    return SourceResolver(tmp_path / "listings", timeout=5,
                          policy=RetryPolicy(attempts=3, backoff_base=0))


@pytest.fixture
def hub(monkeypatch) -> HubStandin:
    with HubStandin(page_size=2, require_token="hf_test") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.setenv("HF_TOKEN", "hf_test")
        yield server


@pytest.fixture
def zenodo(monkeypatch) -> ZenodoStandin:
    with ZenodoStandin() as server:
        monkeypatch.setenv("ZENODO_ENDPOINT", server.endpoint)
        yield server


def test_the_kinds_are_registered_by_name_and_naming_key():
    assert {name: (k, k.naming_key) for name, k in KINDS.items()} == {
        "url": (PlainUrl, "url"), "hf_folder": (HuggingFaceFolder, "hf_repo"),
        "hf_file": (HuggingFaceFile, "hf_file"), "zenodo": (ZenodoFile, "zenodo_record"),
        "made": (MadeHere, "made_by")}
    with pytest.raises(ValueError, match="taken"):
        sources.register(PlainUrl)


@dataclass(frozen=True)
class _Mirrored(Source):
    """A made-up kind: a test that adding one needs a class and a registration only."""

    kind: ClassVar[str] = "test_mirror"
    naming_key: ClassVar[str] = "test_mirrors"
    keys: ClassVar[Mapping[str, type]] = {"test_mirrors": list}
    hint: ClassVar[str] = "test_mirrors"

    mirrors: tuple[str, ...]

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> _Mirrored:
        return cls(tuple(table["test_mirrors"]))

    def resolve(self, entry: FileEntry, dataset: str, listing: ListingSlot, *, online: bool
                ) -> list[ResolvedFile]:
        return [ResolvedFile(dataset, entry.path, self.mirrors[0], entry.size, entry.hash,
                             entry)]


def test_a_new_kind_is_one_class_and_one_registration(tmp_path):
    sources.register(_Mirrored)
    try:
        catalog = tmp_path / "c.toml"
        catalog.write_text('[datasets.m]\n[[datasets.m.files]]\npath = "m/a.bin"\n'
                           'test_mirrors = ["http://one/a.bin", "http://two/a.bin"]\n')
        _, (dataset,) = parse_file(catalog)
        (item,) = _resolver(tmp_path).resolve(dataset, online=False)
        assert item.url == "http://one/a.bin" and item.entry.kind == "test_mirror"
        catalog.write_text('[datasets.m]\n[[datasets.m.files]]\npath = "m/a.bin"\n'
                           'url = "http://h/a"\ntest_mirrors = ["http://one/a.bin"]\n')
        with pytest.raises(CatalogError) as caught:
            parse_file(catalog)
        assert "names two sources ('url' and 'test_mirror')" in str(caught.value)
    finally:
        del KINDS["test_mirror"]


def test_a_plain_url_is_one_download_with_the_catalogs_size_and_hash(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    known = KnownHash("md5", "0" * 32)
    entry = FileEntry("a/b.bin", PlainUrl("https://example.org/b.bin"), size=7, hash=known)
    (item,) = _resolver(tmp_path).resolve(Dataset("d", (entry,)), online=True)
    assert (item.dataset, item.path, item.url, item.size, item.hash) == (
        "d", "a/b.bin", "https://example.org/b.bin", 7, known)
    assert item.auth_host is None and item.auth_headers() == {}  # no token to a stranger
    assert not (tmp_path / "listings").exists()  # nothing to list


def test_a_hub_url_follows_hf_endpoint_and_gets_the_token_for_that_host_only(tmp_path,
                                                                              monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    assert hf_endpoint() == "http://127.0.0.1:9"
    url = "https://huggingface.co/datasets/o/r/resolve/main/x.npy"
    assert effective_url(url) == "http://127.0.0.1:9/datasets/o/r/resolve/main/x.npy"
    assert effective_url("https://huggingface.com/x") == "https://huggingface.com/x"
    (item,) = _resolver(tmp_path).resolve(
        Dataset("d", (FileEntry("x.npy", PlainUrl(url)),)), online=False)
    assert item.url == "http://127.0.0.1:9/datasets/o/r/resolve/main/x.npy"
    assert item.auth_host == "127.0.0.1"
    assert item.auth_headers() == hf_auth_headers() == {"Authorization": "Bearer hf_secret"}
    monkeypatch.delenv("HF_TOKEN")
    assert item.auth_headers() == {}


def _rooms(hub: HubStandin) -> dict[str, bytes]:
    files = {f"16khz/rir_{i}.wav": bytes([i]) * (100 + i) for i in range(5)}
    for i, (name, data) in enumerate(files.items()):
        hub.add_file(REPO, name, data, lfs=i != 0)  # the first a plain git file
    hub.add_file(REPO, "48khz/other.wav", b"not in the folder")
    return files


def test_a_hub_folder_is_listed_page_by_page_and_sized_and_hashed_by_the_listing(tmp_path,
                                                                                 hub):
    files = _rooms(hub)
    entry = FileEntry("rooms", HuggingFaceFolder(repo=REPO, folder="16khz"))
    resolved = _resolver(tmp_path).resolve(Dataset("rir", (entry,)), online=True)
    assert [f.path for f in resolved] == [f"rooms/rir_{i}.wav" for i in range(5)]
    assert len(hub.requests_of("tree")) == 3  # five files, two per page
    assert all(r.authorization for r in hub.requests_of("tree"))
    for item, (name, data) in zip(resolved, files.items(), strict=True):
        assert item.size == len(data)
        assert item.url == hub.resolve_url(REPO, name)
        assert item.auth_host == "127.0.0.1" and item.entry is entry
    assert resolved[0].hash == KnownHash("gitsha1", git_blob_sha1(files["16khz/rir_0.wav"]))
    assert resolved[1].hash == KnownHash(
        "sha256", hashlib.sha256(files["16khz/rir_1.wav"]).hexdigest())


def test_a_fetched_listing_serves_offline_until_the_entry_changes(tmp_path, hub):
    _rooms(hub)
    resolver = _resolver(tmp_path)
    entry = FileEntry("rooms", HuggingFaceFolder(repo=REPO, folder="16khz"))
    assert resolver.resolve(Dataset("rir", (entry,)), online=False) is None  # never listed
    online = resolver.resolve(Dataset("rir", (entry,)), online=True)
    hub.stop()
    assert resolver.resolve(Dataset("rir", (entry,)), online=False) == online
    assert json.loads((tmp_path / "listings" / "rir.0.json").read_text())["source"] == \
        f"hf:datasets:{REPO}:main:16khz"
    moved = FileEntry("rooms", HuggingFaceFolder(repo=REPO, folder="16khz", revision="v2"))
    assert resolver.resolve(Dataset("rir", (moved,)), online=False) is None


def test_a_listing_that_fails_once_is_retried(tmp_path, hub):
    _rooms(hub)
    hub.fail_tree_next(1, status=503)
    entry = FileEntry("rooms", HuggingFaceFolder(repo=REPO, folder="16khz"))
    assert len(_resolver(tmp_path).resolve(Dataset("rir", (entry,)), online=True)) == 5
    assert [r.status for r in hub.requests_of("tree")][:2] == [503, 200]


def test_a_listing_busy_past_the_policys_attempts_gives_up(tmp_path, hub):
    _rooms(hub)
    hub.fail_tree_next(3, status=503)
    entry = FileEntry("rooms", HuggingFaceFolder(repo=REPO, folder="16khz"))
    with pytest.raises(DownloadError, match="HTTP 503 from .*; gave up after 3 attempts"):
        _resolver(tmp_path).resolve(Dataset("rir", (entry,)), online=True)
    assert [r.status for r in hub.requests_of("tree")] == [503, 503, 503]


def test_a_wrong_folder_is_a_download_error_naming_the_listing(tmp_path, hub):
    _rooms(hub)
    entry = FileEntry("rooms", HuggingFaceFolder(repo=REPO, folder="8khz"))
    with pytest.raises(DownloadError, match="HTTP 404; check the catalog entry") as caught:
        _resolver(tmp_path).resolve(Dataset("rir", (entry,)), online=True)
    assert caught.value.status == 404 and "/tree/main/8khz" in str(caught.value)


def test_a_listing_path_outside_the_folder_is_refused(tmp_path):
    source = HuggingFaceFolder(repo=REPO, folder="16khz")
    listings = tmp_path / "listings"
    listings.mkdir()
    for bad in ("16khz/../../etc/passwd", "elsewhere/x.wav"):
        (listings / "rir.0.json").write_text(json.dumps({"source": source.listing_id, "listing": [
            {"type": "file", "path": bad, "oid": "0" * 40, "size": 1}]}))
        with pytest.raises(DownloadError, match="unsafe path"):
            _resolver(tmp_path).resolve(Dataset("rir", (FileEntry("rooms", source),)),
                                        online=False)


def test_an_unreachable_listing_server_is_listing_unavailable(tmp_path, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("ZENODO_ENDPOINT", f"http://127.0.0.1:{port}")
    entry = FileEntry("f/a.zip", ZenodoFile(record="1", key="a.zip"))
    with pytest.raises(ListingUnavailable, match=r"^cannot list http://127\.0\.0\.1:\d+/api/"
                       r"records/1: cannot connect .*\(offline\?\); gave up after 2 attempts"):
        _resolver(tmp_path).resolve(Dataset("f", (entry,)), online=True)


def test_a_zenodo_file_takes_size_and_md5_from_the_record_and_the_catalog_hash_wins(tmp_path,
                                                                                   zenodo):
    zenodo.add_file(4060432, "a.zip", b"a" * 300)
    zenodo.add_file(4060432, "b.zip", b"b" * 200)
    mine = KnownHash("sha256", hashlib.sha256(b"b" * 200).hexdigest())
    entries = (FileEntry("f/a.zip", ZenodoFile(record="4060432", key="a.zip")),
               FileEntry("f/b.zip", ZenodoFile(record="4060432", key="b.zip"), hash=mine,
                         size=200))
    resolver = _resolver(tmp_path)
    a, b = resolver.resolve(Dataset("f", entries), online=True)
    assert (a.path, a.size, a.hash) == ("f/a.zip", 300,
                                        KnownHash("md5", hashlib.md5(b"a" * 300).hexdigest()))
    assert a.url == zenodo.download_url(4060432, "a.zip") and a.auth_host is None
    assert (b.size, b.hash) == (200, mine)
    zenodo.stop()
    assert resolver.resolve(Dataset("f", entries), online=False) == [a, b]


def test_a_zenodo_key_missing_from_the_record_is_a_download_error(tmp_path, zenodo):
    zenodo.add_file(7, "a.zip", b"a")
    entry = FileEntry("f/c.zip", ZenodoFile(record="7", key="c.zip"))
    with pytest.raises(DownloadError, match="Zenodo record 7 has no file 'c.zip'"):
        _resolver(tmp_path).resolve(Dataset("f", (entry,)), online=True)


def test_one_unlisted_entry_makes_the_whole_dataset_unknown_offline(tmp_path, zenodo):
    zenodo.add_file(7, "a.zip", b"a")
    entries = (FileEntry("f/readme.txt", PlainUrl("http://h/readme.txt")),
               FileEntry("f/a.zip", ZenodoFile(record="7", key="a.zip")))
    assert _resolver(tmp_path).resolve(Dataset("f", entries), online=False) is None


# -- one Hub file (hf_file) ------------------------------------------------------------------
TARS = "owner/audio"
COMMIT = "5a2fa42a1506470d275a47ff8e1fdac5b364e6ef"


def _tars(hub: HubStandin) -> dict[str, bytes]:
    files = {f"data/bal_train{i:02d}.tar": bytes([i]) * (300 + i) for i in range(3)}
    for name, data in files.items():
        hub.add_file(TARS, name, data)
    hub.add_file(TARS, "data/deeper/x.tar", b"in a subfolder")
    hub.add_file(TARS, "README.md", b"# tars\n", lfs=False)
    return files


def test_a_hub_file_is_sized_and_hashed_by_its_folders_listing_at_its_revision(tmp_path, hub):
    files = _tars(hub)
    pinned = hub.commit(TARS)
    source = HuggingFaceFile(repo=TARS, path="data/bal_train01.tar", revision=pinned)
    assert source.pinned and source.folder == "data"
    entry = FileEntry("audioset/archive/bal_train01.tar", source)
    resolver = _resolver(tmp_path)
    (item,) = resolver.resolve(Dataset("a", (entry,)), online=True)
    data = files["data/bal_train01.tar"]
    assert (item.path, item.size, item.hash) == (
        "audioset/archive/bal_train01.tar", len(data),
        KnownHash("sha256", hashlib.sha256(data).hexdigest()))
    assert item.url == hub.resolve_url(TARS, "data/bal_train01.tar", revision=pinned)
    assert item.auth_host == "127.0.0.1" and item.auth_headers() == hf_auth_headers()
    trees = hub.requests_of("tree")  # the folder alone, at the commit, not recursive
    assert len(trees) == 2  # three tars and a subfolder, two a page
    assert all(t.target.split("?")[0].endswith(f"/tree/{pinned}/data") and t.authorization
               and "recursive" not in t.target for t in trees)
    hub.stop()
    assert resolver.resolve(Dataset("a", (entry,)), online=False) == [item]  # cached


def test_files_of_one_folder_are_listed_once_per_dataset(tmp_path, hub):
    _tars(hub)
    entries = tuple(FileEntry(f"a/{i}.tar", HuggingFaceFile(repo=TARS,
                                                             path=f"data/bal_train0{i}.tar"))
                    for i in range(3))
    resolved = _resolver(tmp_path).resolve(Dataset("a", entries), online=True)
    assert [f.size for f in resolved] == [300, 301, 302]
    assert len(hub.requests_of("tree")) == 2  # one listing of data/ (two pages), not three


def test_a_top_level_hub_file_lists_the_top_of_the_repository(tmp_path, hub):
    _tars(hub)
    entry = FileEntry("r/README.md", HuggingFaceFile(repo=TARS, path="README.md"))
    assert not entry.source.pinned  # "main" follows the branch
    (item,) = _resolver(tmp_path).resolve(Dataset("r", (entry,)), online=True)
    assert item.hash == KnownHash("gitsha1", git_blob_sha1(b"# tars\n"))  # not in LFS
    assert hub.requests_of("tree")[0].target.endswith("/tree/main")


def test_a_catalog_hash_that_disagrees_with_the_listing_is_refused_naming_both(tmp_path, hub):
    files = _tars(hub)
    listed = "sha256:" + hashlib.sha256(files["data/bal_train00.tar"]).hexdigest()
    wrong = KnownHash("sha256", "ab" * 32)
    source = HuggingFaceFile(repo=TARS, path="data/bal_train00.tar", revision=hub.commit(TARS))
    with pytest.raises(ListingDisagrees) as caught:
        _resolver(tmp_path).resolve(Dataset("a", (FileEntry("a/0.tar", source, hash=wrong),)),
                                    online=True)
    message = str(caught.value)
    assert "\n" not in message and listed in message and str(wrong) in message
    assert "data/bal_train00.tar" in message and "refusing it" in message
    with pytest.raises(ListingDisagrees, match="with 300 bytes, the catalog says 299"):
        _resolver(tmp_path).resolve(Dataset("a", (FileEntry("a/0.tar", source, size=299),)),
                                    online=True)
    agreeing = FileEntry("a/0.tar", source, hash=KnownHash.parse(listed))
    (item,) = _resolver(tmp_path).resolve(Dataset("a", (agreeing,)), online=True)
    assert str(item.hash) == listed and item.size == 300  # the size from the listing


def test_a_hub_file_the_catalog_sizes_and_hashes_needs_no_listing(tmp_path, hub):
    known = KnownHash("sha256", "cd" * 32)
    entry = FileEntry("f/v.npy", HuggingFaceFile(repo="o/features", path="v.npy"), size=9,
                      hash=known)
    for online in (False, True):
        (item,) = _resolver(tmp_path).resolve(Dataset("v", (entry,)), online=online)
        assert (item.size, item.hash) == (9, known)
        assert item.url == f"{hub.endpoint}/datasets/o/features/resolve/main/v.npy"
    assert hub.requests_of("tree") == []  # the Hub's X-Linked-Etag still checks it


def test_a_hub_file_missing_at_its_revision_is_a_download_error(tmp_path, hub):
    _tars(hub)
    entry = FileEntry("a/x.tar", HuggingFaceFile(repo=TARS, path="data/bal_train99.tar"))
    with pytest.raises(DownloadError, match="has no file 'data/bal_train99.tar' at revision "
                       "'main'"):
        _resolver(tmp_path).resolve(Dataset("a", (entry,)), online=True)


def test_a_revision_is_pinned_only_when_it_is_a_commit():
    assert HuggingFaceFolder(repo=REPO, folder="f", revision=COMMIT).pinned
    for floating in ("main", "v1.0", "refs/pr/1", COMMIT[:7], COMMIT.upper()):
        assert not HuggingFaceFile(repo=REPO, path="a", revision=floating).pinned


def test_the_builtin_acav100m_files_resolve_offline_to_the_urls_they_always_had(tmp_path,
                                                                                 monkeypatch):
    """A part file's resume record names its URL: the hf_file entries keep the url entries'
    URLs (a resume started before still counts), follow HF_ENDPOINT and get HF_TOKEN."""
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    catalog = Catalog.load()
    base = "https://huggingface.co/datasets/davidscripka/openwakeword_features/resolve/main/"
    for key, name, size in (
            ("acav100m_train", "openwakeword_features_ACAV100M_2000_hrs_16bit.npy",
             17280000128), ("acav100m_val", "validation_set_features.npy", 184836608)):
        (item,) = _resolver(tmp_path).resolve(catalog.get(key), online=False)
        assert (item.url, item.size, item.auth_host) == (base + name, size, "huggingface.co")
        assert item.auth_headers() == {"Authorization": "Bearer hf_secret"}
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
        (mirrored,) = _resolver(tmp_path).resolve(catalog.get(key), online=False)
        assert mirrored.url == base.replace("https://huggingface.co", "http://127.0.0.1:9") \
            + name and mirrored.auth_host == "127.0.0.1"
        monkeypatch.delenv("HF_ENDPOINT")
    assert not (tmp_path / "listings").exists()  # sized and hashed by the catalog
