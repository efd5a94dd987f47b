"""`download --all` through every source kind: Hub URLs and a Hub folder (HF_ENDPOINT, a
token, paginated tree, signed CDN redirects), and a Zenodo record (ZENODO_ENDPOINT), all
served by loopback stand-ins that answer in the real shapes."""

from __future__ import annotations

import io
import subprocess

import numpy as np
import soundfile as sf

from easy_oww.datasets import DatasetManager, FSD50kDownloader, RIRDownloader
from tests.datasets.helpers import run_cli, sha256, write_catalog
from tests.servers.hub_standin import HubStandin
from tests.servers.zenodo_standin import ZenodoStandin

FEATURES = "davidscripka/openwakeword_features"
RIR = "davidscripka/MIT_environmental_impulse_responses"
RECORD = "4060432"


def _wav(seconds: float, rate: int, seed: int) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(seed)
    sf.write(buffer, rng.standard_normal(int(seconds * rate)) * 0.1, rate, format="WAV",
             subtype="PCM_16")
    return buffer.getvalue()


def _npy(shape: tuple[int, ...], dtype: str) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ones(shape, dtype=dtype))
    return buffer.getvalue()


def _fsd50k_volumes(tmp_path) -> dict[str, bytes]:
    volumes: dict[str, bytes] = {}
    for split, n in (("dev", 4), ("eval", 2)):
        folder = tmp_path / "fsd" / f"FSD50K.{split}_audio"
        folder.mkdir(parents=True)
        for i in range(n):
            (folder / f"{100 + i}.wav").write_bytes(_wav(1.0, 44100, i))
        subprocess.run(["zip", "-q", "-r", "-s", "64k", f"FSD50K.{split}_audio.zip",
                        folder.name], cwd=folder.parent, check=True)
    meta = tmp_path / "fsd" / "FSD50K.metadata"
    meta.mkdir()
    (meta / "dev_clips_info_FSD50K.json").write_text('{"100": {"license": "CC0"}}')
    subprocess.run(["zip", "-q", "-r", "FSD50K.metadata.zip", meta.name], cwd=meta.parent,
                   check=True)
    for path in sorted((tmp_path / "fsd").glob("FSD50K.*.z*")):
        volumes[path.name] = path.read_bytes()
    return volumes


def test_download_all_through_hub_and_zenodo_standins(tmp_path):
    features = {"openwakeword_features_ACAV100M_2000_hrs_16bit.npy": _npy((8, 16, 96), "float16"),
                "validation_set_features.npy": _npy((20, 96), "float32")}
    rirs = {f"16khz/rir_{i:02d}.wav": _wav(0.2, 16000, 50 + i) for i in range(5)}
    volumes = _fsd50k_volumes(tmp_path)
    with HubStandin(page_size=2, require_token="hf_test") as hub, ZenodoStandin() as zenodo:
        for name, data in features.items():
            hub.add_file(FEATURES, name, data)
        for i, (name, data) in enumerate(rirs.items()):
            hub.add_file(RIR, name, data, lfs=i != 0)  # one plain git file: a blob-sha1 check
        for name, data in volumes.items():
            zenodo.add_file(RECORD, name, data)
        # The built-in entries, with the real files' sizes and hashes swapped for the small
        # copies (mit_rir is taken as built in: its list, sizes and hashes come from the Hub).
        ws = tmp_path / "ws"
        ws.mkdir()
        base = f"https://huggingface.co/datasets/{FEATURES}/resolve/main/"
        dev = [f"fsd50k/archive/{n}" for n in volumes if n.startswith("FSD50K.dev")]
        dev = sorted(dev, key=lambda p: (p.endswith(".zip"), p))
        evals = sorted([f"fsd50k/archive/{n}" for n in volumes if n.startswith("FSD50K.eval")],
                       key=lambda p: (p.endswith(".zip"), p))
        write_catalog(ws / "datasets.toml", {
            "acav100m_train": {"name": "ACAV100M Training", "priority": "critical", "files": [{
                "url": base + "openwakeword_features_ACAV100M_2000_hrs_16bit.npy",
                "path": "acav100m/openwakeword_features_ACAV100M_2000_hrs_16bit.npy",
                "size": len(features["openwakeword_features_ACAV100M_2000_hrs_16bit.npy"]),
                "hash": sha256(features["openwakeword_features_ACAV100M_2000_hrs_16bit.npy"]),
                "format": "npy", "shape": [8, 16, 96], "dtype": "float16"}]},
            "acav100m_val": {"name": "ACAV100M Validation", "priority": "critical", "files": [{
                "url": base + "validation_set_features.npy",
                "path": "acav100m/validation_set_features.npy", "format": "npy"}]},
            "fsd50k": {"name": "FSD50K", "priority": "optional", "path": "fsd50k", "files": [
                {"zenodo_record": int(RECORD), "zenodo_key": n, "path": f"fsd50k/archive/{n}"}
                for n in volumes], "unpack": [
                {"format": "zip", "files": dev, "into": "fsd50k/dev", "strip_components": 1,
                 "split": "dev", "audio": True},
                {"format": "zip", "files": evals, "into": "fsd50k/eval", "strip_components": 1,
                 "split": "eval", "audio": True},
                {"format": "zip", "files": ["fsd50k/archive/FSD50K.metadata.zip"],
                 "into": "fsd50k/metadata"}]},
        }, builtin=True)
        env = {"HF_ENDPOINT": hub.endpoint, "HF_TOKEN": "hf_test",
               "ZENODO_ENDPOINT": zenodo.endpoint}
        run = run_cli(tmp_path, "download", "--all", "--workspace", str(ws), **env)
        assert run.code == 0, run.err
        assert hub.cdn_saw_authorization == 0  # the token went to the Hub only
        assert "hf_test" not in (ws / ".cache" / "manifest.json").read_text()
    # Servers gone: status, verify and the seed's examples work offline from here.
    rows = {r["key"]: r for r in run_cli(tmp_path, "download", "--status", "--json",
                                         "--workspace", str(ws)).json()}
    assert {k: r["status"] for k, r in rows.items()} == dict.fromkeys(
        ("acav100m_train", "acav100m_val", "mit_rir", "fsd50k"), "cached") | {
        "freesound_background": "missing"}  # made here by `freesound background`, not fetched
    assert rows["mit_rir"]["size_bytes"] == sum(len(d) for d in rirs.values())  # cached listing
    assert run_cli(tmp_path, "verify", "--deep", "--workspace", str(ws)).code == 0
    datasets = ws / "datasets"
    rir_files = list(RIRDownloader(datasets_dir=datasets).get_rir_path().glob("*.wav"))
    assert sorted(p.name for p in rir_files) == [f"rir_{i:02d}.wav" for i in range(5)]
    sounds = FSD50kDownloader(datasets_dir=datasets).get_sounds_path()
    assert sorted(p.name for p in sounds.glob("*.wav")) == ["100.wav", "101.wav", "102.wav",
                                                             "103.wav"]
    assert (datasets / "fsd50k" / "metadata" / "FSD50K.metadata" /
            "dev_clips_info_FSD50K.json").exists()
    assert not list((datasets / "fsd50k" / "archive").glob("FSD50K.*"))  # volumes removed
    manager = DatasetManager(datasets_dir=datasets)
    assert manager.acav100m.is_training_cached() and manager.rir.is_cached()
