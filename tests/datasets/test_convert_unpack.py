"""Audio archives converted on the way out (issue 11): AudioSet-style tars of 48 kHz/24-bit
FLAC and FMA-style bzip2 zips of MP3 with their own sha1 list, through the real `easy-oww
download` against a loopback server, and a resume after SIGKILL mid-conversion."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from easy_oww.archives.extract import ArchiveError, Owner, extract, journal_path, temp_dir
from easy_oww.audio import AudioConverter
from tests.datasets.helpers import REPO, flac_clip, run_cli, sha256, write_catalog

TONES = {"bal/a/--4gqARaEJE_0.000.flac": 440.0, "bal/a/-0BIyqJj9ZU_30.000.flac": 1000.0,
         "bal/b/-0DLPzsiXXE_30.000.flac": 2000.0, "bal/b/-0mOzPkwfnc_20.000.flac": 300.0}


def make_tar(path: Path, members: dict[str, bytes]) -> bytes:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path.read_bytes()


def dominant_hz(path: Path) -> float:
    data, rate = sf.read(path)
    spectrum = np.abs(np.fft.rfft(data))
    return float(np.argmax(spectrum) * rate / len(data))


def serve(server, name: str, data: bytes, path: str) -> dict:
    server.set_file(name, data)
    return {"url": server.url(name), "path": path, "hash": sha256(data)}


def test_a_tar_of_flac_unpacks_flat_into_16k_mono_16bit_wavs(tmp_path, faulty_server):
    members = {name: flac_clip(freq) for name, freq in TONES.items()}
    members["bal/README.txt"] = b"AudioSet balanced train, shard 09\n"
    tar = make_tar(tmp_path / "bal_train09.tar", members)
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"audioset": {
        "priority": "critical",
        "files": [serve(faulty_server, "bal_train09.tar", tar, "audioset/bal_train09.tar")],
        "unpack": [{"format": "tar", "into": "audioset/16k", "sample_rate": 16000,
                    "flatten": True}]}})
    run = run_cli(tmp_path, "download", "--workspace", str(ws))
    assert run.code == 0, run.err
    out = ws / "datasets" / "audioset" / "16k"
    wavs = {Path(name).stem + ".wav": freq for name, freq in TONES.items()}
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        [*wavs, "README.txt"])  # flat; the README is not audio and is kept as it is
    assert (out / "README.txt").read_bytes() == members["bal/README.txt"]
    for name, freq in wavs.items():
        info = sf.info(out / name)
        assert (info.samplerate, info.channels, info.subtype, info.frames) == (
            16000, 1, "PCM_16", 16000)
        assert abs(dominant_hz(out / name) - freq) <= 1.0  # the tone, not noise
        peak = np.abs(sf.read(out / name)[0]).max()
        assert 0.2 < peak < 0.3  # the downmix halves a one-sided tone of 0.5
    manifest = json.loads((ws / ".cache" / "manifest.json").read_text())
    entry = manifest["datasets"]["audioset"]
    for name in wavs:
        record = entry["files"][f"audioset/16k/{name}"]
        assert record["hash"] == sha256((out / name).read_bytes())
        assert record["settings"]["sample_rate"] == 16000
        assert record["settings"]["decoder"].startswith("libsndfile ")
    assert "settings" not in entry["files"]["audioset/16k/README.txt"]
    assert entry["metadata"]["sample_rate"] == 16000
    assert entry["files"]["audioset/bal_train09.tar"]["removed"]
    rows = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert rows[0]["status"] == "cached", rows[0]["problems"]
    assert run_cli(tmp_path, "paths", "--json", "--workspace", str(ws)).json() == {
        "audioset": str(out)}
    verify = run_cli(tmp_path, "verify", "--json", "--workspace", str(ws))
    assert verify.code == 0
    assert sorted(Path(r["path"]).name for r in verify.json()) == sorted([*wavs, "README.txt"])
    assert run_cli(tmp_path, "verify", "--deep", "--workspace", str(ws)).code == 0  # WAVs decode


def test_sample_rate_on_the_command_line_wins_over_the_catalogs(tmp_path, faulty_server):
    tar = make_tar(tmp_path / "clips.tar", {"c/x.flac": flac_clip(440.0)})
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"clips": {
        "priority": "critical", "files": [serve(faulty_server, "clips.tar", tar, "c/clips.tar")],
        "unpack": [{"format": "tar", "into": "c/wav", "sample_rate": 16000,
                    "strip_components": 1}]}})
    run = run_cli(tmp_path, "download", "--sample-rate", "22050", "--workspace", str(ws))
    assert run.code == 0, run.err
    info = sf.info(ws / "datasets" / "c" / "wav" / "x.wav")
    assert (info.samplerate, info.channels, info.frames) == (22050, 1, 22050)


def mp3_clip(freq: float, seconds: float = 1.0, rate: int = 44100) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    out = io.BytesIO()
    sf.write(out, np.stack([0.4 * np.sin(2 * np.pi * freq * t)] * 2, axis=1), rate,
             format="MP3")
    return out.getvalue()


def fma_zip(tmp_path: Path, tracks: dict[str, bytes], listed: dict[str, bytes] | None = None
            ) -> bytes:
    """An FMA-style zip made by Info-ZIP with bzip2 members: fma_small/<3 digits>/<id>.mp3, a
    README and a `checksums` list (sha1 of `listed`, by default the tracks themselves)."""
    root = tmp_path / "fma_src"
    folder = root / "fma_small"
    for name, data in tracks.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / "README.txt").write_text("fma_small: 8000 tracks of 30 s\n")
    lines = [f"{hashlib.sha1(data).hexdigest()}  {name}"
             for name, data in sorted((listed or tracks).items())]
    (folder / "checksums").write_text("\n".join(lines) + "\n")
    archive = tmp_path / "fma_small.zip"
    archive.unlink(missing_ok=True)
    subprocess.run(["zip", "-q", "-r", "-Z", "bzip2", str(archive), "fma_small"], cwd=root,
                   check=True)
    return archive.read_bytes()


def fma_workspace(tmp_path: Path, server, data: bytes, silent: list[str]) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    unpack = {"format": "zip", "into": "fma/16k", "sample_rate": 16000, "flatten": True,
              "checksums": "fma_small/checksums"}
    if silent:
        unpack["silent"] = silent
    write_catalog(ws / "datasets.toml", {"fma": {
        "priority": "critical", "files": [serve(server, "fma_small.zip", data,
                                                "fma/fma_small.zip")],
        "unpack": [unpack]}})
    return ws


FMA_TRACKS = {"000/000002.mp3": 330.0, "000/000005.mp3": 660.0, "001/001039.mp3": 880.0}


def test_a_bzip2_zip_of_mp3_checked_against_its_list_with_a_silent_track(tmp_path,
                                                                         faulty_server):
    tracks = {name: mp3_clip(freq) for name, freq in FMA_TRACKS.items()}
    tracks["099/099134.mp3"] = b""  # mdeff/fma#44: tracks with no audio
    ws = fma_workspace(tmp_path, faulty_server, fma_zip(tmp_path, tracks), ["099134"])
    run = run_cli(tmp_path, "download", "--workspace", str(ws))
    assert run.code == 0, run.err
    said = (run.out + run.err).splitlines()
    assert [line for line in said if "099134" in line] == [
        "fma: fma_small/099/099134.mp3: skipped, listed as silent (no audio): cannot be "
        "decoded (Format not recognised)"]
    out = ws / "datasets" / "fma" / "16k"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        ["000002.wav", "000005.wav", "001039.wav", "README.txt", "checksums"])
    for name, freq in FMA_TRACKS.items():
        wav = out / (Path(name).stem + ".wav")
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert abs(info.duration - 1.0) < 0.1  # MP3 adds a frame of padding at most
        assert abs(dominant_hz(wav) - freq) <= 2.0
    entry = json.loads((ws / ".cache" / "manifest.json").read_text())["datasets"]["fma"]
    assert entry["unreadable"]["fma/16k/099134.wav"]["member"] == "fma_small/099/099134.mp3"
    assert "fma/16k/099134.wav" not in entry["files"]
    rows = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert rows[0]["status"] == "cached", rows[0]["problems"]


def test_a_track_that_does_not_match_the_list_is_named_and_the_dataset_not_cached(
        tmp_path, faulty_server):
    tracks = {name: mp3_clip(freq) for name, freq in FMA_TRACKS.items()}
    listed = dict(tracks)
    tracks["000/000005.mp3"] = mp3_clip(661.0)  # wrong when the archive was made
    ws = fma_workspace(tmp_path, faulty_server, fma_zip(tmp_path, tracks, listed), [])
    run = run_cli(tmp_path, "download", "--workspace", str(ws))
    assert run.code != 0
    assert "Traceback" not in run.err
    lines = [line for line in (run.out + run.err).splitlines() if "000005" in line]
    assert len(lines) == 1
    assert ("fma_small/000/000005.mp3 in fma_small.zip does not match its sha1 in "
            "fma_small/checksums") in lines[0]
    assert not (ws / "datasets" / "fma" / "16k" / "000005.wav").exists()
    rows = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert rows[0]["status"] != "cached"


def test_an_undecodable_track_not_listed_as_silent_is_an_error_naming_it(tmp_path,
                                                                         faulty_server):
    tracks = {name: mp3_clip(freq) for name, freq in FMA_TRACKS.items()}
    tracks["108/108925.mp3"] = b"ID3 but nothing else"
    ws = fma_workspace(tmp_path, faulty_server, fma_zip(tmp_path, tracks), ["099134"])
    run = run_cli(tmp_path, "download", "--workspace", str(ws))
    assert run.code != 0
    assert "Traceback" not in run.err
    lines = [line for line in (run.out + run.err).splitlines() if "108925" in line]
    assert len(lines) == 1 and "fma_small/108/108925.mp3 in fma_small.zip: cannot be " \
        "decoded" in lines[0] and "list its name in the unpack's `silent`" in lines[0]
    rows = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert rows[0]["status"] != "cached"


def test_two_members_with_one_base_name_are_refused_when_flattened(tmp_path):
    tar = tmp_path / "two.tar"
    make_tar(tar, {"a/x.flac": flac_clip(440.0), "b/x.flac": flac_clip(880.0)})
    with pytest.raises(ArchiveError) as caught:
        extract(tar, tmp_path / "out", fmt="tar", transform=AudioConverter(16000),
                flatten=True)
    assert "a/x.flac and b/x.flac in two.tar would both be written to x.wav" in str(
        caught.value)
    # Not flattened, each keeps its folder.
    results = extract(tar, tmp_path / "kept", fmt="tar", transform=AudioConverter(16000))
    assert sorted(r.path.relative_to(tmp_path / "kept").as_posix() for r in results
                  if r.kind == "file") == ["a/x.wav", "b/x.wav"]


CHILD = """
import sys
from pathlib import Path
from easy_oww.archives.extract import extract
from easy_oww.audio import AudioConverter

seen = 0
def on_member(result):
    global seen
    seen += 1
    print(result.name, flush=True)
    if seen == int(sys.argv[3]):
        sys.stdin.readline()  # the parent kills us here, members still in flight

extract(Path(sys.argv[1]), Path(sys.argv[2]), fmt="tar", transform=AudioConverter(16000),
        flatten=True, on_member=on_member, workers=2)
"""


def test_a_resume_after_sigkill_mid_conversion_converts_only_what_is_missing(tmp_path):
    members = {f"bal/{i:03d}.flac": flac_clip(200.0 + 50 * i, seconds=2.0) for i in range(24)}
    tar = tmp_path / "bal_train00.tar"
    make_tar(tar, members)
    into = tmp_path / "16k"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tar), str(into), "5"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None
        journaled = [child.stdout.readline().strip() for _ in range(5)]
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert len(journal_path(into, tar.name).read_text().splitlines()) == 5
    before = {name: os.stat(into / (Path(name).stem + ".wav")).st_mtime_ns
              for name in journaled}
    results = extract(tar, into, fmt="tar", transform=AudioConverter(16000), flatten=True)
    assert sorted(r.name for r in results if r.skipped) == sorted(journaled)
    converted = [r for r in results if not r.skipped]
    assert len(converted) == 24 - 5
    for name, mtime in before.items():  # the five done before the kill were not written again
        assert os.stat(into / (Path(name).stem + ".wav")).st_mtime_ns == mtime
    for result in results:
        info = sf.info(result.path)
        assert (info.samplerate, info.channels, info.frames) == (16000, 1, 32000)
        assert hashlib.sha256(result.path.read_bytes()).hexdigest() == result.sha256
    assert not temp_dir(into, tar.name).exists()
    assert sorted(p.name for p in into.glob("*.wav")) == sorted(
        f"{i:03d}.wav" for i in range(24))


def test_a_member_that_would_replace_another_archives_file_is_refused_naming_both(tmp_path):
    first, second = tmp_path / "bal_train00.tar", tmp_path / "bal_train01.tar"
    make_tar(first, {"a/x.flac": flac_clip(440.0)})
    make_tar(second, {"b/y.flac": flac_clip(300.0), "b/x.flac": flac_clip(880.0)})
    into = tmp_path / "16k"
    (out,) = extract(first, into, fmt="tar", transform=AudioConverter(16000), flatten=True)
    before = (into / "x.wav").read_bytes()
    owned = {"x.wav": Owner("audioset/bal_train00.tar", out.sha256)}
    with pytest.raises(ArchiveError) as caught:
        extract(second, into, fmt="tar", transform=AudioConverter(16000), flatten=True,
                owned=owned)
    assert str(caught.value) == (
        "b/x.flac in bal_train01.tar would replace x.wav, unpacked from "
        "audioset/bal_train00.tar with other bytes; unpack the two archives into two folders")
    assert (into / "x.wav").read_bytes() == before  # the first archive's clip is intact
    assert round(dominant_hz(into / "x.wav")) == 440
    # The same bytes from another archive (a shared README, the same clip) are no conflict.
    again = tmp_path / "again.tar"
    make_tar(again, {"c/x.flac": flac_clip(440.0)})
    (same,) = extract(again, into, fmt="tar", transform=AudioConverter(16000), flatten=True,
                      owned=owned)
    assert same.sha256 == out.sha256


def test_two_tars_unpacked_into_one_folder_cannot_overwrite_each_other(tmp_path,
                                                                       faulty_server):
    readme = b"AudioSet balanced train\n"
    tars = {"bal_train00.tar": {"bal/a.flac": flac_clip(440.0), "bal/README.txt": readme},
            "bal_train01.tar": {"bal/b.flac": flac_clip(880.0), "bal/README.txt": readme,
                                "bal/a.flac": flac_clip(2000.0)}}
    files, unpack = [], []
    for name, members in tars.items():
        files.append(serve(faulty_server, name, make_tar(tmp_path / name, members),
                           f"audioset/{name}"))
        unpack.append({"format": "tar", "files": [f"audioset/{name}"], "into": "audioset/16k",
                       "sample_rate": 16000, "flatten": True})
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"audioset": {"priority": "critical", "files": files,
                                                      "unpack": unpack}})
    run = run_cli(tmp_path, "download", "--workspace", str(ws))
    assert run.code == 1 and "Traceback" not in run.err
    assert ("bal/a.flac in bal_train01.tar would replace a.wav, unpacked from "
            "audioset/bal_train00.tar with other bytes") in run.err
    out = ws / "datasets" / "audioset" / "16k"
    assert round(dominant_hz(out / "a.wav")) == 440  # the first tar's clip, not replaced
    manifest = json.loads((ws / ".cache" / "manifest.json").read_text())
    record = manifest["datasets"]["audioset"]["files"]["audioset/16k/a.wav"]
    assert record["source"] == "audioset/bal_train00.tar"
    assert record["hash"] == sha256((out / "a.wav").read_bytes())
