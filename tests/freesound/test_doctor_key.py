"""`easy-oww doctor --freesound`: one request with the key, counted against its budget."""

from __future__ import annotations

import json

from tests.freesound.conftest import run_cli


def _empty_catalog(tmp_path):
    path = tmp_path / "none.toml"
    path.write_text("include_builtin = false\n")
    return path


def test_the_key_is_tried_with_one_counted_request(tmp_path, fs, env):
    run = run_cli(["doctor", "--freesound", "--api-url", fs.base_url, "--json",
                   "--catalog", _empty_catalog(tmp_path)])
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["freesound"]["ok"] and report["freesound"]["key_found"]
    assert fs.stats["total"] == 1  # one request, no more
    assert report["freesound"]["budget_left"] == 1999  # and it was counted


def test_a_refused_key_blocks(tmp_path, fs, env, monkeypatch):
    monkeypatch.setenv("FREESOUND_API_KEY", "not-the-key")
    run = run_cli(["doctor", "--freesound", "--api-url", fs.base_url,
                   "--catalog", _empty_catalog(tmp_path)])
    assert run.returncode == 1
    assert "Freesound:" in run.stdout and "1 problem would" in run.stdout
    assert "; check $FREESOUND_API_KEY" in run.stdout


def test_a_refused_key_from_a_file_names_the_file(tmp_path, fs, env, monkeypatch):
    monkeypatch.delenv("FREESOUND_API_KEY")
    key_file = tmp_path / "wrong.key"
    key_file.write_text("not-the-key\n")
    run = run_cli(["doctor", "--freesound", "--api-url", fs.base_url, "--api-key-file",
                   key_file, "--catalog", _empty_catalog(tmp_path)])
    assert run.returncode == 1
    assert f"; check the key in {key_file}" in run.stdout
    assert "FREESOUND_API_KEY" not in run.stdout


def test_without_the_flag_no_request_is_sent(tmp_path, fs, env):
    run = run_cli(["doctor", "--api-url", fs.base_url, "--catalog", _empty_catalog(tmp_path)])
    assert run.returncode == 0, run.stderr
    assert fs.stats["total"] == 0
