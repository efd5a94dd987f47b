"""`easy-oww doctor`: print what `easy_oww.doctor.diagnose` found."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from easy_oww.cli.common import common_options, get_flag, get_workspace
from easy_oww.datasets.engine import DatasetEngine
from easy_oww.datasets.mirror import (
    ENV_MIRROR,
    MirrorSpecError,
    chosen_mirrors,
    served_from_mirrors,
)
from easy_oww.doctor import DoctorReport, SourceCheck, diagnose
from easy_oww.errors import EXIT_FAILED
from easy_oww.progress import human_bytes

CATALOG_HELP = "Also read this catalog file (TOML), as `download --catalog` does."


def _yes_no(value: bool | None, yes: str = "yes", no: str = "no") -> str:
    return "?" if value is None else (yes if value else no)


def _hash_cell(check: SourceCheck) -> str:
    if check.hash is None:
        return "[yellow]none known" if check.reachable else "-"
    if check.hash_agrees is None:
        return f"{check.hash.partition(':')[0]} (server states none)"
    verdict = "[green]agrees" if check.hash_agrees else "[red]differs"
    return f"{check.hash.partition(':')[0]} {verdict}"


def _print(report: DoctorReport, console: Console) -> None:
    table = Table(title="Sources")
    for column in ("Dataset", "File", "Size", "Hash", "Range", "Served by", "Result"):
        table.add_column(column, overflow="fold")
    for check in report.sources:
        name = check.path + (f" (+{check.files - 1} more)" if check.files > 1 else "")
        result = "[green]ok" if check.ok else f"[red]{check.problem}"
        table.add_row(check.dataset, name, human_bytes(check.size), _hash_cell(check),
                      _yes_no(check.ranges, "honoured", "[yellow]ignored"),
                      check.served_by or "-", result)
    console.print(table)
    for check in report.revisions:  # the Hub's: pinned or following a branch
        console.print(check.line, style="red" if check.files_answer is False else None,
                      highlight=False, markup=False)
    for host, line in report.unreachable.items():
        console.print(f"[red]{host}: {line}", highlight=False)
    for line in report.listing_errors.values():
        console.print(f"[red]{line}", highlight=False)
    for line in report.fallbacks.values():
        console.print(line, style="yellow", highlight=False, markup=False)
    ws = report.workspace
    if ws is not None:
        need = "?" if ws.needed_bytes is None else human_bytes(ws.needed_bytes)
        limit = "" if ws.max_file_bytes is None else ", files up to 4 GiB"
        console.print(f"Workspace {ws.root}: {ws.filesystem} on {ws.mountpoint}{limit}; "
                      f"{human_bytes(ws.free_bytes)} free, {need} still to download",
                      highlight=False)
    token = "set" if report.hf_token else "not set (public datasets need none)"
    console.print(f"HF_TOKEN: {token}", highlight=False)
    if report.freesound is not None:
        fs = report.freesound
        state = (f"key accepted by {fs.api_url}; {fs.budget_left} requests left today"
                 if fs.ok else fs.problem)
        console.print(f"Freesound: {state}", highlight=False)
    blocking = report.blocking
    if blocking:
        console.print(f"[red]{len(blocking)} problem{'s' if len(blocking) != 1 else ''} would "
                      "stop or spoil a download.", highlight=False)
    else:
        console.print("[green]Nothing stands in the way of `easy-oww download`.")


@click.command(epilog="""\b
Examples:
  easy-oww doctor                     # what `download` would fetch
  easy-oww doctor --all               # every dataset, FSD50K too
  easy-oww doctor --dataset mit_rir --json
  easy-oww doctor --freesound         # also try the Freesound key (1 request)""")
@click.option("--all", "all_", is_flag=True, help="Every dataset, the optional ones too.")
@click.option("--dataset", "keys", multiple=True, metavar="KEY",
              help="Only this dataset (repeatable).")
@click.option("--catalog", type=click.Path(dir_okay=False), default=None, help=CATALOG_HELP)
@click.option("--freesound", is_flag=True,
              help="Also send one request with the Freesound key (counts against its budget).")
@click.option("--api-url", default=None, metavar="URL",
              help="Freesound API base URL (default: $FREESOUND_API_URL, then freesound.org).")
@click.option("--api-key-file", type=click.Path(dir_okay=False), default=None,
              help="Read the Freesound key from this file instead of $FREESOUND_API_KEY.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@common_options
@click.pass_context
def doctor(ctx: click.Context, all_: bool, keys: tuple[str, ...], catalog: str | None,
           freesound: bool, api_url: str | None, api_key_file: str | None,
           as_json: bool) -> None:
    """Check, without downloading, that every source answers as the catalog expects, that
    the workspace can hold what is left, and that the keys are there; exit 1 when something
    would stop a download."""
    engine = DatasetEngine(workspace=get_workspace(ctx), catalog_file=catalog)
    datasets = engine.catalog.select(all_=all_, keys=keys)
    err = Console(stderr=True)
    quiet = as_json or get_flag(ctx, "quiet") or not sys.stderr.isatty()
    report = diagnose(engine, datasets, freesound=freesound, freesound_api_url=api_url,
                      key_file=api_key_file,
                      on_check=None if quiet else (lambda what: err.print(
                          f"asking {what}", style="dim", highlight=False)))
    mirrors = _mirrors(engine, [d.key for d in datasets])
    if as_json:
        click.echo(json.dumps(report.to_json() | {"mirrors": mirrors}, indent=1))
    else:
        console = Console(width=None if sys.stdout.isatty() else 200)
        _print(report, console)
        _print_mirrors(mirrors, console)
    if report.blocking or mirrors["problem"]:
        sys.exit(EXIT_FAILED)


def _mirrors(engine: DatasetEngine, keys: list[str]) -> dict:
    """The mirrors EASY_OWW_MIRROR names (or why it is wrong) and which served what."""
    try:
        configured, problem = [m.label for m in chosen_mirrors(())], None
    except MirrorSpecError as exc:
        configured, problem = [], f"{ENV_MIRROR}: {exc}"
    served = {key: {mirror: {"files": files, "bytes": size}
                    for mirror, (files, size) in by_mirror.items()}
              for key, by_mirror in served_from_mirrors(engine.cache.load(), keys).items()}
    return {"configured": configured, "problem": problem, "served": served}


def _print_mirrors(mirrors: dict, console: Console) -> None:
    if mirrors["problem"]:
        console.print(f"[red]{mirrors['problem']}", highlight=False)
    elif mirrors["configured"]:
        console.print(f"Mirrors ({ENV_MIRROR}), tried before the origin: "
                      + ", ".join(mirrors["configured"]), highlight=False)
    for key, by_mirror in mirrors["served"].items():
        for mirror, done in by_mirror.items():
            console.print(f"{key}: {done['files']} file(s) ({human_bytes(done['bytes'])}) "
                          f"came from mirror {mirror}", highlight=False)
