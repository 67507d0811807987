"""The message contract in Spark: the one parser, `contracts.parse_values`, run on Arrow batches.

Each partition's rows cross to a Python worker as Arrow record batches (`DataFrame.mapInArrow`),
a whole batch of Kafka `value`s goes through `contracts.parse_values` (the fleet's compact form by
vectorised Arrow kernels, anything else by `contracts.parse_reading`, row by row), and the batch
comes back with the contract's four fields and `reject_reason` appended. Nothing here re-states a
rule: the contract is whatever `contracts` does, and `solar_platform_tests/streaming/cases.py` is
its conformance suite.

`ingest_records` is the stream's form: the same parse, the clock rules applied in the same pass,
and payloads kept only for rejects, so what the driver collects is small.

Needs `pyarrow` wherever the Python workers run (pyspark's `sql` extra, a project dependency).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf
from pyspark.sql.types import (
    BinaryType,
    ByteType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from solar_platform import contracts
from solar_platform.contracts import RejectReason

if TYPE_CHECKING:
    import pyarrow as pa

# Output columns: the contract's own names, which are also panelData's columns.
PANEL_ID = contracts.PANEL_ID
POWER = contracts.POWER
STATUS = contracts.STATUS
TIME = contracts.TIME
READING_COLUMNS = contracts.FIELDS
REJECT_REASON = "reject_reason"

# The appended columns; status is a TINYINT, as in panelData.
OUTPUT_FIELDS = (
    StructField(PANEL_ID, StringType()),
    StructField(POWER, DoubleType()),
    StructField(STATUS, ByteType()),
    StructField(TIME, TimestampType()),
    StructField(REJECT_REASON, StringType()),
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_batch(batch: pa.RecordBatch, value_column: str, source_zone: str) -> pa.RecordBatch:
    """`batch` with the five contract columns appended, its `value_column` parsed by the contract."""
    import pyarrow as pa

    parsed = contracts.parse_values(batch.column(value_column), source_zone)
    appended = [
        parsed.column(contracts.PANEL_ID), parsed.column(contracts.POWER), parsed.column(contracts.STATUS),
        # Instants: Spark reads an Arrow timestamp as microseconds since the epoch, whatever its zone label.
        parsed.column(contracts.TIME_MICROS).cast(pa.timestamp("us", tz="UTC")),
        parsed.column(contracts.REJECT_REASON),
    ]
    names = [*batch.schema.names, *(field.name for field in OUTPUT_FIELDS)]
    return pa.RecordBatch.from_arrays([*batch.columns, *appended], names=names)


BatchParser = Callable[[Iterable["pa.RecordBatch"]], Iterator["pa.RecordBatch"]]


def _batch_parser(value_column: str, source_zone: str) -> BatchParser:
    def parse_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield parse_batch(batch, value_column, source_zone)

    return parse_batches


def output_schema(records: DataFrame) -> StructType:
    return StructType([*records.schema.fields, *OUTPUT_FIELDS])


def parse_records(records: DataFrame, source_zone: str = "UTC", value_column: str = "value") -> DataFrame:
    """`records` (a binary Kafka `value` and any other columns) plus the contract's four fields and
    `reject_reason`: null for a valid reading, else the `RejectReason` value; fields are null then.

    `source_zone` is the zone naive timestamps are read in (`settings.source_timezone`).
    """
    return records.mapInArrow(_batch_parser(value_column, source_zone), output_schema(records))


def valid_readings(parsed: DataFrame) -> DataFrame:
    return parsed.where(sf.col(REJECT_REASON).isNull())


def rejected_records(parsed: DataFrame) -> DataFrame:
    return parsed.where(sf.col(REJECT_REASON).isNotNull())


# ------------------------------------------------------------------------------- the stream's form
# What the driver collects of each record: the reading (or its reject reason) and its position;
# key, value and Kafka time only for rejects (dead letters keep them), so valid rows stay small.
INGEST_FIELDS = (
    StructField("partition", IntegerType()),
    StructField("offset", LongType()),
    StructField(PANEL_ID, StringType()),
    StructField(POWER, DoubleType()),
    StructField(STATUS, ByteType()),
    StructField(contracts.TIME_MICROS, LongType()),
    StructField(REJECT_REASON, StringType()),
    StructField("topic", StringType()),
    StructField("key", BinaryType()),
    StructField("value", BinaryType()),
    StructField("timestamp_us", LongType()),
)


def _micros(moment: datetime) -> int:
    return (moment.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)


def clock_rule_reasons(time_us: npt.NDArray[np.float64], reasons: list[str | None], latest_allowed_us: int,
                       floor_us: int) -> list[str | None]:
    """The ingest clock rules on a parsed batch (times NaN and a reason where the parser rejected):
    a reading stamped after `latest_allowed_us` is `time_in_future`, one before `floor_us` is
    `time_out_of_range`. A reason the parser gave stays."""
    out = np.asarray(reasons, dtype=object)
    valid = np.equal(out, None)
    with np.errstate(invalid="ignore"):
        out[valid & (time_us > latest_allowed_us)] = RejectReason.TIME_IN_FUTURE.value
        out[valid & (time_us < floor_us)] = RejectReason.TIME_OUT_OF_RANGE.value
    return out.tolist()


def _where(mask: pa.Array, column: pa.Array) -> pa.Array:
    """`column` where `mask`, null elsewhere."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.if_else(mask, column, pa.nulls(len(column), column.type))


def _ingest_batch(batch: pa.RecordBatch, source_zone: str, latest_allowed_us: int, floor_us: int) -> pa.RecordBatch:
    import pyarrow as pa
    import pyarrow.compute as pc

    parsed = contracts.parse_values(batch.column("value"), source_zone)
    micros = parsed.column(contracts.TIME_MICROS)
    reasons = clock_rule_reasons(np.asarray(micros.to_numpy(zero_copy_only=False), dtype=np.float64),
                                 parsed.column(contracts.REJECT_REASON).to_pylist(), latest_allowed_us, floor_us)
    rejected = pa.array([reason is not None for reason in reasons], pa.bool_())
    valid = pc.invert(rejected)
    return pa.RecordBatch.from_arrays([
        batch.column("partition"), batch.column("offset"),
        _where(valid, parsed.column(PANEL_ID)), _where(valid, parsed.column(POWER)),
        _where(valid, parsed.column(STATUS)), _where(valid, micros),
        pa.array(reasons, pa.string()),
        _where(rejected, batch.column("topic")), _where(rejected, batch.column("key")),
        _where(rejected, batch.column("value")), _where(rejected, pc.cast(batch.column("timestamp"), pa.int64())),
    ], names=[field.name for field in INGEST_FIELDS])


def ingest_records(records: DataFrame, source_zone: str, ingested_at: datetime, max_clock_skew_seconds: float,
                   min_reading_time: datetime) -> DataFrame:
    """Kafka records -> `INGEST_FIELDS`: parsed by the contract, judged by the clock rules against
    `ingested_at` (one instant per batch, so a batch judges all its readings alike)."""
    latest_allowed = _micros(ingested_at) + round(max_clock_skew_seconds * 1_000_000)
    floor = _micros(min_reading_time)

    def parse_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield _ingest_batch(batch, source_zone, latest_allowed, floor)

    kafka = records.select("key", "value", "topic", "partition", "offset", "timestamp")
    return kafka.mapInArrow(parse_batches, StructType(list(INGEST_FIELDS)))
