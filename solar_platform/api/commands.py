"""`solar-platform api serve`: the REST API under gunicorn."""

from __future__ import annotations

import gc
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


def _gunicorn_application(options: dict[str, Any], factory_kwargs: dict[str, Any]) -> Any:
    from gunicorn.app.base import BaseApplication

    class StandaloneApplication(BaseApplication):
        """Gunicorn driven from Python, so `serve` needs no WSGI module path or config file."""

        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            # Built in each worker (after fork), so no worker shares a pooled DB connection.
            from solar_platform.api.app import create_app
            from solar_platform.settings import load_settings

            application = create_app(load_settings(**factory_kwargs))
            # What the worker has built so far (the app, its libraries: ~120k objects) lives as long as
            # it does: out of the collector's reach, a full collection costs microseconds, not the
            # 60-80 ms it added to one request in fifty at 200k panels (docs/benchmarks.md).
            gc.collect()
            gc.freeze()
            return application

    return StandaloneApplication()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: SOLAR_API_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: SOLAR_API_PORT, 5000).")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Gunicorn worker processes.")] = 2,
    threads: Annotated[int, typer.Option(min=1, max=64, help="Threads per worker.")] = 4,
) -> None:
    """Serve the REST API with gunicorn, connected as the read-only MySQL user."""
    from solar_platform.runtime.host import SetupError, port_is_free
    from solar_platform.settings import load_settings

    settings = load_settings(api_host=host, api_port=port)
    if not port_is_free(settings.api_port, settings.api_host):  # gunicorn would retry, then log a screenful
        raise SetupError(f"port {settings.api_port} on {settings.api_host} is already in use: stop that process, "
                         "or choose another port (--port or SOLAR_API_PORT)")
    options = {
        "bind": f"{settings.api_host}:{settings.api_port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 60,
        "graceful_timeout": 20,
        "accesslog": "-",
        "errorlog": "-",
    }
    _gunicorn_application(options, {"api_host": host, "api_port": port}).run()


@app.command("openapi")
def openapi() -> None:
    """Print the OpenAPI document (generated from the code) without starting a server."""
    import json

    from solar_platform.api.app import create_app
    from solar_platform.settings import load_settings

    typer.echo(json.dumps(create_app(load_settings()).api_doc, indent=2))
