"""Every Kafka client of the platform, made in one place: kafka-python's and the Spark connector's.

Each part connects as its own user (`KafkaRole`: the fleet writes, the stream reads, Dagster
creates and describes, `admin` is the brokers' own), so the ACLs on the brokers decide what it may do
(`topic_acls`, applied by `runtime.kafka_provisioning.ensure_topic`). Security is always on: the brokers'
client listener speaks SASL only, so every client here authenticates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)

from solar_platform.settings import KafkaRole, Settings

SECURITY_PROTOCOL = "SASL_PLAINTEXT"
# The application users are SCRAM users (the brokers store only salted hashes, created by
# `runtime.kafka_provisioning.ensure_kafka_users`); the admin is the brokers' own PLAIN user, defined in their
# config, so it exists before any SCRAM credential can be written.
SCRAM_MECHANISM = "SCRAM-SHA-512"
ADMIN_MECHANISM = "PLAIN"
APP_ROLES: tuple[KafkaRole, ...] = ("fleet", "stream", "dagster")
# Spark names its consumer groups `<prefix>-<uuid>...`; the stream user may read groups with this prefix only.
STREAM_GROUP_PREFIX = "solar-stream"


class _OncePerProcess(logging.Filter):
    """kafka-python warns that SASL runs without TLS on every new connection; the platform's Kafka
    traffic stays on loopback or compose's private network by design (docs/security.md): say it once."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        first = message not in self._seen
        self._seen.add(message)
        return first


for _name in ("kafka.net.sasl.plain", "kafka.net.sasl.scram"):
    logging.getLogger(_name).addFilter(_OncePerProcess())

LOGIN_MODULES = {
    ADMIN_MECHANISM: "org.apache.kafka.common.security.plain.PlainLoginModule",
    SCRAM_MECHANISM: "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def mechanism(role: KafkaRole) -> str:
    return ADMIN_MECHANISM if role == "admin" else SCRAM_MECHANISM


def principal(settings: Settings, role: KafkaRole) -> str:
    return f"User:{getattr(settings, f'kafka_{role}_user')}"


def jaas_string(text: str) -> str:
    """`text` as a quoted JAAS value (Kafka's parser reads backslash escapes inside quotes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jaas_config(login_module: str, **options: str) -> str:
    """A `sasl.jaas.config` value: `<module> required key="value" ...;`."""
    pairs = (f"{key}={jaas_string(value)}" for key, value in options.items())
    return " ".join([login_module, "required", *pairs]) + ";"


def client_options(settings: Settings, role: KafkaRole) -> dict[str, Any]:
    """kafka-python keyword arguments for a client acting as `role`."""
    user, password = settings.kafka_credentials(role)
    return {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": f"solar-{role}",
        "security_protocol": SECURITY_PROTOCOL,
        "sasl_mechanism": mechanism(role),
        "sasl_plain_username": user,
        "sasl_plain_password": password,
    }


def spark_options(settings: Settings, role: KafkaRole) -> dict[str, str]:
    """`kafka.*` options of Spark's Kafka source for a client acting as `role`."""
    user, password = settings.kafka_credentials(role)
    return {
        "kafka.bootstrap.servers": settings.kafka_bootstrap,
        "kafka.security.protocol": SECURITY_PROTOCOL,
        "kafka.sasl.mechanism": mechanism(role),
        "kafka.sasl.jaas.config": jaas_config(LOGIN_MODULES[mechanism(role)], username=user, password=password),
    }


def topic_acls(settings: Settings, topic: str) -> list[ACL]:
    """Everything the application users may do with `topic`; nothing else is allowed but to admin.

    The fleet writes it (WRITE on any topic also covers the idempotent producer's InitProducerId,
    KIP-679); the stream reads it, in consumer groups under STREAM_GROUP_PREFIX; Dagster creates
    it, grows its partitions and reads its layout and end offsets (ListOffsets needs DESCRIBE).
    """
    literal = ResourcePattern(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL)
    groups = ResourcePattern(ResourceType.GROUP, STREAM_GROUP_PREFIX, ACLResourcePatternType.PREFIXED)
    grants: list[tuple[KafkaRole, ResourcePattern, ACLOperation]] = [
        ("fleet", literal, ACLOperation.WRITE),
        ("fleet", literal, ACLOperation.DESCRIBE),
        ("stream", literal, ACLOperation.READ),
        ("stream", literal, ACLOperation.DESCRIBE),
        ("stream", groups, ACLOperation.READ),
        ("dagster", literal, ACLOperation.DESCRIBE),
        ("dagster", literal, ACLOperation.CREATE),
        ("dagster", literal, ACLOperation.ALTER),
    ]
    return [
        ACL(principal(settings, role), "*", operation, ACLPermissionType.ALLOW, pattern)
        for role, pattern, operation in grants
    ]


def acls_on_topic(topic: str) -> ACLFilter:
    """Matches every ACL on `topic` itself (what `topic_acls` grants there), whoever holds it."""
    return ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                     ResourcePatternFilter(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL))


def producer(settings: Settings, role: KafkaRole = "fleet", **config: Any) -> KafkaProducer:
    return KafkaProducer(**(client_options(settings, role) | config))


def consumer(settings: Settings, *topics: str, role: KafkaRole = "stream", **config: Any) -> KafkaConsumer:
    return KafkaConsumer(*topics, **(client_options(settings, role) | config))


@contextmanager
def admin(settings: Settings, role: KafkaRole = "admin", **config: Any) -> Iterator[KafkaAdminClient]:
    """An admin client, closed on exit."""
    client = KafkaAdminClient(**(client_options(settings, role) | config))
    try:
        yield client
    finally:
        client.close()
