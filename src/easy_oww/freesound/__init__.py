"""The Freesound sample library: grows every run, loses nothing, spends the API quota wisely.

Python use, the same calls the CLI makes::

    from easy_oww.freesound import FreesoundLibrary, GrowOptions, grow

    result = grow("~/.easy-oww/freesound_library", api_key, GrowOptions(samples=50))
    with FreesoundLibrary("~/.easy-oww/freesound_library") as lib:
        print(lib.stats(), lib.get(result_id))
        graph = lib.graph(derived=True)

Stored API data is private to you and your team under Freesound's API terms: do not publish
the library or its exports.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import urllib3

from easy_oww.freesound.api import (
    DEFAULT_API_URL,
    DEFAULT_PER_DAY,
    DEFAULT_PER_MINUTE,
    FreesoundClient,
    RateBudget,
    budget_status,
    key_fingerprint,
    read_api_key,
)
from easy_oww.freesound.backup import (
    BackupInfo,
    create_backup,
    list_backups,
    newest_good_backup,
    prune_backups,
    remove_partial_backups,
    restore_backup,
)
from easy_oww.freesound.crawl import (
    DEFAULT_QUERIES,
    Committed,
    Crawler,
    GrowBudgetExhaustedError,
    GrowOptions,
    GrowResult,
    Progress,
)
from easy_oww.freesound.errors import (
    ApiUnavailableError,
    ApiUnreachableError,
    BackupError,
    BudgetExhaustedError,
    KeyRefusedError,
    LibraryDamagedError,
    LibraryLockedError,
    LibraryMissingError,
    LibraryReadOnlyError,
    MissingKeyError,
)
from easy_oww.freesound.lock import grow_lock
from easy_oww.freesound.stopped import Stopped
from easy_oww.freesound.store import FreesoundLibrary, LibraryStats, library_exists

__all__ = [
    "ApiUnavailableError", "ApiUnreachableError", "BackupError", "BackupInfo",
    "BudgetExhaustedError", "Crawler", "DEFAULT_API_URL", "DEFAULT_QUERIES", "FreesoundClient",
    "FreesoundLibrary", "GrowBudgetExhaustedError", "GrowOptions", "GrowResult", "KeyRefusedError",
    "LibraryDamagedError", "LibraryLockedError", "LibraryMissingError", "LibraryReadOnlyError",
    "LibraryStats",
    "MissingKeyError", "RateBudget", "Stopped", "budget_status", "create_backup", "grow",
    "grow_lock", "key_fingerprint", "library_exists", "list_backups", "newest_good_backup",
    "prune_backups", "read_api_key", "restore_backup",
]


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[list[Stopped]]:
    """Ctrl-C / SIGTERM set `stop` (the current sample finishes and commits); a second
    Ctrl-C interrupts at once. Only the main thread can install handlers."""
    caught: list[Stopped] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def on_signal(signum: int, frame: object) -> None:
        name = Stopped.TERMINATED if signum == signal.SIGTERM else Stopped.INTERRUPTED
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        caught.append(name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def grow(
    folder: str | Path,
    api_key: str,
    options: GrowOptions | None = None,
    *,
    base_url: str | None = None,
    http: urllib3.PoolManager | None = None,
    per_minute: int = DEFAULT_PER_MINUTE,
    per_day: int = DEFAULT_PER_DAY,
    on_commit: Committed | None = None,
    on_progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
    notice: Callable[[str], None] | None = None,
    backoff: float = 1.0,
    handle_signals: bool = True,
) -> GrowResult:
    """Add up to `options.samples` new samples to the library in `folder`.

    Returns the result; ``result.stopped`` (a Stopped) says why it ended: done, exhausted,
    interrupted, terminated. Raises BudgetExhaustedError (a GrowBudgetExhaustedError whose
    ``result`` is what the run did; everything committed so far stays) when the daily budget
    is spent, LibraryLockedError if another grow runs, LibraryReadOnlyError if the folder
    cannot be written. `log`: every request (verbose); `notice`: one line per retry (what
    failed, when the next try is), default `log`.
    """
    options = options or GrowOptions()
    options.check()
    folder = Path(folder).expanduser().absolute()
    with grow_lock(folder), FreesoundLibrary(folder) as library:
        remove_partial_backups(folder)
        stop = threading.Event()
        budget = RateBudget.for_key(api_key, per_minute=per_minute, per_day=per_day)
        client = FreesoundClient(api_key, base_url=base_url, http=http, budget=budget,
                                 stop=stop, log=log, notice=notice, backoff=backoff)
        if library.get_meta("key_fingerprint") != budget.fingerprint:
            library.set_meta("key_fingerprint", budget.fingerprint)
        crawler = Crawler(library, client, options, on_commit=on_commit,
                          on_progress=on_progress, stop=stop, log=log)
        signals = _stop_on_signals(stop) if handle_signals else contextlib.nullcontext([])
        with signals as caught:
            result = crawler.run()
        if caught:
            result.stopped = caught[0]
            library.update_run(crawler.run_id, samples_added=result.stored,
                               requests=result.requests, status=caught[0])
        return result
