"""The live loop against a broker the test switches off and on: cadence kept, the spool filled and drained.

A fake producer stands in for kafka-python here (pure logic, fast); the same behaviour against the
real brokers is `test_spool_integration.py`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.errors import KafkaTimeoutError

from solar_platform import kafka_clients
from solar_platform.contracts import parse_reading
from solar_platform.fleet.live import run_live
from solar_platform.fleet.publisher import PublishSummary
from solar_platform.fleet.simulation import to_epoch_ms
from solar_platform.fleet.spool import read_spool
from solar_platform_tests.fleet.support import fleet_settings
from solar_platform_tests.fleet.test_publisher import FakeAdmin

INTERVAL = 0.05
STALL = 0.3
PANELS = 5


class Future:
    def __init__(self) -> None:
        self.is_done = False
        self.exception: BaseException | None = None

    def failed(self) -> bool:
        return self.is_done and self.exception is not None


class Broker:
    """What the topic holds; while `up`, every send is acknowledged at once, else it waits."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.up = True
        self.log: list[tuple[bytes, bytes, int | None]] = []
        self.waiting: list[tuple[Future, tuple[bytes, bytes, int | None]]] = []
        self.sends_while_down = 0
        self.wedged: set[int] = set()  # producers that neither send nor expire any more (kafka-python 3.0.x)
        self.producers = 0

    def send(self, key: bytes, value: bytes, timestamp_ms: int | None, producer: int = 0) -> Future:
        future = Future()
        with self.lock:
            if producer in self.wedged:
                pass  # held for ever: never sent, never failed
            elif self.up:
                self.log.append((key, value, timestamp_ms))
                future.is_done = True
            else:
                self.sends_while_down += 1
                self.waiting.append((future, (key, value, timestamp_ms)))
        return future

    def expire_waiting(self) -> None:
        """delivery_timeout_ms passed: what waited fails, retriably."""
        with self.lock:
            for future, _record in self.waiting:
                future.exception = KafkaTimeoutError("expired")
                future.is_done = True
            self.waiting.clear()

    def come_back(self) -> None:
        with self.lock:
            self.up = True
            for future, record in self.waiting:
                self.log.append(record)
                future.is_done = True
            self.waiting.clear()


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Broker]:
    the_broker = Broker()

    class Producer:
        def __init__(self, **config: object) -> None:
            self.config = {"delivery_timeout_ms": 120_000, **config}
            if not the_broker.up:  # kafka-python's bootstrap waits for the brokers a while
                time.sleep(0.5)
            the_broker.producers += 1
            self.number = the_broker.producers

        def partitions_for(self, topic: str) -> set[int]:
            if not the_broker.up and the_broker.wedged:  # a new producer gets no metadata while away
                raise KafkaTimeoutError("no metadata")
            return {0, 1, 2, 3}

        def send(self, topic: str, value: bytes, key: bytes, partition: int, timestamp_ms: int | None = None) -> Future:
            return the_broker.send(key, value, timestamp_ms, self.number)

        def close(self, timeout: float | None = None) -> None:
            pass

    monkeypatch.setattr(kafka_clients, "KafkaProducer", Producer)
    monkeypatch.setattr(kafka_clients, "KafkaAdminClient", FakeAdmin)
    monkeypatch.setenv("SOLAR_KAFKA_FLEET_PASSWORD", "fleet-secret")
    # The clients' login check finds nothing to log in to here (a closed port), so it stays out of the way.
    monkeypatch.setenv("SOLAR_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv("SOLAR_FLEET_SPOOL_DIR", str(tmp_path / "spool"))
    yield the_broker


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def start_fleet(settings, stop: threading.Event, seen: list[PublishSummary]) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def target() -> None:
        result["summary"] = run_live(settings, panels=PANELS, seed=3, stop=stop, on_cycle=lambda s: seen.append(
            PublishSummary(**{k: v for k, v in s.__dict__.items()})))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def test_an_outage_keeps_the_cadence_and_every_reading_reaches_the_topic_once(broker: Broker) -> None:
    settings = fleet_settings(interval_seconds=INTERVAL, fleet_stall_seconds=STALL, topic="readings")
    stop, seen = threading.Event(), []
    thread, result = start_fleet(settings, stop, seen)
    wait_for(lambda: len(seen) >= 5)
    broker.up = False
    wait_for(lambda: seen[-1].kafka_outages == 1)  # the stall was noticed
    cycles_at_stall = len(seen)
    wait_for(lambda: len(seen) >= cycles_at_stall + 40)  # 40 more cycles (2 s) while away
    in_spool = seen[-1].spool_records
    assert in_spool >= 40 * PANELS
    # While away, nothing new goes to the producer but one probe frame at a time.
    assert broker.sends_while_down <= (cycles_at_stall + 1) * PANELS
    broker.expire_waiting()  # delivery_timeout_ms: the copies in the spool are all that is left
    time.sleep(5 * INTERVAL)
    broker.come_back()
    wait_for(lambda: seen[-1].spool_records == 0 and seen[-1].kafka_outages == 1 and len(seen) > cycles_at_stall + 50)
    stop.set()
    thread.join(timeout=10)
    summary = result["summary"]

    readings = [(parse_reading(value), key, stamp) for key, value, stamp in broker.log]
    by_time = Counter(to_epoch_ms(r.time_utc) for r, _k, _s in readings)
    assert sum(by_time.values()) == len(readings) == summary.messages_generated == summary.messages_delivered
    assert all(count == PANELS for count in by_time.values())  # every panel of every cycle, once
    assert Counter((key, value) for key, value, _s in broker.log).most_common(1)[0][1] == 1
    assert all(stamp == to_epoch_ms(r.time_utc) and key == r.panel_id.encode() for r, key, stamp in readings)
    times = sorted(by_time)
    assert len(times) == summary.cycles
    # The cadence held: no cycle missing (a loaded machine may delay one, never 2 s of them).
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) < 10 * INTERVAL * 1000
    assert summary.messages_spooled >= in_spool and summary.messages_drained > 0
    assert summary.messages_lost == 0 and summary.spool_records == 0
    assert summary.kafka_outages == 1 and summary.kafka_unavailable_s > 0
    assert read_spool(settings.fleet_spool_path) == []


def test_a_producer_that_stops_sending_in_an_outage_is_replaced_and_nothing_is_lost(broker: Broker) -> None:
    # kafka-python 3.0.x: once a batch it had sent expires, the idempotent producer sends nothing again
    # and fails nothing either. Past its delivery timeout the fleet replaces it.
    settings = fleet_settings(interval_seconds=INTERVAL, fleet_stall_seconds=STALL, topic="readings")
    stop, seen, result = threading.Event(), [], {}
    thread = threading.Thread(target=lambda: result.update(summary=run_live(
        settings, panels=PANELS, seed=3, stop=stop, on_cycle=lambda s: seen.append(PublishSummary(**s.__dict__)),
        producer_config={"delivery_timeout_ms": 500})), daemon=True)
    thread.start()
    wait_for(lambda: len(seen) >= 5)
    broker.up = False
    broker.wedged.add(broker.producers)
    wait_for(lambda: seen[-1].kafka_outages == 1)
    time.sleep(2.0)  # past 0.5 s + the 0.3 s stall: new producers are tried, and get no metadata
    assert seen[-1].producers_replaced == 0 and broker.producers > 1
    broker.come_back()  # the wedged producer's records never arrive: only the spool has them
    wait_for(lambda: seen[-1].producers_replaced >= 1 and seen[-1].spool_records == 0
             and seen[-1].messages_drained > 0)
    stop.set()
    thread.join(timeout=10)
    summary = result["summary"]
    by_time = Counter(to_epoch_ms(parse_reading(value).time_utc) for _k, value, _s in broker.log)
    assert all(count == PANELS for count in by_time.values()) and len(by_time) == summary.cycles
    assert summary.messages_lost == 0 and summary.spool_records == 0 and summary.producers_replaced == 1
    # Making producers while the brokers were away (0.5 s each) never held up a cycle.
    times = sorted(by_time)
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) < 5 * INTERVAL * 1000


def test_records_that_expire_in_the_producer_are_spooled_and_resent_identically(broker: Broker) -> None:
    settings = fleet_settings(interval_seconds=INTERVAL, fleet_stall_seconds=60.0, topic="readings")
    broker.up = False
    stop, seen = threading.Event(), []
    thread, result = start_fleet(settings, stop, seen)
    wait_for(lambda: len(seen) >= 3)
    broker.expire_waiting()  # expired before any stall was noticed
    wait_for(lambda: seen[-1].messages_spooled >= 3 * PANELS)
    expired = [json.loads(f.values[0]) for f in read_spool(settings.fleet_spool_path)]
    assert expired
    broker.come_back()
    wait_for(lambda: seen[-1].spool_records == 0 and len(seen) >= 8)
    stop.set()
    thread.join(timeout=10)
    logged = {json.loads(value)["time_data"] for _k, value, _s in broker.log}
    assert {message["time_data"] for message in expired} <= logged
    assert result["summary"].messages_lost == 0


def test_a_full_spool_under_block_stops_new_cycles_and_counts_them(broker: Broker) -> None:
    settings = fleet_settings(interval_seconds=INTERVAL, fleet_stall_seconds=STALL, topic="readings",
                              fleet_spool_max_bytes=1 << 20, fleet_spool_full_policy="block")
    broker.up = False
    stop, seen = threading.Event(), []
    # 2000 panels x ~120 bytes: the 1 MiB spool is full after a handful of cycles
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(summary=run_live(
        settings, panels=2000, seed=3, stop=stop, on_cycle=lambda s: seen.append(s))), daemon=True)
    thread.start()
    wait_for(lambda: seen and seen[-1].cycles_skipped >= 5, timeout=20)
    stop.set()
    thread.join(timeout=30)
    summary = result["summary"]
    assert summary.cycles_skipped >= 5 and summary.messages_dropped == 0
    assert summary.spool_records == summary.messages_generated  # nothing generated was lost
    # Past the bound only by what the producer held when Kafka went away (copied to the spool then).
    assert summary.spool_bytes <= settings.fleet_spool_max_bytes + summary.messages_sent * 160


def test_a_full_spool_under_drop_oldest_keeps_the_cadence_and_counts_the_drops(broker: Broker) -> None:
    settings = fleet_settings(interval_seconds=INTERVAL, fleet_stall_seconds=STALL, topic="readings",
                              fleet_spool_max_bytes=1 << 20, fleet_spool_full_policy="drop-oldest")
    broker.up = False
    stop, seen = threading.Event(), []
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(summary=run_live(
        settings, panels=2000, seed=3, stop=stop, on_cycle=lambda s: seen.append(s))), daemon=True)
    thread.start()
    wait_for(lambda: seen and seen[-1].messages_dropped > 0 and seen[-1].cycles >= 20, timeout=30)
    stop.set()
    thread.join(timeout=30)
    summary = result["summary"]
    assert summary.cycles_skipped == 0 and summary.messages_dropped > 0
    assert summary.spool_bytes <= settings.fleet_spool_max_bytes
    assert summary.spool_records + summary.messages_dropped == summary.messages_generated
    assert not summary.all_delivered  # drops are losses, and the exit code says so
