"""`easy-oww freesound background`: the library's audio as the dataset freesound_background,
through the real CLI, on a library grown from the stand-in and its audio fetched at 16 kHz."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from easy_oww.datasets.manager import DatasetManager
from easy_oww.datasets.reading import iter_clips
from easy_oww.freesound import FreesoundLibrary, GrowOptions, grow
from easy_oww.trainer import license_short
from tests.freesound.conftest import KEY, run_cli

SAMPLES = 30


@pytest.fixture
def library(fs, env):
    """30 samples grown from the stand-in, their audio fetched by the real command as 16 kHz
    WAV (`freesound audio --sample-rate 16000`)."""
    grow(env["library"], KEY, GrowOptions(samples=SAMPLES), base_url=fs.base_url,
         per_minute=100000, backoff=0.001, handle_signals=False)
    fetched = run_cli(["freesound", "audio", "--sample-rate", "16000", "--quiet"])
    assert fetched.returncode == 0, fetched.stderr
    return env


def samples(env) -> dict[int, dict]:
    with FreesoundLibrary(env["library"]) as lib:
        return {sound_id: lib.get(sound_id) for sound_id in lib.stored_ids()}


def folder_of(env):
    return env["workspace"] / "datasets" / "freesound_background"


def attribution(env) -> list[dict]:
    with open(folder_of(env) / "ATTRIBUTION.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def wav_names(env) -> set[str]:
    return {p.name for p in folder_of(env).glob("*.wav")}


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def manifest(env) -> dict:
    path = env["workspace"] / ".cache" / "manifest.json"
    return json.loads(path.read_text())["datasets"].get("freesound_background", {})


def test_background_is_16k_mono_wavs_with_one_attribution_row_each(library):
    out = run_cli(["freesound", "background", "--json"])
    assert out.returncode == 0, out.stderr
    *files, summary = lines(out.stdout)
    stored = samples(library)
    assert summary["made"] == summary["files"] == SAMPLES and summary["complete"]
    assert {f["id"] for f in files} == set(stored)
    folder = folder_of(library)
    # flat: what openWakeWord's os.scandir sees is the WAVs and the attribution, nothing else
    assert sorted(e.name for e in os.scandir(folder)) == sorted(
        [f"{i}.wav" for i in stored] + ["ATTRIBUTION.csv"])
    for path in folder.glob("*.wav"):
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        data, rate = sf.read(path, dtype="int16")
        assert rate == 16000 and len(data) == info.frames > 0 and data.any()
    rows = attribution(library)
    assert list(rows[0]) == ["id", "name", "user", "license", "url", "file"]
    assert sorted(r["file"] for r in rows) == sorted(wav_names(library))
    for row in rows:
        sample = stored[int(row["id"])]
        assert row["file"] == f"{row['id']}.wav"
        assert (row["name"], row["user"], row["license"], row["url"]) == (
            sample["name"], sample["username"], sample["license"], sample["url"])
    # every file is in the manifest with its size and sha256
    recorded = manifest(library)["files"]
    assert len(recorded) == SAMPLES + 1
    for rel, record in recorded.items():
        path = library["workspace"] / "datasets" / rel
        assert record["size"] == path.stat().st_size
        import hashlib
        assert record["hash"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()

    again = run_cli(["freesound", "background", "--json"])
    assert again.returncode == 0, again.stderr
    assert lines(again.stdout)[-1] | {} == summary | {"made": 0, "kept": SAMPLES}


def test_license_filter_leaves_out_non_commercial_sounds_and_a_new_choice_converges(library):
    stored = samples(library)
    by_license: dict[str, set[int]] = {}
    for sound_id, sample in stored.items():
        by_license.setdefault(license_short(sample["license"]), set()).add(sound_id)
    assert by_license.get("by-nc") and by_license.get("cc0") and by_license.get("by")
    commercial = by_license["cc0"] | by_license["by"]

    out = run_cli(["freesound", "background", "--license", "cc0,by"])
    assert out.returncode == 0, out.stderr
    assert wav_names(library) == {f"{i}.wav" for i in commercial}
    assert {license_short(r["license"]) for r in attribution(library)} == {"cc0", "by"}
    left = {k: len(v) for k, v in by_license.items() if k not in ("cc0", "by")}
    assert "Left out by --license cc0,by: " in out.stdout
    for name, count in left.items():
        assert f"{count} {name}" in out.stdout

    everything = run_cli(["freesound", "background", "--json"])
    summary = lines(everything.stdout)[-1]
    assert (summary["made"], summary["kept"], summary["removed"]) == (
        SAMPLES - len(commercial), len(commercial), 0)
    assert wav_names(library) == {f"{i}.wav" for i in stored}

    only_cc0 = run_cli(["freesound", "background", "--license", "cc0", "--json"])
    summary = lines(only_cc0.stdout)[-1]
    assert (summary["made"], summary["removed"]) == (0, SAMPLES - len(by_license["cc0"]))
    assert wav_names(library) == {f"{i}.wav" for i in by_license["cc0"]}
    assert {r["file"] for r in attribution(library)} == wav_names(library)
    assert len(manifest(library)["files"]) == len(by_license["cc0"]) + 1  # + ATTRIBUTION.csv
    verify = run_cli(["verify", "freesound_background", "--json"])
    assert verify.returncode == 0 and len(json.loads(verify.stdout)) == len(by_license["cc0"]) + 1

    bad = run_cli(["freesound", "background", "--license", "cc0,nc"])
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("Error: --license 'nc': choose from")


def test_an_interrupted_run_resumes_making_only_what_is_missing(library):
    # Sync without sleeps: stdout is a one-page pipe the test stops reading, so the command
    # blocks on its JSON lines (about 250 bytes each) after at most ~20 files past the third.
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen([sys.executable, "-m", "easy_oww", "freesound", "background",
                             "--json"], stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    reader = os.fdopen(read_end, "r")
    first = [json.loads(reader.readline()) for _ in range(3)]
    assert all(f["error"] is None for f in first)
    proc.send_signal(signal.SIGINT)
    rest = reader.read()  # unblocks it; it stops at the next file at the latest
    reader.close()
    _, err = proc.communicate(timeout=60)
    assert all(json.loads(line)["error"] is None for line in rest.splitlines()
               if line.startswith("{\"id\""))
    assert proc.returncode == 130, err
    assert "run the same command again" in err.decode()
    recorded = {rel.rsplit("/", 1)[-1]: rec for rel, rec in manifest(library)["files"].items()
                if rel.endswith(".wav")}
    assert 3 <= len(recorded) < SAMPLES
    assert not manifest(library)["complete"]
    # what was made is attributed, and only that
    assert {r["file"] for r in attribution(library)} == set(recorded)
    status = json.loads(run_cli(["download", "--status", "--json", "--dataset",
                                 "freesound_background"]).stdout)[0]
    assert status["status"] == "partial"
    before = {name: (folder_of(library) / name).stat().st_mtime_ns for name in recorded}

    resumed = run_cli(["freesound", "background", "--json"])
    assert resumed.returncode == 0, resumed.stderr
    *made, summary = lines(resumed.stdout)
    assert (summary["made"], summary["kept"]) == (SAMPLES - len(recorded), len(recorded))
    assert {f"{f['id']}.wav" for f in made}.isdisjoint(recorded)  # nothing made twice
    assert {n: (folder_of(library) / n).stat().st_mtime_ns for n in recorded} == before
    assert len(wav_names(library)) == SAMPLES and manifest(library)["complete"]
    assert not list(folder_of(library).glob(".*"))  # no temp left behind
    assert {r["file"] for r in attribution(library)} == wav_names(library)


def test_download_status_verify_paths_and_iter_clips_know_the_dataset(library):
    not_yet = run_cli(["download", "--dataset", "freesound_background"])
    assert not_yet.returncode == 0, not_yet.stderr
    assert ("Note: freesound_background is made here, not downloaded: run "
            "`easy-oww freesound background`") in not_yet.stderr
    assert not folder_of(library).exists()  # download made nothing and fetched nothing
    row = json.loads(run_cli(["download", "--status", "--json"]).stdout)
    row = {r["key"]: r for r in row}["freesound_background"]
    assert (row["status"], row["size_bytes"]) == ("missing", None)

    assert run_cli(["freesound", "background", "--quiet"]).returncode == 0
    files = sorted(folder_of(library).iterdir())
    row = {r["key"]: r for r in json.loads(
        run_cli(["download", "--status", "--json"]).stdout)}["freesound_background"]
    assert row["status"] == "cached"
    assert row["size_bytes"] == row["done_bytes"] == sum(p.stat().st_size for p in files)
    assert row["path"] == str(folder_of(library))
    again = run_cli(["download", "--dataset", "freesound_background"])
    assert again.returncode == 0 and "made here" not in again.stderr  # made: nothing to say

    paths = json.loads(run_cli(["paths", "--json"]).stdout)
    assert paths["freesound_background"] == str(folder_of(library))
    verify = run_cli(["verify", "freesound_background", "--json"])
    assert verify.returncode == 0
    assert {r["path"] for r in json.loads(verify.stdout)} == {str(p) for p in files}

    clips = list(iter_clips("freesound_background", manager=DatasetManager(
        workspace=library["workspace"])))
    assert [p.name for p, _ in clips] == sorted(wav_names(library))
    for path, clip in clips:
        assert clip.dtype.name == "float32" and len(clip) == sf.info(path).frames

    # a changed byte is caught (the manifest's sha256, not only the size)
    victim = files[0] if files[0].suffix == ".wav" else files[1]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    broken = run_cli(["verify", "freesound_background", "--json"])
    assert broken.returncode == 1
    assert [r["problem"] for r in json.loads(broken.stdout) if not r["ok"]] == ["hash mismatch"]

    removed = run_cli(["remove", "freesound_background", "--yes"])
    assert removed.returncode == 0, removed.stderr
    assert not folder_of(library).exists()
    with FreesoundLibrary(library["library"]) as lib:  # the library's own audio is untouched
        assert len(lib.audio_files()) == SAMPLES
        assert all((library["library"] / a.path).is_file() for a in lib.audio_files())


def test_samples_without_audio_are_counted_and_previews_are_converted(fs, env):
    grow(env["library"], KEY, GrowOptions(samples=6), base_url=fs.base_url,
         per_minute=100000, backoff=0.001, handle_signals=False)
    # MP3 previews as served (no --sample-rate), and only for 4 of the 6 samples
    assert run_cli(["freesound", "audio", "--limit", "4", "--quiet"]).returncode == 0
    out = run_cli(["freesound", "background"])
    assert out.returncode == 0, out.stderr
    assert "2 stored samples have no audio yet: run `easy-oww freesound audio " \
           "--sample-rate 16000`, then this again." in out.stderr
    names = wav_names(env)
    assert len(names) == 4
    for name in names:
        info = sf.info(folder_of(env) / name)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        with FreesoundLibrary(env["library"]) as lib:
            assert lib.audio_of(int(name.split(".")[0])).path.endswith(".mp3")


def test_oww_config_puts_the_made_background_in_background_paths(library):
    assert run_cli(["freesound", "background", "--quiet"]).returncode == 0
    out = run_cli(["oww-config", "--json"])
    report = json.loads(out.stdout)
    assert report["config"]["background_paths"] == [str(folder_of(library))]
    assert report["config"]["background_paths_duplication_rate"] == [1]
    # nothing else is downloaded in this workspace: each missing piece is one line to run
    assert out.returncode == 1 and report["problems"] == [
        "rir_paths: mit_rir is missing; run `easy-oww download --dataset mit_rir`",
        "false_positive_validation_data_path: acav100m_val is missing; run `easy-oww download "
        "--dataset acav100m_val`",
        "feature_data_files: acav100m_train is missing; run `easy-oww download --dataset "
        "acav100m_train`",
    ]


def test_a_lost_library_file_fails_in_one_line_and_the_advice_mends_it(library):
    with FreesoundLibrary(library["library"]) as lib:
        lost = lib.audio_files()[4]
    (library["library"] / lost.path).unlink()
    out = run_cli(["freesound", "background"])
    assert out.returncode == 1
    assert (f"sound {lost.id}: {library['library'] / lost.path}: is missing or changed since "
            "it was fetched; run `easy-oww freesound audio --sample-rate 16000`") in out.stderr
    assert f"{lost.id}.wav" not in wav_names(library) and len(wav_names(library)) == SAMPLES - 1
    assert {r["file"] for r in attribution(library)} == wav_names(library)
    status = json.loads(run_cli(["download", "--status", "--json", "--dataset",
                                 "freesound_background"]).stdout)[0]
    assert status["status"] == "partial"

    assert run_cli(["freesound", "audio", "--sample-rate", "16000", "--quiet"]).returncode == 0
    mended = run_cli(["freesound", "background", "--json"])
    assert mended.returncode == 0, mended.stderr
    assert lines(mended.stdout)[-1]["made"] == 1
    assert len(wav_names(library)) == SAMPLES
    status = json.loads(run_cli(["download", "--status", "--json", "--dataset",
                                 "freesound_background"]).stdout)[0]
    assert status["status"] == "cached"



def test_the_users_own_rirs_and_features_make_the_missing_datasets_notes(library):
    assert run_cli(["freesound", "background", "--quiet"]).returncode == 0
    own = library["workspace"].parent / "own"
    (own / "rirs").mkdir(parents=True)
    sf.write(own / "rirs" / "room.wav", np.zeros(1600, np.int16), 16000, subtype="PCM_16")
    np.save(own / "val.npy", np.zeros((4, 96), np.float16))
    np.save(own / "feats.npy", np.zeros((4, 16, 96), np.float16))
    mine = own / "my_model.yml"
    mine.write_text(f"rir_paths: [{own / 'rirs'}]\nfalse_positive_validation_data_path: "
                    f"{own / 'val.npy'}\nfeature_data_files: {{mine: {own / 'feats.npy'}}}\n"
                    "batch_n_per_class: {mine: 10, positive: 5}\n")
    merged = run_cli(["oww-config", "--into", str(mine), "--json"])
    report = json.loads(merged.stdout)
    assert merged.returncode == 0 and report["problems"] == []
    assert report["notes"] == [
        "rir_paths: mit_rir is missing; run `easy-oww download --dataset mit_rir`",
        "false_positive_validation_data_path: acav100m_val is missing; run `easy-oww download "
        "--dataset acav100m_val`",
        "feature_data_files: acav100m_train is missing; run `easy-oww download --dataset "
        "acav100m_train`",
    ]
    assert report["config"]["background_paths"] == [str(folder_of(library))]
