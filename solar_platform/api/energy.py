"""The energy series every energy route serves: a panel's (`panels.py`), a site's (`sites.py`) and the
fleet's (`fleet.py`)."""

from __future__ import annotations

from flask import Response, jsonify
from sqlalchemy import Connection

from solar_platform.api.context import api_context, read_connection, require_panel
from solar_platform.api.models import EnergyQuery, OutputFormat, YieldQuery
from solar_platform.api.ranges import ENERGY_DEFAULT_SPAN, ENERGY_MAX_SPAN, YIELD_MAX_SPAN, resolve_range
from solar_platform.api.shaping import ENERGY_CSV_HEADER, csv_response, energy_csv_rows, energy_json, yield_json
from solar_platform.storage import queries, sites, yields
from solar_platform.storage.periods import EnergyUnit, periods, zone
from solar_platform.storage.sites import SiteRow


def energy_response(panel_id: str | None, query: EnergyQuery, *, site: SiteRow | None = None) -> Response:
    """Energy per bucket of `query.unit` over the range, for one panel, one `site` (in its zone by
    default) or (both None) the fleet, as JSON or CSV."""
    ctx = api_context()
    unit, now = query.unit, ctx.now()
    tz_name = query.tz or (site.time_zone if site is not None else ctx.settings.site_timezone)
    tz = zone(tz_name)
    start, end = resolve_range(
        query.start, query.end, now=now, default_span=ENERGY_DEFAULT_SPAN[unit], max_span=ENERGY_MAX_SPAN[unit]
    )
    spans = periods(start, end, unit, tz)
    with read_connection() as conn:
        if panel_id is not None:
            require_panel(conn, panel_id)
        figures = queries.energy_series(conn, panel_id, spans, now=now, tz=tz,
                                        site_id=site.site_id if site is not None else None)
    name = panel_id or (f"site_{site.site_id}" if site is not None else "fleet")
    if query.format is OutputFormat.CSV:
        return csv_response(ENERGY_CSV_HEADER, energy_csv_rows(figures), f"energy_{name}_{unit.value.lower()}.csv")
    return jsonify(energy_json(panel_id, unit.value, tz_name, spans[0].start, spans[-1].end, figures,
                               site_id=site.site_id if site is not None else None))


def yield_response(query: YieldQuery, *, panel_id: str | None = None, site: SiteRow | None = None) -> Response:
    """Specific yield and performance ratio per day or month (`storage/yields.py`), for one panel, one
    site (both in the site's zone by default) or the fleet."""
    ctx = api_context()
    unit, now = EnergyUnit(query.unit.value), ctx.now()
    with read_connection() as conn:
        if panel_id is not None:
            require_panel(conn, panel_id)
            site = site or panel_site(conn, panel_id)
        tz_name = query.tz or (site.time_zone if site is not None else ctx.settings.site_timezone)
        start, end = resolve_range(query.start, query.end, now=now, default_span=ENERGY_DEFAULT_SPAN[unit],
                                   max_span=YIELD_MAX_SPAN[unit])
        spans = periods(start, end, unit, zone(tz_name))
        figures = yields.yield_series(conn, ctx.settings, spans, now=now, tz=zone(tz_name), panel_id=panel_id,
                                      site_id=site.site_id if site is not None and panel_id is None else None)
    return jsonify(yield_json(panel_id=panel_id, site_id=site.site_id if site is not None else None, unit=unit.value,
                              tz_name=tz_name, power_model=ctx.settings.power_model, figures=figures))


def panel_site(conn: Connection, panel_id: str) -> SiteRow | None:
    """The site a panel belongs to (None for a panel the registry does not know)."""
    site_id = sites.panel_sites(conn, [panel_id]).get(panel_id)
    return None if site_id is None else sites.site(conn, site_id)
