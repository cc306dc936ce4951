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


@click.command("demo")
@click.option("--port", default=8081, show_default=True, type=click.IntRange(1, 65535))
@click.option("--weather-port", default=8090, show_default=True, type=click.IntRange(1, 65535),
              help="Port of the hosted weather PWA's own server.")  # fmt: skip
@click.option("--provision-only", is_flag=True, help="Set the device up, then exit.")
def demo_cmd(port: int, weather_port: int, provision_only: bool) -> None:
    """A development phone: first-start provisioning, the weather PWA's server, the daemon."""
    import threading
    import time

    import uvicorn

    from kaisec.daemon import DaemonConfig, serve
    from kaisec.errors import AppNotFoundError
    from kaisec.installer import Installer
    from kaisec.provision import provision, weather_app
    from kaisec.registry import find_app

    home = state().home
    done = provision(home)
    if done.installed:
        click.echo(f"first start: installed {', '.join(done.installed)} (keys in {done.keys_dir})")
    if provision_only:
        return
    weather = uvicorn.Server(
        uvicorn.Config(
            weather_app(daemon_port=port),  # type: ignore[arg-type]
            host="127.0.0.1",
            port=weather_port,
            log_level="warning",
        )
    )
    threading.Thread(target=weather.run, daemon=True).start()
    origin = f"http://127.0.0.1:{weather_port}"
    deadline = time.monotonic() + 10
    while not weather.started and time.monotonic() < deadline:
        time.sleep(0.05)
    with Installer(home) as inst:
        try:
            find_app(inst.store, origin)
        except AppNotFoundError:
            inst.install(f"{origin}/manifest.webmanifest")
    click.echo(
        "\nkaisec demo phone (open these in Chromium):\n"
        f"  system app  http://system.localhost:{port}/\n"
        f"  dialer      http://dialer.localhost:{port}/\n"
        f"  contacts    http://contacts.localhost:{port}/\n"
        f"  weather     {origin}/   (a hosted PWA)\n"
        f"home: {home.root}   stop: Ctrl-C\n"
    )
    serve(home, DaemonConfig(port=port))


def register(group: click.Group) -> None:
    """Add this module's commands to the ``kaisec`` group."""
    group.add_command(serve_cmd)
    group.add_command(demo_cmd)
