"""B13: `easy-oww mirror serve` throughput vs nginx serving the same file.

A workspace on tmpfs (/dev/shm) holds one random file, recorded in its manifest as verified
(size and sha256), so `mirror serve` serves it; nginx serves the same datasets folder. curl
reads the file to /dev/null from each: one client at a time (paired runs, order alternating),
then 8 clients at once (the wall time until the last one finishes). Throughput is bytes over
wall time; the ratio is ours / nginx. Targets: one client >= 0.7, 8 clients >= 0.5.

    python bench/b13_mirror_serve.py            # 1 GiB, 5 pairs each
    python bench/b13_mirror_serve.py --quick    # 256 MiB, 3 pairs each
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this tree's easy_oww

from _common import (  # noqa: E402
    REPO,
    GiB,
    MiB,
    NginxServer,
    bench_env,
    file_sha256,
    header,
    median,
    parser,
    table,
    verdict,
)

from easy_oww.datasets.cache import CacheManager  # noqa: E402

ONE_TARGET, EIGHT_TARGET = 0.7, 0.5
CLIENTS = 8
URL_LINE = re.compile(r" at (http://\S+) \(read-only")


def make_workspace(base: Path, size: int) -> tuple[Path, str]:
    """A workspace on tmpfs whose manifest records one random file as verified."""
    ws = base / "ws"
    path = ws / "datasets" / "bench" / "b13.bin"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(16 * MiB, left))
            out.write(block)
            left -= len(block)
    digest = "sha256:" + file_sha256(path)
    cache = CacheManager(ws / ".cache", ws / "datasets")
    cache.record_file("bench", path, size=size, hash=digest)
    cache.mark_complete("bench")
    return ws, "bench/b13.bin"


def start_mirror(ws: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`easy-oww mirror serve --port 0`; returns once it printed its address."""
    cmd = [sys.executable, "-m", "easy_oww", "mirror", "serve", "--workspace", str(ws),
           "--port", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    found = URL_LINE.search(line)
    if not found:
        proc.kill()
        sys.exit(f"mirror serve did not start: {line!r} {proc.stderr.read()[-2000:]}")
    return proc, found.group(1)


def curl(url: str) -> subprocess.Popen:
    return subprocess.Popen(["curl", "-s", "-f", "-o", "/dev/null", "-w", "%{size_download}",
                             url], stdout=subprocess.PIPE, text=True)


def timed(urls: list[str], size: int) -> float:
    """Wall seconds for curl clients reading `urls` at once, each to the end."""
    start = time.perf_counter()
    clients = [curl(url) for url in urls]
    for client in clients:
        out, _ = client.communicate()
        if client.returncode != 0 or int(out or 0) != size:
            sys.exit(f"curl failed (exit {client.returncode}, {out} bytes)")
    return time.perf_counter() - start


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=None, help="paired runs (default 5, quick 3)")
    args = p.parse_args()
    size = 256 * MiB if args.quick else GiB
    pairs = args.pairs or (3 if args.quick else 5)
    header("B13 mirror serve vs nginx", "python bench/b13_mirror_serve.py"
           + (" --quick" if args.quick else ""))
    base = Path(tempfile.mkdtemp(prefix="b13-", dir="/dev/shm"))
    server = mirror = None
    try:
        ws, rel = make_workspace(base, size)
        env = bench_env(base)
        if "EASY_OWW_BENCH_REV" not in os.environ:  # this tree's src/, not an installed copy
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"),
                                                              env.get("PYTHONPATH")]))
        server = NginxServer(ws / "datasets").start()
        mirror, mirror_url = start_mirror(ws, env)
        urls = {"ours": f"{mirror_url}/datasets/{rel}", "nginx": server.url(rel)}
        for url in urls.values():  # warm-up: page cache, connections, imports
            timed([url], size)

        results: dict[int, list[float]] = {1: [], CLIENTS: []}
        rows = []
        for clients in (1, CLIENTS):
            for i in range(pairs):
                order = ("ours", "nginx") if i % 2 == 0 else ("nginx", "ours")
                seconds = {side: timed([urls[side]] * clients, size) for side in order}
                ratio = seconds["nginx"] / seconds["ours"]  # throughput ours / nginx
                results[clients].append(ratio)
                rows.append([clients, i + 1, "/".join(order),
                             f"{clients * size / seconds['ours'] / 1e9:.2f}",
                             f"{clients * size / seconds['nginx'] / 1e9:.2f}", f"{ratio:.3f}"])
    finally:
        if mirror is not None:
            mirror.terminate()
            mirror.wait(10)
        if server is not None:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)

    print(table(["clients", "run", "order", "ours GB/s", "nginx GB/s", "ours/nginx"], rows))
    print()
    print(f"file: {size:,} bytes on tmpfs; curl -o /dev/null; {CLIENTS} clients: "
          "aggregate bytes over the wall time until the last finishes")
    one, eight = median(results[1]), median(results[CLIENTS])
    print(f"median one client ours/nginx = {one:.3f}  (target >= {ONE_TARGET})  "
          f"{verdict(one >= ONE_TARGET)}")
    print(f"median {CLIENTS} clients ours/nginx = {eight:.3f}  (target >= {EIGHT_TARGET})  "
          f"{verdict(eight >= EIGHT_TARGET)}")
    print(f"load at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
