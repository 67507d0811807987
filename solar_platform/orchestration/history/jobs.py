"""The archive's job: compact one closed UTC day (or a backfill of many)."""

import dagster as dg

from solar_platform.orchestration import keys

compact_raw_archive = dg.define_asset_job(
    "compact_raw_archive",
    selection=dg.AssetSelection.assets(keys.RAW_ARCHIVE),
    description="Compact a closed UTC day of the raw archive into a few Parquet files and check it against "
                "panelData.",
)
