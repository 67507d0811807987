"""`/api/v1`: panels, readings, windows, energy, fleet overview, alerts and health.

Modelled on what operators know from SolarEdge (site overview, energy by time unit with range
limits, 429) and Enphase v4 (per-device telemetry, lifetime energy, alarms, pages of <= 100).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import Response, jsonify, stream_with_context
from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from solar_platform.api.context import (
    api_context,
    decode_cursor,
    decode_time_cursor,
    encode_cursor,
    encode_time_cursor,
    iso,
    read_connection,
)
from solar_platform.api.errors import BAD_REQUEST, NOT_FOUND, RANGE_TOO_LONG, ApiError, operation_id
from solar_platform.api.models import (
    AlertsPage,
    AlertsQuery,
    AlertState,
    Energy,
    EnergyQuery,
    FleetOverview,
    Health,
    OutputFormat,
    PanelDetail,
    PanelPath,
    PanelsPage,
    PanelsQuery,
    ReadingsPage,
    ReadingsQuery,
    WindowsPage,
    WindowsQuery,
)
from solar_platform.api.ranges import (
    ENERGY_DEFAULT_SPAN,
    ENERGY_MAX_SPAN,
    READINGS_DEFAULT_SPAN,
    READINGS_MAX_SPAN,
    WINDOWS_DEFAULT_SPAN,
    WINDOWS_MAX_SPAN,
    resolve_range,
)
from solar_platform.storage import pipeline_status, queries
from solar_platform.storage.faults import ALERT_KINDS
from solar_platform.storage.periods import EnergyUnit, local_iso, periods, zone

PANELS = Tag(name="panels", description="Per-panel state, telemetry and energy (Enphase-style devices).")
FLEET = Tag(name="fleet", description="The whole fleet (SolarEdge-style site).")
OPS = Tag(name="operations", description="Alerts and platform health.")

# A CSV export reads this many rows per keyset page, each page on its own short connection, so a
# slow client never holds a database connection for the whole download.
CSV_PAGE_ROWS = 5000


def csv_response(header: Sequence[str], rows: Iterable[Sequence[object]], filename: str) -> Response:
    """text/csv, streamed: rows are written as `rows` yields them (a generator may page lazily)."""

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            if buffer.tell() >= 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def require_panel(conn: Connection, panel_id: str) -> None:
    if not queries.panel_exists(conn, panel_id):
        raise ApiError(404, "not_found", f"unknown panel {panel_id!r}")


def time_series_page(
    panel_id: str,
    query: ReadingsQuery | WindowsQuery,
    fetch: Callable[..., list[Any]],
    *,
    item_json: Callable[[Any], dict[str, object]],
    item_time: Callable[[Any], datetime],
    default_span: timedelta,
    max_span: timedelta,
) -> Response:
    """One keyset page of a panel's time series, as JSON: the resolved range, the items, the next cursor.

    Fetches one row beyond the page size, so "more" needs no COUNT and no OFFSET.
    """
    start, end = resolve_range(
        query.start, query.end, now=api_context().now(), default_span=default_span, max_span=max_span
    )
    after = decode_time_cursor(query.cursor) if query.cursor else None
    with read_connection() as conn:
        require_panel(conn, panel_id)
        rows = fetch(conn, panel_id, start=start, end=end, limit=query.limit + 1, after=after)
    page, more = rows[: query.limit], len(rows) > query.limit
    return jsonify(
        {
            "panel_id": panel_id,
            "from": iso(start),
            "to": iso(end),
            "items": [item_json(row) for row in page],
            "next_cursor": encode_time_cursor(item_time(page[-1])) if more else None,
        }
    )


def panel_json(summary: queries.PanelSummary) -> dict[str, object]:
    return {
        "panel_id": summary.panel_id,
        "pmax_w": summary.pmax_w,
        "first_seen": iso(summary.first_seen),
        "last_seen": iso(summary.last_seen),
        "current_status": summary.current_status,
        "health": summary.health,
    }


def reading_json(row: queries.ReadingRow) -> dict[str, object]:
    return {"time": iso(row.time_utc), "power_w": row.power_w, "status": row.status}


def window_json(row: queries.WindowRow) -> dict[str, object]:
    return {
        "window_start": iso(row.window_start),
        "window_end": iso(row.window_end),
        "mean_power_w": row.mean_power_w,
        "reading_count": row.reading_count,
    }


def all_readings(panel_id: str, start: datetime, end: datetime, after: datetime | None) -> Iterator[queries.ReadingRow]:
    """Every reading of a panel in `[start, end)` after `after`, fetched page by page on the key."""
    engine = api_context().engine
    while True:
        with engine.connect() as conn:
            page = queries.readings(conn, panel_id, start=start, end=end, limit=CSV_PAGE_ROWS, after=after)
        yield from page
        if len(page) < CSV_PAGE_ROWS:
            return
        after = page[-1].time_utc


def energy_response(panel_id: str | None, query: EnergyQuery) -> Response:
    ctx = api_context()
    unit, now = query.unit, ctx.now()
    tz_name = query.tz or ctx.settings.site_timezone
    tz = zone(tz_name)
    start, end = resolve_range(
        query.start, query.end, now=now, default_span=ENERGY_DEFAULT_SPAN[unit], max_span=ENERGY_MAX_SPAN[unit]
    )
    spans = periods(start, end, unit, tz)
    with read_connection() as conn:
        if panel_id is not None:
            require_panel(conn, panel_id)
        figures = queries.energy_series(conn, panel_id, spans, now=now, tz=tz)
    expected = sum(f.expected_seconds for f in figures)
    coverage = sum(f.covered_seconds for f in figures) / expected if expected > 0 else None
    if query.format is OutputFormat.CSV:
        return csv_response(
            ["date", "value_wh", "coverage"],
            (
                (
                    local_iso(f.period.label),
                    "" if f.energy_wh is None else round(f.energy_wh, 6),
                    "" if f.coverage is None else round(f.coverage, 6),
                )
                for f in figures
            ),
            f"energy_{panel_id or 'fleet'}_{unit.value.lower()}.csv",
        )
    return jsonify(
        {
            "panel_id": panel_id,
            "time_unit": unit.value,
            "unit": "Wh",
            "time_zone": tz_name,
            "from": iso(spans[0].start),
            "to": iso(spans[-1].end),
            "total_wh": sum(f.energy_wh or 0.0 for f in figures),
            "coverage": coverage,
            "values": [
                {"date": local_iso(f.period.label), "value": f.energy_wh, "coverage": f.coverage} for f in figures
            ],
        }
    )


def v1_blueprint(security: list[dict[str, list[str]]], common: dict) -> APIBlueprint:
    bp = APIBlueprint("v1", __name__, url_prefix="/api/v1", abp_responses=common, operation_id_callback=operation_id)

    def get(rule: str, **options: Any) -> Callable:
        """`bp.get` with the API's security unless a route opts out (`security=[]`: health)."""
        options.setdefault("security", security)
        return bp.get(rule, **options)

    @get("/panels", tags=[PANELS], responses={200: PanelsPage, **BAD_REQUEST})
    def list_panels(query: PanelsQuery) -> Response:
        """The fleet's panels with rated Pmax, last seen, current status and health, paged by id.

        Lists registered panels and any panel the stream has seen. Pages hold at most 100; follow
        `next_cursor` (keyset paging on panel id, stable while panels are added).
        """
        after = decode_cursor(query.cursor) if query.cursor else None
        with read_connection() as conn:
            panels = queries.list_panels(conn, limit=query.limit + 1, after=after)
        page, more = panels[: query.limit], len(panels) > query.limit
        return jsonify(
            {
                "items": [panel_json(p) for p in page],
                "next_cursor": encode_cursor(page[-1].panel_id) if more else None,
            }
        )

    @get("/panels/<string:panel_id>", tags=[PANELS], responses={200: PanelDetail, **BAD_REQUEST, **NOT_FOUND})
    def get_panel(path: PanelPath) -> Response:
        """One panel: registry details, health, its latest reading and lifetime energy (Wh)."""
        ctx = api_context()
        with read_connection() as conn:
            summary = queries.panel_summary(conn, path.panel_id)
            if summary is None:
                raise ApiError(404, "not_found", f"unknown panel {path.panel_id!r}")
            lifetime = queries.lifetime_energy(
                conn, path.panel_id, now=ctx.now(), site_tz=zone(ctx.settings.site_timezone)
            )
        return jsonify(
            {
                **panel_json(summary),
                "latest_reading": reading_json(summary.latest) if summary.latest else None,
                "lifetime_energy_wh": lifetime,
            }
        )

    @get(
        "/panels/<string:panel_id>/readings",
        tags=[PANELS],
        responses={200: ReadingsPage, **BAD_REQUEST, **NOT_FOUND, **RANGE_TOO_LONG},
    )
    def panel_readings(path: PanelPath, query: ReadingsQuery) -> Response:
        """A panel's raw readings in `[from, to)`, oldest first, keyset-paged on time (never OFFSET).

        `to` defaults to now, `from` to 24 h before `to`; the range may be at most 7 days (422
        otherwise). `format=csv` streams every reading of the range (after `cursor`, if given) as
        text/csv, paging internally on the key; `limit` does not apply to it.
        """
        if query.format is OutputFormat.CSV:
            start, end = resolve_range(
                query.start,
                query.end,
                now=api_context().now(),
                default_span=READINGS_DEFAULT_SPAN,
                max_span=READINGS_MAX_SPAN,
            )
            after = decode_time_cursor(query.cursor) if query.cursor else None
            with read_connection() as conn:
                require_panel(conn, path.panel_id)
            return csv_response(
                ["panel_id", "time", "power_w", "status"],
                (
                    (r.panel_id, iso(r.time_utc), r.power_w, r.status)
                    for r in all_readings(path.panel_id, start, end, after)
                ),
                f"readings_{path.panel_id}.csv",
            )
        return time_series_page(
            path.panel_id, query, queries.readings, item_json=reading_json, item_time=lambda row: row.time_utc,
            default_span=READINGS_DEFAULT_SPAN, max_span=READINGS_MAX_SPAN,
        )

    @get(
        "/panels/<string:panel_id>/windows",
        tags=[PANELS],
        responses={200: WindowsPage, **BAD_REQUEST, **NOT_FOUND, **RANGE_TOO_LONG},
    )
    def panel_windows(path: PanelPath, query: WindowsQuery) -> Response:
        """A panel's 30-second window means (`panelDataAgg`) starting in `[from, to)`.

        `to` defaults to now and `from` to 24 h before; at most 31 days. Keyset-paged on window start.
        """
        return time_series_page(
            path.panel_id, query, queries.windows, item_json=window_json, item_time=lambda row: row.window_start,
            default_span=WINDOWS_DEFAULT_SPAN, max_span=WINDOWS_MAX_SPAN,
        )

    @get(
        "/panels/<string:panel_id>/energy",
        tags=[PANELS],
        responses={200: Energy, **BAD_REQUEST, **NOT_FOUND, **RANGE_TOO_LONG},
    )
    def panel_energy(path: PanelPath, query: EnergyQuery) -> Response:
        """A panel's energy (Wh) per time unit, as SolarEdge's energy endpoint, each with its coverage.

        Energy = trapezoid between consecutive readings no further apart than the max gap, cut at
        15-minute edges (`panel_energy_15min`); whole past days come from the daily rollups when
        they are in the requested zone. Buckets follow the wall clock of `tz` (default: the site's
        zone); the range is rounded outward to whole quarter-hours (QUARTER_OF_AN_HOUR, HOUR) or
        whole local days (DAY and coarser). Every bucket of the range is listed. Range limits per
        unit: see `unit`. A bad `tz` is a 400.
        """
        return energy_response(path.panel_id, query)

    @get("/fleet/energy", tags=[FLEET], responses={200: Energy, **BAD_REQUEST, **RANGE_TOO_LONG})
    def fleet_energy(query: EnergyQuery) -> Response:
        """The fleet's energy (Wh) per time unit, from `fleet_energy_15min` and `fleet_daily_energy`.

        Same definitions, time zones and range limits as the per-panel energy; coverage is covered
        panel-seconds over the bucket's seconds times the panels registered.
        """
        return energy_response(None, query)

    @get("/fleet/overview", tags=[FLEET], responses={200: FleetOverview})
    def fleet_overview() -> Response:
        """Site overview: current power, panels reporting vs expected, today's and lifetime energy.

        Current power is the sum of each panel's newest reading (`panel_latest`) within a horizon of
        `SOLAR_CURRENT_POWER_HORIZON_INTERVALS` reporting intervals (default 6), at least
        `SOLAR_CURRENT_POWER_MIN_HORIZON_SECONDS` (default 60 s); panels expected = panels in the
        registry. Today is the site's day (`SOLAR_SITE_TIMEZONE`); lifetime = daily rollups + the
        days after them.
        """
        ctx = api_context()
        now = ctx.now()
        settings = ctx.settings
        horizon = max(settings.current_power_min_horizon_seconds,
                      settings.current_power_horizon_intervals * settings.interval_seconds)
        site_tz = zone(settings.site_timezone)
        with read_connection() as conn:
            current = queries.fleet_now(conn, now - timedelta(seconds=horizon))
            (today,) = queries.energy_series(
                conn, None, periods(now - timedelta(microseconds=1), now, EnergyUnit.DAY, site_tz), now=now, tz=site_tz
            )
            lifetime = queries.lifetime_energy(conn, None, now=now, site_tz=site_tz)
        return jsonify(
            {
                "as_of": iso(now),
                "current_power_w": current.current_power_w,
                "horizon_seconds": horizon,
                "panels_reporting": current.panels_reporting,
                "panels_online": current.panels_online,
                "panels_expected": current.panels_expected,
                "newest_reading": iso(current.newest_reading),
                "time_zone": settings.site_timezone,
                "today_energy_wh": today.energy_wh or 0.0,
                "today_coverage": today.coverage,
                "lifetime_energy_wh": lifetime,
            }
        )

    @get("/alerts", tags=[OPS], responses={200: AlertsPage, **BAD_REQUEST})
    def list_alerts(query: AlertsQuery) -> Response:
        """Fault alerts (offline, silent, zero_production, stuck, underperforming, over_range), newest first,
        pages of at most 100, with open alerts per kind.

        `state` defaults to open. `since` keeps alerts still open or opened/resolved at or after it.
        """
        before = None
        if query.cursor:
            try:
                before = int(decode_cursor(query.cursor))
            except ValueError as exc:
                raise ApiError(400, "bad_request", "cursor is not one this API issued") from exc
        with read_connection() as conn:
            rows = queries.alerts(
                conn,
                state=None if query.state is AlertState.ALL else query.state.value,
                since=query.since,
                kinds=[query.kind.value] if query.kind else ALERT_KINDS,
                panel_id=query.panel_id,
                limit=query.limit + 1,
                before_id=before,
            )
            open_by_kind = queries.open_alert_counts(conn)
        page, more = rows[: query.limit], len(rows) > query.limit
        return jsonify(
            {
                "items": [
                    {
                        "id": a.id,
                        "panel_id": a.panel_id,
                        "kind": a.kind,
                        "state": a.state,
                        "opened_at": iso(a.opened_at),
                        "resolved_at": iso(a.resolved_at),
                        "last_checked": iso(a.last_checked),
                        "detail": a.detail,
                        "severity": a.severity,
                        "metric": a.metric,
                        "evidence": json.loads(a.evidence) if a.evidence else None,
                        "fault_since": iso(a.fault_since),
                    }
                    for a in page
                ],
                "next_cursor": encode_cursor(str(page[-1].id)) if more else None,
                "open_by_kind": open_by_kind,
            }
        )

    @get("/health", tags=[OPS], security=[], responses={200: Health, 503: Health})
    def health() -> Response:
        """Is the platform alive: database reachable, stream heartbeat age, dead letters. No auth.

        200 when the database answers (status ok, or degraded when the stream heartbeat is missing
        or older than `SOLAR_STREAM_STALE_AFTER_TRIGGERS` triggers, default 12, and at least
        `SOLAR_STREAM_STALE_MIN_SECONDS`, default 60 s: the limit Dagster's heartbeat sensor uses);
        503 with status down when it does not.
        """
        ctx = api_context()
        now = ctx.now()
        stale_after = ctx.settings.stream_stale_after_seconds  # the same limit as Dagster's heartbeat sensor
        try:
            with read_connection() as conn:
                stream = queries.stream_health(conn, now)
        except SQLAlchemyError as exc:
            response = jsonify(
                {
                    "status": "down",
                    "database_reachable": False,
                    "stream": None,
                    "dead_letters_total": None,
                    "dead_letters_last_24h": None,
                    "detail": type(exc).__name__,
                }
            )
            response.status_code = 503
            return response
        age = pipeline_status.heartbeat_age_seconds(stream.last_heartbeat, now)
        stale = pipeline_status.heartbeat_is_stale(age, stale_after)
        return jsonify(
            {
                "status": "degraded" if stale else "ok",
                "database_reachable": True,
                "stream": {
                    "last_heartbeat": iso(stream.last_heartbeat),
                    "heartbeat_age_seconds": age,
                    "stale": stale,
                    "stale_after_seconds": stale_after,
                    "newest_event_time": iso(stream.newest_event_time),
                },
                "dead_letters_total": stream.dead_letters_total,
                "dead_letters_last_24h": stream.dead_letters_last_24h,
            }
        )

    return bp
