"""Retention on real MariaDB: day partitions made by migrate and ahead, rows in p_future moved, expired
days dropped (and only those), stream_progress pruned, and the cheap size/heartbeat figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from solar_platform.storage import db, migrations, pipeline_status, retention

pytestmark = pytest.mark.integration


def _names(settings, table: str) -> list[str]:
    with db.engine(settings).connect() as conn:
        return [p.name for p in retention.partitions(conn, table)]


def _insert(settings, rows: list[tuple[str, datetime]]) -> None:
    with db.engine(settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO panelData (Panel_id, power_panel, current_status, time_data) "
                          "VALUES (:p, 1.0, 1, :t)"), [{"p": p, "t": t} for p, t in rows])
        conn.execute(text("INSERT INTO panelDataAgg (Panel_id, total_power, window_start, window_end, reading_count) "
                          "VALUES (:p, 1.0, :t, :t + INTERVAL 30 SECOND, 1)"), [{"p": p, "t": t} for p, t in rows])


def _rows_in(settings, table: str, partition: str) -> int:
    with db.engine(settings).connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM `{table}` PARTITION ({partition})")).scalar())


def test_partition_names_round_trip() -> None:
    day = date(2026, 3, 29)
    assert retention.partition_name(day) == "p20260329"
    assert retention.from_days(retention.to_days(day)) == day
    assert retention.to_days(date(2000, 1, 1)) == 730485  # MySQL's TO_DAYS('2000-01-01')


def test_migrate_makes_today_and_the_days_ahead(fresh_settings) -> None:
    today = datetime.now(UTC).date()
    ahead = fresh_settings.raw_partition_days_ahead
    expected = ["p_start", *(retention.partition_name(today + timedelta(days=i)) for i in range(ahead + 1)), "p_future"]
    for table in retention.PARTITIONED:
        assert _names(fresh_settings, table) == expected
    # idempotent: a second migrate (and a second ensure) changes nothing
    assert migrations.migrate(fresh_settings) == []
    assert retention.ensure_day_partitions(fresh_settings) == {t: [] for t in retention.PARTITIONED}
    assert _names(fresh_settings, "panelData") == expected


def test_rows_in_p_future_move_into_their_days_and_expired_days_drop(fresh_settings) -> None:
    today = datetime.now(UTC).date()
    ahead = fresh_settings.raw_partition_days_ahead
    beyond = today + timedelta(days=ahead + 2)  # lands in p_future
    _insert(fresh_settings, [("a", datetime.combine(beyond, datetime.min.time()) + timedelta(hours=h))
                             for h in range(3)])
    assert _rows_in(fresh_settings, "panelData", "p_future") == 3
    created = retention.ensure_day_partitions(fresh_settings, through=beyond)
    assert created["panelData"] == [retention.partition_name(today + timedelta(days=i))
                                    for i in range(ahead + 1, ahead + 3)]
    assert _rows_in(fresh_settings, "panelData", retention.partition_name(beyond)) == 3
    assert _rows_in(fresh_settings, "panelDataAgg", retention.partition_name(beyond)) == 3
    assert _rows_in(fresh_settings, "panelData", "p_future") == 0

    # 'today' moves on: the days older than the retention drop whole, the rest (and p_future) stay
    later = today + timedelta(days=fresh_settings.raw_retention_days + 2)
    report = retention.drop_expired_partitions(fresh_settings, today=later)
    keep_from = later - timedelta(days=fresh_settings.raw_retention_days)
    assert report.dropped["panelData"] == [retention.partition_name(today),
                                           retention.partition_name(today + timedelta(days=1))]
    assert all(datetime.strptime(n, "p%Y%m%d").date() >= keep_from
               for n in _names(fresh_settings, "panelData") if n not in ("p_start", "p_future"))
    assert _rows_in(fresh_settings, "panelData", retention.partition_name(beyond)) == 3  # kept
    dropped_again = retention.drop_expired_partitions(fresh_settings, today=later).dropped
    assert dropped_again == {table: [] for table in retention.PARTITIONED}


def test_a_table_without_day_partitions_starts_at_its_oldest_row(fresh_settings) -> None:
    # back to the migration's layout (p_start + p_future), with history already in p_future
    with db.engine(fresh_settings).begin() as conn:
        for table, column in retention.PARTITIONED.items():
            conn.execute(text(f"ALTER TABLE `{table}` PARTITION BY RANGE (TO_DAYS({column})) ("
                              "PARTITION p_start VALUES LESS THAN (TO_DAYS('2000-01-01')), "
                              "PARTITION p_future VALUES LESS THAN MAXVALUE)"))
    old = date(2025, 3, 10)
    _insert(fresh_settings, [("a", datetime(2025, 3, 10, 23, 59, 59)), ("a", datetime(2025, 3, 12, 0, 0, 1))])
    created = retention.ensure_day_partitions(fresh_settings, today=date(2025, 3, 12), through=date(2025, 3, 13))
    assert created["panelData"] == ["p20250310", "p20250311", "p20250312", "p20250313"]
    assert _rows_in(fresh_settings, "panelData", retention.partition_name(old)) == 1
    assert _rows_in(fresh_settings, "panelData", "p20250312") == 1


def test_prune_stream_progress_and_cheap_figures(fresh_settings) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [{"b": i, "t": (now - timedelta(hours=h)).replace(tzinfo=None)} for i, h in enumerate([0.1, 0.5, 2, 30, 50])]
    with db.engine(fresh_settings, role="migrator").begin() as conn:
        conn.execute(text("INSERT INTO stream_progress (query_id, query_name, batch_id, rows_in, rows_written, "
                          "dead_letters, duration_ms, recorded_at) VALUES ('q', 'readings', :b, 7, 7, 0, 5, :t)"), rows)
    with db.engine(fresh_settings).connect() as conn:
        beat = pipeline_status.heartbeat(conn, now)
    assert beat.last == now - timedelta(hours=0.1)
    assert (beat.batches_last_hour, beat.rows_written_last_hour) == (2, 14)
    assert retention.prune_stream_progress(fresh_settings, now=now, chunk=1) == 2  # 30 h and 50 h old
    with db.engine(fresh_settings).connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM stream_progress")).scalar() == 3
        conn.execute(text("ANALYZE TABLE stream_progress"))
        assert retention.estimated_rows(conn, "stream_progress") == 3
