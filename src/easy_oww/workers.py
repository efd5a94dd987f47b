"""Worker threads that the main thread can wait for through Ctrl-C.

When a KeyboardInterrupt lands in ``Thread.join``, CPython 3.9-3.11 may mark the thread dead
while it still runs (python/cpython#90882): a later ``join`` returns at once, the process
exits, and the interpreter stops the daemon workers mid-write (a sidecar temp file left
behind, a partial file's last progress unsaved). So the pool counts its workers out itself
and waits on a condition, which an interrupt cannot confuse.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class WorkerPool:
    """``count`` daemon threads running ``target``; ``wait()`` until every one returned."""

    def __init__(self, target: Callable[[], None], count: int, name: str) -> None:
        self._target = target
        self._left = count
        self._done = threading.Condition()
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
                         for i in range(count)]

    def _run(self) -> None:
        try:
            self._target()
        finally:
            with self._done:
                self._left -= 1
                self._done.notify_all()

    def start(self) -> WorkerPool:
        for thread in self._threads:
            thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """True once every worker has returned; False if `timeout` seconds passed first.
        Short waits in a loop, so Ctrl-C is noticed at once."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._done:
            while self._left:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._done.wait(0.2 if left is None else min(0.2, left))
        return True
