"""Options and helpers shared by every command module."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from easy_oww.workspace import Workspace


def _remember(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    # An option given after the subcommand wins over the same option given before it.
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.find_root().ensure_object(dict)[name] = value
        return value

    return callback


WORKSPACE_HELP = ("Workspace folder (default: $EASY_OWW_WORKSPACE, then the folder "
                  "remembered by `easy-oww init`, then ~/.easy-oww).")


def workspace_option(func: Callable[..., Any],
                     help_text: str = WORKSPACE_HELP) -> Callable[..., Any]:
    """`--workspace PATH`, accepted on the group and on every subcommand (`help_text`: for a
    command whose default is another, as `demo`'s temporary folder)."""
    return click.option(
        "--workspace",
        type=click.Path(file_okay=False, path_type=str),
        default=None,
        expose_value=False,
        callback=_remember("workspace"),
        help=help_text,
    )(func)


def output_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--verbose` / `--quiet`, accepted on the group and on every subcommand."""
    func = click.option(
        "--quiet", "-q", is_flag=True, default=None, expose_value=False,
        callback=_remember("quiet"), help="Print only errors and the final summary.",
    )(func)
    func = click.option(
        "--verbose", "-v", is_flag=True, default=None, expose_value=False,
        callback=_remember("verbose"), help="Print every request, retry and decision.",
    )(func)
    return func


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    return workspace_option(output_options(func))


def get_workspace(ctx: click.Context) -> Workspace:
    return Workspace.resolve(ctx.find_root().ensure_object(dict).get("workspace"))


def get_flag(ctx: click.Context, name: str) -> bool:
    return bool(ctx.find_root().ensure_object(dict).get(name))


def pass_obj(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        return ctx.invoke(func, ctx, *args, **kwargs)

    return wrapper
