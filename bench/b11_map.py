"""B11: the map (`freesound visualize`) of a 20,000-sample library.

Targets: the file <= 10 MB; a full layout + write <= 90 s; after a 50-sample grow <= 10 s;
the first render in headless Chromium (software WebGL, --enable-unsafe-swiftshader) <= 8 s.

The library is generated (bulk insert, the stored shape of real API answers): samples in
communities of uneven size, as similarity search finds them -- each links to about eight
others, mostly in its own community, with tags, users and packs that go with it; a few small
separate groups and some isolated samples, as text-search seeds leave. The "grow" adds 50
samples linked into the existing graph the same way. Each step runs the CLI in a fresh
process (`easy-oww freesound visualize`) and is timed whole; the render time is the page's
own count from navigation start to sigma's first frame (data-render-ms) plus the page load.

    python bench/b11_map.py [--samples 20000] [--dir FOLDER] [--screenshot PNG]
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
sys.path.insert(0, str(ROOT))

from easy_oww.freesound.store import FreesoundLibrary  # noqa: E402
from tests.chromium import Chromium  # noqa: E402

WORDS = ["rain", "street", "kitchen", "birds", "wind", "crowd", "traffic", "room-tone", "sea",
         "forest", "train", "night", "cafe", "market", "thunder", "river", "office", "subway",
         "church", "park", "airport", "factory", "school", "harbour", "snow", "insects"]
LICENSES = ["http://creativecommons.org/publicdomain/zero/1.0/",
            "https://creativecommons.org/licenses/by/4.0/",
            "https://creativecommons.org/licenses/by-nc/4.0/",
            "https://creativecommons.org/licenses/sampling+/1.0/"]
EDGES_PER_SAMPLE = 8


def community_of(sound_id: int, communities: int) -> int:
    """Uneven community sizes (a few big, many small), fixed per id."""
    rng = random.Random(sound_id * 7919)
    return min(int(rng.random() ** 2 * communities), communities - 1)


def make_sound(sound_id: int, community: int) -> dict:
    rng = random.Random(sound_id)
    theme = WORDS[community % len(WORDS)]
    other = WORDS[(community * 7 + 3) % len(WORDS)]
    user = f"rec{community % 150}_{rng.randrange(4)}"
    folder = sound_id // 1000
    return {
        "id": sound_id,
        "url": f"https://freesound.org/people/{user}/sounds/{sound_id}/",
        "name": f"{theme} {other} {sound_id}.wav",
        "tags": [theme, other, "field-recording", rng.choice(WORDS)],
        "description": f"{theme} recorded near the {other}.",
        "created": "2020-01-02T03:04:05", "type": "wav",
        "license": LICENSES[(community + rng.randrange(2)) % len(LICENSES)],
        "channels": 2, "filesize": 1_000_000 + sound_id, "bitrate": 1411, "bitdepth": 16,
        "duration": round(rng.uniform(1, 120), 3), "samplerate": 44100,
        "username": user,
        "pack": f"https://freesound.org/apiv2/packs/{community * 10 + rng.randrange(3)}/",
        "pack_name": f"{theme} pack {community}",
        "previews": {f"preview-{q}-{f}": f"https://cdn.freesound.org/previews/{folder}/"
                     f"{sound_id}_{community}-{q}.{f}"
                     for q in ("hq", "lq") for f in ("mp3", "ogg")},
        "images": {}, "num_downloads": int(rng.paretovariate(1.1) * 10),
        "avg_rating": 4.0, "num_ratings": 3, "num_comments": 1,
    }


def generate(folder: Path, first: int, count: int, total: int, *, seed: int = 0) -> None:
    """Samples first .. first+count-1 of a `total`-sample world, with their edges (to any
    sample of that world; edges to samples not stored yet wait, as in a real crawl)."""
    communities = max(4, total // 100)
    rng = random.Random(seed * 1_000_003 + first)
    ids = range(first, first + count)
    members: dict[int, list[int]] = {}
    for sound_id in range(1, total + 1):
        members.setdefault(community_of(sound_id, communities), []).append(sound_id)
    samples, edges = [], []
    for sound_id in ids:
        community = community_of(sound_id, communities)
        samples.append(make_sound(sound_id, community))
        if sound_id % 100 == 0:
            continue  # isolated: a text-search seed nothing links to
        group = members[community]
        for rank in range(EDGES_PER_SAMPLE):
            draw = rng.random()
            if draw < 0.8 or len(group) < 3:
                target = rng.choice(group)
            elif draw < 0.97:  # a neighbouring community: similar sounds shade into each other
                near = members.get(community + rng.choice((-1, 1))) or group
                target = rng.choice(near)
            else:
                target = rng.randrange(1, total + 1)
            if target != sound_id and target % 100:
                edges.append((sound_id, target, "similar", 1.0 - rank / 10, rank + 1))
    with FreesoundLibrary(folder, durable=False) as lib:
        lib.bulk_add(samples, edges)


def cli(*args: str) -> tuple[float, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "easy_oww", *args], capture_output=True,
                          text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(args)} failed: {done.stderr}")
    return seconds, done.stdout


def render(page_path: Path, screenshot: Path | None = None) -> dict:
    with Chromium(timeout=120) as browser:
        start = time.perf_counter()
        page = browser.open(page_path.as_uri(), width=1280, height=800)
        page.wait_for("document.body.dataset.renderMs", timeout=120)
        wall = time.perf_counter() - start
        in_page = int(page.evaluate("document.body.dataset.renderMs")) / 1000
        load = page.evaluate("performance.timing.responseEnd - performance.timing.navigationStart")
        errors = page.errors
        if screenshot is not None:
            # the legend and labels need a frame after the first; a second render settles it
            page.evaluate("new Promise(r => requestAnimationFrame(() => "
                          "requestAnimationFrame(r)))")
            screenshot.write_bytes(page.screenshot())
    return {"first_render_s": round(in_page + load / 1000, 2), "wall_s": round(wall, 2),
            "errors": errors}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--grow", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--screenshot", type=Path, default=None,
                        help="also save a screenshot of the first map (1280x800)")
    parser.add_argument("--color-by", default="user", help="the map's --color-by")
    args = parser.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="b11-"))
    library = work / "library"
    page = work / "map.html"
    total = args.samples + args.grow
    started = time.perf_counter()
    generate(library, 1, args.samples, total)
    built = time.perf_counter() - started
    with FreesoundLibrary(library) as lib:
        stats = lib.stats()
    print(f"library: {stats.samples} samples, {stats.edges} edges (generated in {built:.1f} s)")

    full_s, out = cli("freesound", "visualize", str(page), "--library", str(library),
                      "--relayout", "--color-by", args.color_by)
    print(out.strip())
    size = page.stat().st_size
    shown = render(page, args.screenshot)
    generate(library, args.samples + 1, args.grow, total)
    grown_s, out = cli("freesound", "visualize", str(page), "--library", str(library))
    print(out.strip())
    result = {
        "date": dt.date.today().isoformat(), "machine": f"{os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}",
        "samples": stats.samples, "edges": stats.edges, "file_bytes": size,
        "full_layout_and_write_s": round(full_s, 1), "after_grow_s": round(grown_s, 1),
        **shown,
    }
    checks = {"file <= 10 MB": size <= 10_000_000, "full <= 90 s": full_s <= 90,
              f"after a {args.grow}-sample grow <= 10 s": grown_s <= 10,
              "first render <= 8 s": shown["first_render_s"] <= 8,
              "no console errors": not shown["errors"]}
    print(json.dumps(result))
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
