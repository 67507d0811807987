"""Starting, stopping and describing the platform's long-running processes ('fleet', 'stream').

`ProcessControl` is the interface Dagster uses. The local stack's supervisord implements it (the
processes outlive every Dagster run), and so does docker compose, which owns its containers and
only reports. `process_control(settings)` picks the one for where the platform runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from solar_platform.settings import Settings
from solar_platform.stack.lifecycle import start_platform
from solar_platform.stack.supervisor import stop_programs, supervisor, supervisor_running

RUNNING = "RUNNING"
STARTING = "STARTING"
STOPPED = "STOPPED"
NO_SUPERVISOR = "NO_SUPERVISOR"  # the local stack's supervisord is not running
EXTERNAL = "EXTERNAL"  # some other manager (docker compose) owns the program
# supervisord states in which a program should be running but is not (STOPPED is an operator's choice)
DEAD_STATES = ("EXITED", "FATAL", "BACKOFF", "UNKNOWN")


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    state: str
    pid: int = 0
    started_at: datetime | None = None
    log: str = ""  # where its output goes
    description: str = ""


class ProcessControl(Protocol):
    """Start, stop, restart and describe one program by name; every call returns its status."""

    def status(self, name: str) -> ProcessStatus: ...

    def start(self, name: str) -> ProcessStatus: ...

    def stop(self, name: str) -> ProcessStatus: ...

    def restart(self, name: str) -> ProcessStatus: ...


class SupervisordProcessControl:
    """The local stack's supervisord (its XML-RPC socket, through `stack.supervisor`)."""

    def __init__(self, settings: Settings, start_timeout_seconds: float = 60.0) -> None:
        self.settings = settings
        self.start_timeout_seconds = start_timeout_seconds

    def status(self, name: str) -> ProcessStatus:
        if not supervisor_running(self.settings):
            return ProcessStatus(name, NO_SUPERVISOR)
        raw = supervisor(self.settings).supervisor.getProcessInfo(name)
        return ProcessStatus(
            name=name,
            state=raw["statename"],
            pid=int(raw["pid"]),
            started_at=datetime.fromtimestamp(raw["start"], UTC) if raw["start"] else None,
            log=raw.get("stdout_logfile", ""),
            description=raw.get("description", ""),
        )

    def start(self, name: str) -> ProcessStatus:
        start_platform(self.settings, [name])
        deadline = time.monotonic() + self.start_timeout_seconds
        status = self.status(name)
        while status.state == STARTING and time.monotonic() < deadline:
            time.sleep(0.5)
            status = self.status(name)
        return status

    def stop(self, name: str) -> ProcessStatus:
        stop_programs(self.settings, [name])
        return self.status(name)

    def restart(self, name: str) -> ProcessStatus:
        self.stop(name)
        return self.start(name)


class ComposeProcessControl:
    """docker compose runs 'fleet' and 'stream' as services (`restart: unless-stopped`): there is no
    supervisord in the containers, and Dagster cannot start or stop other containers. Every call
    reports that plainly, with the command that does it, instead of failing the run."""

    def status(self, name: str) -> ProcessStatus:
        return ProcessStatus(
            name, EXTERNAL,
            description=(f"docker compose owns '{name}' and restarts it when it exits; from the host: "
                         f"`docker compose restart {name}` (or `stop` / `up -d {name}`), "
                         f"logs with `docker compose logs {name}`"),
        )

    def start(self, name: str) -> ProcessStatus:
        return self.status(name)

    def stop(self, name: str) -> ProcessStatus:
        return self.status(name)

    def restart(self, name: str) -> ProcessStatus:
        return self.status(name)


def process_control(settings: Settings) -> ProcessControl:
    """The process control for where the platform runs (SOLAR_PROCESS_MANAGER)."""
    if settings.process_manager == "compose":
        return ComposeProcessControl()
    return SupervisordProcessControl(settings)
