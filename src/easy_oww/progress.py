"""Progress reporting shared by every download in a process.

`NullProgress` for the quiet Python API, `RichProgress` for a terminal (one live display:
rich allows only one), `PlainProgress` for logs and pipes (a line per file every few
seconds). All three are safe to call from many threads.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class Task:
    """One file's bar. `advance` is called from download threads, so it must be cheap."""

    def advance(self, n: int) -> None: ...

    def reset(self, completed: int = 0, total: int | None = None) -> None: ...

    def finish(self, ok: bool = True) -> None: ...


class NullProgress:
    def task(self, label: str, total: int | None, completed: int = 0) -> Task:
        return Task()

    def set_total(self, total: int, done: int) -> None:
        """The bytes this run will have when done, and those already on disk (resumes)."""

    def advance_total(self, n: int) -> None:
        """`n` more bytes towards the total (negative when a restart takes bytes back)."""

    def log(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "NullProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _RichTask(Task):
    def __init__(self, owner: "RichProgress", task_id: TaskID) -> None:
        self.owner, self.task_id = owner, task_id

    def advance(self, n: int) -> None:
        self.owner.bars.advance(self.task_id, n)
        self.owner.advance_total(n)

    def reset(self, completed: int = 0, total: int | None = None) -> None:
        task = next(t for t in self.owner.bars.tasks if t.id == self.task_id)
        # Bytes a resume finds on disk are in the total's starting point already; only a
        # restart from zero takes bytes back.
        self.owner.advance_total(min(0, completed - int(task.completed)))
        self.owner.bars.reset(self.task_id, completed=completed, total=total or task.total)

    def finish(self, ok: bool = True) -> None:
        self.owner.bars.remove_task(self.task_id)


class RichProgress(NullProgress):
    """A bar per active file (name, %, bytes, speed, ETA) and a total bar."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.bars = Progress(
            TextColumn("[bold]{task.description}", justify="left"),
            BarColumn(bar_width=None),
            TextColumn("{task.percentage:>5.1f}%"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            refresh_per_second=4,
        )
        self._total_id: TaskID | None = None
        self.bars.start()

    def set_total(self, total: int, done: int) -> None:
        if self._total_id is None:
            self._total_id = self.bars.add_task("Total", total=total, completed=done)
        else:
            self.bars.update(self._total_id, total=total, completed=done)

    def advance_total(self, n: int) -> None:
        if self._total_id is not None and n:
            self.bars.advance(self._total_id, n)

    def task(self, label: str, total: int | None, completed: int = 0) -> Task:
        task_id = self.bars.add_task(label, total=total, completed=completed)
        return _RichTask(self, task_id)

    def log(self, message: str) -> None:
        self.bars.console.print(message, highlight=False, markup=False)

    def close(self) -> None:
        self.bars.stop()


class _PlainTask(Task):
    def __init__(self, owner: "PlainProgress", label: str, total: int | None, done: int) -> None:
        self.owner, self.label, self.total, self.done = owner, label, total, done
        self.started = self.last = time.monotonic()
        self.start_done = done

    def advance(self, n: int) -> None:
        self.done += n
        self.owner.advance_total(n)
        now = time.monotonic()
        if now - self.last >= self.owner.interval:
            self.last = now
            self.owner.line(self._line(now))

    def reset(self, completed: int = 0, total: int | None = None) -> None:
        self.owner.advance_total(min(0, completed - self.done))  # as in _RichTask.reset
        self.done, self.start_done = completed, completed
        self.total = total or self.total
        self.started = time.monotonic()

    def _line(self, now: float) -> str:
        speed = (self.done - self.start_done) / max(now - self.started, 1e-6)
        if self.total:
            pct = 100.0 * self.done / self.total
            eta = (self.total - self.done) / speed if speed > 0 else float("inf")
            eta_text = f"ETA {eta:,.0f} s" if eta != float("inf") else "ETA ?"
            return (f"{self.label}: {pct:5.1f}% {human_bytes(self.done)}/{human_bytes(self.total)} "
                    f"{speed / 1e6:,.1f} MB/s {eta_text}")
        return f"{self.label}: {human_bytes(self.done)} {speed / 1e6:,.1f} MB/s"

    def finish(self, ok: bool = True) -> None:
        if ok:
            self.owner.line(f"{self.label}: done, {human_bytes(self.done)}")


def human_bytes(n: int | None) -> str:
    """1,234,567 -> "1.2 MB" (decimal units, as drive makers and download tools print)."""
    if n is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} B"


class PlainProgress(NullProgress):
    """Periodic plain lines, for when stdout is not a terminal."""

    def __init__(self, stream: IO[str] | None = None, interval: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self._lock = threading.Lock()
        self.total: int | None = None
        self.total_done = 0
        self._total_line = 0.0

    def set_total(self, total: int, done: int) -> None:
        self.total, self.total_done = total, done

    def advance_total(self, n: int) -> None:
        with self._lock:
            self.total_done += n
            now = time.monotonic()
            due = self.total and now - self._total_line >= self.interval
            if due:
                self._total_line = now
        if due:
            assert self.total
            self.line(f"Total: {100.0 * self.total_done / self.total:5.1f}% "
                      f"{human_bytes(self.total_done)}/{human_bytes(self.total)}")

    def task(self, label: str, total: int | None, completed: int = 0) -> Task:
        return _PlainTask(self, label, total, completed)

    def line(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def log(self, message: str) -> None:
        self.line(message)
