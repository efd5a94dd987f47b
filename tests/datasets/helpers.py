"""Running the real `easy-oww` command in a subprocess against loopback catalogs."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("EASY_OWW_WORKSPACE", "HF_ENDPOINT", "HF_TOKEN", "ZENODO_ENDPOINT")
           and not k.startswith("AWS_")}  # (the machine's own AWS credentials stay out)
    env["EASY_OWW_CONFIG_DIR"] = str(tmp / "config")
    env["HOME"] = str(tmp / "home")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])  # this checkout first
    env.update(extra)
    return env


def cli_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "easy_oww", *args]


def run_cli(tmp: Path, *args: str, timeout: float = 120, **env: str) -> Run:
    done = subprocess.run(cli_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          env=cli_env(tmp, **env), cwd=tmp)
    return Run(done.returncode, done.stdout, done.stderr)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def flac_clip(freq: float, seconds: float = 1.0, rate: int = 48000) -> bytes:
    """A stereo 24-bit FLAC (AudioSet's shape): the tone on the left, silence on the right."""
    # Imported here: most dataset tests need neither numpy nor libsndfile.
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    left = 0.5 * np.sin(2 * np.pi * freq * t)
    out = io.BytesIO()
    sf.write(out, np.stack([left, np.zeros_like(left)], axis=1), rate, format="FLAC",
             subtype="PCM_24")
    return out.getvalue()


def tar_bytes(members: dict[str, bytes]) -> bytes:
    """A plain tar of `members` (name -> bytes), in that order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def write_catalog(path: Path, datasets: dict[str, dict], builtin: bool = False) -> Path:
    """datasets: key -> {"priority":..., "files": [{"url":..., "path":..., ...}], ...}"""
    lines: list[str] = [] if builtin else ["include_builtin = false", ""]
    for key, spec in datasets.items():
        lines.append(f"[datasets.{key}]")
        for field, value in spec.items():
            if field not in ("files", "unpack"):
                lines.append(f"{field} = {json.dumps(value)}")
        for entry in spec.get("files", []):
            lines.append(f"[[datasets.{key}.files]]")
            for field, value in entry.items():
                lines.append(f"{field} = {json.dumps(value)}")
        for unpack in spec.get("unpack", []):
            lines.append(f"[[datasets.{key}.unpack]]")
            for field, value in unpack.items():
                lines.append(f"{field} = {json.dumps(value)}")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def sidecar_done(ws: Path, rel: str) -> int:
    try:
        data = json.loads((ws / "datasets" / (rel + ".part.json")).read_text())
    except (OSError, ValueError):
        return 0
    return sum(e - s for s, e in data.get("written") or data["done"])


def wait_for_progress(ws: Path, rel: str, above: int, proc: subprocess.Popen,
                       deadline: float = 30) -> int:
    """The bytes the sidecar records once they exceed `above`; fails the test when the
    process exits or `deadline` passes first (never returns a count that did not move)."""
    end = time.monotonic() + deadline
    while True:
        done = sidecar_done(ws, rel)
        if done > above:
            return done
        if proc.poll() is not None:
            pytest.fail(f"the download exited with {proc.returncode} before {rel} recorded "
                        f"more than {above:,} bytes")
        if time.monotonic() > end:
            pytest.fail(f"{rel} recorded no more than {above:,} bytes in {deadline} s")
        time.sleep(0.02)  # polling a file another process writes; not synchronisation


# -- mirrors (test_mirror.py, test_mirror_s3.py; their fixtures are in conftest.py) -----------
def mirror_catalog(path: Path, url, blobs: dict[str, bytes], *, hashed: bool = True) -> Path:
    """alpha: a.bin (with its size and hash) and b.bin (hash only); with hashed=False also
    gamma: c.bin, whose hash the catalog does not know."""
    files = [{"url": url("a.bin"), "path": "alpha/a.bin", "size": len(blobs["a.bin"]),
              "hash": sha256(blobs["a.bin"])},
             {"url": url("b.bin"), "path": "alpha/b.bin", "hash": sha256(blobs["b.bin"])}]
    datasets = {"alpha": {"name": "Alpha", "priority": "critical", "files": files}}
    if not hashed:  # a file the catalog knows no hash for
        datasets["gamma"] = {"name": "Gamma", "priority": "critical", "files": [
            {"url": url("c.bin"), "path": "gamma/c.bin", "size": len(blobs["c.bin"])}]}
    return write_catalog(path, datasets)


def new_workspace(tmp_path: Path, name: str, origin, blobs, **kw) -> Path:
    ws = tmp_path / name
    ws.mkdir()
    mirror_catalog(ws / "datasets.toml", origin.url, blobs, **kw)
    return ws


def manifest(ws: Path) -> dict:
    return json.loads((ws / ".cache" / "manifest.json").read_text())


def origin_requests(origin, *names: str) -> list:
    return [r for name in names for r in origin.requests_for(name)]
