"""The local stack without Docker: MariaDB and a KRaft Kafka cluster, run under supervisord.

supervisord (a well-kept process supervisor) owns every long-running process: it restarts them,
keeps their logs, and stops them in order. This module writes its config, starts it, waits until
each service really answers, and provisions what the platform expects (database, users, topic).
The platform's own processes (Dagster, API, fleet, stream) are defined here too, off by default;
`solar-platform up` starts them.
"""

from __future__ import annotations

import base64
import hashlib
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

from solar_platform import kafka_clients
from solar_platform.credentials import ensure_secrets, read_secrets, secrets_path
from solar_platform.runtime.host import SetupError, find_program, java_home, port_is_open, require_free_ports
from solar_platform.runtime.jars import ensure_jars
from solar_platform.settings import KafkaRole, Settings

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
                # supervisord restarts a program whose section changed: so does a node whose config did.
                environment={"CONFIG_DIGEST": hashlib.sha256(props.read_bytes()).hexdigest()[:16]},
            )
        )
    return programs


def _python() -> str:
    # The venv's interpreter by a stable path: sys.executable differs between `python` and
    # `python3` launchers, and a config that differs restarts every supervised process.
    return str(Path(sys.prefix) / "bin" / "python")


def _platform_programs(settings: Settings) -> list[Program]:
    cli = [_python(), "-m", "solar_platform"]
    dagster_env = {"DAGSTER_HOME": str(settings.home_dir / "dagster"), "SOLAR_MYSQL_ROLE": "dagster"}
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
_CONTROLLER, _CLIENT = "CONTROLLER", "CLIENT"  # listener names: the quorum's, and clients' and brokers'


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


def _kafka_security_properties(settings: Settings, role: str) -> dict[str, object]:
    """SASL on every listener and ACLs on every node (docs/security.md).

    Clients authenticate on CLIENT with SCRAM-SHA-512 (the application users, `ensure_kafka_users`)
    or PLAIN (the admin). The nodes talk to each other as the admin with PLAIN, whose password is
    in this config: it needs no SCRAM credential, so a cluster formatted before security still starts.
    """
    admin_user, admin_password = settings.kafka_credentials("admin")
    protocol = kafka_clients.SECURITY_PROTOCOL
    plain, scram = kafka_clients.ADMIN_MECHANISM, kafka_clients.SCRAM_MECHANISM
    controller, client = _CONTROLLER.lower(), _CLIENT.lower()
    # Client side (username/password: this node connecting) and server side (user_<name>: who may log in).
    plain_jaas = kafka_clients.jaas_config(
        kafka_clients.LOGIN_MODULES[plain],
        username=admin_user, password=admin_password, **{f"user_{admin_user}": admin_password},
    )
    props: dict[str, object] = {
        "listener.security.protocol.map": f"{_CONTROLLER}:{protocol},{_CLIENT}:{protocol}",
        "sasl.mechanism.controller.protocol": plain,
        f"listener.name.{controller}.sasl.enabled.mechanisms": plain,
        f"listener.name.{controller}.{plain.lower()}.sasl.jaas.config": plain_jaas,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": kafka_clients.principal(settings, "admin"),
        "allow.everyone.if.no.acl.found": "false",
    }
    if role == "broker":
        props |= {
            "sasl.mechanism.inter.broker.protocol": plain,
            f"listener.name.{client}.sasl.enabled.mechanisms": f"{scram},{plain}",
            f"listener.name.{client}.{plain.lower()}.sasl.jaas.config": plain_jaas,
            # SCRAM's server side needs no options: the credentials live in the cluster metadata.
            f"listener.name.{client}.{scram.lower()}.sasl.jaas.config":
                kafka_clients.jaas_config(kafka_clients.LOGIN_MODULES[scram]),
        }
    return props


def _property_value(value: object) -> str:
    """A Java properties value: a backslash is an escape there, so it is doubled (JAAS values may hold some)."""
    return str(value).replace("\\", "\\\\")


def _write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read, from the first byte (it holds passwords)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_TRUNC


def _write_kafka_properties(settings: Settings, role: str, node_id: int, port: int) -> Path:
    node_dir = settings.home_dir / "kafka" / f"{role}-{node_id}"
    node_dir.mkdir(parents=True, exist_ok=True)
    voters = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(settings.kafka_controller_ports))
    internal_rf = min(2, len(settings.kafka_broker_ports))
    props = {
        "process.roles": role,
        "node.id": node_id,
        "controller.quorum.voters": voters,
        "controller.listener.names": _CONTROLLER,
        "log.dirs": node_dir / "data",
        "num.partitions": settings.topic_partitions,
        "group.initial.rebalance.delay.ms": 0,
        "auto.create.topics.enable": "false",
        **_kafka_security_properties(settings, role),
    }
    if role == "controller":
        props["listeners"] = f"{_CONTROLLER}://127.0.0.1:{port}"
    else:
        props |= {
            "listeners": f"{_CLIENT}://127.0.0.1:{port}",
            "advertised.listeners": f"{_CLIENT}://127.0.0.1:{port}",
            "inter.broker.listener.name": _CLIENT,
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
    _write_private(path, "".join(f"{key}={_property_value(value)}\n" for key, value in props.items()))
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
            raise SetupError(f"formatting Kafka storage for {role}-{node_id} failed:\n{result.stdout}{result.stderr}")
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
        raise SetupError(f"mariadb-install-db failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


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
    """Create the database and the platform's users for it, as root (idempotent; storage/users.py)."""
    from solar_platform.storage.users import provision_statements

    with admin_connection(settings) as conn, conn.cursor() as cur:
        for statement, parameters in provision_statements(settings, database or settings.mysql_database, "127.0.0.1"):
            cur.execute(statement, parameters or None)


@contextmanager
def scratch_environment(base: Settings, name: str, *, keep: bool = False) -> Iterator[Settings]:
    """A brand-new migrated database and topic called `name` on the running stack (tests, benchmarks).

    Dropped afterwards, with the topic and the stream's checkpoints, unless `keep`.
    """
    import shutil

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
            drop_topic(settings, name)
            shutil.rmtree(settings.checkpoint_dir, ignore_errors=True)


def drop_database(settings: Settings, database: str) -> None:
    """Drop a database and every grant on it (grants outlive a DROP DATABASE otherwise)."""
    with admin_connection(settings) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        cur.execute("DELETE FROM mysql.tables_priv WHERE Db = %s", (database,))
        cur.execute("DELETE FROM mysql.db WHERE Db = %s", (database,))
        cur.execute("FLUSH PRIVILEGES")


# ---------------------------------------------------------------- kafka users and topic
def ensure_kafka_users(settings: Settings) -> None:
    """Create or update the application users' SCRAM credentials, as admin (idempotent)."""
    from kafka.admin import UserScramCredentialUpsertion

    upserts = []
    for role in kafka_clients.APP_ROLES:
        user, password = settings.kafka_credentials(role)
        upserts.append(UserScramCredentialUpsertion(user, kafka_clients.SCRAM_MECHANISM, password))
    with kafka_clients.admin(settings, request_timeout_ms=30000) as client:
        errors = {user: error for user, error in client.alter_user_scram_credentials(upserts).items() if error}
    if errors:
        raise SetupError(f"could not set the Kafka users' SCRAM credentials: {errors}")


def ensure_topic(settings: Settings, topic: str | None = None, *, role: KafkaRole = "admin") -> None:
    """Create the topic with the configured partitions and RF, or grow its partitions to match.

    As admin (the stack, compose's `topic` job, tests' scratch topics) it first grants the
    application users their rights on it (`kafka_clients.topic_acls`), before the topic exists: a
    broker applies metadata in order, so whoever sees the topic sees its ACLs. Dagster's
    `kafka_topic` asset runs it as `dagster`, which may create and grow that topic only.
    """
    from kafka.admin import NewPartitions, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    name = topic or settings.topic
    with kafka_clients.admin(settings, role, request_timeout_ms=30000) as client:
        if role == "admin":
            failed = client.create_acls(kafka_clients.topic_acls(settings, name))["failed"]
            if failed:
                raise SetupError(f"could not grant the Kafka users their rights on topic {name}: {failed}")
        try:
            client.create_topics([NewTopic(name, settings.topic_partitions, settings.topic_replication)])
        except TopicAlreadyExistsError:
            described = client.describe_topics([name])[0]
            current = len(described["partitions"])
            if current < settings.topic_partitions:
                client.create_partitions({name: NewPartitions(total_count=settings.topic_partitions)})


def drop_topic(settings: Settings, topic: str) -> None:
    """Delete a topic and the ACLs `ensure_topic` granted on it, as admin."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    on_topic = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                         ResourcePatternFilter(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL))
    with kafka_clients.admin(settings, request_timeout_ms=30000) as client:
        client.delete_topics([topic])
        client.delete_acls([on_topic])


def _kafka_brokers_ready(settings: Settings) -> bool:
    try:
        with kafka_clients.admin(settings, request_timeout_ms=5000, bootstrap_timeout_ms=5000) as client:
            return len(client.describe_cluster()["brokers"]) >= len(settings.kafka_broker_ports)
    except Exception:  # noqa: BLE001 - any failure here just means "not ready yet"
        return False


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
    raise SetupError(f"{what} did not become ready within {timeout:.0f} s; {_log_tail(settings, log_name)}")


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
            raise SetupError(f"{name} failed to start ({fault.faultString}); {_log_tail(settings, name)}") from fault


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
        raise SetupError(f"supervisord failed to start:\n{result.stderr}")
    _wait("supervisord", lambda: supervisor_running(settings), 15, settings, "supervisord")


def with_stack_secrets(settings: Settings) -> Settings:
    """`settings` with the stack's generated secrets filled in where neither env nor `.env` set one
    (made on the first start, kept in `<home>/secrets.env`, mode 0600)."""
    ensure_secrets(settings.home_dir)
    stored = read_secrets(settings.home_dir)
    missing = {}
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias.choices[0]  # type: ignore[union-attr]
        if alias in stored and getattr(settings, name) is None:
            missing[name] = stored[alias]
    return settings.model_copy(update=missing) if missing else settings


def stack_up(settings: Settings, log: Callable[[str], None] = print) -> Settings:
    """Start MariaDB and Kafka (idempotent), then provision the database, schema and topic.

    Returns the settings with the stack's secrets (generated on the first start)."""
    from solar_platform.storage.db import migrate

    settings.home_dir.mkdir(parents=True, exist_ok=True)
    settings = with_stack_secrets(settings)
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
    ensure_kafka_users(settings)
    ensure_topic(settings)
    log(f"topic {settings.topic}: {settings.topic_partitions} partitions, RF {settings.topic_replication}")

    from solar_platform.stack import spark_cluster  # imports this module

    spark_cluster.reconcile(settings, log)  # a master and SOLAR_SPARK_WORKERS workers, or none
    return settings


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
        raise SetupError(f"could not launch Dagster job {job}:\n{result.stderr[-2000:]}")


def status(settings: Settings) -> dict[str, object]:
    states = process_states(settings)
    return {
        "supervisor": "RUNNING" if states else "STOPPED",
        "services": states,
        # Users, never passwords: those stay in the 0600 secrets file.
        "mysql_url": _mysql_address(settings, settings.mysql_dagster_user),
        "mysql_readonly_url": _mysql_address(settings, settings.mysql_readonly_user),
        "secrets_file": str(secrets_path(settings.home_dir)),
        "kafka_bootstrap": settings.kafka_bootstrap,
        "topic": settings.topic,
        "dagster_url": f"http://127.0.0.1:{settings.dagster_port}",
        "api_url": f"http://{settings.api_host}:{settings.api_port}",
        "mysql_ready": port_is_open(settings.mysql_port) and _mysql_ready(settings),
        "spark_master": settings.spark_master_url,
        "spark_ui_urls": _spark_ui_urls(settings),
        "logs": str(log_dir(settings)),
    }


def _mysql_address(settings: Settings, user: str) -> str:
    return f"mysql+pymysql://{user}@{settings.mysql_host}:{settings.mysql_port}/{settings.mysql_database}"


def _spark_ui_urls(settings: Settings) -> dict[str, str]:
    """Web UIs of the local Spark cluster's master and workers (none when SOLAR_SPARK_WORKERS=0)."""
    if not settings.spark_workers:
        return {}
    from solar_platform.stack.spark_cluster import ClusterSpec

    return ClusterSpec.from_settings(settings).ui_urls
