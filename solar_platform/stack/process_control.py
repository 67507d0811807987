"""The local stack's implementation of `runtime.process_control.ProcessControl`: supervisord.

The processes it starts outlive every Dagster run. Only `runtime.process_control.process_control`
picks it, when SOLAR_PROCESS_MANAGER is `supervisord` (the default, the local stack); the
interface, the state names and compose's implementation live in `runtime/`, so Dagster's code
never imports `stack/`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from solar_platform.runtime.process_control import NO_SUPERVISOR, STARTING, ProcessStatus
from solar_platform.settings import Settings
from solar_platform.stack.lifecycle import start_platform
from solar_platform.stack.supervisor import stop_programs, supervisor, supervisor_running


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
