"""The energy model: the numpy reference (pure) and the SQL upkeep against real MariaDB.

The invariant under test: whatever order, lateness, repetition or change the readings arrive
with, the tables kept batch by batch (both paths of `storage.stream`) equal a recompute from panelData, and the
recompute equals the numpy reference.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Connection, text

from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.energy import recompute_buckets, recompute_latest, trapezoid_buckets
from solar_platform.storage.stream.commit import commit_batch
from solar_platform.storage.stream.corrections import apply_corrections
from solar_platform.storage.stream.latest import LatestReadings, fleet_power
from solar_platform.storage.windows import recompute_windows
from solar_platform_tests.storage.derived import (
    assert_derived_equal_recompute_on,
    assert_tables_match,
    readings_of,
    table_rows,
)

EPOCH = datetime(1970, 1, 1)


# ----------------------------------------------------------------------------- pure model
def test_segment_cut_at_bucket_edge_keeps_total() -> None:
    # 100 W -> 200 W over 10 s, crossing an edge 4 s in: the two pieces add to the whole trapezoid.
    buckets = trapezoid_buckets([896.0, 906.0], [100.0, 200.0], max_gap_s=15)
    assert set(buckets) == {0, 900}
    total = sum(energy for energy, _ in buckets.values())
    assert math.isclose(total, 150.0 * 10 / 3600, rel_tol=1e-12)
    assert math.isclose(buckets[0][0], (100 + 140) / 2 * 4 / 3600, rel_tol=1e-12)
    assert buckets[0][1] == pytest.approx(4.0) and buckets[900][1] == pytest.approx(6.0)


def test_fleet_power_stays_finite_with_hostile_powers() -> None:
    # The contract accepts any finite power; the fleet's sum is stored in a DOUBLE column that
    # refuses inf and nan.
    assert fleet_power(np.array([1e308, 1e308, -1e308])) == 1e308
    assert fleet_power(np.array([1e308, 1e308])) == sys.float_info.max
    assert fleet_power(np.array([-1e308, -1e308, 5.0])) == -sys.float_info.max
    assert fleet_power(np.array([1.5, 2.5])) == 4.0
    assert fleet_power(np.array([], dtype=np.float64)) == 0.0


def test_gap_longer_than_max_credits_nothing() -> None:
    times = [0.0, 5.0, 10.0, 10.0 + 4 * 3600, 10.0 + 4 * 3600 + 5]
    buckets = trapezoid_buckets(times, [100.0] * 5, max_gap_s=15)
    assert sum(e for e, _ in buckets.values()) == pytest.approx(100.0 * 15 / 3600)
    assert sum(c for _, c in buckets.values()) == pytest.approx(15.0)


def test_quarter_hours_add_up_to_the_day() -> None:
    rng = np.random.default_rng(1)
    times = np.arange(0, 86_400, 5.0) + rng.uniform(0, 0.5, 17_280)
    power = rng.uniform(0, 400, times.size)
    buckets = trapezoid_buckets(times, power, max_gap_s=15)
    assert len(buckets) == 96
    day = sum(e for e, _ in buckets.values())
    assert math.isclose(day, float(np.trapezoid(power, times) / 3600), rel_tol=1e-9)


# ----------------------------------------------------------------------------- SQL upkeep
START = datetime(2024, 3, 30, 23, 50)  # crosses midnight and several bucket edges
Row = tuple[str, float, int, datetime]


class Stream:
    """Plays the stream's writes on one connection: each batch in its own transaction, by both
    paths (`commit_batch`, the latest readings kept in memory between batches like the job does)
    or by the exact path alone (`apply_corrections`)."""

    def __init__(self, conn: Connection, path: str) -> None:
        self.conn, self.path = conn, path
        self.latest = LatestReadings()

    def write(self, rows: list[Row], max_gap: float) -> int:
        with self.conn.begin():
            if self.path == "exact":
                return apply_corrections(self.conn, readings_of(rows), max_gap)
            committed = commit_batch(self.conn, readings_of(rows), self.latest, max_gap)
        self.latest = committed.latest
        return committed.appended + committed.corrected


@pytest.fixture
def conn(fresh_settings: Settings) -> Iterator[Connection]:
    # It plays the stream: its user, and LOAD DATA LOCAL like the job.
    with db.engine(fresh_settings.as_role("stream"), bulk_load=True).connect() as connection:
        yield connection


@pytest.mark.integration
@pytest.mark.parametrize("path", ["both", "exact"])
@pytest.mark.parametrize("seed", [2024, 7, 99])
def test_batches_in_any_order_keep_every_derived_table_equal_to_a_recompute(conn: Connection, seed: int,
                                                                          path: str) -> None:
    rng = np.random.default_rng(seed)
    panels = ["p-a", "p-b", "P-a"]
    # 40 minutes at 5 s with jitter, a 20-minute hole for one panel, statuses flipping.
    readings = []
    for pid in panels:
        for i in range(480):
            if pid == "p-b" and 100 <= i < 340:
                continue
            moment = START + timedelta(seconds=5 * i, milliseconds=int(rng.integers(0, 900)))
            readings.append((pid, float(round(rng.uniform(0, 400), 3)), int(rng.random() > 0.2), moment))
    order = rng.permutation(len(readings))
    shuffled = [readings[i] for i in order]
    batches = np.array_split(np.arange(len(shuffled)), 9)
    max_gap = 15.0
    stream = Stream(conn, path)
    for number, index in enumerate(batches):
        batch = [shuffled[i] for i in index]
        if number % 3 == 2:  # re-send part of an earlier batch, some values changed
            again = [shuffled[i] for i in batches[number - 1][:40]]
            batch += [(p, w + (17.5 if k % 2 else 0.0), 1 - s if k % 5 == 0 else s, t)
                      for k, (p, w, s, t) in enumerate(again)]
        stream.write(batch, max_gap)
        assert_derived_equal_recompute_on(conn, max_gap)

    # A replay of what panelData holds changes nothing.
    before = table_rows(conn, "SELECT panel_id, bucket_start, energy_wh FROM panel_energy_15min")
    held = [tuple(row) for row in conn.execute(text(
        "SELECT Panel_id, power_panel, current_status, time_data FROM panelData ORDER BY time_data LIMIT 500"))]
    conn.commit()
    assert stream.write(held, max_gap) == 0
    assert table_rows(conn, "SELECT panel_id, bucket_start, energy_wh FROM panel_energy_15min") == before


@pytest.mark.integration
def test_rebuild_from_raw_equals_what_batches_kept(conn: Connection, fresh_settings: Settings) -> None:
    rows = [("r-1", 100.0 + i, 1, START + timedelta(seconds=5 * i)) for i in range(400)]
    Stream(conn, "both").write(rows, 15.0)
    kept = table_rows(conn, "SELECT panel_id, bucket_start, energy_wh, covered_seconds, readings, readings_on, peak_w "
                        "FROM panel_energy_15min")
    conn.commit()
    with conn.begin():
        conn.execute(text("UPDATE panel_energy_15min SET energy_wh = -1"))
        conn.execute(text("DELETE FROM panelDataAgg"))
        conn.execute(text("DELETE FROM panel_latest"))
    with db.engine(fresh_settings).begin() as rebuilder:  # a rebuild is Dagster's (it bumps the generation)
        recompute_buckets(rebuilder, START - timedelta(minutes=20), START + timedelta(hours=2), 15.0)
        recompute_windows(rebuilder, START - timedelta(minutes=20), START + timedelta(hours=2))
        recompute_latest(rebuilder)
    rebuilt = table_rows(conn, "SELECT panel_id, bucket_start, energy_wh, covered_seconds, readings, readings_on, "
                               "peak_w FROM panel_energy_15min")
    assert_tables_match(rebuilt, kept, "rebuilt buckets")
    assert_derived_equal_recompute_on(conn, 15.0)


@pytest.mark.integration
@pytest.mark.parametrize("path", ["both", "exact"])
def test_a_backlog_of_thousands_of_readings_per_panel_and_a_late_interleaved_one(conn: Connection, path: str) -> None:
    # The shape of a catch-up batch (few panels, thousands of readings each), then the readings
    # half-way between them arriving late: every one splits an existing segment.
    panels = ["b-1", "b-2", "b-3", "b-4"]
    first = [(p, 100.0 + (i % 50), 1, START + timedelta(seconds=5 * i)) for p in panels for i in range(4000)]
    late = [(p, 300.0 - (i % 70), i % 2, START + timedelta(seconds=5 * i + 2.5)) for p in panels for i in range(4000)]
    stream = Stream(conn, path)
    for batch in (first, late):
        assert stream.write(batch, 15.0) == len(batch)
    assert_derived_equal_recompute_on(conn, 15.0)
