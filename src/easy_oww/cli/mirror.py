"""`easy-oww mirror serve`: share this workspace's verified datasets over HTTP."""

from __future__ import annotations

import logging
import socket
import sys

import click

from easy_oww.cli.common import common_options, get_flag, get_workspace
from easy_oww.datasets.cache import CacheManager
from easy_oww.datasets.mirror import WorkspaceShelf
from easy_oww.progress import human_bytes
from easy_oww.transfer.serve import bind, build_app, serve_forever

DEFAULT_PORT = 8642
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.group(epilog="""\b
Examples:
  easy-oww mirror serve                       # this machine only: http://127.0.0.1:8642
  easy-oww mirror serve --host 0.0.0.0        # everyone on the network (prints a warning)
  easy-oww download --mirror http://192.168.1.20:8642   # on the other machine""")
@common_options
def mirror() -> None:
    """Share this workspace's verified datasets with other machines (a read-only HTTP
    server)."""


@mirror.command(epilog="""\b
Examples:
  easy-oww mirror serve
  easy-oww mirror serve --port 0              # any free port; the address is printed
  easy-oww mirror serve --host 0.0.0.0 --workspace /media/usb/easy-oww

\b
Serves GET/HEAD /datasets/<path> (Range, If-Range; the ETag is the file's hash) for every
file the manifest records as verified, at its recorded size, and /index.json listing them.
Nothing else: no partial download, no file that failed a check, no link out of the tree.
Ctrl-C stops it (exit 130).""")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 shares with every machine on the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port to listen on (0: any free port).")
@common_options
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve this workspace's verified dataset files read-only over HTTP."""
    workspace = get_workspace(ctx)
    shelf = WorkspaceShelf(CacheManager(workspace.cache_dir, workspace.datasets_dir))
    files = shelf.files()
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    shown = host if host in LOOPBACK or host not in ("0.0.0.0", "::") else socket.gethostname()
    url = f"http://{f'[{shown}]' if ':' in shown else shown}:{bound_port}"
    access_log = None
    if get_flag(ctx, "verbose"):
        access_log = logging.getLogger("easy_oww.mirror.access")
        access_log.addHandler(logging.StreamHandler(sys.stderr))
        access_log.setLevel(logging.INFO)

    def ready() -> None:
        total = human_bytes(sum(f.size for f in files.values()))
        click.echo(f"Serving {len(files)} verified file(s) ({total}) of {workspace.root} at "
                   f"{url} (read-only; Ctrl-C stops)")
        if host not in LOOPBACK:
            click.echo(f"Warning: listening on {host}: anyone who can reach this machine on "
                       "the network can read these files.")
        click.echo(f"Use it from another workspace: easy-oww download --mirror {url}")
        sys.stdout.flush()

    serve_forever(build_app(shelf), sock, ready, access_log=access_log)
