"""Starting, stopping and describing the platform's long-running processes ('fleet', 'stream').

`ProcessControl` is the interface Dagster drives (its `processes` resource). Two implementations:
- docker compose's (`ComposeProcessControl`, here): compose owns the containers, so it only reports;
- the local stack's supervisord (`stack.process_control.SupervisordProcessControl`): the processes
  outlive every Dagster run.

`process_control(settings)` picks the one for where the platform runs. The supervisord one belongs
to the developer stack (`stack/`), which production never needs: it is imported inside that
function, only when chosen, so nothing that merely imports this module (Dagster's definitions
among them) loads `stack/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from solar_platform.settings import Settings

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
    # The local stack's, imported only here and only when chosen: production never loads stack/.
    from solar_platform.stack.process_control import SupervisordProcessControl

    return SupervisordProcessControl(settings)
