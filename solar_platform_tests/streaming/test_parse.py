"""`streaming.parse`, the contract in Spark (`contracts.parse_reading` through mapInArrow), on the real
Spark: every shared case of `cases.py`, and a Kafka-shaped frame whose columns pass through."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pyspark.sql import SparkSession
from pyspark.sql.types import ByteType, DoubleType, StringType, TimestampType

from solar_platform.contracts import Reading
from solar_platform.streaming import parse
from solar_platform_tests.streaming.cases import CASES, Case

pytestmark = pytest.mark.integration

KAFKA_COLUMNS = "key binary, value binary, topic string, partition int, offset long, timestamp timestamp"


def _spark_outcome(row: dict[str, object]) -> tuple[object, ...] | str:
    if row[parse.REJECT_REASON] is not None:
        return str(row[parse.REJECT_REASON])
    moment = row[parse.TIME]
    assert isinstance(moment, datetime)
    return (row[parse.PANEL_ID], repr(row[parse.POWER]), row[parse.STATUS], moment.replace(tzinfo=UTC))


def _expected_outcome(case: Case) -> tuple[object, ...] | str:
    if isinstance(case.expected, Reading):
        reading = case.expected
        return (reading.panel_id, repr(reading.power_w), reading.status, reading.time_utc)
    return case.expected.value


def test_spark_parser_agrees_with_every_case(spark: SparkSession) -> None:
    mismatches = []
    for zone in sorted({case.source_zone for case in CASES}):
        cases = [case for case in CASES if case.source_zone == zone]
        frame = spark.createDataFrame([(case.name, bytearray(case.payload)) for case in cases],
                                      "name string, value binary")
        rows = {row["name"]: row.asDict() for row in parse.parse_records(frame, zone).collect()}
        assert len(rows) == len(cases)
        for case in cases:
            got, expected = _spark_outcome(rows[case.name]), _expected_outcome(case)
            if got != expected:
                mismatches.append(f"{case.name}: spark {got!r} != expected {expected!r}")
    assert not mismatches, "\n".join(mismatches)


def test_kafka_columns_pass_through_and_a_tombstone_is_rejected(spark: SparkSession) -> None:
    moment = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    records = spark.createDataFrame(
        [(bytearray(b"panel-1"), bytearray(CASES[0].payload), "t", 1, 41, moment),
         (None, None, "t", 0, 42, moment),  # a tombstone: null key and value
         (bytearray(b"x"), bytearray(b"not json"), "t", 0, 43, moment)],
        KAFKA_COLUMNS,
    )
    parsed = parse.parse_records(records)
    # Kafka's columns unchanged and first, then the contract's fields typed as panelData's.
    assert parsed.schema.fields[: len(records.columns)] == records.schema.fields
    assert [(field.name, field.dataType) for field in parsed.schema.fields[len(records.columns):]] == [
        (parse.PANEL_ID, StringType()), (parse.POWER, DoubleType()), (parse.STATUS, ByteType()),
        (parse.TIME, TimestampType()), (parse.REJECT_REASON, StringType()),
    ]
    rows = sorted((row.asDict() for row in parsed.collect()), key=lambda row: row["offset"])
    assert [(row["key"], row["topic"], row["partition"], row["offset"]) for row in rows] == [
        (b"panel-1", "t", 1, 41), (None, "t", 0, 42), (b"x", "t", 0, 43)]
    assert _spark_outcome(rows[0]) == _expected_outcome(CASES[0])
    assert [row[parse.REJECT_REASON] for row in rows] == [None, "invalid_json", "invalid_json"]
    assert all(row[field] is None for row in rows[1:] for field in parse.READING_COLUMNS)
    assert parse.valid_readings(parsed).count() == 1
    assert parse.rejected_records(parsed).count() == 2
