"""Shared helpers for the download benchmarks (bench/b1..b4).

Everything generated lives under ``bench/out/`` (gitignored; override with
``EASY_OWW_BENCH_DIR``): the random source files (made once, reused, with their sha256
cached beside them), per-run workspaces and the anchors' output files.

Our CLI runs from the working tree (the editable install), or, with
``EASY_OWW_BENCH_REV=<rev>``, from that commit's ``src/`` (exported with ``git archive``).

Processes are timed whole (start to exit, ``time.perf_counter``) and their peak RSS is
read from ``os.wait4`` (the kernel's ``ru_maxrss``: exact, no polling gaps).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.servers.nginx

from tests.servers.nginx import NginxServer  # noqa: E402

MiB = 1024 * 1024
GiB = 1024 * MiB
OUT = Path(os.environ.get("EASY_OWW_BENCH_DIR", REPO / "bench" / "out"))
DATA = OUT / "data"
WORK = OUT / "work"

__all__ = [
    "GiB", "MiB", "NginxServer", "Result", "Proc", "ensure_random_file", "write_catalog",
    "easy_oww", "ours_cmd", "bench_env", "run", "start", "fresh_dir", "median", "table",
    "header", "verdict", "hashlib_seconds", "parser", "file_sha256", "wait_log_stable",
    "cleanup", "kill_quietly",
]


# -- source files ---------------------------------------------------------------------------
def file_sha256(path: Path, chunk: int = 8 * MiB) -> str:
    digest = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


def ensure_random_file(name: str, size: int) -> tuple[Path, str]:
    """A file of `size` random bytes under bench/out/data, made once; (path, sha256 hex)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / name
    meta = DATA / (name + ".sha256.json")
    if path.exists() and path.stat().st_size == size and meta.exists():
        info = json.loads(meta.read_text())
        if info.get("size") == size and info.get("mtime_ns") == path.stat().st_mtime_ns:
            return path, info["sha256"]
    free = shutil.disk_usage(DATA).free
    if free < size + 2 * GiB:
        sys.exit(f"not enough space in {DATA} for a {size / GiB:.1f} GiB test file "
                 f"({free / GiB:.1f} GiB free)")
    print(f"generating {path} ({size:,} random bytes, once)...", flush=True)
    digest = hashlib.sha256()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(16 * MiB, left))
            digest.update(block)
            f.write(block)
            left -= len(block)
    os.replace(tmp, path)
    sha = digest.hexdigest()
    meta.write_text(json.dumps({"size": size, "mtime_ns": path.stat().st_mtime_ns,
                                "sha256": sha}))
    return path, sha


def write_catalog(path: Path, key: str, url: str, relpath: str, size: int | None,
                  sha256: str | None) -> Path:
    """A one-dataset, one-file catalog TOML for `easy-oww download --catalog`."""
    lines = [
        f"[datasets.{key}]",
        f'name = "bench {key}"',
        'description = "benchmark file"',
        'priority = "optional"',
        f"[[datasets.{key}.files]]",
        f'url = "{url}"',
        f'path = "{relpath}"',
    ]
    if size is not None:
        lines.append(f"size = {size}")
    if sha256 is not None:
        lines.append(f'hash = "sha256:{sha256}"')
    path.write_text("\n".join(lines) + "\n")
    return path


# -- processes ------------------------------------------------------------------------------
def easy_oww() -> str:
    """The `easy-oww` console script of the interpreter running the bench (the venv's)."""
    beside = Path(sys.executable).with_name("easy-oww")
    if beside.exists():
        return str(beside)
    found = shutil.which("easy-oww")
    if not found:
        sys.exit("easy-oww is not installed in this environment: pip install -e .")
    return found


def ours_cmd(workspace: Path, catalog: Path, key: str, connections: int) -> list[str]:
    return [easy_oww(), "--quiet", "download", "--workspace", str(workspace),
            "--catalog", str(catalog), "--dataset", key, "--connections", str(connections)]


def _snapshot() -> Path | None:
    """With EASY_OWW_BENCH_REV=<git rev> (e.g. HEAD), the CLI runs that commit's src/,
    exported once with `git archive` into bench/out/snap-<sha>, instead of the working tree
    (which may be mid-edit). Returns the folder to put first on PYTHONPATH."""
    rev = os.environ.get("EASY_OWW_BENCH_REV")
    if not rev:
        return None
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", rev],
                         capture_output=True, text=True, check=True).stdout.strip()
    snap = OUT / f"snap-{sha}"
    if not (snap / "src" / "easy_oww" / "__init__.py").exists():
        snap.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", sha, "src"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(snap)], input=archive, check=True)
    return snap / "src"


def bench_env(tmp: Path) -> dict[str, str]:
    """The environment for our CLI: config folder in a temp dir, no inherited workspace."""
    env = dict(os.environ)
    env.pop("EASY_OWW_WORKSPACE", None)
    env["EASY_OWW_CONFIG_DIR"] = str(tmp / "config")
    # Byte-compiled modules, as a pip install leaves them: with PYTHONDONTWRITEBYTECODE
    # (set in some shells and CI images) every run would compile every edited module again,
    # which is start-up time no user pays. The cache goes under bench/out, not src/.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
    snap = _snapshot()
    if snap is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(snap), env.get("PYTHONPATH")]))
    return env


@dataclass
class Result:
    wall: float  # seconds, start to exit
    rc: int
    maxrss_kib: int  # peak resident set of the process (its largest descendant included)
    stderr: str = ""
    cpu: float = 0.0  # user + system CPU seconds of the process

    @property
    def maxrss_mib(self) -> float:
        return self.maxrss_kib / 1024


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Proc:
    """A started process; `wait()` reaps it with os.wait4 to get its peak RSS."""

    def __init__(self, cmd: list[str], env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.cmd = cmd
        self._err = tempfile.TemporaryFile()
        self.t0 = time.perf_counter()
        # A shell runs background jobs with SIGINT ignored, and an ignored signal stays
        # ignored across exec: give the child the default, so SIGINT means Ctrl-C.
        self.popen = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=self._err,
                                      preexec_fn=_default_sigint)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def signal(self, sig: int) -> None:
        self.popen.send_signal(sig)

    def wait(self) -> Result:
        _, status, usage = os.wait4(self.popen.pid, 0)
        wall = time.perf_counter() - self.t0
        rc = os.waitstatus_to_exitcode(status)
        self.popen.returncode = rc  # reaped here; keep Popen from trying again
        self._err.seek(0)
        err = self._err.read().decode(errors="replace")
        self._err.close()
        return Result(wall, rc, usage.ru_maxrss, err, usage.ru_utime + usage.ru_stime)


def start(cmd: list[str], env: dict[str, str] | None = None) -> Proc:
    return Proc(cmd, env)


def run(cmd: list[str], env: dict[str, str] | None = None, *, sync_first: bool = True,
        check: bool = True) -> Result:
    """Run a command to completion, timed. `sync_first` flushes dirty pages left by the
    previous run so it does not bill its write-back to this one."""
    if sync_first:
        os.sync()
    result = start(cmd, env).wait()
    if check and result.rc != 0:
        sys.exit(f"command failed (exit {result.rc}): {' '.join(cmd)}\n{result.stderr[-2000:]}")
    return result


def fresh_dir(prefix: str) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=WORK))


def wait_log_stable(server: NginxServer, quiet_for: float = 1.0, timeout: float = 15.0
                    ) -> list[dict]:
    """nginx logs a request when it ends (a killed client's a moment later): poll the
    access log until it has not changed for `quiet_for` seconds."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        entries = server.access_log()
        if len(entries) != last:
            last, since = len(entries), time.monotonic()
        elif time.monotonic() - since >= quiet_for:
            return entries
        time.sleep(0.05)
    return server.access_log()


# -- reporting ------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for n, row in enumerate(cells):
        pairs = zip(row, widths, strict=True)
        out.append("  ".join(c.rjust(w) if n else c.ljust(w) for c, w in pairs))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else "?"


def _git_state() -> str:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                                  text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    rev = os.environ.get("EASY_OWW_BENCH_REV")
    if rev:
        sha = git("rev-parse", "--short", rev) or "?"
        return (f"git {sha} (EASY_OWW_BENCH_REV={rev}: that commit's src/, exported to "
                f"bench/out/snap-{sha})")
    head = git("rev-parse", "--short", "HEAD") or "?"
    dirty = git("status", "--porcelain", "--", "src")
    fetch = REPO / "src" / "easy_oww" / "transfer" / "fetch.py"
    try:
        fetch_sha = hashlib.sha256(fetch.read_bytes()).hexdigest()[:12]
    except OSError:
        fetch_sha = "?"
    return (f"git {head}{' + uncommitted changes in src/' if dirty else ''}; "
            f"fetch.py sha256 {fetch_sha}")


def header(title: str, command: str) -> None:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"== {title}")
    print(f"command: {command}")
    print(f"date:    {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    print(f"machine: {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
          f"Python {platform.python_version()}")
    print(f"code:    {_git_state()}")
    print(f"load:    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min load average"
          " at start: other work on the machine skews absolute times; ratios hold better)")
    print(f"tools:   {_tool_version(['nginx', '-v'])}; {_tool_version(['curl', '--version'])[:11]};"
          f" {_tool_version(['aria2c', '--version'])}")
    print(flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def hashlib_seconds(path: Path) -> float:
    t = time.perf_counter()
    file_sha256(path)
    return time.perf_counter() - t


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smaller files, fewer runs")
    p.add_argument("--clean", action="store_true",
                   help="delete the generated source files (bench/out/data) at the end")
    return p


def cleanup(paths: list[Path], clean_sources: bool) -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    if clean_sources:
        for p in paths:
            for q in (p, p.with_name(p.name + ".sha256.json")):
                q.unlink(missing_ok=True)


def kill_quietly(proc: Proc) -> None:
    if proc.popen.poll() is None:
        proc.signal(signal.SIGKILL)
