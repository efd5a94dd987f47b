"""`easy-oww init`, `download`, `verify`: parsing and printing over `DatasetManager`."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from easy_oww.cli.common import common_options, get_flag, get_workspace
from easy_oww.datasets.manager import DatasetManager
from easy_oww.datasets.mirror import chosen_mirrors, served_from_mirrors
from easy_oww.datasets.tidy import STALE_PART_DAYS, named_parts, remove_dataset
from easy_oww.datasets.tidy import clean as clean_workspace
from easy_oww.datasets.unpacking import UnpackOptions
from easy_oww.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated
from easy_oww.progress import NullProgress, PlainProgress, RichProgress, human_bytes
from easy_oww.transfer.fetch import FetchOptions
from easy_oww.workspace import drive_info, remember_workspace

CATALOG_HELP = ("Extra catalog (TOML) whose datasets win over the built-in ones and "
                "<workspace>/datasets.toml.")


def _out() -> Console:
    return Console(soft_wrap=True)


def _on_terminal() -> bool:
    """Tables for a person at a terminal; into a pipe or file, rich would wrap them at 80
    columns and cut paths, so tab-separated lines with whole paths go there instead."""
    return sys.stdout.isatty()


@click.command(epilog="""\b
Examples:
  easy-oww init
  easy-oww init --workspace /media/usb/easy-oww
""")
@common_options
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the workspace, remember it as the default, and show the drive it is on."""
    workspace = get_workspace(ctx)
    workspace.create()
    remembered = remember_workspace(workspace.root)
    drive = drive_info(workspace.root)
    out = _out()
    out.print(f"Workspace: {workspace.root}", highlight=False)
    out.print(f"  datasets/  .cache/  freesound_library/ created; remembered in {remembered}",
              highlight=False)
    out.print(f"  Drive: {drive.mountpoint} ({drive.fstype}), {human_bytes(drive.free_bytes)} free "
              f"of {human_bytes(drive.total_bytes)}", highlight=False)
    if drive.max_file_bytes is not None:
        out.print(f"  Warning: {drive.fstype} holds files up to 4 GiB; the 17.3 GB ACAV100M "
                  "training file cannot go here. Use exFAT, NTFS, APFS or ext4.",
                  style="yellow", highlight=False)


def _manager(ctx: click.Context, catalog: str | None, connections: int = 4, jobs: int = 3,
             retries: int = 6, progress: NullProgress | None = None) -> DatasetManager:
    options = FetchOptions(connections=connections, attempts=retries)
    return DatasetManager(workspace=get_workspace(ctx), catalog_file=catalog, options=options,
                          jobs=jobs, progress=progress)


def _note_damage(manager: DatasetManager) -> None:
    if manager.cache.damaged:
        click.echo(f"Note: the manifest was damaged; it was set aside as "
                   f"{manager.cache.damaged}. `easy-oww download` re-checks the files on disk "
                   "and records them again without downloading them.", err=True)


def _print_status(manager: DatasetManager, as_json: bool, keys: list[str]) -> None:
    rows = manager.status(keys or None)
    _note_damage(manager)
    mirrored = served_from_mirrors(manager.cache.load(), [row.key for row in rows])
    if as_json:
        out = []
        for row in rows:
            data = row.to_json()
            if row.key in mirrored:  # only then: the documented rows stay as they were
                data["mirrors"] = {mirror: {"files": files, "bytes": size}
                                   for mirror, (files, size) in mirrored[row.key].items()}
            out.append(data)
        click.echo(json.dumps(out, indent=1))
        return
    lines = [f"{key}: {files} file(s) ({human_bytes(size)}) from mirror {mirror}"
             for key, by_mirror in mirrored.items() for mirror, (files, size) in by_mirror.items()]
    if not _on_terminal():
        for row in rows:
            click.echo("\t".join(manager.status_cells(row, relative=False)))
        for line in lines:  # on stderr: stdout stays one tab-separated row per dataset
            click.echo(f"Note: {line}", err=True)
        return
    manager.show_status(_out(), rows=rows)
    for line in lines:
        click.echo(line)


@click.command(epilog="""\b
Examples:
  easy-oww download                      # critical + recommended (same as --required-only)
  easy-oww download --all                # adds the optional FSD50K
  easy-oww download --dataset mit_rir --dataset acav100m_val
  easy-oww download --recipe microwakeword   # what microWakeWord's notebook uses
  easy-oww download --status
  easy-oww download --status --json
  easy-oww download --workspace /media/usb/easy-oww --connections 8 --jobs 2
  easy-oww download --mirror http://192.168.1.20:8642   # a teammate's `mirror serve` first
  easy-oww download --mirror /media/usb/easy-oww        # another workspace's folder first
  easy-oww download --mirror s3://team-bucket/easy-oww  # a bucket `mirror push` filled

\b
Interrupted? Run the same command again: parts are kept and resumed.
Exit codes: 0 done, 1 a file failed (the rest finished), 2 bad usage or catalog,
75 another process holds a file's lock, 130 Ctrl-C, 143 SIGTERM.""")
@click.option("--required-only", "required_only", is_flag=True,
              help="Critical and recommended datasets (the default).")
@click.option("--all", "all_", is_flag=True, help="Also the optional datasets (FSD50K).")
@click.option("--dataset", "keys", multiple=True, metavar="KEY",
              help="Exactly these datasets (repeatable).")
@click.option("--recipe", default=None, metavar="NAME",
              help="The datasets one trainer's recipe uses (`easy-oww recipes` lists them).")
@click.option("--status", "status", is_flag=True, help="Show what is downloaded; fetch nothing.")
@click.option("--json", "as_json", is_flag=True, help="With --status: print JSON.")
@click.option("--connections", type=click.IntRange(1, 32), default=4, show_default=True,
              help="Connections per large file.")
@click.option("--jobs", type=click.IntRange(1, 16), default=3, show_default=True,
              help="Files downloaded at once.")
@click.option("--retries", type=click.IntRange(1, 100), default=6, show_default=True,
              help="Attempts without progress before a file is given up.")
@click.option("--catalog", type=click.Path(dir_okay=False), default=None, help=CATALOG_HELP)
@click.option("--fsd50k-split", type=click.Choice(["dev", "eval", "both"]), default="both",
              show_default=True, help="Which FSD50K clips to download and unpack.")
@click.option("--sample-rate", type=click.IntRange(8000, 48000), default=None,
              help="Resample unpacked audio to this rate, mono 16-bit (16000 saves about "
              "2.76x disk on FSD50K).")
@click.option("--keep-archives", is_flag=True,
              help="Keep the downloaded archives after a verified extraction.")
@click.option("--lock-timeout", type=click.FloatRange(0), default=3600, show_default=True,
              help="Seconds to wait for another easy-oww process downloading the same file.")
@click.option("--force", is_flag=True, help="Start even if the drive looks too full.")
@click.option("--mirror", "mirror_specs", multiple=True, metavar="URL",
              help="Try this mirror before the origin: the address `easy-oww mirror serve` "
              "prints, file:///path, another workspace's folder or s3://BUCKET/PREFIX "
              "(repeatable, in order; "
              "default: $EASY_OWW_MIRROR). Only files with a known hash; the hash decides.")
@common_options
@click.pass_context
def download(ctx: click.Context, required_only: bool, all_: bool, keys: tuple[str, ...],
             recipe: str | None, status: bool, as_json: bool, connections: int, jobs: int,
             retries: int, fsd50k_split: str, sample_rate: int | None, keep_archives: bool,
             lock_timeout: float, catalog: str | None, force: bool,
             mirror_specs: tuple[str, ...]) -> None:
    """Download the training datasets: resumable, hash-checked, several at once."""
    if sum([required_only, all_, bool(keys), recipe is not None]) > 1:
        raise click.UsageError("choose one of --required-only, --all, --dataset and --recipe")
    if as_json and not status:
        raise click.UsageError("--json goes with --status")
    quiet, verbose = get_flag(ctx, "quiet"), get_flag(ctx, "verbose")
    if status:
        manager = _manager(ctx, catalog)
        if recipe is not None:
            keys = manager.catalog.recipe(recipe).datasets
        _print_status(manager, as_json, list(keys))
        return
    mirrors = chosen_mirrors(mirror_specs)  # a bad one: one line, exit 2, before any work
    manager = _manager(ctx, catalog, connections, jobs, retries)
    manager.mirrors = mirrors
    chosen_recipe = manager.catalog.recipe(recipe) if recipe is not None else None
    if chosen_recipe is not None:
        keys = chosen_recipe.datasets
    manager.options.lock_timeout = lock_timeout
    manager.options.verbose = verbose
    manager.unpack_options = UnpackOptions(
        splits=None if fsd50k_split == "both" else {"fsd50k": fsd50k_split},
        sample_rate=sample_rate, keep_archives=keep_archives)
    chosen = manager.catalog.select(all_=all_, keys=keys)
    if quiet:
        progress: NullProgress = NullProgress()
    elif sys.stderr.isatty():
        progress = RichProgress()
    else:
        progress = PlainProgress(interval=2.0 if verbose else 10.0)
    manager.progress = progress
    names = ", ".join(d.key for d in chosen)
    if not quiet:
        progress.log(f"Downloading {names} into {manager.datasets_dir}")
        if mirrors:
            progress.log("Mirrors first: " + ", ".join(m.label for m in mirrors))
    try:
        with progress:
            report = manager.download(chosen, force=force)
    except (KeyboardInterrupt, Terminated) as exc:
        code = EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
        click.echo("Stopped. Partial downloads are kept; run the same command again to "
                   "resume.", err=True)
        sys.exit(code)
    _note_damage(manager)
    fetched = [o for o in report.outcomes if o.ok and not o.skipped]
    for message in report.errors:
        click.echo(f"Error: {message}", err=True)
    for line in report.made_here.values() if not quiet else ():
        click.echo(f"Note: {line}", err=True)
    if not quiet or not report.ok:
        rows = {row.key: row for row in manager.status([d.key for d in chosen])}
        summary = ", ".join(f"{key} {row.status}" for key, row in rows.items())
        moved = sum(o.transferred for o in report.outcomes)
        click.echo(f"{len(fetched)} file(s) downloaded ({human_bytes(moved)}); {summary}.")
    if not report.ok:
        sys.exit(report.exit_code)
    if chosen_recipe is not None and chosen_recipe.then and not quiet:
        click.echo(f"Next: `{chosen_recipe.then}` hands these folders to {chosen_recipe.name}.")


@click.command(epilog="""\b
Examples:
  easy-oww verify                 # every dataset in the manifest
  easy-oww verify acav100m_val mit_rir
  easy-oww verify --deep          # also parse every .npy header and decode every WAV
  easy-oww verify --json""")
@click.argument("keys", nargs=-1, metavar="[KEY]...")
@click.option("--deep", is_flag=True, help="Also check formats: .npy headers, decode WAVs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON rows.")
@click.option("--catalog", type=click.Path(dir_okay=False), default=None, help=CATALOG_HELP)
@common_options
@click.pass_context
def verify(ctx: click.Context, keys: tuple[str, ...], deep: bool, as_json: bool,
           catalog: str | None) -> None:
    """Re-hash every downloaded file against the manifest; exit 1 on any problem."""
    manager = _manager(ctx, catalog)
    rows = manager.verify(list(keys) or None, deep=deep)
    _note_damage(manager)
    bad = [r for r in rows if not r["ok"]]
    if as_json:
        click.echo(json.dumps(rows, indent=1))
    elif not rows:
        click.echo("Nothing downloaded yet: run `easy-oww download`.")
    elif not _on_terminal():
        for row in rows:
            click.echo("\t".join([_verify_name(manager, row), row["path"],
                                  human_bytes(row["size"]), row["problem"] or "ok"]))
        click.echo(f"{len(rows) - len(bad)} ok, {len(bad)} failed.")
    else:
        table = Table(title=f"Verify {manager.datasets_dir}")
        for column in ("Dataset", "File", "Size", "Result"):
            table.add_column(column)
        for row in rows:
            result = "[green]ok" if row["ok"] else f"[red]{row['problem']}"
            table.add_row(_verify_name(manager, row), row["path"], human_bytes(row["size"]),
                          result)
        _out().print(table)
        click.echo(f"{len(rows) - len(bad)} ok, {len(bad)} failed.")
    if bad:
        sys.exit(EXIT_FAILED)


def _verify_name(manager: DatasetManager, row: dict) -> str:
    if row["dataset"] in manager.catalog.datasets:
        return row["dataset"]
    # Fetched with another catalog: say which.
    return f"{row['dataset']} ({row['catalog'] or 'not in the loaded catalogs'})"


@click.command(epilog="""\b
Examples:
  easy-oww paths
  easy-oww paths --json      # {"acav100m_val": "/abs/.../validation_set_features.npy", ...}""")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.option("--catalog", type=click.Path(dir_okay=False), default=None, help=CATALOG_HELP)
@common_options
@click.pass_context
def paths(ctx: click.Context, as_json: bool, catalog: str | None) -> None:
    """Where each downloaded (cached) dataset lives, for training scripts."""
    manager = _manager(ctx, catalog)
    rows = {key: str(path) for key, path in manager.recorded_paths().items()}
    _note_damage(manager)
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo("Nothing downloaded yet: run `easy-oww download`.")
    for key, path in rows.items():
        click.echo(f"{key}\t{path}")


@click.command(epilog=f"""\b
Examples:
  easy-oww clean --dry-run   # list what would go (and the partial downloads it keeps)
  easy-oww clean
  easy-oww clean --partial datasets/my_noise/big.wav.part   # this one too

\b
A partial download no loaded catalog wants is kept while its resume record says it is
someone's progress (another --catalog's download), until it is untouched for
{STALE_PART_DAYS} days; --partial deletes a kept one now.""")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option("--partial", "partials", multiple=True, metavar="PATH",
              help="Also delete this partial download (the .part file or the file it "
              "becomes), kept or not; repeatable.")
@click.option("--catalog", type=click.Path(dir_okay=False), default=None, help=CATALOG_HELP)
@common_options
@click.pass_context
def clean(ctx: click.Context, dry_run: bool, partials: tuple[str, ...],
          catalog: str | None) -> None:
    """Delete partial downloads nothing wants, orphan temp folders and extracted archives."""
    manager = _manager(ctx, catalog)
    removals = clean_workspace(manager, dry_run=dry_run,
                               partials=named_parts(manager, partials))
    _note_damage(manager)
    for item in removals:
        verb = ("would keep" if dry_run else "kept") if item.kept else (
            "would delete" if dry_run else "deleted")
        click.echo(f"{verb} {item.path} ({human_bytes(item.bytes)}): {item.reason}")
    total = sum(item.bytes for item in removals if not item.kept)
    click.echo(f"{'Would free' if dry_run else 'Freed'} {human_bytes(total)}.")


@click.command(epilog="""\b
Examples:
  easy-oww remove fsd50k
  easy-oww remove fsd50k --yes   # no question (scripts)""")
@click.argument("key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--catalog", type=click.Path(dir_okay=False), default=None, help=CATALOG_HELP)
@common_options
@click.pass_context
def remove(ctx: click.Context, key: str, yes: bool, catalog: str | None) -> None:
    """Delete a dataset's files and its manifest entry."""
    manager = _manager(ctx, catalog)
    manager.catalog.get(key)  # unknown key: exit 2 before asking anything
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(f"removing {key} deletes its files; pass --yes to confirm")
        click.confirm(f"Delete every file of {key} under {manager.datasets_dir}?", abort=True)
    recorded = manager.cache.entry(key) is not None
    _note_damage(manager)
    outcome = remove_dataset(manager, key)
    removed = [r for r in outcome if not r.kept]
    for item in outcome:
        if item.kept:
            click.echo(f"kept {item.path} ({human_bytes(item.bytes)}): {item.reason}")
    if not removed and not recorded:
        click.echo(f"Nothing to remove: {key} was never downloaded (no files of it in "
                   f"{manager.datasets_dir}, no manifest entry).")
        return
    freed = human_bytes(sum(r.bytes for r in removed))
    click.echo(f"Removed {key}: {len(removed)} file(s), {freed}.")



@click.command(epilog="""\b
Examples:
  easy-oww recipes
  easy-oww recipes --json
  easy-oww download --recipe openwakeword

\b
A recipe is the set of datasets one trainer's own set-up downloads; a catalog file can add
its own under [recipes.<name>] (see docs/datasets.md).""")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--catalog", type=click.Path(dir_okay=False), default=None, help=CATALOG_HELP)
@common_options
@click.pass_context
def recipes(ctx: click.Context, as_json: bool, catalog: str | None) -> None:
    """List the trainers' recipes: their datasets, sizes and what is already cached."""
    manager = _manager(ctx, catalog)
    rows = {row.key: row for row in manager.status()}
    listed = []
    for recipe in manager.catalog.recipes.values():
        items = []
        for key in recipe.datasets:
            row = rows[key]
            exact = row.size_bytes is not None
            size = row.size_bytes if exact else manager.catalog.get(key).approx_size
            left = 0 if row.status == "cached" else max((size or 0) - row.done_bytes, 0)
            items.append({"key": key, "status": row.status, "size_bytes": size,
                          "size_exact": exact, "left_bytes": left, "path": row.path})
        listed.append({"key": recipe.key, "name": recipe.name,
                       "description": recipe.description, "homepage": recipe.homepage,
                       "then": recipe.then, "datasets": items,
                       "size_bytes": sum(i["size_bytes"] or 0 for i in items),
                       "cached": sum(i["status"] == "cached" for i in items),
                       "left_bytes": sum(i["left_bytes"] for i in items)})
    if as_json:
        click.echo(json.dumps(listed, indent=1))
        return
    if not listed:
        click.echo("No recipes in the loaded catalogs.")
        return
    width = max(len(i["key"]) for r in listed for i in r["datasets"])
    for recipe_row in listed:
        approx = "" if all(i["size_exact"] for i in recipe_row["datasets"]) else "about "
        click.echo(f"{recipe_row['key']}: {recipe_row['description'] or recipe_row['name']}")
        click.echo(f"  {approx}{human_bytes(recipe_row['size_bytes'])} in "
                   f"{len(recipe_row['datasets'])} datasets; {recipe_row['cached']} cached, "
                   f"{human_bytes(recipe_row['left_bytes'])} left to fetch")
        for item in recipe_row["datasets"]:
            size = human_bytes(item["size_bytes"])
            size = size if item["size_exact"] else f"~{size}"
            click.echo(f"    {item['key']:<{width}}  {size:>10}  {item['status']}")
        click.echo(f"  download: easy-oww download --recipe {recipe_row['key']}"
                   + (f"; then: {recipe_row['then']}" if recipe_row["then"] else ""))
        click.echo("")
