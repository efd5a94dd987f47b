"""The manual cannot drift: links between README.md and docs/ resolve, and every option a user
can type is described on a page beside the generated reference (docs/reference.md, checked by
`cog --check` in .ci/run)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from easy_oww.cli import cli

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# Described once for every command in README's "Commands" (and the freesound group's page).
SHARED = {"--help", "--version", "--workspace", "--verbose", "--quiet", "--library"}


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def test_relative_links_resolve_to_a_file_and_a_heading():
    broken = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not ours to check offline
            name, _, anchor = target.partition("#")
            dest = (page.parent / name).resolve() if name else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def _commands(command: click.Command, path: list[str]):
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from _commands(command.get_command(ctx, name), [*path, name])


def test_every_command_and_option_is_described_beside_the_reference():
    described = "\n".join(p.read_text(encoding="utf-8") for p in PAGES
                          if p.name != "reference.md")
    reference = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    missing = []
    for path, command in _commands(cli, ["easy-oww"]):
        name = " ".join(path)
        if f"## `{name}`" not in reference:
            missing.append(f"{name}: not in docs/reference.md (run `cog -r docs/reference.md`)")
        if len(path) > 1 and not re.search(rf"easy-oww[^\n`]*\b{re.escape(path[-1])}\b",
                                           described):
            missing.append(f"{name}: no example on a docs page")
        for param in command.params:
            for option in getattr(param, "opts", []):
                if option.startswith("--") and option not in SHARED and option not in described:
                    missing.append(f"{name} {option}: not described on a docs page")
    assert missing == []
