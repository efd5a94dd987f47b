"""Safe, resumable extraction of zip (including split zip) and tar archives.

Contract, per member:
- the name is checked before anything is written: ``..``, absolute paths, drive letters and
  links that point out of the target are refused (``UnsafeArchiveError``, the member named);
- the bytes go to a temp file in ``<into>/.easy-oww-unpack-tmp.<archive>/``, are checked
  (zip CRC32 and size) and hashed (sha256) as they are written, then fsynced and renamed to
  the final name, so a crash never leaves a half file under a final name;
- output that grows past ``max_ratio`` × the compressed size stops the run (``ZipBombError``);
- each finished member is appended to a progress journal in the target
  (``.easy-oww-unpack.<archive>.jsonl``: member, output path, size, sha256, CRC, conversion
  settings). A re-run skips a member whose journal entry matches the archive's CRC and size and
  whose output is still there with the recorded size, and returns the recorded hash: no
  re-hashing. A refusal or a crash keeps every member already out and checked.

Options for audio datasets (AudioSet's tars, FMA's zips):
- a transform converts members on the way out, in the worker threads; one with a
  ``target(rel)`` method converts only the members it names, under the name it gives
  (``x.flac`` -> ``x.wav``), and the rest are copied as they are;
- ``flatten`` puts every file member in the target folder itself, under its base name; two
  members that would land on one path are refused, naming both;
- ``checksums`` names a ``sha1sum`` list inside the archive (FMA's ``fma_small/checksums``):
  every listed member's raw bytes are checked against it as they come out, before anything is
  written for it, and a listed member absent from the archive is an error;
- ``tolerate(name, error)`` may excuse a member the transform cannot convert (a track known
  to hold no audio): it is then recorded as ``unreadable`` with the reason, and not written.

``owned`` names the files other archives already put in the target (path -> that archive and
the file's sha256): a member that would replace one with different bytes is refused, naming
both archives, before its rename (two archives unpacked into one folder must not silently
overwrite each other's members; an identical file, a shared LICENSE say, is fine).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import posixpath
import re
import shutil
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

from easy_oww.archives.checksums import ChecksumListError, parse_checksums
from easy_oww.archives.splitzip import (
    ArchiveError,
    ArchiveVolumeError,
    ChecksumError,
    MemberStream,
    SplitZipReader,
    ZipMember,
)
from easy_oww.atomic import fsync_dir
from easy_oww.hashes import HashingWriter

__all__ = [
    "DEFAULT_MAX_RATIO",
    "ArchiveError",
    "ArchiveVolumeError",
    "ChecksumError",
    "MemberChecksumError",
    "MemberResult",
    "Owner",
    "UnsafeArchiveError",
    "ZipBombError",
    "extract",
    "journal_path",
    "temp_dir",
]

DEFAULT_MAX_RATIO = 200.0  # deflate tops out near 1,032:1; audio and features stay far below
RATIO_FLOOR = 1 << 20  # members that inflate to under 1 MiB are harmless whatever their ratio
TEMP_DIR_NAME = ".easy-oww-unpack-tmp"  # + ".<archive>": one per archive, in the target
# A member this small is inflated into memory by the reading thread and handed to a worker
# that converts, hashes, writes and fsyncs it: reading and writing then overlap on two cores.
BUFFER_LIMIT = 64 << 20
IN_FLIGHT_BYTES = 256 << 20  # members buffered and not yet committed, at most
IN_FLIGHT_COUNT = 64
MAX_LINK_TARGET = 4096
_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafeArchiveError(ArchiveError):
    """A member would land outside the target folder, or is a device/fifo: refused (exit 1)."""


class ZipBombError(UnsafeArchiveError):
    """Output grew past the ratio limit over the compressed size (exit 1)."""


class MemberChecksumError(ChecksumError):
    """A member's bytes do not match the archive's own checksums list (exit 1)."""


class Transform(Protocol):
    """Converts a member's bytes on the way out (e.g. ``audio.WavResampler``).

    ``src`` has ``read(n)``; ``dst`` has ``write(bytes)`` and must be written in order.
    ``settings`` (optional attribute) is recorded with each output. An optional
    ``target(rel) -> (output rel, settings) | None`` picks the members to convert, their
    output paths and settings; without it every member is converted in place.
    """

    def __call__(self, src: Any, dst: Any, name: str, /) -> Any: ...


@dataclass(frozen=True)
class Owner:
    """The archive that wrote a file already in the target, and that file's sha256."""

    archive: str
    sha256: str


@dataclass(frozen=True)
class MemberResult:
    name: str  # the member's name in the archive
    path: Path  # where it was written (absolute)
    # "unreadable": a file member the transform could not convert and `tolerate` excused
    kind: Literal["file", "dir", "symlink", "hardlink", "unreadable"]
    size: int  # bytes of the output file
    sha256: str | None  # of the output file; None for dirs and links
    crc32: int | None  # the archive's CRC32 of the member (zip); None for tar
    source_size: int  # the member's uncompressed size in the archive
    skipped: bool = False  # already out and checked by an earlier run
    settings: dict[str, Any] | None = None  # the transform's settings, if any
    link_target: str | None = None
    reason: str | None = None  # why an "unreadable" member was not written


@dataclass
class _Entry:
    """One member to extract, after the safety checks."""

    name: str
    rel: str  # output path relative to the target, POSIX form
    kind: Literal["file", "dir", "symlink", "hardlink"]
    source_size: int
    compress_size: int | None
    crc32: int | None
    link_target: str | None = None  # symlink text, or hardlink's target rel path
    handle: Any = field(default=None, repr=False)  # ZipMember or TarInfo
    convert: bool = False  # the transform converts it (else its bytes are copied)
    settings: dict[str, Any] | None = None  # recorded with its output when converted


def journal_path(into: Path, archive_name: str) -> Path:
    """The progress journal of ``archive_name`` extracted into ``into``."""
    return Path(into) / f".easy-oww-unpack.{archive_name}.jsonl"


def temp_dir(into: Path, archive_name: str) -> Path:
    """Where members are written before their rename; removed at the end of every run."""
    return Path(into) / f"{TEMP_DIR_NAME}.{archive_name}"


def extract(
    source: Path | Sequence[Path],
    into: Path,
    *,
    fmt: Literal["zip", "tar"] = "zip",
    transform: Transform | None = None,
    max_ratio: float = DEFAULT_MAX_RATIO,
    on_member: Callable[[MemberResult], None] | None = None,
    strip_components: int = 0,
    select: Callable[[str], bool] | None = None,
    workers: int | None = None,
    durable: bool = True,
    flatten: bool = False,
    checksums: str | None = None,
    tolerate: Callable[[str, Exception], str | None] | None = None,
    owned: Mapping[str, Owner] | None = None,
) -> list[MemberResult]:
    """Extract ``source`` (an archive, or a split zip's volumes in order, the .zip last) into
    ``into`` and return one ``MemberResult`` per member, in archive order.

    ``strip_components`` drops leading folders from member names (as ``tar`` does); members
    left with no name, or that ``select(name)`` rejects, are not extracted. ``on_member`` is
    called (in the calling thread) as each member is committed or found already done.
    ``durable`` fsyncs each output before its rename (off only for benchmarks).
    ``flatten``, ``checksums``, ``tolerate`` and ``owned``: see the module's docstring
    (``checksums`` is the list's member name; ``tolerate`` returns the reason to record, or
    None to fail; ``owned`` is keyed by the output path relative to ``into``, POSIX form).
    """
    into = Path(into).absolute()
    volumes = [Path(source)] if isinstance(source, (str, Path)) else [Path(p) for p in source]
    if fmt == "zip":
        archive: _Archive = _ZipArchive(volumes)
    elif fmt == "tar":
        archive = _TarArchive(volumes)
    else:
        raise ArchiveError(f"unknown archive format {fmt!r}: use zip or tar")
    with archive:
        run = _Extraction(archive, into, transform=transform, max_ratio=max_ratio,
                          on_member=on_member, strip=strip_components, select=select,
                          workers=workers or os.cpu_count() or 1, durable=durable,
                          flatten=flatten, checksums=checksums, tolerate=tolerate,
                          owned=owned)
        return run.go()


# -- archives --------------------------------------------------------------------------------


class _Archive:
    name: str
    compressed_bytes: int

    # The member's mode is not among them: outputs get what a plain open() gives (_FILE_MODE).
    def entries(self) -> Iterator[tuple[str, Literal["file", "dir", "symlink", "hardlink"] | str,
                                        int, int | None, int | None, str | None, Any]]:
        raise NotImplementedError

    def stream(self, entry: _Entry) -> Iterator[bytes]:
        raise NotImplementedError

    def read_member(self, name: str) -> bytes | None:
        """The whole content of the file member called ``name`` (cleaned), or None."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> _Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ZipArchive(_Archive):
    def __init__(self, volumes: list[Path]) -> None:
        self.reader = SplitZipReader(volumes)
        self.name = self.reader.name
        self.compressed_bytes = self.reader.compressed_bytes

    def entries(self) -> Iterator[tuple[Any, ...]]:
        for m in self.reader.members():
            kind = "dir" if m.is_dir else "symlink" if m.is_symlink else "file"
            target = None
            if kind == "symlink":
                if m.file_size > MAX_LINK_TARGET:
                    raise UnsafeArchiveError(f"{m.name} in {self.name}: symlink target of "
                                             f"{m.file_size:,} bytes: refused")
                target = self.reader.read(m).decode("utf-8", errors="surrogateescape")
            yield m.name, kind, m.file_size, m.compress_size, m.crc, target, m

    def stream(self, entry: _Entry) -> Iterator[bytes]:
        member: ZipMember = entry.handle
        return self.reader.iter_data(member)

    def read_member(self, name: str) -> bytes | None:
        for member in self.reader.members():  # the central directory: no data is read
            if not member.is_dir and _plain_name(member.name) == name:
                return self.reader.read(member)
        return None

    def close(self) -> None:
        self.reader.close()


class _TarArchive(_Archive):
    def __init__(self, volumes: list[Path]) -> None:
        if len(volumes) != 1:
            raise ArchiveError("a tar archive is one file; split tars are not supported")
        path = volumes[0]
        if not path.is_file():
            raise ArchiveVolumeError(f"{path.name} is missing: download it again into "
                                     f"{path.parent}")
        self.name = path.name
        self.compressed_bytes = path.stat().st_size
        try:
            self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed in close()
        except (tarfile.TarError, EOFError) as exc:
            raise ArchiveVolumeError(f"{path.name} is truncated or not a tar archive ({exc}):"
                                     " download it again") from None

    def entries(self) -> Iterator[tuple[Any, ...]]:
        try:
            for info in self.tar:
                if info.isdir():
                    kind = "dir"
                elif info.issym():
                    kind = "symlink"
                elif info.islnk():
                    kind = "hardlink"
                elif info.isreg():
                    kind = "file"
                else:
                    kind = "special"
                target = info.linkname if kind in ("symlink", "hardlink") else None
                yield info.name, kind, info.size, None, None, target, info
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveVolumeError(f"{self.name} is truncated or damaged ({exc}): download "
                                     "it again") from None

    def stream(self, entry: _Entry) -> Iterator[bytes]:
        handle = self.tar.extractfile(entry.handle)
        if handle is None:
            return iter(())
        return _tar_chunks(handle, entry, self.name)

    def read_member(self, name: str) -> bytes | None:
        # tarfile walks the headers (seeking past the data in a plain tar) and keeps them, so
        # the extraction's own walk after this does not read them again.
        try:
            info = next((i for i in self.tar.getmembers()
                         if i.isreg() and _plain_name(i.name) == name), None)
            handle = self.tar.extractfile(info) if info is not None else None
            return handle.read() if handle is not None else None
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveVolumeError(f"{self.name} is truncated or damaged ({exc}): download "
                                     "it again") from None

    def close(self) -> None:
        self.tar.close()


def _tar_chunks(handle: BinaryIO, entry: _Entry, archive: str) -> Iterator[bytes]:
    got = 0
    try:
        while chunk := handle.read(1 << 20):
            got += len(chunk)
            yield chunk
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveVolumeError(f"{archive} is truncated or damaged at {entry.name} ({exc}): "
                                 "download it again") from None
    if got != entry.source_size:
        raise ArchiveVolumeError(f"{archive} is truncated: {entry.name} has {got:,} of "
                                 f"{entry.source_size:,} bytes; download it again")


# -- member names ----------------------------------------------------------------------------


def _plain_name(name: str) -> str:
    """A member name as a plain relative path ("./a//b" -> "a/b"), for matching names."""
    return "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def _clean_name(name: str, archive: str) -> list[str]:
    """Path components of a member name, or UnsafeArchiveError."""
    text = name.replace("\\", "/")  # Windows archivers; "a\\..\\b" must not slip through
    if "\x00" in text:
        raise UnsafeArchiveError(f"{name!r} in {archive} has a NUL in its name: refused")
    if text.startswith("/") or _DRIVE.match(text):
        raise UnsafeArchiveError(f"{name} in {archive} is an absolute path: refused; nothing "
                                 "was written outside the target")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{name} in {archive} climbs out with '..': refused; nothing "
                                 "was written outside the target")
    return parts


class _LinkGuard:
    """Links may only point inside the target, and nothing may be reached through a link.

    Checked on names alone (before anything is written): a link's target is walked component
    by component from the link's folder; the walk may not leave the target and may not pass
    through another link member, and no member may live under a link member. With no link
    through a link, where a link points is where its text says.
    """

    def __init__(self, archive: str) -> None:
        self.archive = archive
        self.links: set[str] = set()
        self.walked: dict[str, str] = {}  # path prefix a link's walk used -> that link
        self.entries: set[str] = set()  # every output path so far (rel)

    def check_path(self, name: str, rel: str) -> None:
        parts = rel.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in self.links:
                raise UnsafeArchiveError(f"{name} in {self.archive} lies under the symlink "
                                         f"{prefix}: refused")
        self.entries.add(rel)

    def check_link(self, name: str, rel: str, target: str, hard: bool) -> str:
        """Return the link's target as a path relative to the target folder."""
        text = target.replace("\\", "/")
        if not text or text.startswith("/") or _DRIVE.match(text) or "\x00" in text:
            raise UnsafeArchiveError(f"{name} in {self.archive} links to {target!r}, outside "
                                     "the target: refused")
        # a hard link's name is from the archive root, a symlink's from its own folder
        here: list[str] = [] if hard else rel.split("/")[:-1]
        for part in text.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not here:
                    raise UnsafeArchiveError(f"{name} in {self.archive} links to {target!r}, "
                                             "outside the target: refused")
                here.pop()
                continue
            here.append(part)
            prefix = "/".join(here)
            if prefix in self.links and prefix != rel:
                raise UnsafeArchiveError(f"{name} in {self.archive} links through another "
                                         f"link ({prefix}): refused")
            self.walked.setdefault(prefix, rel)
        if rel in self.walked and self.walked[rel] != rel:
            raise UnsafeArchiveError(f"{name} in {self.archive} is a link that another link "
                                     f"({self.walked[rel]}) passes through: refused")
        resolved = "/".join(here)
        for other in self.entries:  # a link over a folder that already holds members
            if other.startswith(rel + "/"):
                raise UnsafeArchiveError(f"{name} in {self.archive} is a link over the "
                                         f"folder of {other}: refused")
        self.links.add(rel)
        self.entries.add(rel)
        return resolved


# -- the run ---------------------------------------------------------------------------------


class _Guard:
    """The zip-bomb guard, fed with every uncompressed byte that leaves the archive."""

    def __init__(self, archive: str, compressed: int, max_ratio: float) -> None:
        self.archive = archive
        self.max_ratio = max_ratio
        self.total_limit = max(max_ratio * compressed, RATIO_FLOOR)
        self.total = 0

    def member_limit(self, entry: _Entry) -> float:
        if entry.compress_size is None:  # tar: members are not compressed one by one
            return float("inf")
        return max(self.max_ratio * entry.compress_size, RATIO_FLOOR)

    def declared(self, entry: _Entry) -> None:
        if entry.source_size > self.member_limit(entry):
            raise ZipBombError(
                f"{entry.name} in {self.archive} would inflate {entry.compress_size:,} bytes to "
                f"{entry.source_size:,} (over {self.max_ratio:g}×): refused as a zip bomb")

    def count(self, entry: _Entry, produced: int, n: int) -> None:
        self.total += n
        if produced > self.member_limit(entry):
            raise ZipBombError(
                f"{entry.name} in {self.archive} inflated past {self.max_ratio:g}× its "
                f"compressed {entry.compress_size:,} bytes: stopped as a zip bomb")
        if self.total > self.total_limit:
            raise ZipBombError(
                f"{self.archive}: output passed {self.max_ratio:g}× the archive's "
                f"{self.total_limit / self.max_ratio:,.0f} bytes at {entry.name}: stopped as a "
                "zip bomb")


class _Extraction:
    def __init__(self, archive: _Archive, into: Path, *, transform: Transform | None,
                 max_ratio: float, on_member: Callable[[MemberResult], None] | None,
                 strip: int, select: Callable[[str], bool] | None, workers: int,
                 durable: bool, flatten: bool = False, checksums: str | None = None,
                 tolerate: Callable[[str, Exception], str | None] | None = None,
                 owned: Mapping[str, Owner] | None = None) -> None:
        self.archive = archive
        self.into = into
        self.transform = transform
        self.settings = getattr(transform, "settings", None) if transform else None
        if transform is not None and self.settings is None:
            self.settings = {"transform": getattr(transform, "__name__", repr(transform))}
        self.on_member = on_member
        self.strip = strip
        self.select = select
        self.workers = workers
        self.durable = durable
        self.flatten = flatten
        self.checksums = checksums
        self.tolerate = tolerate
        self.owned = owned or {}
        self.target = getattr(transform, "target", None)
        self.expected_sha1: dict[str, str] = {}  # plain member name -> sha1 from the list
        self._seen: set[str] = set()  # plain names of every member the archive holds
        self._outputs: dict[str, str] = {}  # output rel -> the member name writing it
        self.guard = _Guard(archive.name, archive.compressed_bytes, max_ratio)
        self.tmp_dir = temp_dir(into, archive.name)
        self.journal = journal_path(into, archive.name)
        self._tmp_counter = 0
        self._checked_dirs: set[Path] = set()
        self._made_dirs: set[Path] = set()
        self._root_real = ""
        self._journal_lock = threading.Lock()
        self._flight_lock = threading.Lock()
        self._in_flight = 0
        self._last_sync = time.monotonic()

    # names and plan --------------------------------------------------------------------

    def _plan(self, raw: Iterator[tuple[Any, ...]], links: _LinkGuard) -> Iterator[_Entry]:
        for name, kind, size, csize, crc, target, handle in raw:
            parts = _clean_name(name, self.archive.name)
            if kind == "special":
                raise UnsafeArchiveError(f"{name} in {self.archive.name} is a device or fifo: "
                                         "refused")
            self._seen.add("/".join(parts))
            parts = parts[self.strip:]
            if not parts:
                continue
            if self.flatten:
                if kind == "dir":
                    continue  # every file lands in the target itself
                if kind != "file":
                    raise ArchiveError(f"{name} in {self.archive.name} is a link: a flattened "
                                       "unpack keeps files only; unpack it without flatten")
                parts = parts[-1:]
            rel = "/".join(parts)
            if self.select is not None and not self.select(name):
                continue
            entry = _Entry(name, rel, kind, size, csize, crc, target, handle)
            if kind == "file":
                self._choose_output(entry)
            links.check_path(name, entry.rel)
            if kind == "symlink":
                links.check_link(name, rel, target or "", hard=False)
            elif kind == "hardlink":
                tparts = _clean_name(target or "", self.archive.name)[self.strip:]
                if not tparts:
                    raise UnsafeArchiveError(f"{name} in {self.archive.name} hard-links to "
                                             f"{target!r}, outside the target: refused")
                entry.link_target = links.check_link(name, rel, "/".join(tparts), hard=True)
            if kind == "file":
                self.guard.declared(entry)
            yield entry

    def _choose_output(self, entry: _Entry) -> None:
        """Whether the transform converts ``entry``, its output path and settings; two members
        landing on one path after flatten or a rename are refused, naming both."""
        renamed = self.flatten
        if self.transform is not None:
            planned = self.target(entry.rel) if self.target is not None else (
                entry.rel, self.settings)
            if planned is not None:
                renamed = renamed or planned[0] != entry.rel
                entry.rel, entry.settings, entry.convert = planned[0], planned[1], True
        first = self._outputs.setdefault(entry.rel, entry.name)
        if first != entry.name and renamed:
            raise ArchiveError(
                f"{first} and {entry.name} in {self.archive.name} would both be written to "
                f"{entry.rel}; unpack this archive without flatten, or into two folders")

    # the run ---------------------------------------------------------------------------

    def go(self) -> list[MemberResult]:
        self.into.mkdir(parents=True, exist_ok=True)
        self._root_real = os.path.realpath(self.into)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)  # leftovers of a killed run
        done = self._read_journal()
        if self.checksums is not None:
            self.expected_sha1 = self._load_checksums(self.checksums)
        links = _LinkGuard(self.archive.name)
        if isinstance(self.archive, _ZipArchive):
            # The central directory is at hand: refuse a hostile archive before writing.
            plan: Iterator[_Entry] | list[_Entry] = list(self._plan(self.archive.entries(),
                                                                    links))
        else:
            plan = self._plan(self.archive.entries(), links)
        self.tmp_dir.mkdir(exist_ok=True)
        results: dict[int, MemberResult] = {}
        order = 0
        pending: dict[Future[MemberResult], int] = {}
        deferred: list[tuple[int, _Entry]] = []
        failure: BaseException | None = None
        # fsync mostly waits on the disk: a few threads beyond the cores keep the disk busy.
        pool = ThreadPoolExecutor(max_workers=self.workers + (4 if self.durable else 0))
        journal = open(self.journal, "a", encoding="utf-8")  # noqa: SIM115 - closed below
        try:
            for entry in plan:
                order += 1
                old = done.get(entry.name)
                if old is not None and self._still_good(entry, old):
                    results[order] = old
                    self._emit(old)
                    continue
                if entry.kind == "dir":
                    self._mkdir(self.into / entry.rel)
                    results[order] = self._record(journal, self._dir_result(entry))
                    continue
                if entry.kind in ("symlink", "hardlink"):
                    deferred.append((order, entry))  # after the files: they may point at them
                    continue
                pending[self._submit_file(pool, entry)] = order
                self._harvest(pending, results, journal, block=False)  # record what is done
                while len(pending) >= IN_FLIGHT_COUNT or self._in_flight > IN_FLIGHT_BYTES:
                    self._harvest(pending, results, journal, block=True)
            while pending:
                self._harvest(pending, results, journal, block=True)
            for number, entry in deferred:
                results[number] = self._record(journal, self._make_link(entry))
            self._check_all_listed()
        except BaseException as exc:
            failure = exc
            # Let members already in flight finish and be recorded: they are good.
            while pending:
                try:
                    self._harvest(pending, results, journal, block=True)
                except BaseException:  # noqa: S112 - the first failure is the one reported
                    continue
            raise
        finally:
            pool.shutdown(wait=True)
            journal.flush()
            with contextlib.suppress(OSError):
                os.fsync(journal.fileno())
            journal.close()
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            if self.durable and failure is None:
                for folder in self._made_dirs | {self.into}:
                    fsync_dir(folder)
        return [results[k] for k in sorted(results)]

    def _load_checksums(self, member: str) -> dict[str, str]:
        """The archive's own sha1 list, keyed by plain member name (its paths are relative to
        the list's folder)."""
        name = _plain_name(member)
        data = self.archive.read_member(name)
        if data is None:
            raise ChecksumListError(f"{self.archive.name} holds no checksums list {member}: "
                                    "check the catalog's `checksums`, or download it again")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ChecksumListError(f"{member} in {self.archive.name} is not a text "
                                    "checksums list") from None
        folder = posixpath.dirname(name)
        listed = parse_checksums(text, f"{member} in {self.archive.name}")
        return {_plain_name(posixpath.join(folder, path)): sha1 for path, sha1 in
                listed.items()}

    def _check_all_listed(self) -> None:
        absent = sorted(set(self.expected_sha1) - self._seen)
        if absent:
            more = f" and {len(absent) - 3} more" if len(absent) > 3 else ""
            raise MemberChecksumError(
                f"{len(absent)} member(s) listed in {self.checksums} are not in "
                f"{self.archive.name}: {', '.join(absent[:3])}{more}; download it again")

    def _harvest(self, pending: dict[Future[MemberResult], int],
                 results: dict[int, MemberResult], journal: Any, block: bool) -> None:
        finished, _ = wait(list(pending), return_when=FIRST_COMPLETED,
                           timeout=None if block else 0)
        first: BaseException | None = None
        for future in finished:
            number = pending.pop(future)
            try:
                results[number] = self._record(journal, future.result())
            except BaseException as exc:  # noqa: BLE001 - re-raised after the others are in
                first = first or exc
        if first is not None:
            raise first

    # files -----------------------------------------------------------------------------

    def _submit_file(self, pool: ThreadPoolExecutor, entry: _Entry) -> Future[MemberResult]:
        final = self.into / entry.rel
        self._check_parent(entry, final)
        tmp = self._tmp_path()
        chunks = self.archive.stream(entry)
        if entry.source_size <= BUFFER_LIMIT:
            data = b"".join(self._guarded(entry, chunks))  # CRC checked by the time it returns
            with self._flight_lock:
                self._in_flight += len(data)
            return pool.submit(self._write_and_commit, entry, data, tmp, final)
        handle = open(tmp, "wb")  # noqa: SIM115 - closed by the committer
        try:
            writer = HashingWriter(handle)
            if entry.convert:
                stream = MemberStream(self._guarded(entry, chunks))
                reason = self._convert(entry, stream, writer)
                stream.drain()  # the CRC check runs at the end of the member
                if reason is not None:
                    handle.close()
                    _unlink(tmp)
                    done: Future[MemberResult] = Future()
                    done.set_result(self._unreadable(entry, reason))
                    return done
            else:
                for chunk in self._guarded(entry, chunks):
                    writer.write(chunk)
        except BaseException:
            handle.close()
            _unlink(tmp)
            raise
        return pool.submit(self._commit, entry, handle, writer, tmp, final)

    def _guarded(self, entry: _Entry, chunks: Iterator[bytes]) -> Iterator[bytes]:
        expected = self.expected_sha1.get(_plain_name(entry.name))
        digest = hashlib.sha1(usedforsecurity=False) if expected is not None else None
        produced = 0
        for chunk in chunks:
            produced += len(chunk)
            self.guard.count(entry, produced, len(chunk))
            if digest is not None:
                digest.update(chunk)
            yield chunk
        if digest is not None and digest.hexdigest() != expected:
            raise MemberChecksumError(
                f"{entry.name} in {self.archive.name} does not match its sha1 in "
                f"{self.checksums} (sha1 {digest.hexdigest()}, listed {expected}): the "
                "archive is damaged; download it again")

    def _write_and_commit(self, entry: _Entry, data: bytes, tmp: Path,
                          final: Path) -> MemberResult:
        try:
            handle = open(tmp, "wb")  # noqa: SIM115 - closed by _commit
            try:
                writer = HashingWriter(handle)
                reason = None
                if entry.convert:
                    reason = self._convert(entry, io.BytesIO(data), writer)
                else:
                    writer.write(data)
            except BaseException:
                handle.close()
                _unlink(tmp)
                raise
            if reason is not None:
                handle.close()
                _unlink(tmp)
                return self._unreadable(entry, reason)
            return self._commit(entry, handle, writer, tmp, final)
        finally:
            with self._flight_lock:
                self._in_flight -= len(data)

    def _convert(self, entry: _Entry, src: Any, writer: HashingWriter) -> str | None:
        """Run the transform; the reason ``tolerate`` gives when it excuses a failure."""
        assert self.transform is not None
        try:
            self.transform(src, writer, entry.name)
        except Exception as exc:
            reason = self.tolerate(entry.name, exc) if self.tolerate is not None else None
            if reason is None:
                raise
            return reason
        return None

    def _unreadable(self, entry: _Entry, reason: str) -> MemberResult:
        return MemberResult(name=entry.name, path=self.into / entry.rel, kind="unreadable",
                            size=0, sha256=None, crc32=entry.crc32,
                            source_size=entry.source_size, settings=entry.settings,
                            reason=reason)

    def _commit(self, entry: _Entry, handle: BinaryIO, writer: HashingWriter, tmp: Path,
                final: Path) -> MemberResult:
        try:
            handle.flush()
            if self.durable:
                os.fsync(handle.fileno())
            handle.close()
            self._check_owner(entry, writer.hexdigest())
            os.chmod(tmp, _FILE_MODE)
            os.replace(tmp, final)
        except BaseException:
            handle.close()
            _unlink(tmp)
            raise
        return MemberResult(
            name=entry.name, path=final, kind="file", size=writer.size,
            sha256=writer.hexdigest(), crc32=entry.crc32, source_size=entry.source_size,
            settings=entry.settings,
        )

    def _check_owner(self, entry: _Entry, sha256: str) -> None:
        owner = self.owned.get(entry.rel)
        if owner is not None and owner.sha256 != sha256:
            raise ArchiveError(
                f"{entry.name} in {self.archive.name} would replace {entry.rel}, unpacked from "
                f"{owner.archive} with other bytes; unpack the two archives into two folders")

    # dirs and links --------------------------------------------------------------------

    def _dir_result(self, entry: _Entry) -> MemberResult:
        return MemberResult(name=entry.name, path=self.into / entry.rel, kind="dir", size=0,
                            sha256=None, crc32=entry.crc32, source_size=0)

    def _make_link(self, entry: _Entry) -> MemberResult:
        final = self.into / entry.rel
        self._check_parent(entry, final)
        tmp = self._tmp_path()
        if entry.kind == "symlink":
            os.symlink(entry.link_target or "", tmp)
        else:
            source = self.into / (entry.link_target or "")
            if not source.is_file() or source.is_symlink():
                raise UnsafeArchiveError(f"{entry.name} in {self.archive.name} hard-links to "
                                         f"{entry.link_target}, which is not an extracted "
                                         "file: refused")
            os.link(source, tmp)
        os.replace(tmp, final)
        return MemberResult(name=entry.name, path=final, kind=entry.kind, size=0, sha256=None,
                            crc32=entry.crc32, source_size=entry.source_size,
                            link_target=entry.link_target)

    def _mkdir(self, folder: Path) -> None:
        if folder in self._made_dirs:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            # Something not a folder stands where the archive has one (put there since an
            # earlier run, say): named, and left alone.
            raise ArchiveError(f"{folder} is not a folder, but {self.archive.name} has one "
                               "there; move it out of the way and run again") from None
        self._made_dirs.add(folder)

    def _check_parent(self, entry: _Entry, final: Path) -> None:
        # Belt and braces behind the name checks: the real folder must be inside the target.
        parent = final.parent
        self._mkdir(parent)
        if parent in self._checked_dirs:
            return
        real = os.path.realpath(parent)
        if real != self._root_real and not real.startswith(self._root_real + os.sep):
            raise UnsafeArchiveError(f"{entry.name} in {self.archive.name} would be written "
                                     f"to {real}, outside the target: refused")
        self._checked_dirs.add(parent)

    def _tmp_path(self) -> Path:
        self._tmp_counter += 1
        return self.tmp_dir / f"{self._tmp_counter:08d}.tmp"

    # journal ---------------------------------------------------------------------------

    def _read_journal(self) -> dict[str, MemberResult]:
        done: dict[str, MemberResult] = {}
        try:
            with open(self.journal, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        row = json.loads(line)
                        row["path"] = self.into / row["path"]
                        done[row["name"]] = MemberResult(**{**row, "skipped": True})
                    except (ValueError, TypeError, KeyError):
                        continue  # a line cut short by a crash
        except FileNotFoundError:
            pass
        return done

    def _still_good(self, entry: _Entry, old: MemberResult) -> bool:
        if old.kind == "unreadable" and entry.kind == "file":
            # Excused last time: not tried again while the member and settings are the same.
            return (old.crc32, old.source_size, old.settings, old.path) == (
                entry.crc32, entry.source_size, entry.settings, self.into / entry.rel)
        if (old.kind != entry.kind or old.crc32 != entry.crc32
                or old.source_size != entry.source_size
                or old.path != self.into / entry.rel):
            return False
        if entry.kind == "file":
            if old.settings != entry.settings:
                return False
            try:
                st = os.lstat(old.path)
            except OSError:
                return False
            return st.st_size == old.size and not os.path.islink(old.path)
        if entry.kind == "dir":
            return old.path.is_dir()
        return os.path.lexists(old.path)

    def _record(self, journal: Any, result: MemberResult) -> MemberResult:
        row = asdict(result)
        row["path"] = posixpath.join(*Path(result.path).relative_to(self.into).parts)
        row.pop("skipped")
        with self._journal_lock:
            journal.write(json.dumps(row, separators=(",", ":")) + "\n")
            journal.flush()
            now = time.monotonic()
            if self.durable and now - self._last_sync > 1.0:
                os.fsync(journal.fileno())
                self._last_sync = now
        self._emit(result)
        return result

    def _emit(self, result: MemberResult) -> None:
        if self.on_member is not None:
            self.on_member(result)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _file_mode() -> int:
    # mkstemp makes 0600 files; outputs get what a plain open() would give.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()
