"""Mirrors end to end: `easy-oww mirror serve` and `download --mirror`, real processes and
real loopback servers (the origin is FaultyServer, which records every request; the
fixtures `blobs`, `origin` and `workspace_a` are in conftest.py, shared with the S3 tests)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import web

from easy_oww.datasets.cache import CacheManager
from easy_oww.datasets.mirror import WorkspaceShelf
from easy_oww.transfer.serve import build_app, serving
from tests.datasets.helpers import (
    cli_cmd,
    cli_env,
    manifest,
    new_workspace,
    origin_requests,
    run_cli,
    sha256,
    write_catalog,
)
from tests.servers.faulty_http import FaultyServer
from tests.servers.hub_standin import HubStandin

MiB = 1024 * 1024
URL_LINE = re.compile(r"^Serving (\d+) verified file\(s\) .* at (http://\S+) \(read-only")


@contextmanager
def mirror_serve(tmp_path: Path, ws: Path) -> Iterator[tuple[str, int, subprocess.Popen]]:
    """`easy-oww mirror serve --port 0` as a user runs it; yields (url, files, process) once
    it printed its address (the line the user copies), and stops it with Ctrl-C."""
    proc = subprocess.Popen(cli_cmd("mirror", "serve", "--workspace", str(ws), "--port", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(tmp_path), cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        found = URL_LINE.match(line)
        assert found, (line, proc.stderr.read() if proc.poll() is not None else "")
        usage = proc.stdout.readline()
        assert usage.strip() == f"Use it from another workspace: easy-oww download --mirror " \
                                f"{found.group(2)}"
        yield found.group(2), int(found.group(1)), proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def stop_with_ctrl_c(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def test_round_trip_through_mirror_serve(tmp_path, workspace_a, origin, blobs):
    with mirror_serve(tmp_path, workspace_a) as (url, served, proc):
        assert served == 3  # alpha's two files and gamma's one: every verified file
        origin.reset_counters()
        b = new_workspace(tmp_path, "B", origin, blobs)
        run = run_cli(tmp_path, "download", "--workspace", str(b), "--dataset", "alpha",
                      "--mirror", url)
        assert run.code == 0, run.err
        assert origin_requests(origin, "a.bin", "b.bin") == []  # all of it from the mirror
        for name in ("a.bin", "b.bin"):
            got = (b / "datasets" / "alpha" / name).read_bytes()
            assert sha256(got) == sha256(blobs[name])
            assert got == (workspace_a / "datasets" / "alpha" / name).read_bytes()
        records = manifest(b)["datasets"]["alpha"]["files"]
        assert {rel: r["from"] for rel, r in records.items()} == {
            "alpha/a.bin": url, "alpha/b.bin": url}
        assert records["alpha/a.bin"]["source"] == origin.url("a.bin")  # the catalog's URL
        assert f"Mirrors first: {url}" in run.err
        code, err = stop_with_ctrl_c(proc)
    assert code == 130
    assert err.strip().splitlines() == ["Interrupted."]
    # --status says which mirror served what, in JSON and as text (stderr when piped)
    rows = {r["key"]: r for r in run_cli(tmp_path, "download", "--status", "--json",
                                         "--workspace", str(b)).json()}
    assert rows["alpha"]["mirrors"] == {url: {"files": 2, "bytes": len(blobs["a.bin"])
                                              + len(blobs["b.bin"])}}
    text = run_cli(tmp_path, "download", "--status", "--workspace", str(b))
    assert f"Note: alpha: 2 file(s) (18.1 MB) from mirror {url}" in text.err
    doctor = run_cli(tmp_path, "doctor", "--json", "--dataset", "alpha", "--workspace", str(b))
    assert json.loads(doctor.out)["mirrors"]["served"] == {"alpha": rows["alpha"]["mirrors"]}


def test_a_lying_mirror_is_rejected_and_the_origin_used(tmp_path, origin, blobs):
    """A mirror serving other bytes (of the right size) for a file: nothing of it is kept,
    the origin serves the file, and the manifest says it came from the origin."""
    with FaultyServer() as liar:
        liar.set_file("datasets/alpha/b.bin", os.urandom(len(blobs["b.bin"])))
        b = new_workspace(tmp_path, "B", origin, blobs)
        run = run_cli(tmp_path, "download", "--workspace", str(b), "--dataset", "alpha",
                      "--mirror", liar.base_url)
        assert run.code == 0, run.err
        assert liar.requests_for("datasets/alpha/b.bin", "GET")  # it was asked, and lied
    assert (b / "datasets" / "alpha" / "b.bin").read_bytes() == blobs["b.bin"]
    assert origin.requests_for("b.bin", "GET")
    assert "fail the catalog's check" in run.err
    records = manifest(b)["datasets"]["alpha"]["files"]
    assert "from" not in records["alpha/b.bin"] and "from" not in records["alpha/a.bin"]
    assert not list((b / "datasets").rglob("*.part"))


def test_file_url_and_folder_mirrors(tmp_path, workspace_a, origin, blobs):
    origin.reset_counters()
    for name, spec in (("B", workspace_a.as_uri()), ("C", str(workspace_a))):
        ws = new_workspace(tmp_path, name, origin, blobs)
        run = run_cli(tmp_path, "download", "--workspace", str(ws), "--dataset", "alpha",
                      "--mirror", spec)
        assert run.code == 0, run.err
        for blob in ("a.bin", "b.bin"):
            assert (ws / "datasets" / "alpha" / blob).read_bytes() == blobs[blob]
        records = manifest(ws)["datasets"]["alpha"]["files"]
        assert {r["from"] for r in records.values()} == {str(workspace_a)}
    assert origin_requests(origin, "a.bin", "b.bin") == []
    # The folder's copy rots (same size, other bytes): copied, checked, refused, fetched anew
    rotten = workspace_a / "datasets" / "alpha" / "b.bin"
    rotten.write_bytes(os.urandom(len(blobs["b.bin"])))
    d = new_workspace(tmp_path, "D", origin, blobs)
    run = run_cli(tmp_path, "download", "--workspace", str(d), "--dataset", "alpha",
                  "--mirror", str(workspace_a), EASY_OWW_MIRROR="http://127.0.0.1:9")
    assert run.code == 0, run.err
    assert (d / "datasets" / "alpha" / "b.bin").read_bytes() == blobs["b.bin"]
    assert "fail the catalog's check" in run.err and "127.0.0.1:9" not in run.err
    assert [r.path for r in origin.requests_for("b.bin", "GET")] and not origin.requests_for(
        "a.bin")
    assert not list((d / "datasets").rglob("*.part"))


def test_the_mirror_variable_several_mirrors_and_a_file_with_no_known_hash(
        tmp_path, workspace_a, origin, blobs):
    """EASY_OWW_MIRROR takes several mirrors, whitespace or commas between: a dead one is
    skipped; a file whose hash the catalog does not know comes from the origin only."""
    origin.reset_counters()
    b = new_workspace(tmp_path, "B", origin, blobs, hashed=False)
    mirrors = f"http://127.0.0.1:9 ,  {workspace_a}"
    run = run_cli(tmp_path, "download", "--workspace", str(b), "--dataset", "alpha",
                  "--dataset", "gamma", EASY_OWW_MIRROR=mirrors)
    assert run.code == 0, run.err
    assert "mirror http://127.0.0.1:9 cannot be reached" in run.err
    assert run.err.count("cannot be reached") == 1  # not asked again for the next file
    assert origin_requests(origin, "a.bin", "b.bin") == []
    assert origin.requests_for("c.bin", "GET")
    assert (b / "datasets" / "gamma" / "c.bin").read_bytes() == blobs["c.bin"]
    assert "from" not in manifest(b)["datasets"]["gamma"]["files"]["gamma/c.bin"]


@pytest.mark.parametrize("spec, says", [
    ("s3://bucket/prefix", "no AWS credentials found"),  # (test_mirror_s3.py: the rest)
    ("ftp://host/x", "ftp:// mirrors are not supported"),
    ("http://", "expected http://HOST"),
    ("/nowhere/at/all", "has no datasets/ folder"),
])
def test_a_wrong_mirror_is_one_line_and_exit_2(tmp_path, origin, blobs, spec, says):
    b = new_workspace(tmp_path, "B", origin, blobs)
    run = run_cli(tmp_path, "download", "--workspace", str(b), "--dataset", "alpha",
                  "--mirror", spec)
    assert run.code == 2
    assert says in run.err and len(run.err.strip().splitlines()) == 1
    assert origin.requests == []  # nothing was fetched


def test_hf_token_goes_to_the_hub_only_never_to_a_mirror(tmp_path):
    """Workspace A downloads a Hub folder with HF_TOKEN; B downloads it through A's mirror
    with HF_TOKEN set: the listing asks the Hub (with the token), the files come from the
    mirror, which never sees an Authorization header; a file the mirror lacks comes from the
    Hub, whose CDN never sees the token either."""
    repo = "owner/sounds"
    clips = {f"clips/c{i}.wav": os.urandom(20_000 + i) for i in range(4)}
    seen: list[dict[str, str]] = []

    @web.middleware
    async def record(request, handler):
        seen.append(dict(request.headers))
        return await handler(request)

    with HubStandin(require_token="hf_secret") as hub:
        for path, data in clips.items():
            hub.add_file(repo, path, data)
        entry = {"hf_repo": repo, "hf_folder": "clips", "path": "sounds"}
        spec = {"sounds": {"name": "Sounds", "priority": "critical", "files": [entry]}}
        env = {"HF_ENDPOINT": hub.endpoint, "HF_TOKEN": "hf_secret"}
        a, b = tmp_path / "A", tmp_path / "B"
        for ws in (a, b):
            ws.mkdir()
            write_catalog(ws / "datasets.toml", spec)
        assert run_cli(tmp_path, "download", "--workspace", str(a), **env).code == 0
        (a / "datasets" / "sounds" / "c3.wav").unlink()  # the mirror lacks this one
        hub.reset_counters()
        cache = CacheManager(a / ".cache", a / "datasets")
        with serving(build_app(WorkspaceShelf(cache), middlewares=(record,))) as mirror:
            run = run_cli(tmp_path, "download", "--workspace", str(b), "--mirror", mirror.url,
                          **env)
        assert run.code == 0, run.err
        assert len(seen) >= 3  # the mirror was asked for c0..c3 (a HEAD and a GET each)
        assert not any(k.lower() == "authorization" for h in seen for k in h)
        assert hub.cdn_saw_authorization == 0
        tree = hub.requests_of("tree")
        assert tree and all(r.headers.get("authorization") == "Bearer hf_secret" for r in tree)
        resolved = {r.target.rsplit("/", 1)[-1] for r in hub.requests_of("resolve", "GET")}
        assert resolved == {"c3.wav"}  # only the file the mirror lacks came from the Hub
    for i in range(4):
        assert (b / "datasets" / "sounds" / f"c{i}.wav").read_bytes() == clips[f"clips/c{i}.wav"]
    froms = {rel: r.get("from") for rel, r in manifest(b)["datasets"]["sounds"]["files"].items()}
    assert froms == {"sounds/c0.wav": mirror.url, "sounds/c1.wav": mirror.url,
                     "sounds/c2.wav": mirror.url, "sounds/c3.wav": None}


def test_serving_to_the_network_warns_in_one_line(tmp_path, workspace_a):
    proc = subprocess.Popen(cli_cmd("mirror", "serve", "--workspace", str(workspace_a),
                                    "--host", "0.0.0.0", "--port", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(tmp_path), cwd=tmp_path)
    try:
        first, warning = proc.stdout.readline(), proc.stdout.readline()
        assert first.startswith("Serving 3 verified file(s)")
        assert warning.startswith("Warning: listening on 0.0.0.0: anyone who can reach this "
                                  "machine on the network can read these files.")
        assert proc.stdout.readline().startswith("Use it from another workspace: easy-oww "
                                                 "download --mirror http://")
        code, _ = stop_with_ctrl_c(proc)
        assert code == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_taken_port_is_one_line(tmp_path, workspace_a):
    with mirror_serve(tmp_path, workspace_a) as (url, _, proc):
        port = url.rsplit(":", 1)[1]
        run = run_cli(tmp_path, "mirror", "serve", "--workspace", str(workspace_a),
                      "--port", port)
        stop_with_ctrl_c(proc)
    assert run.code == 1
    assert run.err.startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
    assert len(run.err.strip().splitlines()) == 1
