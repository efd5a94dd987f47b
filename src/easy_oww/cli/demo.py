"""`easy-oww demo`: the whole tool, offline, in a temporary workspace (easy_oww.demo)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from easy_oww.cli.common import get_flag, output_options, workspace_option
from easy_oww.demo.tour import Tour, prepare_workspace, remove_workspace, run_tour
from easy_oww.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated


def _say(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()  # before the next command's output, which goes to the same place


def _demo_workspace(func: Callable[..., Any]) -> Callable[..., Any]:
    return workspace_option(func, help_text="Run in this folder and keep it: new, empty or an "
                            "earlier demo's (default: a temporary folder).")


@click.command(epilog="""\b
Examples:
  easy-oww demo                          # in a temporary folder, removed at the end
  easy-oww demo --keep                   # keep it, to look around afterwards
  easy-oww demo --workspace ~/oww-demo   # in this folder (new, empty or an earlier demo's,
                                         # whose files are then replaced)

\b
Nothing comes from the internet and no key is needed: the demo makes small datasets of the
real shapes, serves them and a Freesound-API stand-in on 127.0.0.1, and runs download (with
one interruption and the resume), verify, download --status, freesound grow, audio,
visualize and background, and oww-config, saying what each shows and where the files are.
Ctrl-C stops it (exit 130) and removes the temporary workspace.""")
@click.option("--keep", is_flag=True,
              help="Keep the temporary workspace at the end and say where it is.")
@_demo_workspace
@output_options
@click.pass_context
def demo(ctx: click.Context, keep: bool) -> None:
    """Run the whole tool offline on small generated data: no download, no key."""
    chosen = ctx.find_root().ensure_object(dict).get("workspace")
    root, temporary, again = prepare_workspace(Path(chosen) if chosen is not None else None)
    # --verbose / --quiet go to every command the demo runs (and show in the lines it prints).
    flags = tuple(f"--{name}" for name in ("verbose", "quiet") if get_flag(ctx, name))
    tour = Tour(root, _say, flags=flags)
    try:
        _say(f"easy-oww demo: the whole tool on this machine, on small generated data. "
             f"Workspace: {root}" + (" (temporary)" if temporary else ""))
        if again:
            _say("An earlier demo run's files there were removed: starting over.")
        run_tour(tour, temporary, keep)
    except (KeyboardInterrupt, Terminated) as exc:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the cleanup
            signal.signal(sig, signal.SIG_IGN)
        tour.stop_child()
        what = "Terminated" if isinstance(exc, Terminated) else "Interrupted"
        if temporary:
            remove_workspace(root)
            click.echo(f"{what}: the demo stopped and removed its workspace {root}.", err=True)
        else:
            click.echo(f"{what}: the demo stopped; its workspace {root} is kept (run the "
                       "same command again to start over there).", err=True)
        sys.exit(EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED)
    except BaseException:
        tour.stop_child()
        click.echo(f"The demo's workspace is kept for a look: {root}", err=True)
        raise
    if temporary and not keep:
        remove_workspace(root)
    elif temporary:
        _say(f"\nKept: {root} (delete it when you are done).")
