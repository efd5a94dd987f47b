"""WorkerPool: waiting for workers stays right after a Ctrl-C lands in the wait."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from easy_oww.workers import WorkerPool


def test_interrupted_wait_still_sees_the_running_worker():
    release = threading.Event()
    finished = []

    def worker() -> None:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, delivered to the main thread
        release.wait(10)
        finished.append(True)

    pool = WorkerPool(worker, 1, "test")
    with pytest.raises(KeyboardInterrupt):
        pool.start().wait()
    assert pool.wait(0) is False  # still running: not taken for dead (cpython#90882)
    release.set()
    assert pool.wait(5) is True and finished == [True]


def test_wait_returns_when_every_worker_returned_even_after_an_error(monkeypatch):
    calls = []
    lock = threading.Lock()
    raised = []
    monkeypatch.setattr(threading, "excepthook", lambda args: raised.append(args.exc_value))

    def worker() -> None:
        with lock:
            calls.append(1)
        raise RuntimeError("one worker's failure")

    pool = WorkerPool(worker, 3, "test")
    assert pool.start().wait(5) is True and len(calls) == 3
    for thread in pool._threads:  # the hook runs after the count-down: let it finish
        thread.join(5)
    assert [str(e) for e in raised] == ["one worker's failure"] * 3  # still reported
