"""B1: one connection, sha256 on, vs curl alone.

nginx on loopback serves a 2 GiB random file. Each paired run times, as whole processes,
`easy-oww download --connections 1` (fresh workspace, the file's sha256 in the catalog,
so the engine hashes while it downloads and refuses a wrong file) and `curl -s -o FILE URL`
(no hash). Order alternates between pairs; `sync` runs before every timed process so
write-back from one run is not billed to the next. Target: median(ours / curl) <= 1.15.

For context it also times `sha256sum` and Python's hashlib on the (page-cached) file.

    python bench/b1_single_connection.py            # 2 GiB, 5 pairs
    python bench/b1_single_connection.py --quick    # 512 MiB, 3 pairs
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    GiB,
    MiB,
    NginxServer,
    bench_env,
    cleanup,
    ensure_random_file,
    fresh_dir,
    hashlib_seconds,
    header,
    median,
    ours_cmd,
    parser,
    run,
    table,
    verdict,
    write_catalog,
)

TARGET = 1.15


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=None, help="paired runs (default 5, quick 3)")
    p.add_argument("--tmpfs", action="store_true",
                   help="write both outputs to /dev/shm instead of bench/out (no disk)")
    args = p.parse_args()
    size = 512 * MiB if args.quick else 2 * GiB
    pairs = args.pairs or (3 if args.quick else 5)
    name = f"b1_{size // MiB}MiB.bin"
    header("B1 single connection + sha256 vs curl",
           "python bench/b1_single_connection.py" + (" --quick" if args.quick else "")
           + (" --tmpfs" if args.tmpfs else ""))
    src, sha = ensure_random_file(name, size)
    server = NginxServer(src.parent).start()
    try:
        url = server.url(name)
        base = fresh_dir("b1-") if not args.tmpfs else Path(
            __import__("tempfile").mkdtemp(prefix="b1-", dir="/dev/shm"))
        catalog = write_catalog(base / "catalog.toml", "b1", url, "bench/b1.bin", size, sha)
        env = bench_env(base)
        # Warm-up (page cache of the source, nginx, Python's imports): not counted.
        run(["curl", "-s", "-o", str(base / "warm.bin"), url])
        (base / "warm.bin").unlink()

        rows, ratios, cpu_ratios, durable_ratios = [], [], [], []
        for i in range(pairs):
            times: dict[str, float] = {}
            cpu: dict[str, float] = {}
            order = ("ours", "curl") if i % 2 == 0 else ("curl", "ours")
            for side in order:
                if side == "ours":
                    ws = base / f"ws{i}"
                    r = run(ours_cmd(ws, catalog, "b1", 1), env)
                    out = ws / "datasets" / "bench" / "b1.bin"
                    assert out.stat().st_size == size, "ours: wrong size"
                    shutil.rmtree(ws)
                else:
                    out = base / f"curl{i}.bin"
                    r = run(["curl", "-s", "-o", str(out), url])
                    assert out.stat().st_size == size, "curl: wrong size"
                    # Ours fsyncs before calling a file done; `sync FILE` gives curl the same
                    # durability, timed separately so both ratios can be read.
                    synced = run(["sync", str(out)], sync_first=False)
                    times["sync"] = synced.wall
                    out.unlink()
                times[side] = r.wall
                cpu[side] = r.cpu
            ratio = times["ours"] / times["curl"]
            ratios.append(ratio)
            durable_ratios.append(times["ours"] / (times["curl"] + times["sync"]))
            cpu_ratios.append(cpu["ours"] / cpu["curl"])
            rows.append([i + 1, "/".join(order), f"{times['ours']:.2f}", f"{times['curl']:.2f}",
                         f"{ratio:.3f}", f"{times['sync']:.2f}", f"{durable_ratios[-1]:.3f}",
                         f"{cpu['ours']:.2f}", f"{cpu['curl']:.2f}"])
        hl = hashlib_seconds(src)
        s = run(["sha256sum", str(src)], sync_first=False)
    finally:
        server.stop()

    print(table(["pair", "order", "ours s", "curl s", "ours/curl", "+sync s",
                 "ours/(curl+sync)", "ours CPU s", "curl CPU s"], rows))
    print()
    print(f"file: {size:,} bytes; ours: easy-oww download --connections 1, sha256 checked")
    print(f"context: sha256sum {s.wall:.2f} s; Python hashlib sha256 {hl:.2f} s "
          f"({size / hl / 1e9:.2f} GB/s)")
    print(f"median CPU ours/curl = {median(cpu_ratios):.2f} (user+sys of the client process; "
          "nginx not included)")
    print(f"median ours/(curl + sync FILE) = {median(durable_ratios):.3f}  (the same durability "
          "as ours: both files on disk, not just in the page cache)")
    med = median(ratios)
    print(f"median ours/curl = {med:.3f}  (target <= {TARGET})  {verdict(med <= TARGET)}")
    cleanup([src], args.clean)
    if args.tmpfs:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
