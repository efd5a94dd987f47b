"""B7: `FreesoundLibrary.graph()` of a 100k-sample, 1M-edge library: <= 10 s, <= 2 GB peak.

Builds the library once (bulk insert, same schema and sample shape as B5), then loads the
graph in a fresh process so the peak memory (ru_maxrss) is the graph's, not the builder's.
Anchor: the seed kept the graph in a joblib pickle; loading that pickle (joblib.load) is timed
beside it when joblib is installed.

    python bench/b7_graph.py [--samples 100000] [--edges 1000000] [--dir FOLDER]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
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

CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from easy_oww.freesound.store import FreesoundLibrary
import networkx  # imported before timing: the import is not the graph's cost
lib = FreesoundLibrary(sys.argv[1], create=False)
derived = sys.argv[3] == "1"
start = time.perf_counter()
graph = lib.graph(derived=derived)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak_bytes": peak, "nodes": graph.number_of_nodes(),
                  "edges": graph.number_of_edges()}))
"""

PICKLE_CHILD = """
import json, resource, sys, time
import joblib, networkx
start = time.perf_counter()
state = joblib.load(sys.argv[1])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak_bytes": peak,
                  "edges": state["graph"].number_of_edges()}))
"""


def build(folder: Path, samples: int, edges: int) -> None:
    per = edges // samples
    rng = random.Random(7)
    with FreesoundLibrary(folder) as lib:
        if lib.stats().samples == samples:
            return
        step = 10_000
        for low in range(1, samples + 1, step):
            high = min(samples, low + step - 1)
            batch = []
            for i in range(low, high + 1):
                targets = set()
                while len(targets) < per:
                    t = rng.randrange(1, samples + 1)
                    if t != i:
                        targets.add(t)
                batch += [(i, t, "similar", round(1 - r / 150, 4), r + 1)
                          for r, t in enumerate(sorted(targets))]
            lib.bulk_add((make_sound(i) for i in range(low, high + 1)), batch)
        lib.checkpoint()


def run_child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--no-pickle", action="store_true")
    args = parser.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="b7-"))
    print(f"B7 {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.platform()}, "
          f"{os.cpu_count()} cores, folder {base}")
    start = time.perf_counter()
    build(base / "library", args.samples, args.edges)
    with FreesoundLibrary(base / "library") as lib:
        stats = lib.stats()
    print(f"library: {stats.samples} samples, {stats.edges} edges, "
          f"{stats.db_bytes / 1e6:.0f} MB (built in {time.perf_counter() - start:.0f} s)")
    for derived in (False, True):
        result = run_child(CHILD, str(base / "library"), str(ROOT / "src"), str(int(derived)))
        print(f"graph(derived={derived}): {result['seconds']:.2f} s, peak "
              f"{result['peak_bytes'] / 1e9:.2f} GB, {result['nodes']} nodes, "
              f"{result['edges']} edges (targets: <= 10 s, <= 2 GB)")
    if args.no_pickle:
        return
    try:
        import joblib
        import networkx as nx
    except ImportError:
        print("anchor skipped: joblib not installed (pip install joblib)")
        return
    with FreesoundLibrary(base / "library") as lib:
        graph = lib.graph()
        cache = {i: make_sound(i) for i in range(1, args.samples + 1)}
    state = {"graph": graph, "processed_ids": set(cache), "sound_cache": cache,
             "metadata": {"total_nodes": args.samples}}
    assert isinstance(graph, nx.DiGraph)
    path = base / "freesound_library.pkl"
    joblib.dump(state, path, compress=3)
    result = run_child(PICKLE_CHILD, str(path))
    print(f"anchor joblib.load of the seed's whole state: {result['seconds']:.2f} s, peak "
          f"{result['peak_bytes'] / 1e9:.2f} GB ({path.stat().st_size / 1e6:.0f} MB file)")


if __name__ == "__main__":
    main()
