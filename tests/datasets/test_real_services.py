"""Downloads against stand-ins that copy the real services' documented and reported quirks
(REFERENCE §6; each quirk's source is named beside it in tests/servers/)."""

from __future__ import annotations

import os

import pytest

from easy_oww.datasets import DatasetManager
from easy_oww.transfer.fetch import FetchOptions
from tests.datasets.helpers import write_catalog
from tests.servers.zenodo_standin import ZenodoStandin

MiB = 1024 * 1024
RECORD = 4060432


@pytest.fixture
def zenodo(monkeypatch):
    with ZenodoStandin() as server:
        monkeypatch.setenv("ZENODO_ENDPOINT", server.endpoint)
        yield server


def _zenodo_workspace(tmp_path, key: str):
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"fsd": {"priority": "optional", "files": [
        {"zenodo_record": RECORD, "zenodo_key": key, "path": f"fsd/{key}"}]}})
    return ws


def test_a_dropped_zenodo_download_resumes_where_it_stopped(tmp_path, zenodo):
    # Zenodo's API route (the record's links.self) ignores Range (zenodo/zenodo#2593): a
    # resume there starts from zero. The download route honours it, so a connection dropped
    # at 1 MiB costs only what was lost, not the whole volume again.
    data = os.urandom(3 * MiB + 123)
    key = "FSD50K.dev_audio.z01"
    zenodo.add_file(RECORD, key, data)
    zenodo.set_fault(RECORD, key, drop_after=MiB)
    ws = _zenodo_workspace(tmp_path, key)
    manager = DatasetManager(workspace=ws, options=FetchOptions(connections=1,
                                                                backoff_base=0.01))
    report = manager.download(["fsd"])
    assert report.ok, report.errors
    assert (ws / "datasets" / "fsd" / key).read_bytes() == data
    assert zenodo.bytes_sent(RECORD, key) == len(data)  # not MiB + len(data)
    ranged = [r for r in zenodo.requests if r.kind == "file" and r.range]
    assert ranged and all(r.status == 206 for r in ranged)
