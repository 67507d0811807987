"""Publishing the fleet to Kafka: the producer, its accounting, and fast-forward over a past range.

Live mode (`fleet.live.run_live`) and fast-forward run the same `FleetSimulator`, so with a seed they
publish the same readings for the same instants; `simulation.simulate_readings` recomputes
fast-forward's output without Kafka.

CPU: kafka-python's Python work per `send` (~20 us) dominates the fleet's cost; encoding a
200k-panel cycle takes ~45 ms. The settings below were chosen on CPU seconds per 10k msg/s,
measured on the local two-broker stack with bench/fleet_publish.py (docs/benchmarks.md, "Fleet
publisher"):
- zstd in batches of up to 1 MiB, lingering 100 ms: batches 15x smaller for the brokers to
  replicate, store and serve, for ~1.5 ms of CPU per MiB (gzip, at kafka-python's level 9, costs
  ~20 ms); fewer, fuller batches and requests mean less per-batch work in the producer's I/O thread
  and in the brokers;
- kafka-python computes each batch's CRC-32C in pure Python (~7 MB/s) unless the `crc32c`
  extension is installed (pinned in pyproject.toml); with it the CRC costs nothing;
- no callback per record (see Delivery);
- fewer garbage collections while publishing (PUBLISHING_GC_THRESHOLDS): with Python's defaults,
  the collector rescans the records in flight many times a cycle, for nothing;
- explicit partitions (the default partitioner's murmur2, computed once per panel) skip the
  per-message partitioner call.

Delivery: `acks="all"` with the idempotent producer. No callback is attached per record: each chunk
of up to SEND_CHUNK records keeps the futures `send` returns, and once they are all done one pass
counts what the brokers confirmed and what failed (`SentChunk.settle`). So every record is counted
as confirmed, failed, or (at close) unconfirmed; nothing is silently lost. Live mode also spools
what Kafka cannot take (`fleet.live`, `fleet.spool`).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from kafka import KafkaProducer
from kafka.errors import (
    AuthorizationError,
    CorruptRecordError,
    InvalidRecordError,
    InvalidTimestampError,
    InvalidTopicError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from kafka.partitioner.default import murmur2

from solar_platform import kafka_clients
from solar_platform.fleet.encoding import MessageEncoder
from solar_platform.fleet.simulation import Cycle, FleetSimulator, cycle_times_ms
from solar_platform.settings import Settings

log = logging.getLogger(__name__)

PRODUCER_CONFIG: dict[str, object] = {
    "acks": "all",
    "enable_idempotence": True,
    "compression_type": "zstd",
    # A cycle is a burst of sends: a longer linger makes fewer, fuller batches and produce requests
    # (less work in the producer's I/O thread and in the brokers); 100 ms is nothing at a 5 s cadence.
    "linger_ms": 100,
    "batch_size": 1024 * 1024,
    # The stack creates the topic; a typo must not create a second one.
    "allow_auto_create_topics": False,
    # Back within a second of the brokers' return, not after kafka-python's 30 s backoff ceiling.
    "reconnect_backoff_max_ms": 1000,
    # `send` blocks only to fetch the topic's metadata; live mode must not stop for a minute on it.
    "max_block_ms": 5000,
}
# kafka-python keeps ~4 objects the cyclic GC tracks per record in flight (its future, the future's
# callback lists, its args): a 200k-panel cycle puts ~800k of them in the young generation, and with
# Python's default thresholds (700, 10, 10) the collector scans them again and again and frees
# nothing: half of the fleet's CPU (docs/benchmarks.md). Publishing runs with fewer, larger collections.
PUBLISHING_GC_THRESHOLDS = (100_000, 50, 50)
KAFKA_DELIVERY_TIMEOUT_MS = 120_000  # kafka-python's default, unless PRODUCER_CONFIG or the caller sets one
SEND_CHUNK = 10_000  # records per chunk: the unit of accounting, of stop checks and of spool frames
FLUSH_EVERY = 500_000  # fast-forward: bound what waits in the producer's buffers
CLOSE_TIMEOUT_S = 30.0
MAX_KEPT_ERRORS = 5
# Sending again cannot help these: the records are counted as failed instead of being retried.
PERMANENT_ERRORS = (AuthorizationError, MessageSizeTooLargeError, RecordListTooLargeError, InvalidTopicError,
                    InvalidRecordError, CorruptRecordError, InvalidTimestampError)

Mode = Literal["live", "fast-forward"]
ProgressCallback = Callable[[int], None]


class FleetError(RuntimeError):
    """A problem the user can fix (broker unreachable, topic missing, bad time range).

    A refused Kafka login is not one of these: `kafka_clients.KafkaLoginRefused` names the user and
    its password variable itself, and the CLI prints it as it is (cli_errors).
    """


class DeliveryLedger:
    """What the brokers confirmed and what failed for good; only the thread that sends touches it."""

    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0
        self.errors: list[str] = []

    def record_failures(self, errors: Iterable[BaseException]) -> None:
        for error in errors:
            self.failed += 1
            if len(self.errors) < MAX_KEPT_ERRORS:
                self.errors.append(f"{type(error).__name__}: {error}")


@dataclass(slots=True)
class Settled:
    """A chunk's outcome: positions delivered, to retry (Kafka may take them later), failed for good."""

    delivered: list[int]
    retry: list[int]
    failed: list[tuple[int, BaseException]]


class SentChunk:
    """Up to SEND_CHUNK records of one cycle handed to the producer, with the futures `send` returned."""

    __slots__ = ("time_ms", "keys", "values", "futures", "sent_at", "spool_seq", "frame_indices", "cycle",
                 "send_error", "_checked")

    def __init__(self, time_ms: int, keys: Sequence[bytes], values: Sequence[bytes], futures: list[Any], *,
                 spool_seq: int | None = None, frame_indices: Sequence[int] | None = None,
                 cycle: int | None = None) -> None:
        self.time_ms = time_ms
        self.keys = keys
        self.values = values
        self.futures = futures
        self.sent_at = time.monotonic()
        self.spool_seq = spool_seq  # its frame in the spool: drained from it, or copied there on a stall
        self.frame_indices = frame_indices  # drained: each record's position in its frame
        self.cycle = cycle  # live: the cycle it belongs to
        self.send_error: KafkaError | None = None  # `send` raised: records from len(futures) on were not sent
        self._checked = 0

    def __len__(self) -> int:
        return len(self.futures)

    @property
    def done(self) -> bool:
        """Every record confirmed or failed (futures complete about in order: resume where we stopped)."""
        futures, index = self.futures, self._checked
        while index < len(futures) and futures[index].is_done:
            index += 1
        self._checked = index
        return index == len(futures)

    def settle(self) -> Settled:
        """One pass over the futures (call once `done`; on an abandoned chunk, those not done are retried)."""
        delivered: list[int] = []
        retry: list[int] = []
        failed: list[tuple[int, BaseException]] = []
        for index, future in enumerate(self.futures):
            if not future.is_done:
                retry.append(index)
            elif not future.failed():
                delivered.append(index)
            elif isinstance(future.exception, PERMANENT_ERRORS):
                failed.append((index, future.exception))
            else:
                retry.append(index)
        return Settled(delivered, retry, failed)


@dataclass
class PublishSummary:
    """What a run published. Unless `all_delivered`, some readings are not on the topic."""

    mode: Mode
    topic: str
    panels: int
    seed: int
    cycles: int = 0
    messages_sent: int = 0  # handed to the producer (live: drained spool frames included)
    messages_delivered: int = 0  # acknowledged by the brokers (acks=all)
    messages_failed: int = 0  # refused for good (see PERMANENT_ERRORS), or expired in fast-forward
    messages_unconfirmed: int = 0  # sent, neither confirmed nor failed at close, and not spooled
    seconds: float = 0.0  # wall time of the run, live mode's waits included
    busy_seconds: float = 0.0  # time spent generating, encoding, sending and spooling
    stopped_early: bool = False
    first_errors: list[str] = field(default_factory=list)
    # live mode only (fleet.live)
    messages_generated: int = 0  # readings the live cycles made
    messages_spooled: int = 0  # written to the spool (Kafka away, or a send that expired)
    messages_drained: int = 0  # acknowledged out of the spool
    messages_dropped: int = 0  # dropped from a full spool (drop-oldest), unacknowledged: lost
    spool_records: int = 0  # left in the spool at the end, sent by the next run
    spool_bytes: int = 0
    cycles_late: int = 0  # started later than they were due (by more than a tenth of the interval)
    cycles_skipped: int = 0  # not generated: the spool was full under the block policy
    cycles_acked_late: int = 0  # live cycles not wholly acknowledged before the next one was due
    slowest_cycle_ack_s: float = 0.0  # longest time from a cycle's start to its last acknowledgement
    kafka_outages: int = 0  # times the fleet turned to the spool
    kafka_unavailable_s: float = 0.0  # time spent in that state
    producers_replaced: int = 0  # producers that stopped sending during an outage, replaced (fleet.live)

    @property
    def messages_lost(self) -> int:
        """Readings that will never reach the topic: failed, dropped from the spool, or unconfirmed."""
        return self.messages_failed + self.messages_dropped + self.messages_unconfirmed

    @property
    def all_delivered(self) -> bool:
        return self.messages_lost == 0

    @property
    def messages_per_second(self) -> float:
        return self.messages_sent / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self) | {
            "messages_lost": self.messages_lost,
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


def _force_close(producer: KafkaProducer, timeout_s: float) -> bool:
    """Close, giving pending records `timeout_s`; False when some were still waiting (they fail)."""
    try:
        producer.close(timeout=timeout_s)
        return True
    except KafkaTimeoutError:
        # kafka-python's close() raises from its flush(timeout) before it force-closes; force-closing is
        # what it would do next (the records still waiting fail; its I/O thread ends).
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
        return False


class FleetPublisher:
    """One producer for one fleet: fixed keys, partitions computed once, every record accounted for.

    Use as a context manager; leaving it closes the producer (`close`).
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
        self.ledger = DeliveryLedger()
        self.sent = 0
        self.pending: deque[SentChunk] = deque()  # sent, not yet settled, oldest first
        self._closed = False
        self._settings = settings
        self._config = PRODUCER_CONFIG | dict(producer_config or {})
        require_topic(settings)
        self.producer = self._new_producer()
        self._partitions: list[int] = []
        self._partition_of: dict[bytes, int] = {}
        self._partition_ids: list[int] = []
        try:
            self.refresh_partitions()
        except FleetError:
            self.producer.close(timeout=0)  # nothing was sent; don't leave its I/O thread behind
            raise

    def _new_producer(self) -> KafkaProducer:
        try:
            return kafka_clients.producer(self._settings, "fleet", **self._config)
        except kafka_clients.UNREACHABLE_ERRORS as exc:
            raise FleetError(f"cannot reach Kafka at {self._settings.kafka_bootstrap}: {exc}") from exc

    @property
    def delivery_timeout_s(self) -> float:
        """How long the producer tries a record before it fails it (expired)."""
        return float(self._config.get("delivery_timeout_ms", KAFKA_DELIVERY_TIMEOUT_MS)) / 1000.0

    def make_producer(self) -> KafkaProducer:
        """A new producer that knows the topic's partitions already, so its first `send` does not
        block on metadata; raises FleetError while Kafka cannot answer. Safe off the sending thread."""
        fresh = self._new_producer()
        try:
            fresh.partitions_for(self.topic)
        except KafkaError as exc:
            _force_close(fresh, timeout_s=0)
            raise FleetError(f"no metadata for topic {self.topic!r} yet: {exc}") from exc
        return fresh

    def install_producer(self, fresh: KafkaProducer) -> list[tuple[SentChunk, Settled]]:
        """Put `fresh` in place of a producer that stopped sending; returns the chunks the old one held,
        settled as `settle_done` does, what it never answered to be retried. The old one is closed on a
        thread of its own.

        Why: kafka-python 3.0.x's idempotent producer, once a batch it had sent expires, resets its
        producer id and never fetches a new one, so it sends nothing again (docs/reliability.md §9).
        """
        old, self.producer = self.producer, fresh
        abandoned = [(chunk, chunk.settle()) for chunk in self.pending]
        self.pending.clear()
        for _chunk, outcome in abandoned:
            self.ledger.delivered += len(outcome.delivered)
        threading.Thread(target=_force_close, args=(old, 0), name="fleet-old-producer-close", daemon=True).start()
        return abandoned

    def refresh_partitions(self) -> None:
        """Recompute key -> partition when the topic's partition count changes (checked per cycle)."""
        try:
            available = self.producer.partitions_for(self.topic)
        except KafkaTimeoutError as exc:
            raise FleetError(
                f"topic {self.topic!r} not found on {self.producer.config['bootstrap_servers']} "
                "(create it with `solar-platform stack up`)"
            ) from exc
        if len(available) != len(self._partition_ids):
            self._partition_ids = sorted(available)
            self._partitions = key_partitions(self.encoder.keys, self._partition_ids)
            self._partition_of = dict(zip(self.encoder.keys, self._partitions, strict=True))

    def partitions_of(self, keys: Sequence[bytes]) -> list[int]:
        """Each key's partition (the default partitioner's choice), for keys read back from the spool."""
        known = self._partition_of
        if all(key in known for key in keys):
            return [known[key] for key in keys]
        return key_partitions(keys, self._partition_ids)

    def cycle_records(self, cycle: Cycle) -> tuple[list[bytes], list[bytes], list[int]]:
        """Keys, JSON values and partitions of one cycle's readings, panels that send nothing left out."""
        values = self.encoder.encode(cycle.power_w, cycle.status, cycle.time_ms)
        keys, partitions = self.encoder.keys, self._partitions
        if cycle.present is None:
            return keys, values, partitions
        sent_mask = cycle.present.tolist()  # an injected silent fault: those panels send nothing
        return ([k for k, ok in zip(keys, sent_mask, strict=True) if ok],
                [v for v, ok in zip(values, sent_mask, strict=True) if ok],
                [p for p, ok in zip(partitions, sent_mask, strict=True) if ok])

    def send_chunk(self, time_ms: int, keys: Sequence[bytes], values: Sequence[bytes], partitions: Sequence[int],
                   *, stamp: bool = True, **chunk: Any) -> SentChunk:
        """Hand records to the producer; `stamp`: the record's Kafka timestamp is the reading's time."""
        send, topic = self.producer.send, self.topic
        timestamp_ms = time_ms if stamp else None
        futures: list[Any] = []
        append = futures.append
        error = None
        try:
            for key, value, partition in zip(keys, values, partitions, strict=True):
                append(send(topic, value=value, key=key, partition=partition, timestamp_ms=timestamp_ms))
        except KafkaError as exc:  # no topic metadata within max_block_ms: the caller decides
            error = exc
        self.sent += len(futures)
        sent = SentChunk(time_ms, keys, values, futures, **chunk)
        sent.send_error = error
        self.pending.append(sent)
        return sent

    def settle_done(self) -> list[tuple[SentChunk, Settled]]:
        """Settle every pending chunk whose records are all confirmed or failed; returns them."""
        finished = [chunk for chunk in self.pending if chunk.done]
        if not finished:
            return []
        self.pending = deque(chunk for chunk in self.pending if chunk not in finished)
        results = []
        for chunk in finished:
            outcome = chunk.settle()
            self.ledger.delivered += len(outcome.delivered)
            results.append((chunk, outcome))
        return results

    def publish_cycle(
        self,
        cycle: Cycle,
        *,
        stop: threading.Event | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> int:
        """Fast-forward: send one reading per panel; returns how many were handed to the producer.

        Stops between chunks once `stop` is set, so a SIGTERM does not wait for 200k sends. Chunks
        that completed are settled as it goes: a failure here is final (fast-forward has no spool).
        """
        self.refresh_partitions()
        keys, values, partitions = self.cycle_records(cycle)
        sent_before = self.sent
        for start in range(0, len(values), SEND_CHUNK):
            if stop is not None and stop.is_set():
                break
            end = start + SEND_CHUNK
            # Kafka's timestamp stays the send time: a backfill of last month must not fall to retention.
            sent = self.send_chunk(cycle.time_ms, keys[start:end], values[start:end], partitions[start:end],
                                   stamp=False)
            if sent.send_error is not None:
                raise FleetError(f"Kafka stopped taking records: {sent.send_error}")
            self._settle_final()
            if on_progress is not None:
                on_progress(self.sent)
        return self.sent - sent_before

    def _settle_final(self) -> None:
        """Settle what completed, every failure final (fast-forward)."""
        for chunk, outcome in self.settle_done():
            self.ledger.record_failures([*(e for _i, e in outcome.failed), *(chunk.futures[i].exception
                                                                              for i in outcome.retry)])

    def flush(self) -> None:
        """Block until every record sent so far is confirmed or failed (bounded by delivery_timeout_ms)."""
        self.producer.flush()
        self._settle_final()

    @property
    def unconfirmed(self) -> int:
        """Records sent and still waiting for an outcome."""
        return sum(1 for chunk in self.pending for future in chunk.futures if not future.is_done)

    def settle_partly(self) -> int:
        """Fast-forward's end: count the outcomes of chunks not wholly done; returns the records unconfirmed."""
        unconfirmed = 0
        for chunk in self.pending:
            for future in chunk.futures:
                if not future.is_done:
                    unconfirmed += 1
                elif future.failed():
                    self.ledger.record_failures([future.exception])
                else:
                    self.ledger.delivered += 1
        self.pending.clear()
        return unconfirmed

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Close, giving pending records `timeout_s`; what is left then is dropped by the producer."""
        if self._closed:
            return
        self._closed = True
        if not _force_close(self.producer, timeout_s) and timeout_s > 0:
            log.error("closed the producer with %d records unconfirmed after %.0f s", self.unconfirmed, timeout_s)

    def __enter__(self) -> FleetPublisher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Publishing's GC thresholds (PUBLISHING_GC_THRESHOLDS) inside, the previous ones back after."""
    previous = gc.get_threshold()
    gc.set_threshold(*PUBLISHING_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def summary_for(mode: Mode, settings: Settings, simulator: FleetSimulator) -> PublishSummary:
    return PublishSummary(mode=mode, topic=settings.topic, panels=simulator.state.size, seed=simulator.seed)


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
    summary = summary_for("fast-forward", settings, simulator)
    started = time.perf_counter()
    with fewer_collections(), FleetPublisher(settings, simulator.panel_ids,
                                             producer_config=producer_config) as publisher:
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
        summary.messages_unconfirmed = publisher.settle_partly()
    summary.messages_sent = publisher.sent
    summary.messages_delivered = publisher.ledger.delivered
    summary.messages_failed = publisher.ledger.failed
    summary.first_errors = list(publisher.ledger.errors)
    summary.seconds = summary.busy_seconds = time.perf_counter() - started  # fast-forward never sleeps
    return summary


def expected_messages(settings: Settings, start: datetime, end: datetime, panels: int | None = None) -> int:
    """How many messages `fast_forward` publishes for this range (cycles x panels)."""
    return cycle_times_ms(start, end, settings.interval_seconds).size * (settings.panels if panels is None else panels)
