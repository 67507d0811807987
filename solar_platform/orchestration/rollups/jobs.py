"""The rollups' job: one site day, or a single-run backfill of many."""

import dagster as dg

from solar_platform.orchestration import keys

daily_rollups = dg.define_asset_job(
    "daily_rollups",
    selection=dg.AssetSelection.assets(keys.PANEL_DAILY_ENERGY, keys.FLEET_DAILY_ENERGY),
    description="Per-panel and fleet daily energy for one site day (or a single-run backfill of many): staged, "
                "checked, then swapped in.",
)
