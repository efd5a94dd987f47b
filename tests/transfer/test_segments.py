"""The segment scheduler on its own: pieces, work stealing, and exact coverage of the file."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from easy_oww.transfer.resume import RangeSet
from easy_oww.transfer.segments import Piece, Scheduler, connection_count, split


def test_split_cuts_gaps_into_about_n_similar_pieces():
    pieces = split([(0, 1000)], 4)
    assert [(p.pos, p.end) for p in pieces] == [(0, 250), (250, 500), (500, 750), (750, 1000)]
    # A short gap is not cut; a long one is, and no piece is more than 1.5 targets long.
    pieces = split([(0, 100), (500, 2000)], 4)
    assert (pieces[0].pos, pieces[0].end) == (0, 100)
    assert all(p.end - p.pos <= 1.5 * 400 for p in pieces)
    assert sum(p.end - p.pos for p in pieces) == 1600


def test_connection_count_follows_min_segment():
    assert connection_count(100, 0, 4, 10) == 4
    assert connection_count(100, 75, 4, 10) == 2  # 25 bytes left: two segments' worth
    assert connection_count(100, 99, 4, 10) == 1  # never zero
    assert connection_count(100, 0, 1, 10) == 1


def test_take_hands_out_the_queue_then_steals_the_back_half_of_the_largest():
    scheduler = Scheduler([(0, 400)], 2, min_steal=10)
    first, second = scheduler.take(), scheduler.take()
    assert (first.pos, first.end, second.pos, second.end) == (0, 200, 200, 400)
    first.pos = 150  # the first connection is nearly done; the second is slow
    stolen = scheduler.take()
    assert (stolen.pos, stolen.end) == (300, 400)
    assert second.end == 300  # the slow one now stops where the stolen half starts
    scheduler.finished(first)
    assert scheduler.active == [second, stolen]


def test_take_does_not_split_a_range_shorter_than_min_steal():
    scheduler = Scheduler([(0, 30)], 1, min_steal=20)
    piece = scheduler.take()
    piece.pos = 11  # 19 bytes left
    assert scheduler.take() is None
    assert piece.end == 30
    scheduler.finished(piece)
    assert scheduler.take() is None and scheduler.active == []



def test_split_cuts_at_whole_byte_offsets_when_the_total_does_not_divide():
    # 1000 bytes over 3 connections: pieces of ceil(1000 / 3) = 334, the rest in the last.
    pieces = split([(0, 1000)], 3)
    assert [(p.pos, p.end) for p in pieces] == [(0, 334), (334, 668), (668, 1000)]
    assert all(type(p.pos) is int and type(p.end) is int for p in pieces)


def test_split_gives_a_connection_each_to_a_file_smaller_than_the_connections():
    pieces = split([(10, 13)], 4)  # three bytes, four connections: one byte each
    assert [(p.pos, p.end) for p in pieces] == [(10, 11), (11, 12), (12, 13)]


def test_an_idle_connection_shares_the_range_with_most_left_not_the_one_furthest_on():
    scheduler = Scheduler([(0, 400)], 2, min_steal=10)
    slow, fast = scheduler.take(), scheduler.take()
    slow.pos = 99  # 101 bytes left, at the start of the file
    fast.pos = 390  # 10 bytes left, near the end of the file
    stolen = scheduler.take()
    assert (stolen.pos, stolen.end) == (149, 200)  # the back half, cut at a whole byte
    assert type(stolen.pos) is int and slow.end == 149 and fast.end == 400


def test_a_range_exactly_min_steal_long_is_still_shared():
    scheduler = Scheduler([(0, 40)], 1, min_steal=20)
    piece = scheduler.take()
    piece.pos = 20  # exactly min_steal left: not shorter than it, so it is split
    stolen = scheduler.take()
    assert (stolen.pos, stolen.end) == (30, 40) and piece.end == 30

@st.composite
def downloads(draw):
    """A file size, the ranges already on disk, connections and a steal threshold."""
    size = draw(st.integers(min_value=1, max_value=5000))
    have = RangeSet()
    for start, length in draw(st.lists(st.tuples(st.integers(0, size - 1),
                                                 st.integers(1, size)), max_size=5)):
        have.add(start, min(size, start + length))
    return size, have, draw(st.integers(1, 6)), draw(st.integers(1, 64))


@settings(max_examples=200, deadline=None)
@given(download=downloads(), data=st.data())
def test_any_mix_of_slow_failing_and_stealing_connections_covers_each_byte_once(download, data):
    """Connections take pieces and advance them by random amounts in a random order (a
    slow one is one rarely picked); an attempt may fail with no bytes (it retries the same
    piece from where it is); idle ones steal. The bytes received must cover exactly the
    missing ranges, each byte once."""
    size, have, connections, min_steal = download
    gaps = have.missing(size)
    scheduler = Scheduler(gaps, connections, min_steal=min_steal)
    received: list[tuple[int, int]] = []
    holding: dict[int, Piece | None] = {i: None for i in range(connections)}
    steps = 0
    while holding:
        steps += 1
        assert steps < 100_000, "the scheduler never lets the connections finish"
        worker = data.draw(st.sampled_from(sorted(holding)), label="worker")
        piece = holding[worker]
        if piece is None:
            piece = scheduler.take()
            if piece is None:
                del holding[worker]  # idle and nothing worth stealing: the connection ends
                continue
            holding[worker] = piece
        if data.draw(st.booleans(), label="fails") and steps < 2000:
            continue  # a failed attempt: no bytes; the same piece is retried later
        left = piece.end - piece.pos
        if left > 0:
            step = data.draw(st.integers(1, left), label="bytes") if steps < 2000 else left
            received.append((piece.pos, piece.pos + step))
            piece.pos += step
        if piece.pos >= piece.end:
            scheduler.finished(piece)
            holding[worker] = None

    received.sort()
    for (_, end), (start, _) in zip(received, received[1:], strict=False):
        assert end <= start, "a byte was fetched twice"
    got = RangeSet([list(r) for r in received])
    assert got.ranges == RangeSet([list(g) for g in gaps]).ranges, "a gap or an extra byte"
    assert scheduler.queue == [] and scheduler.active == []
