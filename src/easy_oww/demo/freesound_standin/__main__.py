"""``python -m easy_oww.demo.freesound_standin``: the stand-in as a process (for chaos tests
that SIGKILL the client). See the package docstring."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from easy_oww.demo import freesound_standin
from easy_oww.demo.freesound_standin.server import FreesoundStandin


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m easy_oww.demo.freesound_standin",
                                 description=freesound_standin.__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--sounds", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--key", default="test-key")
    ap.add_argument("--per-minute", type=int, default=None)
    ap.add_argument("--per-day", type=int, default=None)
    ap.add_argument("--deleted", type=int, default=20)
    args = ap.parse_args(argv)
    server = FreesoundStandin(args.sounds, args.seed, args.key, args.per_minute, args.per_day,
                              n_deleted=args.deleted, host=args.host, port=args.port)
    server.start()
    print(f"PORT {server.port}", flush=True)
    print(f"BASE_URL {server.base_url}", flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

