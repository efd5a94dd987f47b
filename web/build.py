"""Build the map page's JavaScript: `npm ci` from package-lock.json, then esbuild.

    python web/build.py            # writes src/easy_oww/freesound/map.js and map-licenses.txt
    python web/build.py --check    # rebuilds in a temporary folder, compares byte for byte

The bundle is committed (so installing easy-oww needs no Node); CI runs `--check`, which
fails when the committed files are not exactly what the lockfile and web/src build. The
versions are pinned exactly in package.json and the lockfile; esbuild's output is the same
bytes for the same inputs and version. The licence texts of every package that goes into the
bundle are written beside it and, as a leading comment, into the bundle itself, so every page
`visualize` writes carries them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WEB = Path(__file__).resolve().parent
ASSET_DIR = WEB.parent / "src" / "easy_oww" / "freesound"
BUNDLE = "map.js"
LICENSES = "map-licenses.txt"
LICENSE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "license", "LICENCE")


def run(args: list[str], cwd: Path) -> None:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"web/build.py: `{' '.join(args)}` failed in {cwd}:\n"
                 f"{done.stdout[-2000:]}{done.stderr[-2000:]}")


def bundled_packages(metafile: Path) -> list[str]:
    """The npm packages whose files esbuild put into the bundle, sorted."""
    inputs = json.loads(metafile.read_text())["outputs"]
    names = set()
    for output in inputs.values():
        for path in output["inputs"]:
            parts = path.split("node_modules/")
            if len(parts) < 2:
                continue
            rest = parts[-1].split("/")
            names.add("/".join(rest[:2]) if rest[0].startswith("@") else rest[0])
    return sorted(names)


def licence_text(modules: Path, packages: list[str]) -> str:
    sections = []
    for name in packages:
        folder = modules / name
        version = json.loads((folder / "package.json").read_text())["version"]
        found = [folder / f for f in LICENSE_NAMES if (folder / f).is_file()]
        if not found:
            sys.exit(f"web/build.py: {name} {version} ships no licence file; "
                     "its licence must be shipped with the bundle")
        body = found[0].read_text(encoding="utf-8").strip()
        sections.append(f"{name} {version}\n{'-' * len(f'{name} {version}')}\n{body}\n")
    return ("The map page's JavaScript (easy_oww/freesound/map.js) bundles these packages "
            "from npm:\n\n" + "\n".join(sections))


def build(out: Path, work: Path) -> None:
    """npm ci in a copy of web/ under `work`, esbuild into `out`."""
    tree = work / "web"
    tree.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(WEB / name, tree / name)
    shutil.copytree(WEB / "src", tree / "src")
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("web/build.py: npm is not installed; install Node.js (with npm) and run again")
    # --ignore-scripts: esbuild's postinstall only checks its binary; the package's own shim
    # finds the platform binary without it, and no other package may run code here.
    run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], tree)
    esbuild = tree / "node_modules" / ".bin" / "esbuild"
    metafile = work / "meta.json"
    draft = work / "draft.js"
    common = ["src/map.js", "--bundle", "--minify", "--format=iife", "--target=es2019",
              "--legal-comments=none", "--charset=ascii"]
    run([str(esbuild), *common, f"--metafile={metafile}", f"--outfile={draft}"], tree)
    licences = licence_text(tree / "node_modules", bundled_packages(metafile))
    banner = "/*!\n" + licences.replace("*/", "* /") + "*/"
    run([str(esbuild), *common, f"--banner:js={banner}", f"--outfile={out / BUNDLE}"], tree)
    (out / LICENSES).write_text(licences, encoding="utf-8", newline="\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="rebuild in a temporary folder and compare with the committed files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="easy-oww-web-") as tmp:
        work = Path(tmp)
        out = work / "out"
        out.mkdir()
        build(out, work)
        if not args.check:
            for name in (BUNDLE, LICENSES):
                shutil.copyfile(out / name, ASSET_DIR / name)
                print(f"wrote {ASSET_DIR / name} ({(ASSET_DIR / name).stat().st_size} bytes)")
            return 0
        stale = [name for name in (BUNDLE, LICENSES)
                 if not (ASSET_DIR / name).is_file()
                 or (ASSET_DIR / name).read_bytes() != (out / name).read_bytes()]
        if stale:
            print(f"web/build.py --check: {', '.join(stale)} in {ASSET_DIR} differ from what "
                  "web/ builds; run `python web/build.py` and commit the result",
                  file=sys.stderr)
            return 1
        print(f"web/build.py --check: {BUNDLE} and {LICENSES} match the rebuild byte for byte")
        return 0


if __name__ == "__main__":
    sys.exit(main())
