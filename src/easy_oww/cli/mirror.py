"""`easy-oww mirror serve`: share this workspace's verified datasets over HTTP;
`easy-oww mirror push`: copy them into an S3 bucket."""

from __future__ import annotations

import logging
import socket
import sys

import click

from easy_oww.cli.common import common_options, get_flag, get_workspace
from easy_oww.datasets.cache import CacheManager
from easy_oww.datasets.mirror import WorkspaceShelf
from easy_oww.datasets.mirror_push import push_to_bucket
from easy_oww.errors import BadInputError, EasyOwwError
from easy_oww.progress import NullProgress, PlainProgress, RichProgress, human_bytes
from easy_oww.transfer.s3 import S3Location
from easy_oww.transfer.serve import bind, build_app, serve_forever

DEFAULT_PORT = 8642


class PushIncompleteError(EasyOwwError):
    """Some files were not pushed (exit 1); the rest were."""

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.group(epilog="""\b
Examples:
  easy-oww mirror serve                       # this machine only: http://127.0.0.1:8642
  easy-oww mirror serve --host 0.0.0.0        # everyone on the network (prints a warning)
  easy-oww download --mirror http://192.168.1.20:8642   # on the other machine
  easy-oww mirror push s3://team-bucket/easy-oww         # into a bucket (the s3 extra)
  easy-oww download --mirror s3://team-bucket/easy-oww   # on the training machines""")
@common_options
def mirror() -> None:
    """Share this workspace's verified datasets with other machines (a read-only HTTP
    server, or an S3 bucket)."""


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


@mirror.command(epilog="""\b
Examples:
  easy-oww mirror push s3://team-bucket/easy-oww
  AWS_PROFILE=lab easy-oww mirror push s3://team-bucket/easy-oww
  AWS_ENDPOINT_URL=http://minio.lan:9000 easy-oww mirror push s3://datasets

\b
Uploads every file `mirror serve` would serve to PREFIX/datasets/<path>, with its hash in
the object's metadata, and PREFIX/index.json; an object already there with the same size
and hash is not uploaded again. Needs the S3 extra: pip install 'easy-oww[s3]'.
Credentials and the endpoint come from the standard AWS variables and files
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials,
AWS_ENDPOINT_URL).""")
@click.argument("target", metavar="s3://BUCKET[/PREFIX]")
@common_options
@click.pass_context
def push(ctx: click.Context, target: str) -> None:
    """Upload this workspace's verified dataset files to an S3 bucket (a mirror)."""
    try:
        location = S3Location.parse(target)
    except BadInputError as exc:
        raise BadInputError(f"mirror push: {exc}") from None
    workspace = get_workspace(ctx)
    cache = CacheManager(workspace.cache_dir, workspace.datasets_dir)
    quiet = get_flag(ctx, "quiet")
    say = (lambda line: None) if quiet else click.echo
    progress: NullProgress = NullProgress()
    if not quiet:
        progress = RichProgress() if sys.stderr.isatty() else PlainProgress(interval=10.0)

    def announce(files: int, size: int) -> None:
        say(f"Pushing {files} verified file(s) ({human_bytes(size)}) of {workspace.root} to "
            f"{location.url}")

    with progress:
        report = push_to_bucket(cache, location, progress=progress, say=say,
                                announce=announce)
    index = location.url + "/index.json"
    click.echo(f"Uploaded {len(report.uploaded)} file(s) ({human_bytes(report.uploaded_bytes)}); "
               f"{len(report.already_there)} already there; "
               + (f"{index} written." if report.index_written else f"{index} unchanged."))
    if report.refused:
        raise PushIncompleteError(f"{len(report.refused)} file(s) not pushed: they fail their "
                                  "recorded hash; run `easy-oww verify`, then push again")
