"""Time-range defaults and limits, one place, so every endpoint answers the same way."""

from __future__ import annotations

from datetime import datetime, timedelta

from solar_platform.api.errors import ApiError
from solar_platform.storage.periods import EnergyUnit

READINGS_DEFAULT_SPAN = timedelta(hours=24)
READINGS_MAX_SPAN = timedelta(days=7)
WINDOWS_DEFAULT_SPAN = timedelta(hours=24)
WINDOWS_MAX_SPAN = timedelta(days=31)

# SolarEdge's limits: a month for sub-day units, a year for DAY, none for coarser ones.
ENERGY_MAX_SPAN: dict[EnergyUnit, timedelta | None] = {
    EnergyUnit.QUARTER_OF_AN_HOUR: timedelta(days=31),
    EnergyUnit.HOUR: timedelta(days=31),
    EnergyUnit.DAY: timedelta(days=366),
    EnergyUnit.WEEK: None,
    EnergyUnit.MONTH: None,
    EnergyUnit.YEAR: None,
}
ENERGY_DEFAULT_SPAN: dict[EnergyUnit, timedelta] = {
    EnergyUnit.QUARTER_OF_AN_HOUR: timedelta(days=1),
    EnergyUnit.HOUR: timedelta(days=1),
    EnergyUnit.DAY: timedelta(days=31),
    EnergyUnit.WEEK: timedelta(weeks=26),
    EnergyUnit.MONTH: timedelta(days=366),
    EnergyUnit.YEAR: timedelta(days=5 * 366),
}

# Yield figures integrate the power model per site and minute: a year of days, ten years of months.
YIELD_MAX_SPAN: dict[EnergyUnit, timedelta] = {
    EnergyUnit.DAY: timedelta(days=366), EnergyUnit.MONTH: timedelta(days=3660)}


def _span_text(span: timedelta) -> str:
    """'151 days', '6 h 30 min': readable in an error message (str(timedelta) prints '151 days, 0:00:00')."""
    if span % timedelta(days=1) == timedelta(0):
        return f"{span.days} days"
    hours, rest = divmod(int(span.total_seconds()), 3600)
    return f"{hours} h {rest // 60} min" if rest else f"{hours} h"


def resolve_range(
    start: datetime | None,
    end: datetime | None,
    *,
    now: datetime,
    default_span: timedelta,
    max_span: timedelta | None,
) -> tuple[datetime, datetime]:
    """`to` defaults to now and `from` to `to - default_span`; 400 if empty, 422 if longer than allowed."""
    end = end or now
    start = start or end - default_span
    if start >= end:
        raise ApiError(400, "bad_request", "`from` must be earlier than `to`")
    if max_span is not None and end - start > max_span:
        raise ApiError(
            422,
            "range_too_long",
            f"the range is {_span_text(end - start)}; at most {_span_text(max_span)} is allowed here — "
            "split it into several requests",
        )
    return start, end
