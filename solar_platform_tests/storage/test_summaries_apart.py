"""Summaries apart from the batch (`storage.stream.summaries`), against the real MariaDB.

Batches of appends commit their raw rows and a mark; a round writes their windows, buckets and
latest rows later. Whatever comes between (a correction, a new panel, a stream killed with
summaries waiting, a rebuild), once the summaries are written every derived table equals a
recompute from `panelData`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Connection, text

from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.rebuild import rebuild
from solar_platform.storage.stream import summaries
from solar_platform.storage.stream.commit import commit_batch, defer_batch
from solar_platform.storage.stream.latest import LatestReadings
from solar_platform.storage.stream.readings import Readings
from solar_platform_tests.storage.derived import assert_derived_equal_recompute_on, readings_of

pytestmark = pytest.mark.integration

START = datetime(2026, 12, 3, 11, 59, 30)  # crosses a 15-minute edge and the hour
GAP = 15.0
PANELS = ["s-1", "s-2", "s-3"]
QUERY = "q-test"


def _cycle(panels: list[str], index: int) -> list[tuple[str, float, int, datetime]]:
    return [(panel, 100.0 + 3 * index + k, (index + k) % 2, START + timedelta(seconds=5 * index))
            for k, panel in enumerate(panels)]


@pytest.fixture
def conn(fresh_settings: Settings) -> Iterator[Connection]:
    with db.engine(fresh_settings.as_role("stream"), bulk_load=True).connect() as connection:
        yield connection


class Stream:
    """What the sink does, without Spark: batches deferred when they may, rounds, full commits."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.latest = LatestReadings()
        self.summarized = LatestReadings()
        self.waiting: list[tuple[str, int, Readings]] = []
        self.batch_id = 0

    def write(self, rows: list[tuple[str, float, int, datetime]]) -> str:
        """Commit a batch; returns "deferred" or "whole"."""
        readings = readings_of(rows)
        self.batch_id += 1
        with self.conn.begin():
            moved = defer_batch(self.conn, readings, self.latest, query_id=QUERY, batch_id=self.batch_id)
            if moved is not None:
                self.latest = moved
                self.waiting.append((QUERY, self.batch_id, readings))
                return "deferred"
            pending = summaries.Unsummarized(self.summarized, summaries.concat([r for _, _, r in self.waiting]))
            committed = commit_batch(self.conn, readings, self.latest, GAP, unsummarized=pending)
        self.latest = self.summarized = committed.latest
        self.waiting = []
        return "whole"

    def round(self) -> None:
        with self.conn.begin():
            now = summaries.write_round(self.conn, self.summarized, self.waiting, GAP)
        assert now is not None
        self.summarized, self.waiting = now, []

    def marks(self) -> int:
        return _read(self.conn, f"SELECT COUNT(*) FROM {db.STREAM_UNSUMMARIZED}")


def _read(conn: Connection, sql: str, **params: object) -> object:
    value = conn.execute(text(sql), params).scalar()
    conn.rollback()  # no transaction left open for the next batch's
    return value


def _newest_summarized(conn: Connection, panel: str) -> object:
    return _read(conn, f"SELECT last_seen FROM {db.PANEL_LATEST} WHERE panel_id = :p", p=panel)


def test_appends_wait_for_their_round_and_then_equal_a_recompute(conn: Connection) -> None:
    stream = Stream(conn)
    assert stream.write([row for i in range(3) for row in _cycle(PANELS, i)]) == "whole"  # first readings ever
    assert [stream.write(_cycle(PANELS, i)) for i in range(3, 9)] == ["deferred"] * 6
    # Raw rows are in at once; the summaries still say cycle 2, and each batch left its mark.
    assert _read(conn, f"SELECT COUNT(*) FROM {db.READINGS}") == 27
    assert _newest_summarized(conn, "s-1") == START + timedelta(seconds=10)
    assert stream.marks() == 6
    stream.round()
    assert stream.marks() == 0
    assert _newest_summarized(conn, "s-1") == START + timedelta(seconds=40)
    assert_derived_equal_recompute_on(conn, GAP)


def test_a_correction_or_a_new_panel_writes_the_waiting_summaries_first(conn: Connection) -> None:
    stream = Stream(conn)
    stream.write([row for i in range(2) for row in _cycle(PANELS, i)])
    assert stream.write(_cycle(PANELS, 2)) == "deferred"
    assert stream.write(_cycle(PANELS, 3)) == "deferred"
    # One batch: s-1's next reading, a late one of s-2 between waiting appends, s-3's newest re-sent changed.
    mixed = _cycle(["s-1"], 4) + [("s-2", 999.0, 0, START + timedelta(seconds=12.5)),
                                  ("s-3", 1.5, 1, START + timedelta(seconds=15))]
    assert stream.write(mixed) == "whole"
    assert stream.marks() == 0
    assert_derived_equal_recompute_on(conn, GAP)

    assert stream.write(_cycle(PANELS, 5)) == "deferred"
    assert stream.write(_cycle(PANELS, 6) + [("s-new", 50.0, 1, START)]) == "whole"  # a panel's first reading
    assert_derived_equal_recompute_on(conn, GAP)
    assert stream.write(_cycle(PANELS + ["s-new"], 7)) == "deferred"
    stream.round()
    assert_derived_equal_recompute_on(conn, GAP)


def test_a_stream_killed_with_summaries_waiting_summarizes_them_at_its_next_start(conn: Connection) -> None:
    stream = Stream(conn)
    stream.write([row for i in range(2) for row in _cycle(PANELS, i)])
    for i in range(2, 7):
        assert stream.write(_cycle(PANELS, i)) == "deferred"
    # kill -9: memory is gone, the raw rows and marks are not. The next job starts from nothing.
    restarted = Stream(conn)
    restarted.batch_id = stream.batch_id
    assert restarted.write(_cycle(PANELS, 7)) == "whole"  # its first batch reloads, leftovers included
    assert restarted.marks() == 0
    assert_derived_equal_recompute_on(conn, GAP)
    # ... and carries on deferring from what it reloaded.
    assert restarted.write(_cycle(PANELS, 8)) == "deferred"
    restarted.round()
    assert_derived_equal_recompute_on(conn, GAP)


def test_a_job_started_after_a_kill_summarizes_the_leftovers_before_any_batch(conn: Connection) -> None:
    stream = Stream(conn)
    stream.write([row for i in range(2) for row in _cycle(PANELS, i)])
    for i in range(2, 6):
        assert stream.write(_cycle(PANELS, i)) == "deferred"
    # An idle fleet: the new job's first round reloads everything from MariaDB (an empty batch).
    with conn.begin():
        committed = commit_batch(conn, Readings.empty(), LatestReadings(), GAP)
    assert committed.appended == committed.corrected == 0
    assert stream.marks() == 0
    assert _newest_summarized(conn, "s-1") == START + timedelta(seconds=25)
    assert_derived_equal_recompute_on(conn, GAP)


def test_a_rebuild_with_no_stream_running_summarizes_what_it_left_first(fresh_settings: Settings,
                                                                       conn: Connection) -> None:
    stream = Stream(conn)
    stream.write([row for i in range(2) for row in _cycle(PANELS, i)])
    for i in range(2, 9):
        assert stream.write(_cycle(PANELS, i)) == "deferred"
    # The stream was killed; a rebuild of the hour must not count the waiting appends twice.
    rebuild(fresh_settings, START - timedelta(hours=1), START + timedelta(hours=1), rollups=False)
    assert stream.marks() == 0
    assert_derived_equal_recompute_on(conn, GAP)
    # The rebuild let go of its hold.
    assert _read(conn, f"SELECT summaries_in_every_batch_until FROM {db.DERIVED_GENERATION}") is None


def test_a_rebuild_holds_the_summaries_in_every_batch(fresh_settings: Settings, conn: Connection) -> None:
    stream = Stream(conn)
    stream.write([row for i in range(2) for row in _cycle(PANELS, i)])
    engine = db.engine(fresh_settings, bulk_load=True)
    with summaries.in_every_batch(engine, "solar_platform.test.no-stream", GAP):
        assert stream.write(_cycle(PANELS, 2)) == "whole"  # no batch waits while a rebuild runs
    assert stream.write(_cycle(PANELS, 3)) == "deferred"
    stream.round()
    assert_derived_equal_recompute_on(conn, GAP)
