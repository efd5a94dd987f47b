"""Errors of the Freesound half. Each is one line: what happened, where, what to do."""

from __future__ import annotations

from pathlib import Path

from easy_oww.errors import BadInputError, EasyOwwError, IntegrityError, TryLaterError


class KeyRefusedError(EasyOwwError):
    """401/403: the API key is missing, wrong or revoked (exit 1)."""


class MissingKeyError(BadInputError):
    """No key given at all (exit 2)."""


class ApiUnavailableError(EasyOwwError):
    """5xx or timeouts after every retry (exit 1)."""


class ApiUnreachableError(ApiUnavailableError):
    """No answer at all from `base_url` after every retry (network down, wrong URL)."""

    def __init__(self, message: str, base_url: str) -> None:
        super().__init__(message)
        self.base_url = base_url


class BudgetExhaustedError(TryLaterError):
    """The daily request budget for this key is spent (exit 75); `resets_at`: when it returns."""

    def __init__(self, message: str, resets_at: str | None = None) -> None:
        super().__init__(message)
        self.resets_at = resets_at


class LibraryLockedError(TryLaterError):
    """Another `grow` (or a restore) holds the library (exit 75)."""


class LibraryMissingError(EasyOwwError):
    """No library file in `folder` and the caller did not ask to create one (exit 1)."""

    def __init__(self, message: str, folder: Path) -> None:
        super().__init__(message)
        self.folder = folder


class LibraryDamagedError(IntegrityError):
    """The database file is not a readable SQLite library (exit 1). Never overwritten.

    The facts travel on the error (``path``, ``folder``, ``problem``, ``good_backup``: the
    name of the newest good backup or None), so a front end can say how to restore with its
    own words; the message names no front end's options.
    """

    def __init__(self, message: str, *, path: Path | None = None, problem: str = "",
                 good_backup: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.folder = path.parent if path is not None else None
        self.problem = problem
        self.good_backup = good_backup


class LibraryReadOnlyError(EasyOwwError):
    """A command that writes was given a library folder it cannot write (exit 1): not bad
    usage, the command is right; the folder (a read-only mount, its permissions) refuses."""

    def __init__(self, message: str, folder: Path) -> None:
        super().__init__(message)
        self.folder = folder


class LibraryVersionError(EasyOwwError):
    """The library was written by a newer easy-oww (schema version unknown here)."""


class MalformedAnswerError(EasyOwwError):
    """The API answered something not of the documented shape (the crawl skips the item)."""


class SoundNotFoundError(EasyOwwError):
    """404 for a sound: deleted on Freesound (internal; the crawl marks it deleted)."""

    def __init__(self, message: str, sound_id: int | None = None) -> None:
        super().__init__(message)
        self.sound_id = sound_id


class BackupError(EasyOwwError):
    pass
