"""`easy-oww oww-config` and `mww-config`: print or write the trainers' configs that
`easy_oww.trainer` makes."""

from __future__ import annotations

import json
from pathlib import Path

import click

from easy_oww.atomic import atomic_write_text
from easy_oww.cli.common import common_options, get_flag, get_workspace
from easy_oww.datasets.engine import DatasetEngine
from easy_oww.errors import EXIT_FAILED, BadInputError
from easy_oww.trainer import TRAINER_KEYS
from easy_oww.trainer import oww_config as merged_config
from easy_oww.trainer.mww_config import mww_config as merged_mww_config

CATALOG_HELP = "Also read this catalog file (TOML), as `download --catalog` does."


def _target(output: Path | None, into: Path | None) -> Path | None:
    """Where the YAML goes (None: stdout); an existing --output is never overwritten."""
    if output is not None and output.exists() and output != into:
        raise BadInputError(f"--output {output} exists; merge into it with --into {output}, "
                            "or choose a new file")
    return output or into


def _write(target: Path | None, text: str) -> None:
    if target is not None:
        atomic_write_text(target, text)


def _say_written(ctx: click.Context, target: Path | None, text: str, summary: str) -> None:
    """The YAML itself on stdout, or one line saying where it was written."""
    if target is None:
        click.echo(text, nl=False)
    elif not get_flag(ctx, "quiet"):
        click.echo(f"Wrote {target}: {summary}.")


def _summary(values: dict) -> str:
    parts = []
    for key in TRAINER_KEYS:
        value = values.get(key)
        if key == "background_paths_duplication_rate" or value is None:
            continue
        parts.append(f"{key} ({len(value)})" if isinstance(value, (list, dict)) else key)
    return ", ".join(parts) or "none of the trainer's keys"


@click.command("oww-config", epilog="""\b
Examples:
  easy-oww oww-config                           # the YAML on stdout
  easy-oww oww-config --output paths.yml
  easy-oww oww-config --into my_model.yml       # merged into your config, comments kept
  easy-oww oww-config --into my_model.yml --output merged.yml
  easy-oww oww-config --json

\b
Writes openWakeWord's rir_paths, background_paths (+ background_paths_duplication_rate),
false_positive_validation_data_path and feature_data_files from what is cached, then checks
every path as train.py will read it. Each problem is one line on stderr saying what to run;
the config is still written, and the exit code is 1.""")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the YAML to this new file (with --into: the merged result goes here "
                   "and the original stays as it is).")
@click.option("--into", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Merge into this existing config, keeping its other keys and comments; "
                   "written back in place unless --output is given.")
@click.option("--duplication-rate", type=click.IntRange(min=1), default=1, show_default=True,
              metavar="N",
              help="background_paths_duplication_rate of easy-oww's background folders.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON object (ok, written, config, problems, notes) instead.")
@click.option("--catalog", type=click.Path(dir_okay=False), default=None, help=CATALOG_HELP)
@common_options
@click.pass_context
def oww_config(ctx: click.Context, output: Path | None, into: Path | None,
               duplication_rate: int, as_json: bool, catalog: str | None) -> None:
    """Write the paths openWakeWord's train.py reads, from what is downloaded."""
    target = _target(output, into)
    engine = DatasetEngine(workspace=get_workspace(ctx), catalog_file=catalog)
    made = merged_config(engine, into=into, duplication_rate=duplication_rate)
    _write(target, made.text)
    if as_json:
        click.echo(json.dumps({"ok": not made.problems,
                               "written": str(target) if target is not None else None,
                               "config": made.values, "problems": made.problems,
                               "notes": made.notes,
                               **({"yaml": made.text} if target is None else {})}, indent=1))
    else:
        _say_written(ctx, target, made.text, _summary(made.values))
        for line in made.notes if not get_flag(ctx, "quiet") else ():
            click.echo(f"Note: {line}", err=True)
        for line in made.problems:
            click.echo(f"Problem: {line}", err=True)
    if made.problems:
        if not as_json:
            click.echo(f"{len(made.problems)} problem{'s' if len(made.problems) != 1 else ''} "
                       "would stop openWakeWord's training; fix them and run this again.",
                       err=True)
        ctx.exit(EXIT_FAILED)


@click.command("mww-config", epilog="""\b
Examples:
  easy-oww mww-config                                  # the YAML on stdout
  easy-oww mww-config --positive work/generated_augmented_features
  easy-oww mww-config --into training_parameters.yaml  # merged, comments kept
  easy-oww mww-config --json

\b
Writes the `features` entries of microWakeWord's training parameters for the four negative
feature sets of `easy-oww download --recipe microwakeword`, with the notebook's weights
(speech and dinner_party 10, no_speech 5, dinner_party_eval 0 with `split`). Your own entries
stay; easy-oww's are written anew. A missing set is one line on stderr and exit 1.""")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the YAML to this new file (with --into: the merged result goes here "
                   "and the original stays as it is).")
@click.option("--into", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Merge into this existing training_parameters.yaml, keeping its other keys "
                   "and comments; written back in place unless --output is given.")
@click.option("--positive", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="DIR", help="Also list the wake word's own features folder (truth: true, "
                                  "the notebook's weights).")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON object (ok, written, features, problems) instead.")
@click.option("--catalog", type=click.Path(dir_okay=False), default=None, help=CATALOG_HELP)
@common_options
@click.pass_context
def mww_config(ctx: click.Context, output: Path | None, into: Path | None,
               positive: Path | None, as_json: bool, catalog: str | None) -> None:
    """Write the features microWakeWord's trainer reads, from what is downloaded."""
    target = _target(output, into)
    engine = DatasetEngine(workspace=get_workspace(ctx), catalog_file=catalog)
    made = merged_mww_config(engine, into=into,
                             positive=positive.absolute() if positive is not None else None)
    _write(target, made.text)
    if as_json:
        click.echo(json.dumps({"ok": not made.problems,
                               "written": str(target) if target is not None else None,
                               "features": made.features, "problems": made.problems,
                               **({"yaml": made.text} if target is None else {})}, indent=1))
    else:
        _say_written(ctx, target, made.text, f"{len(made.features)} features entries")
        for line in made.problems:
            click.echo(f"Problem: {line}", err=True)
    if made.problems:
        ctx.exit(EXIT_FAILED)
