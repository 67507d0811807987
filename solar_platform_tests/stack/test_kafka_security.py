"""Kafka's authentication and ACLs on the real brokers (docs/security.md).

Nobody gets in without a SASL login; each application user may do its part with its topic and
nothing else (`kafka_clients.topic_acls`); only the admin may do everything.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACLPermissionType,
    NewPartitions,
    NewTopic,
    ResourceType,
)
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    KafkaTimeoutError,
    TopicAuthorizationFailedError,
)

from solar_platform import kafka_clients
from solar_platform.runtime.kafka_provisioning import drop_topic, ensure_kafka_users, ensure_topic
from solar_platform.settings import KafkaRole, Settings
from solar_platform.stack.supervisor import supervisor_dir

pytestmark = pytest.mark.integration

REFUSAL_BOUND_S = 15.0  # a refused client must fail in about its bootstrap timeout, never hang


def _name(label: str) -> str:
    return f"t_sec_{label}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topic(stack_settings: Settings) -> Iterator[Settings]:
    """Settings whose topic is a fresh one ensured by the admin, i.e. with the users' ACLs; dropped afterwards."""
    settings = stack_settings.model_copy(update={"topic": _name("topic")})
    ensure_topic(settings)
    yield settings
    drop_topic(settings, settings.topic)


@pytest.fixture
def ungranted_topic(stack_settings: Settings) -> Iterator[str]:
    """A topic the admin made without granting anyone anything."""
    name = _name("bare")
    with kafka_clients.admin(stack_settings) as admin:
        admin.create_topics([NewTopic(name, 1, 1)])
    yield name
    drop_topic(stack_settings, name)


def _produce(settings: Settings, role: KafkaRole, topic: str, value: bytes = b"x") -> None:
    producer = kafka_clients.producer(settings, role, acks="all", max_block_ms=10_000)
    try:
        producer.send(topic, key=b"panel-1", value=value).get(timeout=20)
    finally:
        producer.close(timeout=5)


def _consume(settings: Settings, role: KafkaRole, topic: str, **config: object) -> list[bytes]:
    consumer = kafka_clients.consumer(settings, topic, role=role, auto_offset_reset="earliest",
                                      consumer_timeout_ms=5000, **config)
    try:
        return [record.value for record in consumer]
    finally:
        consumer.close()


def _records_or_refused(settings: Settings, role: KafkaRole, topic: str) -> list[bytes]:
    """What `role` reads of `topic`: a topic it may not even describe looks absent (nothing, no error)."""
    try:
        return _consume(settings, role, topic)
    except TopicAuthorizationFailedError:
        return []


def _create(settings: Settings, role: KafkaRole, name: str) -> None:
    with kafka_clients.admin(settings, role) as admin:
        admin.create_topics([NewTopic(name, 1, 1)])


def _refused_in_bounded_time(connect: Callable[[], object]) -> KafkaError:
    started = time.monotonic()
    with pytest.raises(KafkaError) as refused:
        connect()
    assert time.monotonic() - started < REFUSAL_BOUND_S
    return refused.value


def _eventually(check: Callable[[], None], timeout_s: float = 30.0) -> None:
    """`check()` until it passes: topic changes reach every broker's metadata asynchronously."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check()
            return
        except (KafkaError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


# ---------------------------------------------------------------- authentication
def test_anonymous_clients_are_refused(topic: Settings) -> None:
    """Without SASL the listener answers nothing but its API versions: no metadata, no produce, no consume."""
    plaintext = {"bootstrap_servers": topic.kafka_bootstrap, "request_timeout_ms": 3000, "bootstrap_timeout_ms": 3000}
    _refused_in_bounded_time(lambda: KafkaAdminClient(**plaintext).list_topics())
    _refused_in_bounded_time(lambda: KafkaProducer(**plaintext, max_block_ms=3000).send(topic.topic, b"x").get(5))
    _refused_in_bounded_time(lambda: KafkaConsumer(topic.topic, **plaintext, consumer_timeout_ms=3000).poll(3000))
    # Nothing reached the topic; the same brokers serve an authenticated client meanwhile.
    assert _consume(topic, "stream", topic.topic) == []


def test_a_wrong_password_is_refused(topic: Settings) -> None:
    for role in ("fleet", "admin"):
        right = kafka_clients.client_options(topic, role)
        wrong = right | {"sasl_plain_password": "not-the-password"}
        error = _refused_in_bounded_time(
            lambda options=wrong: KafkaAdminClient(**options, bootstrap_timeout_ms=3000).list_topics()
        )
        # A bare kafka-python client gives up bootstrapping as if the brokers were down (it logs the
        # broker's SaslAuthenticationFailedError at most, and drops it when the broker's close
        # arrives in the same read): why kafka_clients checks the login itself (next tests)...
        assert isinstance(error, KafkaTimeoutError)
        # ...and the same client with the right password gets in: the password was the difference.
        client = KafkaAdminClient(**right, bootstrap_timeout_ms=10000)
        try:
            assert topic.topic in client.list_topics()
        finally:
            client.close()


def _wrong_password(settings: Settings, role: KafkaRole) -> Settings:
    return settings.model_copy(update={f"kafka_{role}_password": "not-the-password"})


def _list_topics(settings: Settings, role: KafkaRole, **config: object) -> list[str]:
    with kafka_clients.admin(settings, role, **config) as client:
        return client.list_topics()


def _assert_names_the_login(error: KafkaError, settings: Settings, role: KafkaRole) -> None:
    user, _password = settings.kafka_credentials(role)
    assert isinstance(error, kafka_clients.KafkaLoginRefused), repr(error)
    assert error.user == user and error.role == role
    assert f"login refused for user '{user}'" in str(error)
    assert f"SOLAR_KAFKA_{role.upper()}_PASSWORD" in str(error)
    assert "cannot reach" not in str(error)


def test_every_client_reports_a_wrong_password_as_a_refused_login(topic: Settings) -> None:
    """Admin, producer, consumer, or the check the stream runs before Spark starts: each says who was
    refused, and which variable holds the password (each check takes the refusal grace, ~1.5 s)."""
    wrong = _wrong_password(topic, "fleet")
    clients: list[Callable[[], object]] = [
        lambda: _list_topics(wrong, "fleet"),
        lambda: kafka_clients.producer(wrong, "fleet"),
        lambda: kafka_clients.consumer(wrong, topic.topic, role="fleet"),
        lambda: kafka_clients.check_login(wrong, "fleet"),
    ]
    for make in clients:
        _assert_names_the_login(_refused_in_bounded_time(make), topic, "fleet")
    kafka_clients.check_login(topic, "fleet")  # the right password passes the same check


@pytest.mark.parametrize("role", ["stream", "dagster", "admin"])
def test_each_users_refused_login_names_its_own_variable(topic: Settings, role: KafkaRole) -> None:
    _assert_names_the_login(_refused_in_bounded_time(lambda: _list_topics(_wrong_password(topic, role), role)),
                            topic, role)
    assert topic.topic in _list_topics(topic, role)  # the right password gets in


def test_an_unknown_user_is_a_refused_login_too(topic: Settings) -> None:
    nobody = topic.model_copy(update={"kafka_fleet_user": "t-sec-nobody"})
    error = _refused_in_bounded_time(lambda: kafka_clients.check_login(nobody, "fleet"))
    assert isinstance(error, kafka_clients.KafkaLoginRefused)
    assert "login refused for user 't-sec-nobody'" in str(error) and "SOLAR_KAFKA_FLEET_USER" in str(error)


def test_an_unreachable_bootstrap_is_not_a_refused_login(topic: Settings) -> None:
    with socket.socket() as closed:  # a loopback port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    nowhere = _wrong_password(topic, "fleet").model_copy(update={"kafka_bootstrap_override": f"127.0.0.1:{port}"})
    kafka_clients.check_login(nowhere, "fleet")  # nothing answers: no verdict on the login
    assert kafka_clients.login_refusal(kafka_clients.client_options(nowhere, "fleet")) is None
    error = _refused_in_bounded_time(lambda: _list_topics(nowhere, "fleet", bootstrap_timeout_ms=1000))
    assert isinstance(error, KafkaTimeoutError) and not isinstance(error, kafka_clients.KafkaLoginRefused)
    # A dead server listed first does not hide the next one's refusal.
    both = nowhere.model_copy(update={"kafka_bootstrap_override": f"127.0.0.1:{port},{topic.kafka_bootstrap}"})
    _assert_names_the_login(_refused_in_bounded_time(lambda: kafka_clients.check_login(both, "fleet")), topic, "fleet")


def test_the_application_users_cannot_log_in_as_plain(topic: Settings) -> None:
    """PLAIN knows the admin only: the fleet's password works with SCRAM and nowhere else."""
    options = kafka_clients.client_options(topic, "fleet") | {"sasl_mechanism": "PLAIN"}
    _refused_in_bounded_time(lambda: KafkaAdminClient(**options, bootstrap_timeout_ms=3000).list_topics())


# ---------------------------------------------------------------- what each user may do
def test_the_fleet_writes_its_topic_and_nothing_else(topic: Settings, ungranted_topic: str) -> None:
    _produce(topic, "fleet", topic.topic)  # the idempotent producer's WRITE, no cluster-wide right needed
    with kafka_clients.admin(topic, "fleet") as admin:
        listed = admin.list_topics()
    assert topic.topic in listed and ungranted_topic not in listed  # it cannot even see other topics
    with pytest.raises(TopicAuthorizationFailedError):
        _consume(topic, "fleet", topic.topic)
    with pytest.raises(TopicAuthorizationFailedError):
        _create(topic, "fleet", _name("fleet"))
    with pytest.raises(KafkaError):  # unknown to it: metadata never names the topic
        kafka_clients.producer(topic, "fleet", max_block_ms=3000).send(ungranted_topic, b"x").get(5)


def test_the_stream_reads_its_topic_and_writes_nothing(topic: Settings, ungranted_topic: str) -> None:
    _produce(topic, "fleet", topic.topic, b"reading")
    assert _consume(topic, "stream", topic.topic) == [b"reading"]
    group = f"{kafka_clients.STREAM_GROUP_PREFIX}-test-{uuid.uuid4().hex[:6]}"
    assert _consume(topic, "stream", topic.topic, group_id=group) == [b"reading"]
    with pytest.raises(GroupAuthorizationFailedError):  # groups outside Spark's prefix
        _consume(topic, "stream", topic.topic, group_id="any-other-group")
    with pytest.raises(KafkaError, match="AuthorizationFailed"):  # its producer id, or the write itself
        _produce(topic, "stream", topic.topic)
    _produce(topic, "admin", ungranted_topic, b"not-for-the-stream")
    assert _records_or_refused(topic, "stream", ungranted_topic) == []


def test_dagster_creates_grows_and_describes_its_topic_but_writes_nothing(topic: Settings) -> None:
    with kafka_clients.admin(topic) as admin:  # as the admin, leaving the ACLs in place
        admin.delete_topics([topic.topic])
    _eventually(lambda: ensure_topic(topic, role="dagster"))  # once the deletion completed
    with kafka_clients.admin(topic, "dagster") as admin:
        admin.create_partitions({topic.topic: NewPartitions(total_count=topic.topic_partitions + 1)})

        def grown() -> None:
            [described] = admin.describe_topics([topic.topic])
            assert len(described["partitions"]) == topic.topic_partitions + 1

        _eventually(grown)  # as soon as the broker it asks has the new metadata
        with pytest.raises(TopicAuthorizationFailedError):
            admin.delete_topics([topic.topic])
    consumer = kafka_clients.consumer(topic, role="dagster")  # the stream_lag check's end offsets
    try:
        partitions = [TopicPartition(topic.topic, p) for p in consumer.partitions_for_topic(topic.topic)]
        assert set(consumer.end_offsets(partitions).values()) == {0}
    finally:
        consumer.close()
    with pytest.raises(TopicAuthorizationFailedError):
        _create(topic, "dagster", _name("dagster"))
    with pytest.raises(KafkaError, match="AuthorizationFailed"):  # its producer id, or the write itself
        _produce(topic, "dagster", topic.topic)
    with pytest.raises(TopicAuthorizationFailedError):
        _consume(topic, "dagster", topic.topic)


def test_the_admin_may_do_everything(topic: Settings, ungranted_topic: str) -> None:
    _produce(topic, "admin", ungranted_topic, b"by-admin")
    assert _consume(topic, "admin", ungranted_topic, group_id="admin-anything") == [b"by-admin"]
    name = _name("admin")
    _create(topic, "admin", name)
    with kafka_clients.admin(topic) as admin:
        assert name in admin.list_topics()
        admin.delete_topics([name])


def test_ensure_topic_is_idempotent_and_grants_exactly_the_listed_acls(topic: Settings) -> None:
    ensure_topic(topic)  # again: no error, no duplicate
    ensure_kafka_users(topic)
    with kafka_clients.admin(topic) as admin:
        acls, _error = admin.describe_acls(kafka_clients.acls_on_topic(topic.topic))

    def key(acl: object) -> tuple[str, str]:
        return acl.principal, acl.operation.name  # type: ignore[attr-defined]

    expected = [acl for acl in kafka_clients.topic_acls(topic, topic.topic)
                if acl.resource_pattern.resource_type == ResourceType.TOPIC]
    assert sorted(map(key, acls)) == sorted(map(key, expected))
    assert all(acl.permission_type == ACLPermissionType.ALLOW for acl in acls)


def test_broker_configs_hold_the_admin_password_privately(stack_settings: Settings) -> None:
    for path in (stack_settings.home_dir / "kafka").glob("*/server.properties"):
        assert path.stat().st_mode & 0o077 == 0, path
    _user, password = stack_settings.kafka_credentials("admin")
    assert password not in (supervisor_dir(stack_settings) / "supervisord.conf").read_text()
