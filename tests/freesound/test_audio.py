"""`easy-oww freesound audio`: the stored samples' previews, through the real fetch engine,
from the stand-in's CDN paths on loopback."""

from __future__ import annotations

import hashlib
import io
import json
import signal
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from easy_oww.freesound import FreesoundLibrary, GrowOptions, grow
from easy_oww.freesound.audio import AudioOptions, fetch_audio
from tests.freesound.conftest import KEY, rest_of, run_cli


@pytest.fixture
def grown(fs, env):
    """A library of 30 samples grown from the stand-in."""
    grow(env["library"], KEY, GrowOptions(samples=30), base_url=fs.base_url,
         per_minute=100000, backoff=0.001, handle_signals=False)
    fs.reset_stats()
    return env


def preview_requests(fs) -> list[dict]:
    return [r for r in fs.request_log() if r["path"].startswith("/previews/")]


def audio_rows(env) -> dict[int, tuple]:
    with FreesoundLibrary(env["library"]) as lib:
        return {a.id: (a.path, a.bytes, a.sha256, a.quality, a.sample_rate)
                for a in lib.audio_files()}


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_audio_fetches_every_preview_once_and_records_it(fs, grown):
    out = run_cli(["freesound", "audio", "--json"])
    assert out.returncode == 0, out.stderr
    *files, summary = json_lines(out.stdout)
    with FreesoundLibrary(grown["library"]) as lib:
        stored = lib.stored_ids()
    assert {f["id"] for f in files} == stored and len(stored) == 30
    assert summary["fetched"] == summary["files"] == 30 and summary["failed"] == 0
    rows = audio_rows(grown)
    for sound_id, (path, size, sha, quality, rate) in rows.items():
        data = (grown["library"] / path).read_bytes()
        # the bytes are the server's, recorded with their own size and hash
        assert data == fs.preview_bytes(sound_id, "hq-mp3")
        assert (len(data), hashlib.sha256(data).hexdigest()) == (size, sha)
        assert (path, quality, rate) == (f"audio/{sound_id}.mp3", "hq-mp3", None)
        assert sf.info(grown["library"] / path).frames > 0
    # previews are public: the API key never went to the CDN paths
    assert all("Authorization" not in r["headers"] for r in preview_requests(fs))
    assert fs.stats["api"] == 0  # and they cost no API budget

    assert list((grown["library"] / "audio" / ".locks").iterdir()) == []  # none piling up
    fs.reset_stats()
    again = run_cli(["freesound", "audio", "--json"])
    assert again.returncode == 0, again.stderr
    assert json_lines(again.stdout)[-1]["fetched"] == 0
    assert preview_requests(fs) == []  # nothing asked twice
    status = json.loads(run_cli(["freesound", "status", "--json"]).stdout)
    assert (status["audio"], status["audio_bytes"]) == (30, sum(r[1] for r in rows.values()))


def test_sample_rate_converts_to_16k_mono_wav_and_replaces_previews(fs, grown):
    assert run_cli(["freesound", "audio", "--limit", "5"]).returncode == 0
    out = run_cli(["freesound", "audio", "--sample-rate", "16000", "--quiet"])
    assert out.returncode == 0, out.stderr
    rows = audio_rows(grown)
    assert len(rows) == 30
    audio_dir = grown["library"] / "audio"
    assert sorted(p.suffix for p in audio_dir.iterdir() if p.is_file()) == [".wav"] * 30
    for sound_id, (path, _size, sha, _quality, rate) in rows.items():
        info = sf.info(grown["library"] / path)
        assert (info.samplerate, info.channels, info.subtype, rate) == (16000, 1, "PCM_16",
                                                                         16000)
        source, source_rate = sf.read(io.BytesIO(fs.preview_bytes(sound_id)), dtype="float32")
        assert abs(info.frames - len(source) * 16000 / source_rate) <= 2
        assert hashlib.sha256((grown["library"] / path).read_bytes()).hexdigest() == sha
    # the five previews fetched first were converted, not fetched again
    gets = [r["path"] for r in preview_requests(fs) if r["method"] == "GET"]
    assert len(gets) == len(set(gets)) == 30


def test_interrupted_run_keeps_finished_files_and_resumes(fs, grown):
    fs.preview_delay = 0.3  # a slow CDN, so the signal lands mid-run
    proc = subprocess.Popen(
        [sys.executable, "-m", "easy_oww", "freesound", "audio", "--json", "--jobs", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    first = json.loads(proc.stdout.readline())
    proc.send_signal(signal.SIGINT)
    rest, err = rest_of(proc)
    assert proc.returncode == 130, err
    assert "Interrupted" in err and "Traceback" not in err
    lines = [first] + json_lines(rest)
    summary = lines[-1]
    assert summary["stopped"] == "interrupted" and 1 <= summary["files"] < 30
    assert set(audio_rows(grown)) == {line["id"] for line in lines[:-1]}
    fs.preview_delay = 0.0
    out = run_cli(["freesound", "audio", "--json"])
    assert out.returncode == 0, out.stderr
    assert json_lines(out.stdout)[-1]["files"] == 30
    for sound_id, (path, *_rest) in audio_rows(grown).items():
        assert (grown["library"] / path).read_bytes() == fs.preview_bytes(sound_id)
    assert not list((grown["library"] / "audio").glob("*.part*"))


def test_sigkill_mid_run_loses_nothing_recorded_and_the_rerun_is_exact(fs, grown):
    fs.preview_delay = 0.2
    proc = subprocess.Popen(
        [sys.executable, "-m", "easy_oww", "freesound", "audio", "--json", "--jobs", "3",
         "--sample-rate", "16000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    printed = [json.loads(proc.stdout.readline())["id"] for _ in range(4)]
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    recorded = audio_rows(grown)
    assert set(printed) <= set(recorded) and len(recorded) < 30  # a printed file is recorded
    fs.preview_delay = 0.0
    out = run_cli(["freesound", "audio", "--sample-rate", "16000", "--json"])
    assert out.returncode == 0, out.stderr
    fetched = {line["id"] for line in json_lines(out.stdout)[:-1]}
    assert fetched == set(audio_rows(grown)) - set(recorded)  # only what was not recorded
    assert run_cli(["freesound", "verify", "--deep"]).returncode == 0
    audio_dir = grown["library"] / "audio"
    assert sorted(p.suffix for p in audio_dir.iterdir() if p.is_file()) == [".wav"] * 30


def test_bad_previews_are_reported_and_the_rest_fetched(fs, grown):
    with FreesoundLibrary(grown["library"]) as lib:
        ids = sorted(lib.stored_ids())
        image = lib.get(ids[0])["images"]["waveform_m"]  # a real PNG, served with a 200
        with lib.transaction() as conn:
            conn.execute("UPDATE samples SET previews = json_object('preview-hq-mp3', ?) "
                         "WHERE id = ?", (image, ids[0]))
            conn.execute("UPDATE samples SET previews = NULL WHERE id = ?", (ids[2],))
    fs.delete_sound(ids[1])  # its preview now answers 404
    out = run_cli(["freesound", "audio"])
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert f"sound {ids[0]}: {ids[0]}.mp3 is not audio that decodes" in out.stderr
    assert (f"sound {ids[1]}: its preview is gone from Freesound (HTTP 404): marked "
            "deleted") in out.stderr
    assert f"sound {ids[2]}: no hq-mp3 preview URL in the library" in out.stderr
    assert "3 of 30 files failed" in out.stderr
    rows = audio_rows(grown)
    assert set(rows) == set(ids[3:])
    audio_dir = grown["library"] / "audio"
    assert not (audio_dir / f"{ids[0]}.mp3").exists()  # what is not audio is not kept
    with FreesoundLibrary(grown["library"]) as lib:
        assert sum("audio:" in p[-1] for p in lib.problems()) == 3
        assert lib.get(ids[1])["_deleted"] and not lib.get(ids[0])["_deleted"]
    fs.reset_stats()
    again = run_cli(["freesound", "audio", "--json"])  # the deleted sound is not asked again
    assert sorted(line["id"] for line in json_lines(again.stdout)[:-1]) == [ids[0], ids[2]]
    assert again.returncode == 1 and preview_requests(fs) == []


def test_offline_cdn_stops_at_once_with_one_line(fs, grown):
    with FreesoundLibrary(grown["library"]) as lib, lib.transaction() as conn:
        # every preview on a port nothing listens on
        conn.execute("UPDATE samples SET previews = json_object('preview-hq-mp3', "
                     "'http://127.0.0.1:9/previews/' || id || '.mp3')")
    out = run_cli(["freesound", "audio", "--jobs", "1"], timeout=60)
    assert out.returncode == 1
    assert "offline?" in out.stderr and "Traceback" not in out.stderr
    assert "1 of 30 files failed" in out.stderr  # stopped after the first, not 30 timeouts


def test_missing_or_changed_file_is_found_by_verify_and_fetched_again(fs, grown):
    assert run_cli(["freesound", "audio", "--quiet"]).returncode == 0
    rows = audio_rows(grown)
    gone, changed, flipped = sorted(rows)[:3]
    (grown["library"] / rows[gone][0]).unlink()
    with open(grown["library"] / rows[changed][0], "ab") as handle:
        handle.write(b"x")
    target = grown["library"] / rows[flipped][0]
    data = bytearray(target.read_bytes())
    data[-10] ^= 0xFF
    target.write_bytes(bytes(data))

    out = run_cli(["freesound", "verify"])
    assert out.returncode == 1
    assert f"audio of sound {gone} is missing" in out.stdout
    assert f"audio of sound {changed} (audio/{changed}.mp3) is" in out.stdout
    assert f"sound {flipped}" not in out.stdout  # same size: only --deep sees it
    deep = run_cli(["freesound", "verify", "--deep", "--json"])
    doc = json.loads(deep.stdout)
    assert deep.returncode == 1 and not doc["ok"]
    assert any(f"sound {flipped}" in p and "sha256" in p for p in doc["problems"])

    fs.reset_stats()
    out = run_cli(["freesound", "audio", "--json"])
    fetched = {line["id"] for line in json_lines(out.stdout)[:-1]}
    assert fetched == {gone, changed}  # size tells; a same-size change needs verify --deep
    assert (grown["library"] / rows[gone][0]).read_bytes() == fs.preview_bytes(gone)
    assert (grown["library"] / rows[changed][0]).read_bytes() == fs.preview_bytes(changed)


def test_file_in_place_without_record_is_fetched_again(fs, grown):
    """A crash between the rename and the commit, or a file made with other settings: its
    quality is unknown, so it is fetched again, never trusted."""
    with FreesoundLibrary(grown["library"]) as lib:
        assert fetch_audio(lib, AudioOptions(jobs=1, limit=5)).fetched == 5
        victim, other = sorted(lib.stored_ids())[4], sorted(lib.stored_ids())[5]
        lib.forget_audio(victim)
        path = grown["library"] / "audio" / f"{victim}.mp3"
        path.write_bytes(fs.preview_bytes(other, "lq-mp3"))  # decodes, but is not its hq
        audio_dir = grown["library"] / "audio"
        strays = [audio_dir / "999999.mp3",  # no such sample: left by a killed run
                  audio_dir / f".{other}.wav.x1y2z3.tmp"]  # a conversion cut off
        for stray in strays:
            stray.write_bytes(b"left over")
        again = fetch_audio(lib, AudioOptions(jobs=1))
        assert not any(stray.exists() for stray in strays)
        assert again.fetched == 26 and again.failed == []
        assert path.read_bytes() == fs.preview_bytes(victim, "hq-mp3")
        record = lib.audio_of(victim)
        assert (record.path, record.bytes) == (f"audio/{victim}.mp3", path.stat().st_size)


def test_a_second_audio_run_is_refused_with_75_and_grow_is_not(fs, grown):
    from easy_oww.freesound.audio import audio_lock

    with audio_lock(grown["library"]):  # what a running `freesound audio` holds
        out = run_cli(["freesound", "audio"])
        assert out.returncode == 75 and "Traceback" not in out.stderr
        assert "another `easy-oww freesound audio` is fetching into" in out.stderr
        grew = run_cli(["freesound", "grow", "--api-url", fs.base_url, "--samples", "5",
                        "--quiet"])
        assert grew.returncode == 0, grew.stderr  # growing goes on beside it
    assert audio_rows(grown) == {}


def test_bad_usage(fs, grown, tmp_path):
    out = run_cli(["freesound", "audio", "--quality", "flac"])
    assert out.returncode == 2 and "Traceback" not in out.stderr
    out = run_cli(["freesound", "audio", "--sample-rate", "100"])
    assert out.returncode == 2
    out = run_cli(["freesound", "audio", "--library", str(tmp_path / "none")])
    assert out.returncode == 1 and "grow one first" in out.stderr  # issue 7: exit 1, one line


def test_converted_audio_reads_back_as_training_clips(fs, grown):
    with FreesoundLibrary(grown["library"]) as lib:
        fetch_audio(lib, AudioOptions(sample_rate=16000, limit=3))
        files = lib.audio_files()
    assert len(files) == 3
    for audio in files:
        clip, rate = sf.read(grown["library"] / audio.path, dtype="float32")
        assert rate == 16000 and clip.ndim == 1 and np.abs(clip).max() > 0.1
