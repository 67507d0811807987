"""Publishing the fleet to Kafka: live (wall clock) and fast-forward (a simulated time range).

Both modes run the same `FleetSimulator`, so with a seed they publish the same readings for the
same instants; `simulation.simulate_readings` recomputes fast-forward's output without Kafka.

Throughput: kafka-python spends ~15-25 us of Python per `send`, which dominates everything else
(encoding a 200k-panel cycle takes ~40 ms). The producer settings below are the fastest measured
on the local two-broker stack (see bench/fleet_publish.py): gzip beats no compression there
because the brokers share the CPU with the producer, and explicit partitions (the default
partitioner's murmur2, computed once per panel) skip the per-message partitioner call.

Delivery: `acks="all"` with the idempotent producer. Every record gets a callback and an errback,
so the summary counts what the brokers confirmed, what failed (refused, timed out) and what was
still unconfirmed at close; nothing is silently lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Literal

from kafka.errors import KafkaTimeoutError
from kafka.partitioner.default import murmur2

from solar_platform import kafka_clients
from solar_platform.fleet.encoding import MessageEncoder
from solar_platform.fleet.simulation import Cycle, FleetSimulator, cycle_times_ms, to_epoch_ms
from solar_platform.settings import Settings

log = logging.getLogger(__name__)

PRODUCER_CONFIG: dict[str, object] = {
    "acks": "all",
    "enable_idempotence": True,
    "compression_type": "gzip",
    "linger_ms": 20,
    "batch_size": 256 * 1024,
    # The stack creates the topic; a typo must not create a second one.
    "allow_auto_create_topics": False,
}
SEND_CHUNK = 10_000  # messages between stop checks and progress reports
FLUSH_EVERY = 500_000  # fast-forward: bound what waits in the producer's buffers
CLOSE_TIMEOUT_S = 30.0
MAX_KEPT_ERRORS = 5

Mode = Literal["live", "fast-forward"]
ProgressCallback = Callable[[int], None]


class FleetError(RuntimeError):
    """A problem the user can fix (broker unreachable, topic missing, bad time range).

    A refused Kafka login is not one of these: `kafka_clients.KafkaLoginRefused` names the user and
    its password variable itself, and the CLI prints it as it is (cli_errors).
    """


class DeliveryTracker:
    """Counts confirmed and failed records.

    kafka-python calls these from its I/O thread, or from ours when a record completed before its
    callback was attached; hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0
        self.errors: list[str] = []

    def record_delivered(self, _metadata: object) -> None:
        with self._lock:
            self.delivered += 1

    def record_failure(self, error: BaseException) -> None:
        with self._lock:
            self.failed += 1
            if len(self.errors) < MAX_KEPT_ERRORS:
                self.errors.append(f"{type(error).__name__}: {error}")


@dataclass
class PublishSummary:
    """What a run published. Unless `all_delivered`, some readings are not on the topic."""

    mode: Mode
    topic: str
    panels: int
    seed: int
    cycles: int = 0
    messages_sent: int = 0  # handed to the producer
    messages_delivered: int = 0  # acknowledged by the brokers (acks=all)
    messages_failed: int = 0  # refused or expired, reported by kafka-python
    seconds: float = 0.0  # wall time of the run, live mode's sleeps included
    busy_seconds: float = 0.0  # time spent encoding, sending and flushing
    stopped_early: bool = False
    first_errors: list[str] = field(default_factory=list)

    @property
    def messages_unconfirmed(self) -> int:
        """Sent but neither confirmed nor failed when the producer closed (brokers unreachable)."""
        return self.messages_sent - self.messages_delivered - self.messages_failed

    @property
    def all_delivered(self) -> bool:
        return self.messages_delivered == self.messages_sent

    @property
    def messages_per_second(self) -> float:
        return self.messages_sent / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {
            "messages_unconfirmed": self.messages_unconfirmed,
            "messages_per_second": round(self.messages_per_second, 1),
        }


def require_topic(settings: Settings) -> None:
    """Fail fast on a missing topic: the producer would wait `max_block_ms` (60 s) for it to appear."""
    try:
        with kafka_clients.admin(settings, "fleet") as admin:
            # Only the topics this user may describe: the fleet's own.
            topics = admin.list_topics()
    except kafka_clients.UNREACHABLE_ERRORS as exc:
        raise FleetError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}") from exc
    # Any other KafkaError (a refused login: KafkaLoginRefused, a missing ACL) says what it is itself.
    if settings.topic not in topics:
        raise FleetError(
            f"topic {settings.topic!r} not found on {settings.kafka_bootstrap}, or user {settings.kafka_fleet_user} "
            "may not write it (`solar-platform stack up` creates the configured topic and grants the rights)"
        )


def key_partitions(keys: Iterable[bytes], partitions: Iterable[int]) -> list[int]:
    """The partition kafka-python's (and Java's) default partitioner picks for each key."""
    ordered = sorted(partitions)
    return [ordered[(murmur2(key) & 0x7FFFFFFF) % len(ordered)] for key in keys]


class FleetPublisher:
    """One producer for one fleet: fixed keys, partitions computed once, errors counted.

    Use as a context manager; leaving it flushes and closes the producer.
    """

    def __init__(
        self,
        settings: Settings,
        panel_ids: Sequence[str],
        *,
        producer_config: Mapping[str, object] | None = None,
    ) -> None:
        self.topic = settings.topic
        self.encoder = MessageEncoder(panel_ids)
        self.tracker = DeliveryTracker()
        self.sent = 0
        config = PRODUCER_CONFIG | dict(producer_config or {})
        require_topic(settings)
        try:
            self.producer = kafka_clients.producer(settings, "fleet", **config)
        except kafka_clients.UNREACHABLE_ERRORS as exc:
            raise FleetError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}") from exc
        self._partitions: list[int] = []
        self._partition_count = 0
        try:
            self._refresh_partitions()
        except FleetError:
            self.producer.close(timeout=0)  # nothing was sent; don't leave its I/O thread behind
            raise

    def _refresh_partitions(self) -> None:
        """Recompute key -> partition when the topic's partition count changes (checked per cycle)."""
        try:
            available = self.producer.partitions_for(self.topic)
        except KafkaTimeoutError as exc:
            raise FleetError(
                f"topic {self.topic!r} not found on {self.producer.config['bootstrap_servers']} "
                "(create it with `solar-platform stack up`)"
            ) from exc
        if len(available) != self._partition_count:
            self._partitions = key_partitions(self.encoder.keys, available)
            self._partition_count = len(available)

    def publish_cycle(
        self,
        cycle: Cycle,
        *,
        stop: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> int:
        """Send one reading per panel; returns how many were handed to the producer.

        Stops between chunks once `stop` is set, so a SIGTERM does not wait for 200k sends.
        """
        self._refresh_partitions()
        values = self.encoder.encode(cycle.power_w, cycle.status, cycle.time_ms)
        send, topic = self.producer.send, self.topic
        on_delivered, on_error = self.tracker.record_delivered, self.tracker.record_failure
        keys, partitions = self.encoder.keys, self._partitions
        if cycle.present is not None:  # an injected silent fault: those panels send nothing
            sent_mask = cycle.present.tolist()
            keys = [k for k, ok in zip(keys, sent_mask, strict=True) if ok]
            values = [v for v, ok in zip(values, sent_mask, strict=True) if ok]
            partitions = [p for p, ok in zip(partitions, sent_mask, strict=True) if ok]
        sent_before = self.sent
        for chunk_start in range(0, len(values), SEND_CHUNK):
            if stop is not None and stop.is_set():
                break
            chunk_end = chunk_start + SEND_CHUNK
            for key, value, partition in zip(
                islice(keys, chunk_start, chunk_end),
                islice(values, chunk_start, chunk_end),
                islice(partitions, chunk_start, chunk_end),
                strict=False,
            ):
                send(topic, value=value, key=key, partition=partition).add_callback(on_delivered).add_errback(on_error)
            self.sent += min(chunk_end, len(values)) - chunk_start
            if on_progress is not None:
                on_progress(self.sent)
        return self.sent - sent_before

    def flush(self) -> None:
        """Block until every record sent so far is confirmed or failed (bounded by delivery_timeout_ms)."""
        self.producer.flush()

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Close, giving pending records `timeout_s`; what is left then shows up as unconfirmed."""
        try:
            self.producer.close(timeout=timeout_s)
        except KafkaTimeoutError:
            pending = self.sent - self.tracker.delivered - self.tracker.failed
            log.error("closed the producer with %d records unconfirmed after %.0f s", pending, timeout_s)

    def __enter__(self) -> FleetPublisher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _summary(mode: Mode, settings: Settings, simulator: FleetSimulator) -> PublishSummary:
    return PublishSummary(mode=mode, topic=settings.topic, panels=simulator.state.size, seed=simulator.seed)


def _finish(summary: PublishSummary, publisher: FleetPublisher, started: float) -> PublishSummary:
    summary.messages_sent = publisher.sent
    summary.messages_delivered = publisher.tracker.delivered
    summary.messages_failed = publisher.tracker.failed
    summary.first_errors = list(publisher.tracker.errors)
    summary.seconds = time.perf_counter() - started
    return summary


def run_live(
    settings: Settings,
    *,
    panels: int | None = None,
    seed: int | None = None,
    cycles: int | None = None,
    stop: threading.Event | None = None,
    on_cycle: Callable[[PublishSummary], None] | None = None,
    producer_config: Mapping[str, object] | None = None,
    faults: str | dict | None = None,
) -> PublishSummary:
    """Every `interval_seconds`, one reading per panel stamped with the current UTC time.

    Runs until `stop` is set or `cycles` cycles are done. Cycles keep a fixed cadence; when one
    takes longer than the interval the next starts at once and a warning is logged (the fleet is
    too large for one producer at that interval). In the seed's demo mode the window opens now.
    """
    stop = stop or threading.Event()
    simulator = FleetSimulator(settings, fleet_start=datetime.now(UTC), panels=panels, seed=seed, faults=faults)
    summary = _summary("live", settings, simulator)
    started = time.perf_counter()
    with FleetPublisher(settings, simulator.panel_ids, producer_config=producer_config) as publisher:
        next_due = time.monotonic()
        while not stop.is_set() and (cycles is None or summary.cycles < cycles):
            # The first cycle is stamped at the fleet start: in demo mode, the window's first instant.
            now_ms = to_epoch_ms(datetime.now(UTC)) if summary.cycles else simulator.fleet_start_ms
            busy_from = time.perf_counter()
            cycle = simulator.cycle(now_ms)
            if publisher.publish_cycle(cycle, stop=stop) < len(cycle.power_w):
                summary.stopped_early = True
            publisher.flush()  # a cycle is on the topic before the fleet sleeps
            summary.busy_seconds += time.perf_counter() - busy_from
            summary.cycles += 1
            _finish(summary, publisher, started)
            if on_cycle is not None:
                on_cycle(summary)
            if cycles is not None and summary.cycles >= cycles:
                break
            next_due += settings.interval_seconds
            delay = next_due - time.monotonic()
            if delay < 0:
                log.warning(
                    "cycle %d ran %.1f s past its %.1f s interval; publishing cannot keep up",
                    summary.cycles,
                    -delay,
                    settings.interval_seconds,
                )
                next_due = time.monotonic()
            else:
                stop.wait(delay)
        summary.stopped_early |= stop.is_set()
    return _finish(summary, publisher, started)


def fast_forward(
    settings: Settings,
    *,
    start: datetime,
    end: datetime,
    panels: int | None = None,
    seed: int | None = None,
    stop: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
    producer_config: Mapping[str, object] | None = None,
    faults: str | dict | None = None,
) -> PublishSummary:
    """Publish every cycle of [start, end) as fast as the brokers take it, time-major.

    Every past day gets a full production day (`PowerModel.for_history`); `faults` injects a
    fault spec (`fleet.faults`).

    `on_progress(messages_sent)` is called after every chunk of sends; the expected total is
    `expected_messages(settings, start, end, panels)`.
    """
    try:
        times_ms = cycle_times_ms(start, end, settings.interval_seconds)
    except ValueError as exc:
        raise FleetError(str(exc)) from exc
    simulator = FleetSimulator(settings, fleet_start=start, panels=panels, seed=seed, history=True, faults=faults)
    summary = _summary("fast-forward", settings, simulator)
    started = time.perf_counter()
    with FleetPublisher(settings, simulator.panel_ids, producer_config=producer_config) as publisher:
        unflushed = 0
        for time_ms in times_ms.tolist():
            if stop is not None and stop.is_set():
                break
            sent = publisher.publish_cycle(simulator.cycle(time_ms), stop=stop, on_progress=on_progress)
            summary.cycles += 1
            unflushed += sent
            if unflushed >= FLUSH_EVERY:
                publisher.flush()
                unflushed = 0
        publisher.flush()
        summary.stopped_early = stop is not None and stop.is_set()
    summary = _finish(summary, publisher, started)
    summary.busy_seconds = summary.seconds  # fast-forward never sleeps
    return summary


def expected_messages(settings: Settings, start: datetime, end: datetime, panels: int | None = None) -> int:
    """How many messages `fast_forward` publishes for this range (cycles x panels)."""
    return cycle_times_ms(start, end, settings.interval_seconds).size * (settings.panels if panels is None else panels)
