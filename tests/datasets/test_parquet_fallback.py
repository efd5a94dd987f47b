"""AudioSet's Parquet fallback as a user meets it, against the Hub stand-in: tars of FLAC
clips at a pinned commit, and on `main` (after the conversion, as agkphysics/AudioSet did) a
Parquet shard of the same kind of rows (`video_id`, `audio` {bytes, path}, `labels`,
`human_labels`) where the tars are gone. While the pinned tars answer, they are the route;
once the commit is gone (404), the catalog's fallback runs and says so in one line."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from easy_oww.datasets.catalog import parse_file
from easy_oww.errors import CatalogError
from tests.datasets.helpers import REPO, flac_clip, run_cli, sha256
from tests.servers.hub_standin import HubStandin

HUB_REPO = "agkphysics/AudioSet"
TOKEN = "hf_test"
SHARD = "data/bal_train/00.parquet"
# Clip ids as AudioSet names them (YouTube ids; some start with '-').
TAR_CLIPS = {"--4gqARaEJE": 440.0, "-0BIyqJj9ZU": 1000.0}
PARQUET_CLIPS = {"-0DLPzsiXXE": 2000.0, "-0mOzPkwfnc": 300.0, "0Zm8vWqXzcs": 700.0}


def tar_of(clips: dict[str, float]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for clip, freq in clips.items():
            data = flac_clip(freq, seconds=0.5)
            info = tarfile.TarInfo(f"bal_train/{clip}.flac")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def parquet_shard(clips: dict[str, float]) -> bytes:
    """A shard with the columns and types of main's data/bal_train/*.parquet."""
    table = pa.table({
        "video_id": pa.array(list(clips), pa.string()),
        "audio": pa.array([{"bytes": flac_clip(f, seconds=0.5), "path": f"{c}.flac"} for c, f in
                           clips.items()], pa.struct([("bytes", pa.binary()),
                                                      ("path", pa.string())])),
        "labels": pa.array([["/m/09x0r"]] * len(clips), pa.list_(pa.string())),
        "human_labels": pa.array([["Speech"]] * len(clips), pa.list_(pa.string())),
    })
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=2)  # more than one row group, as real shards
    return out.getvalue()


TARS = {"data/bal_train00.tar": tar_of(dict(list(TAR_CLIPS.items())[:1])),
        "data/bal_train01.tar": tar_of(dict(list(TAR_CLIPS.items())[1:]))}


@pytest.fixture
def hub():
    with HubStandin(page_size=2, require_token=TOKEN) as server:
        yield server


def converted(hub: HubStandin) -> str:
    """The tars at a commit, then main converted (tars gone, a Parquet shard in); returns
    the commit the catalog pins."""
    for name, data in TARS.items():
        hub.add_file(HUB_REPO, name, data)
    pinned = hub.commit(HUB_REPO)
    for name in TARS:
        hub.remove_file(HUB_REPO, name)
    hub.add_file(HUB_REPO, SHARD, parquet_shard(PARQUET_CLIPS))
    hub.add_file(HUB_REPO, "README.md", b"configs: balanced\n", lfs=False)
    return pinned


def write_catalog(ws: Path, pinned: str, *, fallback: bool = True, sized: bool = False) -> None:
    """The built-in audioset_balanced entry's shape, pinned to the stand-in's commit;
    `sized` gives each tar's size and hash, so no listing is read before the download."""
    lines = ["include_builtin = false", "", "[datasets.audioset]", 'priority = "optional"']
    for name, data in TARS.items():
        lines += ["[[datasets.audioset.files]]", f'hf_repo = "{HUB_REPO}"',
                  f'hf_file = "{name}"', f'hf_revision = "{pinned}"',
                  f'path = "audioset/archive/{name.rsplit("/", 1)[1]}"']
        if sized:
            lines += [f"size = {len(data)}", f'hash = "{sha256(data)}"']
    for name in TARS:
        lines += ["[[datasets.audioset.unpack]]", 'format = "tar"',
                  f'files = ["audioset/archive/{name.rsplit("/", 1)[1]}"]',
                  'into = "audioset/audioset_16k"', "sample_rate = 16000", "flatten = true"]
    if fallback:
        lines += ["[datasets.audioset.fallback]", f'hf_repo = "{HUB_REPO}"',
                  'hf_folder = "data/bal_train"', 'hf_revision = "main"',
                  'path = "audioset/parquet"', 'format = "parquet"', 'audio_column = "audio"',
                  'name_column = "video_id"']
    (ws / "datasets.toml").write_text("\n".join(lines) + "\n")


def download(tmp_path: Path, ws: Path, hub: HubStandin, **env: str):
    return run_cli(tmp_path, "download", "--dataset", "audioset", "--workspace", str(ws),
                   HF_ENDPOINT=hub.endpoint, HF_TOKEN=TOKEN, **env)


def assert_16k_wavs(folder: Path, names: set[str]) -> None:
    # (the tar route keeps its hidden resume journals beside the WAVs)
    visible = [p for p in folder.iterdir() if not p.name.startswith(".")]
    assert {p.name for p in visible} == {f"{n}.wav" for n in names}
    for path in visible:
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (
            16000, 1, "PCM_16", "WAV"), path.name
        assert info.frames == 8000  # 0.5 s at 16 kHz


def metadata(ws: Path) -> dict:
    return json.loads((ws / ".cache" / "manifest.json").read_text())["datasets"]["audioset"]


@pytest.fixture
def ws(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def test_while_the_pinned_tars_answer_they_are_the_route(tmp_path, ws, hub):
    pinned = converted(hub)
    write_catalog(ws, pinned)
    run = download(tmp_path, ws, hub)
    assert run.code == 0, run.err
    assert "Parquet route" not in run.out + run.err
    assert_16k_wavs(ws / "datasets" / "audioset" / "audioset_16k", set(TAR_CLIPS))
    assert metadata(ws)["metadata"]["route"] == "tars"
    assert hub.bytes_sent(HUB_REPO, SHARD) == 0
    assert not (ws / "datasets" / "audioset" / "parquet").exists()


@pytest.mark.parametrize("sized", [False, True], ids=["listed", "catalog-sized"])
def test_when_the_pinned_tars_answer_404_the_parquet_fallback_runs_and_says_so(
        tmp_path, ws, hub, sized):
    """`listed`: the listing at the pinned commit answers 404 before any download;
    `catalog-sized`: no listing is read, the tars' own /resolve/ answers 404."""
    pinned = converted(hub)
    hub.forget_commit(HUB_REPO, pinned)  # history squashed: the commit answers 404
    write_catalog(ws, pinned, sized=sized)
    run = download(tmp_path, ws, hub)
    assert run.code == 0, run.err
    said = [line for line in (run.out + run.err).splitlines() if "Parquet route" in line]
    assert said == [f"audioset: the pinned tars answer 404 at {pinned[:7]}; using the Parquet "
                    f"route ({HUB_REPO} main, data/bal_train/*.parquet)"]
    folder = ws / "datasets" / "audioset" / "audioset_16k"
    assert_16k_wavs(folder, set(PARQUET_CLIPS))
    entry = metadata(ws)
    assert entry["complete"] and entry["metadata"]["route"] == "parquet"
    assert entry["metadata"]["sample_rate"] == 16000
    for clip in PARQUET_CLIPS:  # each WAV recorded with its hash, from the shard it came from
        record = entry["files"][f"audioset/audioset_16k/{clip}.wav"]
        assert record["hash"] == sha256((folder / f"{clip}.wav").read_bytes())
        assert record["source"] == "audioset/parquet/00.parquet"
    shard = entry["files"]["audioset/parquet/00.parquet"]  # hashed by main's listing
    assert shard["hash"] == sha256(hub.file(HUB_REPO, SHARD).blob.data)
    assert shard["removed"] and not (ws / "datasets" / "audioset" / "parquet" / "00.parquet"
                                     ).exists()
    assert "README.md" not in json.dumps(entry["files"])  # only the shards are taken

    (row,) = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert row["status"] == "cached"
    paths = run_cli(tmp_path, "paths", "--json", "--workspace", str(ws)).json()
    assert paths["audioset"] == str(folder)
    verify = run_cli(tmp_path, "verify", "--json", "--workspace", str(ws))
    assert verify.code == 0, verify.out
    rows = verify.json()
    assert {Path(r["path"]).name for r in rows} >= {f"{c}.wav" for c in PARQUET_CLIPS}
    assert all(r["ok"] for r in rows)

    # Run again: the manifest says the fallback fetched it, so nothing is fetched or redone.
    hub.reset_counters()
    again = download(tmp_path, ws, hub)
    assert again.code == 0, again.err
    assert hub.bytes_sent(HUB_REPO, SHARD) == 0
    assert "Parquet route" not in again.out + again.err


def test_a_clip_lost_after_the_fallback_is_converted_again_alone(tmp_path, ws, hub):
    """Resumable per file: the WAVs still there are hashed, not converted again; the one
    missing is made again from a fresh copy of its shard."""
    pinned = converted(hub)
    hub.forget_commit(HUB_REPO, pinned)
    write_catalog(ws, pinned)
    assert download(tmp_path, ws, hub).code == 0
    folder = ws / "datasets" / "audioset" / "audioset_16k"
    kept = folder / "-0DLPzsiXXE.wav"
    before = kept.stat().st_mtime_ns
    (folder / "0Zm8vWqXzcs.wav").unlink()
    (row,) = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert row["status"] == "corrupt"
    run = download(tmp_path, ws, hub)
    assert run.code == 0, run.err
    assert_16k_wavs(folder, set(PARQUET_CLIPS))
    assert kept.stat().st_mtime_ns == before  # not rewritten
    (row,) = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert row["status"] == "cached"


def test_without_a_fallback_the_404_is_one_error_naming_the_file(tmp_path, ws, hub):
    pinned = converted(hub)
    hub.forget_commit(HUB_REPO, pinned)
    write_catalog(ws, pinned, fallback=False, sized=True)
    run = download(tmp_path, ws, hub)
    assert run.code == 1
    assert "Traceback" not in run.err and "Parquet" not in run.out + run.err
    errors = [line for line in run.err.splitlines() if "was not found (HTTP 404)" in line]
    assert len(errors) == 2  # one line per tar, each naming it
    assert any("data/bal_train00.tar" in line for line in errors)
    assert any("data/bal_train01.tar" in line for line in errors)
    assert hub.bytes_sent(HUB_REPO, SHARD) == 0


def test_without_pyarrow_the_parquet_route_names_the_extra_and_exits_1(tmp_path, ws, hub):
    # The environment, not the thing under test: a `pyarrow` that cannot be imported.
    shim = tmp_path / "shim" / "pyarrow"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named pyarrow')\n")
    pinned = converted(hub)
    hub.forget_commit(HUB_REPO, pinned)
    write_catalog(ws, pinned)
    run = download(tmp_path, ws, hub, PYTHONPATH=os.pathsep.join(
        [str(tmp_path / "shim"), str(REPO / "src"), str(REPO)]))
    assert run.code == 1
    assert "Traceback" not in run.err
    (line,) = [line for line in run.err.splitlines() if "easy-oww[parquet]" in line]
    assert line == ("Error: audioset: the Parquet route needs pyarrow, which is not installed; "
                    "run pip install 'easy-oww[parquet]' and download again")
    assert hub.bytes_sent(HUB_REPO, SHARD) == 0  # refused before a shard was fetched


@pytest.mark.parametrize(("lines", "problem"), [
    (['format = "csv"'], "key 'fallback.format': must be one of parquet"),
    (['format = "parquet"', 'audio_column = "audio"'], "key 'fallback.name_column': missing"),
    (['format = "parquet"', 'audio_column = "audio"', 'name_column = "video_id"',
      "max_files = 0"], "key 'fallback.max_files': must be at least 1"),
    (['format = "parquet"', 'audio_column = "audio"', 'name_column = "video_id"',
      'colour = "red"'], "key 'fallback.colour': unknown key"),
])
def test_a_bad_fallback_is_refused_in_one_line_naming_the_key(tmp_path, lines, problem):
    catalog = tmp_path / "c.toml"
    catalog.write_text("\n".join([
        "include_builtin = false", "[datasets.a]",
        "[[datasets.a.files]]", 'url = "http://example.invalid/a.tar"', 'path = "a/a.tar"',
        "[[datasets.a.unpack]]", 'format = "tar"', 'into = "a/out"', "sample_rate = 16000",
        "[datasets.a.fallback]", f'hf_repo = "{HUB_REPO}"', 'hf_folder = "data/bal_train"',
        'path = "a/parquet"', *lines]) + "\n")
    with pytest.raises(CatalogError) as caught:
        parse_file(catalog)
    assert problem in str(caught.value) and "\n" not in str(caught.value)
    assert "dataset 'a'" in str(caught.value)


def test_the_builtin_audioset_entries_carry_their_parquet_fallback():
    from easy_oww.datasets.catalog import Catalog

    catalog = Catalog.load()
    full, tenth = catalog.get("audioset_balanced"), catalog.get("audioset_balanced_09")
    assert full.fallback is not None and tenth.fallback is not None
    assert full.fallback.into == "audioset/audioset_16k"  # the folder the tars fill
    assert tenth.fallback.into == "audioset_09/audioset_16k"
    assert (full.fallback.max_files, tenth.fallback.max_files) == (None, 1)
    assert full.fallback.describe() == f"{HUB_REPO} main, data/bal_train/*.parquet"


@pytest.mark.parametrize("sized", [False, True], ids=["listed", "catalog-sized"])
def test_doctor_says_the_fallback_is_taken_and_does_not_block(tmp_path, ws, hub, sized):
    """A download that will succeed by its fallback route is not a problem for `doctor`: the
    404 is said, with the route taken, and the exit is 0."""
    pinned = converted(hub)
    hub.forget_commit(HUB_REPO, pinned)
    write_catalog(ws, pinned, sized=sized)
    run = run_cli(tmp_path, "doctor", "--dataset", "audioset", "--json", "--workspace", str(ws),
                  HF_ENDPOINT=hub.endpoint, HF_TOKEN=TOKEN)
    assert run.code == 0, run.out + run.err
    report = run.json()
    assert report["ok"] and report["blocking"] == [] and report["listing_errors"] == {}
    line = report["fallbacks"]["audioset"]
    assert line.startswith("audioset: its own files are not found (") and line.endswith(
        f"`download` takes its fallback route: {HUB_REPO} main, data/bal_train/*.parquet")
    without = ws / "datasets.toml"
    without.write_text(without.read_text().split("[datasets.audioset.fallback]")[0])
    blocked = run_cli(tmp_path, "doctor", "--dataset", "audioset", "--json", "--workspace",
                      str(ws), HF_ENDPOINT=hub.endpoint, HF_TOKEN=TOKEN)
    assert blocked.code == 1 and blocked.json()["fallbacks"] == {}


def test_tars_fetched_before_the_fallback_are_removed_once_it_has_finished(tmp_path, ws, hub):
    pinned = converted(hub)
    hub.set_fault(HUB_REPO, "data/bal_train01.tar", status=404)  # 00 answers, 01 is gone
    write_catalog(ws, pinned, sized=True)
    archive = ws / "datasets" / "audioset" / "archive"
    archive.mkdir(parents=True)  # an earlier run, cut short, left part of 01 to resume
    (archive / "bal_train01.tar.part").write_bytes(TARS["data/bal_train01.tar"][:4096])
    (archive / "bal_train01.tar.part.json").write_text(json.dumps(
        {"url": hub.resolve_url(HUB_REPO, "data/bal_train01.tar", revision=pinned),
         "written": [[0, 4096]]}))
    run = download(tmp_path, ws, hub)
    assert run.code == 0, run.err
    assert_16k_wavs(ws / "datasets" / "audioset" / "audioset_16k", set(PARQUET_CLIPS))
    assert hub.bytes_sent(HUB_REPO, "data/bal_train00.tar") == len(TARS["data/bal_train00.tar"])
    said = [line for line in run.out.splitlines() + run.err.splitlines() if "freed" in line]
    assert len(said) == 1 and said[0].startswith(
        "audioset: removed what the pinned route fetched before the Parquet route took over "
        "(1 file(s), 1 partial; ")
    assert list(archive.iterdir()) == []  # no tar, no part, no resume record
    entry = metadata(ws)
    assert entry["complete"] and not [rel for rel in entry["files"] if rel.endswith(".tar")]
    (row,) = run_cli(tmp_path, "download", "--status", "--json", "--workspace", str(ws)).json()
    assert row["status"] == "cached"


def test_keep_archives_keeps_the_tars_fetched_before_the_fallback(tmp_path, ws, hub):
    pinned = converted(hub)
    hub.set_fault(HUB_REPO, "data/bal_train01.tar", status=404)
    write_catalog(ws, pinned, sized=True)
    run = run_cli(tmp_path, "download", "--dataset", "audioset", "--keep-archives",
                  "--workspace", str(ws), HF_ENDPOINT=hub.endpoint, HF_TOKEN=TOKEN)
    assert run.code == 0, run.err
    tar = ws / "datasets" / "audioset" / "archive" / "bal_train00.tar"
    assert tar.read_bytes() == TARS["data/bal_train00.tar"]
    assert "took over" not in run.out + run.err

