"""What the platform provisions on a running Kafka cluster: the application users and the topic.

Wherever the cluster runs: the local stack (`stack up`), compose's one-shot `topic` job, Dagster's
`kafka_topic` asset and the tests' scratch topics all call these. The rights themselves are
defined once, in `kafka_clients.topic_acls`.
"""

from __future__ import annotations

import time
from contextlib import suppress

from kafka.admin import NewPartitions, NewTopic, UserScramCredentialUpsertion
from kafka.errors import RetriableError, TopicAlreadyExistsError, UnknownBrokerIdError, UnknownTopicOrPartitionError

from solar_platform import kafka_clients
from solar_platform.runtime.host import SetupError
from solar_platform.settings import KafkaRole, Settings

_ADMIN_TIMEOUT_MS = 30000


def ensure_kafka_users(settings: Settings) -> None:
    """Create or update the application users' SCRAM credentials, as admin (idempotent)."""
    upserts = []
    for role in kafka_clients.APP_ROLES:
        user, password = settings.kafka_credentials(role)
        upserts.append(UserScramCredentialUpsertion(user, kafka_clients.SCRAM_MECHANISM, password))
    with kafka_clients.admin(settings, request_timeout_ms=_ADMIN_TIMEOUT_MS) as client:
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
    name = topic or settings.topic
    with kafka_clients.admin(settings, role, request_timeout_ms=_ADMIN_TIMEOUT_MS) as client:
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


def drop_topic(settings: Settings, topic: str, retry_seconds: float = 30.0) -> None:
    """Delete a topic and the ACLs `ensure_topic` granted on it, as admin.

    Retried with a new client for `retry_seconds` while the cluster settles: just after a broker
    restarted, the admin client may be sent to it as the controller before its metadata lists it
    (`UnknownBrokerIdError`), or find it not ready yet."""
    deadline = time.monotonic() + retry_seconds
    while True:
        try:
            with kafka_clients.admin(settings, request_timeout_ms=_ADMIN_TIMEOUT_MS) as client:
                with suppress(UnknownTopicOrPartitionError):  # an earlier attempt deleted it, its answer lost
                    client.delete_topics([topic])
                client.delete_acls([kafka_clients.acls_on_topic(topic)])
            return
        except (UnknownBrokerIdError, RetriableError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
