"""B5: one durable per-sample checkpoint, ours (SQLite) against the seed's (whole-state pickle).

Ours: one transaction holding a new sample and its 15 similar edges, committed with WAL +
``synchronous=FULL`` (the sample survives a power cut once the commit returns), timed when the
library already holds 1k, 10k, 20k and 100k samples. Target: median <= 1 ms and flat
(100k / 1k <= 2).

Anchor, restated faithfully from the seed's project (REFERENCE §4): the whole state
``{graph, processed_ids, metadata, sound_cache}`` re-pickled with ``joblib.dump(...,
compress=3)`` after every sample (no temp file, no fsync: as it did). Timed at 1k and 20k.
Target: ours >= 1,000x faster at 20k.

    python bench/b5_checkpoint.py [--sizes 1000,10000,20000,100000] [--commits 300]

Needs joblib (bench-only: pip install joblib).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from easy_oww.freesound.store import FreesoundLibrary  # noqa: E402

EDGES_PER_SAMPLE = 15


def make_sound(sound_id: int) -> dict:
    """A sound as the API returns it with every field the library asks for (~1.5 KB JSON)."""
    rng = random.Random(sound_id)
    folder = sound_id // 1000
    return {
        "id": sound_id,
        "url": f"https://freesound.org/people/user{sound_id % 997}/sounds/{sound_id}/",
        "name": f"ambience {sound_id} {rng.choice(['rain', 'street', 'kitchen'])}.wav",
        "tags": rng.sample(["rain", "street", "field-recording", "ambience", "city", "night",
                            "room-tone", "birds", "wind", "crowd"], 5),
        "description": "Recorded with a Zoom H5 at dusk. " * 4,
        "category": ["Soundscapes", "Urban"], "subcategory": "Urban", "geotag": None,
        "created": "2019-06-01T12:00:00", "type": "wav",
        "license": "http://creativecommons.org/publicdomain/zero/1.0/",
        "channels": 2, "filesize": 1_000_000 + sound_id, "bitrate": 1411, "bitdepth": 16,
        "duration": round(rng.uniform(1, 120), 3), "samplerate": 44100, "md5": "0" * 32,
        "username": f"user{sound_id % 997}",
        "pack": f"https://freesound.org/apiv2/packs/{sound_id % 3001}/",
        "pack_name": f"pack {sound_id % 3001}",
        "previews": {k: f"https://cdn.freesound.org/previews/{folder}/{sound_id}_1-{k}"
                     for k in ("hq.mp3", "lq.mp3", "hq.ogg", "lq.ogg")},
        "images": {k: f"https://cdn.freesound.org/displays/{folder}/{sound_id}_1_{k}.png"
                   for k in ("wave_L", "wave_M", "spec_L", "spec_M")},
        "num_downloads": rng.randrange(10_000), "avg_rating": round(rng.uniform(0, 5), 2),
        "num_ratings": rng.randrange(50), "num_comments": rng.randrange(20), "is_explicit": False,
    }


def edges_for(sound_id: int, existing: int) -> list[tuple[int, int, str, float, int]]:
    rng = random.Random(-sound_id)
    targets = rng.sample(range(1, existing + 1), min(EDGES_PER_SAMPLE, existing))
    return [(sound_id, t, "similar", round(1 - r / 150, 4), r + 1) for r, t in enumerate(targets)]


def fill(lib: FreesoundLibrary, start: int, stop: int) -> None:
    """Grow the library from `start` to `stop` samples quickly (bulk transactions)."""
    step = 5000
    for low in range(start + 1, stop + 1, step):
        high = min(stop, low + step - 1)
        lib.bulk_add((make_sound(i) for i in range(low, high + 1)),
                     [e for i in range(low, high + 1) for e in edges_for(i, i - 1 or 1)
                      if e[1] != i])


def time_ours(lib: FreesoundLibrary, next_id: int, existing: int, commits: int) -> list[float]:
    sounds = [make_sound(next_id + k) for k in range(commits)]
    times = []
    for k, sound in enumerate(sounds):
        edges = edges_for(next_id + k, existing)
        start = time.perf_counter()
        with lib.transaction():  # BEGIN IMMEDIATE ... COMMIT (fsync of the WAL)
            lib.add_sample(sound)
            for source, target, kind, weight, rank in edges:
                lib.add_edge(source, target, kind, weight, rank)
        times.append(time.perf_counter() - start)
    return times


def time_pickle(size: int, folder: Path, reps: int) -> list[float]:
    import joblib
    import networkx as nx

    graph = nx.DiGraph()
    cache = {}
    for i in range(1, size + 1):
        sound = make_sound(i)
        cache[i] = sound
        graph.add_node(i, **{k: sound[k] for k in ("name", "tags", "duration", "username",
                                                   "num_downloads", "avg_rating", "license")})
        for source, target, kind, weight, _ in edges_for(i, max(i - 1, 1)):
            if target != i:
                graph.add_edge(source, target, type=kind, weight=weight)
    state = {"graph": graph, "processed_ids": set(cache), "sound_cache": cache,
             "metadata": {"last_updated": time.time(), "total_nodes": size,
                          "total_edges": graph.number_of_edges()}}
    path = folder / "freesound_library.pkl"
    times = []
    for _ in range(reps):
        state["metadata"]["last_updated"] = time.time()
        start = time.perf_counter()
        joblib.dump(state, path, compress=3)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,20000,100000")
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--pickle-sizes", default="1000,20000")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp folder)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    base = Path(args.dir or tempfile.mkdtemp(prefix="b5-"))
    print(f"B5 {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.platform()}, "
          f"{os.cpu_count()} cores, folder {base}")

    ours: dict[int, float] = {}
    lib = FreesoundLibrary(base / "library")
    have = 0
    next_id = 10_000_000
    for size in sizes:
        fill(lib, have, size)
        have = size
        lib.checkpoint()
        times = time_ours(lib, next_id, have, args.commits)
        next_id += args.commits
        ours[size] = statistics.median(times)
        p90 = sorted(times)[int(len(times) * 0.9)]
        print(f"ours   {size:>7} samples: median {ours[size] * 1e3:.3f} ms, "
              f"p90 {p90 * 1e3:.3f} ms per durable sample+{EDGES_PER_SAMPLE} edges "
              f"({args.commits} commits, db {lib.db_bytes() / 1e6:.0f} MB)")
    lib.close()
    if len(sizes) > 1:
        print(f"flatness: {sizes[-1]} / {sizes[0]} = {ours[sizes[-1]] / ours[sizes[0]]:.2f} "
              "(target <= 2)")

    for size in (int(s) for s in args.pickle_sizes.split(",")):
        reps = 5 if size <= 5000 else 3
        times = time_pickle(size, base, reps)
        anchor = statistics.median(times)
        mine = ours.get(size)
        ratio = f", ours {anchor / mine:,.0f}x faster" if mine else ""
        print(f"pickle {size:>7} samples: median {anchor * 1e3:.0f} ms per checkpoint "
              f"(joblib compress=3, whole state, {reps} reps){ratio}")


if __name__ == "__main__":
    main()
