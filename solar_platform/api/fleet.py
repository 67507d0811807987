"""Tag `fleet`: the whole fleet as one site (SolarEdge-style): its energy and its overview now."""

from __future__ import annotations

from datetime import timedelta

from flask import Response, jsonify
from flask_openapi3 import Tag

from solar_platform.api.context import api_context, read_connection
from solar_platform.api.energy import energy_response, yield_response
from solar_platform.api.errors import BAD_REQUEST, RANGE_TOO_LONG
from solar_platform.api.models import Energy, EnergyQuery, FleetOverview, Yield, YieldQuery
from solar_platform.api.shaping import overview_json
from solar_platform.api.v1 import tag_blueprint
from solar_platform.storage import queries
from solar_platform.storage.periods import EnergyUnit, periods, zone

TAG = Tag(name="fleet", description="The whole fleet (SolarEdge-style site).")
bp = tag_blueprint(TAG, __name__)


@bp.get("/fleet/energy", responses={200: Energy, **BAD_REQUEST, **RANGE_TOO_LONG})
def fleet_energy(query: EnergyQuery) -> Response:
    """The fleet's energy (Wh) per time unit, from `fleet_energy_15min` and `fleet_daily_energy`.

    Same definitions, time zones and range limits as the per-panel energy; coverage is covered
    panel-seconds over the bucket's seconds times the panels registered.
    """
    return energy_response(None, query)


@bp.get("/fleet/yield", responses={200: Yield, **BAD_REQUEST, **RANGE_TOO_LONG})
def fleet_yield(query: YieldQuery) -> Response:
    """The fleet's specific yield (kWh/kWp) and performance ratio (measured / expected energy) per day
    or month in `tz` (default `SOLAR_SITE_TIMEZONE`); expected is summed over the sites, each with its
    own sky."""
    return yield_response(query)


@bp.get("/fleet/overview", responses={200: FleetOverview})
def fleet_overview() -> Response:
    """Site overview: current power, panels reporting vs expected, today's and lifetime energy.

    Current power is the sum of each panel's newest reading within a horizon of
    `SOLAR_CURRENT_POWER_HORIZON_INTERVALS` reporting intervals (default 6), at least
    `SOLAR_CURRENT_POWER_MIN_HORIZON_SECONDS` (default 60 s), as the stream counted it after its
    newest batch (none when that is older than the horizon); panels expected = panels in the
    registry. Today is the site's day (`SOLAR_SITE_TIMEZONE`); lifetime = daily rollups + the
    days after them.
    """
    ctx = api_context()
    now = ctx.now()
    settings = ctx.settings
    horizon = settings.current_power_horizon_seconds
    site_tz = zone(settings.site_timezone)
    with read_connection() as conn:
        current = queries.fleet_now(conn, now)
        (today,) = queries.energy_series(
            conn, None, periods(now - timedelta(microseconds=1), now, EnergyUnit.DAY, site_tz), now=now, tz=site_tz
        )
        lifetime = queries.lifetime_energy(conn, None, now=now, site_tz=site_tz)
    return jsonify(overview_json(now=now, current=current, horizon_seconds=horizon, time_zone=settings.site_timezone,
                                 today=today, lifetime_energy_wh=lifetime))
