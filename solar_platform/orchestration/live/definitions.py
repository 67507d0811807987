"""The live domain: the stream's tables observed, their checks, and the job and schedule that run them."""

import dagster as dg

from solar_platform.orchestration.live import assets, checks, jobs, schedules

defs = dg.Definitions(
    assets=[assets.live_tables],
    asset_checks=checks.live_checks,
    jobs=[jobs.observe_live_tables],
    schedules=[schedules.observe_live_tables_schedule],
)
