"""The history domain: the raw archive (compaction and its check), its job and schedule. Late data's
re-rolls live with the rollups (`rollups/sensors.py`); retention and rebuilds with the platform's
upkeep (`platform/`)."""

import dagster as dg

from solar_platform.orchestration.history import assets, jobs, schedules

defs = dg.Definitions(
    assets=[assets.raw_archive],
    jobs=[jobs.compact_raw_archive],
    schedules=[schedules.compact_raw_archive_schedule],
)
