"""`download --recipe microwakeword` end to end on the Hub stand-in: the built-in recipe and
its built-in unpack steps (AudioSet's and FMA's sources pinned to stand-in commits, as the
real entries pin theirs), every clip converted to 16 kHz mono 16-bit WAV, the manifest and
`paths` complete, and `mww-config` / `oww-config` naming what came out."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import numpy as np
import soundfile as sf

from tests.datasets.helpers import run_cli, write_catalog
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


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_the_microwakeword_recipe_end_to_end(tmp_path):
    # AudioSet's tars: FLAC, 48 kHz 24-bit stereo, named by YouTube id in a folder.
    tars = {f"data/bal_train0{i}.tar": _tar({
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
