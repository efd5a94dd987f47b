"""Choosing the workspace: a file where the folder should be is refused by every command."""

from __future__ import annotations

import pytest

from tests.datasets.helpers import run_cli

COMMANDS = [
    ["download", "--status"], ["download", "--dataset", "mit_rir"], ["verify"], ["paths"],
    ["clean"], ["remove", "mit_rir", "--yes"], ["freesound", "status"],
    ["freesound", "history"], ["freesound", "verify"], ["freesound", "export", "out.json"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(a) for a in COMMANDS])
def test_a_workspace_that_is_a_file_is_named_with_its_source(tmp_path, args):
    not_a_folder = tmp_path / "workspace.txt"
    not_a_folder.write_text("my notes\n")
    run = run_cli(tmp_path, *args, EASY_OWW_WORKSPACE=str(not_a_folder))
    assert run.code == 2, (run.out, run.err)
    assert run.err.strip() == (
        f"Error: the workspace {not_a_folder} (from $EASY_OWW_WORKSPACE) is a file, not a "
        "folder; choose a folder with --workspace or EASY_OWW_WORKSPACE")
    assert not_a_folder.read_text() == "my notes\n"


def test_a_path_below_a_file_is_refused_too(tmp_path):
    not_a_folder = tmp_path / "workspace.txt"
    not_a_folder.write_text("")
    run = run_cli(tmp_path, "download", "--status",
                  EASY_OWW_WORKSPACE=str(not_a_folder / "inside"))
    assert run.code == 2
    assert f"is inside {not_a_folder}, which is a file" in run.err
