"""Named exceptions. Each carries the exit code the CLI uses and a one-line message."""

from __future__ import annotations

# Exit codes shared by every command (see README, "Exit codes").
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TRY_LATER = 75
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class EasyOwwError(Exception):
    """Base class: a message fit for one line of output, and an exit code."""

    exit_code = EXIT_FAILED


class BadInputError(EasyOwwError):
    """A catalog, config or argument the user supplied is wrong (exit 2)."""

    exit_code = EXIT_USAGE


class CatalogError(BadInputError):
    pass


class ConfigError(BadInputError):
    pass


class TryLaterError(EasyOwwError):
    """Nothing is wrong, but the work cannot go on now (exit 75): a lock held, a budget spent."""

    exit_code = EXIT_TRY_LATER


class LockTimeoutError(TryLaterError):
    pass


class DownloadError(EasyOwwError):
    """A file could not be downloaded (after retries, or at once for 403/404)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status that refused it, when one did


class NotFoundError(DownloadError):
    """The source answers that the file is not there (HTTP 404 or 410, or a listing at the
    revision without it): retrying will not help, another route might."""


class MissingExtraError(EasyOwwError):
    """A route needs an optional dependency that is not installed (``pip install
    'easy-oww[<extra>]'``)."""


class NetworkError(DownloadError):
    """The server could not be reached at all (offline, DNS, refused)."""


class IntegrityError(EasyOwwError):
    """A file or library failed a check (hash, size, format, database integrity)."""


class HashMismatchError(DownloadError, IntegrityError):
    pass


class SizeMismatchError(DownloadError, IntegrityError):
    pass


class NotEnoughSpaceError(EasyOwwError):
    pass


class FileSystemLimitError(EasyOwwError):
    pass


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so cleanup runs as for Ctrl-C (exit 143)."""
