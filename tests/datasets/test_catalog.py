"""The catalog parser, called directly: the README's format, every kind, every refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from easy_oww.datasets.catalog import Catalog, parse_file
from easy_oww.datasets.sources import HuggingFaceFile, HuggingFaceFolder, PlainUrl, ZenodoFile
from easy_oww.errors import BadInputError, CatalogError
from easy_oww.hashes import KnownHash

README_EXAMPLE = """
[datasets.my_noise]
name = "My noise clips"
description = "Background noise from my kitchen"
priority = "optional"          # critical | recommended | optional
[[datasets.my_noise.files]]
url = "https://example.org/noise/kitchen.wav"
path = "my_noise/kitchen.wav"  # relative to the datasets folder
size = 1234567                 # optional
hash = "sha256:{hex}"          # optional; "md5:<hex>" too; without one, sha256 is recorded
""".replace("{hex}", "ab" * 32)


def _write(tmp_path: Path, body: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def test_the_readme_example_parses_into_a_url_source(tmp_path):
    include, datasets = parse_file(_write(tmp_path, README_EXAMPLE))
    assert include is True
    (noise,) = datasets
    assert (noise.key, noise.name, noise.priority) == ("my_noise", "My noise clips", "optional")
    (entry,) = noise.files
    assert entry.source == PlainUrl("https://example.org/noise/kitchen.wav")
    assert entry.kind == "url" and not entry.lands_in_folder
    assert entry.size == 1234567 and entry.hash == KnownHash("sha256", "ab" * 32)
    assert noise.location == "my_noise/kitchen.wav"


def test_the_builtin_catalog_has_every_kind():
    catalog = Catalog.load()
    kinds = {key: {f.kind for f in d.files} for key, d in catalog.datasets.items()}
    assert kinds == {"acav100m_train": {"hf_file"}, "acav100m_val": {"hf_file"},
                     "mit_rir": {"hf_folder"}, "fsd50k": {"zenodo"},
                     "freesound_background": {"made"}, "audioset_balanced": {"hf_file"},
                     "audioset_balanced_09": {"hf_file"}, "fma_xs": {"hf_file"},
                     "fma_small": {"url"}, "microwakeword_negatives": {"hf_file"}}
    rir = catalog.get("mit_rir")
    assert rir.files[0].source == HuggingFaceFolder(
        repo="davidscripka/MIT_environmental_impulse_responses", folder="16khz")
    assert rir.files[0].lands_in_folder and rir.location == "mit_rir"
    first = catalog.get("fsd50k").files[0]
    assert first.source == ZenodoFile(record="4060432", key="FSD50K.dev_audio.z01")
    assert str(first.hash) == "md5:faa7cf4cc076fc34a44a479a5ed862a3"


def test_a_lone_hub_folder_lands_in_its_folder(tmp_path):
    _, (rir,) = parse_file(_write(tmp_path, """
[datasets.rir]
[[datasets.rir.files]]
hf_repo = "o/r"
hf_folder = "16khz"
hf_revision = "v1"
hf_repo_type = "models"
path = "rir"
"""))
    assert rir.files[0].source == HuggingFaceFolder(repo="o/r", folder="16khz", revision="v1",
                                                    repo_type="models")
    assert rir.location == "rir"  # the folder it fills (a single URL file's is the file)


def test_a_hub_file_entry_keeps_its_revision_and_lands_on_its_path(tmp_path):
    commit = "5a2fa42a1506470d275a47ff8e1fdac5b364e6ef"
    _, (tars,) = parse_file(_write(tmp_path, f"""
[datasets.tars]
[[datasets.tars.files]]
hf_repo = "agkphysics/AudioSet"
hf_file = "data/bal_train09.tar"
hf_revision = "{commit}"
hf_repo_type = "dataset"
path = "audioset/archive/bal_train09.tar"
"""))
    (entry,) = tars.files
    assert entry.source == HuggingFaceFile(repo="agkphysics/AudioSet",
                                           path="data/bal_train09.tar", revision=commit)
    assert entry.kind == "hf_file" and not entry.lands_in_folder and entry.source.pinned
    assert tars.location == "audioset/archive/bal_train09.tar"


def test_the_builtin_hub_sources_are_pinned_where_their_commit_is_known():
    catalog = Catalog.load()
    pinned = {key: {f.source.pinned for f in d.files} for key, d in catalog.datasets.items()
              if d.files[0].kind.startswith("hf_")}
    assert pinned == {"audioset_balanced": {True}, "audioset_balanced_09": {True},
                      "fma_xs": {True}, "acav100m_train": {False}, "acav100m_val": {False},
                      "mit_rir": {False}, "microwakeword_negatives": {False}}
    tars = catalog.get("audioset_balanced")
    assert [f.source.path for f in tars.files] == [f"data/bal_train{i:02d}.tar"
                                                   for i in range(10)]
    assert {f.source.revision for f in tars.files} == {
        "5a2fa42a1506470d275a47ff8e1fdac5b364e6ef"}
    assert {str(f.hash)[7:15] for f in tars.files if f.hash} == {"b35c094f", "9f99305d",
                                                                "9ab88550"}  # 00, 04, 09
    (lone,) = catalog.get("audioset_balanced_09").files
    assert lone.source == tars.files[9].source and lone.hash == tars.files[9].hash
    assert lone.path != tars.files[9].path  # its own copy: no two datasets share a path
    (fma_small,) = catalog.get("fma_small").files
    assert str(fma_small.hash) == "sha1:ade154f733639d52e35e32f5593efe5be76c6d70"
    negatives = catalog.get("microwakeword_negatives")
    assert sorted(f.source.path for f in negatives.files) == [
        "dinner_party.zip", "dinner_party_eval.zip", "no_speech.zip", "speech.zip"]
    acav = catalog.get("acav100m_train").files[0]  # the same file, size and hash as before
    assert (acav.source.repo, acav.source.path, acav.size) == (
        "davidscripka/openwakeword_features",
        "openwakeword_features_ACAV100M_2000_hrs_16bit.npy", 17280000128)
    assert [d.key for d in catalog.select()] == ["acav100m_train", "acav100m_val", "mit_rir"]


def test_a_lone_nested_hub_folder_lands_in_that_folder_not_its_parent(tmp_path):
    _, (rir,) = parse_file(_write(tmp_path, """
[datasets.rir]
[[datasets.rir.files]]
hf_repo = "o/r"
hf_folder = "16khz"
hf_repo_type = "dataset"
path = "rooms/rir"
"""))
    assert rir.location == "rooms/rir"
    assert rir.files[0].source.repo_type == "datasets"  # huggingface_hub's name, the URL's form


@pytest.mark.parametrize("keys, source", [
    ('url = "http://h/x"', PlainUrl("http://h/x")),
    ('hf_repo = "o/r"\nhf_folder = "f"', HuggingFaceFolder(repo="o/r", folder="f")),
    ('hf_repo = "o/r"\nhf_file = "data/a.tar"', HuggingFaceFile(repo="o/r", path="data/a.tar")),
    ('zenodo_record = 12\nzenodo_key = "a.zip"', ZenodoFile(record="12", key="a.zip")),
    ('zenodo_record = "12"\nzenodo_key = "a.zip"', ZenodoFile(record="12", key="a.zip")),
])
def test_an_explicit_kind_means_the_same_as_its_naming_key(tmp_path, keys, source):
    body = f'[datasets.x]\n[[datasets.x.files]]\npath = "x"\n{keys}\n'
    _, (implicit,) = parse_file(_write(tmp_path, body))
    explicit_body = body + f'kind = "{source.kind}"\n'
    _, (explicit,) = parse_file(_write(tmp_path, explicit_body, "explicit.toml"))
    assert implicit.files[0].source == explicit.files[0].source == source


def test_the_readme_error_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, '[datasets.my_noise]\nfiles = [{url = "http://h/x", path = "../../etc/x"}]',
           "bad.toml")
    with pytest.raises(CatalogError) as caught:
        parse_file(Path("bad.toml"))
    assert str(caught.value) == ("bad.toml: dataset 'my_noise', key 'files[0].path': "
                                 "'../../etc/x' escapes the datasets folder")


@pytest.mark.parametrize("file, key, needle", [
    # the cases the CLI test checks too, and the rest of the refusals, kind by kind
    ('{url = "http://h/x", path = "x", colour = "red"}', "files[0].colour", "unknown key"),
    ('{url = "http://h/x", path = "x", size = "big"}', "files[0].size", "must be int"),
    ('{url = "http://h/x", path = "x", size = -1}', "files[0].size", "must not be negative"),
    ('{url = "http://h/x", path = "x", hash = "sha256:xyz"}', "files[0].hash", "hex digits"),
    ('{url = "http://h/x", path = "x", format = "mp3"}', "files[0].format", "npy, wav"),
    ('{url = "http://h/x", path = "x", shape = [1, -2]}', "files[0].shape", "non-negative"),
    ('{url = "ftp://h/x", path = "x"}', "files[0].url", "is not an http(s) URL"),
    ('{url = 5, path = "x"}', "files[0].url", "must be str, got int"),
    ('{url = "http://h/x"}', "files[0].path", "missing"),
    ('{url = "http://h/x", path = "/etc/x"}', "files[0].path", "must be relative"),
    ('{url = "http://h/x", path = "a\\\\b"}', "files[0].path", "forward slashes"),
    ('{path = "x"}', "files[0]", "names no source; give exactly one source: url, hf_repo "
     "(+ hf_folder), hf_repo + hf_file, zenodo_record (+ zenodo_key) or made_by (an easy-oww "
     "command)"),
    ('{url = "http://h/x", zenodo_record = 1, zenodo_key = "k", path = "x"}', "files[0]",
     "names two sources ('url' and 'zenodo'); give exactly one source"),
    ('{kind = "url", hf_repo = "o/r", hf_folder = "f", path = "x"}', "files[0]",
     "names two sources ('url' and 'hf_folder')"),
    ('{kind = "ftp", path = "x"}', "files[0].kind", "'ftp' is not a source kind (known: url, "
     "hf_folder, hf_file, zenodo, made)"),
    ('{kind = "url", path = "x"}', "files[0].url", "missing"),
    ('{hf_repo = "o/r", path = "x"}', "files[0].hf_folder", "missing"),
    ('{kind = "hf_folder", hf_folder = "f", path = "x"}', "files[0].hf_repo", "missing"),
    ('{hf_file = "a.tar", path = "x"}', "files[0].hf_repo", "missing"),
    ('{hf_repo = "o/r", hf_file = "../a.tar", path = "x"}', "files[0].hf_file",
     "is not a file's path in the repository"),
    ('{hf_repo = "o/r", hf_file = "", path = "x"}', "files[0].hf_file", "is not a file's path"),
    ('{hf_repo = "o/r", hf_file = "a.tar", hf_folder = "f", path = "x"}', "files[0].hf_folder",
     "belongs to a 'hf_folder' source, and this entry is a 'hf_file' source"),
    ('{kind = "hf_folder", hf_repo = "o/r", hf_file = "a.tar", path = "x"}', "files[0]",
     "names two sources ('hf_folder' and 'hf_file')"),
    ('{zenodo_record = 1, path = "x"}', "files[0].zenodo_key", "missing"),
    ('{zenodo_record = true, zenodo_key = "k", path = "x"}', "files[0].zenodo_record",
     "must be int or str, got bool"),
    ('{url = "http://h/x", hf_revision = "v1", path = "x"}', "files[0].hf_revision",
     "belongs to a 'hf_folder' source, and this entry is a 'url' source"),
    ('"just a string"', "files[0]", "must be a table"),
])
def test_a_bad_file_entry_is_refused_in_one_line_naming_dataset_and_key(tmp_path, file, key,
                                                                          needle):
    bad = _write(tmp_path, f"[datasets.x]\nfiles = [{file}]\n")
    with pytest.raises(CatalogError) as caught:
        parse_file(bad)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{bad}: dataset 'x', key '{key}': ")
    assert needle in message


@pytest.mark.parametrize("body, needle", [
    ("[datasets.x\n", "not valid TOML"),
    ("colour = 1\n", "unknown top-level key 'colour'"),
    ("include_builtin = 1\n", "'include_builtin' must be true or false"),
    ("datasets = 3\n", "'datasets' must be a table"),
    ('[datasets.x]\npriority = "urgent"\nfiles = [{url = "http://h/x", path = "x"}]',
     "dataset 'x', key 'priority': must be one of critical, recommended, optional"),
    ('[datasets.x]\nname = "X"\n', "dataset 'x', key 'files': a dataset needs at least one"),
    ('[datasets.x]\nfiles = [{url = "http://h/a", path = "x"}, {url = "http://h/b", '
     'path = "x"}]', "key 'files': two files land on the same path"),
    ('[datasets."a b"]\nfiles = [{url = "http://h/a", path = "x"}]', "letters, digits"),
    ('[datasets.x]\nfiles = [{url = "http://h/a", path = "x"}]\nunpack = {format = "rar", '
     'into = "y"}', "key 'unpack[0].format': must be 'zip' or 'tar'"),
    ('[datasets.x]\nfiles = [{url = "http://h/a", path = "x"}]\nunpack = {format = "zip"}',
     "key 'unpack[0].into': missing"),
    ('[datasets.x]\nfiles = [{url = "http://h/a", path = "x"}]\nunpack = {format = "zip", '
     'into = "y", files = ["z"]}', "'z' is not the path of a dataset file"),
])
def test_a_bad_catalog_is_refused_in_one_line(tmp_path, body, needle):
    bad = _write(tmp_path, body)
    with pytest.raises(CatalogError) as caught:
        parse_file(bad)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{bad}: ") and needle in message


_UNPACK = '[datasets.x]\nfiles = [{url = "http://h/a", path = "x"}]\nunpack = {format = "zip", ' \
    'into = "y", '


@pytest.mark.parametrize("keys, needle", [
    ("sample_rate = 4000}", "key 'unpack[0].sample_rate': 4000 Hz: must be from 8000 to 48000"),
    ('sample_rate = "16k"}', "key 'unpack[0].sample_rate': must be int, got str"),
    ('flatten = "yes"}', "key 'unpack[0].flatten': must be bool, got str"),
    ('checksums = "../checksums"}', "key 'unpack[0].checksums': '../checksums': give the list"),
    ('checksums = "/fma/checksums"}', "key 'unpack[0].checksums': '/fma/checksums': give"),
    ('sample_rate = 16000, silent = [99134]}', "key 'unpack[0].silent': must be a list of"),
    ('sample_rate = 16000, silent = ["a/099134"]}', "key 'unpack[0].silent': must be a list"),
    ('silent = ["099134"]}', "key 'unpack[0].silent': only means something when audio is"),
])
def test_a_bad_conversion_key_is_refused_in_one_line(tmp_path, keys, needle):
    bad = _write(tmp_path, _UNPACK + keys)
    with pytest.raises(CatalogError) as caught:
        parse_file(bad)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{bad}: dataset 'x', ") and needle in message


def test_the_conversion_keys_parse(tmp_path):
    _, (dataset,) = parse_file(_write(tmp_path, _UNPACK + (
        'sample_rate = 16000, flatten = true, checksums = "fma_small/checksums", '
        'silent = ["099134", "108925"]}')))
    (spec,) = dataset.unpack
    assert (spec.sample_rate, spec.flatten, spec.checksums, spec.silent, spec.converts) == (
        16000, True, "fma_small/checksums", ("099134", "108925"), True)
    _, (plain,) = parse_file(_write(tmp_path, _UNPACK + "flatten = false}", "plain.toml"))
    (spec,) = plain.unpack
    assert (spec.sample_rate, spec.flatten, spec.checksums, spec.silent, spec.converts) == (
        None, False, None, (), False)


def test_a_missing_or_unreadable_catalog_is_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        parse_file(tmp_path / "nope.toml")
    garbage = tmp_path / "garbage.toml"
    garbage.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(BadInputError, match="cannot be read"):
        parse_file(garbage)


def test_layers_replace_whole_entries_and_include_builtin_false_stands_alone(tmp_path):
    mine = _write(tmp_path, """
[datasets.mit_rir]
priority = "critical"
[[datasets.mit_rir.files]]
url = "http://mirror.local/rir.zip"
path = "mit_rir/rir.zip"
""")
    catalog = Catalog.load(mine)
    assert set(catalog.datasets) == {"acav100m_train", "acav100m_val", "mit_rir", "fsd50k",
                                     "freesound_background", "audioset_balanced",
                                     "audioset_balanced_09", "fma_xs", "fma_small",
                                     "microwakeword_negatives"}
    rir = catalog.get("mit_rir")
    assert rir.files[0].source == PlainUrl("http://mirror.local/rir.zip")
    assert rir.source == str(mine) and rir.path is None  # replaced whole: no built-in "path"
    alone = _write(tmp_path, 'include_builtin = false\n[datasets.x]\nfiles = [{url = '
                   '"http://h/x", path = "x"}]\n', "alone.toml")
    assert set(Catalog.load(None, alone).datasets) == {"x"}
    with pytest.raises(BadInputError, match="unknown dataset 'nope'; known datasets: x"):
        Catalog.load(alone).get("nope")


def test_select_orders_by_priority_and_required(tmp_path):
    body = "include_builtin = false\n" + "".join(
        f'[datasets.{k}]\npriority = "{p}"\nfiles = [{{url = "http://h/{k}", path = "{k}"}}]\n'
        for k, p in (("c", "optional"), ("a", "recommended"), ("b", "critical")))
    catalog = Catalog.load(_write(tmp_path, body))
    assert [d.key for d in catalog.select()] == ["b", "a"]
    assert [d.key for d in catalog.select(all_=True)] == ["b", "a", "c"]
    assert [d.key for d in catalog.select(keys=["c", "a", "c"])] == ["c", "a"]
