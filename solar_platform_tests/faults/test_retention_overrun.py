"""Kafka's retention deletes readings the stream has not read: the stream carries on from the earliest
offset, records the gap, and Dagster and the API show it. No crash loop.

The test topic keeps records `RETENTION_MS` (the stack's brokers apply retention every 10 s; a
segment whose records are all older than that is deleted, the active one included). Phases, each a
burst of the fleet's readings (50 panels):

- A: published once the stream runs (its first batch committed), and committed by it; then the
  stream is stopped (SIGTERM);
- B: published while the stream is down; the test waits until every partition's earliest offset
  is past B (Kafka deleted it, unread);
- the stream starts again from its checkpoint, which points into B;
- C: published while it runs. Its first record of each partition lies beyond the offset the stream
  expected: the gap is recorded in that batch's transaction.

Checks: the stream runs on (one start after the stop, no exit); A and C are in panelData
exactly once; B is not, and `lost_offsets` holds exactly B's offsets, one gap per partition, each
with the Kafka times of the last record read before it and the first one after it; every derived
table equals a recompute; the Dagster check `no_lost_offsets` fails naming the gaps, and the API's
health lists them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from sqlalchemy import text

from solar_platform import kafka_clients
from solar_platform.api.app import create_app
from solar_platform.fleet.encoding import MessageEncoder
from solar_platform.fleet.publisher import PRODUCER_CONFIG
from solar_platform.fleet.simulation import FleetSimulator
from solar_platform.orchestration.live import checks as live_checks
from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform_tests.faults.harness import (
    Figures,
    StreamProcess,
    dead_letter_count,
    panel_data,
    progress_rows_in,
    wait_until,
)
from solar_platform_tests.storage.derived import assert_derived_equal_recompute


def batches_recorded(settings: Settings, after: float = 0.0) -> int:
    """Progress rows recorded after `after` (epoch s), empty batches included (Spark runs a first
    batch even on an empty topic, and one over offsets that are gone)."""
    with db.engine(settings).connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {db.STREAM_PROGRESS} WHERE recorded_at > :t"),
                                {"t": datetime.fromtimestamp(after, UTC).replace(tzinfo=None)}).scalar())

pytestmark = [pytest.mark.fault, pytest.mark.integration]

RETENTION_MS = 45_000
SEGMENT_MS = 5_000
PANELS = 50
CYCLES = 20  # per phase: 1,000 readings


@dataclass(frozen=True)
class Sent:
    panel: str
    time_ms: int
    partition: int
    offset: int
    timestamp_ms: int  # the record's Kafka time (the producer's clock at send)


class Phases:
    """The fleet's readings in bursts of cycles, each acknowledged with its partition and offset."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        self.simulator = FleetSimulator(settings, fleet_start=start, panels=PANELS, seed=5, history=True)
        self.encoder = MessageEncoder(self.simulator.panel_ids)
        self.producer = kafka_clients.producer(settings, "fleet", **PRODUCER_CONFIG)
        self.cycle = 0

    def publish(self, cycles: int = CYCLES) -> list[Sent]:
        pending = []
        for _ in range(cycles):
            time_ms = self.simulator.fleet_start_ms + self.cycle * 1000
            readings = self.simulator.cycle(time_ms)
            values = self.encoder.encode(readings.power_w, readings.status, time_ms)
            for key, value in zip(self.encoder.keys, values, strict=True):
                pending.append((key.decode(), time_ms, self.producer.send(self.settings.topic, key=key, value=value)))
            self.cycle += 1
        self.producer.flush(timeout=60)
        sent = []
        for panel, time_ms, future in pending:
            metadata = future.get(timeout=60)
            sent.append(Sent(panel, time_ms, metadata.partition, metadata.offset, metadata.timestamp))
        return sent

    def close(self) -> None:
        self.producer.close(timeout=10)


def _earliest_offsets(settings: Settings) -> dict[int, int]:
    consumer = kafka_clients.consumer(settings, role="admin", group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(settings.topic, p) for p in consumer.partitions_for_topic(settings.topic)]
        return {tp.partition: offset for tp, offset in consumer.beginning_offsets(partitions).items()}
    finally:
        consumer.close()


def _by_partition(sent: list[Sent]) -> dict[int, list[Sent]]:
    out: dict[int, list[Sent]] = {}
    for record in sorted(sent, key=lambda r: (r.partition, r.offset)):
        out.setdefault(record.partition, []).append(record)
    return out


def _kafka_time(ms: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(milliseconds=ms)


@pytest.mark.timeout(600)
def test_offsets_deleted_unread_are_recorded_and_the_stream_carries_on(fresh_settings: Settings,
                                                                        tmp_path: Path) -> None:
    settings = fresh_settings
    with kafka_clients.admin(settings) as admin:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topic, configs={
            "retention.ms": str(RETENTION_MS), "segment.ms": str(SEGMENT_MS)})])
    figures = Figures("Kafka retention overrun")
    phases = Phases(settings)
    stream = StreamProcess(settings, tmp_path)
    try:
        stream.start()
        # Spark takes seconds to minutes to start on a busy machine: A must not expire before it is read.
        wait_until(lambda: batches_recorded(settings) >= 1, 300, "the stream's first batch")
        a = phases.publish()
        wait_until(lambda: progress_rows_in(settings) >= len(a), 240, "the stream to commit phase A")
        figures["stream_first_exit_code"] = stream.stop()
        b = phases.publish()
        published_b = time.time()
        b_end = {p: records[-1].offset for p, records in _by_partition(b).items()}
        wait_until(lambda: all(_earliest_offsets(settings)[p] > end for p, end in b_end.items()), 240,
                   "Kafka's retention to delete phase B")
        figures["retention_deleted_b_after_s"] = time.time() - published_b

        restarted_at = stream.start()
        wait_until(lambda: batches_recorded(settings, restarted_at) >= 1, 300, "the restarted stream's first batch")
        figures["restart_to_first_commit_s"] = time.time() - restarted_at
        c = phases.publish()
        wait_until(lambda: progress_rows_in(settings) >= len(a) + len(c), 240, "the stream to commit phase C")
        figures["restart_to_c_committed_s"] = time.time() - restarted_at
        time.sleep(5)  # still running a little later: no crash loop
        assert stream.running, f"the stream exited after the gap:\n{stream.log_tail()}"
        assert stream.starts == 2
    finally:
        phases.close()
        stream.stop()

    # panelData: A and C exactly once; B not at all.
    rows, _values = panel_data(settings)
    landed_keys = set(rows)
    read = {(r.panel, r.time_ms) for r in a + c}
    lost = {(r.panel, r.time_ms) for r in b}
    figures["generated"] = len(a) + len(b) + len(c)
    figures["acknowledged"] = figures.values["generated"]
    figures["landed"] = len(rows)
    figures["lost_to_retention"] = len(lost - landed_keys)
    figures["duplicated"] = sum(n - 1 for n in rows.values() if n > 1)
    figures["dead_letters"] = dead_letter_count(settings)
    assert landed_keys == read, (sorted(read - landed_keys)[:5], sorted(landed_keys - read)[:5])
    assert figures.values["duplicated"] == 0 and figures.values["dead_letters"] == 0

    # lost_offsets: exactly B's offsets, one gap per partition, with the time span around it.
    with db.engine(settings).connect() as conn:
        gaps = conn.execute(text(
            f"SELECT kafka_partition, first_offset, last_offset, records, published_after, published_before "
            f"FROM {db.LOST_OFFSETS} ORDER BY kafka_partition")).all()
    before, after = _by_partition(a), _by_partition(c)
    expected = [(p, records[0].offset, records[-1].offset, len(records), _kafka_time(before[p][-1].timestamp_ms),
                 _kafka_time(after[p][0].timestamp_ms)) for p, records in _by_partition(b).items()]
    assert [tuple(gap) for gap in gaps] == expected
    figures["gaps_recorded"] = len(gaps)
    figures["records_recorded_lost"] = sum(gap[3] for gap in gaps)
    figures["lost_not_recorded"] = len(lost) - figures.values["records_recorded_lost"]
    assert_derived_equal_recompute(settings)

    # Dagster's check and the API's health show the gaps.
    check = live_checks.no_lost_offsets(solar=SolarSettingsResource.for_settings(settings))
    assert not check.passed and check.metadata["records_lost"].value == len(b)
    health = create_app(settings, rate_per_second=None).test_client().get("/api/v1/health").get_json()
    assert health["lost_offsets"]["records_last_24h"] == len(b)
    assert {gap["partition"] for gap in health["lost_offsets"]["newest"]} == set(before)
    figures["stream_restarts"] = stream.starts - 1
    figures.record(tmp_path)
