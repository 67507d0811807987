"""The local stack on the real services: idempotent start, connection info, broker failover."""

import json
import subprocess
import sys
import time
import uuid

import pytest

from solar_platform import kafka_clients
from solar_platform.stack import kafka_nodes, lifecycle
from solar_platform.stack.supervisor import stop_programs, supervisor

pytestmark = pytest.mark.integration


def _pids(settings):
    info = supervisor(settings).supervisor.getAllProcessInfo()
    return {p["name"]: p["pid"] for p in info if p["statename"] == "RUNNING"}


def test_up_is_idempotent(stack_settings):
    before = _pids(stack_settings)
    lifecycle.stack_up(stack_settings, log=lambda _line: None)
    assert _pids(stack_settings) == before  # nothing restarted
    assert {"mariadb", "kafka-controller-1", "kafka-broker-101", "kafka-broker-102"} <= set(before)


def test_status_json_has_connection_info(stack_settings):
    out = subprocess.run(
        [sys.executable, "-m", "solar_platform", "stack", "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(out)
    # Users and where to reach them, never a password (those stay in the 0600 secrets file).
    assert report["mysql_url"] == "mysql+pymysql://solar_dagster@127.0.0.1:3307/solar"
    assert report["mysql_readonly_url"] == "mysql+pymysql://solar_reader@127.0.0.1:3307/solar"
    assert stack_settings.mysql_credentials("dagster")[1] not in out
    assert report["secrets_file"].endswith("secrets.env")
    assert report["kafka_bootstrap"] == stack_settings.kafka_bootstrap
    assert report["topic"] == "panelInfo"
    assert report["services"]["mariadb"] == "RUNNING"


def test_bad_config_exits_2_with_one_line(stack_settings):
    result = subprocess.run(
        [sys.executable, "-m", "solar_platform", "stack", "status"],
        capture_output=True,
        text=True,
        env={"SOLAR_MYSQL_PORT": "abc", "PATH": ""},
    )
    assert result.returncode == 2
    assert "SOLAR_MYSQL_PORT" in result.stderr and "Traceback" not in result.stderr


def test_topic_has_replication_factor_two(stack_settings):
    with kafka_clients.admin(stack_settings) as admin:
        [topic] = admin.describe_topics([stack_settings.topic])
    assert len(topic["partitions"]) == stack_settings.topic_partitions
    assert all(len(p["replica_nodes"]) == 2 for p in topic["partitions"])


def test_cluster_keeps_serving_when_a_broker_dies(kafka_stack):
    """Stop one broker: producing (acks=all, idempotent) and consuming still work on the other."""
    server = supervisor(kafka_stack).supervisor
    server.stopProcess("kafka-broker-101", True)
    try:
        producer = kafka_clients.producer(
            kafka_stack, "fleet", acks="all", enable_idempotence=True, request_timeout_ms=30000
        )
        marker = uuid.uuid4().hex
        for i in range(50):
            producer.send(kafka_stack.topic, key=f"p{i}".encode(), value=f"{marker}-{i}".encode())
        producer.flush(60)
        producer.close()
        consumer = kafka_clients.consumer(
            kafka_stack,
            kafka_stack.topic,
            auto_offset_reset="earliest",
            consumer_timeout_ms=20000,
            group_id=f"{kafka_clients.STREAM_GROUP_PREFIX}-failover-{marker}",  # a group the stream may use
        )
        seen = {m.value.decode() for m in consumer if m.value.decode().startswith(marker)}
        consumer.close()
        assert len(seen) == 50
    finally:
        server.startProcess("kafka-broker-101", True)
        deadline = time.monotonic() + 60
        while not kafka_nodes.brokers_ready(kafka_stack) and time.monotonic() < deadline:
            time.sleep(0.5)


def test_platform_api_runs_under_the_supervisor(stack_settings):
    """`up` starts the API as a supervised gunicorn on the read-only user; it answers on its port."""
    import urllib.request

    lifecycle.start_platform(stack_settings, ["api"])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{stack_settings.api_port}/api/v1/health") as response:
                    body = json.loads(response.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        assert body["database_reachable"] is True
    finally:
        stop_programs(stack_settings, ["api"])
