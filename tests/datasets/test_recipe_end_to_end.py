"""`download --recipe microwakeword` end to end on the Hub stand-in: the built-in recipe and
its built-in unpack steps (AudioSet's and FMA's sources pinned to stand-in commits, as the
real entries pin theirs), every clip converted to 16 kHz mono 16-bit WAV, the manifest and
`paths` complete, and `mww-config` / `oww-config` naming what came out."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import soundfile as sf

from tests.datasets.helpers import run_cli, tar_bytes, write_catalog
from tests.servers.hub_standin import HubStandin

AUDIOSET = "agkphysics/AudioSet"
RIR = "davidscripka/MIT_environmental_impulse_responses"
NEGATIVES = "kahrendt/microwakeword"
SETS = ("dinner_party", "dinner_party_eval", "no_speech", "speech")


def _audio(fmt: str, subtype: str, rate: int, channels: int, seed: int, seconds=0.25) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    sf.write(buffer, rng.standard_normal((int(rate * seconds), channels)) * 0.1, rate,
             format=fmt, subtype=subtype)
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_the_microwakeword_recipe_end_to_end(tmp_path):
    # AudioSet's tars: FLAC, 48 kHz 24-bit stereo, named by YouTube id in a folder.
    tars = {f"data/bal_train0{i}.tar": tar_bytes({
        f"audio/bal_train/id{i}{j}.flac": _audio("FLAC", "PCM_24", 48000, 2, 10 * i + j)
        for j in range(3)}) for i in range(2)}
    fma = _zip({f"fma_small/00{i}/00{i}00{j}.mp3": _audio("MP3", "MPEG_LAYER_III", 44100, 2, j)
                for i in range(2) for j in range(2)} | {"fma_small/README.txt": b"tracks"})
    negatives = {name: _zip({f"{name}/training/{name}_mmap/data.ninja": bytes(80)})
                 for name in SETS}
    with HubStandin() as hub:
        for i in range(3):
            hub.add_file(RIR, f"16khz/rir_{i}.wav", _audio("WAV", "PCM_16", 16000, 1, 100 + i))
        for name, data in tars.items():
            hub.add_file(AUDIOSET, name, data)
        audioset = hub.commit(AUDIOSET)
        for name in tars:  # main converted to Parquet since: the pinned commit still has them
            hub.remove_file(AUDIOSET, name)
        hub.add_file("mchl914/fma_xsmall", "fma_xs.zip", fma)
        fma_commit = hub.commit("mchl914/fma_xsmall")
        for name, data in negatives.items():
            hub.add_file(NEGATIVES, f"{name}.zip", data)
        ws = tmp_path / "ws"
        ws.mkdir()
        # The built-in entries with their sources pinned to the stand-in's commits and their
        # files hashed by its listing (the real hashes are of the real tars); the unpack steps
        # are the built-in ones: mit_rir and microwakeword_negatives are taken as built in.
        conv = {"sample_rate": 16000, "flatten": True}
        write_catalog(ws / "datasets.toml", {
            "audioset_balanced": {"priority": "optional", "files": [
                {"hf_repo": AUDIOSET, "hf_file": name, "hf_revision": audioset,
                 "path": f"audioset/archive/{name[5:]}"} for name in tars], "unpack": [
                {"format": "tar", "files": [f"audioset/archive/{name[5:]}"],
                 "into": "audioset/audioset_16k"} | conv for name in tars]},
            "fma_xs": {"priority": "optional", "files": [{
                "hf_repo": "mchl914/fma_xsmall", "hf_file": "fma_xs.zip",
                "hf_revision": fma_commit, "path": "fma_xs/archive/fma_xs.zip"}], "unpack": [
                {"format": "zip", "into": "fma_xs/fma_16k"} | conv]},
        }, builtin=True)
        run = run_cli(tmp_path, "download", "--recipe", "microwakeword", "--workspace", str(ws),
                      HF_ENDPOINT=hub.endpoint)
        assert run.code == 0, run.err
    assert "Next: `easy-oww mww-config` hands these folders to microWakeWord." in run.out
    # Offline from here: everything from the manifest.
    (recipe,) = [r for r in run_cli(tmp_path, "recipes", "--json", "--workspace",
                                    str(ws)).json() if r["key"] == "microwakeword"]
    assert recipe["cached"] == 4 and recipe["left_bytes"] == 0
    datasets = ws / "datasets"
    converted = {
        "audioset/audioset_16k": {f"id{i}{j}.wav" for i in range(2) for j in range(3)},
        "fma_xs/fma_16k": {f"00{i}00{j}.wav" for i in range(2) for j in range(2)}
        | {"README.txt"}}
    for folder, names in converted.items():
        assert {p.name for p in (datasets / folder).iterdir()
                if not p.name.startswith(".")} == names
        for wav in (datasets / folder).glob("*.wav"):
            info = sf.info(wav)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), wav
    assert not list(datasets.glob("*/archive/*.*"))  # the archives removed once out
    paths = run_cli(tmp_path, "paths", "--json", "--workspace", str(ws)).json()
    assert {k: paths[k] for k in ("mit_rir", "audioset_balanced", "fma_xs",
                                  "microwakeword_negatives")} == {
        "mit_rir": str(datasets / "mit_rir"),
        "audioset_balanced": str(datasets / "audioset" / "audioset_16k"),
        "fma_xs": str(datasets / "fma_xs" / "fma_16k"),
        "microwakeword_negatives": str(datasets / "microwakeword" / "negative_datasets")}
    manifest = json.loads((ws / ".cache" / "manifest.json").read_text())
    recorded = manifest["datasets"]["audioset_balanced"]["files"]
    for i in range(2):
        for j in range(3):
            record = recorded[f"audioset/audioset_16k/id{i}{j}.wav"]
            assert record["hash"].startswith("sha256:") and record["settings"][
                "sample_rate"] == 16000
    assert run_cli(tmp_path, "verify", "--deep", "--workspace", str(ws)).code == 0
    made = run_cli(tmp_path, "mww-config", "--json", "--workspace", str(ws))
    assert made.code == 0, made.err
    assert [f["features_dir"] for f in made.json()["features"]] == [
        str(datasets / "microwakeword" / "negative_datasets" / name)
        for name in ("speech", "dinner_party", "no_speech", "dinner_party_eval")]
    oww = run_cli(tmp_path, "oww-config", "--json", "--workspace", str(ws)).json()
    assert oww["config"]["background_paths"] == [str(datasets / "audioset" / "audioset_16k"),
                                                 str(datasets / "fma_xs" / "fma_16k")]
    assert oww["config"]["rir_paths"] == [str(datasets / "mit_rir")]


def _npy(shape: tuple[int, ...], dtype: str) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(shape, dtype=dtype))
    return buffer.getvalue()


def test_the_openwakeword_recipe_end_to_end(tmp_path):
    features = {"openwakeword_features_ACAV100M_2000_hrs_16bit.npy": _npy((8, 16, 96), "float16"),
                "validation_set_features.npy": _npy((20, 96), "float32")}
    tar = tar_bytes({f"audio/bal_train/yt{j}.flac": _audio("FLAC", "PCM_24", 48000, 2, j)
                for j in range(4)})
    fma = _zip({f"fma_small/000/00000{j}.mp3": _audio("MP3", "MPEG_LAYER_III", 44100, 2, j)
                for j in range(3)})
    with HubStandin() as hub:
        for name, data in features.items():
            hub.add_file("davidscripka/openwakeword_features", name, data)
        for i in range(2):
            hub.add_file(RIR, f"16khz/rir_{i}.wav", _audio("WAV", "PCM_16", 16000, 1, 200 + i))
        hub.add_file(AUDIOSET, "data/bal_train09.tar", tar)
        audioset = hub.commit(AUDIOSET)
        hub.add_file("mchl914/fma_xsmall", "fma_xs.zip", fma)
        fma_commit = hub.commit("mchl914/fma_xsmall")
        ws = tmp_path / "ws"
        ws.mkdir()
        conv = {"sample_rate": 16000, "flatten": True}
        # ACAV100M as built in but sized and hashed by the stand-in's listing (the real
        # entries carry the real files' size and hash); the rest pinned to its commits.
        write_catalog(ws / "datasets.toml", {
            "acav100m_train": {"priority": "critical", "files": [{
                "hf_repo": "davidscripka/openwakeword_features",
                "hf_file": "openwakeword_features_ACAV100M_2000_hrs_16bit.npy",
                "hf_revision": "main", "format": "npy",
                "path": "acav100m/openwakeword_features_ACAV100M_2000_hrs_16bit.npy"}]},
            "acav100m_val": {"priority": "critical", "files": [{
                "hf_repo": "davidscripka/openwakeword_features",
                "hf_file": "validation_set_features.npy", "hf_revision": "main",
                "format": "npy", "path": "acav100m/validation_set_features.npy"}]},
            "audioset_balanced_09": {"priority": "optional", "files": [{
                "hf_repo": AUDIOSET, "hf_file": "data/bal_train09.tar",
                "hf_revision": audioset, "path": "audioset_09/archive/bal_train09.tar"}],
                "unpack": [{"format": "tar", "into": "audioset_09/audioset_16k"} | conv]},
            "fma_xs": {"priority": "optional", "files": [{
                "hf_repo": "mchl914/fma_xsmall", "hf_file": "fma_xs.zip",
                "hf_revision": fma_commit, "path": "fma_xs/archive/fma_xs.zip"}],
                "unpack": [{"format": "zip", "into": "fma_xs/fma_16k"} | conv]},
        }, builtin=True)
        run = run_cli(tmp_path, "download", "--recipe", "openwakeword", "--workspace", str(ws),
                      HF_ENDPOINT=hub.endpoint)
        assert run.code == 0, run.err
    assert "Next: `easy-oww oww-config` hands these folders to openWakeWord." in run.out
    datasets = ws / "datasets"
    for folder, count in (("audioset_09/audioset_16k", 4), ("fma_xs/fma_16k", 3)):
        wavs = sorted((datasets / folder).glob("*.wav"))
        assert len(wavs) == count
        assert {(sf.info(w).samplerate, sf.info(w).channels) for w in wavs} == {(16000, 1)}
    made = run_cli(tmp_path, "oww-config", "--json", "--workspace", str(ws))
    assert made.code == 0, made.err  # every key the trainer needs, each path checked
    config = made.json()["config"]
    assert config["background_paths"] == [str(datasets / "audioset_09" / "audioset_16k"),
                                          str(datasets / "fma_xs" / "fma_16k")]
    assert config["rir_paths"] == [str(datasets / "mit_rir")]
    assert config["feature_data_files"] == {"ACAV100M_sample": str(
        datasets / "acav100m" / "openwakeword_features_ACAV100M_2000_hrs_16bit.npy")}
