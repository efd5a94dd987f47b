"""Check extracted files against a ``sha1sum``-style list shipped inside an archive.

FMA's ``fma_small.zip`` holds ``fma_small/checksums``: one ``<sha1>  <path>`` line per track,
paths relative to the list's folder. The zip's CRC32 already catches damage in transit; the
list also catches a track that was wrong when the archive was made. Some listed tracks are
known to hold no audio (mdeff/fma#44): those are reported as ``silent``, not as failures, so a
caller can leave them out of training without failing the whole dataset.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from easy_oww.archives.splitzip import ArchiveError
from easy_oww.hashes import file_hash

# "<hex>  <path>" (text mode) or "<hex> *<path>" (binary mode), as sha1sum writes them.
_LINE = re.compile(r"^([0-9a-fA-F]{40}) [ *](.+)$")

Status = Literal["ok", "mismatch", "missing", "silent"]


class ChecksumListError(ArchiveError):
    """The checksums list itself is missing or unreadable; the message names file and line."""


@dataclass(frozen=True)
class ChecksumResult:
    name: str  # the path as the list gives it
    status: Status
    expected: str  # sha1 hex from the list
    actual: str | None  # sha1 hex of the file on disk; None when it is missing

    @property
    def failed(self) -> bool:
        return self.status in ("mismatch", "missing")


def read_checksums(checksums_file: Path) -> dict[str, str]:
    """The list as ``{path: sha1 hex}``; a malformed line is a one-line error naming it."""
    checksums_file = Path(checksums_file)
    try:
        text = checksums_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ChecksumListError(f"{checksums_file} is missing: the archive's checksums list "
                                "was not extracted") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ChecksumListError(f"{checksums_file} cannot be read ({exc})") from None
    return parse_checksums(text, str(checksums_file))


def parse_checksums(text: str, origin: str) -> dict[str, str]:
    """``{path: sha1 hex}`` of a list's text; ``origin`` names it in the one-line errors."""
    listed: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            raise ChecksumListError(
                f"{origin}:{number}: not a sha1sum line ('<40 hex>  <path>'): "
                f"{line[:80]!r}")
        name = match.group(2)
        if name.startswith("/") or ".." in name.replace("\\", "/").split("/"):
            raise ChecksumListError(f"{origin}:{number}: {name} is outside the "
                                    "list's folder: refused")
        listed[name] = match.group(1).lower()
    return listed


def verify_checksums(folder: Path, checksums_file: Path, *,
                     silent: Collection[str] = (), workers: int = 4) -> list[ChecksumResult]:
    """Hash every file the list names (paths relative to ``folder``) and compare.

    ``silent`` holds listed paths known to have no audio: whatever their hash, they come back
    with status ``silent`` (their ``actual`` hash still recorded), never as failures. Results
    follow the list's order; files on disk that the list does not name are not looked at.
    """
    folder = Path(folder)
    listed = read_checksums(checksums_file)
    silent = set(silent)

    def check(item: tuple[str, str]) -> ChecksumResult:
        name, expected = item
        path = folder / name
        try:
            actual: str | None = file_hash(path, "sha1").partition(":")[2]
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            actual = None
        if name in silent:
            status: Status = "silent"
        elif actual is None:
            status = "missing"
        else:
            status = "ok" if actual == expected else "mismatch"
        return ChecksumResult(name, status, expected, actual)

    # hashlib lets go of the GIL on large buffers: a few threads keep the disk busy.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(check, listed.items()))


def describe_failures(results: Collection[ChecksumResult], source: str) -> str | None:
    """A one-line summary of the failed files (the first few by name), or None if none."""
    failed = [r for r in results if r.failed]
    if not failed:
        return None
    names = ", ".join(f"{r.name} ({r.status})" for r in failed[:5])
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    return (f"{len(failed)} of {len(results)} files listed in {source} fail their sha1: "
            f"{names}{more}; download the archive again")
