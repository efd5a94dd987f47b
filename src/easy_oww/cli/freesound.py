"""`easy-oww freesound …`: grow, inspect, check and back up the Freesound sample library.

Parsing and printing only; the work is in `easy_oww.freesound`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from easy_oww.cli.common import common_options, get_flag, get_workspace
from easy_oww.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    BadInputError,
    Terminated,
)
from easy_oww.freesound import (
    ApiUnreachableError,
    FreesoundLibrary,
    GrowBudgetExhaustedError,
    GrowOptions,
    GrowResult,
    KeyRefusedError,
    LibraryDamagedError,
    LibraryMissingError,
    LibraryReadOnlyError,
    LibraryStats,
    MissingKeyError,
    Stopped,
    budget_status,
    create_backup,
    library_exists,
    list_backups,
    prune_backups,
    read_api_key,
    restore_backup,
)
from easy_oww.freesound import grow as grow_library
from easy_oww.freesound.api import ENV_API_KEY, KEY_APPLY_URL
from easy_oww.freesound.audio import AudioOptions, fetch_audio, plan_audio, verify_audio
from easy_oww.freesound.export import (
    PRIVATE_NOTICE,
    WRITERS,
    export_library,
    formats_taking_derived,
)
from easy_oww.freesound.lock import grow_lock
from easy_oww.freesound.merge import merge_library
from easy_oww.freesound.schema import DB_NAME
from easy_oww.freesound.seed_pickle import import_seed_pickle_run, load_seed_state
from easy_oww.freesound.store import AudioFile
from easy_oww.freesound.visualize import (
    COLOR_BY,
    DEFAULT_COLOR_BY,
    DEFAULT_SIZE_BY,
    SIZE_BY,
    write_visualization,
)
from easy_oww.freesound.writable import require_writable
from easy_oww.progress import NullProgress, human_bytes
from easy_oww.transfer.fetch import Fetcher, FetchOptions

Command = TypeVar("Command", bound=Callable[..., Any])

EXAMPLES = """\b
Examples:
  export FREESOUND_API_KEY=...        # https://freesound.org/apiv2/apply/
  easy-oww freesound grow                        # 50 new samples (the default)
  easy-oww freesound grow --samples 200 --query rain --license cc0,by
  easy-oww freesound status --json
  easy-oww freesound history
  easy-oww freesound audio --sample-rate 16000   # the samples' sound, as 16 kHz WAV
  easy-oww freesound verify
  easy-oww freesound import-pickle freesound_library.pkl   # from the seed project
  easy-oww freesound export library.json
  easy-oww freesound merge teammate.jsonl             # a teammate's export or library folder
  easy-oww freesound visualize library.html
  easy-oww freesound backups list
  easy-oww freesound backups restore freesound_library_backup_500nodes_20261110_143022.db.gz

\b
The library lives in <workspace>/freesound_library (or --library FOLDER).
Stored API data is private under Freesound's API terms: keep the library to your team.
Exit codes: 0 done, 1 failed, 2 bad usage, 75 try later (budget spent, library busy),
130 Ctrl-C, 143 SIGTERM."""


def _remember_library(ctx: click.Context, param: click.Parameter,
                      value: str | None) -> str | None:
    if value is not None:
        # on the root's dict, wherever the option was given (before or after the subcommand)
        ctx.find_root().ensure_object(dict)["library"] = value
    return value


def library_option(func: Command) -> Command:
    return click.option(
        "--library", type=click.Path(file_okay=False, path_type=str), default=None,
        expose_value=False, callback=_remember_library,
        help="Library folder (default: <workspace>/freesound_library).",
    )(func)


def freesound_options(func: Command) -> Command:
    return library_option(common_options(func))


def library_folder(ctx: click.Context) -> Path:
    chosen = ctx.find_root().ensure_object(dict).get("library")
    if chosen:
        return Path(chosen).expanduser().absolute()
    return get_workspace(ctx).library_dir


def _missing(folder: Path) -> LibraryMissingError:
    """The one line every command that needs a library prints when there is none."""
    return LibraryMissingError(
        f"no Freesound library at {folder}; grow one first with `easy-oww freesound grow`",
        folder,
    )


def open_library(ctx: click.Context, *, create: bool = False,
                 write: bool = True) -> FreesoundLibrary:
    """The library of this command (--library, else the workspace's), to use in a `with`.
    Without `create`, a folder with no library is the one-line error of `_missing`. Without
    `write`, it is opened read-only, which works in a folder that cannot be written."""
    folder = library_folder(ctx)
    try:
        return FreesoundLibrary(folder, create=create and write, read_only=not write)
    except LibraryMissingError:
        raise _missing(folder) from None


def _damaged_line(exc: LibraryDamagedError) -> LibraryDamagedError:
    """The library says what is damaged and which backup is good; the CLI says how to restore
    it with its own command and flags."""
    if exc.good_backup is None or exc.path is None:
        return exc
    name = exc.good_backup
    return LibraryDamagedError(
        f"Freesound library {exc.path} is damaged ({exc.problem}); it was left untouched; "
        f"newest good backup: {name}; restore it with "
        f"`easy-oww freesound backups restore {name} --library {exc.folder}`",
        path=exc.path, problem=exc.problem, good_backup=name,
    )


class _FreesoundGroup(click.Group):
    """Every freesound command's errors about the library file in the CLI's words."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LibraryDamagedError as exc:
            raise _damaged_line(exc) from None


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """ "1 sample", "2 samples": every count freesound prints goes through here."""
    return f"{count} {noun if count == 1 else plural_form or noun + 's'}"


def _echo_err(text: str) -> None:
    click.echo(text, err=True)


def _human_bytes(size: int | None) -> str:
    """Decimal units, as the datasets half prints them; "-" for a size not recorded."""
    return "-" if size is None else human_bytes(size)


@click.group("freesound", cls=_FreesoundGroup, epilog=EXAMPLES)
@freesound_options
def freesound() -> None:
    """Grow and look after the Freesound sample library (background sounds for training)."""


# --------------------------------------------------------------------------------------- grow
def _split_licenses(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str]:
    if not value:
        return []
    return [part.strip().lower() for part in value.split(",") if part.strip()]


@freesound.command(epilog="""\b
Examples:
  easy-oww freesound grow
  easy-oww freesound grow --samples 500 --query "room tone" --query rain
  easy-oww freesound grow --license cc0 --min-duration 1 --max-duration 30 --tag field-recording
  easy-oww freesound grow --json | tail -1        # the summary line
  easy-oww freesound grow --visualize library.html   # and refresh the map at the end
  easy-oww freesound grow --api-url http://127.0.0.1:8000/apiv2 --api-key-file key.txt""")
@click.option("--samples", "-n", type=click.IntRange(min=0), default=50, show_default=True,
              help="Store exactly this many new samples (fewer only if nothing is left to "
                   "find or the daily budget runs out).")
@click.option("--query", "queries", multiple=True, metavar="TEXT",
              help="Text search for seeds; repeatable (default: ambience, room tone, rain, "
                   "traffic, crowd; falling back to everything).")
@click.option("--license", "licenses", callback=_split_licenses, metavar="LIST",
              help="Only these licenses: comma list of cc0, by, by-nc, sampling+.")
@click.option("--min-duration", type=click.FloatRange(min=0), help="Seconds, at least.")
@click.option("--max-duration", type=click.FloatRange(min=0), help="Seconds, at most.")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Required tag; repeatable.")
@click.option("--checkpoint-interval", type=click.IntRange(min=1), default=1,
              show_default=True, help="Samples per commit (1: every sample is durable at once).")
@click.option("--backup-every", type=click.IntRange(min=1), default=100, show_default=True,
              help="Back up whenever the total crosses a multiple of this.")
@click.option("--keep-backups", type=click.IntRange(min=1), default=5, show_default=True,
              help="Backups kept (newest first).")
@click.option("--expand-every", type=click.IntRange(min=1), default=12, show_default=True,
              help="Expand one sample by similarity per this many stored (smaller: denser "
                   "graph, more requests).")
@click.option("--similarity-space", type=click.Choice(["laion_clap", "freesound_classic"]),
              default=None, help="Freesound's similarity space (default: the API's).")
@click.option("--api-url", envvar="FREESOUND_API_URL", default=None, metavar="URL",
              help="API base URL (default: $FREESOUND_API_URL, then "
                   "https://freesound.org/apiv2).")
@click.option("--api-key-file", type=click.Path(dir_okay=False), default=None,
              help="Read the key from this file instead of $FREESOUND_API_KEY.")
@click.option("--per-minute", type=click.IntRange(min=1), default=60, show_default=True,
              help="Requests a minute (Freesound's limit for a standard key).")
@click.option("--daily-budget", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Requests a UTC day for this key, shared by every run and library.")
@click.option("--json", "as_json", is_flag=True,
              help='One JSON line per committed sample ({"id": 123, "edges": 7}), then a '
                   "summary line.")
@click.option("--visualize", "map_file", type=click.Path(dir_okay=False), default=None,
              metavar="FILE", help="At the end of the run, write the library's map to FILE "
                                   "(as `freesound visualize FILE` does).")
@freesound_options
@click.pass_context
def grow(ctx: click.Context, samples: int, queries: tuple[str, ...], licenses: list[str],
         min_duration: float | None, max_duration: float | None, tags: tuple[str, ...],
         checkpoint_interval: int, backup_every: int, keep_backups: int, expand_every: int,
         similarity_space: str | None, api_url: str | None, api_key_file: str | None,
         per_minute: int, daily_budget: int, as_json: bool, map_file: str | None) -> None:
    """Add new samples to the library, continuing where the last run stopped.

    Ctrl-C or SIGTERM finish the current sample, commit and exit 130 / 143. When the daily
    budget is spent the run stops, everything saved, and exits 75 saying when it comes back.
    """
    options = GrowOptions(
        samples=samples, queries=queries, licenses=licenses, min_duration=min_duration,
        max_duration=max_duration, tags=tags, checkpoint_interval=checkpoint_interval,
        backup_every=backup_every, keep_backups=keep_backups, expand_every=expand_every,
        similarity_space=similarity_space,
    )
    options.check()
    try:
        api_key = read_api_key(api_key_file)
    except MissingKeyError:
        if api_key_file:
            raise
        raise MissingKeyError(f"no Freesound API key: set {ENV_API_KEY} or pass --api-key-file "
                              f"FILE (get a key at {KEY_APPLY_URL})") from None
    folder = library_folder(ctx)
    quiet, verbose = get_flag(ctx, "quiet"), get_flag(ctx, "verbose")
    log = _echo_err if verbose else None
    display = _GrowDisplay(samples, as_json=as_json, quiet=quiet)

    def on_commit(batch: list[tuple[int, int]]) -> None:
        if as_json:
            for sound_id, edges in batch:
                sys.stdout.write(json.dumps({"id": sound_id, "edges": edges}) + "\n")
            sys.stdout.flush()

    error: GrowBudgetExhaustedError | None = None
    with display:
        try:
            result = grow_library(
                folder, api_key, options, base_url=api_url, per_minute=per_minute,
                per_day=daily_budget, on_commit=on_commit, on_progress=display.update, log=log,
                notice=display.notice,
            )
        except GrowBudgetExhaustedError as exc:  # report what is stored, then exit 75
            error, result = exc, exc.result
        except KeyRefusedError as exc:
            where = (f"the key in {api_key_file}" if api_key_file
                     else f"{ENV_API_KEY} or --api-key-file")
            raise KeyRefusedError(f"{exc}; check {where}") from None
        except ApiUnreachableError as exc:
            raise ApiUnreachableError(f"{exc} or --api-url", exc.base_url) from None
    summary = dict(result.as_dict(), summary=True, library=str(folder))
    if error is not None:
        summary["budget_resets_at"] = error.resets_at
    if as_json:
        click.echo(json.dumps(summary))
    elif not quiet or error is None:
        stopped = " (nothing left to find)" if result.stopped == Stopped.EXHAUSTED else ""
        click.echo(
            f"Stored {plural(summary['stored'], 'new sample')}{stopped} with "
            f"{plural(summary['requests'], 'request')}; the library has "
            f"{plural(summary['samples'], 'sample')} and {plural(summary['edges'], 'edge')} "
            f"({folder})."
        )
        if summary.get("budget_left") is not None:
            click.echo(f"Budget left today: {plural(summary['budget_left'], 'request')}.")
    if map_file is not None:
        _grow_map(folder, map_file, result.stopped, as_json=as_json, quiet=quiet)
    if error is not None:
        raise error
    _exit_if_stopped(ctx, result.stopped, "every committed sample is saved.")


def _grow_map(folder: Path, map_file: str, stopped: Stopped, *, as_json: bool,
              quiet: bool) -> None:
    """grow --visualize: the map of what the run left, unless Ctrl-C or SIGTERM asked the run
    to end (then at once: the map can be written later with `freesound visualize`)."""
    if stopped in (Stopped.INTERRUPTED, Stopped.TERMINATED):
        _echo_err(f"Map not refreshed (the run was stopped); write it with "
                  f"`easy-oww freesound visualize {map_file}`.")
        return
    if not library_exists(folder):  # nothing was stored (no budget, nothing found)
        return
    with FreesoundLibrary(folder, create=False) as lib:
        done = write_visualization(lib, map_file)
    line = (f"Map: {map_file} ({plural(done.nodes, 'sample')}, {done.placed} placed now, "
            f"{done.layout_seconds:.1f} s layout).")
    if as_json:  # stdout stays JSON lines
        _echo_err(line)
    elif not quiet:
        click.echo(line)


def _exit_if_stopped(ctx: click.Context, stopped: Stopped, kept: str) -> None:
    """Ctrl-C and SIGTERM end a run cleanly, then exit 130 / 143 saying what is kept."""
    if stopped == Stopped.INTERRUPTED:
        _echo_err(f"Interrupted; {kept}")
        ctx.exit(EXIT_INTERRUPTED)
    if stopped == Stopped.TERMINATED:
        _echo_err(f"Terminated; {kept}")
        ctx.exit(EXIT_TERMINATED)


class _GrowDisplay:
    """A rich progress bar on a terminal; plain lines every 10 samples otherwise."""

    def __init__(self, total: int, *, as_json: bool, quiet: bool) -> None:
        self.total = total
        self.silent = quiet  # not even retries
        self.quiet = quiet or as_json
        self.bar: Progress | None = None
        self._printed = 0
        self._started = time.monotonic()
        if not self.quiet and sys.stderr.isatty():
            self.bar = Progress(
                TextColumn("samples"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self.task = self.bar.add_task("grow", total=total, info="")

    def __enter__(self) -> _GrowDisplay:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def notice(self, message: str) -> None:
        """A retry (what failed, when the next try is): on stderr, above the bar if there is
        one; with --json too, whose stdout stays JSON."""
        if self.silent:
            return
        if self.bar is not None:
            self.bar.console.print(message, markup=False, highlight=False, soft_wrap=True)
        else:
            _echo_err(message)

    def update(self, result: GrowResult) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(self.task, completed=result.stored,
                            info=f"requests {result.requests}, budget left "
                                 f"{_dash(result.budget_left)}")
        elif result.stored - self._printed >= 10 or result.stored == self.total:
            if result.stored != self._printed:
                self._printed = result.stored
                elapsed = time.monotonic() - self._started
                _echo_err(f"  {result.stored}/{plural(self.total, 'sample')}, "
                          f"{plural(result.requests, 'request')}, "
                          f"budget left {_dash(result.budget_left)}, {elapsed:.0f} s")


# --------------------------------------------------------------------------------------- status
@freesound.command(epilog="""\b
Examples:
  easy-oww freesound status
  easy-oww freesound status --json
  easy-oww freesound status --library /data/team_library""")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@freesound_options
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Samples, edges, crawl frontier, today's budget, backups and size. Safe during grow."""
    folder = library_folder(ctx)
    exists = library_exists(folder)
    if not exists:
        # every count of an empty library, so a new field of LibraryStats is never missed
        counts: dict[str, Any] = {f.name: 0 for f in dataclasses.fields(LibraryStats)}
        counts["last_run"] = None
        fingerprint = None
    else:
        with open_library(ctx, write=False) as lib:
            counts = lib.stats().as_dict()
            fingerprint = lib.get_meta("key_fingerprint")
    doc = {
        "library": str(folder),
        "exists": exists,
        **{k: counts[k] for k in ("samples", "edges", "expanded", "frontier", "seen")},
        **budget_status(fingerprint),
        "backups": len(list_backups(folder)),
        "db_bytes": counts["db_bytes"],
        "last_run": counts["last_run"],
        "pending_edges": counts["pending_edges"],
        "deleted": counts["deleted"],
        "problems": counts["problems"],
        "runs": counts["runs"],
        "audio": counts["audio"],
        "audio_bytes": counts["audio_bytes"],
    }
    if as_json:
        click.echo(json.dumps(doc))
        return
    if not exists:
        click.echo(f"No Freesound library yet at {folder}; grow one with "
                   "`easy-oww freesound grow`.")
    click.echo(f"Library:   {folder}")
    click.echo(f"Samples:   {doc['samples']}  ({doc['expanded']} expanded, "
               f"{doc['frontier']} waiting to be expanded, {doc['deleted']} deleted upstream)")
    click.echo(f"Edges:     {doc['edges']}  ({plural(doc['pending_edges'], 'link')} waiting "
               "for samples)")
    click.echo(f"Seen:      {plural(doc['seen'], 'id')} known, not stored")
    click.echo(f"Budget:    {doc['requests_today']}/{plural(doc['daily_budget'], 'request')} "
               f"today, resets {doc['budget_resets_at']}")
    click.echo(f"Audio:     {plural(doc['audio'], 'file')}, {_human_bytes(doc['audio_bytes'])}")
    click.echo(f"Backups:   {doc['backups']}")
    click.echo(f"Size:      {_human_bytes(doc['db_bytes'])}")
    click.echo(f"Last run:  {doc['last_run'] or 'never'}  ({plural(doc['runs'], 'run')}, "
               f"{plural(doc['problems'], 'problem')} recorded)")


@freesound.command(epilog="""\b
Examples:
  easy-oww freesound history
  easy-oww freesound history --json""")
@click.option("--json", "as_json", is_flag=True, help="A JSON list, one object per run.")
@freesound_options
@click.pass_context
def history(ctx: click.Context, as_json: bool) -> None:
    """The growth table: one row per run (samples, edges, cache size, file size)."""
    folder = library_folder(ctx)
    rows: list[dict[str, Any]] = []
    if library_exists(folder):
        with open_library(ctx, write=False) as lib:
            rows = lib.history()
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo(f"No runs yet in {folder}.")
        return
    header = (f"{'Run':>4}  {'Date (UTC)':<20} {'Added':>6} {'Samples':>8} {'Edges':>8} "
              f"{'Cache':>7} {'File size':>10} {'Requests':>8}  Status")
    click.echo(header)
    for row in rows:
        cache = (row["samples"] or 0) + (row["seen"] or 0) if row["samples"] is not None else None
        click.echo(
            f"{row['run']:>4}  {row['started_at']:<20} {row['samples_added']:>6} "
            f"{_dash(row['samples']):>8} {_dash(row['edges']):>8} {_dash(cache):>7} "
            f"{_human_bytes(row['db_bytes']):>10} {row['requests']:>8}  "
            f"{row['status'] or 'running'}"
        )
    click.echo("Cache = samples stored + ids seen (metadata kept, no request needed later).")


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


@freesound.command(epilog="""\b
Examples:
  easy-oww freesound verify
  easy-oww freesound verify --deep --json""")
@click.option("--deep", is_flag=True, help="Also re-hash every audio file (sha256).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@freesound_options
@click.pass_context
def verify(ctx: click.Context, deep: bool, as_json: bool) -> None:
    """Integrity check, edges to missing samples, counts, audio files present and of the
    recorded size. Exit 1 on any problem."""
    folder = library_folder(ctx)
    with open_library(ctx, write=False) as lib:
        problems = lib.verify() + verify_audio(lib, deep=deep)
        counts = lib.stats().as_dict()
    if as_json:
        # `problems` is the list found now; the count of problems recorded by past runs
        # (skipped samples, failed previews) goes under its own name.
        doc = {"ok": not problems, **counts, "recorded_problems": counts["problems"],
               "problems": problems}
        click.echo(json.dumps(doc))
    else:
        for problem in problems:
            click.echo(f"PROBLEM: {problem}")
        click.echo(f"{'OK' if not problems else 'FAILED'}: "
                   f"{plural(counts['samples'], 'sample')}, {plural(counts['edges'], 'edge')}, "
                   f"{counts['seen']} seen, {plural(counts['audio'], 'audio file')}, integrity "
                   f"{'ok' if not problems else 'see above'} ({folder / DB_NAME})")
    if problems:
        ctx.exit(EXIT_FAILED)


# --------------------------------------------------------------------------------------- audio
@freesound.command(epilog="""\b
Examples:
  easy-oww freesound audio                         # every stored sample's HQ MP3 preview
  easy-oww freesound audio --sample-rate 16000     # 16-bit mono WAV, ready for openWakeWord
  easy-oww freesound audio --quality lq-ogg --limit 100 --jobs 8
  easy-oww freesound audio --json

\b
Files go to <library>/audio/<id>.mp3 (.ogg, or .wav with --sample-rate). Previews need no
API key and cost no API budget. Run it again after `grow` to fetch the new samples' audio;
an interrupted run resumes where it stopped.""")
@click.option("--quality", type=click.Choice(["hq-mp3", "hq-ogg", "lq-mp3", "lq-ogg"]),
              default="hq-mp3", show_default=True, help="Which of Freesound's previews.")
@click.option("--sample-rate", type=click.IntRange(8000, 48000), default=None, metavar="HZ",
              help="Convert to 16-bit mono WAV at this rate (openWakeWord: 16000); "
                   "default: keep the preview as served.")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="At most this many files this run.")
@click.option("--jobs", "-j", type=click.IntRange(1, 32), default=4, show_default=True,
              help="Files fetched at once.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON line per file and a summary line.")
@freesound_options
@click.pass_context
def audio(ctx: click.Context, quality: str, sample_rate: int | None, limit: int | None,
          jobs: int, as_json: bool) -> None:
    """Fetch the audio of every stored sample that has none yet (Freesound's previews)."""
    folder = library_folder(ctx)
    quiet, verbose = get_flag(ctx, "quiet"), get_flag(ctx, "verbose")
    options = AudioOptions(quality=quality, sample_rate=sample_rate, limit=limit, jobs=jobs)
    fetcher = Fetcher(FetchOptions(connections=1, verbose=verbose),
                      progress=_LogOnly() if verbose else None,
                      user_agent="easy-oww (freesound audio)")
    display = _AudioDisplay(as_json=as_json, quiet=quiet)
    with open_library(ctx) as lib:
        display.total = len(plan_audio(lib, options))
        with display:
            result = fetch_audio(lib, options, fetcher=fetcher, on_file=display.file_done)
    summary = dict(result.as_dict(), summary=True, library=str(folder))
    if as_json:
        click.echo(json.dumps(summary))
    elif not quiet:
        click.echo(f"Fetched {plural(result.fetched, 'audio file')} "
                   f"({_human_bytes(result.transferred)} downloaded); the library has "
                   f"{plural(result.files, 'audio file')}, {_human_bytes(result.bytes)} "
                   f"({folder / 'audio'}).")
    for sound_id, message in result.failed[:5]:
        _echo_err(f"sound {sound_id}: {message}")
    if len(result.failed) > 5:
        _echo_err(f"... and {len(result.failed) - 5} more (recorded as problems).")
    _exit_if_stopped(ctx, result.stopped,
                     "every finished file is saved, partial ones resume next time.")
    if result.failed:
        _echo_err(f"{len(result.failed)} of {plural(result.wanted, 'file')} failed; run the same "
                  "command again to retry them.")
        ctx.exit(EXIT_FAILED)


class _LogOnly(NullProgress):
    """--verbose: the fetch engine's decisions and retries on stderr, no bar per file."""

    def log(self, message: str) -> None:
        _echo_err(message)


class _AudioDisplay:
    """A rich bar of files on a terminal; a plain line every 25 files otherwise."""

    def __init__(self, *, as_json: bool, quiet: bool) -> None:
        self.as_json, self.quiet = as_json, quiet or as_json
        self.total = 0
        self.done = 0
        self.bar: Progress | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> _AudioDisplay:
        if not self.quiet and sys.stderr.isatty():
            self.bar = Progress(TextColumn("audio"), BarColumn(), MofNCompleteColumn(),
                                console=Console(stderr=True))
            self.task = self.bar.add_task("audio", total=self.total)
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def file_done(self, audio: AudioFile | None, sound_id: int, error: str | None) -> None:
        with self._lock:
            self.done += 1
            if self.as_json:
                line = ({"id": sound_id, "error": error} if audio is None else
                        {"id": sound_id, "path": audio.path, "bytes": audio.bytes})
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()
            elif self.bar is not None:
                self.bar.update(self.task, completed=self.done)
            elif not self.quiet and (self.done % 25 == 0 or self.done == self.total):
                _echo_err(f"  {self.done}/{plural(self.total, 'audio file')}")


# --------------------------------------------------------------------------------------- import
@freesound.command("import-pickle", epilog="""\b
Examples:
  easy-oww freesound import-pickle data/freesound_library/freesound_library.pkl
  easy-oww freesound import-pickle old.pkl --library /data/team_library --json

\b
The file is read without running anything it names: only plain data and networkx graphs
load, anything else refuses the whole file. Importing twice adds nothing.""")
@click.argument("pickle_file", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@freesound_options
@click.pass_context
def import_pickle(ctx: click.Context, pickle_file: str, as_json: bool) -> None:
    """Carry over the seed project's freesound_library.pkl (samples, similar edges, its
    sound cache), in one transaction."""
    folder = library_folder(ctx)
    state = load_seed_state(pickle_file)  # a refused or damaged file creates no library
    result, stats = import_seed_pickle_run(folder, pickle_file, state)
    doc = {**result.as_dict(), "library_samples": stats.samples,
           "library_edges": stats.edges, "library": str(folder)}
    if as_json:
        click.echo(json.dumps(doc))
        return
    click.echo(f"Imported {plural(result.samples, 'sample')} ({result.already} already there), "
               f"{plural(result.edges, 'similar edge')} and "
               f"{plural(result.seen, 'cached sound')} from {pickle_file}; "
               f"{result.expanded} marked expanded.")
    _echo_left_out_and_totals(result.skipped, stats, folder)


def _echo_left_out_and_totals(left_out: dict[str, int], stats: LibraryStats,
                              folder: Path) -> None:
    """The tail of an import or a merge: what was left out, and the library's new size."""
    for reason, count in sorted(left_out.items()):
        click.echo(f"  left out: {count} {reason}")
    click.echo(f"The library has {plural(stats.samples, 'sample')} and "
               f"{plural(stats.edges, 'edge')} ({folder}).")


@freesound.command(epilog="""\b
Examples:
  easy-oww freesound merge /mnt/alice/freesound_library     # another library folder
  easy-oww freesound merge team.jsonl                        # an `export --format jsonl`
  easy-oww freesound merge team.jsonl --library /data/team_library --json

\b
Merging twice adds nothing the second time; the order of merges does not change the result.
Where both hold a sample, the newer metadata wins (the later added_at).""")
@click.argument("source", metavar="SOURCE", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@freesound_options
@click.pass_context
def merge(ctx: click.Context, source: str, as_json: bool) -> None:
    """Join another library (its folder, or its JSON lines export) into this one: samples,
    edges, seen ids and expansion marks, in one transaction."""
    folder = library_folder(ctx)
    result, stats = merge_library(folder, source)
    if as_json:
        click.echo(json.dumps({**result.as_dict(), "library_samples": stats.samples,
                               "library_edges": stats.edges, "library": str(folder)}))
        return
    click.echo(f"Merged {source}: added {plural(result.samples, 'sample')} "
               f"({result.updated} updated with newer metadata), "
               f"{plural(result.edges, 'edge')}, {plural(result.seen, 'seen id')} and "
               f"{plural(result.expanded, 'expansion mark')}.")
    _echo_left_out_and_totals(result.left_out, stats, folder)
    click.echo(PRIVATE_NOTICE)


# --------------------------------------------------------------------------------------- backups
@freesound.group(invoke_without_command=True, epilog="""\b
Examples:
  easy-oww freesound backups                 # same as `backups list`
  easy-oww freesound backups create
  easy-oww freesound backups prune --keep 3
  easy-oww freesound backups restore freesound_library_backup_500nodes_20261110_143022.db.gz""")
@freesound_options
@click.pass_context
def backups(ctx: click.Context) -> None:
    """List, create, restore and prune backups (gzip-compressed SQLite snapshots)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(backups_list)


def _library_or_backups(ctx: click.Context) -> Path:
    """The folder of a command about backups: one with a library or, after the database file
    was moved aside, with backups to restore from."""
    folder = library_folder(ctx)
    if not library_exists(folder) and not list_backups(folder):
        raise _missing(folder)
    return folder


@backups.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list.")
@freesound_options
@click.pass_context
def backups_list(ctx: click.Context, as_json: bool = False) -> None:
    """Backups, newest first."""
    folder = library_folder(ctx)
    found = list_backups(folder)
    if as_json:
        click.echo(json.dumps([
            {"name": b.name, "nodes": b.nodes, "taken_at": b.taken_at.isoformat(),
             "bytes": b.size} for b in found]))
        return
    if not found:
        click.echo(f"No backups in {folder / 'backups'}.")
        return
    for info in found:
        click.echo(f"{info.name}  {info.nodes:>7} {'sample ' if info.nodes == 1 else 'samples'}  "
                   f"{_human_bytes(info.size):>9}")


@backups.command("create")
@click.option("--keep", type=click.IntRange(min=1), default=5, show_default=True,
              help="Backups kept afterwards.")
@freesound_options
@click.pass_context
def backups_create(ctx: click.Context, keep: int) -> None:
    """Take a backup now (safe while grow runs)."""
    with open_library(ctx) as lib:
        info = create_backup(lib, keep=keep)
    click.echo(f"Created {info.path} ({plural(info.nodes, 'sample')}, "
               f"{_human_bytes(info.size)}).")


@backups.command("prune")
@click.option("--keep", type=click.IntRange(min=1), default=5, show_default=True,
              help="Backups kept (newest).")
@freesound_options
@click.pass_context
def backups_prune(ctx: click.Context, keep: int) -> None:
    """Delete all but the newest backups."""
    folder = _library_or_backups(ctx)
    require_writable(folder, "backups")
    deleted = prune_backups(folder, keep)
    for info in deleted:
        click.echo(f"Deleted {info.name}")
    click.echo(f"Kept the newest {keep}; deleted {len(deleted)}.")


@backups.command("restore")
@click.argument("name")
@freesound_options
@click.pass_context
def backups_restore(ctx: click.Context, name: str) -> None:
    """Replace the library with backup NAME (checked first; the old file is kept aside)."""
    folder = _library_or_backups(ctx)
    with grow_lock(folder):
        aside = restore_backup(folder, name)
    click.echo(f"Restored {name} into {folder}.")
    if aside is not None:
        click.echo(f"The replaced database was kept as {aside}.")


@freesound.command(epilog="""\b
Examples:
  easy-oww freesound export library.json
  easy-oww freesound export library.jsonl --format jsonl      # for git and `freesound merge`
  easy-oww freesound export graph.graphml --format graphml --derived
  easy-oww freesound export graph.gexf --format gexf
  easy-oww freesound export tables/ --format csv               # tables/nodes.csv, edges.csv

\b
The same library always gives the same bytes (sorted, fixed keys): an export kept in git
changes line by line.""")
@click.argument("output", type=click.Path(path_type=str))
@click.option("--format", "fmt", type=click.Choice(list(WRITERS)),
              default="json", show_default=True,
              help="; ".join(f"{name}: {fmt.help}" for name, fmt in WRITERS.items()) + ".")
@click.option("--derived", is_flag=True,
              help=f"Add same_user / same_pack edges ({', '.join(formats_taking_derived())}).")
@freesound_options
@click.pass_context
def export(ctx: click.Context, output: str, fmt: str, derived: bool) -> None:
    """Write the library to OUTPUT (private data: keep it within your team)."""
    if derived and not WRITERS[fmt].takes_derived:
        formats = " or ".join(f"--format {name}" for name in formats_taking_derived())
        raise BadInputError(f"--derived applies only to {formats}; {fmt} has no edges")
    with open_library(ctx, write=False) as lib:
        done = export_library(lib, output, fmt, derived=derived)
    click.echo(f"Wrote {plural(done['samples'], 'sample')} and {plural(done['edges'], 'edge')} "
               f"to {output}.")
    click.echo(PRIVATE_NOTICE)


@freesound.command(epilog="""\b
Examples:
  easy-oww freesound visualize library.html
  easy-oww freesound visualize library.html --color-by tag --size-by degree
  easy-oww freesound visualize library.html --relayout       # lay every sample out afresh
  easy-oww freesound visualize library.html --max-nodes 500 --derived

\b
Positions are kept in the library: the next map places only the new samples, beside their
neighbours, and leaves the others where they were. In the page: drag to pan, scroll to zoom,
search by name, user or tag, click a sample for its details and preview.""")
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--color-by", type=click.Choice(COLOR_BY), default=DEFAULT_COLOR_BY,
              show_default=True, help="What the colours (and the legend) stand for.")
@click.option("--size-by", type=click.Choice(SIZE_BY), default=DEFAULT_SIZE_BY,
              show_default=True, help="Node size: downloads, or degree (links).")
@click.option("--relayout", is_flag=True,
              help="Lay out every sample afresh instead of keeping stored positions.")
@click.option("--max-nodes", type=click.IntRange(min=1), default=None,
              help="Draw at most this many (best connected) samples (default: all).")
@click.option("--derived", is_flag=True, help="Also draw same_user / same_pack edges.")
@freesound_options
@click.pass_context
def visualize(ctx: click.Context, output: str, color_by: str, size_by: str, relayout: bool,
              max_nodes: int | None, derived: bool) -> None:
    """Write the library's map: one HTML page, WebGL, works offline (no CDN)."""
    map_options = {"color_by": color_by, "size_by": size_by, "relayout": relayout,
                   "max_nodes": max_nodes, "derived": derived}
    try:
        lib = open_library(ctx)
    except LibraryReadOnlyError:  # draw it all the same; the positions are not kept
        lib = open_library(ctx, write=False)
    with lib:
        _write_map(lib, output, map_options)
    click.echo(PRIVATE_NOTICE)


# ---------------------------------------------------------------------------------- background
@freesound.command(epilog="""\b
Examples:
  easy-oww freesound audio --sample-rate 16000   # first: the samples' audio as 16 kHz WAV
  easy-oww freesound background                  # every license
  easy-oww freesound background --license cc0,by # leave out non-commercial sounds
  easy-oww freesound background --json

\b
Makes the dataset freesound_background: <workspace>/datasets/freesound_background/<id>.wav
(16 kHz mono 16-bit, flat, as openWakeWord's background_paths wants) and ATTRIBUTION.csv
(id, name, user, license, url, file: CC BY requires crediting the authors). Each file is
recorded in the manifest, so `download --status`, `verify` and `paths` know it. Run it again
after `grow` and `audio`: it makes only what is new and removes what --license leaves out.""")
@click.option("--license", "licenses", callback=_split_licenses, metavar="LIST",
              help="Only sounds under these licenses: comma list of cc0, by, by-nc, "
                   "sampling+ (default: all).")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="Make at most this many new files this run.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON line per file made and a summary line.")
@freesound_options
@click.pass_context
def background(ctx: click.Context, licenses: list[str], limit: int | None,
               as_json: bool) -> None:
    """Turn the library's audio into the dataset freesound_background for openWakeWord."""
    # Loaded for this command only: it needs the datasets half (catalog, manifest) as well.
    from easy_oww.datasets.engine import DatasetEngine
    from easy_oww.trainer import BackgroundOptions, make_background

    quiet = get_flag(ctx, "quiet")
    engine = DatasetEngine(workspace=get_workspace(ctx))

    done = 0

    def on_file(sound_id: int, record: dict[str, Any] | None, error: str | None) -> None:
        nonlocal done
        done += 1
        if not as_json and not quiet and done % 250 == 0:  # a long first run shows it moves
            _echo_err(f"  {plural(done, 'file')} made")
        if as_json:
            made = {} if record is None else {
                "file": record["path"].name, "path": str(record["path"]),
                "bytes": record["size"], "sha256": record["hash"].partition(":")[2],
                "license": record["license"]}
            click.echo(json.dumps({"id": sound_id, **made, "error": error}))

    stopped: BaseException | None = None
    with open_library(ctx, write=False) as lib:
        try:
            result = make_background(lib, engine, BackgroundOptions(licenses, limit),
                                     on_file=on_file)
        except (KeyboardInterrupt, Terminated) as exc:
            stopped = exc
    if stopped is not None:
        _echo_err(f"{'Terminated' if isinstance(stopped, Terminated) else 'Interrupted'}; "
                  "every finished file is recorded with its attribution; run the same command "
                  "again to make the rest.")
        ctx.exit(EXIT_TERMINATED if isinstance(stopped, Terminated) else EXIT_INTERRUPTED)
    if as_json:
        click.echo(json.dumps(dict(result.as_dict(), summary=True)))
    elif not quiet:
        click.echo(f"Made {plural(result.made, 'file')} ({result.kept} kept, {result.removed} "
                   f"removed); freesound_background has {plural(result.files, 'WAV')}, "
                   f"{_human_bytes(result.bytes)}, in {result.folder} (with ATTRIBUTION.csv).")
        if result.left_out:
            counts = ", ".join(f"{n} {name}" for name, n in sorted(result.left_out.items()))
            click.echo(f"Left out by --license {','.join(licenses)}: {counts}.")
    if not quiet and result.no_audio:
        _echo_err(f"{plural(result.no_audio, 'stored sample')} "
                  f"{'has' if result.no_audio == 1 else 'have'} no audio yet: run "
                  "`easy-oww freesound audio --sample-rate 16000`, then this again.")
    if result.waiting and not result.failed:
        _echo_err(f"{plural(result.waiting, 'file')} still to make (--limit): run the same "
                  "command again to make the rest.")
    for sound_id, message in result.failed[:5]:
        _echo_err(f"sound {sound_id}: {message}")
    if len(result.failed) > 5:
        _echo_err(f"... and {len(result.failed) - 5} more.")
    if result.failed:
        _echo_err(f"{len(result.failed)} of the files failed; freesound_background stays "
                  "partial until they are made.")
        ctx.exit(EXIT_FAILED)


def _write_map(lib: FreesoundLibrary, output: str, options: dict[str, Any]) -> None:
    """Write the map and say what was drawn and how the layout was made."""
    done = write_visualization(lib, output, **options)
    capped = (f" (the {done.nodes} best connected of {done.samples})"
              if done.nodes < done.samples else "")
    click.echo(f"Wrote {output}: {plural(done.nodes, 'sample')}, "
               f"{plural(done.edges, 'edge')}{capped}; open it in a browser (works offline).")
    if done.fresh:
        how = f"{plural(done.samples, 'sample')} laid out afresh"
    elif done.placed:
        whose = "its" if done.placed == 1 else "their"
        how = (f"{plural(done.placed, 'new sample')} placed beside {whose} neighbours, "
               f"{done.kept} kept where they were")
    else:
        where = "it was" if done.samples == 1 else "they were"
        how = f"{plural(done.samples, 'sample')} kept where {where}"
    kept = ("" if not done.placed else "; positions stored in the library" if done.saved
            else "; positions not stored (the library is read-only)")
    click.echo(f"Layout: {how} ({done.layout_seconds:.1f} s){kept}.")
