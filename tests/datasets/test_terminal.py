"""What a user sees on a real terminal (a pty, rendered by the pyte terminal emulator)."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time

import pyte

from tests.datasets.helpers import REPO, cli_env, sha256, write_catalog


def _screen_after_ctrl_c(tmp_path, faulty_server, files: int) -> list[str]:
    data = os.urandom(4_000_000)
    entries = []
    for i in range(files):
        faulty_server.set_file(f"f{i}.bin", data)
        faulty_server.set_faults(f"f{i}.bin", rate=500_000)
        entries.append({"url": faulty_server.url(f"f{i}.bin"), "path": f"f{i}.bin",
                        "size": len(data), "hash": sha256(data)})
    ws = tmp_path / "ws"
    ws.mkdir(parents=True)
    write_catalog(ws / "datasets.toml", {"set": {"priority": "critical", "files": entries}})
    env = cli_env(tmp_path, COLUMNS="100", LINES="40", TERM="xterm")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI on the pty, as a user starts it
        os.chdir(REPO)
        os.execve(sys.executable, [sys.executable, "-m", "easy_oww", "download",
                                   "--workspace", str(ws)], env)
    out, interrupted = b"", False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the pty
                break
            if not chunk:
                break
            out += chunk
        if not interrupted and (ws / "datasets" / "f0.bin.part.json").exists() and b"Total" in out:
            os.kill(pid, signal.SIGINT)
            interrupted = True
    _, status = os.waitpid(pid, 0)
    assert interrupted and os.waitstatus_to_exitcode(status) == 130
    screen = pyte.Screen(100, 40)
    pyte.Stream(screen).feed(out.decode(errors="replace"))
    return [line.rstrip() for line in screen.display if line.strip()]


def test_ctrl_c_leaves_one_total_line_and_says_how_to_resume(tmp_path, faulty_server):
    for files in (1, 2):
        lines = _screen_after_ctrl_c(tmp_path / str(files), faulty_server, files)
        assert sum(line.startswith("Total") for line in lines) == 1, lines
        assert lines[-1] == ("Stopped. Partial downloads are kept; run the same command again "
                             "to resume."), lines
