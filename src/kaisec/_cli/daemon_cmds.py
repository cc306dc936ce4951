"""``kaisec serve``: run the runtime daemon."""

from __future__ import annotations

import click

from kaisec._cli._common import state


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8081, show_default=True, type=click.IntRange(1, 65535))
@click.option("--emergency", multiple=True, help="Another emergency number (112, 911 always).")
@click.option("--prompt-timeout", default=30.0, show_default=True, type=float,
              help="Seconds before an unanswered prompt denies.")  # fmt: skip
@click.option("--rate", default=500.0, show_default=True, type=click.FloatRange(min=1),
              help="Messages per second a session may send (bursts of twice that).")  # fmt: skip
def serve_cmd(
    host: str, port: int, emergency: tuple[str, ...], prompt_timeout: float, rate: float
) -> None:
    """Serve installed apps at http://<name>.localhost:PORT/ and the API gateway."""
    from kaisec.daemon import DaemonConfig, serve

    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}: the daemon is meant for loopback", err=True)
    home = state().home
    click.echo(f"kaisec daemon on http://localhost:{port}/ (home {home.root})")
    click.echo(
        f"  apps:   http://<name>.localhost:{port}/   system: http://system.localhost:{port}/"
    )
    serve(
        home,
        DaemonConfig(
            host=host,
            port=port,
            emergency_numbers=emergency,
            prompt_timeout=prompt_timeout,
            rate=rate,
            burst=2 * rate,
        ),
    )


def register(group: click.Group) -> None:
    """Add this module's commands to the ``kaisec`` group."""
    group.add_command(serve_cmd)
