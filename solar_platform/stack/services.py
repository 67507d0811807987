"""The local stack without Docker: MariaDB and a KRaft Kafka cluster, run under supervisord.

supervisord (a well-kept process supervisor) owns every long-running process: it restarts them,
keeps their logs, and stops them in order. This module writes its config, starts it, waits until
each service really answers, and provisions what the platform expects (database, users, topic).
The platform's own processes (Dagster, API, fleet, stream) are defined here too, off by default;
`solar-platform up` starts them.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
import xmlrpc.client
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymysql

from solar_platform.settings import Settings
from solar_platform.stack.jars import ensure_jars
from solar_platform.stack.preflight import StackError, find_program, java_home, port_is_open, require_free_ports

PROJECT_DIR = Path(__file__).resolve().parents[2]
STACK_PROGRAMS = ("mariadb", "kafka")  # supervisor groups of the data services
PLATFORM_PROGRAMS = ("dagster-webserver", "dagster-daemon", "api", "fleet", "stream")


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


def mysql_socket(settings: Settings) -> Path:
    return settings.home_dir / "mariadb" / "mariadb.sock"


def log_dir(settings: Settings) -> Path:
    return settings.home_dir / "logs"


# ---------------------------------------------------------------- supervisor client
class _UnixTransport(xmlrpc.client.Transport):
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


# ---------------------------------------------------------------- programs
def _kafka_programs(settings: Settings) -> list[Program]:
    jars = ensure_jars(settings, "kafka")
    classpath = os.pathsep.join(str(j) for j in jars)
    java = str(java_home() / "bin" / "java")
    programs = []
    for role, node_id, port in _kafka_nodes(settings):
        props = _write_kafka_properties(settings, role, node_id, port)
        programs.append(
            Program(
                name=f"kafka-{role}-{node_id}",
                command=[
                    java,
                    f"-Xmx{settings.kafka_heap}",
                    f"-Xms{settings.kafka_heap}",
                    "-XX:+UseG1GC",
                    "-Djava.awt.headless=true",
                    f"-Dlog4j2.configurationFile={_write_log4j(settings)}",
                    "-cp",
                    classpath,
                    "kafka.Kafka",
                    str(props),
                ],
                priority=20 if role == "controller" else 30,
                port=port,
            )
        )
    return programs


def _python() -> str:
    # The venv's interpreter by a stable path: sys.executable differs between `python` and
    # `python3` launchers, and a config that differs restarts every supervised process.
    return str(Path(sys.prefix) / "bin" / "python")


def _platform_programs(settings: Settings) -> list[Program]:
    cli = [_python(), "-m", "solar_platform"]
    dagster_env = {"DAGSTER_HOME": str(settings.home_dir / "dagster")}
    bin_dir = Path(sys.prefix) / "bin"
    return [
        Program(
            "dagster-webserver",
            [
                str(bin_dir / "dagster-webserver"),
                "-w",
                str(PROJECT_DIR / "workspace.yaml"),
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
            [str(bin_dir / "dagster-daemon"), "run", "-w", str(PROJECT_DIR / "workspace.yaml")],
            priority=60,
            autostart=False,
            environment=dagster_env,
        ),
        Program("api", [*cli, "api", "serve"], priority=70, port=settings.api_port, autostart=False),
        Program("fleet", [*cli, "fleet", "run"], priority=80, autostart=False),
        Program(
            "stream",
            [*cli, "stream", "run", "--trigger", "continuous"],
            priority=80,
            autostart=False,
            stop_wait_seconds=60,
        ),
    ]


def programs(settings: Settings) -> list[Program]:
    mariadbd = find_program(
        "mariadbd", "Install Debian's MariaDB server: apt-get install mariadb-server (it need not run as a service)."
    )
    datadir = settings.home_dir / "mariadb" / "data"
    mariadb = Program(
        "mariadb",
        [
            mariadbd,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--socket={mysql_socket(settings)}",
            f"--port={settings.mysql_port}",
            "--bind-address=127.0.0.1",
            "--user=root" if os.geteuid() == 0 else "",
            "--default-time-zone=+00:00",
            # 4 GiB of the 24: the hot day partitions, the 15-min buckets and the latest rows stay
            # in memory at 50M readings; a larger redo log spaces out checkpoint flushes under
            # the stream's steady upserts.
            "--innodb-buffer-pool-size=4G",
            "--innodb-log-file-size=512M",
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=300",
            "--local-infile=1",
            "--skip-name-resolve",
            f"--pid-file={settings.home_dir / 'mariadb' / 'mariadbd.pid'}",
        ],
        priority=10,
        port=settings.mysql_port,
    )
    mariadb = Program(mariadb.name, [arg for arg in mariadb.command if arg], mariadb.priority, mariadb.port)
    return [mariadb, *_kafka_programs(settings), *_platform_programs(settings)]


def include_dir(settings: Settings) -> Path:
    """Extra program files supervisord includes (the Spark cluster, tests' own clusters)."""
    return supervisor_dir(settings) / "conf.d"


def _base_env() -> dict[str, str]:
    return {
        "JAVA_HOME": str(java_home()),
        "PYSPARK_PYTHON": _python(),
        "PYSPARK_DRIVER_PYTHON": _python(),
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


def _write_supervisor_config(settings: Settings, progs: Iterable[Program]) -> Path:
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


def _quote(arg: str) -> str:
    # supervisor splits command= with shlex; '%' must be doubled for its own expansion
    escaped = arg.replace("%", "%%")
    return f'"{escaped}"' if any(c in escaped for c in " \t\"'") else escaped


# ---------------------------------------------------------------- kafka config
def _kafka_nodes(settings: Settings) -> list[tuple[str, int, int]]:
    controllers = [("controller", i + 1, port) for i, port in enumerate(settings.kafka_controller_ports)]
    brokers = [("broker", 100 + i + 1, port) for i, port in enumerate(settings.kafka_broker_ports)]
    return controllers + brokers


def _cluster_id(settings: Settings) -> str:
    path = settings.home_dir / "kafka" / "cluster.id"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
    return path.read_text().strip()


def _write_kafka_properties(settings: Settings, role: str, node_id: int, port: int) -> Path:
    node_dir = settings.home_dir / "kafka" / f"{role}-{node_id}"
    node_dir.mkdir(parents=True, exist_ok=True)
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(settings.kafka_controller_ports))
    internal_rf = min(2, len(settings.kafka_broker_ports))
    props = {
        "process.roles": role,
        "node.id": node_id,
        "controller.quorum.voters": voters,
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": node_dir / "data",
        "num.partitions": settings.topic_partitions,
        "group.initial.rebalance.delay.ms": 0,
        "auto.create.topics.enable": "false",
    }
    if role == "controller":
        props["listeners"] = f"CONTROLLER://127.0.0.1:{port}"
    else:
        props |= {
            "listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "inter.broker.listener.name": "PLAINTEXT",
            # Either broker may die: internal topics fit on the brokers there are, and one
            # in-sync replica is enough to keep accepting acks=all writes.
            "offsets.topic.replication.factor": internal_rf,
            "transaction.state.log.replication.factor": internal_rf,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": internal_rf,
            "share.coordinator.state.topic.min.isr": 1,
            "default.replication.factor": settings.topic_replication,
            "min.insync.replicas": 1,
            "unclean.leader.election.enable": "false",
        }
    path = node_dir / "server.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    if not (node_dir / "data" / "meta.properties").exists():
        jars = ensure_jars(settings, "kafka")
        result = subprocess.run(
            [
                str(java_home() / "bin" / "java"),
                "-cp",
                os.pathsep.join(map(str, jars)),
                f"-Dlog4j2.configurationFile={_write_log4j(settings)}",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(settings),
                "-c",
                str(path),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage for {role}-{node_id} failed:\n{result.stdout}{result.stderr}")
    return path


def _write_log4j(settings: Settings) -> Path:
    path = settings.home_dir / "kafka" / "log4j2.properties"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "appender.out.type=Console\nappender.out.name=STDOUT\nappender.out.layout.type=PatternLayout\n"
        "appender.out.layout.pattern=[%d] %p %m (%c)%n\n"
        "rootLogger.level=WARN\nrootLogger.appenderRef.out.ref=STDOUT\n"
        "logger.server.name=kafka.server\nlogger.server.level=INFO\n"
    )
    return path


# ---------------------------------------------------------------- mariadb
def _ensure_mariadb_datadir(settings: Settings) -> None:
    datadir = settings.home_dir / "mariadb" / "data"
    if (datadir / "mysql").exists():
        return
    install = find_program("mariadb-install-db", "Install Debian's MariaDB server: apt-get install mariadb-server.")
    datadir.mkdir(parents=True, exist_ok=True)
    args = [
        install,
        "--no-defaults",
        f"--datadir={datadir}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
    ]
    if os.geteuid() == 0:
        args.append("--user=root")
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(f"mariadb-install-db failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def admin_connection(settings: Settings, database: str | None = None) -> pymysql.Connection:
    """root over the stack's private unix socket (root has no TCP access)."""
    return pymysql.connect(
        unix_socket=str(mysql_socket(settings)),
        user="root",
        database=database,
        autocommit=True,
        init_command="SET time_zone = '+00:00'",
    )


def provision_database(settings: Settings, database: str | None = None) -> None:
    """Create the database and the writer / read-only users for it (idempotent)."""
    db = database or settings.mysql_database
    with admin_connection(settings) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4")
        for user, password in (
            (settings.mysql_writer_user, settings.mysql_writer_password),
            (settings.mysql_readonly_user, settings.mysql_readonly_password),
        ):
            cur.execute("CREATE USER IF NOT EXISTS %s@'127.0.0.1' IDENTIFIED BY %s", (user, password))
            cur.execute("ALTER USER %s@'127.0.0.1' IDENTIFIED BY %s", (user, password))
        cur.execute(f"GRANT ALL PRIVILEGES ON `{db}`.* TO %s@'127.0.0.1'", (settings.mysql_writer_user,))
        cur.execute(f"GRANT SELECT ON `{db}`.* TO %s@'127.0.0.1'", (settings.mysql_readonly_user,))


@contextmanager
def scratch_environment(base: Settings, name: str, *, keep: bool = False) -> Iterator[Settings]:
    """A brand-new migrated database and topic called `name` on the running stack (tests, benchmarks).

    Dropped afterwards, with the topic and the stream's checkpoints, unless `keep`.
    """
    import shutil

    from kafka.admin import KafkaAdminClient

    from solar_platform.storage.db import migrate

    settings = base.model_copy(update={"mysql_database": name, "topic": name})
    provision_database(settings)
    migrate(settings)
    ensure_topic(settings)
    try:
        yield settings
    finally:
        if not keep:
            drop_database(settings, name)
            admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
            try:
                admin.delete_topics([name])
            finally:
                admin.close()
            shutil.rmtree(settings.checkpoint_dir, ignore_errors=True)


def drop_database(settings: Settings, database: str) -> None:
    with admin_connection(settings) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")


# ---------------------------------------------------------------- kafka topic
def ensure_topic(settings: Settings, topic: str | None = None) -> None:
    """Create the topic with the configured partitions and RF, or grow its partitions to match."""
    from kafka.admin import KafkaAdminClient, NewPartitions, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    name = topic or settings.topic
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="solar-stack", request_timeout_ms=30000
    )
    try:
        try:
            admin.create_topics([NewTopic(name, settings.topic_partitions, settings.topic_replication)])
        except TopicAlreadyExistsError:
            described = admin.describe_topics([name])[0]
            current = len(described["partitions"])
            if current < settings.topic_partitions:
                admin.create_partitions({name: NewPartitions(total_count=settings.topic_partitions)})
    finally:
        admin.close()


def _kafka_brokers_ready(settings: Settings) -> bool:
    from kafka.admin import KafkaAdminClient

    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=5000)
    except Exception:  # noqa: BLE001 - any failure here just means "not ready yet"
        return False
    try:
        return len(admin.describe_cluster()["brokers"]) >= len(settings.kafka_broker_ports)
    except Exception:  # noqa: BLE001
        return False
    finally:
        admin.close()


def _mysql_ready(settings: Settings) -> bool:
    try:
        admin_connection(settings).close()
        return True
    except pymysql.Error:
        return False


def _log_tail(settings: Settings, program: str, lines: int = 20) -> str:
    """The last lines of a supervised program's log, for error messages that say why."""
    log = log_dir(settings) / f"{program}.log"
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"
    return f"last lines of {log}:\n{tail}"


def _wait(what: str, ready: Callable[[], bool], timeout: float, settings: Settings, log_name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.3)
    raise StackError(f"{what} did not become ready within {timeout:.0f} s; {_log_tail(settings, log_name)}")


# ---------------------------------------------------------------- lifecycle
def _start(settings: Settings, name: str) -> None:
    server = supervisor(settings)
    state = server.supervisor.getProcessInfo(name)["statename"]
    if state not in ("RUNNING", "STARTING"):
        try:
            server.supervisor.startProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if "ALREADY_STARTED" in fault.faultString:  # supervisord's autorestart got there first
                return
            raise StackError(f"{name} failed to start ({fault.faultString}); {_log_tail(settings, name)}") from fault


def _start_supervisor(settings: Settings, progs: list[Program]) -> None:
    config = _write_supervisor_config(settings, progs)
    if supervisor_running(settings):
        server = supervisor(settings)
        added, changed, removed = server.supervisor.reloadConfig()[0]
        priority = {p.name: p.priority for p in progs}
        # Stop dependants first (brokers before their controllers), as supervisord does on shutdown.
        for name in sorted(changed + removed, key=lambda n: -priority.get(n, 0)):
            server.supervisor.stopProcessGroup(name)
            server.supervisor.removeProcessGroup(name)
        for name in added + changed:
            server.supervisor.addProcessGroup(name)
        return
    result = subprocess.run(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(config)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise StackError(f"supervisord failed to start:\n{result.stderr}")
    _wait("supervisord", lambda: supervisor_running(settings), 15, settings, "supervisord")


def stack_up(settings: Settings, log: Callable[[str], None] = print) -> None:
    """Start MariaDB and Kafka (idempotent), then provision the database, schema and topic."""
    from solar_platform.storage.db import migrate

    settings.home_dir.mkdir(parents=True, exist_ok=True)
    java_home()  # fail early and clearly without Java
    _ensure_mariadb_datadir(settings)
    progs = programs(settings)
    states = process_states(settings)
    if not states:  # nothing of ours runs: every port we will bind must be free
        require_free_ports({p.name: p.port for p in progs if p.port is not None and p.autostart})
    _start_supervisor(settings, progs)

    log("starting mariadb")
    _start(settings, "mariadb")
    _wait("MariaDB", lambda: _mysql_ready(settings), 60, settings, "mariadb")
    provision_database(settings)
    applied = migrate(settings)
    log(f"schema: {'applied ' + ', '.join(applied) if applied else 'up to date'}")

    for prog in progs:
        if prog.name.startswith("kafka-"):
            log(f"starting {prog.name}")
            _start(settings, prog.name)
    _wait("the Kafka brokers", lambda: _kafka_brokers_ready(settings), 120, settings, f"kafka-broker-{100 + 1}")
    ensure_topic(settings)
    log(f"topic {settings.topic}: {settings.topic_partitions} partitions, RF {settings.topic_replication}")

    from solar_platform.stack import spark_cluster  # imports this module

    spark_cluster.reconcile(settings, log)  # a master and SOLAR_SPARK_WORKERS workers, or none


def stop_programs(settings: Settings, names: Iterable[str]) -> None:
    if not supervisor_running(settings):
        return
    server = supervisor(settings)
    states = process_states(settings)
    for name in names:
        if states.get(name) in ("RUNNING", "STARTING", "BACKOFF"):
            server.supervisor.stopProcess(name, True)


def stack_down(settings: Settings) -> None:
    """Stop everything supervisord runs (in reverse priority), then supervisord itself."""
    if not supervisor_running(settings):
        return
    server = supervisor(settings)
    server.supervisor.stopAllProcesses(True)
    server.supervisor.shutdown()
    deadline = time.monotonic() + 60
    while socket_path(settings).exists() and supervisor_running(settings) and time.monotonic() < deadline:
        time.sleep(0.2)


def dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME for the webserver and daemon: local SQLite storage, telemetry off (loopback only),
    and no newsletter pop-up over the operator's first view of the UI."""
    home = settings.home_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    return home


def start_platform(settings: Settings, names: Iterable[str] = PLATFORM_PROGRAMS) -> None:
    """Start the platform's own processes (stack must be up)."""
    names = list(names)
    dagster_home(settings)
    states = process_states(settings)
    require_free_ports(
        {
            n: p
            for n, p in (("dagster-webserver", settings.dagster_port), ("api", settings.api_port))
            if n in names and states.get(n) != "RUNNING"
        }
    )
    for name in names:
        _start(settings, name)


def launch_dagster_job(settings: Settings, job: str) -> None:
    """Queue a run of a Dagster job on the platform's instance (the daemon executes it)."""
    result = subprocess.run(
        [
            str(Path(sys.prefix) / "bin" / "dagster"),
            "job",
            "launch",
            "-w",
            str(PROJECT_DIR / "workspace.yaml"),
            "-j",
            job,
        ],
        cwd=PROJECT_DIR,
        env={**os.environ, "DAGSTER_HOME": str(dagster_home(settings))},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(f"could not launch Dagster job {job}:\n{result.stderr[-2000:]}")


def status(settings: Settings) -> dict[str, object]:
    states = process_states(settings)
    return {
        "supervisor": "RUNNING" if states else "STOPPED",
        "services": states,
        "mysql_url": settings.mysql_url(),
        "mysql_readonly_url": settings.mysql_readonly_url,
        "kafka_bootstrap": settings.kafka_bootstrap,
        "topic": settings.topic,
        "dagster_url": f"http://127.0.0.1:{settings.dagster_port}",
        "api_url": f"http://{settings.api_host}:{settings.api_port}",
        "mysql_ready": port_is_open(settings.mysql_port) and _mysql_ready(settings),
        "spark_master": settings.spark_master_url,
        "spark_ui_urls": _spark_ui_urls(settings),
        "logs": str(log_dir(settings)),
    }


def _spark_ui_urls(settings: Settings) -> dict[str, str]:
    """Web UIs of the local Spark cluster's master and workers (none when SOLAR_SPARK_WORKERS=0)."""
    if not settings.spark_workers:
        return {}
    from solar_platform.stack.spark_cluster import ClusterSpec

    return ClusterSpec.from_settings(settings).ui_urls
