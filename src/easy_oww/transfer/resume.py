"""What a part file holds, the sidecar that records it, and whether to resume from it.

``<final>.part.json`` records the URL, the server's validator, the expected size and the
byte ranges on disk: `done` (fdatasync'd: survives a power cut) and `written` (handed to
the OS: survives a killed process). `plan_resume` decides, from that record and what the
server says now, which of those bytes to trust and whether to use several connections.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from easy_oww.atomic import atomic_writer

SIDECAR_VERSION = 1


class RangeSet:
    """Sorted, merged half-open byte intervals [start, end) known to be on disk."""

    def __init__(self, ranges: list[list[int]] | None = None) -> None:
        self.ranges: list[list[int]] = []
        for start, end in ranges or []:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        merged: list[list[int]] = []
        for s, e in self.ranges:
            if e < start or s > end:  # apart (ranges that touch merge)
                merged.append([s, e])
            else:
                start, end = min(s, start), max(e, end)
        merged.append([start, end])
        merged.sort()
        self.ranges = merged

    def prefix(self) -> int:
        """Length of the contiguous run starting at byte 0."""
        return self.ranges[0][1] if self.ranges and self.ranges[0][0] == 0 else 0

    def total(self) -> int:
        return sum(e - s for s, e in self.ranges)

    def missing(self, size: int) -> list[tuple[int, int]]:
        gaps, pos = [], 0
        for s, e in self.ranges:
            if s > pos:
                gaps.append((pos, min(s, size)))
            pos = max(pos, e)
        if pos < size:
            gaps.append((pos, size))
        return [(s, e) for s, e in gaps if e > s]


def _ranges(value: Any) -> list[list[int]]:
    """A sidecar's list of [start, end] pairs; anything else in it is ignored."""
    if not isinstance(value, list):
        return []
    return [[r[0], r[1]] for r in value
            if isinstance(r, list) and len(r) == 2
            and all(isinstance(x, int) and not isinstance(x, bool) for x in r)]


@dataclass(frozen=True, kw_only=True)
class SidecarRecord:
    """One saved sidecar: what an earlier run (maybe another process) had on disk."""

    url: str | None
    size: int | None
    validator: str | None
    sequential: bool  # written in order by one connection
    done: list[list[int]]  # fdatasync'd ranges
    written: list[list[int]]  # ranges handed to the OS (a superset of done)

    @classmethod
    def from_json(cls, data: Any) -> SidecarRecord | None:
        """The record in a parsed sidecar; None when it is not one this version wrote."""
        if not isinstance(data, dict) or data.get("version") != SIDECAR_VERSION:
            return None
        url, size, validator = data.get("url"), data.get("size"), data.get("validator")
        return cls(url=url if isinstance(url, str) else None,
                   size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                   validator=validator if isinstance(validator, str) else None,
                   sequential=bool(data.get("sequential")),
                   done=_ranges(data.get("done")), written=_ranges(data.get("written")))

    def to_json(self) -> dict[str, Any]:
        return {"version": SIDECAR_VERSION, "url": self.url, "size": self.size,
                "validator": self.validator, "sequential": self.sequential,
                "done": self.done, "written": self.written}


class Sidecar:
    """``<final>.part.json``: enough to resume safely in another process."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> SidecarRecord | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError, UnicodeDecodeError):
            return None
        return SidecarRecord.from_json(data)

    def save(self, *, url: str, size: int | None, validator: str | None, done: RangeSet,
             written: RangeSet, sequential: bool, durable: bool) -> None:
        """`done`: ranges known to be on disk even after a power cut (fdatasync'd);
        `written`: ranges handed to the OS, which survive a killed process."""
        record = SidecarRecord(url=url, size=size, validator=validator, sequential=sequential,
                               done=done.ranges, written=written.ranges)
        with atomic_writer(self.path, durable=durable) as handle:
            handle.write(json.dumps(record.to_json()).encode())

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


@dataclass(frozen=True, kw_only=True)
class ResumePlan:
    """How a download starts: the bytes on disk it trusts, and how many connections."""

    size: int | None  # the expected size: the request's if it gave one, else the server's
    done: RangeSet  # bytes on disk to keep (empty: start from zero)
    durable: RangeSet  # of those, what the sidecar vouched for (before the length rule)
    use_segments: bool  # several connections on byte ranges (else one, in order)

    @property
    def resumed_from(self) -> int:
        return self.done.total()


def plan_resume(record: SidecarRecord | None, *, part_size: int | None, url: str,
                request_size: int | None, hash_known: bool, remote_size: int | None,
                validator: str | None, accepts_ranges: bool, connections: int,
                min_segment: int) -> ResumePlan:
    """Decide what to keep of a part file and whether to use several connections.

    `part_size`: the part file's length, None when there is none. Resume only what a
    sidecar vouches for, from the same URL, size and validator (or, with no validator from
    the server, when a known hash will catch a changed file).
    """
    size = request_size if request_size is not None else remote_size
    done, durable = RangeSet(), RangeSet()
    resumable = (
        record is not None and part_size is not None and accepts_ranges
        and record.url == url and size is not None and record.size == size
        and (record.validator == validator and validator is not None
             or hash_known and validator is None)
    )
    if resumable:
        assert record is not None and part_size is not None and size is not None
        # With a known hash, trust what the process had written (a power cut that lost
        # some of it shows as a hash mismatch, never as a good file); else only what
        # was fdatasync'd.
        trusted = record.written if hash_known and record.written else record.done
        done = RangeSet(trusted)
        durable = RangeSet(done.ranges)
        if record.sequential and hash_known:
            # One connection writes in order: every byte below the file's length is
            # real, even past the last sidecar save.
            done.add(0, min(part_size, size))
    resumed_from = done.total()
    remaining = (size or 0) - resumed_from
    # Bytes on disk that are not one run from byte 0 need ranges. (This covers two or more
    # gaps too: those need a run after a gap, so the front is shorter than the total.)
    holes = bool(resumed_from and done.prefix() != resumed_from)
    use_segments = accepts_ranges and size is not None and (
        connections > 1 and remaining >= 2 * min_segment or holes)
    return ResumePlan(size=size, done=done, durable=durable, use_segments=bool(use_segments))
