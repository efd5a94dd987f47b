"""`download --all` through every source kind: Hub URLs, a Hub folder and single Hub files
on main and pinned to a commit main has left (HF_ENDPOINT, a token, paginated tree, signed
CDN redirects), a Zenodo record (ZENODO_ENDPOINT) and a plain URL with a sha1, all served by
loopback stand-ins that answer in the real shapes."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import zipfile

import numpy as np
import soundfile as sf

from easy_oww.datasets import DatasetManager, FSD50kDownloader, RIRDownloader
from tests.datasets.helpers import run_cli, sha256, write_catalog
from tests.servers.hub_standin import HubStandin
from tests.servers.zenodo_standin import ZenodoStandin

FEATURES = "davidscripka/openwakeword_features"
RIR = "davidscripka/MIT_environmental_impulse_responses"
RECORD = "4060432"
AUDIOSET = "agkphysics/AudioSet"
NEGATIVES = "kahrendt/microwakeword"


def _zip(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/data.npy", _npy((3, 40), "uint16"))
    return buffer.getvalue()


def _tar(name: str, seed: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        clip = _wav(0.1, 48000, seed)
        info = tarfile.TarInfo(f"{name}/clip.wav")
        info.size = len(clip)
        archive.addfile(info, io.BytesIO(clip))
    return buffer.getvalue()


def _recipe_sources(hub: HubStandin, zenodo: ZenodoStandin) -> dict[str, dict]:
    """The AudioSet, FMA and microWakeWord entries: microWakeWord's as built in (on main,
    hashed by the listing); AudioSet's and fma_xs pinned to a commit of the stand-in that
    main has since left (the real ones carry real hashes); fma_small a plain URL with a sha1."""
    for name in ("dinner_party", "dinner_party_eval", "no_speech", "speech"):
        hub.add_file(NEGATIVES, f"{name}.zip", _zip(name))
    tars = {f"data/bal_train{i:02d}.tar": _tar(f"bal_train{i:02d}", i) for i in (0, 9)}
    for name, data in tars.items():
        hub.add_file(AUDIOSET, name, data)
    audioset = hub.commit(AUDIOSET)
    for name in tars:  # main converted to Parquet: the tars gone from it
        hub.remove_file(AUDIOSET, name)
    hub.add_file(AUDIOSET, "data/bal_train/part-0.parquet", b"PAR1...PAR1")
    hub.add_file("mchl914/fma_xsmall", "fma_xs.zip", _zip("fma_small"))
    fma_xs = hub.commit("mchl914/fma_xsmall")
    fma_small = _zip("fma_small")
    zenodo.add_file(1, "fma_small.zip", fma_small)

    def tar(name: str, path: str) -> dict:
        return {"hf_repo": AUDIOSET, "hf_file": name, "hf_revision": audioset, "path": path}

    return {
        "audioset_balanced": {"priority": "optional", "path": "audioset", "files": [
            tar(name, f"audioset/archive/{name[5:]}") for name in tars]},
        "audioset_balanced_09": {"priority": "optional", "path": "audioset_09", "files": [
            tar("data/bal_train09.tar", "audioset_09/archive/bal_train09.tar")
            | {"hash": sha256(tars["data/bal_train09.tar"])}]},
        "fma_xs": {"priority": "optional", "path": "fma_xs", "files": [{
            "hf_repo": "mchl914/fma_xsmall", "hf_file": "fma_xs.zip", "hf_revision": fma_xs,
            "path": "fma_xs/archive/fma_xs.zip"}]},
        "fma_small": {"priority": "optional", "path": "fma_small", "files": [{
            "url": zenodo.download_url(1, "fma_small.zip"),
            "path": "fma_small/archive/fma_small.zip",
            "hash": "sha1:" + hashlib.sha1(fma_small).hexdigest()}]},
    }


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
        } | _recipe_sources(hub, zenodo), builtin=True)
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
        ("acav100m_train", "acav100m_val", "mit_rir", "fsd50k", "audioset_balanced",
         "audioset_balanced_09", "fma_xs", "fma_small", "microwakeword_negatives"), "cached") | {
        "freesound_background": "missing"}  # made here by `freesound background`, not fetched
    assert rows["mit_rir"]["size_bytes"] == sum(len(d) for d in rirs.values())  # cached listing
    assert run_cli(tmp_path, "verify", "--deep", "--workspace", str(ws)).code == 0
    datasets = ws / "datasets"
    rir_files = list(RIRDownloader(datasets_dir=datasets).get_rir_path().glob("*.wav"))
    assert sorted(p.name for p in rir_files) == [f"rir_{i:02d}.wav" for i in range(5)]
    sounds = FSD50kDownloader(datasets_dir=datasets).get_sounds_path()
    assert sorted(p.name for p in sounds.glob("*.wav")) == ["100.wav", "101.wav", "102.wav",
                                                             "103.wav"]
    assert (datasets / "audioset" / "archive" / "bal_train09.tar").read_bytes() == (
        datasets / "audioset_09" / "archive" / "bal_train09.tar").read_bytes()  # the commit's
    negatives = datasets / "microwakeword" / "negative_datasets"  # unpacked as built in
    assert sorted(p.name for p in negatives.iterdir() if not p.name.startswith(".")) == [
        "dinner_party", "dinner_party_eval", "no_speech", "speech"]
    assert (negatives / "speech" / "data.npy").read_bytes() == _npy((3, 40), "uint16")
    assert not list((datasets / "microwakeword" / "archive").glob("*.zip"))  # removed once out
    assert (datasets / "fsd50k" / "metadata" / "FSD50K.metadata" /
            "dev_clips_info_FSD50K.json").exists()
    assert not list((datasets / "fsd50k" / "archive").glob("FSD50K.*"))  # volumes removed
    manager = DatasetManager(datasets_dir=datasets)
    assert manager.acav100m.is_training_cached() and manager.rir.is_cached()
