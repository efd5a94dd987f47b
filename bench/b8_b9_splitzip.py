"""B8 + B9: split-zip extraction straight from the volumes, against 7-Zip and the merge route.

B8: wall time of easy-oww's extract() on a >= 1 GB archive in 5 volumes made by ``zip -s``,
    against ``7z x`` on the same volumes. Target: ours <= 1.3 x 7z.
B9: peak disk use while extracting (volumes + everything under the output folder, sampled
    every 50 ms). Target: <= volumes + extracted x 1.05. Shown beside the usual route,
    ``zip -s 0`` (merge) then ``unzip``: volumes + merged copy + extracted.

Needs: zip, unzip, 7z (Debian: zip unzip p7zip-full). Run:
    python bench/b8_b9_splitzip.py [--gb 1.0] [--workdir DIR] [--reps 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from easy_oww.archives.extract import extract


def tree_bytes(*roots: Path) -> int:
    """Allocated bytes under the roots (st_blocks, so sparse or growing files count right)."""
    total = 0
    stack = [r for r in roots if r.exists()]
    while stack:
        top = stack.pop()
        try:
            with os.scandir(top) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(Path(entry.path))
                        else:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except FileNotFoundError:
                        continue  # renamed or removed between listing and stat
        except FileNotFoundError:
            continue
    return total


class PeakSampler:
    def __init__(self, *roots: Path, every: float = 0.05) -> None:
        self.roots = roots
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_bytes(*self.roots))
            self._stop.wait(self.every)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_bytes(*self.roots))


def generate(src: Path, target_bytes: int) -> int:
    """FSD50K-like clips: 16-bit mono 44.1 kHz noise with a tone, 3-15 s each."""
    folder = src / "BENCH.dev_audio"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    total, i = 0, 0
    while total < target_bytes:
        n = int(rng.uniform(3, 15) * 44100)
        t = np.arange(n) / 44100
        x = rng.standard_normal(n) * 1500 + 4000 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t)
        path = folder / f"{100000 + i}.wav"
        sf.write(path, x.astype(np.int16), 44100, subtype="PCM_16")
        total += path.stat().st_size
        i += 1
    return total


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sh(*cmd: str, cwd: Path | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def fresh(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    os.sync()  # the next run must not pay for this one's writeback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="b8b9-"))
    work.mkdir(parents=True, exist_ok=True)
    src, vol = work / "src", work / "vol"
    print(f"workdir {work}")

    raw = generate(src, int(args.gb * 1e9))
    vol.mkdir(exist_ok=True)
    split_mb = max(1, int(raw * 0.97 / 4.5 / 1e6))  # aim at 4 .zNN + the .zip
    t_zip = timed(lambda: sh("zip", "-q", "-r", "-s", f"{split_mb}m", str(vol / "BENCH.zip"),
                             "BENCH.dev_audio", cwd=src))
    volumes = sorted(vol.glob("BENCH.z[0-9][0-9]")) + [vol / "BENCH.zip"]
    vol_bytes = tree_bytes(vol)
    print(f"generated {raw / 1e9:.2f} GB of WAV ({len(list(src.rglob('*.wav')))} files); "
          f"zip -s {split_mb}m -> {len(volumes)} volumes, {vol_bytes / 1e9:.2f} GB "
          f"({t_zip:.0f} s)")
    shutil.rmtree(src)
    for v in volumes:  # same warm page cache for everyone
        with open(v, "rb") as handle:
            while handle.read(1 << 24):
                pass

    out7, ours, ours_nd = work / "out7z", work / "ours", work / "ours_nodurable"
    t7, t7s, to, tnd = [], [], [], []
    peak_ours = 0
    extracted = 0
    for rep in range(args.reps):
        fresh(out7)
        t7.append(timed(lambda: sh("7z", "x", "-y", f"-o{out7}", str(volumes[-1]))))
        t7s.append(t7[-1] + timed(os.sync))
        extracted = tree_bytes(out7)
        fresh(out7)
        fresh(ours)
        with PeakSampler(vol, ours) as sampler:
            to.append(timed(lambda: extract(volumes, ours)))
        peak_ours = max(peak_ours, sampler.peak)
        fresh(ours)
        tnd.append(timed(lambda: extract(volumes, ours_nd, durable=False)))
        fresh(ours_nd)
        print(f"rep {rep + 1}: 7z x {t7[-1]:.2f} s (+sync {t7s[-1]:.2f} s), ours "
              f"{to[-1]:.2f} s, ours without fsync {tnd[-1]:.2f} s")

    merged, outm = work / "merged", work / "outm"
    merged.mkdir(exist_ok=True)
    with PeakSampler(vol, merged, outm) as sampler:
        t_merge = timed(lambda: sh("zip", "-q", "-s", "0", str(volumes[-1]), "--out",
                                   str(merged / "all.zip")))
        t_unzip = timed(lambda: sh("unzip", "-q", str(merged / "all.zip"), "-d", str(outm)))
    peak_merge = sampler.peak
    fresh(merged)
    fresh(outm)

    best7, best7s, besto, bestnd = min(t7), min(t7s), min(to), min(tnd)
    limit = vol_bytes + extracted * 1.05
    print()
    print(f"date        {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"command     {' '.join([sys.executable, *sys.argv])}")
    print(f"archive     {len(volumes)} volumes, {vol_bytes / 1e9:.3f} GB; extracted "
          f"{extracted / 1e9:.3f} GB")
    print(f"B8 wall     7z x {best7:.2f} s | ours {besto:.2f} s -> ratio {besto / best7:.2f} "
          f"(target <= 1.30)")
    print(f"            7z x + sync {best7s:.2f} s | ours {besto:.2f} s -> ratio "
          f"{besto / best7s:.2f}; ours without fsync {bestnd:.2f} s -> "
          f"{bestnd / best7:.2f} x 7z")
    print(f"            merge route: zip -s 0 {t_merge:.2f} s + unzip {t_unzip:.2f} s = "
          f"{t_merge + t_unzip:.2f} s")
    print(f"B9 peak     ours {peak_ours / 1e9:.3f} GB vs limit volumes + extracted x 1.05 = "
          f"{limit / 1e9:.3f} GB -> {peak_ours / limit:.3f} of the limit")
    print(f"            merge route peak {peak_merge / 1e9:.3f} GB "
          f"({peak_merge / peak_ours:.2f} x ours)")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
