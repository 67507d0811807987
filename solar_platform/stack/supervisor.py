"""supervisord, which owns every long-running process of the local stack.

It restarts a process that dies, keeps its log, and stops everything in order. This module writes
its config (one `[program:x]` section per `Program`), starts it, and talks to it over XML-RPC on
its private unix socket: start and stop programs, read their states, wait until one answers.
"""

from __future__ import annotations

import sys
import time
import xmlrpc.client
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from solar_platform.runtime.host import SetupError, java_home
from solar_platform.runtime.processes import run_or_raise
from solar_platform.settings import Settings

PROJECT_DIR = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.prefix) / "bin"  # the venv's scripts (python, dagster, ...)


@dataclass(frozen=True)
class Program:
    name: str
    command: list[str]
    priority: int
    port: int | None = None
    autostart: bool = True
    stop_wait_seconds: int = 30
    environment: dict[str, str] | None = None


# ---------------------------------------------------------------- paths
def supervisor_dir(settings: Settings) -> Path:
    return settings.home_dir / "supervisor"


def socket_path(settings: Settings) -> Path:
    return supervisor_dir(settings) / "supervisor.sock"


def log_dir(settings: Settings) -> Path:
    return settings.home_dir / "logs"


def include_dir(settings: Settings) -> Path:
    """Extra program files supervisord includes (the Spark cluster, tests' own clusters)."""
    return supervisor_dir(settings) / "conf.d"


def venv_python() -> str:
    # The venv's interpreter by a stable path: sys.executable differs between `python` and
    # `python3` launchers, and a config that differs restarts every supervised process.
    return str(VENV_BIN / "python")


# ---------------------------------------------------------------- config
def _base_env() -> dict[str, str]:
    return {
        "JAVA_HOME": str(java_home()),
        "PYSPARK_PYTHON": venv_python(),
        "PYSPARK_DRIVER_PYTHON": venv_python(),
        "SPARK_LOCAL_IP": "127.0.0.1",
    }


def program_section(settings: Settings, prog: Program) -> list[str]:
    """One `[program:x]` section of the supervisord config."""
    logs = log_dir(settings)
    env = {**_base_env(), "SOLAR_HOME": str(settings.home_dir), **(prog.environment or {})}
    env_line = ",".join(f'{k}="{v}"' for k, v in env.items())
    return [
        f"[program:{prog.name}]",
        "command=" + " ".join(_quote(arg) for arg in prog.command),
        f"directory={PROJECT_DIR}",
        f"priority={prog.priority}",
        "autostart=false",  # `up` starts them in order and waits for each to answer
        "autorestart=true",
        "startsecs=3",
        "startretries=5",
        f"stopwaitsecs={prog.stop_wait_seconds}",
        "stopasgroup=true",
        "killasgroup=true",
        "redirect_stderr=true",
        f"stdout_logfile={logs / (prog.name + '.log')}",
        "stdout_logfile_maxbytes=20MB",
        "stdout_logfile_backups=2",
        f"environment={env_line}",
        "",
    ]


def _quote(arg: str) -> str:
    # supervisor splits command= with shlex; '%' must be doubled for its own expansion
    escaped = arg.replace("%", "%%")
    return f'"{escaped}"' if any(c in escaped for c in " \t\"'") else escaped


def _write_config(settings: Settings, progs: Iterable[Program]) -> Path:
    sdir = supervisor_dir(settings)
    logs = log_dir(settings)
    sdir.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    include_dir(settings).mkdir(parents=True, exist_ok=True)
    lines = [
        "[unix_http_server]",
        f"file={socket_path(settings)}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={logs / 'supervisord.log'}",
        f"pidfile={sdir / 'supervisord.pid'}",
        f"directory={PROJECT_DIR}",
        "logfile_maxbytes=10MB",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{socket_path(settings)}",
        "",
        # Programs that come and go without touching this file (stack/spark_cluster.py).
        "[include]",
        f"files={include_dir(settings)}/*.conf",
        "",
    ]
    for prog in progs:
        lines += program_section(settings, prog)
    path = sdir / "supervisord.conf"
    path.write_text("\n".join(lines))
    return path


# ---------------------------------------------------------------- client
class _UnixTransport(xmlrpc.client.Transport):
    """XML-RPC over supervisord's unix socket, with a timeout: supervisor's own `SupervisorTransport`
    sets none, and a wedged supervisord would then hang a Dagster sensor or `stack up` for good."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = str(path)

    def make_connection(self, host: str) -> object:
        import http.client
        import socket

        path = self._path

        class _Conn(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(60)
                self.sock.connect(path)

        return _Conn("localhost")


def supervisor(settings: Settings) -> xmlrpc.client.ServerProxy:
    return xmlrpc.client.ServerProxy("http://localhost", transport=_UnixTransport(socket_path(settings)))


def supervisor_running(settings: Settings) -> bool:
    if not socket_path(settings).exists():
        return False
    try:
        return supervisor(settings).supervisor.getState()["statename"] == "RUNNING"
    except (OSError, xmlrpc.client.Error):
        return False


def process_states(settings: Settings) -> dict[str, str]:
    """`{program: state}` for every supervised process, or {} when supervisord is down."""
    if not supervisor_running(settings):
        return {}
    return {info["name"]: info["statename"] for info in supervisor(settings).supervisor.getAllProcessInfo()}


def log_tail(settings: Settings, program: str, lines: int = 20) -> str:
    """The last lines of a supervised program's log, for error messages that say why."""
    log = log_dir(settings) / f"{program}.log"
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"
    return f"last lines of {log}:\n{tail}"


def wait_until_ready(settings: Settings, what: str, ready: Callable[[], bool], timeout: float, program: str) -> None:
    """Poll `ready` until it holds; past `timeout`, raise with the tail of `program`'s log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.3)
    raise SetupError(f"{what} did not become ready within {timeout:.0f} s; {log_tail(settings, program)}")


# ---------------------------------------------------------------- start and stop
def start_supervisor(settings: Settings, progs: list[Program]) -> None:
    """Write the config and start supervisord, or reload a running one (only changed programs restart)."""
    config = _write_config(settings, progs)
    if supervisor_running(settings):
        apply_config(settings, priority={p.name: p.priority for p in progs})
        return
    run_or_raise([sys.executable, "-m", "supervisor.supervisord", "-c", str(config)], "starting supervisord")
    wait_until_ready(settings, "supervisord", lambda: supervisor_running(settings), 15, "supervisord")


def apply_config(settings: Settings, only: Collection[str] | None = None,
                 priority: Mapping[str, int] | None = None) -> None:
    """Reload supervisord's config files: stop and drop the programs whose section changed or went,
    then add the new and the changed ones. Nothing else is touched, so nothing else restarts.

    `only`: these programs alone (an include file beside others' programs); `priority`: stop
    dependants first (brokers before their controllers), as supervisord does on shutdown. Another
    process reloading at the same moment (`stack up` beside a test's cluster) may have done a step
    first: that is not an error.
    """
    server = supervisor(settings)
    added, changed, removed = server.supervisor.reloadConfig()[0]
    ours = [name for name in changed + removed if only is None or name in only]
    for name in sorted(ours, key=lambda n: -(priority or {}).get(n, 0)):
        with suppress(xmlrpc.client.Fault):  # already stopped / removed by a concurrent reload
            server.supervisor.stopProcessGroup(name)
            server.supervisor.removeProcessGroup(name)
    for name in added + changed:
        if only is None or name in only:
            try:
                server.supervisor.addProcessGroup(name)
            except xmlrpc.client.Fault as fault:  # a concurrent reload added it first
                if "ALREADY_ADDED" not in fault.faultString:
                    raise


def start_program(settings: Settings, name: str) -> None:
    """Start one supervised program unless it runs already; a failure says why, from its log."""
    server = supervisor(settings)
    state = server.supervisor.getProcessInfo(name)["statename"]
    if state not in ("RUNNING", "STARTING"):
        try:
            server.supervisor.startProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" in fault.faultString:  # supervisord's autorestart got there first
                return
            raise SetupError(f"{name} failed to start ({fault.faultString}); {log_tail(settings, name)}") from fault


def stop_programs(settings: Settings, names: Iterable[str]) -> None:
    if not supervisor_running(settings):
        return
    server = supervisor(settings)
    states = process_states(settings)
    for name in names:
        if states.get(name) in ("RUNNING", "STARTING", "BACKOFF"):
            server.supervisor.stopProcess(name, True)

