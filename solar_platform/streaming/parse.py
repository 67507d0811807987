"""The message contract in Spark: the one Python parser, `contracts.parse_reading`, run per row.

Each partition's rows cross to a Python worker as Arrow record batches (`DataFrame.mapInArrow`),
every Kafka `value` goes through `contracts.parse_reading`, and the batch comes back with the
contract's four fields and `reject_reason` appended. Nothing here re-states a rule: the contract is
whatever `contracts.parse_reading` does, and `solar_platform_tests/streaming/cases.py` is its
conformance suite. Measured faster than the Spark SQL re-creation of the rules it replaced
(docs/parser_choice.md).

Needs `pyarrow` wherever the Python workers run (pyspark's `sql` extra, a project dependency).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as sf
from pyspark.sql.types import ByteType, DoubleType, StringType, StructField, StructType, TimestampType

from solar_platform import contracts
from solar_platform.contracts import InvalidReading

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
_ONE_MICROSECOND = timedelta(microseconds=1)


def parse_batch(batch: pa.RecordBatch, value_column: str, source_zone: str) -> pa.RecordBatch:
    """`batch` with the five contract columns appended, each row's `value_column` parsed in Python."""
    import pyarrow as pa

    parse = contracts.parse_reading
    panels: list[str | None] = []
    powers: list[float | None] = []
    statuses: list[int | None] = []
    micros: list[int | None] = []
    reasons: list[str | None] = []
    for payload in batch.column(value_column).to_pylist():
        try:
            reading = parse(payload, source_zone)
        except InvalidReading as rejected:
            panels.append(None)
            powers.append(None)
            statuses.append(None)
            micros.append(None)
            reasons.append(rejected.reason.value)
        else:
            panels.append(reading.panel_id)
            powers.append(reading.power_w)
            statuses.append(reading.status)
            micros.append((reading.time_utc - _EPOCH) // _ONE_MICROSECOND)
            reasons.append(None)
    appended = [
        pa.array(panels, pa.string()),
        pa.array(powers, pa.float64()),
        pa.array(statuses, pa.int8()),
        # Instants: Spark reads an Arrow timestamp as microseconds since the epoch, whatever its zone label.
        pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        pa.array(reasons, pa.string()),
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
