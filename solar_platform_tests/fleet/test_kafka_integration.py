"""The fleet against the real Kafka cluster: publish a small deterministic fleet, read it all back."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from kafka import TopicPartition

from solar_platform import kafka_clients
from solar_platform.contracts import parse_reading
from solar_platform.fleet.publisher import fast_forward, key_partitions
from solar_platform.fleet.simulation import from_epoch_ms, simulate_readings
from solar_platform.settings import Settings
from solar_platform_tests.fleet.support import fleet_settings

PANELS = 25
SEED = 2024
START = datetime(2024, 6, 1, 11, 50, tzinfo=UTC)  # the demo window's rising edge: varied values
END = START + timedelta(minutes=1)  # 12 cycles at the seed's 5 s


def consume_all(
    settings: Settings, expected: int, timeout_s: float = 60.0
) -> tuple[set[int], list[tuple[int, bytes, bytes]]]:
    """The topic's partitions, and (partition, key, value) of every record on it from the beginning."""
    consumer = kafka_clients.consumer(
        settings,
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=2000,
    )
    try:
        partitions = [TopicPartition(settings.topic, p) for p in sorted(consumer.partitions_for_topic(settings.topic))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[tuple[int, bytes, bytes]] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            records.extend((record.partition, record.key, record.value) for record in consumer)
        # nothing beyond the expected count arrives a moment later either
        records.extend((record.partition, record.key, record.value) for record in consumer)
        return {tp.partition for tp in partitions}, records
    finally:
        consumer.close()


@pytest.mark.integration
def test_fast_forward_round_trips_through_kafka(kafka_stack: Settings) -> None:
    settings = fleet_settings(kafka_stack, offline_probability_pct=20.0)
    expected = simulate_readings(settings, start=START, end=END, panels=PANELS, seed=SEED)

    summary = fast_forward(settings, start=START, end=END, panels=PANELS, seed=SEED)
    assert summary.all_delivered, summary.as_dict()
    assert summary.messages_delivered == expected.count == 12 * PANELS

    topic_partitions, records = consume_all(settings, expected.count)
    assert len(records) == expected.count

    by_key: dict[bytes, list[tuple[int, bytes]]] = defaultdict(list)
    for partition, key, value in records:
        by_key[key].append((partition, value))
    assert sorted(by_key) == [panel_id.encode() for panel_id in expected.panel_ids]

    for column, panel_id in enumerate(expected.panel_ids):
        key = panel_id.encode()
        partitions = {partition for partition, _value in by_key[key]}
        # one partition per panel, the one Kafka's default partitioner picks, so other producers agree
        assert partitions == {key_partitions([key], topic_partitions)[0]}

        # per key, one partition, so Kafka keeps the publishing order: time ascending
        readings = [parse_reading(value) for _partition, value in by_key[key]]
        assert [r.time_utc for r in readings] == [from_epoch_ms(t) for t in expected.times_ms.tolist()]
        assert [r.panel_id for r in readings] == [panel_id] * len(readings)
        assert [r.power_w for r in readings] == expected.power_w[:, column].tolist()
        assert [r.status for r in readings] == expected.status[:, column].tolist()
