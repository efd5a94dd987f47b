"""B2: eight connections against a per-connection rate cap, vs aria2c -x8 -s8 (and curl).

nginx on loopback with `limit_rate 20m` per connection (a CDN-like cap) serves a 200 MB
random file. Each paired run times whole processes: `easy-oww download --connections 8`
(fresh workspace, sha256 checked) and `aria2c -x8 -s8 --file-allocation=none`. Order
alternates. curl (one connection) runs once for the ">= 5x faster than curl" claim.
Targets: median(ours / aria2c) <= 1.25 and curl / ours >= 5.

    python bench/b2_multi_connection.py            # 200 MB, 5 pairs
    python bench/b2_multi_connection.py --quick    # 100 MB, 3 pairs
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    NginxServer,
    bench_env,
    cleanup,
    ensure_random_file,
    fresh_dir,
    header,
    median,
    ours_cmd,
    parser,
    run,
    table,
    verdict,
    write_catalog,
)

TARGET_ARIA = 1.25
TARGET_CURL = 5.0
RATE = "20m"


def aria_cmd(url: str, outdir: Path, name: str) -> list[str]:
    return ["aria2c", "-x8", "-s8", "--file-allocation=none", "--quiet=true",
            "--allow-overwrite=true", "--auto-file-renaming=false", "--check-certificate=false",
            "-d", str(outdir), "-o", name, url]


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=None, help="paired runs (default 5, quick 3)")
    args = p.parse_args()
    size = 100_000_000 if args.quick else 200_000_000
    pairs = args.pairs or (3 if args.quick else 5)
    name = f"b2_{size // 1_000_000}MB.bin"
    header(f"B2 --connections 8 vs aria2c -x8 -s8 (nginx limit_rate {RATE} per connection)",
           "python bench/b2_multi_connection.py" + (" --quick" if args.quick else ""))
    src, sha = ensure_random_file(name, size)
    server = NginxServer(src.parent, limit_rate=RATE).start()
    try:
        url = server.url(name)
        base = fresh_dir("b2-")
        catalog = write_catalog(base / "catalog.toml", "b2", url, "bench/b2.bin", size, sha)
        env = bench_env(base)
        rows, ratios, ours_times = [], [], []
        for i in range(pairs):
            times: dict[str, float] = {}
            order = ("ours", "aria2c") if i % 2 == 0 else ("aria2c", "ours")
            for side in order:
                if side == "ours":
                    ws = base / f"ws{i}"
                    r = run(ours_cmd(ws, catalog, "b2", 8), env)
                    out = ws / "datasets" / "bench" / "b2.bin"
                    assert out.stat().st_size == size, "ours: wrong size"
                    shutil.rmtree(ws)
                    ours_times.append(r.wall)
                else:
                    outdir = base / f"aria{i}"
                    r = run(aria_cmd(url, outdir, "b2.bin"))
                    assert (outdir / "b2.bin").stat().st_size == size, "aria2c: wrong size"
                    shutil.rmtree(outdir)
                times[side] = r.wall
            ratio = times["ours"] / times["aria2c"]
            ratios.append(ratio)
            rows.append([i + 1, "/".join(order), f"{times['ours']:.2f}",
                         f"{times['aria2c']:.2f}", f"{ratio:.3f}"])
        curl_out = base / "curl.bin"
        curl = run(["curl", "-s", "-o", str(curl_out), url])
        assert curl_out.stat().st_size == size
        curl_out.unlink()
    finally:
        server.stop()

    print(table(["pair", "order", "ours s", "aria2c s", "ours/aria2c"], rows))
    print()
    med = median(ratios)
    ours_med = median(ours_times)
    speedup = curl.wall / ours_med
    print(f"file: {size:,} bytes; nginx limit_rate {RATE} per connection")
    print(f"median ours/aria2c = {med:.3f}  (target <= {TARGET_ARIA})  "
          f"{verdict(med <= TARGET_ARIA)}")
    print(f"curl (1 connection) {curl.wall:.2f} s; curl / median ours = {speedup:.2f}x  "
          f"(target >= {TARGET_CURL}x)  {verdict(speedup >= TARGET_CURL)}")
    cleanup([src], args.clean)
    return 0


if __name__ == "__main__":
    sys.exit(main())
