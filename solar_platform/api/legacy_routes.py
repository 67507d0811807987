"""The legacy routes: those of the seed project (the platform's predecessor), kept for its clients.

`GET /power/<panel_id>`, same shape as the seed's. Its OpenAPI names (tag `seed`, operation
`seed_power`, the `Seed*` schemas) are unchanged: generated clients rely on them.
"""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag

from solar_platform.api.context import read_connection
from solar_platform.api.errors import BAD_REQUEST, RATE_LIMITED, operation_id
from solar_platform.api.models import PanelPath, SeedPowerQuery, SeedReadings
from solar_platform.api.shaping import seed_reading_json
from solar_platform.storage import queries

TAG = Tag(name="seed", description="The seed project's route, unchanged in shape.")
bp = APIBlueprint("legacy", __name__, abp_tags=[TAG], abp_responses=RATE_LIMITED, operation_id_callback=operation_id)


@bp.get("/power/<string:panel_id>", responses={200: SeedReadings, **BAD_REQUEST})
def seed_power(path: PanelPath, query: SeedPowerQuery) -> Response:
    """A panel's raw readings in the seed's shape.

    A JSON list of `{Panel_id, power_panel, current_status, time_data}`, oldest first, as the
    seed returned it; `time_data` is ISO 8601 UTC with milliseconds (`2024-05-01T12:00:05.000Z`).
    The seed returned every row ever sent; this returns at most `limit` (default 1000, max
    10000) rows in `[from, to)`. Without `from` these are the most recent rows. An unknown panel
    gives an empty list, as in the seed; a malformed panel id (not letters, digits, `.`, `_`, `:`,
    `-`) is a 400.
    """
    with read_connection() as conn:
        rows = queries.readings(
            conn,
            path.panel_id,
            start=query.start,
            end=query.end,
            limit=query.limit,
            newest_first=query.start is None,
        )
    if query.start is None:
        rows.reverse()
    return jsonify([seed_reading_json(row) for row in rows])

