"""Live mode: one cycle of readings per interval on the wall clock, whether or not Kafka takes them.

Each interval the loop
1. settles the chunks whose records are all confirmed or failed. A record that failed for a reason
   that may pass (it expired after `delivery_timeout_ms`, not enough replicas, a producer epoch
   bump) goes to the spool; one refused for good (`publisher.PERMANENT_ERRORS`) is counted as failed;
2. generates the cycle, stamped with the current time, and hands it to the producer in chunks of
   SEND_CHUNK records, or, while Kafka is away, appends it to the spool (`fleet.spool`);
3. drains the spool, oldest frame first, in the time left before the next cycle is due, then waits.
   Live cycles go first, so fresh readings never queue behind a backlog; the drain gets at least one
   frame per cycle even when publishing fills the interval (so it is never starved), and all the
   time left otherwise, with at most DRAIN_IN_FLIGHT_FRAMES frames unacknowledged at once (so it
   goes at the pace the brokers acknowledge). A drained record keeps its key, its bytes and its
   Kafka timestamp (the reading's time, as live records have).

Kafka is away once a record has waited `fleet_stall_seconds` for its acknowledgement. The loop never
blocks on the producer: kafka-python's `send` only blocks for topic metadata (`max_block_ms`, short
here), and its buffers are not bounded in 3.x, so what bounds memory is that, from then on, nothing
new goes to the producer. The chunks still waiting there are copied to the spool at once (a
`kill -9` then loses none of them; if they are confirmed after all, their frames are acknowledged
and never sent twice), new cycles go to the spool, and one spool frame at a time probes the
brokers. The first acknowledgement ends the outage, and the spool drains as above.

At the end (SIGTERM, --cycles), the loop waits up to CLOSE_TIMEOUT_S for what is in flight; whatever
is still unconfirmed then is written to the spool, and the next run sends it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime

from kafka import KafkaProducer

from solar_platform import kafka_clients
from solar_platform.fleet.publisher import (
    CLOSE_TIMEOUT_S,
    SEND_CHUNK,
    FleetError,
    FleetPublisher,
    PublishSummary,
    SentChunk,
    Settled,
    fewer_collections,
    summary_for,
)
from solar_platform.fleet.simulation import FleetSimulator, to_epoch_ms
from solar_platform.fleet.spool import Spool, SpoolError
from solar_platform.settings import Settings

log = logging.getLogger(__name__)

DRAIN_IN_FLIGHT_FRAMES = 4  # spool frames sent and not yet acknowledged, at most
POLL_SECONDS = 0.05  # how often the wait between cycles settles chunks and drains
LATE_TOLERANCE_FRACTION = 0.1  # a cycle starting later than this share of the interval is late
DRAIN_MARGIN_FRACTION = 0.1  # no new drain frame this close to the next cycle (one per cycle always)
RECORD_BYTES_GUESS = 160  # spool bytes per reading before the first cycle tells


@dataclass(slots=True)
class OpenCycle:
    """A live cycle until every chunk of it is settled: how long it took, whether any went to the spool."""

    began: float  # monotonic
    chunks: int = 0  # handed to the producer, not yet settled
    spooled: bool = False
    all_sent: bool = False


class LiveFleet:
    """The live loop for one simulator, publisher and spool; `run` until stopped or `cycles` are done."""

    def __init__(self, settings: Settings, simulator: FleetSimulator, publisher: FleetPublisher, spool: Spool,
                 summary: PublishSummary, stop: threading.Event) -> None:
        self.interval = settings.interval_seconds
        self.stall_seconds = settings.fleet_stall_seconds
        self.simulator = simulator
        self.publisher = publisher
        self.spool = spool
        self.summary = summary
        self.stop = stop
        self.available = True
        self.away_since = 0.0
        self.cycle_bytes = RECORD_BYTES_GUESS * simulator.state.size
        self.skipping = False
        self.next_replace_at = 0.0  # monotonic: when a failed producer replacement may be tried again
        self.replacement: Future[KafkaProducer] | None = None  # a new producer being made
        self.cycles_open: dict[int, OpenCycle] = {}  # live cycles not wholly settled yet
        self.started = time.perf_counter()

    # ------------------------------------------------------------------ the loop
    def run(self, cycles: int | None, on_cycle: Callable[[PublishSummary], None] | None) -> PublishSummary:
        if len(self.spool):
            log.warning("fleet spool: %d readings (%d frames) from an earlier run; draining them, oldest first",
                        self.spool.records, len(self.spool))
        next_due = time.monotonic()
        slots = 0
        while not self.stop.is_set() and (cycles is None or slots < cycles):
            began = time.monotonic()
            if began - next_due > LATE_TOLERANCE_FRACTION * self.interval:
                self.summary.cycles_late += 1
                log.warning("cycle %d starts %.1f s late: publishing cannot keep up with the %.1f s interval",
                            slots + 1, began - next_due, self.interval)
                next_due = began  # no burst of cycles to catch up: the cadence restarts from here
            busy_from = time.perf_counter()
            self.settle(began)
            # The first cycle is stamped at the fleet start: in demo mode, the window's first instant.
            time_ms = to_epoch_ms(datetime.now(UTC)) if slots else self.simulator.fleet_start_ms
            if self.must_skip():
                self.summary.cycles_skipped += 1
            else:
                self.publish_cycle(time_ms, began)
            self.spool.sync()  # one fsync per cycle (fleet.spool: durability)
            self.summary.busy_seconds += time.perf_counter() - busy_from
            slots += 1
            self.update_summary()
            if on_cycle is not None:
                on_cycle(self.summary)
            if cycles is not None and slots >= cycles:
                break
            next_due += self.interval
            self.drain_until(next_due)
        self.summary.stopped_early = self.stop.is_set()
        self.shutdown()
        return self.summary

    def must_skip(self) -> bool:
        """Block policy: while Kafka is away and the spool is full, no new cycle is generated."""
        full = (not self.available and self.spool.full_policy == "block"
                and not self.spool.has_room(self.cycle_bytes))
        if full != self.skipping:
            self.skipping = full
            if full:
                log.warning("fleet spool full (%d bytes, policy block): no new cycles until it drains",
                            self.spool.max_bytes)
            else:
                log.warning("fleet spool has room again: cycles resume")
        return full

    def publish_cycle(self, time_ms: int, began: float) -> None:
        cycle = self.simulator.cycle(time_ms)
        if self.available:
            try:
                self.publisher.refresh_partitions()
            except FleetError as exc:  # no topic metadata within max_block_ms: Kafka is away
                self.turn_to_spool(f"topic metadata unavailable ({exc})")
        keys, values, partitions = self.publisher.cycle_records(cycle)
        self.cycle_bytes = sum(map(len, values)) + sum(map(len, keys)) + 6 * len(values)
        number = self.summary.cycles
        self.summary.cycles += 1
        opened = self.cycles_open[number] = OpenCycle(began)
        for start in range(0, len(values), SEND_CHUNK):
            if self.stop.is_set():  # the rest of the cycle is not generated
                self.summary.stopped_early = True
                break
            end = start + SEND_CHUNK
            self.summary.messages_generated += len(values[start:end])
            if self.available:
                opened.chunks += 1
                sent = self.publisher.send_chunk(time_ms, keys[start:end], values[start:end], partitions[start:end],
                                                 cycle=number)
                if sent.send_error is not None:  # the records not handed over are in its frame, copied here
                    self.turn_to_spool(f"the producer refused records ({sent.send_error})")
            else:
                self.spool_records(time_ms, keys[start:end], values[start:end])
                opened.spooled = True
        opened.all_sent = True
        self.cycle_settled(number)

    def drain_until(self, due: float) -> None:
        """Settle, watch for a stall, and drain the spool until the next cycle is due."""
        frames_sent = 0
        margin = DRAIN_MARGIN_FRACTION * self.interval
        while not self.stop.is_set():
            now = time.monotonic()
            self.settle(now)
            self.check_stall(now)
            self.check_wedged(now)
            if self.drain_allowed(now, due, margin, frames_sent) and self.send_frame():
                frames_sent += 1
                continue
            if now >= due:
                return
            self.stop.wait(min(POLL_SECONDS, due - now))

    def drain_allowed(self, now: float, due: float, margin: float, frames_sent: int) -> bool:
        if not self.spool.frames_for_drain():
            return False
        if not self.available:  # one probe at a time, and only when nothing else is waiting
            return not self.publisher.pending
        in_flight = sum(1 for chunk in self.publisher.pending if chunk.frame_indices is not None)
        return in_flight < DRAIN_IN_FLIGHT_FRAMES and (frames_sent == 0 or now < due - margin)

    def send_frame(self) -> bool:
        frame = self.spool.next_frame()
        if frame is None:
            return False
        partitions = self.publisher.partitions_of(frame.keys)
        sent = self.publisher.send_chunk(frame.time_ms, frame.keys, frame.values, partitions,
                                         spool_seq=frame.seq, frame_indices=frame.indices)
        if sent.send_error is not None:
            self.turn_to_spool(f"the producer refused records ({sent.send_error})")
        return True

    # ------------------------------------------------------------------ outcomes
    def settle(self, now: float) -> None:
        for chunk, outcome in self.publisher.settle_done():
            self.summary_settled(chunk, outcome, now)

    def summary_settled(self, chunk: SentChunk, outcome: Settled, now: float) -> None:
        if outcome.delivered and not self.available:
            self.back(now)
        self.publisher.ledger.record_failures(error for _index, error in outcome.failed)
        # Records `send` never took (it raised) are retried like the ones that expired.
        retry = [*outcome.retry, *range(len(chunk.futures), len(chunk.keys))]  # never handed over: retry
        if chunk.spool_seq is None:  # a live chunk, not in the spool: what failed for now goes there
            if retry:
                self.spool_records(chunk.time_ms, [chunk.keys[i] for i in retry], [chunk.values[i] for i in retry])
        else:  # its frame is in the spool: drained from it, or copied there when Kafka went away
            if chunk.frame_indices is not None:
                self.summary.messages_drained += len(outcome.delivered)
            if retry:
                positions = chunk.frame_indices or range(len(chunk.keys))
                done = [positions[i] for i in outcome.delivered] + [positions[i] for i, _e in outcome.failed]
                self.spool.release(chunk.spool_seq, done)
            else:
                self.spool.ack(chunk.spool_seq)
        if chunk.cycle is not None:
            self.cycle_settled(chunk.cycle, chunk_spooled=bool(retry))

    def cycle_settled(self, number: int, *, chunk_spooled: bool | None = None) -> None:
        """A chunk of cycle `number` settled (`chunk_spooled`: some of it went to the spool), or its
        last chunk was handed over (None); the cycle closes when both are true of every chunk."""
        opened = self.cycles_open.get(number)
        if opened is None:
            return
        if chunk_spooled is not None:
            opened.chunks -= 1
            opened.spooled |= chunk_spooled
        if opened.all_sent and opened.chunks <= 0:
            del self.cycles_open[number]
            took = time.monotonic() - opened.began
            if not opened.spooled:
                self.summary.slowest_cycle_ack_s = max(self.summary.slowest_cycle_ack_s, round(took, 3))
            if opened.spooled or took > self.interval:
                self.summary.cycles_acked_late += 1

    def spool_records(self, time_ms: int, keys: Sequence[bytes], values: Sequence[bytes]) -> None:
        for start in range(0, len(keys), SEND_CHUNK):
            self.spool.append(time_ms, keys[start : start + SEND_CHUNK], values[start : start + SEND_CHUNK])
        self.summary.messages_spooled += len(keys)

    # ------------------------------------------------------------------ Kafka away and back
    def check_stall(self, now: float) -> None:
        pending = self.publisher.pending
        if self.available and pending and now - pending[0].sent_at > self.stall_seconds:
            self.turn_to_spool(f"no acknowledgement for {self.stall_seconds:g} s")

    def check_wedged(self, now: float) -> None:
        """While Kafka is away, a producer that holds records past their delivery timeout without
        failing them has stopped for good (kafka-python 3.0.x, see `FleetPublisher.install_producer`):
        a healthy one would have expired them by then. A new one is made on a thread of its own (made
        while the brokers are away, it would block the loop) and put in place once it has the topic's
        metadata; what the old one held is in the spool and goes out again from there."""
        if self.replacement is not None:
            if self.replacement.done():
                self.install_replacement(now)
            return
        pending = self.publisher.pending
        limit = self.publisher.delivery_timeout_s + self.stall_seconds
        if self.available or not pending or now - pending[0].sent_at <= limit or now < self.next_replace_at:
            return
        log.warning("the fleet's Kafka producer has held readings for %.0f s without an outcome (kafka-python stops "
                    "sending after some expired batches): making a new one", now - pending[0].sent_at)
        future: Future[KafkaProducer] = Future()

        def make() -> None:
            try:
                future.set_result(self.publisher.make_producer())
            except Exception as exc:  # noqa: BLE001 - handed to the loop, which retries later
                future.set_exception(exc)

        self.replacement = future
        threading.Thread(target=make, name="fleet-producer-replacement", daemon=True).start()

    def install_replacement(self, now: float) -> None:
        future, self.replacement = self.replacement, None
        assert future is not None
        try:
            fresh = future.result()
        except Exception as exc:  # noqa: BLE001 - the brokers are still away: try again in a while
            self.next_replace_at = now + self.stall_seconds
            log.warning("no new Kafka producer yet (%s); trying again in %.0f s", exc, self.stall_seconds)
            return
        abandoned = self.publisher.install_producer(fresh)
        for chunk, outcome in abandoned:  # what it never answered goes back to the spool, as an expiry does
            self.summary_settled(chunk, outcome, now)
        self.summary.producers_replaced += 1
        log.warning("replaced the fleet's Kafka producer; the %d chunks it held are sent again from the spool",
                    len(abandoned))

    def turn_to_spool(self, reason: str) -> None:
        if not self.available:
            return
        self.available = False
        self.away_since = time.monotonic()
        self.summary.kafka_outages += 1
        copied = 0
        for chunk in self.publisher.pending:  # so that a kill -9 now loses none of them
            if chunk.spool_seq is None:
                chunk.spool_seq = self.spool.append(chunk.time_ms, chunk.keys, chunk.values, in_flight=True)
                copied += len(chunk.keys)
        self.summary.messages_spooled += copied
        self.spool.sync()
        log.warning("Kafka cannot take readings (%s): cycles go to the fleet spool (%d readings waiting in the "
                    "producer copied there)", reason, copied)

    def back(self, now: float) -> None:
        self.available = True
        self.summary.kafka_unavailable_s += now - self.away_since
        log.warning("Kafka acknowledges again after %.0f s: draining %d readings from the fleet spool",
                    now - self.away_since, self.spool.records)

    # ------------------------------------------------------------------ the end
    def shutdown(self) -> None:
        if self.replacement is not None:  # a producer still being made is closed once it exists
            self.replacement.add_done_callback(
                lambda made: made.exception() is not None or made.result().close(timeout=0))
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while self.publisher.pending and self.available and time.monotonic() < deadline:
            now = time.monotonic()
            self.settle(now)
            self.check_stall(now)
            time.sleep(POLL_SECONDS)
        self.settle(time.monotonic())
        left = list(self.publisher.pending)
        for chunk in left:  # still in the producer: the spool keeps them for the next run
            if chunk.spool_seq is None:
                self.spool_records(chunk.time_ms, chunk.keys, chunk.values)
            else:
                self.spool.release(chunk.spool_seq)
        self.publisher.pending.clear()
        self.spool.sync()
        if not self.available:
            self.summary.kafka_unavailable_s += time.monotonic() - self.away_since
        self.publisher.close(timeout_s=0 if left else CLOSE_TIMEOUT_S)
        self.update_summary()

    def update_summary(self) -> None:
        summary, publisher = self.summary, self.publisher
        summary.messages_sent = publisher.sent
        summary.messages_delivered = publisher.ledger.delivered
        summary.messages_failed = publisher.ledger.failed
        summary.first_errors = list(publisher.ledger.errors)
        summary.messages_dropped = self.spool.dropped_records
        summary.spool_records = self.spool.records
        summary.spool_bytes = self.spool.bytes_on_disk
        summary.seconds = time.perf_counter() - self.started


def open_spool(settings: Settings) -> Spool:
    try:
        return Spool(settings.fleet_spool_path, max_bytes=settings.fleet_spool_max_bytes,
                     full_policy=settings.fleet_spool_full_policy)
    except SpoolError as exc:
        raise FleetError(str(exc)) from exc


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
    What Kafka cannot take goes to the spool (`settings.fleet_spool_path`) and is sent later.
    """
    stop = stop or threading.Event()
    simulator = FleetSimulator(settings, fleet_start=datetime.now(UTC), panels=panels, seed=seed, faults=faults)
    summary = summary_for("live", settings, simulator)
    with fewer_collections(), open_spool(settings) as spool:
        try:
            publisher = FleetPublisher(settings, simulator.panel_ids, producer_config=producer_config)
        except kafka_clients.UNREACHABLE_ERRORS as exc:
            # A refused login or a missing ACL says what it is itself, not "cannot reach".
            raise FleetError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}") from exc
        try:
            return LiveFleet(settings, simulator, publisher, spool, summary, stop).run(cycles, on_cycle)
        finally:
            publisher.close(timeout_s=0)  # closed already unless the loop raised
