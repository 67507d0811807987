"""The live tables' job: observe them and run their checks."""

import dagster as dg

from solar_platform.orchestration import keys

observe_live_tables = dg.define_asset_job(
    "observe_live_tables",
    selection=dg.AssetSelection.assets(keys.PANEL_DATA, keys.PANEL_DATA_AGG),
    description="Observe panelData and panelDataAgg and run their checks.",
)
