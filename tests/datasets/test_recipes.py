"""Recipes: `easy-oww recipes`, `download --recipe` and `mww-config`, end to end on loopback."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from tests.datasets.helpers import run_cli, sha256, write_catalog

MWW_SETS = ("speech", "dinner_party", "no_speech", "dinner_party_eval")


def _catalog(ws: Path, server, recipes: str, **extra: dict) -> Path:
    datasets = {}
    for key, size in (("alpha", 3000), ("beta", 5000), ("gamma", 7000)):
        data = bytes([len(key)]) * size
        server.set_file(f"{key}.bin", data)
        datasets[key] = {"priority": "optional", "files": [
            {"url": server.url(f"{key}.bin"), "path": f"{key}/{key}.bin", "size": size,
             "hash": sha256(data)}]}
    datasets.update(extra)
    path = write_catalog(ws / "datasets.toml", datasets)
    path.write_text(path.read_text() + "\n" + recipes)
    return path


RECIPE = """
[recipes.small]
name = "Small"
description = "alpha and beta"
datasets = ["alpha", "beta"]
then = "easy-oww oww-config"
"""


def test_recipes_lists_sizes_and_cache_state_and_download_fetches_only_its_datasets(
        tmp_path, faulty_server):
    ws = tmp_path / "ws"
    ws.mkdir()
    _catalog(ws, faulty_server, RECIPE)
    listed = run_cli(tmp_path, "recipes", "--workspace", str(ws))
    assert listed.code == 0, listed.err
    assert "small: alpha and beta" in listed.out
    assert "  8.0 kB in 2 datasets; 0 cached, 8.0 kB left to fetch" in listed.out
    assert "    alpha      3.0 kB  missing" in listed.out
    assert "download: easy-oww download --recipe small; then: easy-oww oww-config" in listed.out

    run = run_cli(tmp_path, "download", "--recipe", "small", "--workspace", str(ws))
    assert run.code == 0, run.err
    assert "Next: `easy-oww oww-config` hands these folders to Small." in run.out
    assert (ws / "datasets" / "alpha" / "alpha.bin").stat().st_size == 3000
    assert (ws / "datasets" / "beta" / "beta.bin").stat().st_size == 5000
    assert not (ws / "datasets" / "gamma").exists()  # not in the recipe

    (small,) = run_cli(tmp_path, "recipes", "--json", "--workspace", str(ws)).json()
    assert small["cached"] == 2 and small["left_bytes"] == 0 and small["size_bytes"] == 8000
    assert [(d["key"], d["status"]) for d in small["datasets"]] == [
        ("alpha", "cached"), ("beta", "cached")]
    status = run_cli(tmp_path, "download", "--status", "--json", "--recipe", "small",
                     "--workspace", str(ws)).json()
    assert [row["key"] for row in status] == ["alpha", "beta"]


def test_a_partly_fetched_recipe_counts_what_is_left(tmp_path, faulty_server):
    ws = tmp_path / "ws"
    ws.mkdir()
    _catalog(ws, faulty_server, RECIPE)
    assert run_cli(tmp_path, "download", "--dataset", "beta", "--workspace", str(ws)).code == 0
    (small,) = run_cli(tmp_path, "recipes", "--json", "--workspace", str(ws)).json()
    assert small["cached"] == 1 and small["left_bytes"] == 3000


def test_bad_recipes_are_one_line_errors(tmp_path, faulty_server):
    ws = tmp_path / "ws"
    ws.mkdir()
    catalog = _catalog(ws, faulty_server, """
[recipes.broken]
datasets = ["alpha", "nowhere"]
""")
    run = run_cli(tmp_path, "recipes", "--workspace", str(ws))
    assert run.code == 2
    assert run.err.strip() == (f"Error: {catalog}: recipe 'broken' names dataset 'nowhere', "
                               "which no loaded catalog has")
    _catalog(ws, faulty_server, RECIPE)
    unknown = run_cli(tmp_path, "download", "--recipe", "big", "--workspace", str(ws))
    assert unknown.code == 2
    assert unknown.err.strip() == ("Error: unknown recipe 'big'; known recipes: small "
                                   "(`easy-oww recipes` lists them)")
    both = run_cli(tmp_path, "download", "--recipe", "small", "--dataset", "alpha",
                   "--workspace", str(ws))
    assert both.code == 2 and "choose one of --required-only, --all, --dataset and --recipe" \
        in both.err and "Traceback" not in both.err
    empty = _catalog(ws, faulty_server, "[recipes.none]\ndatasets = []\n")
    run = run_cli(tmp_path, "recipes", "--workspace", str(ws))
    assert run.code == 2 and run.err.strip() == (
        f"Error: {empty}: recipe 'none', key 'datasets': a recipe names at least one dataset "
        "key, as a list of strings")


def test_the_builtin_recipes_name_builtin_datasets(tmp_path):
    listed = run_cli(tmp_path, "recipes", "--json", "--workspace", str(tmp_path / "ws")).json()
    keys = {r["key"]: [d["key"] for d in r["datasets"]] for r in listed}
    assert set(keys) == {"openwakeword", "microwakeword"}
    assert {"acav100m_train", "acav100m_val", "mit_rir"} <= set(keys["openwakeword"])
    assert "mit_rir" in keys["microwakeword"]


def _negatives_zip() -> bytes:
    """The four sets as microWakeWord's zips unpack: <set>/<split>/<name>_mmap/ files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in MWW_SETS:
            split = "testing" if name == "dinner_party_eval" else "training"
            archive.writestr(f"{name}/{split}/{name}_mmap/data.ninja", b"\x01\x00" * 40)
    return buffer.getvalue()


def _mww_workspace(tmp_path: Path, server) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    data = _negatives_zip()
    server.set_file("negatives.zip", data)
    _catalog(ws, server, "", microwakeword_negatives={
        "priority": "optional", "path": "microwakeword",
        "files": [{"url": server.url("negatives.zip"),
                   "path": "microwakeword/archive/negatives.zip", "hash": sha256(data)}],
        "unpack": [{"format": "zip", "into": "microwakeword/negative_datasets"}]})
    return ws


def test_mww_config_lists_the_four_negative_sets_with_the_notebooks_weights(
        tmp_path, faulty_server):
    ws = _mww_workspace(tmp_path, faulty_server)
    missing = run_cli(tmp_path, "mww-config", "--workspace", str(ws))
    assert missing.code == 1
    assert ("Problem: microwakeword_negatives is missing; run `easy-oww download --recipe "
            "microwakeword` (or `--dataset microwakeword_negatives`)") in missing.err
    assert run_cli(tmp_path, "download", "--dataset", "microwakeword_negatives",
                   "--workspace", str(ws)).code == 0
    made = run_cli(tmp_path, "mww-config", "--json", "--workspace", str(ws))
    assert made.code == 0, made.err
    features = made.json()["features"]
    root = ws / "datasets" / "microwakeword" / "negative_datasets"
    assert [(f["features_dir"], f["sampling_weight"], f["truncation_strategy"], f["truth"])
            for f in features] == [
        (str(root / "speech"), 10.0, "random", False),
        (str(root / "dinner_party"), 10.0, "random", False),
        (str(root / "no_speech"), 5.0, "random", False),
        (str(root / "dinner_party_eval"), 0.0, "split", False)]
    assert all(f["type"] == "mmap" and f["penalty_weight"] == 1.0 for f in features)


def test_mww_config_into_keeps_the_users_entries_and_comments_and_is_stable(
        tmp_path, faulty_server):
    ws = _mww_workspace(tmp_path, faulty_server)
    assert run_cli(tmp_path, "download", "--dataset", "microwakeword_negatives",
                   "--workspace", str(ws)).code == 0
    mine = tmp_path / "training_parameters.yaml"
    mine.write_text("# my training run\nbatch_size: 128  # fits my GPU\nfeatures:\n"
                    "  - features_dir: /data/my_words\n    sampling_weight: 3.0\n"
                    "    truth: true\n")
    positive = tmp_path / "positive_features"
    positive.mkdir()
    first = run_cli(tmp_path, "mww-config", "--into", str(mine), "--positive", str(positive),
                    "--workspace", str(ws))
    assert first.code == 0, first.err
    assert first.out.strip() == f"Wrote {mine}: 6 features entries."
    text = mine.read_text()
    assert text.startswith("# my training run\nbatch_size: 128  # fits my GPU\n")
    assert "features_dir: /data/my_words" in text and f"features_dir: {positive}" in text
    assert text.count("features_dir:") == 6
    again = run_cli(tmp_path, "mww-config", "--into", str(mine), "--positive", str(positive),
                    "--workspace", str(ws))
    assert again.code == 0 and mine.read_text() == text  # the same file every run
