"""Resume against a real nginx on loopback: killed mid-way, resumed with Range + If-Range,
exact bytes, and nginx's own access log shows nothing was sent twice beyond the bound."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.datasets.helpers import (
    cli_cmd,
    cli_env,
    run_cli,
    sha256,
    wait_for_progress,
    write_catalog,
)

MiB = 1024 * 1024


@pytest.mark.parametrize("connections", ["1", "4"])
def test_kill_and_resume_against_nginx(tmp_path, nginx_server, connections):
    root = tmp_path / "www"
    root.mkdir()
    data = os.urandom(24 * MiB)
    (root / "feat.npy").write_bytes(data)
    rate = 2 * MiB
    server = nginx_server(root, limit_rate="2m")
    ws = tmp_path / "ws"
    ws.mkdir()
    write_catalog(ws / "datasets.toml", {"feat": {"priority": "critical", "files": [
        {"url": server.url("feat.npy"), "path": "feat/feat.npy", "size": len(data),
         "hash": sha256(data)}]}})
    args = ["download", "--dataset", "feat", "--connections", connections, "--workspace", str(ws)]
    kills = 0
    for _ in range(2):
        proc = subprocess.Popen(cli_cmd(*args), env=cli_env(tmp_path),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for_progress(ws, "feat/feat.npy", (kills + 1) * 4 * MiB, proc) > 0
        assert proc.poll() is None
        proc.kill()
        proc.wait()
        kills += 1
    final = run_cli(tmp_path, *args)
    assert final.code == 0, final.err
    assert (ws / "datasets" / "feat" / "feat.npy").read_bytes() == data
    entries = server.access_log(wait_for=3)
    sent = sum(e["body_bytes_sent"] for e in entries if e["uri"] == "/feat.npy")
    # nginx honours If-Range with its own ETag, so resumed requests are 206s.
    assert any(e["status"] == 206 and e["if_range"] not in ("", "-") for e in entries)
    # Each kill loses at most the last half second per connection (the sidecar's interval)
    # plus what nginx's first-second burst let through.
    per_kill = int(connections) * (rate // 2 + rate)
    assert sent <= len(data) + kills * per_kill, (sent, len(data))
