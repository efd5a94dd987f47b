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
from easy_oww.datasets.catalog import parse_file
from easy_oww.datasets.sources import (
    KINDS,
    FileEntry,
    HuggingFaceFile,
    HuggingFaceFolder,
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
