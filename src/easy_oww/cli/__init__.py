"""The `easy-oww` command: a thin skin over the library. Parsing and printing only."""

from __future__ import annotations

import os
import signal
import sys
from importlib import import_module

import click

from easy_oww import __version__
from easy_oww.cli.common import common_options
from easy_oww.errors import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EasyOwwError,
    Terminated,
)
from easy_oww.workspace import config_file


class LazyGroup(click.Group):
    """A group whose commands are imported on first use (the pattern click documents as
    `LazyGroup`): each command module imports what it needs at its top, and `easy-oww
    --version`, `--help` or a `download` run loads only what it uses. `--help` lists the
    commands from their summaries here (tests/test_cli_lazy.py checks each against the
    command's own help), so listing them imports none."""

    def __init__(self, *args: object, lazy_commands: dict[str, tuple[str, str]],
                 **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy_commands = lazy_commands  # name -> ("module:attribute", summary)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            module, _, attribute = self.lazy_commands[cmd_name][0].partition(":")
            command = getattr(import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{module}:{attribute} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        rows = []
        for name in names:
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
            else:
                stand_in = click.Command(name, help=self.lazy_commands[name][1])
                rows.append((name, stand_in.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


_COMMANDS = {
    "clean": ("easy_oww.cli.datasets:clean", "Delete partial downloads nothing wants, orphan "
              "temp folders and extracted archives."),
    "demo": ("easy_oww.cli.demo:demo", "Run the whole tool offline on small generated data: "
             "no download, no key."),
    "doctor": ("easy_oww.cli.doctor:doctor", "Check, without downloading, that every source "
               "answers as the catalog expects, that the workspace can hold what is left, and "
               "that the keys are there; exit 1 when something would stop a download."),
    "download": ("easy_oww.cli.datasets:download", "Download the training datasets: "
                 "resumable, hash-checked, several at once."),
    "freesound": ("easy_oww.cli.freesound:freesound", "Grow and look after the Freesound "
                  "sample library (background sounds for training)."),
    "mww-config": ("easy_oww.cli.trainer:mww_config", "Write the features microWakeWord's "
                   "trainer reads, from what is downloaded."),
    "mirror": ("easy_oww.cli.mirror:mirror", "Share this workspace's verified datasets with "
               "other machines (a read-only HTTP server, or an S3 bucket)."),
    "oww-config": ("easy_oww.cli.trainer:oww_config", "Write the paths openWakeWord's "
                   "train.py reads, from what is downloaded."),
    "init": ("easy_oww.cli.datasets:init", "Create the workspace, remember it as the default, "
             "and show the drive it is on."),
    "paths": ("easy_oww.cli.datasets:paths", "Where each downloaded (cached) dataset lives, "
              "for training scripts."),
    "recipes": ("easy_oww.cli.datasets:recipes", "List the trainers' recipes: their datasets, "
                "sizes and what is already cached."),
    "remove": ("easy_oww.cli.datasets:remove", "Delete a dataset's files and its manifest "
               "entry."),
    "verify": ("easy_oww.cli.datasets:verify", "Re-hash every downloaded file against the "
               "manifest; exit 1 on any problem."),
}


@click.group(
    cls=LazyGroup,
    lazy_commands=_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=f"""\b
Examples:
  easy-oww init --workspace /media/usb/easy-oww
  easy-oww doctor                   # first: can everything be fetched from here?
  easy-oww download                 # critical + recommended datasets
  easy-oww download --status
  easy-oww verify
  easy-oww freesound grow --samples 50
  easy-oww mirror serve             # share what is downloaded with other machines

\b
The workspace chosen by `init` is remembered in {config_file()}.
Exit codes: 0 done, 1 failed, 2 bad usage or input, 75 try again later,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM).""",
)
@click.version_option(__version__, prog_name="easy-oww")
@common_options
def cli() -> None:
    """Download openWakeWord's training datasets and grow a Freesound sample library."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _flat_memory() -> None:
    """glibc gives each thread its own arena, where the download buffers (up to 512 KiB a
    connection) freed by one thread are not reused by another, so peak memory creeps up
    with connections and time. Two arenas keep it flat (B4) without making every buffer a
    fresh mmap (which costs a page fault per 4 KiB: 30 % more CPU in B1)."""
    if sys.platform != "linux":
        return
    import ctypes  # Linux only, and only for the one call below
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc (musl): nothing to tune


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps our exceptions to one-line messages and documented exit codes."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    _flat_memory()
    try:
        code = cli.main(args=argv, prog_name="easy-oww", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except EasyOwwError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:  # the disk or the OS said no: say what and where, no traceback
        where = f" ({exc.filename})" if exc.filename else ""
        click.echo(f"Error: {exc.strerror or exc}{where}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Terminated:
        click.echo("Terminated.", err=True)
        sys.exit(EXIT_TERMINATED)
    except Exception as exc:  # a bug, not bad input: one line; the traceback on request
        if os.environ.get("EASY_OWW_TRACEBACK"):
            raise
        click.echo(f"Error: unexpected {type(exc).__name__}: {exc}. This is a bug in "
                   "easy-oww: run again with EASY_OWW_TRACEBACK=1 and report the traceback; "
                   "what was downloaded or stored is kept.", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
