"""B3: stop a download at about 90 % and resume it; count the bytes at the server.

nginx on loopback (limit_rate per connection so the 8-connection download takes a few
seconds) serves a 200 MB random file. `easy-oww download --connections 8` starts in a
fresh workspace; the bench polls the `.part.json` sidecar and, when its done ranges reach
90 %, stops the CLI: SIGINT (Ctrl-C) and SIGKILL (power cut / OOM kill). A third run
sends SIGKILL when the part file's allocated blocks (bytes really written) reach 90 %,
whatever the sidecar says: a kill at a moment unrelated to the sidecar saves (every 0.5 s),
so progress written but not yet recorded is lost and fetched again. (nginx's limit_rate
sends each connection's allowance in a burst at each second, and a trigger on the sidecar
lands just after a save, the best case for a kill.)
Then the same command resumes it. nginx's access log (`$body_bytes_sent` per request)
gives what each run really transferred.

    missing   = size - bytes nginx sent in the stopped run    (what the resume must fetch)
    overshoot = bytes nginx sent in the resume run - missing  (= total sent - size)
    ranges    = overshoot / (connections x 1 MiB chunk)

Target: overshoot <= one 1 MiB range per connection (8 MiB), and the final sha256 is the
source's. The sidecar's own view (size - done ranges it recorded) is printed too: the
difference between the two is progress written to the part file but not yet recorded.

    python bench/b3_resume.py            # 200 MB, limit_rate 2m/connection (~12 s)
    python bench/b3_resume.py --quick    # 100 MB, limit_rate 1m/connection
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    MiB,
    NginxServer,
    bench_env,
    cleanup,
    ensure_random_file,
    file_sha256,
    fresh_dir,
    header,
    kill_quietly,
    ours_cmd,
    parser,
    run,
    start,
    table,
    verdict,
    wait_log_stable,
    write_catalog,
)

CONNECTIONS = 8
CHUNK = 1 * MiB  # FetchOptions.chunk: the unit one connection reads and records
STOP_AT = 0.90


def sent(entries: list[dict], uri: str) -> tuple[int, int]:
    gets = [e for e in entries if e["uri"] == uri and e["method"] == "GET"]
    return sum(e["body_bytes_sent"] for e in gets), len(gets)


def done_total(sidecar: Path) -> int | None:
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    return sum(e - s for s, e in data.get("done", []))


def one(server: NginxServer, base: Path, catalog: Path, size: int, sha: str, name: str,
        sig: signal.Signals, by_blocks: bool) -> dict:
    env = bench_env(base)
    ws = base / f"ws-{sig.name}-{by_blocks}"
    cmd = ours_cmd(ws, catalog, "b3", CONNECTIONS)
    final = ws / "datasets" / "bench" / "b3.bin"
    part = Path(str(final) + ".part")
    sidecar = Path(str(final) + ".part.json")
    server.reset_access_log()

    proc = start(cmd, env)
    seen = 0
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise SystemExit(f"the download finished before {STOP_AT:.0%}: lower the rate")
            seen = done_total(sidecar) or seen
            if by_blocks:
                try:  # bytes really written to the (sparse) part file, sidecar or not
                    written = part.stat().st_blocks * 512
                except FileNotFoundError:
                    written = 0
                if written >= STOP_AT * size:
                    break
            elif seen >= STOP_AT * size:
                break
            time.sleep(0.002)
        proc.signal(sig)
        first = proc.wait()
    finally:
        kill_quietly(proc)
    entries = wait_log_stable(server)
    sent1, gets1 = sent(entries, "/" + name)
    recorded = done_total(sidecar) or 0
    n1 = len(entries)

    second = run(cmd, env)
    entries = wait_log_stable(server)
    sent2, gets2 = sent(entries[n1:], "/" + name)
    ok_hash = file_sha256(final) == sha
    shutil.rmtree(ws)
    missing = size - sent1
    return {
        "signal": sig.name + (" (part file)" if by_blocks else " (sidecar)"),
        "seen": seen, "rc1": first.rc, "sent1": sent1, "gets1": gets1,
        "recorded": recorded, "sent2": sent2, "gets2": gets2, "rc2": second.rc,
        "missing": missing, "overshoot": sent2 - missing,
        "overshoot_vs_sidecar": sent2 - (size - recorded), "hash_ok": ok_hash,
        "resume_wall": second.wall,
    }


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rate", default=None,
                   help="nginx limit_rate per connection (default 2m, quick 1m)")
    p.add_argument("--signal", choices=["INT", "KILL", "both"], default="both")
    args = p.parse_args()
    size = 100_000_000 if args.quick else 200_000_000
    rate = args.rate or ("1m" if args.quick else "2m")
    name = f"b2_{size // 1_000_000}MB.bin"  # the same source file as B2
    header(f"B3 stop at {STOP_AT:.0%} and resume, {CONNECTIONS} connections "
           f"(nginx limit_rate {rate} per connection)",
           "python bench/b3_resume.py" + (" --quick" if args.quick else ""))
    src, sha = ensure_random_file(name, size)
    late = (signal.SIGKILL, True)
    sigs = {"INT": [(signal.SIGINT, False)], "KILL": [(signal.SIGKILL, False), late],
            "both": [(signal.SIGINT, False), (signal.SIGKILL, False), late]}[args.signal]
    server = NginxServer(src.parent, limit_rate=rate).start()
    results = []
    try:
        url = server.url(name)
        base = fresh_dir("b3-")
        catalog = write_catalog(base / "catalog.toml", "b3", url, "bench/b3.bin", size, sha)
        for sig, by_blocks in sigs:
            results.append(one(server, base, catalog, size, sha, name, sig, by_blocks))
    finally:
        server.stop()

    unit = CONNECTIONS * CHUNK
    rows = []
    all_ok = True
    for r in results:
        ok = r["overshoot"] <= unit and r["hash_ok"] and r["rc2"] == 0
        all_ok &= ok
        rows.append([
            r["signal"], f"{r['seen'] / size:.1%}", r["rc1"], f"{r['sent1']:,}",
            f"{r['missing']:,}", f"{r['sent2']:,} ({r['gets2']} GETs)",
            f"{r['overshoot']:,}", f"{r['overshoot'] / unit:.2f}",
            f"{r['overshoot_vs_sidecar']:,}", "ok" if r["hash_ok"] else "WRONG",
            verdict(ok),
        ])
    print(table(["stop (trigger)", "sidecar@stop", "exit", "sent 1st run", "missing",
                 "sent on resume", "overshoot B", "ranges", "vs sidecar B", "sha256", "result"],
                rows))
    print()
    print(f"file: {size:,} bytes; range = {CONNECTIONS} connections x 1 MiB = "
          f"{unit:,} bytes")
    print(f"target: resume sends <= missing + {unit:,} bytes (one range per connection) "
          f"and the sha256 matches  {verdict(all_ok)}")
    cleanup([src], args.clean)
    return 0


if __name__ == "__main__":
    sys.exit(main())
