"""A workspace with no library: `status` and `history` report an empty one (exit 0); every
command that needs one exits 1 with the same line, naming the folder and the way out."""

from __future__ import annotations

import json

import pytest

from easy_oww.freesound import FreesoundLibrary, LibraryMissingError
from tests.freesound.conftest import run_cli

NEEDS_A_LIBRARY = {
    "verify": ["freesound", "verify"],
    "audio": ["freesound", "audio"],
    "export": ["freesound", "export", "OUT/library.json"],
    "visualize": ["freesound", "visualize", "OUT/library.html"],
    "backups create": ["freesound", "backups", "create"],
    "backups restore": ["freesound", "backups", "restore",
                        "freesound_library_backup_5nodes_20260101_000000.db.gz"],
    "backups prune": ["freesound", "backups", "prune", "--keep", "1"],
}


def _expected_line(folder) -> str:
    return (f"Error: no Freesound library at {folder}; grow one first with "
            "`easy-oww freesound grow`")


@pytest.mark.parametrize("command", sorted(NEEDS_A_LIBRARY))
def test_a_command_needing_a_library_exits_1_with_one_line(env, tmp_path, command):
    args = [str(a).replace("OUT", str(tmp_path)) for a in NEEDS_A_LIBRARY[command]]
    out = run_cli(args)
    assert out.returncode == 1, out.stderr
    assert out.stderr.splitlines() == [_expected_line(env["library"])]
    assert "Usage:" not in out.stderr and out.stdout == ""
    assert not (env["library"] / "freesound_library.db").exists()  # nothing was created
    assert not list(tmp_path.glob("library.*"))


def test_the_line_names_the_folder_given_with_library(env, tmp_path):
    folder = tmp_path / "team library"
    out = run_cli(["freesound", "verify", "--library", folder])
    assert out.returncode == 1
    assert out.stderr.splitlines() == [_expected_line(folder)]


def test_status_and_history_report_an_empty_library_with_exit_0(env):
    status = run_cli(["freesound", "status", "--json"])
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["exists"] is False
    history = run_cli(["freesound", "history", "--json"])
    assert history.returncode == 0, history.stderr
    assert json.loads(history.stdout) == []  # a list of runs: none
    text = run_cli(["freesound", "history"])
    assert text.returncode == 0 and text.stdout.strip() == f"No runs yet in {env['library']}."
    assert not env["library"].exists()


def test_the_store_raises_a_typed_error_when_not_asked_to_create(library_dir):
    with pytest.raises(LibraryMissingError) as caught:
        FreesoundLibrary(library_dir, create=False)
    assert caught.value.folder == library_dir and caught.value.exit_code == 1
    assert not library_dir.exists()
