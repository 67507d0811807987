"""The platform's own processes under the stack's supervisord: Dagster, the API, the fleet, the stream.

Defined beside the data services but off by default: `solar-platform up` (`lifecycle.start_platform`)
starts them, and Dagster starts and stops the fleet and the stream after that.
"""

from __future__ import annotations

import os
from pathlib import Path

from solar_platform.runtime.processes import run_or_raise
from solar_platform.settings import Settings
from solar_platform.stack.supervisor import PROJECT_DIR, VENV_BIN, Program, venv_python

PLATFORM_PROGRAMS = ("dagster-webserver", "dagster-daemon", "api", "fleet", "stream")
_WORKSPACE = PROJECT_DIR / "workspace.yaml"


def programs(settings: Settings) -> list[Program]:
    cli = [venv_python(), "-m", "solar_platform"]
    dagster_env = {"DAGSTER_HOME": str(settings.home_dir / "dagster"), "SOLAR_MYSQL_ROLE": "dagster"}
    return [
        Program(
            "dagster-webserver",
            [
                str(VENV_BIN / "dagster-webserver"),
                "-w",
                str(_WORKSPACE),
                "-h",
                "127.0.0.1",
                "-p",
                str(settings.dagster_port),
            ],
            priority=60,
            port=settings.dagster_port,
            autostart=False,
            environment=dagster_env,
        ),
        Program(
            "dagster-daemon",
            [str(VENV_BIN / "dagster-daemon"), "run", "-w", str(_WORKSPACE)],
            priority=60,
            autostart=False,
            environment=dagster_env,
        ),
        Program("api", [*cli, "api", "serve"], priority=70, port=settings.api_port, autostart=False,
                environment={"SOLAR_MYSQL_ROLE": "reader"}),
        Program("fleet", [*cli, "fleet", "run"], priority=80, autostart=False),
        Program(
            "stream",
            [*cli, "stream", "run", "--trigger", "continuous"],
            priority=80,
            autostart=False,
            stop_wait_seconds=60,
            environment={"SOLAR_MYSQL_ROLE": "stream"},
        ),
    ]


def dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME for the webserver and daemon: local SQLite storage, telemetry off (loopback only),
    and no newsletter pop-up over the operator's first view of the UI."""
    home = settings.home_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    return home


def launch_dagster_job(settings: Settings, job: str) -> None:
    """Queue a run of a Dagster job on the platform's instance (the daemon executes it)."""
    run_or_raise(
        [str(VENV_BIN / "dagster"), "job", "launch", "-w", str(_WORKSPACE), "-j", job],
        f"launching Dagster job {job}",
        cwd=PROJECT_DIR,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home(settings))},
    )
