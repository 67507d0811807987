"""Change marks on real MariaDB: each batch marks the buckets it changed (appends and the exact path),
nothing else; a rollup consumes only the marks it saw, so a change that lands while it runs stays
marked; and the days to roll up again are the rolled-up past days with a mark."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from sqlalchemy import text

from solar_platform.storage import db
from solar_platform.storage import rollups as daily_rollups
from solar_platform.storage.history import changes
from solar_platform.storage.stream.commit import Committed, commit_batch
from solar_platform.storage.stream.latest import LatestReadings
from solar_platform_tests.storage.derived import readings_of

pytestmark = pytest.mark.integration

DAY = date(2025, 6, 10)
T0 = datetime(2025, 6, 10, 11, 50)  # 10 minutes before a bucket edge


class Stream:
    """Plays the stream: batches committed by `commit_batch` as the stream's user."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.engine = db.engine(settings.as_role("stream"), bulk_load=True)
        self.latest = LatestReadings()

    def commit(self, rows) -> Committed:
        with self.engine.begin() as conn:
            committed = commit_batch(conn, readings_of(rows), self.latest, self.settings.energy_max_gap_seconds)
        self.latest = committed.latest
        return committed


def _marks(settings) -> dict[datetime, int]:
    with db.engine(settings).connect() as conn:
        return {m.bucket_start: m.version for m in changes.marks(conn)}


def test_each_batch_marks_the_buckets_it_changed(fresh_settings) -> None:
    stream = Stream(fresh_settings)
    rows = [("p-1", 100.0 + k, 1, T0 + timedelta(seconds=5 * k)) for k in range(240)]  # 11:50 .. 12:09:55
    stream.commit(rows)
    assert _marks(fresh_settings) == {datetime(2025, 6, 10, 11, 45): 1, datetime(2025, 6, 10, 12, 0): 1}
    stream.commit(rows[:10])  # re-sent, unchanged: nothing changes, nothing is marked
    assert _marks(fresh_settings) == {datetime(2025, 6, 10, 11, 45): 1, datetime(2025, 6, 10, 12, 0): 1}
    stream.commit([("p-1", 5.0, 1, T0 + timedelta(seconds=20))])  # a changed value: the exact path
    assert _marks(fresh_settings) == {datetime(2025, 6, 10, 11, 45): 2, datetime(2025, 6, 10, 12, 0): 1}
    stream.commit([("p-1", 7.0, 1, T0 + timedelta(minutes=-20))])  # late, alone in its bucket (no segment)
    assert _marks(fresh_settings)[datetime(2025, 6, 10, 11, 30)] == 1


def test_a_rollup_consumes_only_the_marks_it_saw(fresh_settings) -> None:
    settings = fresh_settings
    stream = Stream(settings)
    stream.commit([(f"p-{i}", 50.0, 1, T0 + timedelta(seconds=5 * k)) for i in range(2) for k in range(240)])
    engine = db.engine(settings)
    with engine.connect() as conn:
        seen = changes.marks(conn)  # what a rollup reads before it stages
    stream.commit([("p-0", 60.0, 1, T0 + timedelta(minutes=15))])  # lands while the rollup runs
    daily_rollups.swap_in(engine, "test", [DAY], seen)
    assert _marks(settings) == {datetime(2025, 6, 10, 12, 0): 2}  # the moved mark stays; the other went
    with engine.connect() as conn:
        assert changes.rolled_days_with_changes(conn, "UTC", DAY + timedelta(days=1)) == {}  # not rolled up


def test_the_days_to_roll_again_are_rolled_past_days_with_a_mark(fresh_settings) -> None:
    settings = fresh_settings
    stream = Stream(settings)
    days = [DAY + timedelta(days=i) for i in range(3)]
    for day in days:
        start = datetime.combine(day, datetime.min.time()) + timedelta(hours=12)
        stream.commit([("p-0", 80.0, 1, start + timedelta(seconds=5 * k)) for k in range(60)])
    engine = db.engine(settings)
    run = daily_rollups.roll_up_days(engine, settings, "first", days[:2])
    assert run.served is not None and _marks(settings).keys() == {datetime.combine(days[2], datetime.min.time())
                                                                   + timedelta(hours=12)}
    # late readings on the first two days; the third is not rolled up, and "today" is never re-rolled
    for day in days:
        late = datetime.combine(day, datetime.min.time()) + timedelta(hours=20)
        stream.commit([("p-0", 10.0, 1, late)])
    with engine.connect() as conn:
        stale = changes.rolled_days_with_changes(conn, "UTC", days[1])
        assert list(stale) == [days[0]]
        stale = changes.rolled_days_with_changes(conn, "UTC", days[2] + timedelta(days=1))
        assert sorted(stale) == days[:2]
        # In Asia/Kolkata (+05:30) the 20:00 UTC readings belong to the next local day.
        assert sorted(changes.days_of(changes.marks(conn), "Asia/Kolkata")) == [d + timedelta(days=1) for d in days]
    daily_rollups.roll_up_days(engine, settings, "again", days[:2])
    with engine.connect() as conn:
        assert changes.rolled_days_with_changes(conn, "UTC", days[2] + timedelta(days=1)) == {}
        assert conn.execute(text("SELECT COUNT(*) FROM energy_changes")).scalar() == 2  # the third day's


def test_appends_and_corrections_into_a_rolled_day_both_mark_it(fresh_settings) -> None:
    """A rolled day changes by both of the stream's paths: a panel's next readings (appends, the bulk
    path) and a panel's reading older than its newest (a correction, the exact path). Each marks it."""
    settings = fresh_settings
    stream = Stream(settings)
    morning = datetime.combine(DAY, time(8))
    stream.commit([(f"p-{i}", 50.0, 1, morning + timedelta(seconds=5 * k)) for i in range(2) for k in range(60)])
    engine = db.engine(settings)
    daily_rollups.roll_up_days(engine, settings, "first", [DAY])
    assert _marks(settings) == {}
    tomorrow = DAY + timedelta(days=2)

    # p-1's afternoon: later than all it stored, so appends, into the rolled day
    committed = stream.commit([("p-1", 70.0, 1, datetime.combine(DAY, time(15)) + timedelta(seconds=5 * k))
                               for k in range(12)])
    assert (committed.appended, committed.corrected) == (12, 0)
    with engine.connect() as conn:
        assert list(changes.rolled_days_with_changes(conn, "UTC", tomorrow)) == [DAY]
    daily_rollups.roll_up_days(engine, settings, "appends", [DAY])
    assert _marks(settings) == {}

    # p-0 moves on to the next day; then its evening of the rolled day arrives late: the exact path
    stream.commit([("p-0", 40.0, 1, datetime.combine(DAY + timedelta(days=1), time(8)))])
    committed = stream.commit([("p-0", 30.0, 1, datetime.combine(DAY, time(18)))])
    assert (committed.appended, committed.corrected) == (0, 1)
    with engine.connect() as conn:
        assert list(changes.rolled_days_with_changes(conn, "UTC", tomorrow)) == [DAY]
