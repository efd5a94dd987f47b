"""HTTP byte ranges for the loopback stand-ins: one ``Range`` header against a size, and
``If-Range`` against a strong ETag or an exact date (RFC 9110 §14.2, §13.1.5).

Multi-range headers (``bytes=0-1,5-6``) are never split: every stand-in answers them with the
whole body and ``200``, which RFC 9110 allows and which the fetch engine never asks for.
"""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from typing import Final

UNSATISFIABLE: Final = "unsatisfiable"

# The Freesound stand-in's original grammar: lowercase unit, no spaces, one range. `\d` is
# Unicode decimal digits, which is what str.isdecimal() and int() accept too.
_EXACT_SYNTAX = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str, size: int, *, inverted_unsatisfiable: bool = False,
                exact_syntax: bool = False) -> tuple[int, int] | str | None:
    """``(start, end)`` inclusive, `UNSATISFIABLE` (answer 416), or None when the header is to
    be ignored (not bytes, several ranges, malformed): then the whole body goes with 200.

    inverted_unsatisfiable: ``bytes=9-3`` answers 416, as nginx does (it finds no satisfiable
        range in it; checked against nginx-light 1.22, the Freesound CDN's server). Otherwise
        it is ignored, as AWS S3 does (the Hub's CDN origin; RFC 9110 lets a server ignore an
        invalid range; scality/cloudserver#2194 and noobaa/noobaa-core#9889 record S3's 200).
    exact_syntax: only ``bytes=<a>-<b>`` exactly (lowercase unit, no spaces), as the Freesound
        stand-in has always parsed; nginx itself takes ``BYTES=`` and spaces.
    """
    if exact_syntax:
        match = _EXACT_SYNTAX.fullmatch(header.strip())
        if match is None:
            return None
        first, last = match.groups()
    else:
        unit, _, spec = header.strip().partition("=")
        if unit.strip().lower() != "bytes" or "," in spec:
            return None
        first, dash, last = spec.strip().partition("-")
        first, last = first.strip(), last.strip()
        if not dash or (first and not first.isdecimal()) or (last and not last.isdecimal()):
            return None
    if not (first or last):
        return None
    if not first:  # suffix range: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - n), size - 1
    start = int(first)
    if last and int(last) < start:
        return UNSATISFIABLE if inverted_unsatisfiable else None
    if start >= size:
        return UNSATISFIABLE
    return start, min(int(last), size - 1) if last else size - 1


def if_range_matches(value: str, etag: str | None, last_modified: str) -> bool:
    """Whether a ranged request's ``If-Range`` still names this representation: the same strong
    ETag, or exactly its ``Last-Modified`` date."""
    value = value.strip()
    if value.startswith("W/"):
        return False  # If-Range needs a strong comparison
    if value.startswith('"'):
        return etag is not None and not etag.startswith("W/") and value == etag
    try:
        return parsedate_to_datetime(value) == parsedate_to_datetime(last_modified)
    except (TypeError, ValueError):
        return False
