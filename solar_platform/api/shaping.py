"""How the API shapes what it returns: JSON bodies, keyset paging and cursors, CSV downloads.

Every route module (one per OpenAPI tag) builds its bodies here, so one row type has one JSON
form wherever it appears, and every list pages the same way.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from flask import Response, stream_with_context

from solar_platform.api.errors import ApiError
from solar_platform.contracts import Reading, format_timestamp
from solar_platform.storage import pipeline_status, queries, yields
from solar_platform.storage.notifications import DeliveryStatus
from solar_platform.storage.periods import local_iso
from solar_platform.storage.sites import SiteRow
from solar_platform.storage.stream.offsets import LostOffsetsSummary

Row = TypeVar("Row")
Key = TypeVar("Key")

# A CSV export reads this many rows per keyset page, each page on its own short connection, so a
# slow client never holds a database connection for the whole download.
CSV_PAGE_ROWS = 5000
_CSV_CHUNK_BYTES = 64 * 1024


# ---------------------------------------------------------------- times
def iso(moment: datetime | None) -> str | None:
    """Naive-UTC column value -> `2024-05-01T12:00:05.000Z` (the contract's timestamp format)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_timestamp(moment)


# ---------------------------------------------------------------- keyset paging and cursors
_FOREIGN_CURSOR = "cursor is not one this API issued"


def encode_cursor(value: str) -> str:
    """Opaque keyset cursor: base64url of the last key on the page."""
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        value = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "bad_request", _FOREIGN_CURSOR) from exc
    if not value:
        raise ApiError(400, "bad_request", _FOREIGN_CURSOR)
    return value


def encode_time_cursor(moment: datetime) -> str:
    return encode_cursor(moment.isoformat(timespec="microseconds"))


def decode_time_cursor(cursor: str) -> datetime:
    try:
        return datetime.fromisoformat(decode_cursor(cursor))
    except ValueError as exc:
        raise ApiError(400, "bad_request", _FOREIGN_CURSOR) from exc


def decode_id_cursor(cursor: str) -> int:
    try:
        return int(decode_cursor(cursor))
    except ValueError as exc:
        raise ApiError(400, "bad_request", _FOREIGN_CURSOR) from exc


def keyset_page(rows: Sequence[Row], limit: int, next_key: Callable[[Row], str]) -> tuple[Sequence[Row], str | None]:
    """(the page, its `next_cursor`) from `limit + 1` fetched rows: the extra row says there is more,
    so paging needs no COUNT and no OFFSET."""
    page = rows[:limit]
    return page, next_key(page[-1]) if len(rows) > limit else None


def keyset_pages(fetch: Callable[[Key | None, int], Sequence[Row]], key: Callable[[Row], Key],
                 after: Key | None = None, page_rows: int = CSV_PAGE_ROWS) -> Iterator[Row]:
    """Every row `fetch(after, page_rows)` returns, page after page on the key, until a short page."""
    while True:
        page = fetch(after, page_rows)
        yield from page
        if len(page) < page_rows:
            return
        after = key(page[-1])


# ---------------------------------------------------------------- CSV
def csv_response(header: Sequence[str], rows: Iterable[Sequence[object]], filename: str) -> Response:
    """text/csv, streamed: rows are written as `rows` yields them (a generator may page lazily)."""

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            if buffer.tell() >= _CSV_CHUNK_BYTES:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _csv_number(value: float | None) -> float | str:
    return "" if value is None else round(value, 6)


# ---------------------------------------------------------------- the seed's route (legacy_routes.py)
def seed_reading_json(row: queries.ReadingRow) -> dict[str, object]:
    """A reading as the fleet sent it: the message contract's own keys and timestamp format."""
    return Reading(row.panel_id, row.power_w, row.status, row.time_utc.replace(tzinfo=UTC)).to_message()


# ---------------------------------------------------------------- panels, readings, windows
def panel_json(summary: queries.PanelSummary) -> dict[str, object]:
    return {
        "panel_id": summary.panel_id,
        "pmax_w": summary.pmax_w,
        "first_seen": iso(summary.first_seen),
        "last_seen": iso(summary.last_seen),
        "current_status": summary.current_status,
        "health": summary.health,
    }


def panel_detail_json(summary: queries.PanelSummary, lifetime_energy_wh: float) -> dict[str, object]:
    return {
        **panel_json(summary),
        "latest_reading": reading_json(summary.latest) if summary.latest else None,
        "lifetime_energy_wh": lifetime_energy_wh,
    }


def reading_json(row: queries.ReadingRow) -> dict[str, object]:
    return {"time": iso(row.time_utc), "power_w": row.power_w, "status": row.status}


READINGS_CSV_HEADER = ("panel_id", "time", "power_w", "status")


def reading_csv_row(row: queries.ReadingRow) -> tuple[object, ...]:
    return row.panel_id, iso(row.time_utc), row.power_w, row.status


def window_json(row: queries.WindowRow) -> dict[str, object]:
    return {
        "window_start": iso(row.window_start),
        "window_end": iso(row.window_end),
        "mean_power_w": row.mean_power_w,
        "reading_count": row.reading_count,
    }


def time_series_json(panel_id: str, start: datetime, end: datetime, items: list[dict[str, object]],
                     next_cursor: str | None) -> dict[str, object]:
    """One page of a panel's readings or windows, with the range it was resolved to."""
    return {"panel_id": panel_id, "from": iso(start), "to": iso(end), "items": items, "next_cursor": next_cursor}


# ---------------------------------------------------------------- energy
ENERGY_CSV_HEADER = ("date", "value_wh", "coverage")


def energy_coverage(figures: Sequence[queries.EnergyFigure]) -> float | None:
    """Covered seconds over expected seconds across the whole range (None when nothing is expected)."""
    expected = sum(f.expected_seconds for f in figures)
    return sum(f.covered_seconds for f in figures) / expected if expected > 0 else None


def energy_json(panel_id: str | None, unit: str, tz_name: str, start: datetime, end: datetime,
                figures: Sequence[queries.EnergyFigure], site_id: str | None = None) -> dict[str, object]:
    return {
        "panel_id": panel_id,
        **({"site_id": site_id} if site_id is not None else {}),
        "time_unit": unit,
        "unit": "Wh",
        "time_zone": tz_name,
        "from": iso(start),
        "to": iso(end),
        "total_wh": sum(f.energy_wh or 0.0 for f in figures),
        "coverage": energy_coverage(figures),
        "values": [{"date": local_iso(f.period.label), "value": f.energy_wh, "coverage": f.coverage} for f in figures],
    }


def site_json(site: SiteRow) -> dict[str, object]:
    return {"site_id": site.site_id, "name": site.name, "latitude": site.latitude, "longitude": site.longitude,
            "time_zone": site.time_zone,
            "commissioned_on": site.commissioned_on.isoformat() if site.commissioned_on else None,
            "panels": site.panels, "kwp": site.kwp}


def site_detail_json(site: SiteRow, today: queries.EnergyFigure) -> dict[str, object]:
    return {**site_json(site), "today_energy_wh": today.energy_wh or 0.0, "today_coverage": today.coverage}


def yield_value_json(label: datetime, energy_wh: float | None, expected: float, kwp: float,
                     coverage: float | None) -> dict[str, object]:
    """One period's yield figures (`yields.YieldFigure`'s definitions, for one period or a whole range)."""
    figure = yields.YieldFigure(None, energy_wh, coverage, kwp, expected)  # type: ignore[arg-type]
    return {"date": local_iso(label), "energy_wh": energy_wh, "expected_wh": expected,
            "specific_yield": figure.specific_yield, "performance_ratio": figure.performance_ratio,
            "coverage": coverage}


def yield_json(*, panel_id: str | None, site_id: str | None, unit: str, tz_name: str, power_model: str,
               figures: Sequence[yields.YieldFigure]) -> dict[str, object]:
    """A yield series (`storage/yields.py`); `figures` is never empty (a range has at least one period)."""
    measured = [f.energy_wh for f in figures if f.energy_wh is not None]
    kwp = figures[0].kwp if figures else 0.0
    covered = [f for f in figures if f.coverage is not None]
    return {
        "panel_id": panel_id, "site_id": site_id, "time_unit": unit, "time_zone": tz_name,
        "from": iso(figures[0].period.start), "to": iso(figures[-1].period.end), "kwp": kwp,
        "power_model": power_model,
        "total": yield_value_json(figures[0].period.label, sum(measured) if measured else None,
                                  sum(f.expected_wh for f in figures), kwp,
                                  _mean_coverage(covered) if covered else None),
        "values": [yield_value_json(f.period.label, f.energy_wh, f.expected_wh, f.kwp, f.coverage) for f in figures],
    }


def _mean_coverage(figures: Sequence[yields.YieldFigure]) -> float:
    """The range's coverage: each period's weighted by its length."""
    seconds = [f.period.seconds for f in figures]
    return sum((f.coverage or 0.0) * s for f, s in zip(figures, seconds, strict=True)) / (sum(seconds) or 1.0)


def energy_csv_rows(figures: Iterable[queries.EnergyFigure]) -> Iterator[tuple[object, ...]]:
    for f in figures:
        yield local_iso(f.period.label), _csv_number(f.energy_wh), _csv_number(f.coverage)


# ---------------------------------------------------------------- fleet
def overview_json(*, now: datetime, current: queries.FleetNow, horizon_seconds: float, time_zone: str,
                  today: queries.EnergyFigure, lifetime_energy_wh: float) -> dict[str, object]:
    return {
        "as_of": iso(now),
        "current_power_w": current.current_power_w,
        "horizon_seconds": horizon_seconds,
        "panels_reporting": current.panels_reporting,
        "panels_online": current.panels_online,
        "panels_expected": current.panels_expected,
        "newest_reading": iso(current.newest_reading),
        "time_zone": time_zone,
        "today_energy_wh": today.energy_wh or 0.0,
        "today_coverage": today.coverage,
        "lifetime_energy_wh": lifetime_energy_wh,
    }


# ---------------------------------------------------------------- operations: alerts and health
def alert_json(alert: queries.AlertRow) -> dict[str, object]:
    return {
        "id": alert.id,
        "panel_id": alert.panel_id,
        "kind": alert.kind,
        "state": alert.state,
        "opened_at": iso(alert.opened_at),
        "resolved_at": iso(alert.resolved_at),
        "last_checked": iso(alert.last_checked),
        "detail": alert.detail,
        "severity": alert.severity,
        "metric": alert.metric,
        "evidence": json.loads(alert.evidence) if alert.evidence else None,
        "fault_since": iso(alert.fault_since),
    }


def notifications_json(status: DeliveryStatus, channels: Sequence[str]) -> dict[str, object]:
    return {
        "channels": list(channels),
        "pending": status.pending,
        "failing": status.failing,
        "abandoned_last_24h": status.abandoned_recently,
        "events_waiting": status.events_waiting,
        "oldest_pending": iso(status.oldest_pending),
        "last_error": status.last_error,
    }


def lost_offsets_json(summary: LostOffsetsSummary) -> dict[str, object]:
    return {
        "gaps_last_24h": summary.gaps,
        "records_last_24h": summary.records,
        "newest": [{"topic": gap.topic, "partition": gap.partition, "first_offset": gap.first_offset,
                    "last_offset": gap.last_offset, "records": gap.records,
                    "published_after": iso(gap.published_after), "published_before": iso(gap.published_before),
                    "detected_at": iso(gap.detected_at)} for gap in summary.newest],
    }


def health_json(stream: queries.StreamHealth, *, age_seconds: float | None, stale: bool,
                stale_after_seconds: float, notifications: dict[str, object], pulse: pipeline_status.Pulse | None,
                in_flight: bool, platform_alerts: list[queries.PlatformAlertRow], lost_offsets: LostOffsetsSummary,
                now: datetime) -> dict[str, object]:
    waiting = in_flight and pulse is not None and pulse.waiting_for is not None
    return {
        # A stale heartbeat with a batch in flight is a slow stream, not a stuck one; a batch that
        # waits (MariaDB's disk full) is a paused one.
        "status": "degraded" if (stale and not in_flight) or waiting or platform_alerts else "ok",
        "database_reachable": True,
        "stream": {
            "last_heartbeat": iso(stream.last_heartbeat),
            "heartbeat_age_seconds": age_seconds,
            "stale": stale,
            "stale_after_seconds": stale_after_seconds,
            "newest_event_time": iso(stream.newest_event_time),
            "batch_in_flight": pulse.batch_id if in_flight and pulse is not None else None,
            "batch_running_seconds": round(pulse.running_seconds(now), 1) if in_flight and pulse is not None else None,
            "waiting_for": pulse.waiting_for if waiting and pulse is not None else None,
            "waiting_since": iso(pulse.waiting_since) if waiting and pulse is not None else None,
            "summaries_waiting_batches": stream.summaries_waiting,
            "summaries_behind_seconds": pipeline_status.heartbeat_age_seconds(stream.oldest_waiting_since, now),
        },
        "dead_letters_total": stream.dead_letters_total,
        "dead_letters_last_24h": stream.dead_letters_last_24h,
        "notifications": notifications,
        "platform_alerts": [{"kind": a.kind, "severity": a.severity, "opened_at": iso(a.opened_at),
                             "last_checked": iso(a.last_checked), "detail": a.detail, "metric": a.metric}
                            for a in platform_alerts],
        "lost_offsets": lost_offsets_json(lost_offsets),
    }


def health_down_json(reason: str) -> dict[str, object]:
    """The body of a 503: the database did not answer, so nothing else is known."""
    return {
        "status": "down",
        "database_reachable": False,
        "stream": None,
        "dead_letters_total": None,
        "dead_letters_last_24h": None,
        "notifications": None,
        "platform_alerts": None,
        "lost_offsets": None,
        "detail": reason,
    }
