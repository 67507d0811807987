"""Retention of the growing tables on real MariaDB, each by its setting: energy buckets fold into their
daily rollups after SOLAR_BUCKET_RETENTION_DAYS (only days whose rollup equals them; lifetime and DAY
figures unchanged; late data on a folded day gives it its buckets back), and dead letters go after
SOLAR_DEAD_LETTER_RETENTION_DAYS. (stream_progress: storage/test_retention.py; the archive:
history/test_archive.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from solar_platform.storage import db, queries
from solar_platform.storage import rollups as daily_rollups
from solar_platform.storage.energy import trapezoid_buckets
from solar_platform.storage.history import folding
from solar_platform.storage.periods import EnergyUnit, periods, zone
from solar_platform_tests.storage.test_history_changes import Stream

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
TODAY = NOW.date()
NOW_UTC = NOW.replace(tzinfo=None)  # what the read queries take


def _day(offset: int, hours: tuple[float, float] = (10, 14), power: float = 100.0, panels: int = 2):
    start = datetime.combine(TODAY - timedelta(days=offset), datetime.min.time())
    return [(f"p-{i}", power + 10 * i + (k % 7), 1, start + timedelta(hours=hours[0], seconds=60 * k))
            for i in range(panels) for k in range(int((hours[1] - hours[0]) * 60))]


def _oracle(rows, max_gap_s: float) -> dict[str, dict[int, float]]:
    series: dict[str, dict[float, float]] = {}
    for panel, power, _, moment in rows:
        series.setdefault(panel, {})[moment.replace(tzinfo=UTC).timestamp()] = power
    return {p: {b: e for b, (e, _) in trapezoid_buckets(np.array(list(s)), np.array(list(s.values())),
                                                         max_gap_s).items()} for p, s in series.items()}


def _figures(settings, day):
    with db.engine(settings, readonly=True).connect() as conn:
        (fig,) = queries.energy_series(conn, None, periods(*_span(day), EnergyUnit.DAY, zone("UTC")), now=NOW_UTC,
                                       tz=zone("UTC"))
        return fig.energy_wh, queries.lifetime_energy(conn, None), queries.lifetime_energy(conn, "p-1")


def _span(day):
    start = datetime.combine(day, datetime.min.time())
    return start, start + timedelta(days=1)


def _buckets_of(settings, day) -> int:
    with db.engine(settings).connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM panel_energy_15min WHERE bucket_start >= :a "
                                     "AND bucket_start < :b"), dict(zip("ab", _span(day), strict=True))).scalar())


def test_old_buckets_fold_into_their_rollups_and_figures_stay_exact(fresh_settings) -> None:
    settings = fresh_settings.model_copy(update={"interval_seconds": 60.0, "bucket_retention_days": 2})
    gap = settings.energy_max_gap_seconds
    stream = Stream(settings)
    rows = {offset: _day(offset) for offset in (6, 5, 4, 3, 0)}
    for batch in rows.values():
        stream.commit(batch)
    days = {offset: TODAY - timedelta(days=offset) for offset in rows}
    engine = db.engine(settings)
    assert daily_rollups.roll_up_days(engine, settings, "r", [days[6], days[5], days[3]]).served
    stream.commit(_day(5, hours=(15, 15.5)))  # a change day 5's rollup has not seen (marked)
    with db.engine(settings, role="migrator").begin() as conn:  # day 3's rollup no longer equals its buckets
        conn.execute(text("UPDATE panel_energy_15min SET energy_wh = energy_wh + 1 WHERE panel_id = 'p-0' "
                          "AND bucket_start = :b"), {"b": datetime.combine(days[3], datetime.min.time())
                                                      + timedelta(hours=11)})
    every = [r for batch in rows.values() for r in batch] + _day(5, hours=(15, 15.5))
    before = {offset: _figures(settings, day) for offset, day in days.items()}

    report = folding.fold_buckets(settings, now=NOW)
    assert report.folded == [days[6].isoformat()]
    assert report.waiting_for_rollup == [days[5].isoformat()]
    assert report.mismatched == [days[3].isoformat()]  # day 4 has no rollup: never a candidate
    assert _buckets_of(settings, days[6]) == 0 and _buckets_of(settings, days[4]) > 0
    assert report.buckets_deleted == 2 * 16
    for offset, day in days.items():  # the DAY figures (rollup or buckets) and lifetime do not move
        assert _figures(settings, day) == pytest.approx(before[offset], rel=1e-12)
    oracle = _oracle(every, gap)
    lifetime = sum(sum(b.values()) for b in oracle.values())  # the fleet buckets were not tampered with
    assert before[0][1] == pytest.approx(lifetime, rel=1e-9)
    assert folding.fold_buckets(settings, now=NOW).folded == []  # idempotent

    # A reading weeks late on the folded day: lifetime counts its delta at once; the day's rollup,
    # rolled again, first gets its buckets back from panelData.
    late = _day(6, hours=(14, 14.25), power=55.0)
    stream.commit(late)
    every += late
    oracle = _oracle(every, gap)
    with db.engine(settings).connect() as conn:
        assert queries.lifetime_energy(conn, "p-1") == pytest.approx(sum(oracle["p-1"].values()), rel=1e-9)
    assert daily_rollups.roll_up_days(engine, settings, "again", [days[6]]).served
    start, end = (moment.replace(tzinfo=UTC).timestamp() for moment in _span(days[6]))
    expected_day = sum(wh for b in oracle.values() for s, wh in b.items() if start <= s < end)
    day_wh, fleet_lifetime, panel_lifetime = _figures(settings, days[6])
    assert day_wh == pytest.approx(expected_day, rel=1e-9)
    assert panel_lifetime == pytest.approx(sum(oracle["p-1"].values()), rel=1e-9)
    assert fleet_lifetime == pytest.approx(sum(sum(b.values()) for b in oracle.values()), rel=1e-9)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT buckets_folded_at FROM fleet_daily_energy WHERE day = :d"),
                            {"d": days[6]}).scalar() is None
    assert folding.fold_buckets(settings, now=NOW).folded == [days[6].isoformat()]  # folds again
    assert _figures(settings, days[6]) == pytest.approx((day_wh, fleet_lifetime, panel_lifetime), rel=1e-12)


def test_dead_letters_go_after_their_retention(fresh_settings) -> None:
    settings = fresh_settings.model_copy(update={"dead_letter_retention_days": 7})
    ages = [0.5, 3, 6.9, 7.1, 30, 400]
    with db.engine(settings.as_role("stream")).begin() as conn:  # the stream writes them; Dagster only prunes
        conn.execute(text("INSERT INTO dead_letters (kafka_topic, kafka_partition, kafka_offset, payload, reason, "
                          "recorded_at) VALUES ('t', 0, :o, 'x', 'invalid_json', :r)"),
                     [{"o": i, "r": (NOW - timedelta(days=age)).replace(tzinfo=None)} for i, age in enumerate(ages)])
    assert folding.prune_dead_letters(settings, now=NOW, chunk=2) == 3
    with db.engine(settings).connect() as conn:
        kept = sorted(o for (o,) in conn.execute(text("SELECT kafka_offset FROM dead_letters")))
    assert kept == [0, 1, 2]
