"""Dataset commands (placeholder until the engine lands)."""

import click


def register(group: click.Group) -> None:
    pass
