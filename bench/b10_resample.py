"""B10: ``--sample-rate 16000`` conversion against sox, on the same 2 cores.

Generates >= 1 h of 44.1 kHz 16-bit mono audio in files of 10-30 s, then converts every file
to 16 kHz mono 16-bit PCM WAV:
- ours: ``easy_oww.audio.convert_files(workers=2)`` (libsoxr via ``soxr``, quality
  HQ, streamed in blocks; each output fsynced and renamed into place; also shown without
  fsync);
- anchor: ``sox IN -r 16000 -c 1 -b 16 OUT`` per file, two at a time (``xargs -P2``).
Target: ours at least as fast (ratio <= 1.0). Run:
    python bench/b10_resample.py [--hours 1.0] [--workdir DIR] [--reps 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from easy_oww.audio import convert_files, resampler_name


def generate(folder: Path, hours: float) -> tuple[int, float]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    seconds, count = 0.0, 0
    while seconds < hours * 3600:
        length = rng.uniform(10, 30)
        n = int(length * 44100)
        t = np.arange(n) / 44100
        x = rng.standard_normal(n) * 1200 + 5000 * np.sin(2 * np.pi * rng.uniform(80, 4000) * t)
        sf.write(folder / f"{count:05d}.wav", x.astype(np.int16), 44100, subtype="PCM_16")
        seconds += n / 44100
        count += 1
    return count, seconds


def fresh(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.sync()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="b10-"))
    src = work / "src"
    count, seconds = generate(src, args.hours)
    files = sorted(src.glob("*.wav"))
    print(f"generated {count} files, {seconds / 3600:.2f} h at 44.1 kHz in {work}")
    for path in files:  # warm page cache for both sides
        path.read_bytes()

    sox_out, ours_out = work / "sox", work / "ours"
    sox_cmd = (f"ls {src} | xargs -P2 -I{{}} sox {src}/{{}} -r 16000 -c 1 -b 16 "
               f"{sox_out}/{{}}")
    t_sox, t_ours, t_nd = [], [], []
    for rep in range(args.reps):
        fresh(sox_out)
        start = time.perf_counter()
        subprocess.run(sox_cmd, shell=True, check=True)
        t_sox.append(time.perf_counter() - start)
        fresh(ours_out)
        pairs = [(p, ours_out / p.name) for p in files]
        start = time.perf_counter()
        convert_files(pairs, workers=2)
        t_ours.append(time.perf_counter() - start)
        fresh(ours_out)
        start = time.perf_counter()
        convert_files(pairs, workers=2, durable=False)
        t_nd.append(time.perf_counter() - start)
        print(f"rep {rep + 1}: sox x2 {t_sox[-1]:.2f} s, ours {t_ours[-1]:.2f} s, "
              f"ours without fsync {t_nd[-1]:.2f} s")

    # same output shape, and how far apart the two resamplers land
    a, ra = sf.read(ours_out / files[0].name, dtype="float32")
    b, rb = sf.read(sox_out / files[0].name, dtype="float32")
    n = min(len(a), len(b))
    diff_db = 20 * np.log10(np.sqrt(np.mean((a[:n] - b[:n]) ** 2)) / np.sqrt(np.mean(b[:n] ** 2)))
    sox_v = subprocess.run(["sox", "--version"], capture_output=True, text=True).stdout
    sox_v = sox_v.split(":", 1)[-1].strip()  # "sox:      SoX v14.4.2"
    print()
    print(f"date        {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"command     {' '.join([sys.executable, *sys.argv])}")
    print(f"audio       {count} files, {seconds / 3600:.2f} h, 44.1 kHz 16-bit mono -> 16 kHz")
    print(f"resamplers  ours {resampler_name()} HQ; anchor {sox_v} (rate effect, default)")
    print(f"B10 wall    sox via xargs -P2 {min(t_sox):.2f} s | ours (2 threads) "
          f"{min(t_ours):.2f} s -> ratio {min(t_ours) / min(t_sox):.2f} (target <= 1.00)")
    print(f"            ours without fsync {min(t_nd):.2f} s -> ratio "
          f"{min(t_nd) / min(t_sox):.2f}; {seconds / min(t_ours):.0f} x real time")
    print(f"check       lengths {len(a)} vs {len(b)} frames at {ra}/{rb} Hz; ours - sox "
          f"difference {diff_db:.1f} dB below the signal")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
