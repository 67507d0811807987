"""`solar-platform stack|db|up|down`: the local services and the whole platform."""

from __future__ import annotations

import json

import typer

from solar_platform.settings import Settings, load_settings
from solar_platform.stack import lifecycle
from solar_platform.stack.platform_programs import launch_dagster_job

app = typer.Typer(no_args_is_help=True)
db_app = typer.Typer(no_args_is_help=True)


@app.command("up")
def stack_up() -> None:
    """Start MariaDB and the Kafka cluster (idempotent); create users, schema and topic."""
    settings = load_settings()
    settings = lifecycle.stack_up(settings, log=lambda line: typer.echo(f"· {line}"))
    _print_connections(settings)


@app.command("down")
def stack_down() -> None:
    """Stop every process of the stack and the platform."""
    lifecycle.stack_down(load_settings())
    typer.echo("stack stopped")


@app.command("status")
def stack_status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Service states and the URLs to connect with."""
    report = lifecycle.status(load_settings())
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"supervisor: {report['supervisor']}")
    for name, state in sorted(report["services"].items()):  # type: ignore[union-attr]
        typer.echo(f"  {name:<24} {state}")
    for key in ("mysql_url", "mysql_readonly_url", "kafka_bootstrap", "topic", "dagster_url", "api_url",
                "spark_master", "logs"):
        typer.echo(f"{key}: {report[key]}")
    for name, url in report["spark_ui_urls"].items():  # type: ignore[union-attr]
        typer.echo(f"{name} UI: {url}")


@app.command("secrets")
def stack_secrets(
    compose: bool = typer.Option(False, "--compose", help="Print them as .env lines for docker compose."),
) -> None:
    """Generate the platform's passwords once (kept in the stack home, mode 0600); print where, or the lines."""
    from solar_platform.credentials import compose_env, ensure_secrets

    home = load_settings().home_dir
    if compose:
        typer.echo(compose_env(home), nl=False)
    else:
        typer.echo(f"secrets kept in {ensure_secrets(home)} (mode 0600)")


@app.command("spark-master")
def spark_master() -> None:
    """Run a Spark standalone master in the foreground (compose's spark-master service)."""
    _exec_spark("master")


@app.command("spark-worker")
def spark_worker() -> None:
    """Run a Spark standalone worker in the foreground, joining SOLAR_SPARK_MASTER (compose's spark-worker)."""
    _exec_spark("worker")


def _exec_spark(role: str) -> None:
    from solar_platform.runtime.host import SetupError
    from solar_platform.stack.spark_cluster import exec_daemon

    try:
        exec_daemon(load_settings(), role)
    except SetupError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations from sql/ (idempotent)."""
    from solar_platform.storage.migrations import migrate

    applied = migrate(load_settings())
    typer.echo(f"applied: {', '.join(applied)}" if applied else "schema up to date")


@db_app.command("provision")
def db_provision() -> None:
    """Create the database and the platform's users as root over TCP (compose's one-shot service)."""
    from solar_platform.storage.users import provision_over_tcp

    settings = load_settings()
    provision_over_tcp(settings)
    typer.echo(f"users of {settings.mysql_database} provisioned")


def platform_up(
    only_stack: bool = typer.Option(False, "--only-stack", help="Start MariaDB and Kafka only."),
) -> None:
    """Start everything: the stack, then Dagster (webserver + daemon), the API, the fleet and the stream."""
    settings = load_settings()
    settings = lifecycle.stack_up(settings, log=lambda line: typer.echo(f"· {line}"))
    if not only_stack:
        lifecycle.start_platform(settings)
        # First run of the setup job (schema, topic, panel registry), queued for the daemon so the
        # operator sees it in the UI's run history; its schedules keep the registry current after.
        launch_dagster_job(settings, "setup_platform")
        typer.echo("· queued Dagster job setup_platform")
    _print_connections(settings)


def platform_down() -> None:
    """Stop the platform and the stack."""
    stack_down()


def _print_connections(settings: Settings) -> None:
    report = lifecycle.status(settings)
    typer.echo("")
    for name, state in sorted(report["services"].items()):  # type: ignore[union-attr]
        typer.echo(f"  {name:<24} {state}")
    typer.echo(f"\nDagster UI   {report['dagster_url']}\nREST API     {report['api_url']}")
    typer.echo(f"MySQL        {report['mysql_url']}\nKafka        {report['kafka_bootstrap']} topic {report['topic']}")
    typer.echo(f"Spark        {report['spark_master']}")
    for name, url in report["spark_ui_urls"].items():  # type: ignore[union-attr]
        typer.echo(f"  {name:<22} {url}")
    typer.echo(f"Logs         {report['logs']}")
