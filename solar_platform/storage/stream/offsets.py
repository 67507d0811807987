"""The Kafka offsets the stream has read, and the ones it never read because retention deleted them.

Spark's Kafka source runs with `failOnDataLoss=false`: when the offsets a batch should start at
are gone (the stream was down longer than the topic's retention), it carries on from the earliest
offset left instead of failing for ever. What was skipped is recorded here, in the batch's own
transaction:

- `stream_offsets` holds each partition's next expected offset and the Kafka time of the last
  record read there;
- a batch whose first record of a partition lies beyond that offset skipped the records in
  between: one `lost_offsets` row per such gap (partition, first and last offset, and the span of
  time they were published in: after the last record read, before the first one after the gap).

A replayed batch that had committed is skipped whole (its progress row); one that had not sees
the same expectations again, and its gap rows are `INSERT IGNORE` on (topic, partition, first
offset). A partition read for the first time has no expectation: nothing before its first record
counts as lost (a new topic, or a stream pointed at a topic with history).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from solar_platform.storage.db import LOST_OFFSETS, STREAM_OFFSETS

_EPOCH = datetime(1970, 1, 1)


def utc_naive(epoch_micros: int | None) -> datetime | None:
    """A DATETIME column's value (the UTC wall clock) from epoch microseconds."""
    return None if epoch_micros is None else _EPOCH + timedelta(microseconds=int(epoch_micros))


@dataclass(frozen=True)
class PartitionSpan:
    """The records of one partition in a batch: the first and last offset, with their Kafka times."""

    partition: int
    first_offset: int
    first_time_us: int | None
    last_offset: int
    last_time_us: int | None


@dataclass(frozen=True)
class Expected:
    """What the stream expects next from a partition."""

    next_offset: int
    last_time: datetime | None  # naive UTC: the Kafka time of the last record read


@dataclass(frozen=True)
class Gap:
    """Offsets `first_offset`..`last_offset` of a partition, never read."""

    partition: int
    first_offset: int
    last_offset: int
    published_after: datetime | None  # naive UTC
    published_before: datetime | None

    @property
    def records(self) -> int:
        return self.last_offset - self.first_offset + 1


def find_gaps(expected: Mapping[int, Expected], spans: Iterable[PartitionSpan]) -> list[Gap]:
    """The gaps between what each partition was expected to give next and what the batch read first."""
    gaps = []
    for span in spans:
        before = expected.get(span.partition)
        if before is not None and span.first_offset > before.next_offset:
            gaps.append(Gap(span.partition, before.next_offset, span.first_offset - 1, before.last_time,
                            utc_naive(span.first_time_us)))
    return gaps


_EXPECTED = text(f"SELECT kafka_partition, next_offset, last_timestamp FROM {STREAM_OFFSETS} WHERE kafka_topic = :t")
# Left to right: the time moves only with the offset (a re-read of older offsets changes neither).
_READ = text(
    f"INSERT INTO {STREAM_OFFSETS} (kafka_topic, kafka_partition, next_offset, last_timestamp, updated_at) "
    "VALUES (:t, :p, :next, :time, UTC_TIMESTAMP(3)) ON DUPLICATE KEY UPDATE "
    "last_timestamp = IF(VALUES(next_offset) > next_offset, VALUES(last_timestamp), last_timestamp), "
    "next_offset = GREATEST(next_offset, VALUES(next_offset)), updated_at = VALUES(updated_at)")
_GAP = text(
    f"INSERT IGNORE INTO {LOST_OFFSETS} (kafka_topic, kafka_partition, first_offset, last_offset, records, "
    "published_after, published_before, batch_id) VALUES (:t, :p, :first, :last, :records, :after, :before, :batch)")


def expected_offsets(conn: Connection, topic: str) -> dict[int, Expected]:
    """Each partition's next expected offset (read in the batch's transaction; one job writes them)."""
    return {int(partition): Expected(int(offset), last) for partition, offset, last in conn.execute(_EXPECTED,
                                                                                                    {"t": topic})}


def record_batch_offsets(conn: Connection, topic: str, spans: Sequence[PartitionSpan], gaps: Sequence[Gap],
                         batch_id: int) -> None:
    """The batch's gaps, and each partition's next expected offset, in the batch's transaction."""
    if gaps:
        conn.execute(_GAP, [{"t": topic, "p": gap.partition, "first": gap.first_offset, "last": gap.last_offset,
                             "records": gap.records, "after": gap.published_after, "before": gap.published_before,
                             "batch": batch_id} for gap in gaps])
    if spans:
        conn.execute(_READ, [{"t": topic, "p": span.partition, "next": span.last_offset + 1,
                              "time": utc_naive(span.last_time_us)} for span in spans])


# -------------------------------------------------------------------------- what operators read
@dataclass(frozen=True)
class LostOffsets:
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    records: int
    published_after: datetime | None  # naive UTC
    published_before: datetime | None
    detected_at: datetime


@dataclass(frozen=True)
class LostOffsetsSummary:
    gaps: int  # since the time asked for
    records: int
    newest: list[LostOffsets]  # the newest gaps, newest first, whenever they were found


def lost_offsets_summary(conn: Connection, *, since: datetime, limit: int = 10) -> LostOffsetsSummary:
    """Gaps and lost records since `since` (naive UTC; a range of the `detected_at` index), and the
    newest `limit` gaps."""
    gaps, records = conn.execute(text(
        f"SELECT COUNT(*), COALESCE(SUM(records), 0) FROM {LOST_OFFSETS} WHERE detected_at >= :since"),
        {"since": since}).one()
    newest = [LostOffsets(*row) for row in conn.execute(text(
        f"SELECT kafka_topic, kafka_partition, first_offset, last_offset, records, published_after, "
        f"published_before, detected_at FROM {LOST_OFFSETS} ORDER BY detected_at DESC, id DESC LIMIT :limit"),
        {"limit": limit})]
    return LostOffsetsSummary(int(gaps), int(records), newest)
