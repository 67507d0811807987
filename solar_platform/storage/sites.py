"""The site registry (`sites`): where panels are, in which time zone their days run, since when.

- `register_site` / `edit_site`: an operator's word (CLI `solar-platform sites ...`); the fleet
  sync never overwrites an operator's site.
- `sync_fleet_sites`: the fleet config's sites (SOLAR_FLEET_SITES, or the default site at
  SOLAR_SITE_LATITUDE/LONGITUDE/TIMEZONE), called by the panel registry's sync in its transaction.
- `list_sites`, `site`, `site_places`: reads for the API, Dagster and fault detection. A site's
  panel count and kWp come from the `(site_id, retired_at, pmax_w)` index of `panels`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Connection, Engine, text

from solar_platform.settings import DEFAULT_SITE_ID, SITE_ID_PATTERN, FleetSite, known_zone
from solar_platform.storage.db import PANELS, SITES

FLEET, OPERATOR = "fleet", "operator"

__all__ = ["DEFAULT_SITE_ID", "SiteRow", "edit_site", "list_sites", "register_site", "site", "site_places",
           "sync_fleet_sites"]


@dataclass(frozen=True, slots=True)
class SiteRow:
    site_id: str
    name: str
    latitude: float
    longitude: float
    time_zone: str
    commissioned_on: date | None
    registered_by: str
    panels: int  # panels in service (not retired)
    kwp: float  # their nameplate peak power, kW (panels without a Pmax count 0)

    @property
    def place(self) -> FleetSite:
        return FleetSite(self.site_id, self.latitude, self.longitude, self.time_zone)


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)


def check_site(site_id: str, latitude: float | None = None, longitude: float | None = None,
               time_zone: str | None = None, name: str | None = None) -> None:
    """Refuse what the table must never hold, with a message that says what is expected."""
    if not re.match(SITE_ID_PATTERN, site_id):
        raise ValueError(f"invalid site id {site_id!r}: a site id is 1-64 of letters, digits, '.', '_', '-'")
    if latitude is not None and not -90 <= latitude <= 90:
        raise ValueError(f"latitude must be within -90..90, got {latitude}")
    if longitude is not None and not -180 <= longitude <= 180:
        raise ValueError(f"longitude must be within -180..180, got {longitude}")
    if time_zone is not None:
        known_zone(time_zone)
    if name is not None and not 0 < len(name) <= 200:
        raise ValueError("a site name is 1-200 characters")


def register_site(engine: Engine, site_id: str, *, name: str, latitude: float, longitude: float,
                  time_zone: str, commissioned_on: date | None = None, now: datetime | None = None) -> None:
    """Register a site, or replace every field of one, as an operator."""
    check_site(site_id, latitude, longitude, time_zone, name)
    moment = _now(now)
    with engine.begin() as conn:
        conn.execute(text(
            f"INSERT INTO {SITES} (site_id, name, latitude, longitude, time_zone, commissioned_on, registered_by, "
            "created_at, updated_at) VALUES (:s, :n, :lat, :lon, :tz, :c, 'operator', :now, :now) "
            "ON DUPLICATE KEY UPDATE name = VALUES(name), latitude = VALUES(latitude), longitude = VALUES(longitude), "
            "time_zone = VALUES(time_zone), commissioned_on = VALUES(commissioned_on), registered_by = 'operator', "
            "updated_at = VALUES(updated_at)"),
            {"s": site_id, "n": name, "lat": latitude, "lon": longitude, "tz": time_zone, "c": commissioned_on,
             "now": moment})


def edit_site(engine: Engine, site_id: str, *, name: str | None = None, latitude: float | None = None,
              longitude: float | None = None, time_zone: str | None = None, commissioned_on: date | None = None,
              now: datetime | None = None) -> bool:
    """Change the given fields of a site (the others stay), as an operator. False if unknown."""
    check_site(site_id, latitude, longitude, time_zone, name)
    changes = {"name": name, "latitude": latitude, "longitude": longitude, "time_zone": time_zone,
               "commissioned_on": commissioned_on}
    given = {column: value for column, value in changes.items() if value is not None}
    assignments = "".join(f"{column} = :{column}, " for column in given)
    with engine.begin() as conn:
        found = conn.execute(text(
            f"UPDATE {SITES} SET {assignments}registered_by = 'operator', updated_at = :now WHERE site_id = :s"),
            {**given, "s": site_id, "now": _now(now)}).rowcount
        exists = found or conn.execute(text(f"SELECT 1 FROM {SITES} WHERE site_id = :s"), {"s": site_id}).first()
    return bool(exists)


def sync_fleet_sites(conn: Connection, sites: Sequence[FleetSite], now: datetime) -> int:
    """Upsert the fleet config's sites (an operator's site stands); returns the rows changed."""
    changed = 0
    for s in sites:
        changed += conn.execute(text(
            f"INSERT INTO {SITES} (site_id, name, latitude, longitude, time_zone, registered_by, created_at, "
            "updated_at) VALUES (:s, :n, :lat, :lon, :tz, 'fleet', :now, :now) "
            f"ON DUPLICATE KEY UPDATE "
            f"latitude = IF(registered_by = 'operator', latitude, VALUES(latitude)), "
            f"longitude = IF(registered_by = 'operator', longitude, VALUES(longitude)), "
            f"time_zone = IF(registered_by = 'operator', time_zone, VALUES(time_zone)), "
            f"updated_at = IF(registered_by = 'operator' OR (latitude <=> VALUES(latitude) AND "
            f"longitude <=> VALUES(longitude) AND time_zone <=> VALUES(time_zone)), updated_at, VALUES(updated_at))"),
            {"s": s.site_id, "n": "Default site" if s.site_id == DEFAULT_SITE_ID else s.site_id,
             "lat": s.latitude, "lon": s.longitude, "tz": s.time_zone, "now": now}).rowcount
    return changed


_SITE_ROWS = (
    "SELECT s.site_id, s.name, s.latitude, s.longitude, s.time_zone, s.commissioned_on, s.registered_by, "
    f"(SELECT COUNT(*) FROM {PANELS} p WHERE p.site_id = s.site_id AND p.retired_at IS NULL), "
    f"(SELECT COALESCE(SUM(p.pmax_w), 0) / 1000 FROM {PANELS} p WHERE p.site_id = s.site_id "
    "AND p.retired_at IS NULL) "
    f"FROM {SITES} s"
)


def _row(r: Sequence[object]) -> SiteRow:
    return SiteRow(str(r[0]), str(r[1]), float(r[2]), float(r[3]), str(r[4]), r[5], str(r[6]),  # type: ignore[arg-type]
                   int(r[7]), float(r[8]))  # type: ignore[arg-type]


def list_sites(conn: Connection, *, limit: int = 1000, after: str | None = None) -> list[SiteRow]:
    """Sites in id order, keyset-paged after `after`."""
    rows = conn.execute(text(f"{_SITE_ROWS} WHERE (:after IS NULL OR s.site_id > :after) ORDER BY s.site_id "
                             "LIMIT :limit"), {"after": after, "limit": limit})
    return [_row(r) for r in rows]


def site(conn: Connection, site_id: str) -> SiteRow | None:
    """One site with its panel count and kWp; None when unknown."""
    row = conn.execute(text(f"{_SITE_ROWS} WHERE s.site_id = :s"), {"s": site_id}).first()
    return None if row is None else _row(row)


def site_places(conn: Connection) -> dict[str, FleetSite]:
    """Every site's location and zone, by id (the power model's input)."""
    rows = conn.execute(text(f"SELECT site_id, latitude, longitude, time_zone FROM {SITES}"))
    return {r[0]: FleetSite(r[0], float(r[1]), float(r[2]), r[3]) for r in rows}


def panel_sites(conn: Connection, panel_ids: Sequence[str] | None = None) -> dict[str, str]:
    """Each panel's site id (all panels when `panel_ids` is None)."""
    from sqlalchemy import bindparam

    if panel_ids is None:
        return dict(conn.execute(text(f"SELECT panel_id, site_id FROM {PANELS}")).all())  # type: ignore[arg-type]
    if not panel_ids:
        return {}
    stmt = text(f"SELECT panel_id, site_id FROM {PANELS} WHERE panel_id IN :ids").bindparams(
        bindparam("ids", expanding=True))
    return dict(conn.execute(stmt, {"ids": list(panel_ids)}).all())  # type: ignore[arg-type]
