"""`easy-oww demo`: the whole run in a subprocess, as a user starts it, and its Ctrl-C."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time
import zlib
from pathlib import Path

import psutil
import pytest
import soundfile as sf

from easy_oww.archives.splitzip import SplitZipReader
from easy_oww.demo import data
from easy_oww.demo.tour import prepare_workspace
from easy_oww.demo.zipwrite import write_split_zip
from tests.datasets.helpers import cli_cmd, cli_env

STEP_TITLES = [
    "make small datasets with the real shapes",
    "start the local servers",
    "download, interrupted part-way",
    "the same command again: it resumes",
    "verify",
    "download --status",
    "freesound grow",
    "freesound audio",
    "freesound visualize",
    "freesound background",
    "oww-config",
]


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "tmp").mkdir()
    # TMPDIR: the temporary workspace lands where the test can see it; HOME and the config
    # folder: anything written outside the workspace would show up there.
    return cli_env(tmp_path, TMPDIR=str(tmp_path / "tmp"))


def _workspace_of(output: str) -> Path:
    match = re.search(r"Workspace: (\S+)", output)
    assert match, output
    return Path(match.group(1))


def test_the_demo_runs_to_the_end_offline(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(cli_cmd("demo", "--keep"), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=180, env=_env(tmp_path),
                          cwd=tmp_path)
    elapsed = time.monotonic() - started
    out = done.stdout
    assert done.returncode == 0, out
    assert elapsed < 60, f"the demo took {elapsed:.1f} s"

    root = _workspace_of(out)
    assert root.parent == tmp_path / "tmp" and root.is_dir()
    titles = re.findall(r"^== Step (\d+) of (\d+): (.+) ==$", out, flags=re.M)
    assert [(int(n), int(of), title) for n, of, title in titles] == [
        (n, len(STEP_TITLES), title) for n, title in enumerate(STEP_TITLES, 1)]
    for command in ("download --all --sample-rate 16000", "verify", "download --status",
                    "freesound grow --samples 40", "freesound audio --sample-rate 16000",
                    "freesound visualize", "freesound background", "oww-config --output"):
        assert f"\n$ easy-oww {command}" in out

    # The interruption and the resume: the second run asked for the rest with a Range.
    stopped = re.search(r"Interrupted at ([\d.]+) MB of 12.3 MB \(exit 130", out)
    assert stopped and 1 < float(stopped.group(1)) < 12.3, out
    assert "Stopped. Partial downloads are kept" in out  # the download's own Ctrl-C line
    assert f"Interrupted at {stopped.group(1)} MB; resuming" in out
    resumed = re.search(r"asked for from byte ([\d,]+) on", out)
    assert resumed and int(resumed.group(1).replace(",", "")) > 1_000_000, out
    files = 2 + data.RIR_COUNT + data.DEV_CLIPS + data.EVAL_CLIPS  # the clips, not the volumes
    assert f"\n{files} ok, 0 failed.\n" in out
    assert "Stored 40 new samples" in out and "Fetched 40 audio files" in out

    # Every path of the closing summary exists.
    summary = out[out.index("== Done: where everything is =="):]
    listed = [Path(p) for p in re.findall(r"^ {2}.{20} (/\S+)$", summary, flags=re.M)]
    assert len(listed) == 12
    for path in listed:
        assert path.exists(), path
    datasets = root / "datasets"
    features = datasets / "acav100m" / "openwakeword_features_ACAV100M_2000_hrs_16bit.npy"
    assert features.stat().st_size == 12_288_128
    assert not list(datasets.rglob("*.part")) and not list(datasets.rglob("*.z01"))

    # The WAVs openWakeWord would read are 16 kHz mono: RIRs, FSD50K's clips (resampled from
    # 44.1 kHz on the way out of the split zip), the library's audio, the background folder.
    folders = [datasets / "mit_rir", datasets / "fsd50k" / "dev", datasets / "fsd50k" / "eval",
               root / "freesound_library" / "audio", datasets / "freesound_background"]
    for folder in folders:
        wavs = sorted(folder.glob("*.wav"))
        assert wavs, folder
        for wav in wavs:
            info = sf.info(str(wav))
            assert (info.samplerate, info.channels) == (16000, 1), wav

    page = (root / "freesound_map.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and len(page) > 10_000
    config = (root / "my_model.yml").read_text(encoding="utf-8")
    assert f"{datasets}/mit_rir" in config and str(features) in config
    assert f"{datasets}/fsd50k/dev" in config and f"{datasets}/freesound_background" in config
    # Nothing outside the workspace: no user config or state, no address but loopback.
    assert not (tmp_path / "home").exists() and not (tmp_path / "config").exists()
    hosts = set(re.findall(r"https?://([^/:\s]+)", out))
    assert hosts <= {"127.0.0.1", "freesound.org"}, hosts
    assert f"Kept: {root}" in out


@pytest.mark.parametrize("how", ["sigint-temporary", "sigterm-workspace"])
def test_ctrl_c_stops_the_demo_and_its_command(tmp_path: Path, how: str) -> None:
    chosen = tmp_path / "mine"
    args = ("demo",) if how == "sigint-temporary" else ("demo", "--workspace", str(chosen))
    proc = subprocess.Popen(cli_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=_env(tmp_path), cwd=tmp_path)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # until the download command itself has said its first line
        seen.append(line)
        if line.startswith("Downloading acav100m_train"):
            break
    root = _workspace_of("".join(seen))
    commands = psutil.Process(proc.pid).children(recursive=True)
    assert commands, "".join(seen)
    proc.send_signal(signal.SIGINT if how == "sigint-temporary" else signal.SIGTERM)
    rest = proc.stdout.read()
    code = proc.wait(timeout=60)

    # The demo's one line ends it; before it only the command's own progress, and never the
    # command's own "Stopped." / "Interrupted." (it was ended, not interrupted).
    *before, last = [line for line in rest.splitlines() if line.strip()]
    assert all(re.match(r"(Total: |\w+: \S+: done, )", line) for line in before), before
    if how == "sigint-temporary":
        assert code == 130
        assert last == f"Interrupted: the demo stopped and removed its workspace {root}."
        assert not root.exists() and not list((tmp_path / "tmp").iterdir())
    else:
        assert code == 143
        assert last == (f"Terminated: the demo stopped; its workspace {root} is kept (run the "
                        "same command again to start over there).")
        assert root == chosen and (root / "datasets.toml").exists()
    gone, alive = psutil.wait_procs(commands, timeout=10)
    assert not alive  # the running command was ended with the demo


def test_the_demo_refuses_a_folder_that_is_not_a_demo_workspace(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "datasets.toml").write_text("# my own catalog\n")
    done = subprocess.run(cli_cmd("demo", "--workspace", str(mine)), capture_output=True,
                          text=True, timeout=60, env=_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (f"Error: --workspace {mine} is not empty and not a demo's workspace; "
                           "the demo writes its own datasets.toml there: give a new or empty "
                           "folder\n")
    assert [p.name for p in mine.iterdir()] == ["datasets.toml"]
    assert (mine / "datasets.toml").read_text() == "# my own catalog\n"


def test_a_second_run_in_a_demo_workspace_replaces_only_the_demos_files(tmp_path: Path) -> None:
    root = tmp_path / "demo-here"
    first, temporary, again = prepare_workspace(root)
    assert (first, temporary, again) == (root, False, False)
    for name in ("datasets/mit_rir/h001.wav", "freesound_library/freesound_library.db",
                 ".demo/origin/x.npy", "my_model.yml", "datasets.toml"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("from the first run")
    (root / "notes.txt").write_text("mine")  # the user's: not the demo's to remove
    assert prepare_workspace(root) == (root, False, True)
    assert sorted(p.name for p in root.iterdir()) == [".easy-oww-demo", "notes.txt"]
    assert (root / "notes.txt").read_text() == "mine"


def _deflated_size(data: bytes) -> int:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return len(packer.compress(data) + packer.flush())


def test_a_split_zip_written_in_python_reads_back_like_zip_s(tmp_path: Path) -> None:
    volume_size = 64 * 1024
    first = "FSD50K.dev_audio/1.wav"
    # A first member that leaves 10 bytes in the first volume: too few for the next header,
    # which zip -s then moves whole to the second volume.
    room = volume_size - 10 - 4 - 30 - len(first)  # after the marker and the first header
    data = next(d for d in (random.Random(n).randbytes(n) for n in range(room - 64, room + 1))
                if _deflated_size(d) == room)
    rng = random.Random(7)
    members = [(first, data)] + [(f"FSD50K.dev_audio/{n}.wav", rng.randbytes(rng.randint(
        500, 40_000))) for n in range(2, 40)]
    volumes = write_split_zip(tmp_path / "FSD50K.dev_audio.zip", members, volume_size)
    assert [v.name for v in volumes[:2]] == ["FSD50K.dev_audio.z01", "FSD50K.dev_audio.z02"]
    assert volumes[-1].name == "FSD50K.dev_audio.zip" and len(volumes) > 5
    assert volumes[0].read_bytes()[:4] == b"PK\x07\x08"  # zip -s's spanning marker
    sizes = [v.stat().st_size for v in volumes]
    assert sizes[0] == volume_size - 10 and set(sizes[1:-1]) == {volume_size}
    with SplitZipReader(volumes) as archive:
        read = {m.name: archive.read(m) for m in archive.members()}
        starts = [(m.disk, m.header_offset) for m in archive.members()]
        for member in archive.members():  # no local header cut across two volumes
            assert member.header_offset + 30 + member.name_length <= sizes[member.disk]
    assert starts[:2] == [(0, 4), (1, 0)]
    assert read == dict(members)
    # Info-ZIP itself takes it: merged with `zip -s 0`, then tested by unzip.
    merged = tmp_path / "merged.zip"
    subprocess.run(["zip", "-q", "-s", "0", str(volumes[-1]), "--out", str(merged)], check=True)
    tested = subprocess.run(["unzip", "-tq", str(merged)], capture_output=True, text=True)
    assert tested.returncode == 0 and "No errors detected" in tested.stdout
