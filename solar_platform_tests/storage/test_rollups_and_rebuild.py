"""Daily rollups from the buckets and `rebuild`, on real MariaDB: energy correctness (closed form,
buckets that add up, gaps, DST), stage -> check -> swap with a check that fails, and rebuilt tables
equal to the ones the stream's upkeep keeps."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from solar_platform.power_model import power_curve
from solar_platform.storage import db, energy
from solar_platform.storage import rollups as daily_rollups
from solar_platform.storage.rebuild import RebuildError, align, chunks, rebuild
from solar_platform.storage.stream.commit import commit_batch
from solar_platform.storage.stream.latest import LatestReadings
from solar_platform_tests.orchestration.conftest import insert_readings
from solar_platform_tests.storage.derived import readings_of

DAY = date(2025, 6, 10)


def _utc(day: date, hours: float = 0.0) -> datetime:
    return datetime.combine(day, datetime.min.time()) + timedelta(hours=hours)


def _epoch(moment: datetime) -> float:
    return moment.replace(tzinfo=UTC).timestamp()


def _seed_day(pmax: float, start: datetime, hours: float, interval: float) -> list[tuple[str, float, int, datetime]]:
    """One panel's seed curve, a production window of `hours` opening at start + 10 h, every `interval` s."""
    window_open = _epoch(start) + 10 * 3600
    steps = int(86_400 / interval)
    times = _epoch(start) + np.arange(steps) * interval
    power = power_curve(times, window_open, hours * 3600, pmax, 30.0)
    return [("panel-a", float(p), 1, datetime.fromtimestamp(t, UTC).replace(tzinfo=None))
            for t, p in zip(times, power, strict=True)]


# ------------------------------------------------------------------ pure
def test_align_and_chunks() -> None:
    a, b = align(datetime(2025, 1, 1, 10, 7), datetime(2025, 1, 1, 11, 0, 1))
    assert (a, b) == (datetime(2025, 1, 1, 10, 0), datetime(2025, 1, 1, 11, 15))
    assert chunks(a, b, timedelta(minutes=30))[-1] == (datetime(2025, 1, 1, 11, 0), b)
    with pytest.raises(RebuildError):
        align(b, a)
    with pytest.raises(RebuildError):
        chunks(a, b, timedelta(minutes=20))


def test_local_days_are_their_buckets() -> None:
    spring = daily_rollups.local_day_bounds(date(2025, 3, 30), "Europe/Madrid")
    assert spring == (datetime(2025, 3, 29, 23), datetime(2025, 3, 30, 22))
    start, end = daily_rollups.local_day_bounds(date(2025, 10, 26), "Europe/Madrid")
    assert (end - start) == timedelta(hours=25)
    assert daily_rollups.days_touching(datetime(2025, 3, 29, 22, 30), datetime(2025, 3, 30, 0), "Europe/Madrid") == [
        date(2025, 3, 29), date(2025, 3, 30)]


def test_seed_day_energy_and_buckets_add_up_in_numpy() -> None:
    """The oracle on a full seed day at 5 s: the closed-form integral within 0.1 %; 15 min -> 1 h -> 1 day."""
    pmax, hours = 400.0, 1.0
    rows = _seed_day(pmax, _utc(DAY), hours, 5.0)
    t = np.array([_epoch(x[3]) for x in rows])
    p = np.array([x[1] for x in rows])
    quarter = energy.trapezoid_buckets(t, p, 15.0, 900)
    hourly = energy.trapezoid_buckets(t, p, 15.0, 3600)
    daily = energy.trapezoid_buckets(t, p, 15.0, 86_400)
    # integral of Pmax / cosh(x)^30 over the line = Pmax * D * sqrt(pi) * Gamma(15) / Gamma(15.5)
    closed = pmax * hours * math.sqrt(math.pi) * math.gamma(15) / math.gamma(15.5)
    assert sum(e for e, _ in quarter.values()) == pytest.approx(closed, rel=1e-3)
    for hour, (wh, covered) in hourly.items():
        parts = [quarter[hour + k * 900] for k in range(4) if hour + k * 900 in quarter]
        assert sum(e for e, _ in parts) == pytest.approx(wh, rel=1e-9, abs=1e-12)
        assert sum(c for _, c in parts) == pytest.approx(covered, rel=1e-9)
    (day_wh, _), = daily.values()
    assert sum(e for e, _ in hourly.values()) == pytest.approx(day_wh, rel=1e-9)


# ------------------------------------------------------------------ on MariaDB
pytestmark_integration = pytest.mark.integration


@pytestmark_integration
def test_full_seed_day_rollup_vs_closed_form_and_buckets_add_up(fresh_settings) -> None:
    settings = fresh_settings
    pmax, hours = 400.0, 1.0
    insert_readings(settings, _seed_day(pmax, _utc(DAY), hours, 5.0))
    report = rebuild(settings, _utc(DAY), _utc(DAY, 24))
    assert report.days == [DAY.isoformat()] and report.panel_days == 1 and report.readings == 17_280
    closed = pmax * hours * math.sqrt(math.pi) * math.gamma(15) / math.gamma(15.5)
    with db.engine(settings).connect() as conn:
        day_wh, covered, seconds, received, expected = conn.execute(text(
            "SELECT energy_wh, covered_seconds, day_seconds, readings_received, readings_expected "
            "FROM panel_daily_energy WHERE day = :d AND panel_id = 'panel-a'"), {"d": DAY}).one()
        quarters = conn.execute(text("SELECT bucket_start, energy_wh FROM panel_energy_15min ORDER BY 1")).all()
        fleet_wh = conn.execute(text("SELECT energy_wh FROM fleet_daily_energy WHERE day = :d"), {"d": DAY}).scalar()
    assert abs(day_wh - closed) / closed <= 1e-3
    assert (seconds, received, expected) == (86_400, 17_280, 17_280)
    assert covered == pytest.approx(86_400 - 5, abs=1e-6)  # the last reading is at 23:59:55
    assert len(quarters) == 96
    hours_wh = [sum(e for s, e in quarters if s.hour == h) for h in range(24)]
    assert sum(hours_wh) == pytest.approx(day_wh, rel=1e-9) and fleet_wh == pytest.approx(day_wh, rel=1e-12)


@pytestmark_integration
def test_a_four_hour_gap_credits_nothing(fresh_settings) -> None:
    settings = fresh_settings  # interval 5 s: the max gap is 15 s
    rows = [("panel-a", 100.0, 1, _utc(DAY, 6) + timedelta(seconds=5 * k)) for k in range(4 * 720)]
    rows += [("panel-a", 100.0, 1, _utc(DAY, 14) + timedelta(seconds=5 * k)) for k in range(4 * 720)]
    insert_readings(settings, rows)
    rebuild(settings, _utc(DAY), _utc(DAY, 24))
    with db.engine(settings).connect() as conn:
        wh, covered = conn.execute(text("SELECT energy_wh, covered_seconds FROM panel_daily_energy")).one()
        in_gap = conn.execute(text("SELECT COALESCE(SUM(energy_wh), 0) FROM panel_energy_15min "
                                   "WHERE bucket_start >= :a AND bucket_start < :b"),
                              {"a": _utc(DAY, 10), "b": _utc(DAY, 14)}).scalar()
    assert in_gap == 0
    assert covered == pytest.approx(2 * (4 * 3600 - 5))
    assert wh == pytest.approx(100.0 * covered / 3600, rel=1e-12)


@pytestmark_integration
def test_dst_day_in_madrid_has_23_hours(fresh_settings) -> None:
    settings = fresh_settings.model_copy(update={"site_timezone": "Europe/Madrid", "interval_seconds": 60.0})
    spring = date(2025, 3, 30)
    start, end = daily_rollups.local_day_bounds(spring, "Europe/Madrid")
    steps = int((end - start + timedelta(hours=2)).total_seconds() // 60)
    insert_readings(settings, [("panel-a", 60.0, 1, start - timedelta(hours=1) + timedelta(minutes=k))
                               for k in range(steps)])
    report = rebuild(settings, start, end)
    assert report.days == [spring.isoformat()]
    with db.engine(settings).connect() as conn:
        wh, seconds, received, expected, tz = conn.execute(text(
            "SELECT energy_wh, day_seconds, readings_received, readings_expected, time_zone FROM panel_daily_energy"
        )).one()
    assert (seconds, received, expected, tz) == (82_800, 1380, 1380, "Europe/Madrid")
    assert wh == pytest.approx(60.0 * 23, rel=1e-12)  # readings on both sides: the whole local day is covered


def _panels_day(settings, panels: int = 6) -> None:
    rows = []
    for i in range(panels):
        rows += [(f"p-{i}", p, int(p > 1), t) for _, p, _, t in _seed_day(300.0 + 10 * i, _utc(DAY), 4.0, 60.0)]
    insert_readings(settings, rows)


@pytestmark_integration
def test_a_failing_check_swaps_nothing(fresh_settings) -> None:
    # raw kept 10 years: the sampled recompute checks DAY (an expired day is listed, not checked)
    settings = fresh_settings.model_copy(update={"interval_seconds": 60.0, "raw_retention_days": 3650})
    _panels_day(settings)
    rebuild(settings, _utc(DAY), _utc(DAY, 24))
    engine = db.engine(settings)
    with engine.connect() as conn:
        served = conn.execute(text("SELECT * FROM panel_daily_energy ORDER BY panel_id")).all()
        fleet = conn.execute(text("SELECT * FROM fleet_daily_energy")).all()
    assert len(served) == 6 and len(fleet) == 1
    # one corrupted panel bucket (the fleet buckets are kept apart and stay right)
    with engine.begin() as conn:
        conn.execute(text("UPDATE panel_energy_15min SET energy_wh = energy_wh + 5 WHERE panel_id = 'p-3' "
                          "AND bucket_start = :b"), {"b": _utc(DAY, 12)})
    run = daily_rollups.roll_up_days(engine, settings, "corrupt", [DAY])
    assert run.served is None
    assert set(run.failures()) == {daily_rollups.RECOMPUTE_CHECK, daily_rollups.FLEET_CHECK}
    assert run.checks[daily_rollups.RECOMPUTE_CHECK].metadata["mismatched"] == 1
    assert run.checks[daily_rollups.PEAK_CHECK].passed
    with engine.connect() as conn:
        assert conn.execute(text("SELECT * FROM panel_daily_energy ORDER BY panel_id")).all() == served
        assert conn.execute(text("SELECT * FROM fleet_daily_energy")).all() == fleet
        assert conn.execute(text("SELECT COUNT(*) FROM stage_panel_daily_energy")).scalar() == 0
    # the rebuild repairs the bucket, and the rollup is served again, as before
    rebuild(settings, _utc(DAY, 12), _utc(DAY, 12.25))
    with engine.connect() as conn:
        again = conn.execute(text("SELECT panel_id, energy_wh FROM panel_daily_energy ORDER BY panel_id")).all()
    assert again == [(row.panel_id, row.energy_wh) for row in served]


_DERIVED = {
    "panelDataAgg": "SELECT Panel_id, window_start, window_end, reading_count, ROUND(total_power, 9) FROM panelDataAgg",
    "panel_energy_15min": "SELECT panel_id, bucket_start, ROUND(energy_wh, 6), ROUND(covered_seconds, 6), readings, "
                          "readings_on, peak_w FROM panel_energy_15min",
    "fleet_energy_15min": "SELECT bucket_start, ROUND(energy_wh, 6), ROUND(covered_seconds, 6), readings, "
                          "readings_on FROM fleet_energy_15min",
    "panel_latest": "SELECT * FROM panel_latest",
}


def _snapshot(settings) -> dict[str, list]:
    with db.engine(settings).connect() as conn:
        return {name: sorted(tuple(row) for row in conn.execute(text(q)).all()) for name, q in _DERIVED.items()}


@pytestmark_integration
def test_rebuild_equals_what_the_stream_keeps(fresh_settings) -> None:
    """The stream's upkeep (both paths of `storage.stream`, fed late, shuffled, re-sent and changed
    batches) and a rebuild from the same raw rows give the same derived tables; a second rebuild
    changes nothing."""
    settings = fresh_settings.model_copy(update={"interval_seconds": 5.0})
    rng = random.Random(7)
    readings = {}
    for i in range(5):
        for k in range(2 * 720):  # 2 hours around a bucket edge, with holes
            if rng.random() < 0.05:
                continue
            readings[(f"p-{i}", _utc(DAY, 11) + timedelta(seconds=5 * k, milliseconds=rng.randrange(0, 900)))] = (
                rng.uniform(0, 400), rng.choice([0, 1, 1, 1]))
    items = list(readings.items())
    rng.shuffle(items)
    batches = [items[j:j + 700] for j in range(0, len(items), 700)]
    batches.append(items[:500])  # re-sent
    batches.append([(key, (value[0] + 3.0, value[1])) for key, value in items[500:900]])  # changed values
    engine = db.engine(settings.as_role("stream"), bulk_load=True)  # it plays the stream
    latest = LatestReadings()
    for batch in batches:
        with engine.begin() as conn:
            rows = [(p, w, s, t.replace(tzinfo=None)) for (p, t), (w, s) in batch]
            latest = commit_batch(conn, readings_of(rows), latest, settings.energy_max_gap_seconds).latest
    kept = _snapshot(settings)
    assert len(kept["panel_energy_15min"]) == 5 * 8
    rebuild(settings, _utc(DAY, 10), _utc(DAY, 14), chunk=timedelta(minutes=30))
    assert _snapshot(settings) == kept
    rebuild(settings, _utc(DAY, 10), _utc(DAY, 14))
    assert _snapshot(settings) == kept
