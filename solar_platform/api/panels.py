"""Tag `panels`: the fleet's panels, one panel's state, its readings, 30-s windows and energy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Response, jsonify
from flask_openapi3 import Tag

from solar_platform.api.context import api_context, read_connection, require_panel
from solar_platform.api.energy import energy_response, yield_response
from solar_platform.api.errors import BAD_REQUEST, NOT_FOUND, RANGE_TOO_LONG, ApiError
from solar_platform.api.models import (
    Energy,
    EnergyQuery,
    OutputFormat,
    PanelDetail,
    PanelPath,
    PanelsPage,
    PanelsQuery,
    ReadingsPage,
    ReadingsQuery,
    WindowsPage,
    WindowsQuery,
    Yield,
    YieldQuery,
)
from solar_platform.api.ranges import (
    READINGS_DEFAULT_SPAN,
    READINGS_MAX_SPAN,
    WINDOWS_DEFAULT_SPAN,
    WINDOWS_MAX_SPAN,
    resolve_range,
)
from solar_platform.api.shaping import (
    READINGS_CSV_HEADER,
    csv_response,
    decode_cursor,
    decode_time_cursor,
    encode_cursor,
    encode_time_cursor,
    keyset_page,
    keyset_pages,
    panel_detail_json,
    panel_json,
    reading_csv_row,
    reading_json,
    time_series_json,
    window_json,
)
from solar_platform.api.v1 import tag_blueprint
from solar_platform.storage import queries
from solar_platform.storage.periods import zone

TAG = Tag(name="panels", description="Per-panel state, telemetry and energy (Enphase-style devices).")
bp = tag_blueprint(TAG, __name__)


@bp.get("/panels", responses={200: PanelsPage, **BAD_REQUEST})
def list_panels(query: PanelsQuery) -> Response:
    """The fleet's panels with rated Pmax, last seen, current status and health, paged by id.

    Lists registered panels and any panel the stream has seen. Pages hold at most 100; follow
    `next_cursor` (keyset paging on panel id, stable while panels are added).
    """
    after = decode_cursor(query.cursor) if query.cursor else None
    with read_connection() as conn:
        panels = queries.list_panels(conn, limit=query.limit + 1, after=after)
    page, next_cursor = keyset_page(panels, query.limit, lambda panel: encode_cursor(panel.panel_id))
    return jsonify({"items": [panel_json(p) for p in page], "next_cursor": next_cursor})


@bp.get("/panels/<string:panel_id>", responses={200: PanelDetail, **BAD_REQUEST, **NOT_FOUND})
def get_panel(path: PanelPath) -> Response:
    """One panel: registry details, health, its latest reading and lifetime energy (Wh)."""
    ctx = api_context()
    with read_connection() as conn:
        summary = queries.panel_summary(conn, path.panel_id)
        if summary is None:
            raise ApiError(404, "not_found", f"unknown panel {path.panel_id!r}")
        lifetime = queries.lifetime_energy(conn, path.panel_id, now=ctx.now(), site_tz=zone(ctx.settings.site_timezone))
    return jsonify(panel_detail_json(summary, lifetime))


@bp.get(
    "/panels/<string:panel_id>/readings",
    responses={200: ReadingsPage, **BAD_REQUEST, **NOT_FOUND, **RANGE_TOO_LONG},
)
def panel_readings(path: PanelPath, query: ReadingsQuery) -> Response:
    """A panel's raw readings in `[from, to)`, oldest first, keyset-paged on time (never OFFSET).

    `to` defaults to now, `from` to 24 h before `to`; the range may be at most 7 days (422
    otherwise). `format=csv` streams every reading of the range (after `cursor`, if given) as
    text/csv, paging internally on the key; `limit` does not apply to it.
    """
    if query.format is OutputFormat.CSV:
        return readings_csv(path.panel_id, query)
    return time_series_page(
        path.panel_id, query, queries.readings, item_json=reading_json, item_time=lambda row: row.time_utc,
        default_span=READINGS_DEFAULT_SPAN, max_span=READINGS_MAX_SPAN,
    )


@bp.get(
    "/panels/<string:panel_id>/windows",
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


@bp.get(
    "/panels/<string:panel_id>/energy",
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
    """One keyset page of a panel's time series, as JSON: the resolved range, the items, the next cursor."""
    start, end = resolve_range(
        query.start, query.end, now=api_context().now(), default_span=default_span, max_span=max_span
    )
    after = decode_time_cursor(query.cursor) if query.cursor else None
    with read_connection() as conn:
        require_panel(conn, panel_id)
        rows = fetch(conn, panel_id, start=start, end=end, limit=query.limit + 1, after=after)
    page, next_cursor = keyset_page(rows, query.limit, lambda row: encode_time_cursor(item_time(row)))
    return jsonify(time_series_json(panel_id, start, end, [item_json(row) for row in page], next_cursor))


def readings_csv(panel_id: str, query: ReadingsQuery) -> Response:
    """Every reading of the range (after `cursor`) as text/csv, each page read on its own short connection."""
    start, end = resolve_range(
        query.start, query.end, now=api_context().now(), default_span=READINGS_DEFAULT_SPAN,
        max_span=READINGS_MAX_SPAN,
    )
    after = decode_time_cursor(query.cursor) if query.cursor else None
    engine = api_context().engine
    with engine.connect() as conn:
        require_panel(conn, panel_id)

    def fetch(after: datetime | None, limit: int) -> list[queries.ReadingRow]:
        with engine.connect() as conn:
            return queries.readings(conn, panel_id, start=start, end=end, limit=limit, after=after)

    rows = keyset_pages(fetch, key=lambda row: row.time_utc, after=after)
    return csv_response(READINGS_CSV_HEADER, (reading_csv_row(r) for r in rows), f"readings_{panel_id}.csv")


@bp.get("/panels/<string:panel_id>/yield", responses={200: Yield, **BAD_REQUEST, **NOT_FOUND, **RANGE_TOO_LONG})
def panel_yield(path: PanelPath, query: YieldQuery) -> Response:
    """A panel's specific yield (kWh/kWp) and performance ratio (measured / expected energy) per day or
    month, in its site's zone unless `tz` says otherwise. Expected = its Pmax x the power model's
    expected hours at its site (`SOLAR_POWER_MODEL`)."""
    return yield_response(query, panel_id=path.panel_id)
