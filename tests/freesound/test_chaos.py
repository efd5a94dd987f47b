"""SIGKILL during `easy-oww freesound grow --json`, again and again: nothing committed is lost.

After every kill: every id printed before the kill is in the library, the integrity check
passes, no edge is duplicated, and the next run asks the stand-in nothing about a sample that
was already stored and expanded (counted at the stand-in), and never fetches a stored
sample's metadata.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys

from easy_oww.freesound import FreesoundLibrary
from easy_oww.freesound.store import DB_NAME
from tests.freesound.conftest import rest_of, sql


def _snapshot(folder):
    if not (folder / DB_NAME).exists():
        return set(), set(), set()
    with FreesoundLibrary(folder) as lib:
        stored = lib.stored_ids()
        expanded = {r[0] for r in sql(folder, "SELECT id FROM samples WHERE expanded != 0")}
        frontier = stored - expanded
    return stored, expanded, frontier


def _check_library(folder, printed):
    with FreesoundLibrary(folder) as lib:
        stored = lib.stored_ids()
        assert printed <= stored, f"lost committed samples: {sorted(printed - stored)[:5]}"
        assert lib.verify() == []
        dupes = sql(
            folder,
            "SELECT count(*) FROM (SELECT source, target, kind FROM edges "
            "GROUP BY source, target, kind HAVING count(*) > 1)"
        )[0][0]
        assert dupes == 0
        pairs = sql(folder, "SELECT count(*) FROM edges")[0][0]
        distinct = sql(folder,
                       "SELECT count(*) FROM (SELECT DISTINCT source, target FROM edges)")
        assert pairs == distinct[0][0]
    return stored


def test_sigkill_at_random_points_loses_nothing_and_reasks_nothing(fs, env):
    rng = random.Random(20261122)
    folder = env["library"]
    printed: set[int] = set()
    kills = 0
    command = [sys.executable, "-m", "easy_oww", "freesound", "grow", "--api-url", fs.base_url,
               "--json", "--samples", "3000", "--backup-every", "30", "--keep-backups", "3"]
    while kills < 12:
        stored_before, expanded_before, frontier_before = _snapshot(folder)
        fs.reset_stats()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=dict(os.environ))
        # kill after a random number of committed samples (0: during start-up)
        wanted = rng.choice([0, 1, 3, 7, 15, 30, 45, 60])
        seen_lines = 0
        while seen_lines < wanted:
            line = proc.stdout.readline()
            if not line:
                break
            record = json.loads(line)
            assert "summary" not in record, "the run ended before it could be killed"
            printed.add(record["id"])
            seen_lines += 1
        proc.send_signal(signal.SIGKILL)
        rest, _ = rest_of(proc)
        for line in rest.splitlines():  # lines already written before the kill landed
            if line.strip():
                printed.add(json.loads(line)["id"])
        assert proc.returncode == -signal.SIGKILL
        kills += 1
        stored = _check_library(folder, printed)
        # what this (killed) run asked about: never a stored-and-expanded sample,
        # each stored-but-unexpanded sample at most once, never a sample's metadata
        asked = fs.requested_sound_id_counts()
        assert not set(asked) & expanded_before
        assert all(asked[i] == 1 for i in set(asked) & frontier_before)
        assert "sound" not in fs.stats["by_endpoint"]
        assert stored >= stored_before

    # the run after the last kill finishes normally and stores exactly what it was asked
    stored_before, expanded_before, _ = _snapshot(folder)
    fs.reset_stats()
    out = subprocess.run(command[:-6] + ["--samples", "40"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    new_ids = {line["id"] for line in lines[:-1]}
    assert len(new_ids) == 40 and not new_ids & stored_before
    assert lines[-1]["samples"] == len(stored_before) + 40
    assert not fs.requested_sound_ids() & expanded_before
    _check_library(folder, printed | new_ids)
    with FreesoundLibrary(folder) as lib:
        statuses = [run["status"] for run in lib.history()]
    # a kill during start-up may land before the run was recorded
    assert statuses[-1] == "done" and set(statuses[:-1]) == {"killed"}
    assert kills >= 10
    leftovers = [p.name for p in (folder / "backups").iterdir() if p.name.startswith(".")]
    assert leftovers == []
