"""B12: `freesound export` and `freesound merge` of a 100,000-sample library: each <= 30 s and
<= 1 GB peak RSS.

Builds two libraries (bulk insert, B5's sample shape, ~1.5 KB of API JSON each) that share
half their samples: A holds ids 1..N, B ids N/2+1..3N/2; each has similar edges (E in all),
edges waiting for samples only the other stored, and seen ids. Then times the real commands,
each in its own process (`python -m easy_oww ...`; peak RSS from os.wait4, the kernel's
ru_maxrss): the JSON lines export of each, merging B into a copy of A from B's export and from
B's folder, the same merge again (nothing to add), and every other export format of A.

    python bench/b12_export_merge.py [--samples 100000] [--edges 1000000] [--dir FOLDER]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from b5_checkpoint import make_sound  # noqa: E402

from easy_oww.freesound.store import FreesoundLibrary  # noqa: E402

BUDGET_SECONDS, BUDGET_BYTES = 30.0, 1e9


def build(folder: Path, low: int, high: int, edges: int, outside: range, seed: int) -> None:
    """Samples low..high with `edges` similar edges among them and to ids in `outside` (which
    wait, pending), a seen row for every such id, and a third of the samples expanded."""
    if folder.exists():
        return
    rng = random.Random(seed)
    count = high - low + 1
    per = max(1, edges // count)
    with FreesoundLibrary(folder, durable=False) as lib:
        for start in range(low, high + 1, 10_000):
            end = min(high, start + 9_999)
            batch = []
            for i in range(start, end + 1):
                targets: set[int] = set()
                while len(targets) < per:
                    pool = outside if rng.random() < 0.1 else range(low, high + 1)
                    target = rng.choice(pool)
                    if target != i:
                        targets.add(target)
                batch += [(i, t, "similar", round(1 - r / 150, 4), r + 1)
                          for r, t in enumerate(sorted(targets))]
            lib.bulk_add((make_sound(i) for i in range(start, end + 1)), batch)
        with lib.transaction() as conn:
            waiting = [row[0] for row in conn.execute(
                "SELECT DISTINCT target FROM pending_edges")]
            for sound_id in waiting:
                lib.remember_seen(make_sound(sound_id) if sound_id % 2 else None, sound_id)
            conn.execute("UPDATE samples SET expanded = 1 WHERE id % 3 = 0")
        lib.checkpoint()


def timed(*args: str) -> tuple[float, int, str]:
    """Run `python -m easy_oww ARGS`; (seconds, peak RSS bytes, stdout). The child is reaped
    with os.wait4, whose ru_maxrss is that one process's peak."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "easy_oww", *args], env=env,
                                stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        if proc.returncode:
            raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): "
                             f"{stderr.read().decode().strip()}")
        return seconds, usage.ru_maxrss * 1024, stdout.read().decode()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    n = args.samples
    base = Path(args.dir or tempfile.mkdtemp(prefix="b12-"))
    base.mkdir(parents=True, exist_ok=True)
    print(f"B12 {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.platform()}, "
          f"{os.cpu_count()} cores, folder {base}")
    start = time.perf_counter()
    a, b = base / "a", base / "b"
    build(a, 1, n, args.edges, range(n + 1, n + n // 2 + 1), seed=1)
    build(b, n // 2 + 1, n + n // 2, args.edges, range(1, n // 2 + 1), seed=2)
    for folder in (a, b):
        with FreesoundLibrary(folder) as lib:
            s = lib.stats()
        print(f"library {folder.name}: {s.samples} samples, {s.edges} edges, "
              f"{s.pending_edges} pending, {s.seen} seen, {s.db_bytes / 1e6:.0f} MB")
    print(f"(built in {time.perf_counter() - start:.0f} s)")
    rows = []

    def step(label: str, *cli: str) -> str:
        seconds, peak, stdout = timed(*cli)
        ok = seconds <= BUDGET_SECONDS and peak <= BUDGET_BYTES
        rows.append((label, seconds, peak, ok))
        print(f"{label:<44} {seconds:6.1f} s  {peak / 1e6:6.0f} MB  {'ok' if ok else 'OVER'}"
              f"   {stdout.splitlines()[0] if stdout else ''}", flush=True)
        return stdout

    out = base / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    for copy in ("a_from_jsonl", "a_from_folder"):
        shutil.rmtree(base / copy, ignore_errors=True)
        shutil.copytree(a, base / copy)
    step("export A --format jsonl", "freesound", "--library", str(a), "export",
         str(out / "a.jsonl"), "--format", "jsonl")
    step("export B --format jsonl", "freesound", "--library", str(b), "export",
         str(out / "b.jsonl"), "--format", "jsonl")
    step("merge B's export into A", "freesound", "--library", str(base / "a_from_jsonl"),
         "merge", str(out / "b.jsonl"))
    step("merge B's folder into A", "freesound", "--library", str(base / "a_from_folder"),
         "merge", str(b))
    step("merge B's export into A again (adds nothing)", "freesound", "--library",
         str(base / "a_from_jsonl"), "merge", str(out / "b.jsonl"))
    for fmt in ("csv", "json", "gexf", "graphml"):
        step(f"export A --format {fmt}", "freesound", "--library", str(a), "export",
             str(out / f"a.{fmt}"), "--format", fmt)
    for copy in ("a_from_jsonl", "a_from_folder"):
        step(f"export {copy} --format jsonl", "freesound", "--library", str(base / copy),
             "export", str(out / f"{copy}.jsonl"), "--format", "jsonl")
    same = sha(out / "a_from_jsonl.jsonl") == sha(out / "a_from_folder.jsonl")
    print(f"merged from the export and from the folder: the same JSONL bytes: {same}")
    print(f"JSONL sizes: A {(out / 'a.jsonl').stat().st_size / 1e6:.0f} MB, merged "
          f"{(out / 'a_from_jsonl.jsonl').stat().st_size / 1e6:.0f} MB")
    over = [label for label, _, _, ok in rows if not ok]
    print(f"budget <= {BUDGET_SECONDS:.0f} s and <= {BUDGET_BYTES / 1e9:.0f} GB each: "
          + ("all within" if not over else "over: " + "; ".join(over)))


if __name__ == "__main__":
    main()
