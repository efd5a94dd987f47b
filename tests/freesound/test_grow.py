"""Growing the library, through the Python API and the real `easy-oww freesound` command."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from easy_oww.freesound import (
    BudgetExhaustedError,
    FreesoundLibrary,
    GrowOptions,
    Stopped,
    grow,
    list_backups,
)
from easy_oww.freesound.lock import grow_lock
from easy_oww.freesound.store import DB_NAME
from tests.freesound.conftest import KEY, files_containing, rest_of, run_cli, sql


def grow_api(fs, env, samples, **options):
    committed = []
    result = grow(env["library"], KEY, GrowOptions(samples=samples, **options),
                  base_url=fs.base_url, per_minute=100000, backoff=0.001,
                  on_commit=committed.extend, handle_signals=False)
    return result, committed


def test_done_when_three_cli_runs_grow_to_50_100_150(fs, env):
    """The issue's "Done when": run three times, exactly 50, 100, 150."""
    totals = []
    for _ in range(3):
        out = run_cli(["freesound", "grow", "--api-url", fs.base_url, "--quiet"])
        assert out.returncode == 0, out.stderr
        status = run_cli(["freesound", "status", "--json"])
        totals.append(json.loads(status.stdout)["samples"])
    assert totals == [50, 100, 150]
    doc = json.loads(status.stdout)
    for key in ("samples", "edges", "expanded", "frontier", "seen", "requests_today",
                "daily_budget", "budget_resets_at", "backups", "db_bytes", "last_run"):
        assert key in doc
    assert doc["requests_today"] == fs.stats["api"]
    assert doc["backups"] == 1 and doc["edges"] > 150
    assert doc["expanded"] + doc["frontier"] == 150
    # never a request about one sample's metadata: everything came from list answers
    assert set(fs.stats["by_endpoint"]) == {"search"}
    # the key is in no file we wrote (database, WAL, backups, state, lock files)
    assert files_containing([env["workspace"], env["config"]], KEY.encode()) == []


def test_rerun_asks_nothing_about_stored_and_expanded_samples(fs, env):
    grow_api(fs, env, 120)
    with FreesoundLibrary(env["library"]) as lib:
        stored = lib.stored_ids()
        expanded = {r[0] for r in sql(env["library"], "SELECT id FROM samples WHERE expanded != 0")}
    fs.reset_stats()
    result, committed = grow_api(fs, env, 120)
    assert result.stored == 120 and len(committed) == 120
    assert fs.requested_sound_ids() & expanded == set()
    assert not {sid for sid, _ in committed} & stored
    counts = fs.requested_sound_id_counts()
    assert all(counts[i] == 1 for i in counts)  # each expanded once
    assert "sound" not in fs.stats["by_endpoint"]


def test_quota_1000_samples_from_empty_under_100_requests(fs, env):
    result, committed = grow_api(fs, env, 1000, backup_every=1000)
    assert result.stored == 1000 == len({sid for sid, _ in committed})
    assert fs.stats["api"] == result.requests <= 100
    seed_requests = sum(1 for r in fs.request_log() if "similar_to" not in r["params"])
    assert seed_requests / 1000 <= 0.2
    with FreesoundLibrary(env["library"]) as lib:
        assert lib.verify() == []
        assert lib.stats().edges > 1000


def test_filters_apply_to_every_stored_sample(fs, env):
    result, _ = grow_api(fs, env, 80, licenses=["cc0"], max_duration=10.0)
    assert result.stored == 80
    rows = sql(env["library"], "SELECT license, duration FROM samples")
    assert all("publicdomain/zero" in lic and dur <= 10.0 for lic, dur in rows)
    assert all("filter" in r["params"] for r in fs.request_log())


def test_nothing_left_to_find_stops_early(fs, env):
    result, _ = grow_api(fs, env, 50, queries=["zzzznotaword"], tags=["zzzznotaword"])
    assert result.stored == 0 and result.stopped == "exhausted"


def test_404_mid_crawl_marks_deleted_and_goes_on(fs, env):
    grow_api(fs, env, 30)
    with FreesoundLibrary(env["library"]) as lib:
        victim = lib.next_to_expand()
    fs.delete_sound(victim)
    result, _ = grow_api(fs, env, 200)
    assert result.stored == 200
    with FreesoundLibrary(env["library"]) as lib:
        row = sql(env["library"], "SELECT deleted, expanded FROM samples WHERE id = ?",
                  (victim,))[0]
        assert row == (1, 2)
        assert lib.verify() == []


@pytest.mark.parametrize("kind", ["json", "missing_id", "null_item"])
def test_malformed_answers_are_skipped_and_recorded(fs, env, kind):
    grow_api(fs, env, 20)
    fs.malformed_next(2, kind=kind)
    result, _ = grow_api(fs, env, 200)
    assert result.stored == 200
    with FreesoundLibrary(env["library"]) as lib:
        assert lib.stats().problems >= 1
        assert lib.verify() == []


def test_daily_limit_at_the_server_stops_cleanly_with_exit_75(fs, env):
    fs.set_limits(per_day=8)
    # more samples than 8 requests bring in hand (those are stored before it stops)
    out = run_cli(["freesound", "grow", "--api-url", fs.base_url, "--samples", "2500", "--json"])
    assert out.returncode == 75, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    summary = lines[-1]
    assert summary["summary"] and summary["stopped"] == "budget"
    assert summary["budget_resets_at"].endswith("T00:00:00Z")
    printed = [line["id"] for line in lines[:-1]]
    assert 0 < len(printed) < 2500
    assert "comes back at" in out.stderr and out.stderr.count("\n") == 1
    with FreesoundLibrary(env["library"]) as lib:
        assert lib.stored_ids() == set(printed)
    # the next run with the same key stops at once, sending nothing
    sent = fs.stats["api"]
    again = run_cli(["freesound", "grow", "--api-url", fs.base_url])
    assert again.returncode == 75 and fs.stats["api"] == sent


def test_local_daily_budget_stops_with_exit_75(fs, env):
    out = run_cli(["freesound", "grow", "--api-url", fs.base_url, "--samples", "300",
                   "--daily-budget", "7", "--quiet"])
    assert out.returncode == 75
    assert "7/7" in out.stderr
    assert fs.stats["api"] == 7


def test_wrong_key_exits_1_and_stores_nothing(fs, env):
    out = run_cli(["freesound", "grow", "--api-url", fs.base_url],
                  {"FREESOUND_API_KEY": "wrong"})
    assert out.returncode == 1
    assert out.stderr.strip().startswith("Error: Freesound refused the API key")
    assert out.stderr.strip().endswith("; check FREESOUND_API_KEY or --api-key-file")
    missing = run_cli(["freesound", "grow", "--api-url", fs.base_url], {"FREESOUND_API_KEY": ""})
    assert missing.returncode == 2 and "FREESOUND_API_KEY" in missing.stderr
    assert missing.stderr == ("Error: no Freesound API key: set FREESOUND_API_KEY or pass "
                              "--api-key-file FILE (get a key at "
                              "https://freesound.org/apiv2/apply/)\n")


def test_api_key_file(fs, env, tmp_path):
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY + "\n")
    out = run_cli(["freesound", "grow", "--api-url", fs.base_url, "--samples", "5",
                   "--api-key-file", key_file, "--json"], {"FREESOUND_API_KEY": ""})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1])["samples"] == 5
    verbose = run_cli(["freesound", "grow", "--api-url", fs.base_url, "--samples", "60",
                       "--api-key-file", key_file, "--verbose"], {"FREESOUND_API_KEY": ""})
    assert verbose.returncode == 0 and "GET " in verbose.stderr
    assert KEY not in verbose.stderr + verbose.stdout  # the log shows URLs, never the key
    assert files_containing([env["workspace"], env["config"]], KEY.encode()) == []


def test_second_grow_is_refused_with_exit_75(fs, env):
    env["library"].mkdir(parents=True)
    with grow_lock(env["library"]):
        out = run_cli(["freesound", "grow", "--api-url", fs.base_url])
    assert out.returncode == 75
    assert "another `easy-oww freesound grow`" in out.stderr
    assert fs.stats["api"] == 0


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_finishes_the_sample_commits_and_exits(fs, env, sig, code):
    proc = subprocess.Popen(
        [sys.executable, "-m", "easy_oww", "freesound", "grow", "--api-url", fs.base_url,
         "--samples", "2500", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    first = json.loads(proc.stdout.readline())
    # another process reads the library while grow writes it
    status = run_cli(["freesound", "status", "--json"])
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["samples"] >= 1
    proc.send_signal(sig)
    rest, err = rest_of(proc)
    assert proc.returncode == code, err
    lines = [first] + [json.loads(line) for line in rest.splitlines()]
    summary = lines[-1]
    printed = {line["id"] for line in lines[:-1]}
    assert summary["stopped"] == ("terminated" if code == 143 else "interrupted")
    assert summary["stored"] == len(printed) < 2500
    with FreesoundLibrary(env["library"]) as lib:
        assert lib.stored_ids() == printed
        assert lib.verify() == []
        assert lib.history()[-1]["status"] == summary["stopped"]


def test_checkpoint_interval_and_backups_during_grow(fs, env):
    out = run_cli(["freesound", "grow", "--api-url", fs.base_url, "--samples", "250",
                   "--checkpoint-interval", "20", "--backup-every", "50", "--keep-backups",
                   "3", "--json"])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 251
    names = [b.name for b in list_backups(env["library"])]
    nodes = [int(n.split("_")[3].removesuffix("nodes")) for n in names]
    # a batch is committed early before each request, so a crossing lands inside a batch
    assert len(nodes) == 3 and nodes[0] == 250 and nodes == sorted(nodes, reverse=True)
    assert [n // 50 for n in nodes] == [5, 4, 3]
    summary = json.loads(lines[-1])
    # the backups this run made that are still there (two of its five were pruned)
    assert summary["backups"] == names[::-1]


def test_status_history_verify_backups_commands(fs, env):
    grow_api(fs, env, 110)
    status = run_cli(["freesound", "status"])
    assert status.returncode == 0 and "Samples:   110" in status.stdout
    history = run_cli(["freesound", "history"])
    assert history.returncode == 0 and "Cache" in history.stdout
    assert len(json.loads(run_cli(["freesound", "history", "--json"]).stdout)) == 1
    assert run_cli(["freesound", "verify"]).returncode == 0
    created = run_cli(["freesound", "backups", "create"])
    assert created.returncode == 0 and "110 samples" in created.stdout
    listed = json.loads(run_cli(["freesound", "backups", "list", "--json"]).stdout)
    assert [b["nodes"] for b in listed] == [110, 100]
    restored = run_cli(["freesound", "backups", "restore", listed[1]["name"]])
    assert restored.returncode == 0, restored.stderr
    assert json.loads(run_cli(["freesound", "status", "--json"]).stdout)["samples"] == 100
    pruned = run_cli(["freesound", "backups", "prune", "--keep", "1"])
    assert pruned.returncode == 0 and "deleted 1" in pruned.stdout
    # --library and --workspace work before or after the subcommand
    other = env["workspace"].parent / "elsewhere"
    out = run_cli(["freesound", "--library", other, "status", "--json"])
    assert json.loads(out.stdout)["library"] == str(other)
    out = run_cli(["--workspace", env["workspace"], "freesound", "status", "--json"])
    assert json.loads(out.stdout)["samples"] == 100
    # verify finds a dangling edge
    import sqlite3

    with sqlite3.connect(env["library"] / DB_NAME) as conn:
        conn.execute("INSERT INTO edges VALUES (1, 2, 'similar', 1.0, 1)")
    bad = run_cli(["freesound", "verify"])
    assert bad.returncode == 1 and "PROBLEM" in bad.stdout


def test_damaged_library_gives_the_restore_command_and_is_not_touched(fs, env):
    grow_api(fs, env, 100)
    db = env["library"] / DB_NAME
    with FreesoundLibrary(env["library"]) as lib:
        lib.checkpoint()
    data = db.read_bytes()
    db.write_bytes(data[:5000])
    before = db.read_bytes()
    fs.reset_stats()
    for args in (["freesound", "status"], ["freesound", "grow", "--api-url", fs.base_url]):
        out = run_cli(args)
        assert out.returncode == 1
        assert "is damaged" in out.stderr
        good = list_backups(env["library"])[0].name
        assert out.stderr == (
            f"Error: Freesound library {db} is damaged (truncated (5000 bytes, the header says "
            f"{len(data)})); it was left untouched; newest good backup: {good}; restore it with "
            f"`easy-oww freesound backups restore {good} --library {env['library']}`\n")
    assert db.read_bytes() == before
    assert fs.stats["api"] == 0  # refused before any request


def test_bad_usage_exits_2(env):
    assert run_cli(["freesound", "grow", "--license", "gpl"]).returncode == 2
    assert run_cli(["freesound", "grow", "--samples", "-1"]).returncode == 2
    assert run_cli(["freesound", "grow", "--min-duration", "5",
                    "--max-duration", "1"]).returncode == 2


def test_budget_exhaustion_from_python_keeps_everything(fs, env):
    fs.set_limits(per_day=3)
    committed = []
    with pytest.raises(BudgetExhaustedError) as info:
        grow(env["library"], KEY, GrowOptions(samples=500), base_url=fs.base_url,
             per_minute=100000, on_commit=committed.extend, handle_signals=False)
    result = info.value.result  # what the run did, complete: the CLI prints it
    assert result.stopped == Stopped.BUDGET == "budget" and result.budget_left == 0
    assert result.stored == len(committed) and result.requests >= 3
    with FreesoundLibrary(env["library"]) as lib:
        assert lib.stored_ids() == {sid for sid, _ in committed}
        assert result.samples == lib.stats().samples and result.edges == lib.stats().edges
        assert lib.history()[-1]["status"] == "budget"


def test_status_of_a_library_not_grown_yet(fs, env):
    empty = run_cli(["freesound", "status", "--json"])
    assert empty.returncode == 0, empty.stderr
    doc = json.loads(empty.stdout)
    assert doc["exists"] is False and doc["last_run"] is None
    assert all(doc[k] == 0 for k in ("samples", "edges", "seen", "audio", "audio_bytes"))
    text = run_cli(["freesound", "status"])
    assert "No Freesound library yet" in text.stdout and "freesound grow" in text.stdout
    assert run_cli(["freesound", "grow", "--api-url", fs.base_url, "--samples", "3",
                    "--quiet"]).returncode == 0
    grown = json.loads(run_cli(["freesound", "status", "--json"]).stdout)
    assert set(grown) == set(doc) and grown["exists"] is True  # the same keys either way
