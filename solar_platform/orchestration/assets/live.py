"""Live domain: the tables the stream keeps current, observed (not materialized) by Dagster.

panelData and panelDataAgg are written by the external Spark stream; Dagster observes them
(row count, newest event time, lag) on a schedule, following Dagster's "observing streaming
processes" pattern. `panel_alerts` is written by the panel-health sensor.
"""


from datetime import UTC, datetime

import dagster as dg
from sqlalchemy import text

from solar_platform.orchestration.resources import SolarSettingsResource
from solar_platform.storage import db
from solar_platform.storage.health import table_stats

GROUP = "live"
PANEL_DATA = dg.AssetKey("panelData")
PANEL_DATA_AGG = dg.AssetKey("panelDataAgg")
PANEL_ALERTS = dg.AssetKey("panel_alerts")

_LIVE_TABLES = {
    PANEL_DATA: ("panelData", "time_data", "readings"),
    PANEL_DATA_AGG: ("panelDataAgg", "window_end", "windows"),
}


def observe_live_table(settings, key: dg.AssetKey, now: datetime | None = None) -> dg.ObserveResult:  # noqa: ANN001
    """One observation: rows, newest event time, lag, and when the stream last wrote the table."""
    table, time_column, query_name = _LIVE_TABLES[key]
    now = now or datetime.now(UTC)
    with db.engine(settings).connect() as conn:
        stats = table_stats(conn, table, time_column, now)
        last_write = conn.execute(text(
            "SELECT MAX(recorded_at) FROM stream_progress WHERE query_name = :q AND rows_written > 0"),
            {"q": query_name}).scalar()
    updated = last_write.replace(tzinfo=UTC).timestamp() if last_write is not None else stats.newest_epoch
    metadata: dict[str, object] = {
        "row_count": dg.MetadataValue.int(stats.rows),
        "newest_event_time": stats.newest.replace(tzinfo=UTC).isoformat() if stats.newest else "",
        "lag_seconds": dg.MetadataValue.float(round(stats.lag_seconds, 3)) if stats.lag_seconds is not None
        else dg.MetadataValue.null(),
    }
    if updated is not None:
        metadata["dagster/last_updated_timestamp"] = dg.MetadataValue.timestamp(updated)
    version = f"{stats.rows}:{stats.newest.isoformat() if stats.newest else '-'}"
    return dg.ObserveResult(asset_key=key, metadata=metadata, data_version=dg.DataVersion(version))


@dg.multi_observable_source_asset(
    name="live_tables",
    specs=[
        dg.AssetSpec(PANEL_DATA, group_name=GROUP, deps=["spark_stream"], kinds={"mysql"},
                     description="Raw panel readings (the seed's `panelData`), one row per (panel, time), "
                                 "upserted by the stream. Observed: row count, newest reading, lag."),
        dg.AssetSpec(PANEL_DATA_AGG, group_name=GROUP, deps=["spark_stream"], kinds={"mysql"},
                     description="Per-panel 30-second window means (the seed's `panelDataAgg`), upserted by "
                                 "the stream. Observed: row count, newest window end, lag."),
    ],
    can_subset=True,
)
def live_tables(context: dg.AssetExecutionContext, solar: SolarSettingsResource):  # noqa: ANN201
    """Observe the stream's live tables: row counts, newest event time, lag, last write."""
    settings = solar.get()
    for key in context.selected_asset_keys:
        yield observe_live_table(settings, key)


panel_alerts = dg.AssetSpec(
    PANEL_ALERTS, group_name=GROUP, deps=[PANEL_DATA, "panels"], kinds={"mysql"},
    description="Panel-health alerts (offline, silent, underperforming) kept by the panel_health sensor: "
                "at most one open alert per (panel, kind); alerts that no longer hold are resolved.")
