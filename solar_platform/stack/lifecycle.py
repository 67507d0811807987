"""The local stack without Docker, as a whole: up, down, the platform's processes, and its status.

`stack_up` starts MariaDB and the Kafka cluster under supervisord, waits until each really
answers, and provisions what the platform expects (database, users, schema, topic); then keeps
the Spark cluster in step with the settings. Every step is idempotent, so `up` on a running stack
restarts nothing whose config did not change.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from solar_platform.credentials import ensure_secrets, secrets_path
from solar_platform.runtime.host import java_home, port_is_open, require_free_ports
from solar_platform.runtime.kafka_provisioning import ensure_kafka_users, ensure_topic
from solar_platform.settings import Settings, stored_secrets
from solar_platform.stack import kafka_nodes, mariadb, platform_programs, spark_cluster
from solar_platform.stack.platform_programs import PLATFORM_PROGRAMS, dagster_home
from solar_platform.stack.supervisor import (
    Program,
    log_dir,
    process_states,
    socket_path,
    start_program,
    start_supervisor,
    supervisor,
    supervisor_running,
    wait_until_ready,
)


def programs(settings: Settings) -> list[Program]:
    """Every program supervisord knows: MariaDB, the Kafka nodes, the platform's own (off by default)."""
    return [mariadb.program(settings), *kafka_nodes.programs(settings), *platform_programs.programs(settings)]


def with_stack_secrets(settings: Settings) -> Settings:
    """`settings` with the stack's generated secrets filled in where neither env nor `.env` set one
    (made on the first start, kept in `<home>/secrets.env`, mode 0600)."""
    ensure_secrets(settings.home_dir)
    missing = {name: value for name, value in stored_secrets(settings.home_dir).items()
               if getattr(settings, name) is None}
    return settings.model_copy(update=missing) if missing else settings


def stack_up(settings: Settings, log: Callable[[str], None] = print) -> Settings:
    """Start MariaDB and Kafka (idempotent), then provision the database, schema and topic.

    Returns the settings with the stack's secrets (generated on the first start)."""
    from solar_platform.storage.migrations import migrate

    settings.home_dir.mkdir(parents=True, exist_ok=True)
    settings = with_stack_secrets(settings)
    java_home()  # fail early and clearly without Java
    mariadb.ensure_data_dir(settings)
    progs = programs(settings)
    states = process_states(settings)
    if not states:  # nothing of ours runs: every port we will bind must be free
        require_free_ports({p.name: p.port for p in progs if p.port is not None and p.autostart})
    start_supervisor(settings, progs)

    log("starting mariadb")
    start_program(settings, mariadb.PROGRAM)
    wait_until_ready(settings, "MariaDB", lambda: mariadb.mysql_ready(settings), 60, mariadb.PROGRAM)
    mariadb.provision_database(settings)
    applied = migrate(settings)
    log(f"schema: {'applied ' + ', '.join(applied) if applied else 'up to date'}")

    for role, node_id, _port in kafka_nodes.nodes(settings):
        name = kafka_nodes.program_name(role, node_id)
        log(f"starting {name}")
        start_program(settings, name)
    wait_until_ready(settings, "the Kafka brokers", lambda: kafka_nodes.brokers_ready(settings), 120,
                     kafka_nodes.broker_programs(settings)[0])
    ensure_kafka_users(settings)
    ensure_topic(settings)
    log(f"topic {settings.topic}: {settings.topic_partitions} partitions, RF {settings.topic_replication}")

    spark_cluster.reconcile(settings, log)  # a master and SOLAR_SPARK_WORKERS workers, or none
    return settings


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
        start_program(settings, name)


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
        "mysql_ready": port_is_open(settings.mysql_port) and mariadb.mysql_ready(settings),
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
    return spark_cluster.ClusterSpec.from_settings(settings).ui_urls
