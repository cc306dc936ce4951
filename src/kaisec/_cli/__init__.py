"""The ``kaisec`` command line: argument parsing and printing over the library.

Handlers only turn arguments into library calls and print the result. Errors:
a ``KaisecError`` ends the command with exit 1 (a JSON error object under
``--json``), a usage error with exit 2. Commands that define their own exit
codes (``verify``) say so in their help. Only this package configures logging.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Sequence

import click

from kaisec import __version__
from kaisec._cli._common import CliState, emit_error
from kaisec.errors import KaisecError

__all__ = ["cli", "main"]

# Which module defines each command. A command's module (and what it imports)
# is loaded only when the command runs or help lists it: ``kaisec verify`` is
# run once per package by scripts, and its start-up is part of its cost.
# click has no lazy group of its own; this is its documented extension point.
_COMMANDS: dict[str, str] = {
    **dict.fromkeys(("perms", "check", "table", "pin", "audit"), "policy_cmds"),
    **dict.fromkeys(("keys", "trust", "pack", "sign", "verify"), "package_cmds"),
    **dict.fromkeys(
        ("install", "update", "uninstall", "apps", "doctor", "resolve", "config", "rotation"),
        "app_cmds",
    ),
    **dict.fromkeys(("serve", "demo"), "daemon_cmds"),
    "lint": "lint_cmds",
}


class _LazyGroup(click.Group):
    """A group whose commands are imported from their module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            module = importlib.import_module(f"kaisec._cli.{_COMMANDS[cmd_name]}")
            module.register(self)
        return self.commands.get(cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kaisec")
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    default=None,
    help="State directory (default: $KAISEC_HOME, else the user data dir).",
)
@click.option("-v", "--verbose", count=True, help="More logging (repeat for debug).")
@click.pass_context
def cli(ctx: click.Context, home: str | None, verbose: int) -> None:
    """kaisec: the KaiOS app security framework."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not isinstance(ctx.obj, CliState):
        ctx.obj = CliState()
    ctx.obj.home_arg = home


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 refused/failed, 2 usage)."""
    args = list(sys.argv[1:] if argv is None else argv)
    st = CliState()
    try:
        rv = cli.main(args=args, prog_name="kaisec", standalone_mode=False, obj=st)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.UsageError as exc:
        exc.show()
        return 2
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KaisecError as exc:
        emit_error(exc, json_mode=st.json_mode)
        return 1
    except BrokenPipeError:
        # stdout closed by the reader (``kaisec apps | head``): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return int(rv) if isinstance(rv, int) else 0
