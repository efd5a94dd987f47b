"""B6: API quota per stored sample, counted at the Freesound stand-in (3,000 sounds).

Ours: `easy-oww freesound grow --samples 1000` from an empty library (target <= 100 requests;
seeding <= 0.2 requests per stored sample), then three default runs (`grow`, 50 samples each)
on a fresh library, all through the real command.

Anchor, the seed project's way (REFERENCE §4): a text search with the default fields, then for
every sample one `GET /sounds/<id>/` for its metadata (the "sound cache" filled one sound at a
time) and one `GET /sounds/<id>/similar/` for its edges, breadth first.

    python bench/b6_quota.py [--samples 1000] [--anchor-samples 300]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from easy_oww.demo.freesound_standin import FreesoundStandin  # noqa: E402
from easy_oww.freesound.api import FreesoundClient, RateBudget  # noqa: E402

KEY = "bench-key-b6"


def grow_cli(fs: FreesoundStandin, workspace: Path, env: dict, *extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "easy_oww", "freesound", "grow", "--workspace", str(workspace),
         "--api-url", fs.base_url, "--per-minute", "100000", "--json", *extra],
        capture_output=True, text=True, env=env, check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def anchor(fs: FreesoundStandin, samples: int) -> int:
    """The seed's crawl: metadata one sound at a time, similar one sound at a time."""
    budget = RateBudget.for_key(KEY + "-anchor", per_minute=100000, per_day=10**6)
    client = FreesoundClient(KEY, base_url=fs.base_url, budget=budget)
    queue = deque(r["id"] for r in client.search("ambience")["results"])
    cache: dict[int, dict] = {}
    while queue and len(cache) < samples:
        sound_id = queue.popleft()
        if sound_id in cache:
            continue
        try:
            cache[sound_id] = client.sound(sound_id)
            similar = client.get(f"/sounds/{sound_id}/similar/", {"page_size": 15})
        except Exception:  # a deleted sound: skipped, as the seed's code did
            continue
        queue.extend(r["id"] for r in similar["results"])
    return client.requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--anchor-samples", type=int, default=300)
    args = parser.parse_args()
    print(f"B6 {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.platform()}, "
          f"{os.cpu_count()} cores")
    base = Path(tempfile.mkdtemp(prefix="b6-"))
    env = dict(os.environ, EASY_OWW_CONFIG_DIR=str(base / "config"), FREESOUND_API_KEY=KEY,
               PYTHONPATH=str(ROOT / "src"))
    with FreesoundStandin(n_sounds=3000, seed=0, api_key=KEY) as fs:
        start = time.perf_counter()
        summary = grow_cli(fs, base / "ws1", env, "--samples", str(args.samples))
        seconds = time.perf_counter() - start
        log = fs.request_log()
        seeds = sum(1 for r in log if "similar_to" not in r["params"])
        total = fs.stats["api"]
        print(f"ours: grow --samples {args.samples} from empty: stored {summary['stored']}, "
              f"{total} requests ({total / summary['stored']:.3f} per sample; target <= 100 "
              f"in all), seeding {seeds} requests ({seeds / summary['stored']:.3f} per sample; "
              f"target <= 0.2), {summary['edges']} edges, {seconds:.1f} s")
        print(f"      endpoints: {fs.stats['by_endpoint']}")
        for run in range(1, 4):
            fs.reset_stats()
            summary = grow_cli(fs, base / "ws2", env)
            print(f"ours: default run {run}: stored {summary['stored']} (library "
                  f"{summary['samples']}), {fs.stats['api']} requests, {summary['edges']} edges")
        fs.reset_stats()
        requests = anchor(fs, args.anchor_samples)
        per = requests / args.anchor_samples
        ours = total / args.samples
        print(f"anchor (seed's way): {args.anchor_samples} samples, {requests} requests "
              f"({per:.2f} per sample); ours uses {per / ours:.0f}x fewer requests per sample")


if __name__ == "__main__":
    main()
