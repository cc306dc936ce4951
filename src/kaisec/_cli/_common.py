"""Shared pieces of the command line: state, output, error printing."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from kaisec.errors import KaisecError
from kaisec.home import Home, resolve_home

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["CliState", "console", "emit_error", "print_json", "state"]


@dataclass
class CliState:
    """Per-invocation state handed to every command through click's context."""

    home_arg: str | None = None
    json_mode: bool = False
    _home: Home | None = field(default=None, repr=False)

    @property
    def home(self) -> Home:
        if self._home is None:
            self._home = resolve_home(self.home_arg).ensure()
        return self._home


def state(json_mode: bool = False) -> CliState:
    """The current invocation's state; records whether output is JSON."""
    st = click.get_current_context().find_object(CliState)
    if st is None:  # pragma: no cover - main() always sets it
        raise RuntimeError("kaisec CLI state missing")
    st.json_mode = st.json_mode or json_mode
    return st


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console  # imported late: start-up time matters for scripts

    return Console(file=sys.stderr if stderr else sys.stdout, highlight=False, soft_wrap=True)


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False))


def emit_error(exc: KaisecError, *, json_mode: bool) -> None:
    """Print an error: the JSON error object on stdout, or a line (and hint) on stderr."""
    if json_mode:
        print_json({"error": exc.to_dict()})
        return
    click.echo(f"error: {exc.code}: {exc.message}", err=True)
    problems = exc.details.get("problems")
    if isinstance(problems, list):
        for problem in problems:
            click.echo(f"  - {problem}", err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)
