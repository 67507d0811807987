"""Energy periods in local time -> UTC spans of 15-minute buckets. Pure: no database, no clock.

An energy figure for a period is the sum of the `panel_energy_15min` buckets whose start lies in
the period's UTC span, so every span edge must fall on the 15-minute UTC grid. It does for every
zone in use since 1970 except a few historical oddities (Liberia's -0:44:30 until 1972): edges
are floored to the grid, so such a period is off by at most 15 minutes rather than unanswerable.

- QUARTER_OF_AN_HOUR and HOUR follow the zone's wall clock (an hour in Asia/Kolkata starts at
  :30 UTC); their spans are always 900 and 3600 s.
- DAY starts at local midnight (or the first instant after it, where a DST change skips
  midnight), so a DST day lasts 23 or 25 hours. WEEK starts on Monday (as SolarEdge's weeks),
  MONTH on the 1st, YEAR on 1 January, each at local midnight.

A request `[start, end)` is rounded outward to whole quarter-hours (sub-day units) or whole local
days (DAY and coarser); each period is the unit's period clipped to that rounded range, labelled
by the local start of the whole period (a clipped week keeps its Monday).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

BUCKET_SECONDS = 900  # the panel_energy_15min grain (storage.energy.BUCKET_SECONDS)
_EPOCH = datetime(1970, 1, 1)


class EnergyUnit(StrEnum):
    """SolarEdge's time units for energy buckets."""

    QUARTER_OF_AN_HOUR = "QUARTER_OF_AN_HOUR"
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    YEAR = "YEAR"


SUB_DAY_SECONDS = {EnergyUnit.QUARTER_OF_AN_HOUR: 900, EnergyUnit.HOUR: 3600}


@dataclass(frozen=True, slots=True)
class Period:
    """One bucket of an energy series: its local label and the UTC span it sums (naive UTC)."""

    label: datetime  # aware, in the request's zone: the start of the whole (unclipped) period
    start: datetime  # naive UTC, on the 15-min grid
    end: datetime  # naive UTC, on the 15-min grid
    first_day: date | None = None  # local days the period covers (DAY and coarser), for the rollups
    last_day: date | None = None

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError with a readable message when there is no such zone."""
    try:
        if not name or name != name.strip() or name.startswith(("/", ".")) or ".." in name:
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'Europe/Madrid' or 'UTC'") from exc


def to_grid(moment: datetime, *, up: bool = False) -> datetime:
    """Naive UTC `moment` floored (or ceiled) to the 15-minute UTC grid."""
    seconds = (moment - _EPOCH) / timedelta(seconds=1)
    steps = int(seconds // BUCKET_SECONDS)
    if up and steps * BUCKET_SECONDS < seconds:
        steps += 1
    return _EPOCH + timedelta(seconds=steps * BUCKET_SECONDS)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """Naive UTC start of local `day`: midnight, or where a DST change skips it, the change itself.

    zoneinfo reads a non-existent wall time with the offset before the change (fold=0), which
    lands exactly on the change instant.
    """
    local = datetime(day.year, day.month, day.day, tzinfo=tz)
    return local.astimezone(UTC).replace(tzinfo=None)


def local_day_span(day: date, tz: str) -> tuple[datetime, datetime]:
    """`[start of local day, start of the next)` of zone `tz` as naive UTC: the UTC buckets a site day
    sums (23 or 25 hours on DST days)."""
    zone_info = ZoneInfo(tz)
    return local_midnight(day, zone_info), local_midnight(day + timedelta(days=1), zone_info)


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    """The local date holding naive UTC `moment`."""
    return moment.replace(tzinfo=UTC).astimezone(tz).date()


def _period_first_day(day: date, unit: EnergyUnit) -> date:
    if unit is EnergyUnit.WEEK:
        return day - timedelta(days=day.weekday())
    if unit is EnergyUnit.MONTH:
        return day.replace(day=1)
    if unit is EnergyUnit.YEAR:
        return day.replace(month=1, day=1)
    return day


def _next_first_day(first: date, unit: EnergyUnit) -> date:
    if unit is EnergyUnit.DAY:
        return first + timedelta(days=1)
    if unit is EnergyUnit.WEEK:
        return first + timedelta(days=7)
    if unit is EnergyUnit.MONTH:
        return first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
    return first.replace(year=first.year + 1)


def _aware(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.replace(tzinfo=UTC).astimezone(tz)


def periods(start: datetime, end: datetime, unit: EnergyUnit, tz: ZoneInfo) -> list[Period]:
    """The periods of `unit` in `tz` covering naive-UTC `[start, end)`, oldest first (see module doc)."""
    if start >= end:
        return []
    if unit in SUB_DAY_SECONDS:
        return _sub_day_periods(start, end, SUB_DAY_SECONDS[unit], tz)
    first_day, last_day = local_day(start, tz), local_day(end - timedelta(microseconds=1), tz)
    result = []
    period_first = _period_first_day(first_day, unit)
    while period_first <= last_day:
        following = _next_first_day(period_first, unit)
        days_from, days_to = max(period_first, first_day), min(following - timedelta(days=1), last_day)
        result.append(
            Period(
                label=_aware(local_midnight(period_first, tz), tz),
                start=to_grid(local_midnight(days_from, tz)),
                end=to_grid(local_midnight(days_to + timedelta(days=1), tz)),
                first_day=days_from,
                last_day=days_to,
            )
        )
        period_first = following
    return result


def _sub_day_periods(start: datetime, end: datetime, step_s: int, tz: ZoneInfo) -> list[Period]:
    lo, hi = to_grid(start), to_grid(end, up=True)
    # The wall-clock period holding `lo`: for hours, floor the local time to the hour; its UTC
    # instant is then stepped in absolute seconds (every offset change is a whole number of steps).
    local = _aware(lo, tz)
    cursor = local.replace(minute=local.minute - local.minute % (step_s // 60), second=0, microsecond=0)
    cursor_utc = to_grid(cursor.astimezone(UTC).replace(tzinfo=None))
    result = []
    while cursor_utc < hi:
        following = cursor_utc + timedelta(seconds=step_s)
        result.append(Period(label=_aware(cursor_utc, tz), start=max(cursor_utc, lo), end=min(following, hi)))
        cursor_utc = following
    return result


def local_iso(moment: datetime) -> str:
    """Aware `moment` as ISO 8601 with milliseconds: `Z` when the offset is zero, else the offset."""
    text = moment.isoformat(timespec="milliseconds")
    return text[:-6] + "Z" if moment.utcoffset() == timedelta(0) else text
