"""What every `/api/v1` blueprint shares: the URL prefix, the 429 any route may answer, and
operationIds taken from the handlers' names.

One blueprint module per OpenAPI tag, handlers at module level: `panels.py`, `fleet.py` and
`operations.py` (alerts, health). The app factory (`app.py`) registers them. Modelled on what
operators know from SolarEdge (site overview, energy by time unit with range limits, 429) and
Enphase v4 (per-device telemetry, lifetime energy, alarms, pages of <= 100).
"""

from __future__ import annotations

from flask_openapi3 import APIBlueprint, Tag

from solar_platform.api.errors import RATE_LIMITED, operation_id
from solar_platform.api.shaping import CSV_PAGE_ROWS

# Importable from here as before the split (tests and scripts read the CSV page size from v1).
__all__ = ["CSV_PAGE_ROWS", "PREFIX", "tag_blueprint"]

PREFIX = "/api/v1"


def tag_blueprint(tag: Tag, import_name: str) -> APIBlueprint:
    """The blueprint of one OpenAPI tag under `/api/v1`. Security and the 401 are the app's to add:
    they depend on whether it has a token (app.py)."""
    return APIBlueprint(tag.name, import_name, url_prefix=PREFIX, abp_tags=[tag], abp_responses=RATE_LIMITED,
                        operation_id_callback=operation_id)
