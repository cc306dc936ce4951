"""The ``lint`` command: check an app folder or package before it goes to a store.

The handler turns arguments into one ``kaisec.lint.lint_app`` call and
prints: a table for people, ``--json`` for tools. Exit 0 when there is no
error (warnings do not fail), 1 when there is one, 2 on a usage error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kaisec._cli._common import console, print_json, state

if TYPE_CHECKING:
    from kaisec.lint import LintReport

_SOURCES = {
    "option": "from --class",
    "manifest": "asked by the manifest",
    "default": "the manifest asks for none; a packaged app is checked as signed",
}


@click.command("lint")
@click.argument("src", type=click.Path(exists=True))
@click.option(
    "--class",
    "class_",
    type=click.Choice(["pwa", "signed", "core"]),
    default=None,
    help="The class to check against (default: what the manifest asks, else signed).",
)
@click.option("--json", "json_", is_flag=True, help="Machine-readable output.")
def lint_cmd(src: str, class_: str | None, json_: bool) -> int:
    """Find what will be refused or blocked in an app folder or package (SRC).

    Manifest problems with their field paths; permissions the target class
    will not get, unknown ones, access modes that do not expand; what the
    class's Content-Security-Policy blocks in the HTML and JS (inline
    scripts and handlers, javascript: URLs, eval, remote scripts, plugins),
    each with file and line.

    Exit 0 no errors (warnings do not fail), 1 errors found, 2 usage error.
    JSON: {"app", "name", "class", "class_source", "errors", "warnings",
    "findings": [{"severity", "code", "file", "line", "column", "message", "hint"}]}.
    """
    from kaisec.lint import lint_app
    from kaisec.types import AppClass

    state(json_)
    try:
        report = lint_app(src, target=AppClass(class_) if class_ else None)
    except ValueError as exc:  # a FIFO, a device: not something to lint
        raise click.BadParameter(str(exc), param_hint="SRC") from exc
    except OSError as exc:
        raise click.ClickException(f"cannot read {src!r}: {exc.strerror or exc}") from exc
    if json_:
        print_json(report.to_dict())
    else:
        _print_report(report)
    return 0 if report.ok else 1


def _print_report(report: LintReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    if report.findings:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        table.add_column("where", overflow="fold")
        table.add_column("severity", no_wrap=True)
        table.add_column("code", overflow="fold")
        table.add_column("message", overflow="fold", min_width=36, ratio=1)
        for f in report.findings:
            style = "red" if f.severity == "error" else "yellow"
            message = escape(f.message)
            if f.hint:
                message += f"\n[dim]hint: {escape(f.hint)}[/dim]"
            table.add_row(escape(f.location), f"[{style}]{f.severity}[/{style}]", f.code, message)
        out.print(table)
    what = f"{report.name!r} ({report.app})" if report.name else report.app
    source = _SOURCES.get(report.class_source, report.class_source)
    errors = f"{report.errors} error{'s' if report.errors != 1 else ''}"
    warnings = f"{report.warnings} warning{'s' if report.warnings != 1 else ''}"
    verdict = "[green]ok[/green]" if report.ok else "[red]failed[/red]"
    out.print(
        f"{verdict}: {errors}, {warnings} in {escape(what)}; checked as "
        f"[bold]{report.app_class.value}[/bold] ({escape(source)})"
    )


def register(group: click.Group) -> None:
    """Add this module's commands to the ``kaisec`` group."""
    group.add_command(lint_cmd)
