"""`streaming.parse`: a batch's records collected by Spark and judged in the driver by the contract's
parser and the clock rules. Every shared case of `cases.py` goes through `judge` exactly as the stream
sends it; `collect_records` runs on the real Spark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from pyspark.sql import SparkSession

from solar_platform.contracts import PANEL_ID, POWER, STATUS, TIME_MICROS, Reading
from solar_platform.streaming import parse
from solar_platform_tests.streaming.cases import CASES, Case, message

INGESTED_AT = datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)
FLOOR = datetime(2000, 1, 1, tzinfo=UTC)


def _records(payloads: list[bytes | None]) -> pa.Table:
    n = len(payloads)
    return pa.table({"key": pa.array([b"k"] * n, pa.binary()), "value": pa.array(payloads, pa.binary()),
                     "partition": pa.array([0] * n, pa.int32()), "offset": pa.array(range(n), pa.int64()),
                     parse.TIMESTAMP_MICROS: pa.array([1] * n, pa.int64())})


def _expected(case: Case) -> tuple[object, ...] | str:
    if isinstance(case.expected, Reading):
        reading = case.expected
        return (reading.panel_id, repr(reading.power_w), reading.status,
                parse.micros(reading.time_utc))
    return case.expected.value


def test_every_case_is_judged_as_the_contract_says() -> None:
    mismatches = []
    for zone in sorted({case.source_zone for case in CASES}):
        cases = [case for case in CASES if case.source_zone == zone]
        # The cases' readings are from 2024: judge them with the clock of their own day.
        judged = parse.judge(_records([case.payload for case in cases]), zone, INGESTED_AT, 10 * 365 * 86400, FLOOR)
        valid = {row["offset"]: row for row in judged.readings.to_pylist()}
        rejected = {row["offset"]: row for row in judged.rejected.to_pylist()}
        assert len(valid) + len(rejected) == len(cases) == judged.records
        for offset, case in enumerate(cases):
            if offset in valid:
                row = valid[offset]
                got: object = (row[PANEL_ID], repr(row[POWER]), row[STATUS], row[TIME_MICROS])
            else:
                got = rejected[offset][parse.REJECT_REASON]
                assert rejected[offset]["value"] == case.payload and rejected[offset]["key"] == b"k"
            if got != _expected(case):
                mismatches.append(f"{case.name}: {got!r} != {_expected(case)!r}")
    assert not mismatches, "\n".join(mismatches)


def test_clock_rules_reject_a_future_and_a_too_old_reading() -> None:
    ahead = (INGESTED_AT + timedelta(seconds=301)).isoformat().replace("+00:00", "Z")
    within = (INGESTED_AT + timedelta(seconds=299)).isoformat().replace("+00:00", "Z")
    judged = parse.judge(_records([message(time_data=ahead), message(time_data=within),
                                   message(time_data="1999-12-31T23:59:59Z"), None]),
                         "UTC", INGESTED_AT, 300, FLOOR)
    assert judged.readings.column("offset").to_pylist() == [1]
    assert dict(zip(judged.rejected.column("offset").to_pylist(),
                    judged.rejected.column(parse.REJECT_REASON).to_pylist(), strict=True)) == {
        0: "time_in_future", 2: "time_out_of_range", 3: "invalid_json"}


@pytest.mark.integration
def test_collect_records_hands_the_driver_kafkas_columns(spark: SparkSession) -> None:
    moment = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    records = spark.createDataFrame(
        [(bytearray(b"panel-1"), bytearray(CASES[0].payload), "t", 1, 41, moment),
         (None, None, "t", 0, 42, moment)],  # a tombstone: null key and value
        "key binary, value binary, topic string, partition int, offset long, timestamp timestamp",
    )
    table = parse.collect_records(records)
    assert table.column_names == list(parse.KAFKA_COLUMNS)
    rows = sorted(table.to_pylist(), key=lambda row: row["offset"])
    assert rows[0] == {"key": b"panel-1", "value": CASES[0].payload, "partition": 1, "offset": 41,
                       parse.TIMESTAMP_MICROS: parse.micros(moment)}
    assert rows[1]["key"] is None and rows[1]["value"] is None
    judged = parse.judge(table, "UTC", moment, 300, FLOOR)
    assert judged.readings.num_rows == 1 and judged.rejected.column(parse.REJECT_REASON).to_pylist() == [
        "invalid_json"]


def test_partition_spans_give_each_partitions_first_and_last_record() -> None:
    records = pa.table({
        "key": [b"a"] * 5, "value": [b"{}"] * 5, "partition": pa.array([1, 0, 1, 0, 1], pa.int32()),
        "offset": pa.array([12, 7, 10, 3, 11], pa.int64()), parse.TIMESTAMP_MICROS: [120, 70, 100, 30, 110]})
    assert parse.partition_spans(records) == [
        parse.PartitionSpan(0, 3, 30, 7, 70), parse.PartitionSpan(1, 10, 100, 12, 120)]
    assert parse.partition_spans(records.slice(0, 0)) == []
