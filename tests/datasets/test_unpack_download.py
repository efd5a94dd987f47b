"""A split-zip dataset (made by the real `zip -s`) downloaded, unpacked and verified end to end."""

from __future__ import annotations

import json
import subprocess

import numpy as np
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
    assert json.loads((ws / ".cache" / "manifest.json").read_text())
