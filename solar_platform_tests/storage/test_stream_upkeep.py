"""The stream's two paths (`storage.stream`): appends in bulk, corrections exactly, in one transaction.

Pure checks of the append aggregates against the reference model, then batches against the real
MariaDB the way the world sends them: a panel's appends mixed with its late, re-sent and changed
readings in one batch, a panel's first reading ever, a replay, a bulk import behind the stream's
back, and a rebuild that rewrites `panel_latest` while the stream keeps its copy in memory. After
each, every derived table equals a recompute from `panelData`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Connection, text

from solar_platform.settings import Settings
from solar_platform.storage import db
from solar_platform.storage.energy import recompute_buckets, recompute_latest, trapezoid_buckets
from solar_platform.storage.stream.appends import AppendConflict, plan_appends
from solar_platform.storage.stream.commit import commit_batch, split
from solar_platform.storage.stream.latest import LatestReadings
from solar_platform.storage.windows import WINDOW_MICROS, recompute_windows
from solar_platform_tests.storage.derived import EPOCH, assert_derived_equal_recompute_on, readings_of

START = datetime(2026, 12, 3, 11, 59, 30)  # crosses a 15-minute edge and the hour
GAP = 15.0


def _cycle(panels: list[str], index: int, power: float = 200.0, status: int = 1
           ) -> list[tuple[str, float, int, datetime]]:
    return [(panel, power + index + k, status, START + timedelta(seconds=5 * index)) for k, panel in enumerate(panels)]


# ------------------------------------------------------------------------------------ pure parts
def test_a_later_offset_wins_within_a_batch() -> None:
    rows = [("p-1", 10.0, 1, START), ("p-1", 20.0, 0, START), ("p-2", 5.0, 1, START), ("p-1", 30.0, 1,
                                                                                         START + timedelta(seconds=5))]
    readings = readings_of(rows)
    assert len(readings) == 3
    got = {(readings.panel_ids[p], int(t)): (w, s) for p, t, w, s in
           zip(readings.panel, readings.time_us, readings.power, readings.status, strict=True)}
    micros = int((START - EPOCH) / timedelta(microseconds=1))
    assert got[("p-1", micros)] == (20.0, 0)


def test_append_aggregates_equal_the_reference_model() -> None:
    rng = np.random.default_rng(5)
    rows = []
    for panel in ("a", "b", "c"):
        t = START
        for _ in range(400):
            t += timedelta(milliseconds=int(rng.integers(1000, 25_000)))  # some gaps beyond the max
            rows.append((panel, float(round(rng.uniform(0, 400), 3)), int(rng.random() > 0.3), t))
    readings = readings_of(rows)
    latest = LatestReadings()
    positions, is_append = split(readings, latest)
    assert is_append.all()  # nothing stored: all appends
    plan = plan_appends(readings.take(is_append), positions, latest, GAP)

    # Windows: count, sums, extremes and first/last against a plain loop.
    windows = plan.windows
    for i, row in enumerate(windows.row.tolist()):
        panel, window = readings.panel[row], readings.time_us[row] // WINDOW_MICROS
        members = (readings.panel == panel) & (readings.time_us // WINDOW_MICROS == window)
        power, status, times = readings.power[members], readings.status[members], readings.time_us[members]
        assert windows.reading_count[i] == members.sum()
        assert windows.power_sum[i] == pytest.approx(power.sum(), rel=1e-12)
        assert (windows.power_min[i], windows.power_max[i]) == (power.min(), power.max())
        assert windows.readings_on[i] == (status == 1).sum()
        assert (windows.first_power[i], windows.last_power[i]) == (power[0], power[-1])
        on = status == 1
        assert windows.last_on_time_us[i] == (times[on].max() if on.any() else -1)

    # Buckets: energy and coverage per panel equal the numpy reference.
    for code, panel in enumerate(readings.panel_ids.tolist()):
        mine = readings.panel == code
        reference = trapezoid_buckets(readings.time_us[mine] / 1e6, readings.power[mine], GAP)
        kept = plan.buckets.panel == code
        got = {int(b): (e, c) for b, e, c, n in zip(plan.buckets.bucket_start_s[kept], plan.buckets.energy_wh[kept],
                                                      plan.buckets.covered_s[kept], plan.buckets.readings[kept],
                                                      strict=True) if c > 0}
        assert got.keys() == reference.keys(), panel
        for bucket, (energy, covered) in reference.items():
            assert got[bucket][0] == pytest.approx(energy, rel=1e-9, abs=1e-12)
            assert got[bucket][1] == pytest.approx(covered, rel=1e-9)


# --------------------------------------------------------------------------- against MariaDB
@pytest.fixture
def conn(fresh_settings: Settings) -> Iterator[Connection]:
    with db.engine(fresh_settings.as_role("stream"), bulk_load=True).connect() as connection:
        yield connection


class Stream:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.latest = LatestReadings()

    def write(self, rows: list[tuple[str, float, int, datetime]], *, all_exact: bool = False) -> tuple[int, int]:
        with self.conn.begin():
            committed = commit_batch(self.conn, readings_of(rows), self.latest, GAP, all_exact=all_exact)
        self.latest = committed.latest
        return committed.appended, committed.corrected


@pytest.mark.integration
def test_mixed_batches_and_a_panels_first_reading_ever(conn: Connection) -> None:
    stream = Stream(conn)
    panels = ["m-1", "m-2", "m-3"]
    assert stream.write([row for i in range(6) for row in _cycle(panels, i)]) == (18, 0)
    assert_derived_equal_recompute_on(conn, GAP)

    # One batch: m-1's next readings (appends), a reading of m-1 that arrives 20 s late, a new value
    # for m-1's newest stored reading, m-2's last reading sent again unchanged, and m-9's first ever.
    newest = START + timedelta(seconds=25)
    batch = [row for i in (6, 7) for row in _cycle(["m-1"], i)]
    batch += [("m-1", 999.0, 0, START + timedelta(seconds=12.5)),  # late, between two stored readings
              ("m-1", 7.5, 1, newest),  # changed: the newest stored reading of m-1
              ("m-2", 206.0, 1, newest),  # re-sent, same value (what _cycle stored for m-2 at i = 5)
              ("m-9", 50.0, 1, START + timedelta(seconds=3))]  # a panel never seen
    assert stream.write(batch) == (3, 2)  # m-1 x 2 and m-9 appended; the late and the changed one corrected
    assert_derived_equal_recompute_on(conn, GAP)

    # The next batch appends after both the changed reading and the new panel.
    assert stream.write(_cycle(panels + ["m-9"], 8)) == (4, 0)
    assert_derived_equal_recompute_on(conn, GAP)


@pytest.mark.integration
def test_a_batch_sent_twice_adds_nothing_the_second_time(conn: Connection) -> None:
    stream = Stream(conn)
    batch = [row for i in range(12) for row in _cycle(["r-1", "r-2"], i)]
    assert stream.write(batch) == (24, 0)
    before = conn.execute(text("SELECT SUM(energy_wh), SUM(readings) FROM panel_energy_15min")).one()
    conn.commit()
    assert stream.write(batch) == (0, 0)  # all corrections, none changed
    assert conn.execute(text("SELECT SUM(energy_wh), SUM(readings) FROM panel_energy_15min")).one() == before
    conn.commit()
    assert_derived_equal_recompute_on(conn, GAP)


@pytest.mark.integration
def test_a_bulk_import_behind_the_streams_back_falls_back_to_the_exact_path(
        conn: Connection, fresh_settings: Settings) -> None:
    stream = Stream(conn)
    stream.write(_cycle(["b-1"], 0))
    # Someone loads readings straight into panelData and does not rebuild: panel_latest is behind.
    with db.engine(fresh_settings.as_role("migrator")).begin() as importer:
        importer.execute(text("INSERT INTO panelData VALUES ('b-1', 123.0, 1, :t)"),
                         {"t": START + timedelta(seconds=5)})
    with pytest.raises(AppendConflict):
        stream.write(_cycle(["b-1"], 1) + _cycle(["b-1"], 2))
    conn.rollback()
    stream.latest = LatestReadings()
    # The exact path commits whatever panel_latest says: the imported reading gets the batch's value,
    # the other one is new; nothing is lost or doubled.
    assert stream.write(_cycle(["b-1"], 1) + _cycle(["b-1"], 2), all_exact=True) == (0, 2)
    stored = conn.execute(text("SELECT power_panel FROM panelData ORDER BY time_data")).scalars().all()
    assert stored == [200.0, 201.0, 202.0]
    conn.commit()
    # What an import behind the stream's back always needs (README "Rebuild"): then all is exact again.
    with db.engine(fresh_settings).begin() as rebuilder:
        recompute_windows(rebuilder, START - timedelta(minutes=1), START + timedelta(minutes=1))
        recompute_buckets(rebuilder, START - timedelta(minutes=15), START + timedelta(minutes=15), GAP)
        recompute_latest(rebuilder)
    assert_derived_equal_recompute_on(conn, GAP)


@pytest.mark.integration
def test_a_rebuild_of_panel_latest_makes_the_stream_reload_its_copy(
        conn: Connection, fresh_settings: Settings) -> None:
    stream = Stream(conn)
    stream.write([row for i in range(3) for row in _cycle(["g-1"], i)])
    generation = stream.latest.generation
    # A rebuild rewrites panel_latest (here: after readings imported behind the stream, as its docs ask).
    with db.engine(fresh_settings.as_role("migrator")).begin() as importer:
        importer.execute(text("INSERT INTO panelData VALUES ('g-1', 50.0, 1, :t)"),
                         {"t": START + timedelta(seconds=15)})
    with db.engine(fresh_settings).begin() as rebuilder:
        recompute_latest(rebuilder)
    # The stream reloads: the imported reading is the predecessor of the next append, not a conflict.
    assert stream.write(_cycle(["g-1"], 4)) == (1, 0)
    assert stream.latest.generation == generation + 1
    # The imported reading has no windows or buckets of its own yet (no rebuild of those ran), so
    # only what the stream kept is compared: the segment 15 s -> 20 s was credited from it.
    energy = conn.execute(text("SELECT SUM(covered_seconds) FROM panel_energy_15min")).scalar()
    assert energy == pytest.approx(15.0)  # 0 -> 5 -> 10 (kept), 15 -> 20 (the append); 10 -> 15 never kept
