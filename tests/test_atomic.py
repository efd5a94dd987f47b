"""The atomic writer: all or nothing at the path, and the mode any new file gets."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from easy_oww.atomic import atomic_write_bytes, atomic_writer


def test_a_written_file_gets_the_umask_mode_like_a_download(tmp_path):
    # Run in a child with a known umask: the module reads it once, at import.
    code = ("import os, sys; os.umask(0o022); from easy_oww.atomic import atomic_write_bytes;"
            "from pathlib import Path; atomic_write_bytes(Path(sys.argv[1]), b'x')")
    target = tmp_path / "map.html"
    subprocess.run([sys.executable, "-c", code, str(target)], check=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # mkstemp alone leaves 0600
    code_077 = code.replace("0o022", "0o077")
    private = tmp_path / "private.json"
    subprocess.run([sys.executable, "-c", code_077, str(private)], check=True)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "manifest.json"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["manifest.json"]
