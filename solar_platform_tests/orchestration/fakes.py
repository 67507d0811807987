"""An in-memory `ProcessControl` for tests: remembers each program's state and the calls made."""

from __future__ import annotations

from solar_platform.runtime.process_control import RUNNING, STOPPED, ProcessStatus


class OfflineProcessControl:
    """Passed to `build_defs(processes=...)` as a plain resource, so every run and sensor in the
    test sees this one object (Dagster copies configurable resources, not plain ones)."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []

    def status(self, name: str) -> ProcessStatus:
        state = self.states.get(name, STOPPED)
        return ProcessStatus(name, state, pid=4242 if state == RUNNING else 0)

    def start(self, name: str) -> ProcessStatus:
        self.calls.append(("start", name))
        self.states[name] = RUNNING
        return self.status(name)

    def stop(self, name: str) -> ProcessStatus:
        self.calls.append(("stop", name))
        self.states[name] = STOPPED
        return self.status(name)

    def restart(self, name: str) -> ProcessStatus:
        self.stop(name)
        return self.start(name)

    def set_state(self, name: str, state: str) -> None:
        self.states[name] = state
