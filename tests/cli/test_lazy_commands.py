"""The command line loads each command's module only when that command is used."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click

from kaisec._cli import _COMMANDS, cli


def test_every_registered_command_is_in_the_lazy_map() -> None:
    modules = set(_COMMANDS.values())
    for module_name in modules:
        group = click.Group()
        importlib.import_module(f"kaisec._cli.{module_name}").register(group)
        for name in group.commands:
            assert _COMMANDS.get(name) == module_name, name
        mapped = {n for n, m in _COMMANDS.items() if m == module_name}
        assert mapped == set(group.commands), module_name


def test_help_lists_every_command() -> None:
    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(_COMMANDS)
    for name in _COMMANDS:
        assert cli.get_command(ctx, name) is not None
    assert cli.get_command(ctx, "no-such-command") is None


def test_verify_does_not_load_other_commands() -> None:
    code = (
        "import sys\n"
        "from kaisec._cli import main\n"
        "main(['verify', '--help'])\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('kaisec._cli.', 'msgspec', "
        "'rich', 'httpx', 'starlette', 'uvicorn')))\n"
        "print(','.join(loaded))\n"
    )
    out = (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    assert out.split(",") == ["kaisec._cli._common", "kaisec._cli.package_cmds"]
