"""`easy-oww oww-config`: openWakeWord's training paths from what was really downloaded (a
loopback server, the real `download`), written as YAML, merged into a user's config, and
checked as openWakeWord's train.py will read them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from ruamel.yaml import YAML

from tests.datasets.helpers import sha256, write_catalog

# The keys of openWakeWord's documented example, examples/custom_model.yml in its repository,
# plus background_paths_duplication_rate, which openwakeword/train.py reads beside
# background_paths (one rate per folder).
EXAMPLE_KEYS = {
    "target_phrase", "total_length", "custom_negative_phrases", "n_samples", "n_samples_val",
    "tts_batch_size", "augmentation_batch_size", "piper_sample_generator_path", "output_dir",
    "rir_paths", "background_paths", "false_positive_validation_data_path",
    "augmentation_rounds", "feature_data_files", "batch_n_per_class", "model_type",
    "layer_size", "steps", "max_negative_weight", "target_accuracy", "target_recall",
    "target_false_positives_per_hour",
}
TRAINER_READS = EXAMPLE_KEYS | {"background_paths_duplication_rate"}
EXAMPLE_BATCH_KEYS = {"ACAV100M_sample", "adversarial_negative", "positive"}

# A user's config in the example's shape (abridged), with its comments.
USER_CONFIG = """\
## Configuration file to be used with `train.py` to create custom wake word/phrase models

# The target word/phrase to be detected by the model
target_phrase: "hey jarvis"

# The total number of positive samples to generate for training
n_samples: 10000  # trailing comment on a value

# The directories containing Room Impulse Response recordings
rir_paths:
  - "./my_rirs"  # recorded in my kitchen

# The directories containing background audio to mix with training data
background_paths:
  - "./my_noise"
background_paths_duplication_rate: [3]

false_positive_validation_data_path: "./fp_val_data.npy"

feature_data_files:
  "ACAV100M_sample": "./ACAV100M_sample.npy"

# Define the number of examples from each data file per batch.
batch_n_per_class:
  "ACAV100M_sample": 1024
  "adversarial_negative": 50
  "positive": 50

steps: 100000  # the maximum number of steps when training the model
"""


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("EASY_OWW_WORKSPACE", None)
    env["EASY_OWW_CONFIG_DIR"] = str(cwd / "config")
    return subprocess.run([sys.executable, "-m", "easy_oww", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=cwd)


def load(text: str) -> dict:
    return YAML(typ="safe").load(io.StringIO(text))


def wav(seconds: float = 0.25, rate: int = 16000, seed: int = 0) -> bytes:
    out = io.BytesIO()
    signal = np.random.default_rng(seed).standard_normal(int(rate * seconds)) * 0.1
    sf.write(out, signal, rate, subtype="PCM_16", format="WAV")
    return out.getvalue()


def npy(shape: tuple[int, ...]) -> bytes:
    out = io.BytesIO()
    np.save(out, np.zeros(shape, np.float16))
    return out.getvalue()


@pytest.fixture
def ws(tmp_path, faulty_server) -> Path:
    """A workspace with MIT RIR, both ACAV100M files and FSD50K (dev + eval, unpacked at
    16 kHz) downloaded by the real command from a loopback server; freesound_background not
    made."""
    blobs = {f"rir_{i}.wav": wav(seed=i) for i in range(3)}
    blobs["train.npy"] = npy((8, 16, 96))
    blobs["val.npy"] = npy((40, 96))
    for name, data in blobs.items():
        faulty_server.set_file(name, data)
    zips = {}
    for split in ("dev", "eval"):
        src = tmp_path / "src" / f"FSD50K.{split}_audio"
        src.mkdir(parents=True)
        for i in range(2):
            (src / f"{split}{i}.wav").write_bytes(wav(rate=44100, seed=10 + i))
        subprocess.run(["zip", "-q", "-r", f"{split}.zip", src.name], cwd=src.parent,
                       check=True)
        zips[split] = (tmp_path / "src" / f"{split}.zip").read_bytes()
        faulty_server.set_file(f"{split}.zip", zips[split])
    url = faulty_server.url
    workspace = tmp_path / "ws"
    workspace.mkdir()
    write_catalog(workspace / "datasets.toml", {
        "mit_rir": {"priority": "recommended", "path": "mit_rir", "files": [
            {"url": url(f"rir_{i}.wav"), "path": f"mit_rir/rir_{i}.wav", "format": "wav",
             "sample_rate": 16000, "hash": sha256(blobs[f"rir_{i}.wav"])} for i in range(3)]},
        "acav100m_train": {"priority": "critical", "files": [
            {"url": url("train.npy"), "path": "acav100m/openwakeword_features_ACAV100M_2000_"
             "hrs_16bit.npy", "format": "npy", "shape": [8, 16, 96], "dtype": "float16",
             "hash": sha256(blobs["train.npy"])}]},
        "acav100m_val": {"priority": "critical", "files": [
            {"url": url("val.npy"), "path": "acav100m/validation_set_features.npy",
             "format": "npy", "hash": sha256(blobs["val.npy"])}]},
        "fsd50k": {"priority": "optional", "path": "fsd50k", "files": [
            {"url": url(f"{split}.zip"), "path": f"fsd50k/archive/{split}.zip",
             "hash": sha256(zips[split])} for split in ("dev", "eval")], "unpack": [
            {"format": "zip", "files": [f"fsd50k/archive/{split}.zip"],
             "into": f"fsd50k/{split}", "strip_components": 1, "split": split, "audio": True}
            for split in ("dev", "eval")]},
    }, builtin=True)
    # The datasets served here (the other optional built-ins live on the real Hub), and the
    # one made here, as `--all` named them before AudioSet, FMA and microWakeWord's joined.
    chosen = [arg for key in ("mit_rir", "acav100m_train", "acav100m_val", "fsd50k",
                              "freesound_background") for arg in ("--dataset", key)]
    done = run(tmp_path, "download", *chosen, "--sample-rate", "16000", "--workspace",
               str(workspace))
    assert done.returncode == 0, done.stderr
    assert ("Note: freesound_background is made here, not downloaded: run "
            "`easy-oww freesound background`") in done.stderr
    return workspace


def test_the_yaml_has_openwakewords_keys_and_the_cached_paths(tmp_path, ws):
    datasets = ws / "datasets"
    out = run(tmp_path, "oww-config", "--output", "paths.yml", "--workspace", str(ws))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Wrote paths.yml: rir_paths (1), background_paths (2), "
                                 "false_positive_validation_data_path, feature_data_files (1).")
    assert "Note: freesound_background is not made" in out.stderr
    text = (tmp_path / "paths.yml").read_text()
    config = load(text)
    assert set(config) == {"rir_paths", "background_paths", "background_paths_duplication_rate",
                           "false_positive_validation_data_path", "feature_data_files"}
    assert set(config) <= TRAINER_READS
    assert config["rir_paths"] == [str(datasets / "mit_rir")]
    assert config["background_paths"] == [str(datasets / "fsd50k" / "dev"),
                                          str(datasets / "fsd50k" / "eval")]
    assert config["background_paths_duplication_rate"] == [1, 1]
    assert config["false_positive_validation_data_path"] == str(
        datasets / "acav100m" / "validation_set_features.npy")
    assert config["feature_data_files"] == {"ACAV100M_sample": str(
        datasets / "acav100m" / "openwakeword_features_ACAV100M_2000_hrs_16bit.npy")}
    assert set(config["feature_data_files"]) <= EXAMPLE_BATCH_KEYS  # names batch_n_per_class knows
    # What train.py does with them works: RIRs listed flat and all 16 kHz, background WAVs,
    # features memory-mapped.
    rirs = [e.path for folder in config["rir_paths"] for e in os.scandir(folder)]
    assert len(rirs) == 3 and all(sf.info(p).samplerate == 16000 for p in rirs)
    for folder in config["background_paths"]:
        clips = list(Path(folder).glob("*.wav"))
        assert len(clips) == 2 and all(sf.info(p).samplerate == 16000 for p in clips)
    assert np.load(config["feature_data_files"]["ACAV100M_sample"], mmap_mode="r").shape == (
        8, 16, 96)
    assert np.load(config["false_positive_validation_data_path"]).shape == (40, 96)

    printed = run(tmp_path, "oww-config", "--workspace", str(ws))
    assert printed.returncode == 0 and load(printed.stdout) == config
    as_json = run(tmp_path, "oww-config", "--json", "--workspace", str(ws))
    report = json.loads(as_json.stdout)
    assert (report["ok"], report["written"], report["config"], report["problems"]) == (
        True, None, config, [])
    assert load(report["yaml"]) == config
    again = run(tmp_path, "oww-config", "--output", "paths.yml", "--workspace", str(ws))
    assert again.returncode == 2
    assert again.stderr.strip() == ("Error: --output paths.yml exists; merge into it with "
                                    "--into paths.yml, or choose a new file")


def test_into_keeps_the_users_keys_values_and_comments(tmp_path, ws):
    datasets = ws / "datasets"
    for folder in ("my_rirs", "my_noise"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.wav").write_bytes(wav())
    user = tmp_path / "my_model.yml"
    user.write_text(USER_CONFIG)
    out = run(tmp_path, "oww-config", "--into", "my_model.yml", "--output", "merged.yml",
              "--workspace", str(ws))
    assert out.returncode == 0, out.stderr
    assert user.read_text() == USER_CONFIG  # --output given: the original stays as it was
    merged = (tmp_path / "merged.yml").read_text()
    for line in USER_CONFIG.splitlines():  # every comment, where it was
        if "#" in line:
            assert line.split("#", 1)[1] in merged, line
    config, original = load(merged), load(USER_CONFIG)
    assert list(config)[:len(original)] == list(original)  # the user's order first
    for key in set(original) - {"rir_paths", "background_paths",
                                "background_paths_duplication_rate",
                                "false_positive_validation_data_path", "feature_data_files"}:
        assert config[key] == original[key], key
    assert config["rir_paths"] == ["./my_rirs", str(datasets / "mit_rir")]
    assert config["background_paths"] == ["./my_noise", str(datasets / "fsd50k" / "dev"),
                                          str(datasets / "fsd50k" / "eval")]
    assert config["background_paths_duplication_rate"] == [3, 1, 1]  # the user's rate stays
    assert config["feature_data_files"] == {"ACAV100M_sample": str(
        datasets / "acav100m" / "openwakeword_features_ACAV100M_2000_hrs_16bit.npy")}
    assert config["false_positive_validation_data_path"] == str(
        datasets / "acav100m" / "validation_set_features.npy")
    assert set(config) <= TRAINER_READS

    # In place, twice: the second run changes nothing (easy-oww's entries are replaced, not
    # added again).
    assert run(tmp_path, "oww-config", "--into", "my_model.yml", "--workspace",
               str(ws)).returncode == 0
    assert user.read_text() == merged
    assert run(tmp_path, "oww-config", "--into", "my_model.yml", "--workspace",
               str(ws)).returncode == 0
    assert user.read_text() == merged

    (tmp_path / "broken.yml").write_text("rir_paths: [unclosed\n")
    bad = run(tmp_path, "oww-config", "--into", "broken.yml", "--workspace", str(ws))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.startswith("Error: --into broken.yml: not valid YAML at line 2")
    missing = run(tmp_path, "oww-config", "--into", "nope.yml", "--workspace", str(ws))
    assert (missing.returncode, missing.stderr) == (
        2, "Error: --into nope.yml: no such file; write a new one with --output instead\n")


def test_each_problem_the_trainer_would_trip_on_is_one_line_saying_what_to_run(tmp_path, ws):
    rir = ws / "datasets" / "mit_rir"
    (rir / "extra").mkdir()
    (rir / "x.wav.part").write_bytes(b"\0" * 10)
    (rir / "x.wav.part.json").write_text("{}")
    (rir / "README.txt").write_text("sidecar")
    (rir / "loud.wav").write_bytes(wav(rate=44100))
    (tmp_path / "mp3_only").mkdir()
    (tmp_path / "mp3_only" / "a.mp3").write_bytes(b"ID3")
    truncated = npy((10, 16, 96))
    (tmp_path / "mine.npy").write_bytes(truncated[:-100])
    (tmp_path / "cfg.yml").write_text(
        "background_paths: [./mp3_only]\nbackground_paths_duplication_rate: [1]\n"
        "feature_data_files: {mine: ./mine.npy}\n"
        "batch_n_per_class: {ACAV100M_sample: 1024, positive: 50, gone: 5}\n")
    val = ws / "datasets" / "acav100m" / "validation_set_features.npy"
    val.write_bytes(val.read_bytes()[:-64])  # a truncated download

    out = run(tmp_path, "oww-config", "--into", "cfg.yml", "--workspace", str(ws))
    assert out.returncode == 1
    problems = [line for line in out.stderr.splitlines() if line.startswith("Problem: ")]
    where = f"Problem: rir_paths: {rir}"
    assert problems == [
        "Problem: false_positive_validation_data_path: acav100m_val is corrupt; run "
        "`easy-oww download --dataset acav100m_val`",
        f"{where} holds sub-folders (extra), which openWakeWord lists flat and opens as audio; "
        "move them out of the folder",
        f"{where} holds partial downloads (x.wav.part, x.wav.part.json); run `easy-oww "
        "download --dataset mit_rir` to finish it, then `easy-oww clean`",
        f"{where} holds files that are not WAV (README.txt); move them out of the folder",
        f"{where} holds WAVs that are not 16 kHz (loud.wav (44100 Hz)); run `easy-oww verify "
        "mit_rir` and `easy-oww download --dataset mit_rir`",
        "Problem: background_paths: mp3_only holds no WAV files; put 16 kHz WAV files in it "
        "(openWakeWord reads *.wav only, not MP3)",
        f"Problem: feature_data_files.mine: mine.npy: size {len(truncated) - 100:,} bytes, "
        f"expected {len(truncated):,} for shape (10, 16, 96) float16 (header 128 + data "
        f"{len(truncated) - 128:,}): the file is truncated; replace it with a complete copy",
        "Problem: batch_n_per_class has no count for mine of feature_data_files; add one "
        "(openWakeWord's example: ACAV100M_sample: 1024)",
        "Problem: batch_n_per_class names gone, which feature_data_files does not; remove it "
        "or add its features file",
    ]
    assert out.stderr.splitlines()[-1] == (
        f"{len(problems)} problems would stop openWakeWord's training; fix them and run this "
        "again.")
    report = json.loads(run(tmp_path, "oww-config", "--into", "cfg.yml", "--json",
                            "--workspace", str(ws)).stdout)
    assert report["ok"] is False and report["problems"] == [p[len("Problem: "):]
                                                            for p in problems]


def test_the_remaining_checks_of_a_users_own_folders(tmp_path):
    from easy_oww.datasets.engine import DatasetEngine
    from easy_oww.trainer import check_config

    engine = DatasetEngine(workspace=tmp_path / "ws")
    (tmp_path / "empty").mkdir()
    (tmp_path / "noise").mkdir()
    (tmp_path / "noise" / "a.wav").write_bytes(wav())
    (tmp_path / "rirs").mkdir()
    (tmp_path / "rirs" / "a.wav").write_bytes(wav())
    assert check_config(engine, {
        "rir_paths": [str(tmp_path / "empty"), str(tmp_path / "absent"), str(tmp_path / "rirs")],
        "background_paths": [str(tmp_path / "noise"), str(tmp_path / "gone")],
        "background_paths_duplication_rate": [1],
    }) == [
        f"rir_paths: {tmp_path / 'empty'} holds no WAV files; put 16 kHz WAV impulse responses "
        "in it",
        f"rir_paths: {tmp_path / 'absent'} is not a folder; point rir_paths at a folder of "
        "16 kHz WAV files",
        f"background_paths: {tmp_path / 'gone'} is not a folder; remove it from "
        "background_paths or create it",
        "background_paths_duplication_rate has 1 value for 2 background_paths; give one per "
        "folder",
    ]
