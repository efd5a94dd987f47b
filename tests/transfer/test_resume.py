"""The resume decision and the sidecar record on their own: which bytes on disk to trust."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from easy_oww.transfer.resume import RangeSet, Sidecar, SidecarRecord, plan_resume
from tests.durability import SyncLog

URL = "https://example.org/f.bin"
SIZE = 100 * 1024 * 1024
ETAG = '"abc"'


def record(**changes: object) -> SidecarRecord:
    fields: dict = dict(url=URL, size=SIZE, validator=ETAG, sequential=False,
                        done=[[0, 1000]], written=[[0, 5000]])
    fields.update(changes)
    return SidecarRecord(**fields)


def plan(saved: SidecarRecord | None, **changes: object):
    args: dict = dict(part_size=SIZE, url=URL, request_size=SIZE, hash_known=True,
                      remote_size=SIZE, validator=ETAG, accepts_ranges=True, connections=1,
                      min_segment=8 * 1024 * 1024)
    args.update(changes)
    return plan_resume(saved, **args)


def test_no_sidecar_starts_from_zero():
    result = plan(None)
    assert result.done.ranges == [] and result.resumed_from == 0 and result.size == SIZE
    assert not result.use_segments  # one connection asked for


def test_several_connections_for_a_large_file_one_for_a_small_one():
    assert plan(None, connections=4).use_segments
    assert plan(None, connections=2).use_segments
    small = 16 * 1024 * 1024 - 1  # less than two 8 MiB segments
    assert not plan(None, connections=4, request_size=small, remote_size=small).use_segments
    two = 16 * 1024 * 1024  # exactly two segments' worth
    assert plan(None, connections=4, request_size=two, remote_size=two).use_segments


def test_what_is_left_not_the_files_size_decides_the_connections():
    nearly = record(written=[[0, SIZE - 1000]])  # a contiguous front, 1000 bytes to go
    result = plan(nearly, connections=4)
    assert result.resumed_from == SIZE - 1000 and not result.use_segments


def test_with_a_known_hash_the_written_ranges_are_trusted():
    result = plan(record())
    assert result.done.ranges == [[0, 5000]] and result.resumed_from == 5000
    assert result.durable.ranges == [[0, 5000]]


def test_without_a_hash_only_the_synced_ranges_are_trusted():
    result = plan(record(), hash_known=False)
    assert result.done.ranges == [[0, 1000]] and result.resumed_from == 1000


def test_an_old_sidecar_without_written_falls_back_to_done():
    assert plan(record(written=[])).done.ranges == [[0, 1000]]


def test_sequential_with_a_hash_trusts_the_part_files_length():
    result = plan(record(sequential=True), part_size=70_000)
    assert result.done.ranges == [[0, 70_000]]
    assert result.durable.ranges == [[0, 5000]]  # what the sidecar itself vouched for
    longer = plan(record(sequential=True), part_size=SIZE + 10)  # an older, longer part
    assert longer.done.ranges == [[0, SIZE]]
    unsaved = plan(record(sequential=True, done=[], written=[]), part_size=70_000)
    assert unsaved.done.ranges == [[0, 70_000]]  # killed before its first save: from byte 0


def test_sequential_without_a_hash_does_not_trust_the_length():
    result = plan(record(sequential=True), part_size=70_000, hash_known=False)
    assert result.done.ranges == [[0, 1000]]


@pytest.mark.parametrize("change", [
    dict(part_size=None),  # the part file is gone
    dict(accepts_ranges=False),  # the server no longer does ranges
    dict(url="https://example.org/other.bin"),
    dict(request_size=SIZE + 1),  # the catalog's size changed
    dict(validator='"changed"'),  # the file changed on the server
])
def test_anything_that_does_not_line_up_starts_from_zero(change):
    result = plan(record(), **change)
    assert result.done.ranges == [] and result.resumed_from == 0


def test_the_servers_size_counts_when_the_request_has_none():
    assert plan(record(), request_size=None).resumed_from == 5000
    assert plan(record(), request_size=None, remote_size=SIZE - 1).resumed_from == 0
    unknown = plan(record(size=None), request_size=None, remote_size=None)
    assert unknown.resumed_from == 0 and not unknown.use_segments


def test_no_validator_from_the_server_resumes_only_under_a_hash():
    saved = record(validator=None)
    assert plan(saved, validator=None, hash_known=True).resumed_from == 5000
    assert plan(saved, validator=None, hash_known=False).resumed_from == 0


def test_holes_need_ranges_even_on_one_connection():
    holes = record(written=[[0, 1000], [4000, 5000]])
    result = plan(holes, connections=1)
    assert result.use_segments and result.resumed_from == 2000
    island = record(written=[[4000, 5000]])  # nothing at the front
    assert plan(island, connections=1).use_segments
    front = plan(record(), connections=1)  # one contiguous front: go on in order
    assert not front.use_segments
    tail = plan(record(written=[[SIZE - 1000, SIZE]]), connections=1)  # only the end is there
    assert tail.use_segments and tail.resumed_from == 1000


def test_the_sidecar_round_trips_through_its_file(tmp_path):
    sidecar = Sidecar(tmp_path / "f.bin.part.json")
    assert sidecar.load() is None
    sidecar.save(url=URL, size=SIZE, validator=ETAG, done=RangeSet([[0, 10]]),
                 written=RangeSet([[0, 10], [20, 30]]), sequential=False, durable=True)
    on_disk = json.loads(sidecar.path.read_text())
    assert on_disk == {"version": 1, "url": URL, "size": SIZE, "validator": ETAG,
                       "sequential": False, "done": [[0, 10]], "written": [[0, 10], [20, 30]]}
    assert sidecar.load() == record(done=[[0, 10]], written=[[0, 10], [20, 30]])
    sidecar.remove()
    sidecar.remove()  # already gone: no error
    assert not sidecar.path.exists()


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", '{"version": 2, "url": "x"}', "\udcff"])
def test_an_unreadable_or_foreign_sidecar_is_no_record(tmp_path, text):
    path = tmp_path / "f.bin.part.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert Sidecar(path).load() is None


def test_fields_of_the_wrong_type_in_a_sidecar_are_read_as_absent():
    data = {"version": 1, "url": 5, "size": True, "validator": ["x"], "sequential": 1,
            "done": [[0, 1]], "written": [[0, 1]]}
    saved = SidecarRecord.from_json(data)
    assert saved is not None
    assert (saved.url, saved.size, saved.validator, saved.sequential) == (None, None, None, True)
    assert SidecarRecord.from_json({**data, "size": "100"}).size is None


def test_a_durable_save_is_synced_before_its_rename_and_a_quick_one_is_not(tmp_path,
                                                                          monkeypatch):
    sidecar = Sidecar(tmp_path / "f.bin.part.json")
    log = SyncLog(monkeypatch)
    args = dict(url=URL, size=SIZE, validator=ETAG, done=RangeSet([[0, 10]]),
                written=RangeSet([[0, 10]]), sequential=False)
    sidecar.save(**args, durable=True)
    log.assert_durable_rename(sidecar.path, writes_seen=False)
    log.calls.clear()
    sidecar.save(**args, durable=False)  # fdatasync can take 100 ms: not on every save
    assert log.renames_to(sidecar.path)
    assert not [c for c in log.calls if c.op == "sync"]


def test_malformed_ranges_in_a_sidecar_are_ignored():
    data = {"version": 1, "url": URL, "size": SIZE, "validator": ETAG, "sequential": True,
            "done": [[0, 10], "x", [1, 2, 3], [True, 5]], "written": None}
    saved = SidecarRecord.from_json(data)
    assert saved is not None and saved.done == [[0, 10]] and saved.written == []


INTERVALS = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=12)


@given(intervals=INTERVALS, size=st.integers(0, 45))
@example(intervals=[(5, 10), (0, 5)], size=10)  # touching on the left
@example(intervals=[(0, 5), (5, 10)], size=10)  # on the right
@example(intervals=[(0, 2), (8, 10), (4, 6), (3, 3), (6, 4)], size=12)  # between, empty, reversed
def test_rangeset_is_the_union_of_what_was_added(intervals, size):
    """Against a plain set of byte offsets: the same bytes, kept as sorted intervals that
    neither overlap nor touch (touching ones merge, so the front is one run)."""
    ranges = RangeSet()
    have: set[int] = set()
    for start, end in intervals:
        ranges.add(start, end)
        have.update(range(start, end))
    assert {i for s, e in ranges.ranges for i in range(s, e)} == have
    assert all(s < e for s, e in ranges.ranges)
    assert all(a[1] < b[0] for a, b in zip(ranges.ranges, ranges.ranges[1:], strict=False))
    prefix = 0
    while prefix in have:
        prefix += 1
    assert ranges.prefix() == prefix and ranges.total() == len(have)
    gaps = {i for s, e in ranges.missing(size) for i in range(s, e)}
    assert gaps == set(range(size)) - have
    assert all(s < e for s, e in ranges.missing(size))
    assert RangeSet(ranges.ranges).ranges == ranges.ranges
