"""A Spark standalone cluster (one master, N workers) from pyspark's own distribution, supervised.

`pip install pyspark` ships Spark itself (`pyspark/bin/spark-class`, `pyspark/jars`), so the
master and the workers need nothing beyond the venv and Java. Each runs in the foreground under
the stack's supervisord, which restarts it when it dies, like every other service.

The programs live in a file of their own under `supervisor/conf.d/` (included by the main
config), so a cluster comes and goes without rewriting, or reloading, anyone else's programs:
`stack up` keeps the cluster named "spark" in step with `SOLAR_SPARK_WORKERS`, and tests start
clusters of their own beside it on free ports.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import time
import urllib.request
import xmlrpc.client
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from solar_platform.runtime.host import SetupError, java_home, port_is_open, require_free_ports
from solar_platform.settings import Settings
from solar_platform.stack.supervisor import (
    Program,
    apply_config,
    include_dir,
    process_states,
    program_section,
    start_program,
    supervisor,
    supervisor_running,
    wait_until_ready,
)

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
STACK_CLUSTER = "spark"  # the name `stack up` uses: programs spark-master, spark-worker-1, ...


def spark_home() -> Path:
    """The Spark distribution inside the installed pyspark package (found without importing it)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise SetupError("pyspark is not installed in this environment")
    home = Path(spec.origin).parent
    if not (home / "bin" / "spark-class").exists():
        raise SetupError(f"{home} has no bin/spark-class: pyspark's distribution is incomplete")
    return home


def _bind_address(host: str) -> str:
    # `auto` is for containers and several hosts: the address this machine's name resolves to.
    return socket.gethostbyname(socket.gethostname()) if host == "auto" else host


@dataclass(frozen=True)
class ClusterSpec:
    """Where a cluster listens and what its workers offer."""

    name: str
    host: str
    master_port: int
    master_ui_port: int
    worker_ui_ports: tuple[int, ...]
    worker_cores: int
    worker_memory: str

    @classmethod
    def from_settings(cls, settings: Settings, name: str = STACK_CLUSTER) -> ClusterSpec:
        return cls(
            name=name,
            host=_bind_address(settings.spark_host),
            master_port=settings.spark_master_port,
            master_ui_port=settings.spark_master_ui_port,
            worker_ui_ports=tuple(settings.spark_worker_ui_ports),
            worker_cores=settings.spark_worker_cores,
            worker_memory=settings.spark_worker_memory,
        )

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.master_port}"

    @property
    def master_ui_url(self) -> str:
        return f"http://{self.host}:{self.master_ui_port}"

    @property
    def master_program(self) -> str:
        return f"{self.name}-master"

    @property
    def worker_programs(self) -> list[str]:
        return [f"{self.name}-worker-{i + 1}" for i in range(len(self.worker_ui_ports))]

    @property
    def ui_urls(self) -> dict[str, str]:
        """Web UI of the master and of each worker, by program name."""
        urls = {self.master_program: self.master_ui_url}
        for program, port in zip(self.worker_programs, self.worker_ui_ports, strict=True):
            urls[program] = f"http://{self.host}:{port}"
        return urls

    @property
    def programs(self) -> list[str]:
        return [self.master_program, *self.worker_programs]


def daemon_env(host: str | None) -> dict[str, str]:
    """Environment of a master or worker: Spark's home, its address, UTC, and small daemons."""
    env = {
        "SPARK_HOME": str(spark_home()),
        "TZ": "UTC",
        # The daemons only coordinate: the memory that matters is the executors' (worker --memory).
        "SPARK_DAEMON_MEMORY": "256m",
        # Each application copies its jars into the work dir: drop them a day after it ends.
        "SPARK_WORKER_OPTS": "-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.appDataTtl=86400",
    }
    if host is not None:
        env["SPARK_LOCAL_IP"] = host
    return env


def master_command(host: str, port: int, ui_port: int) -> list[str]:
    return [str(spark_home() / "bin" / "spark-class"), MASTER_CLASS, "--host", host, "--port", str(port),
            "--webui-port", str(ui_port)]


def worker_command(host: str, ui_port: int, cores: int, memory: str, work_dir: Path, master_url: str) -> list[str]:
    return [str(spark_home() / "bin" / "spark-class"), WORKER_CLASS, "--host", host, "--webui-port", str(ui_port),
            "--cores", str(cores), "--memory", memory, "--work-dir", str(work_dir), master_url]


def cluster_programs(settings: Settings, spec: ClusterSpec) -> list[Program]:
    env = daemon_env(spec.host)
    master = Program(
        spec.master_program,
        master_command(spec.host, spec.master_port, spec.master_ui_port),
        priority=40,
        port=spec.master_port,
        stop_wait_seconds=15,
        environment=env,
    )
    workers = []
    for program, ui_port in zip(spec.worker_programs, spec.worker_ui_ports, strict=True):
        work_dir = settings.home_dir / "spark" / "work" / program
        work_dir.mkdir(parents=True, exist_ok=True)
        workers.append(Program(
            program,
            worker_command(spec.host, ui_port, spec.worker_cores, spec.worker_memory, work_dir, spec.master_url),
            priority=45,
            port=ui_port,
            stop_wait_seconds=15,
            environment=env,
        ))
    return [master, *workers]


def exec_daemon(settings: Settings, role: str) -> None:
    """Replace this process with a master or a worker in the foreground (compose's spark services).

    The settings decide everything: `SOLAR_SPARK_HOST` (`auto` = this container's address), the
    ports, the worker's cores and memory, and the master it joins (`SOLAR_SPARK_MASTER`).
    """
    host = _bind_address(settings.spark_host)
    if role == "master":
        command = master_command(host, settings.spark_master_port, settings.spark_master_ui_port)
    elif role == "worker":
        work_dir = settings.home_dir / "spark" / "work"
        work_dir.mkdir(parents=True, exist_ok=True)
        command = worker_command(host, settings.spark_worker_ui_port, settings.spark_worker_cores,
                                 settings.spark_worker_memory, work_dir, settings.spark_master_url)
        if not settings.spark_master_url.startswith("spark://"):
            raise SetupError("a Spark worker needs a spark:// master: set SOLAR_SPARK_MASTER or SOLAR_SPARK_WORKERS")
    else:
        raise ValueError(f"role must be 'master' or 'worker', not {role!r}")
    os.execve(command[0], command, {**os.environ, **daemon_env(host), "JAVA_HOME": str(java_home())})


def config_path(settings: Settings, name: str) -> Path:
    return include_dir(settings) / f"{name}.conf"


def master_state(spec: ClusterSpec, timeout: float = 5.0) -> dict:
    """The master's own JSON view (`/json/`): workers with their state, cores, memory; applications."""
    with urllib.request.urlopen(f"{spec.master_ui_url}/json/", timeout=timeout) as response:
        return json.load(response)


def alive_workers(spec: ClusterSpec) -> list[dict]:
    try:
        return [w for w in master_state(spec)["workers"] if w["state"] == "ALIVE"]
    except (OSError, ValueError, KeyError):
        return []


def wait_for_workers(spec: ClusterSpec, count: int, timeout: float = 120.0,
                     ready: Callable[[list[dict]], bool] | None = None) -> list[dict]:
    """Block until `count` workers are ALIVE on the master (and `ready` holds); returns them."""
    deadline = time.monotonic() + timeout
    while True:
        workers = alive_workers(spec)
        if len(workers) >= count and (ready is None or ready(workers)):
            return workers
        if time.monotonic() > deadline:
            raise SetupError(f"{len(workers)} of {count} Spark workers alive on {spec.master_url} after "
                             f"{timeout:.0f} s; see the logs of {', '.join(spec.programs)}")
        time.sleep(0.5)


def start_cluster(settings: Settings, spec: ClusterSpec, log: Callable[[str], None] = print) -> None:
    """Write the cluster's programs, start the master, then the workers; wait until all are ALIVE."""
    progs = cluster_programs(settings, spec)
    path = config_path(settings, spec.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(line for prog in progs for line in program_section(settings, prog))
    stale = [p for p in _configured_programs(path) if p not in spec.programs]  # fewer workers than before
    for name in stale:
        _stop(settings, name)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    apply_config(settings, only=spec.programs + stale)  # never anyone else's programs
    states = process_states(settings)
    require_free_ports({p.name: p.port for p in progs if p.port is not None
                        and states.get(p.name) not in ("RUNNING", "STARTING")})
    log(f"starting {spec.master_program} ({spec.master_url})")
    start_program(settings, spec.master_program)  # the stack's own start-and-report-why
    wait_until_ready(settings, "the Spark master", lambda: port_is_open(spec.master_port, spec.host), 60,
                     spec.master_program)
    for name in spec.worker_programs:
        log(f"starting {name}")
        start_program(settings, name)
    wait_for_workers(spec, len(spec.worker_programs))


def _configured_programs(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line[len("[program:"):-1] for line in path.read_text().splitlines() if line.startswith("[program:")]


def _stop(settings: Settings, name: str) -> None:
    with suppress(xmlrpc.client.Fault):  # not running, or not known (any more)
        supervisor(settings).supervisor.stopProcess(name, True)


def stop_cluster(settings: Settings, name: str) -> None:
    """Stop a cluster's workers, then its master, and forget its programs."""
    path = config_path(settings, name)
    programs = _configured_programs(path)
    if not programs or not supervisor_running(settings):
        path.unlink(missing_ok=True)
        return
    for program in sorted(programs, key=lambda p: p.endswith("-master")):  # workers first
        _stop(settings, program)
    path.unlink(missing_ok=True)
    apply_config(settings, only=programs)


def reconcile(settings: Settings, log: Callable[[str], None] = print) -> None:
    """`stack up`'s part: the cluster "spark" runs with SOLAR_SPARK_WORKERS workers, or not at all."""
    if settings.spark_workers:
        start_cluster(settings, ClusterSpec.from_settings(settings), log)
        log(f"spark: {settings.spark_workers} worker(s) at {settings.spark_master_url}")
    elif config_path(settings, STACK_CLUSTER).exists():
        log("stopping the Spark cluster (SOLAR_SPARK_WORKERS=0)")
        stop_cluster(settings, STACK_CLUSTER)
