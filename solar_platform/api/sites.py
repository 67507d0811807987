"""Tag `sites`: where the panels are; each site's energy in its own time zone."""

from __future__ import annotations

from datetime import timedelta

from flask import Response, jsonify
from flask_openapi3 import Tag
from sqlalchemy import Connection

from solar_platform.api.context import api_context, read_connection
from solar_platform.api.energy import energy_response, yield_response
from solar_platform.api.errors import BAD_REQUEST, NOT_FOUND, RANGE_TOO_LONG, ApiError
from solar_platform.api.models import (
    Energy,
    EnergyQuery,
    SiteDetail,
    SitePath,
    SitesPage,
    SitesQuery,
    Yield,
    YieldQuery,
)
from solar_platform.api.shaping import decode_cursor, encode_cursor, keyset_page, site_detail_json, site_json
from solar_platform.api.v1 import tag_blueprint
from solar_platform.storage import queries, sites
from solar_platform.storage.periods import EnergyUnit, periods, zone

TAG = Tag(name="sites", description="Sites: location, time zone, panels and energy in the site's own zone.")
bp = tag_blueprint(TAG, __name__)


def require_site(conn: Connection, site_id: str) -> sites.SiteRow:
    found = sites.site(conn, site_id)
    if found is None:
        raise ApiError(404, "not_found", f"unknown site {site_id!r}")
    return found


@bp.get("/sites", responses={200: SitesPage, **BAD_REQUEST})
def list_sites(query: SitesQuery) -> Response:
    """The sites with location, time zone, commissioning date, panels in service and kWp, paged by id."""
    after = decode_cursor(query.cursor) if query.cursor else None
    with read_connection() as conn:
        rows = sites.list_sites(conn, limit=query.limit + 1, after=after)
    page, next_cursor = keyset_page(rows, query.limit, lambda site: encode_cursor(site.site_id))
    return jsonify({"items": [site_json(s) for s in page], "next_cursor": next_cursor})


@bp.get("/sites/<string:site_id>", responses={200: SiteDetail, **BAD_REQUEST, **NOT_FOUND})
def get_site(path: SitePath) -> Response:
    """One site, with today's energy so far (today = the site's local day)."""
    now = api_context().now()
    with read_connection() as conn:
        site = require_site(conn, path.site_id)
        tz = zone(site.time_zone)
        (today,) = queries.energy_series(conn, None, periods(now - timedelta(microseconds=1), now, EnergyUnit.DAY, tz),
                                         now=now, tz=tz, site_id=site.site_id)
    return jsonify(site_detail_json(site, today))


@bp.get("/sites/<string:site_id>/energy", responses={200: Energy, **BAD_REQUEST, **NOT_FOUND, **RANGE_TOO_LONG})
def site_energy(path: SitePath, query: EnergyQuery) -> Response:
    """A site's energy (Wh) per time unit: the sum of its panels', in the site's own zone unless `tz` says
    otherwise. Same units, range limits and CSV as the fleet's energy; coverage is covered
    panel-seconds over the bucket's seconds times the site's panels."""
    with read_connection() as conn:
        site = require_site(conn, path.site_id)
    return energy_response(None, query, site=site)


@bp.get("/sites/<string:site_id>/yield", responses={200: Yield, **BAD_REQUEST, **NOT_FOUND, **RANGE_TOO_LONG})
def site_yield(path: SitePath, query: YieldQuery) -> Response:
    """A site's specific yield (kWh/kWp) and performance ratio (measured / expected energy) per day or
    month, in the site's zone unless `tz` says otherwise."""
    with read_connection() as conn:
        site = require_site(conn, path.site_id)
    return yield_response(query, site=site)
