"""The local KRaft cluster: a controller quorum apart from the brokers, so that either broker can die.

Each node is a supervised `kafka.Kafka` JVM with its own `server.properties` (listeners, SASL on
every listener, ACLs), its storage formatted once with the cluster's id. What is provisioned on
the running cluster (users, topics, their ACLs) is `runtime.kafka_provisioning`'s.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from pathlib import Path

from solar_platform import kafka_clients
from solar_platform.credentials import write_private
from solar_platform.runtime.host import java_home
from solar_platform.runtime.jars import ensure_jars
from solar_platform.runtime.processes import run_or_raise
from solar_platform.settings import Settings
from solar_platform.stack.supervisor import Program

_CONTROLLER, _CLIENT = "CONTROLLER", "CLIENT"  # listener names: the quorum's, and clients' and brokers'


def nodes(settings: Settings) -> list[tuple[str, int, int]]:
    """(role, node id, port) of every node: controllers 1.., brokers 101.."""
    controllers = [("controller", i + 1, port) for i, port in enumerate(settings.kafka_controller_ports)]
    brokers = [("broker", 100 + i + 1, port) for i, port in enumerate(settings.kafka_broker_ports)]
    return controllers + brokers


def program_name(role: str, node_id: int) -> str:
    return f"kafka-{role}-{node_id}"


def broker_programs(settings: Settings) -> list[str]:
    return [program_name(role, node_id) for role, node_id, _port in nodes(settings) if role == "broker"]


def programs(settings: Settings) -> list[Program]:
    """One supervised JVM per node; writes each node's config (and formats its storage) first."""
    # The JVM, the class path and the log config are the same for every node (and its storage format).
    java = str(java_home() / "bin" / "java")
    classpath = os.pathsep.join(map(str, ensure_jars(settings, "kafka")))
    log_config = f"-Dlog4j2.configurationFile={_write_log4j(settings)}"
    progs = []
    for role, node_id, port in nodes(settings):
        props = _write_properties(settings, role, node_id, port)
        _format_storage_once([java, "-cp", classpath, log_config], settings, props, f"{role}-{node_id}")
        progs.append(
            Program(
                name=program_name(role, node_id),
                command=[
                    java,
                    f"-Xmx{settings.kafka_heap}",
                    f"-Xms{settings.kafka_heap}",
                    "-XX:+UseG1GC",
                    "-Djava.awt.headless=true",
                    log_config,
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
    return progs


def brokers_ready(settings: Settings) -> bool:
    """Every broker has joined the cluster (as the admin sees it)."""
    try:
        with kafka_clients.admin(settings, request_timeout_ms=5000, bootstrap_timeout_ms=5000) as client:
            return len(client.describe_cluster()["brokers"]) >= len(settings.kafka_broker_ports)
    except Exception:  # noqa: BLE001 - any failure here just means "not ready yet"
        return False


# ---------------------------------------------------------------- node config
def _cluster_id(settings: Settings) -> str:
    path = settings.home_dir / "kafka" / "cluster.id"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
    return path.read_text().strip()


def _security_properties(settings: Settings, role: str) -> dict[str, object]:
    """SASL on every listener and ACLs on every node (docs/security.md).

    Clients authenticate on CLIENT with SCRAM-SHA-512 (the application users,
    `runtime.kafka_provisioning.ensure_kafka_users`) or PLAIN (the admin). The nodes talk to each
    other as the admin with PLAIN, whose password is in this config: it needs no SCRAM credential,
    so a cluster formatted before security still starts.
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


def _write_properties(settings: Settings, role: str, node_id: int, port: int) -> Path:
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
        **_security_properties(settings, role),
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
            # Retention is applied within 10 s rather than 5 min: the retention-overrun test waits for it
            # (a scan of a development stack's few logs costs nothing).
            "log.retention.check.interval.ms": 10_000,
        }
    path = node_dir / "server.properties"
    write_private(path, "".join(f"{key}={_property_value(value)}\n" for key, value in props.items()))
    return path


def _format_storage_once(java: list[str], settings: Settings, properties: Path, node: str) -> None:
    """Format a node's storage with the cluster's id, the first time only."""
    if (properties.parent / "data" / "meta.properties").exists():
        return
    run_or_raise([*java, "kafka.tools.StorageTool", "format", "-t", _cluster_id(settings), "-c", str(properties),
                  "--ignore-formatted"], f"formatting Kafka storage for {node}")


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
