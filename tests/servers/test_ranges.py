"""The stand-ins' shared Range / If-Range rules, including where the stand-ins differ."""

from __future__ import annotations

import pytest

from easy_oww.demo.ranges import UNSATISFIABLE, if_range_matches, parse_range

SIZE = 100
FREESOUND = {"inverted_unsatisfiable": True, "exact_syntax": True}  # nginx-like CDN


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=10-19", SIZE, (10, 19)),
        ("bytes=90-", SIZE, (90, 99)),
        ("bytes=-5", SIZE, (95, 99)),
        ("bytes=-500", SIZE, (0, 99)),
        ("bytes=10-999999", SIZE, (10, 99)),
        ("BYTES = 10 - 19", SIZE, (10, 19)),
        ("bytes=100-", SIZE, UNSATISFIABLE),
        ("bytes=-0", SIZE, UNSATISFIABLE),
        ("bytes=-5", 0, UNSATISFIABLE),
        ("bytes=0-", 0, UNSATISFIABLE),
        ("bytes=9-3", SIZE, None),
        ("bytes=0-1,5-6", SIZE, None),
        ("items=0-1", SIZE, None),
        ("bytes=x-", SIZE, None),
        ("bytes=-", SIZE, None),
        ("bytes=5", SIZE, None),
        ("bytes=\u00b2-", SIZE, None),  # a digit int() cannot read is malformed, not a crash
    ],
)
def test_parse_range_s3_like(header: str, size: int, expected: object) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=10-19", SIZE, (10, 19)),
        ("bytes=-5", SIZE, (95, 99)),
        ("bytes=100-", SIZE, UNSATISFIABLE),
        ("bytes=-0", SIZE, UNSATISFIABLE),
        ("bytes=9-3", SIZE, UNSATISFIABLE),
        ("BYTES=10-19", SIZE, None),
        ("bytes= 10-19", SIZE, None),
        ("bytes=0-1,5-6", SIZE, None),
        ("bytes=-", SIZE, None),
    ],
)
def test_parse_range_freesound_cdn(header: str, size: int, expected: object) -> None:
    assert parse_range(header, size, **FREESOUND) == expected


def test_if_range_matches_strong_etag_or_exact_date() -> None:
    date = "Mon, 01 Jan 2024 00:00:00 GMT"
    assert if_range_matches('"abc"', '"abc"', date)
    assert not if_range_matches('"abc"', '"abd"', date)
    assert not if_range_matches('W/"abc"', '"abc"', date)
    assert not if_range_matches('"abc"', 'W/"abc"', date)
    assert not if_range_matches('"abc"', None, date)
    assert if_range_matches(date, None, date)
    assert if_range_matches(" " + date, '"abc"', date)
    assert not if_range_matches("Mon, 01 Jan 2024 00:00:01 GMT", None, date)
    assert not if_range_matches("yesterday", None, date)
