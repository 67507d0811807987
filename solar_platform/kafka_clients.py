"""Every Kafka client of the platform, made in one place: kafka-python's and the Spark connector's.

Each part connects as its own user (`KafkaRole`: the fleet writes, the stream reads, Dagster
creates and describes, `admin` is the brokers' own), so the ACLs on the brokers decide what it may do
(`topic_acls`, applied by `runtime.kafka_provisioning.ensure_topic`). Security is always on: the brokers'
client listener speaks SASL only, so every client here authenticates.

A refused login is not an outage. kafka-python 3 cannot tell them apart: it retries a refused SASL
login until its bootstrap times out, then raises the same `KafkaTimeoutError` as for a stopped
broker (its transport even drops the broker's error response when the broker's close arrives in
the same read). So every client made here first logs in once on a plain socket (`login_refusal`)
and raises `KafkaLoginRefused`, naming the user and its password variable, when a broker answers
the login with an error; an unreachable broker is left to the client, which reports it as before.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import kafka.errors as kafka_errors
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
from kafka.cluster import collect_hosts
from kafka.net.sasl import get_sasl_mechanism
from kafka.protocol.parser import KafkaProtocol
from kafka.protocol.sasl import SaslAuthenticateRequest, SaslHandshakeRequest

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


# ---------------------------------------------------------------- a refused login, told from an outage
# The kafka-python errors that mean "could not get to the brokers at all" (NoBrokersAvailable: kafka-python < 3).
UNREACHABLE_ERRORS: tuple[type[kafka_errors.KafkaError], ...] = tuple(
    cls for name in ("KafkaTimeoutError", "KafkaConnectionError", "NodeNotReadyError", "NoBrokersAvailable",
                     "BrokerNotAvailableError")
    if (cls := getattr(kafka_errors, name, None)) is not None
)
LOGIN_CHECK_TIMEOUT_S = 3.0  # for the whole check, over every bootstrap server
# A broker may refuse a SCRAM credential written a moment ago (it reaches each broker through the
# cluster's metadata): a refusal counts once it lasts this long.
LOGIN_REFUSAL_GRACE_S = 1.5
LOGIN_RETRY_S = 0.3


class KafkaLoginRefused(kafka_errors.SaslAuthenticationFailedError):
    """A broker refused this client's SASL login: a wrong password (or user name), never an outage.

    Its text is written for the user (cli_errors prints it as is): who was refused, by which broker,
    what the broker said, and which variables to check.
    """

    def __init__(self, *, user: str, role: KafkaRole, server: str, reason: str) -> None:
        self.user, self.role, self.server, self.reason = user, role, server, reason
        self.user_variable, self.password_variable = Settings.kafka_login_variables(role)
        super().__init__(
            f"login refused for user '{user}' by Kafka at {server} ({reason}): check {self.password_variable} "
            f"(and {self.user_variable}); `solar-platform stack up` creates the platform's Kafka users and "
            "their passwords"
        )

    def __str__(self) -> str:
        return str(self.args[0])


def _exchange(sock: socket.socket, protocol: KafkaProtocol, request: Any) -> Any:
    """Send one request and read its response; every byte the broker sent is read before its close."""
    protocol.send_request(request)
    sock.sendall(protocol.send_bytes())
    while True:
        data = sock.recv(65536)
        if not data:
            raise kafka_errors.KafkaConnectionError("the broker closed the connection without an answer")
        responses = protocol.receive_bytes(data)
        if responses:
            return responses[0][1]


def _refusal_at(options: dict[str, Any], host: str, port: int, timeout_s: float) -> str | None:
    """What the broker at host:port answers this SASL login: None when it accepts, else its refusal.

    Raises OSError or KafkaError when it cannot be asked (nothing listens, no answer in time).
    """
    name = options["sasl_mechanism"]
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        protocol = KafkaProtocol(client_id=options.get("client_id", "solar-login-check"))
        # SaslHandshake may come first: ApiVersions is optional before authentication.
        handshake = _exchange(sock, protocol, SaslHandshakeRequest(mechanism=name, version=1))
        if handshake.error_code:
            offered = ", ".join(handshake.mechanisms) or "none"
            return f"it does not accept SASL mechanism {name}; it offers {offered}"
        mechanism = get_sasl_mechanism(name)(host=host, **options)
        while not mechanism.is_done():
            answer = _exchange(sock, protocol, SaslAuthenticateRequest(auth_bytes=mechanism.auth_bytes(), version=1))
            if answer.error_code:
                error = kafka_errors.for_code(answer.error_code).__name__
                return f"{error}: {answer.error_message}" if answer.error_message else error
            mechanism.receive(answer.auth_bytes)
    return None


def login_refusal(options: dict[str, Any]) -> tuple[str, str] | None:
    """(server, what it said) when the first bootstrap server that answers refuses this login; else None.

    None also when no server answers: that is an outage, which the client itself reports.
    """
    if options.get("security_protocol") != SECURITY_PROTOCOL:
        return None  # a plain socket speaks SASL_PLAINTEXT only; nothing else is configured here
    deadline = time.monotonic() + LOGIN_CHECK_TIMEOUT_S
    for host, port, _family in collect_hosts(options["bootstrap_servers"], randomize=False):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            reason = _refusal_at(options, host, port, remaining)
        except Exception:  # noqa: BLE001 - the check only advises: one it cannot finish never blocks a client
            continue  # unreachable, no answer in time, an answer it cannot read: ask the next one
        return None if reason is None else (f"{host}:{port}", reason)
    return None


def _raise_if_refused(role: KafkaRole, options: dict[str, Any], grace_s: float = 0.0) -> None:
    deadline = time.monotonic() + grace_s
    while (refusal := login_refusal(options)) is not None:
        if time.monotonic() >= deadline:
            server, reason = refusal
            raise KafkaLoginRefused(user=options["sasl_plain_username"], role=role, server=server, reason=reason)
        time.sleep(LOGIN_RETRY_S)


def check_login(settings: Settings, role: KafkaRole) -> None:
    """Raise `KafkaLoginRefused` when the brokers refuse `role`'s login (for a client made elsewhere,
    like Spark's); return when they accept it or cannot be reached."""
    _raise_if_refused(role, client_options(settings, role), LOGIN_REFUSAL_GRACE_S)


Client = TypeVar("Client")


def _logged_in(make: Callable[..., Client], role: KafkaRole, options: dict[str, Any]) -> Client:
    """`make(**options)`, after a login check; a refused login raises `KafkaLoginRefused`, not a timeout."""
    _raise_if_refused(role, options, LOGIN_REFUSAL_GRACE_S)
    try:
        return make(**options)
    except UNREACHABLE_ERRORS:
        # The brokers may have come up while the client waited, and refused it.
        _raise_if_refused(role, options)
        raise


def producer(settings: Settings, role: KafkaRole = "fleet", **config: Any) -> KafkaProducer:
    return _logged_in(KafkaProducer, role, client_options(settings, role) | config)


def consumer(settings: Settings, *topics: str, role: KafkaRole = "stream", **config: Any) -> KafkaConsumer:
    options = client_options(settings, role) | config
    return _logged_in(lambda **given: KafkaConsumer(*topics, **given), role, options)


@contextmanager
def admin(settings: Settings, role: KafkaRole = "admin", **config: Any) -> Iterator[KafkaAdminClient]:
    """An admin client, closed on exit."""
    client = _logged_in(KafkaAdminClient, role, client_options(settings, role) | config)
    try:
        yield client
    finally:
        client.close()
