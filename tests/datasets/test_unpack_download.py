"""A split-zip dataset (made by the real `zip -s`) downloaded, unpacked and verified end to end."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import soundfile as sf

from tests.datasets.helpers import run_cli, sha256, write_catalog


def test_split_zip_dataset_unpacks_records_members_and_drops_volumes(tmp_path, faulty_server):
    src = tmp_path / "src" / "clips"
    src.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        sf.write(src / f"clip{i}.wav", rng.standard_normal(16000) * 0.1, 16000, subtype="PCM_16")
    subprocess.run(["zip", "-q", "-r", "-s", "64k", "../clips.zip", "."], cwd=src, check=True)
    volumes = sorted((tmp_path / "src").glob("clips.z[0-9]*")) + [tmp_path / "src" / "clips.zip"]
    assert len(volumes) >= 3
    files = []
    for volume in volumes:
        data = volume.read_bytes()
        faulty_server.set_file(volume.name, data)
        files.append({"url": faulty_server.url(volume.name), "path": f"clips/archive/{volume.name}",
                      "hash": sha256(data)})
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"clips": {"priority": "critical", "path": "clips/wav",
        "files": files, "unpack": [{"format": "zip", "into": "clips/wav"}]}})
    run = run_cli(tmp_path, "download", "--workspace", str(ws))
    assert run.code == 0, run.err
    out = ws / "datasets" / "clips" / "wav"
    for i in range(6):
        assert (out / f"clip{i}.wav").read_bytes() == (src / f"clip{i}.wav").read_bytes()
    assert not list((ws / "datasets" / "clips" / "archive").glob("clips.*"))  # volumes removed
    rows = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert rows[0]["status"] == "cached", rows[0]["problems"]
    verify = run_cli(tmp_path, "verify", "--json", "--workspace", str(ws))
    assert verify.code == 0
    assert sorted(r["path"] for r in verify.json()) == sorted(
        str(out / f"clip{i}.wav") for i in range(6))
    faulty_server.reset_counters()
    again = run_cli(tmp_path, "download", "--workspace", str(ws))
    assert again.code == 0 and sum(faulty_server.bytes_sent(v.name) for v in volumes) == 0
    (out / "clip3.wav").unlink()
    rows = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert rows[0]["status"] == "corrupt"
    # The volumes are gone, so mending the clip means fetching them again and re-extracting.
    mended = run_cli(tmp_path, "download", "--workspace", str(ws))
    assert mended.code == 0, mended.err
    assert (out / "clip3.wav").read_bytes() == (src / "clip3.wav").read_bytes()
    rows = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert rows[0]["status"] == "cached", rows[0]["problems"]
    assert run_cli(tmp_path, "verify", "--workspace", str(ws)).code == 0


def _split_archives(tmp_path, faulty_server, rate=44100):
    """A mini FSD50K: dev (3 volumes) and eval (1 volume) split zips of 44.1 kHz clips."""
    rng = np.random.default_rng(1)
    files, unpack = [], []
    for split, n in (("dev", 6), ("eval", 2)):
        src = tmp_path / "src" / f"FSD50K.{split}_audio"
        src.mkdir(parents=True)
        for i in range(n):
            sf.write(src / f"{split}{i}.wav", rng.standard_normal(rate) * 0.1, rate,
                     subtype="PCM_16")
        subprocess.run(["zip", "-q", "-r", "-s", "64k", f"FSD50K.{split}_audio.zip",
                        src.name], cwd=src.parent, check=True)
        volumes = sorted((tmp_path / "src").glob(f"FSD50K.{split}_audio.z[0-9]*")) + [
            tmp_path / "src" / f"FSD50K.{split}_audio.zip"]
        paths = []
        for volume in volumes:
            data = volume.read_bytes()
            faulty_server.set_file(volume.name, data)
            paths.append(f"fsd/archive/{volume.name}")
            files.append({"url": faulty_server.url(volume.name), "path": paths[-1],
                          "hash": sha256(data)})
        unpack.append({"format": "zip", "files": paths, "into": f"fsd/{split}",
                       "strip_components": 1, "split": split, "audio": True})
    return {"fsd50k": {"priority": "optional", "path": "fsd", "files": files,
                       "unpack": unpack}}


def test_fsd50k_split_sample_rate_paths_clips_clean_remove(tmp_path, faulty_server):
    from easy_oww.datasets import DatasetManager, iter_clips

    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", _split_archives(tmp_path, faulty_server))
    run = run_cli(tmp_path, "download", "--all", "--fsd50k-split", "dev", "--sample-rate",
                  "16000", "--keep-archives", "--workspace", str(ws))
    assert run.code == 0, run.err
    dev = ws / "datasets" / "fsd" / "dev"
    assert sorted(p.name for p in dev.glob("*.wav")) == [f"dev{i}.wav" for i in range(6)]
    assert not (ws / "datasets" / "fsd" / "eval").exists()
    info = sf.info(dev / "dev0.wav")
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    rows = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert rows[0]["status"] == "cached"
    manifest = json.loads((ws / ".cache" / "manifest.json").read_text())
    member = manifest["datasets"]["fsd50k"]["files"]["fsd/dev/dev0.wav"]
    assert member["settings"]["sample_rate"] == 16000 and member["hash"].startswith("sha256:")
    assert run_cli(tmp_path, "verify", "--deep", "--workspace", str(ws)).code == 0
    paths = run_cli(tmp_path, "paths", "--json", "--workspace", str(ws)).json()
    assert paths == {"fsd50k": str(ws / "datasets" / "fsd")}
    manager = DatasetManager(workspace=ws)
    clips = list(iter_clips("fsd50k", 16000, manager=manager, split="dev"))
    assert len(clips) == 6 and clips[0][1].dtype == np.float32 and len(clips[0][1]) == 16000
    # Archives were kept on request; clean removes them (already extracted) and says so.
    archive = ws / "datasets" / "fsd" / "archive"
    (archive / "stray.bin.part").write_bytes(b"x" * 1000)  # nothing wants it
    dry = run_cli(tmp_path, "clean", "--dry-run", "--workspace", str(ws))
    assert dry.code == 0 and "archive already extracted" in dry.out and "Would free" in dry.out
    assert list(archive.glob("FSD50K.dev_audio.z01"))
    done = run_cli(tmp_path, "clean", "--workspace", str(ws))
    assert done.code == 0 and "Freed" in done.out
    assert not list(archive.glob("FSD50K.dev_audio*")) and not (archive / "stray.bin.part").exists()
    assert list(archive.glob("FSD50K.eval_audio*")) == []  # never downloaded
    assert run_cli(tmp_path, "verify", "--workspace", str(ws)).code == 0
    # Now the eval half too: dev is not fetched again.
    faulty_server.reset_counters()
    both = run_cli(tmp_path, "download", "--all", "--workspace", str(ws))
    assert both.code == 0, both.err
    assert sorted(p.name for p in (ws / "datasets" / "fsd" / "eval").glob("*.wav")) == [
        "eval0.wav", "eval1.wav"]
    assert all(r.path.startswith("/FSD50K.eval") or r.path.startswith("/cdn")
               for r in faulty_server.requests)
    removed = run_cli(tmp_path, "remove", "fsd50k", "--yes", "--workspace", str(ws))
    assert removed.code == 0 and "Removed fsd50k" in removed.out
    assert not (ws / "datasets" / "fsd").exists()
    rows = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert rows[0]["status"] == "missing"
    assert run_cli(tmp_path, "remove", "fsd50k", "--workspace", str(ws)).code == 2  # no --yes


def test_open_features_checks_header_and_maps_read_only(tmp_path, faulty_server):
    import io

    from easy_oww.datasets import DatasetManager, NotDownloadedError, open_features

    array = np.arange(4 * 16 * 96, dtype=np.float16).reshape(4, 16, 96)
    buffer = io.BytesIO()
    np.save(buffer, array)
    data = buffer.getvalue()
    faulty_server.set_file("f.npy", data)
    ws = tmp_path / "ws"
    ws.mkdir()
    entry = {"url": faulty_server.url("f.npy"), "path": "feat/f.npy", "hash": sha256(data),
             "format": "npy", "shape": [4, 16, 96], "dtype": "float16"}
    write_catalog(ws / "datasets.toml", {"feat": {"priority": "critical", "files": [entry]}})
    manager = DatasetManager(workspace=ws)
    with pytest.raises(NotDownloadedError, match="easy-oww download --dataset feat"):
        open_features("feat", manager=manager)
    assert run_cli(tmp_path, "download", "--workspace", str(ws)).code == 0
    features = open_features("feat", manager=manager)
    assert features.shape == (4, 16, 96) and not features.flags.writeable
    assert np.array_equal(features, array)


def test_lying_npy_header_is_refused_and_marked_corrupt(tmp_path, faulty_server):
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.zeros((4, 16, 96), dtype=np.float16))
    data = buffer.getvalue()[:-96]  # the header promises more rows than the file holds
    faulty_server.set_file("f.npy", data)
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"feat": {"priority": "critical", "files": [
        {"url": faulty_server.url("f.npy"), "path": "feat/f.npy", "format": "npy"}]}})
    run = run_cli(tmp_path, "download", "--workspace", str(ws))
    assert run.code == 1 and "f.npy" in run.err and "Traceback" not in run.err
    rows = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert rows[0]["status"] == "corrupt"


def test_archive_escaping_its_folder_is_refused_end_to_end(tmp_path, faulty_server):
    import zipfile

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("good.txt", "fine")
        zf.writestr("../../escaped.txt", "gotcha")
    data = archive.read_bytes()
    faulty_server.set_file("evil.zip", data)
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"evil": {"priority": "critical", "files": [
        {"url": faulty_server.url("evil.zip"), "path": "evil/evil.zip"}],
        "unpack": [{"format": "zip", "into": "evil/out"}]}})
    run = run_cli(tmp_path, "download", "--workspace", str(ws))
    assert run.code == 1 and "../../escaped.txt" in run.err and "Traceback" not in run.err
    assert not list(tmp_path.rglob("escaped.txt"))
    rows = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert rows[0]["status"] != "cached"


def test_clean_spares_a_temp_folder_whose_extraction_holds_its_lock(tmp_path):
    import os

    from filelock import FileLock

    from easy_oww.archives.extract import temp_dir
    from easy_oww.datasets import DatasetManager
    from easy_oww.datasets.unpacking import extraction_lock
    from easy_oww.transfer.fetch import lock_path

    ws = tmp_path / "ws"
    into = ws / "datasets" / "fsd" / "dev"
    temp = temp_dir(into, "FSD50K.dev_audio.zip")
    temp.mkdir(parents=True)
    (temp / "member.tmp").write_bytes(b"x" * 5000)
    hour_ago = os.stat(temp).st_mtime - 3600  # idle for an hour: a slow member, a stalled drive
    for path in (temp / "member.tmp", temp):
        os.utime(path, (hour_ago, hour_ago))
    lock = extraction_lock(DatasetManager(workspace=ws).cache_dir / "locks", temp)
    with lock:  # what a running extraction holds
        busy = run_cli(tmp_path, "clean", "--dry-run", "--workspace", str(ws))
        assert busy.code == 0 and "orphan temporary folder" not in busy.out
        run_cli(tmp_path, "clean", "--workspace", str(ws))
        assert (temp / "member.tmp").exists()
    idle = run_cli(tmp_path, "clean", "--dry-run", "--workspace", str(ws))
    assert "orphan temporary folder" in idle.out
    # a sidecar's temp file left by a process killed mid-save goes too, unless in use
    stale = ws / "datasets" / "fsd" / ".x.zip.part.json.ab12cd34.tmp"
    stale.write_bytes(b"{")
    with FileLock(str(lock_path(ws / ".cache" / "locks", stale.parent / "x.zip"))):
        busy = run_cli(tmp_path, "clean", "--dry-run", "--workspace", str(ws))
        assert "temp file of an interrupted save" not in busy.out
    swept = run_cli(tmp_path, "clean", "--dry-run", "--workspace", str(ws))
    assert f"{stale} (1 B): temp file of an interrupted save" in swept.out
    assert run_cli(tmp_path, "clean", "--workspace", str(ws)).code == 0
    assert not temp.exists()
