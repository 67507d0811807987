"""A micro-batch's Kafka records, collected to the driver and judged by the contract and the clock rules.

Spark reads the topic's partitions in parallel and hands the driver one Arrow table per batch
(`collect_records`: key, value, position and Kafka time). The driver judges every value with the
contract's one parser, `contracts.parse_values` (the fleet's compact form by vectorised Arrow
kernels, anything else by `contracts.parse_reading`, row by row), then applies the ingest clock
rules (`judge`).

Parsing in the driver, not in Python workers beside the executors: measured on this 2-core
machine, shipping a batch to Python workers and back (`mapInArrow`) cost more than the parse
itself once the parse became vectorised (docs/benchmarks.md). The parse runs at about a million
readings a second on one core, far above what one MariaDB takes, so the driver is not the limit
when Spark's executors move to other hosts either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame
from pyspark.sql import functions as sf

from solar_platform import contracts
from solar_platform.contracts import RejectReason
from solar_platform.storage.stream.offsets import PartitionSpan

REJECT_REASON = contracts.REJECT_REASON
TIMESTAMP_MICROS = "timestamp_us"  # the record's Kafka timestamp, epoch µs
KAFKA_COLUMNS = ("key", "value", "partition", "offset", TIMESTAMP_MICROS)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def collect_records(records: DataFrame) -> pa.Table:
    """The batch's records in the driver, as one Arrow table of `KAFKA_COLUMNS`."""
    return records.select("key", "value", "partition", "offset",
                          sf.unix_micros("timestamp").alias(TIMESTAMP_MICROS)).toArrow()


def micros(moment: datetime) -> int:
    """Epoch microseconds of an aware datetime."""
    return (moment.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)


def clock_rule_reasons(time_us: npt.NDArray[np.float64], reasons: list[str | None], latest_allowed_us: int,
                       floor_us: int) -> list[str | None]:
    """The ingest clock rules on parsed readings (times NaN and a reason where the parser rejected):
    a reading stamped after `latest_allowed_us` is `time_in_future`, one before `floor_us` is
    `time_out_of_range`. A reason the parser gave stays."""
    out = np.asarray(reasons, dtype=object)
    valid = np.equal(out, None)
    with np.errstate(invalid="ignore"):
        out[valid & (time_us > latest_allowed_us)] = RejectReason.TIME_IN_FUTURE.value
        out[valid & (time_us < floor_us)] = RejectReason.TIME_OUT_OF_RANGE.value
    return out.tolist()


@dataclass(frozen=True)
class JudgedBatch:
    readings: pa.Table  # valid readings: the contract's fields (time as `contracts.TIME_MICROS`), partition, offset
    rejected: pa.Table  # `KAFKA_COLUMNS` + `reject_reason` of every record that is not a valid reading
    records: int  # Kafka records in the batch


def judge(records: pa.Table, source_zone: str, ingested_at: datetime, max_clock_skew_seconds: float,
          min_reading_time: datetime) -> JudgedBatch:
    """Parse every record with the contract, then apply the clock rules against `ingested_at` (one
    instant per batch, so a batch judges all its readings alike): a clock more than the skew ahead
    is `time_in_future`, one before the floor `time_out_of_range`."""
    parsed = contracts.parse_values(records.column("value").combine_chunks(), source_zone)
    times = parsed.column(contracts.TIME_MICROS)
    reasons = pa.array(clock_rule_reasons(
        np.asarray(times.to_numpy(zero_copy_only=False), dtype=np.float64),
        parsed.column(REJECT_REASON).to_pylist(),
        micros(ingested_at) + round(max_clock_skew_seconds * 1_000_000), micros(min_reading_time)), pa.string())
    rejected = pc.is_valid(reasons)
    readings = pa.table({
        contracts.PANEL_ID: parsed.column(contracts.PANEL_ID), contracts.POWER: parsed.column(contracts.POWER),
        contracts.STATUS: parsed.column(contracts.STATUS), contracts.TIME_MICROS: times,
        "partition": records.column("partition"), "offset": records.column("offset"),
    }).filter(pc.invert(rejected))
    return JudgedBatch(readings, records.append_column(REJECT_REASON, reasons).filter(rejected), records.num_rows)


def partition_spans(records: pa.Table) -> list[PartitionSpan]:
    """Per partition of the batch's records (valid or not): the first and last offset, with their
    Kafka times: what the lost-offsets bookkeeping compares with the offsets it expected."""
    if records.num_rows == 0:
        return []
    partition = np.asarray(records.column("partition"), dtype=np.int64)
    offset = np.asarray(records.column("offset"), dtype=np.int64)
    time_us = records.column(TIMESTAMP_MICROS).to_pylist()
    order = np.lexsort((offset, partition))
    ordered = partition[order]
    firsts = np.flatnonzero(np.append(True, ordered[1:] != ordered[:-1]))
    lasts = np.append(firsts[1:] - 1, ordered.size - 1)
    return [PartitionSpan(int(ordered[first]), int(offset[order[first]]), time_us[order[first]],
                          int(offset[order[last]]), time_us[order[last]]) for first, last in zip(firsts, lasts,
                                                                                                  strict=True)]
