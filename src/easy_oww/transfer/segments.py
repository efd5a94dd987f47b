"""Which byte ranges the connections of one download fetch: no threads, no sockets.

The missing ranges are cut into about one piece per connection; a connection that runs out
of pieces takes the back half of the largest range still in flight (work stealing), so one
slow connection does not hold up the end of the file.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class Piece:
    """A range [pos, end) still to fetch. Its connection advances `pos`; a steal lowers
    `end` (under the scheduler's lock; the connection reads it before each read)."""

    pos: int
    end: int


def connection_count(size: int, have: int, connections: int, min_segment: int) -> int:
    """How many connections a file of `size` bytes, `have` of them on disk, is worth."""
    return max(1, min(connections, (size - have) // min_segment))


def split(gaps: list[tuple[int, int]], n: int) -> list[Piece]:
    """Cut the missing ranges into about `n` pieces of similar size."""
    total = sum(e - s for s, e in gaps)
    target = max(1, -(-total // n))
    pieces: list[Piece] = []
    for start, end in gaps:
        while end - start > target * 1.5:
            pieces.append(Piece(start, start + target))
            start += target
        pieces.append(Piece(start, end))
    return pieces


class Scheduler:
    """Hands pieces to connections; safe to call from several threads."""

    def __init__(self, gaps: list[tuple[int, int]], connections: int, *, min_steal: int) -> None:
        self.queue = split(gaps, connections)
        self.active: list[Piece] = []
        self.min_steal = min_steal  # a range in flight shorter than this is not split
        self._lock = threading.Lock()

    def take(self) -> Piece | None:
        """The next piece to fetch, else half of the largest in flight; None when done."""
        with self._lock:
            if self.queue:
                piece = self.queue.pop(0)
                self.active.append(piece)
                return piece
            # Idle: take the back half of the largest range still in flight.
            victim = max(self.active, key=lambda p: p.end - p.pos, default=None)
            if victim is None or victim.end - victim.pos < self.min_steal:
                return None
            mid = victim.pos + (victim.end - victim.pos) // 2
            stolen = Piece(mid, victim.end)
            victim.end = mid
            self.active.append(stolen)
            return stolen

    def finished(self, piece: Piece) -> None:
        """`piece` is fetched (its connection reached its end)."""
        with self._lock:
            self.active.remove(piece)
