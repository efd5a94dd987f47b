"""The seed document's Python examples, as written (offline: one-line network errors)."""

from __future__ import annotations

import concurrent.futures
import os

import pytest

from easy_oww.datasets import (
    ACAV100MDownloader,
    CacheEntryError,
    CacheManager,
    DatasetManager,
    FSD50kDownloader,
    RIRDownloader,
)
from easy_oww.errors import EasyOwwError
from tests.datasets.helpers import sha256, write_catalog


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("EASY_OWW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # offline, at once
    monkeypatch.setenv("ZENODO_ENDPOINT", "http://127.0.0.1:9")
    return tmp_path


def test_manager_example(home, capsys):
    manager = DatasetManager(datasets_dir="~/.easy-oww/datasets", cache_dir="~/.easy-oww/.cache")
    assert manager.workspace.root == home / ".easy-oww"
    manager.show_status()
    assert "ACAV100M Training" in capsys.readouterr().out
    info = manager.get_dataset_info()
    train = next(d for d in info if d["key"] == "acav100m_train")
    assert train["size_gb"] == 17.28 and train["cached"] is False
    report = manager.download_required()  # offline: failures reported, no exception
    assert not report.ok and all("\n" not in e for e in report.errors)


def test_cache_example_add_entry_on_made_up_path(home):
    cache = CacheManager(cache_dir="~/.easy-oww/.cache")
    assert not cache.is_cached("acav100m_train")
    with pytest.raises(CacheEntryError, match="does not exist"):
        cache.add_entry(dataset_name="acav100m_train", filepath="/path/to/dataset.tar",
                        checksum="abc123", metadata={"version": "1.0"})
    real = home / "x.bin"
    real.write_bytes(b"hello")
    cache.add_entry("mine", real, checksum=sha256(b"hello"), metadata={"version": "1.0"})
    assert cache.is_cached("mine") and cache.verify_integrity("mine")
    assert cache.list_cached() == ["mine"]
    real.write_bytes(b"jello")
    assert not cache.verify_integrity("mine")
    assert cache.remove_entry("mine") and not cache.is_cached("mine")


def test_downloader_faces_offline_raise_one_line(home):
    acav = ACAV100MDownloader(datasets_dir="~/.easy-oww/datasets")
    assert not acav.is_validation_cached()
    with pytest.raises(EasyOwwError) as err:
        acav.download_validation()
    assert "offline" in str(err.value) and "\n" not in str(err.value)
    assert acav.get_training_path().name == "openwakeword_features_ACAV100M_2000_hrs_16bit.npy"
    assert RIRDownloader(datasets_dir="~/.easy-oww/datasets").get_rir_path().name == "mit_rir"
    assert FSD50kDownloader(datasets_dir="~/.easy-oww/datasets").get_sounds_path().name == "dev"


def test_parallel_downloads_example_is_safe(home, faulty_server):
    blobs = {"t.bin": os.urandom(400_000), "r.bin": os.urandom(300_000)}
    for name, data in blobs.items():
        faulty_server.set_file(name, data)
    catalog = write_catalog(home / "c.toml", {
        "acav100m_train": {"priority": "critical", "files": [
            {"url": faulty_server.url("t.bin"), "path": "acav100m/t.bin",
             "hash": sha256(blobs["t.bin"])}]},
        "mit_rir": {"priority": "recommended", "path": "mit_rir", "files": [
            {"url": faulty_server.url("r.bin"), "path": "mit_rir/r.bin",
             "hash": sha256(blobs["r.bin"])}]}}, builtin=True)
    manager = DatasetManager(datasets_dir=home / "ws" / "datasets",
                             cache_dir=home / "ws" / ".cache", catalog_file=catalog)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as executor:
        futures = [executor.submit(manager.acav100m.download_training),
                   executor.submit(manager.rir.download)]
        for future in concurrent.futures.as_completed(futures):
            future.result()
    assert manager.acav100m.is_training_cached() and manager.rir.is_cached()
    assert list(manager.rir.get_rir_path().glob("*.bin")) == [home / "ws/datasets/mit_rir/r.bin"]
