"""The energy series every energy route serves: a panel's (`panels.py`), a site's (`sites.py`) and the
fleet's (`fleet.py`)."""

from __future__ import annotations

from flask import Response, jsonify

from solar_platform.api.context import api_context, read_connection, require_panel
from solar_platform.api.models import EnergyQuery, OutputFormat
from solar_platform.api.ranges import ENERGY_DEFAULT_SPAN, ENERGY_MAX_SPAN, resolve_range
from solar_platform.api.shaping import ENERGY_CSV_HEADER, csv_response, energy_csv_rows, energy_json
from solar_platform.storage import queries
from solar_platform.storage.periods import periods, zone
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
