"""Known hashes written as ``"sha256:<hex>"`` or ``"md5:<hex>"`` (pooch's convention)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

ALGORITHMS = {"sha256": 64, "md5": 32, "sha1": 40, "gitsha1": 40}
_HEX = re.compile(r"^[0-9a-f]+$")
CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class KnownHash:
    algorithm: str
    hexdigest: str

    @classmethod
    def parse(cls, text: str) -> "KnownHash":
        """Parse ``algo:hex``; a bare hex string is taken as sha256 or md5 by its length."""
        text = text.strip().lower()
        if ":" in text:
            algorithm, _, digest = text.partition(":")
        else:
            by_length = {64: "sha256", 32: "md5", 40: "sha1"}
            algorithm, digest = by_length.get(len(text), ""), text
        if algorithm not in ALGORITHMS:
            raise ValueError(
                f"unknown hash algorithm in {text!r}; use sha256:<hex>, md5:<hex> or sha1:<hex>"
            )
        if len(digest) != ALGORITHMS[algorithm] or not _HEX.match(digest):
            raise ValueError(
                f"{algorithm} hash must be {ALGORITHMS[algorithm]} hex digits, got {digest!r}"
            )
        return cls(algorithm, digest)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"


def new_hasher(algorithm: str, size: int | None = None) -> "hashlib._Hash":
    """A hashlib object; ``gitsha1`` is git's blob id (sha1 of a header plus the bytes),
    which the Hugging Face Hub gives for files not stored in LFS."""
    if algorithm == "gitsha1":
        if size is None:
            raise ValueError("a git blob hash needs the file size up front")
        digest = hashlib.sha1()
        digest.update(b"blob %d\0" % size)
        return digest
    return hashlib.new(algorithm)


def file_hash(path: Path, algorithm: str = "sha256", chunk: int = CHUNK) -> str:
    """``algo:hex`` of a whole file, read in fixed chunks so memory stays flat."""
    digest = new_hasher(algorithm, Path(path).stat().st_size)
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            digest.update(view[:n])
    return f"{algorithm}:{digest.hexdigest()}"


class HashingWriter:
    """A binary writer that passes bytes on to ``handle`` and sha256-hashes them as they go,
    so a file written once needs no second read to be recorded."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.handle.write(data)

    def hexdigest(self) -> str:
        return self.digest.hexdigest()
