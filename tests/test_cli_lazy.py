"""The command group loads a command's module only when the command runs."""

from __future__ import annotations

import subprocess
import sys

import click

from easy_oww.cli import _COMMANDS, cli


def test_the_listed_summaries_are_the_commands_own():
    ctx = click.Context(cli)
    for name, (_, summary) in _COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None
        for limit in (45, 200):
            listed = click.Command(name, help=summary).get_short_help_str(limit)
            assert listed == command.get_short_help_str(limit)


def test_help_and_version_import_no_command_module():
    code = ("import sys\nfrom easy_oww.cli import cli\n"
            "for args in (['--help'], ['--version']):\n"
            "    try:\n        cli.main(args=args, prog_name='easy-oww')\n"
            "    except SystemExit:\n        pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('easy_oww.cli.', "
            "'easy_oww.datasets', 'easy_oww.freesound', 'easy_oww.transfer'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert "Commands:" in done.stdout and "doctor" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "['easy_oww.cli.common']"
