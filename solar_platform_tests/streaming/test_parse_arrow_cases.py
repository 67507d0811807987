"""`streaming.parse_arrow` (contracts.parse_reading run in Spark through mapInArrow) on every shared case.

The same check `test_stream_job.py` makes of the Spark SQL parser, with its session fixture and its
outcome helpers, plus: the result has exactly the Spark SQL parser's schema on a Kafka-shaped frame.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pyspark.sql import SparkSession

# pyspark's mapInArrow needs both (its `sql` extra); neither is a project dependency yet (issue 12).
from solar_platform.streaming import (
    parse,
    parse_arrow,  # noqa: E402  (after the pyarrow check)
)
from solar_platform_tests.streaming.cases import CASES
from solar_platform_tests.streaming.test_stream_job import _expected_outcome, _spark_outcome, spark  # noqa: F401

pytestmark = pytest.mark.integration

KAFKA_COLUMNS = "key binary, value binary, topic string, partition int, offset long, timestamp timestamp"


def test_arrow_parser_agrees_with_every_case(spark: SparkSession) -> None:  # noqa: F811
    mismatches = []
    for zone in sorted({case.source_zone for case in CASES}):
        cases = [case for case in CASES if case.source_zone == zone]
        frame = spark.createDataFrame([(case.name, bytearray(case.payload)) for case in cases],
                                      "name string, value binary")
        rows = {row["name"]: row.asDict() for row in parse_arrow.parse_records(frame, zone).collect()}
        assert len(rows) == len(cases)
        for case in cases:
            got, expected = _spark_outcome(rows[case.name]), _expected_outcome(case)
            if got != expected:
                mismatches.append(f"{case.name}: arrow {got!r} != expected {expected!r}")
    assert not mismatches, "\n".join(mismatches)


def test_arrow_parser_keeps_kafka_columns_and_matches_the_sql_parsers_schema(spark: SparkSession) -> None:  # noqa: F811
    moment = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    records = spark.createDataFrame(
        [(bytearray(b"panel-1"), bytearray(CASES[0].payload), "t", 1, 41, moment),
         (None, None, "t", 0, 42, moment),  # a tombstone: null key and value
         (bytearray(b"x"), bytearray(b"not json"), "t", 0, 43, moment)],
        KAFKA_COLUMNS,
    )
    arrow_parsed = parse_arrow.parse_records(records)
    sql_parsed = parse.parse_records(records)
    assert arrow_parsed.schema == sql_parsed.schema

    def rows(frame: object) -> list[dict[str, object]]:
        return sorted((row.asDict() for row in frame.collect()), key=lambda row: row["offset"])  # type: ignore[attr-defined]

    assert rows(arrow_parsed) == rows(sql_parsed)
    assert [row[parse.REJECT_REASON] for row in rows(arrow_parsed)] == [None, "invalid_json", "invalid_json"]
    assert parse_arrow.valid_readings(arrow_parsed).count() == 1
    assert parse_arrow.rejected_records(arrow_parsed).count() == 2
