"""Issue 8, the Freesound half: data-loss and wrong-result bugs found by using the tool as a
newcomer. Each test failed on the code before its fix."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import joblib
import pytest
import urllib3

from easy_oww.freesound import FreesoundLibrary, GrowOptions, create_backup, grow, list_backups
from easy_oww.freesound.api import FreesoundClient, RateBudget
from easy_oww.freesound.export import WRITERS, export_library
from tests.freesound.conftest import KEY, run_cli, sql
from tests.freesound.test_seed_pickle import seed_state

NOBODY = 65534


def _grow(fs, env, samples, **options):
    return grow(env["library"], KEY, GrowOptions(samples=samples, **options),
                base_url=fs.base_url, per_minute=100000, backoff=0.001, handle_signals=False)


# ------------------------------------------------------------------ 1. a read-only library
@pytest.fixture
def world_dir():
    """A folder every user can reach (pytest's tmp_path is root's alone), removed after."""
    path = Path(tempfile.mkdtemp(prefix="easy-oww-ro-"))
    path.chmod(0o755)
    yield path
    for sub in [path, *path.rglob("*")]:
        if sub.is_dir():
            sub.chmod(0o755)
    shutil.rmtree(path)


def _as_nobody(args, env_vars):
    """`easy-oww …` as an unprivileged user (root writes through any permission, so only
    another user meets a read-only folder as a read-only mount would show it)."""
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to run a command as an unprivileged user"
    environment = dict(os.environ, **env_vars)
    return subprocess.run(
        [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable,
         "-m", "easy_oww", *map(str, args)],
        capture_output=True, text=True, timeout=120, env=environment,
    )


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_read_only_library_is_read_and_writing_commands_say_so_in_one_line(fs, env,
                                                                          world_dir):
    library = world_dir / "library"
    out_dir = world_dir / "out"
    config = world_dir / "config"
    for folder in (out_dir, config):
        folder.mkdir()
        folder.chmod(0o777)
    grow(library, KEY, GrowOptions(samples=30, backup_every=20), base_url=fs.base_url,
         per_minute=100000, handle_signals=False)
    pickle_file = out_dir / "seed.pkl"
    joblib.dump(seed_state(), pickle_file)
    pickle_file.chmod(0o644)
    backup = list_backups(library)[0].name
    for path in library.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)
    library.chmod(0o555)
    before = _tree(library)
    env_vars = {"EASY_OWW_CONFIG_DIR": str(config), "HOME": str(config),
                "EASY_OWW_WORKSPACE": str(world_dir / "ws"), "FREESOUND_API_KEY": KEY}
    lib = ["--library", library]

    status = _as_nobody(["freesound", "status", "--json", *lib], env_vars)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["samples"] == 30
    verify = _as_nobody(["freesound", "verify", *lib], env_vars)
    assert verify.returncode == 0 and verify.stdout.startswith("OK: 30 samples"), verify.stderr
    history = _as_nobody(["freesound", "history", "--json", *lib], env_vars)
    assert history.returncode == 0 and len(json.loads(history.stdout)) == 1, history.stderr
    exported = _as_nobody(["freesound", "export", out_dir / "lib.json", *lib], env_vars)
    assert exported.returncode == 0, exported.stderr
    assert len(json.loads((out_dir / "lib.json").read_text())["nodes"]) == 30
    drawn = _as_nobody(["freesound", "visualize", out_dir / "lib.html", *lib], env_vars)
    assert drawn.returncode == 0 and (out_dir / "lib.html").stat().st_size > 0, drawn.stderr

    writing = {
        "grow": ["freesound", "grow", "--api-url", fs.base_url, "--samples", "5"],
        "audio": ["freesound", "audio"],
        "backups create": ["freesound", "backups", "create"],
        "backups restore": ["freesound", "backups", "restore", backup],
        "backups prune": ["freesound", "backups", "prune", "--keep", "1"],
        "import-pickle": ["freesound", "import-pickle", pickle_file],
    }
    sent = fs.stats["api"]
    for name, args in writing.items():
        out = _as_nobody([*args, *lib], env_vars)
        assert out.returncode == 1, (name, out.stderr)
        assert out.stderr == (
            f"Error: the Freesound library folder {library} is read-only and this command "
            "writes to it; make it writable, or copy the library to a writable folder\n"
        ), name
    assert fs.stats["api"] == sent  # grow asked nothing
    assert _tree(library) == before


# ------------------------------------------------------------------ 2. offline grow
def test_offline_grow_says_each_retry_and_gives_up_after_two_attempts(env):
    dead = "http://127.0.0.1:9/apiv2"  # the discard port: nothing listens, connection refused
    for extra in ([], ["--json"]):
        out = run_cli(["freesound", "grow", "--api-url", dead, *extra])
        assert out.returncode == 1, out.stderr
        lines = out.stderr.splitlines()
        assert len(lines) == 2, out.stderr
        assert re.fullmatch(r"Freesound API: cannot connect to 127\.0\.0\.1:9: \w+ \(offline\?\); "
                            r"retrying in \d+\.\d s", lines[0]), lines[0]
        assert lines[1].startswith(f"Error: cannot reach the Freesound API at {dead} after 2 "
                                   "tries")
        assert lines[1].endswith("; check the network or --api-url")
        assert out.stdout == ""  # JSON mode: stdout stays JSON (nothing was stored)
    # nothing reached a server: nothing taken from the day's budget
    status = json.loads(run_cli(["freesound", "status", "--json"]).stdout)
    assert status["requests_today"] == 0


# ------------------------------------------------------------------ 3. Ctrl-C during a backoff
def test_stop_during_a_retry_backoff_sends_no_further_request(fs, env):
    stop = threading.Event()
    budget = RateBudget.for_key(KEY, per_minute=100000, per_day=100000)

    def on_line(message: str) -> None:
        if "retry" in message:  # the retry is announced, its wait begins: Ctrl-C now
            stop.set()

    client = FreesoundClient(KEY, base_url=fs.base_url, budget=budget, http=urllib3.PoolManager(),
                             backoff=0.001, stop=stop, log=on_line)
    fs.fail_next(10, status=503)
    with pytest.raises(InterruptedError):
        client.search("rain")
    assert fs.stats["api"] == 1 and client.requests == 1
    assert budget.status()["requests_today"] == 1


# ------------------------------------------------------------------ 4. the budget ends early
def test_budget_ending_early_stores_the_results_in_hand_with_true_counts(fs, env):
    fs.set_limits(per_day=3)  # three answers, then the API's daily 429
    out = run_cli(["freesound", "grow", "--api-url", fs.base_url, "--samples", "500", "--json"])
    assert out.returncode == 75, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    summary, printed = lines[-1], [line["id"] for line in lines[:-1]]
    assert fs.stats["api"] == 4  # three answers and the 429
    # every result in hand (the three answers) is stored, none left behind
    assert summary["stopped"] == "budget" and 0 < summary["stored"] == len(printed) < 500
    assert sql(env["library"], "SELECT count(*) FROM seen WHERE status = 'candidate'") == [(0,)]
    with FreesoundLibrary(env["library"]) as lib:
        assert lib.stored_ids() == set(printed) == fs.returned_sound_ids()
        assert summary["samples"] == len(printed)
        assert lib.history()[-1]["requests"] == 4
    assert summary["requests"] == 4 and summary["budget_left"] == 0
    assert out.stderr.count("\n") == 1
    assert "Freesound says this key's daily limit is reached; 4 requests from here today" \
        in out.stderr
    assert "2000/2000" not in out.stderr
    status = json.loads(run_cli(["freesound", "status", "--json"]).stdout)
    assert status["requests_today"] == 4
    text = run_cli(["freesound", "grow", "--api-url", fs.base_url, "--samples", "5"])
    assert text.returncode == 75 and fs.stats["api"] == 4  # the next run asks nothing
    assert text.stdout.startswith("Stored 0 new samples with 0 requests;")


# ------------------------------------------------------------------ 5. smaller ones
_PLURAL_OF_ONE = re.compile(r"(?<![\d./])1 (?:new |audio |similar |cached )?"
                            r"(?:samples|edges|requests|problems|runs|files|ids|links|sounds)\b")


def test_counts_of_one_are_singular(fs, env, tmp_path):
    grown = run_cli(["freesound", "grow", "--api-url", fs.base_url, "--samples", "1",
                     "--per-minute", "100000"])
    assert grown.returncode == 0, grown.stderr
    assert grown.stdout.startswith("Stored 1 new sample with ")
    assert "the library has 1 sample and 0 edges" in grown.stdout
    with FreesoundLibrary(env["library"]) as lib:
        lib.record_problem("a test problem")
    outputs = [grown.stdout + grown.stderr]
    for args in (["status"], ["verify"], ["history"], ["backups", "create"], ["backups"],
                 ["export", tmp_path / "one.json"], ["visualize", tmp_path / "one.html"]):
        out = run_cli(["freesound", *args])
        assert out.returncode == 0, (args, out.stderr)
        outputs.append(out.stdout + out.stderr)
    everything = "\n".join(outputs)
    assert "(1 run, 1 problem recorded)" in everything
    assert "OK: 1 sample, 0 edges" in everything
    assert "Wrote 1 sample and 0 edges" in everything
    assert _PLURAL_OF_ONE.findall(everything) == [], everything


def test_piped_tables_print_whole_values(fs, env, tmp_path):
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "freesound_library"
    grow(deep, KEY, GrowOptions(samples=3), base_url=fs.base_url, per_minute=100000,
         handle_signals=False)
    with FreesoundLibrary(deep) as lib:
        name = create_backup(lib).name
    listed = run_cli(["freesound", "--library", deep, "backups", "list"])  # stdout: a pipe
    first = listed.stdout.splitlines()[0]
    assert first.startswith(name + "  ") and first.split()[1:3] == ["3", "samples"]
    status = run_cli(["freesound", "--library", deep, "status"])
    assert f"Library:   {deep}\n" in status.stdout
    history = run_cli(["freesound", "--library", deep, "history"]).stdout.splitlines()
    assert len(history) == 3 and history[1].split()[-1] == "done"


# ------------------------------------------------------------------ 6. export formats: a table
def test_export_formats_come_from_the_writers_table(fs, env, tmp_path):
    from easy_oww.cli.freesound import export

    choice = next(p for p in export.params if p.name == "fmt")
    assert list(choice.type.choices) == list(WRITERS)
    stats = _grow(fs, env, 20)
    with FreesoundLibrary(env["library"]) as lib:
        for name in WRITERS:
            target = tmp_path / f"lib.{name}"
            counts = export_library(lib, target, name)
            assert counts["samples"] == stats.samples and target.stat().st_size > 0
    # written atomically: the files asked for and nothing else (no temp file left behind)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(
        f"lib.{name}" for name, fmt in WRITERS.items() if not fmt.folder)
    for name in (name for name, fmt in WRITERS.items() if fmt.folder):
        assert sorted(p.name for p in (tmp_path / f"lib.{name}").iterdir()) == [
            "NOTICE.txt", "edges.csv", "nodes.csv"]
    # every format has edges, so every one takes --derived (test_export_formats.py checks
    # what each writes with it, and that a format without edges would refuse in one line)
    assert {name for name, fmt in WRITERS.items() if fmt.takes_derived} == set(WRITERS)
