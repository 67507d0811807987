"""`solar-platform`: one entry point for the stack, the pipeline parts and the platform.

Each part owns its sub-commands in `<part>/commands.py`; this module only mounts them and turns
the errors a user can fix into one readable line and exit code 2.
"""

from __future__ import annotations

import sys

import typer

from solar_platform.api.commands import app as api_app
from solar_platform.cli_errors import user_error_message
from solar_platform.fleet.commands import app as fleet_app
from solar_platform.history.commands import rebuild_command
from solar_platform.notifications.commands import app as notify_app
from solar_platform.settings import Settings, SettingsError, load_settings
from solar_platform.stack.commands import app as stack_app
from solar_platform.stack.commands import db_app, platform_down, platform_up
from solar_platform.storage.health.commands import health_app, panels_app
from solar_platform.storage.site_commands import sites_app
from solar_platform.streaming.commands import app as stream_app

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="Solar fleet data platform: local stack, fleet simulator, Spark stream, REST API, Dagster.",
)
app.add_typer(stack_app, name="stack", help="Local services: MariaDB and the Kafka cluster.")
app.add_typer(db_app, name="db", help="Schema migrations in sql/.")
app.add_typer(fleet_app, name="fleet", help="The simulated panel fleet.")
app.add_typer(stream_app, name="stream", help="The Spark Structured Streaming job.")
app.add_typer(api_app, name="api", help="The REST API.")
app.add_typer(panels_app, name="panels", help="The panel registry: register and retire panels.")
app.add_typer(sites_app, name="sites", help="The site registry: where panels are, in which time zone.")
app.add_typer(health_app, name="health", help="Fault detection (panel_alerts).")
app.add_typer(notify_app, name="notify", help="Alert notifications: webhook and e-mail.")
app.command("up")(platform_up)
app.command("down")(platform_down)
app.command("rebuild")(rebuild_command)


def main() -> None:
    # Standalone mode lets typer print usage errors itself; every other error comes through here.
    # Those a user can fix (config, Java, ports, MariaDB and Kafka access: cli_errors) become one
    # line and exit code 2; anything else is a bug and keeps its traceback.
    try:
        app()
    except Exception as exc:
        message = user_error_message(exc, _settings_or_none())
        if message is None:
            raise
        typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
        sys.exit(2)


def _settings_or_none() -> Settings | None:
    """The settings the failed command most likely ran with (for where MariaDB and Kafka were), if any."""
    try:
        return load_settings()
    except SettingsError:
        return None
