"""Local periods -> UTC bucket spans: DST days, weeks, months, clipping and labels (pure, fast)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from solar_platform.storage.periods import (
    BUCKET_SECONDS,
    EnergyUnit,
    local_iso,
    local_midnight,
    periods,
    to_grid,
    zone,
)

MADRID = zone("Europe/Madrid")
UTC_ZONE = zone("UTC")


def test_madrid_dst_days_last_23_and_25_hours() -> None:
    spring = periods(datetime(2024, 3, 30, 23), datetime(2024, 4, 1, 22), EnergyUnit.DAY, MADRID)
    assert [p.label.date() for p in spring] == [date(2024, 3, 31), date(2024, 4, 1)]
    assert [p.seconds / 3600 for p in spring] == [23, 24]
    assert spring[0].start == datetime(2024, 3, 30, 23) and spring[0].end == datetime(2024, 3, 31, 22)
    assert local_iso(spring[0].label) == "2024-03-31T00:00:00.000+01:00"
    assert local_iso(spring[1].label) == "2024-04-01T00:00:00.000+02:00"

    autumn = periods(datetime(2024, 10, 26, 22), datetime(2024, 10, 27, 23), EnergyUnit.DAY, MADRID)
    assert [(p.label.date(), p.seconds / 3600) for p in autumn] == [(date(2024, 10, 27), 25)]
    assert autumn[0].first_day == autumn[0].last_day == date(2024, 10, 27)


def test_madrid_hours_across_dst() -> None:
    spring = periods(datetime(2024, 3, 30, 23), datetime(2024, 3, 31, 22), EnergyUnit.HOUR, MADRID)
    assert len(spring) == 23 and all(p.seconds == 3600 for p in spring)
    labels = [p.label.strftime("%H") for p in spring]
    assert labels[:4] == ["00", "01", "03", "04"]  # 02:00 does not exist that night
    autumn = periods(datetime(2024, 10, 26, 22), datetime(2024, 10, 27, 23), EnergyUnit.HOUR, MADRID)
    assert len(autumn) == 25 and [p.label.strftime("%H") for p in autumn][:5] == ["00", "01", "02", "02", "03"]
    # Quarter-hours tile the day exactly: 96 on a 24-h day, 100 on a 25-h day.
    quarters = periods(datetime(2024, 10, 26, 22), datetime(2024, 10, 27, 23), EnergyUnit.QUARTER_OF_AN_HOUR, MADRID)
    assert len(quarters) == 100 and quarters[0].start == datetime(2024, 10, 26, 22)
    assert all(a.end == b.start for a, b in zip(quarters, quarters[1:], strict=False))


def test_half_hour_zone_hours_start_at_half_past_utc() -> None:
    kolkata = zone("Asia/Kolkata")
    hours = periods(datetime(2024, 5, 1, 4, 40), datetime(2024, 5, 1, 6, 0), EnergyUnit.HOUR, kolkata)
    assert [(p.start.time().isoformat(), p.end.time().isoformat()) for p in hours] == [
        ("04:30:00", "05:30:00"),
        ("05:30:00", "06:00:00"),  # clipped to the (quarter-rounded) request
    ]
    assert local_iso(hours[0].label) == "2024-05-01T10:00:00.000+05:30"
    day = periods(datetime(2024, 5, 1), datetime(2024, 5, 1, 12), EnergyUnit.DAY, kolkata)
    assert day[0].start == datetime(2024, 4, 30, 18, 30) and day[0].seconds == 86400


def test_weeks_months_years_clip_to_whole_local_days() -> None:
    weeks = periods(datetime(2024, 4, 3, 10), datetime(2024, 4, 20), EnergyUnit.WEEK, UTC_ZONE)
    assert [local_iso(p.label) for p in weeks] == [
        "2024-04-01T00:00:00.000Z",  # Monday, the week's label, though the span starts on the 3rd
        "2024-04-08T00:00:00.000Z",
        "2024-04-15T00:00:00.000Z",
    ]
    assert weeks[0].start == datetime(2024, 4, 3) and weeks[-1].end == datetime(2024, 4, 20)
    months = periods(datetime(2023, 12, 31, 23), datetime(2024, 2, 29, 23), EnergyUnit.MONTH, MADRID)
    assert [p.label.strftime("%Y-%m") for p in months] == ["2024-01", "2024-02"]
    assert months[0].start == datetime(2023, 12, 31, 23) and months[1].first_day == date(2024, 2, 1)
    assert months[1].last_day == date(2024, 2, 29)
    years = periods(datetime(2019, 6, 1), datetime(2024, 6, 1), EnergyUnit.YEAR, UTC_ZONE)
    assert [p.label.year for p in years] == [2019, 2020, 2021, 2022, 2023, 2024]
    assert sum(p.seconds for p in years) == (datetime(2024, 6, 1) - datetime(2019, 6, 1)).total_seconds()


def test_spans_tile_the_range_on_the_bucket_grid() -> None:
    for unit in EnergyUnit:
        spans = periods(datetime(2024, 3, 20, 7, 10), datetime(2024, 4, 2, 5, 50), unit, MADRID)
        assert all(a.end == b.start for a, b in zip(spans, spans[1:], strict=False)), unit
        for p in spans:
            assert (p.start - datetime(1970, 1, 1)).total_seconds() % BUCKET_SECONDS == 0
            assert (p.end - datetime(1970, 1, 1)).total_seconds() % BUCKET_SECONDS == 0


def test_midnight_skipped_by_dst_starts_the_day_at_the_change() -> None:
    # Chile skips 00:00 -> 01:00 on its spring-forward night (2024-09-08, -04 -> -03).
    santiago = zone("America/Santiago")
    assert local_midnight(date(2024, 9, 8), santiago) == datetime(2024, 9, 8, 4)
    days = periods(datetime(2024, 9, 8, 4), datetime(2024, 9, 9, 3), EnergyUnit.DAY, santiago)
    assert [p.seconds / 3600 for p in days] == [23]


def test_bad_zone_names_are_rejected_readably() -> None:
    for bad in ("Mars/Olympus", "", "../etc/passwd", "Europe/Madrid ", "/usr/share/zoneinfo/UTC"):
        with pytest.raises(ValueError, match="unknown time zone"):
            zone(bad)


def test_grid_rounding() -> None:
    assert to_grid(datetime(2024, 1, 1, 10, 7, 30)) == datetime(2024, 1, 1, 10)
    assert to_grid(datetime(2024, 1, 1, 10, 7, 30), up=True) == datetime(2024, 1, 1, 10, 15)
    assert to_grid(datetime(2024, 1, 1, 10, 15), up=True) == datetime(2024, 1, 1, 10, 15)
    assert periods(datetime(2024, 1, 2), datetime(2024, 1, 1), EnergyUnit.DAY, UTC_ZONE) == []
    assert periods(datetime(2024, 1, 1), datetime(2024, 1, 1, 0, 0, 1), EnergyUnit.DAY, UTC_ZONE)[0].end == datetime(
        2024, 1, 2
    ) - timedelta(0)
