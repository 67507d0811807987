"""Offsets retention deleted before the stream read them: found per partition, recorded once, shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.stream import offsets
from solar_platform.storage.stream.offsets import Expected, Gap, PartitionSpan

T0 = datetime(2026, 12, 3, 8, 0, 0)
US = 1_000_000


def _us(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds() * US)


def _span(partition: int, first: int, last: int, first_time: datetime = T0, last_time: datetime = T0) -> PartitionSpan:
    return PartitionSpan(partition, first, _us(first_time), last, _us(last_time))


def test_a_gap_is_what_lies_between_the_offset_expected_and_the_first_one_read() -> None:
    before = T0 - timedelta(minutes=10)
    expected = {0: Expected(100, before), 1: Expected(50, before), 2: Expected(7, None)}
    spans = [
        _span(0, 100, 180),  # carries on where it stopped: no gap
        _span(1, 80, 90, first_time=T0 + timedelta(seconds=3)),  # 50..79 deleted unread
        _span(2, 3, 9),  # a re-read of offsets already read (a new checkpoint): no gap
        _span(3, 40, 41),  # first read of this partition: no expectation, no gap
    ]
    assert offsets.find_gaps(expected, spans) == [Gap(1, 50, 79, before, T0 + timedelta(seconds=3))]
    assert offsets.find_gaps(expected, spans)[0].records == 30
    assert offsets.find_gaps({}, spans) == []


@pytest.mark.integration
def test_offsets_and_gaps_are_recorded_once_and_never_go_back(fresh_settings: Settings) -> None:
    topic = fresh_settings.topic
    engine = db.engine(fresh_settings.as_role("stream"))

    def commit(spans: list[PartitionSpan], batch_id: int) -> list[Gap]:
        with engine.begin() as conn:
            gaps = offsets.find_gaps(offsets.expected_offsets(conn, topic), spans)
            offsets.record_batch_offsets(conn, topic, spans, gaps, batch_id)
        return gaps

    assert commit([_span(0, 0, 99, last_time=T0), _span(1, 0, 49, last_time=T0)], 0) == []
    lost_at = T0 + timedelta(minutes=30)
    gaps = commit([_span(0, 100, 149), _span(1, 75, 99, first_time=lost_at, last_time=lost_at)], 1)
    assert gaps == [Gap(1, 50, 74, T0, lost_at)]
    with engine.begin() as conn:  # the same batch again (a replay that had not committed): recorded once
        offsets.record_batch_offsets(conn, topic, [_span(1, 75, 99)], gaps, 1)
    # offsets read again from an older position (a new checkpoint) move nothing back
    assert commit([_span(0, 10, 20, last_time=T0 - timedelta(days=1))], 2) == []
    with engine.connect() as conn:
        expected = offsets.expected_offsets(conn, topic)
        rows = conn.execute(text(f"SELECT kafka_partition, first_offset, last_offset, records, published_after, "
                                 f"published_before, batch_id FROM {db.LOST_OFFSETS}")).all()
    assert expected == {0: Expected(150, T0), 1: Expected(100, lost_at)}
    assert [tuple(row) for row in rows] == [(1, 50, 74, 25, T0, lost_at, 1)]

    with db.engine(fresh_settings, readonly=True).connect() as conn:  # what the API and Dagster read
        summary = offsets.lost_offsets_summary(conn, since=datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1))
        old = offsets.lost_offsets_summary(conn, since=datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1))
    assert (summary.gaps, summary.records, len(summary.newest)) == (1, 25, 1)
    assert summary.newest[0].partition == 1 and summary.newest[0].topic == topic
    assert (old.gaps, old.records, len(old.newest)) == (0, 0, 1)  # the newest gaps, whenever found
