"""The registry's check: every site can place its panels in time (a known zone) and under the sky."""

import dagster as dg

from solar_platform.orchestration import keys
from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.settings import known_zone
from solar_platform.storage import db
from solar_platform.storage.sites import SiteRow, list_sites


def site_problems(rows: list[SiteRow]) -> list[str]:
    """What makes a site unusable for its days (zone) or its expected power (location)."""
    problems = []
    for site in rows:
        try:
            known_zone(site.time_zone)
        except ValueError as exc:
            problems.append(f"{site.site_id}: {exc}")
        if not (-90 <= site.latitude <= 90 and -180 <= site.longitude <= 180):
            problems.append(f"{site.site_id}: location out of range")
    return problems


@dg.asset_check(asset=keys.PANEL_REGISTRY, name="sites_placed", description="Every site has a known IANA time "
                "zone and a location on the globe: its days and its expected power depend on them.")
def sites_placed(solar: SolarSettingsResource) -> dg.AssetCheckResult:
    with db.engine(solar.get()).connect() as conn:
        rows = list_sites(conn, limit=100_000)
    problems = site_problems(rows)
    return dg.AssetCheckResult(passed=not problems, metadata={
        "sites": len(rows), "problems": dg.MetadataValue.json(problems),
        "panels_by_site": dg.MetadataValue.json({s.site_id: s.panels for s in rows[:200]})})
